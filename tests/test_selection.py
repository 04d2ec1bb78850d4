"""The selection rules: which epoch best.pt keeps, on hand-made metrics rows."""

from __future__ import annotations

import math

import pytest

from graphvae.spec.ir import Spec, Variable
from graphvae.train.selection import Selection, standard_error

SPEC = Spec("m", (Variable("x", "observed", "binary", (4,)), Variable("y", "supervised", "categorical", (10,))))
UNSUPERVISED = Spec("u", (Variable("x", "observed", "binary", (4,)),))


def rows(errors, elbos=None, n=100):
    elbos = elbos or [-10.0] * len(errors)
    return [{"epoch": i + 1, "val/error/y": e, "val/elbo": b, "val/examples": n} for i, (e, b) in
            enumerate(zip(errors, elbos))]


def chosen(rule, metrics, spec=SPEC):
    sel = Selection(rule)
    picks = [row["epoch"] for row in metrics if sel.update(spec, row)]
    return picks, sel


@pytest.mark.parametrize("rule, errors, elbos, picks, epoch", [
    # the lowest error was luck at epoch 2; later epochs within one standard error (3 %) are kept
    ("error_se", [0.5, 0.10, 0.12, 0.11, 0.125], None, [1, 2, 3, 4, 5], 5),
    ("error", [0.5, 0.10, 0.12, 0.11, 0.125], None, [1, 2], 2),
    # a later epoch far below the incumbent takes over; one far above it does not
    ("error_se", [0.5, 0.3, 0.1, 0.4], None, [1, 2, 3], 3),
    ("elbo", [0.5, 0.1, 0.2], [-20.0, -15.0, -12.0], [1, 2, 3], 3),
    ("elbo", [0.5, 0.1, 0.2], [-20.0, -11.0, -12.0], [1, 2], 2),
    ("last", [0.1, 0.5, 0.9], None, [1, 2, 3], 3),
])
def test_rules(rule, errors, elbos, picks, epoch):
    got, sel = chosen(rule, rows(errors, elbos))
    assert got == picks and sel.epoch == epoch


def test_standard_error_of_a_validation_error():
    assert standard_error(SPEC, rows([0.1], n=100)[0]) == pytest.approx(math.sqrt(0.1 * 0.9 / 100))
    assert standard_error(SPEC, {"epoch": 1, "val/elbo": -3.0}) == 0.0


def test_without_labels_the_rules_fall_back_to_the_elbo():
    metrics = [{"epoch": 1, "val/elbo": -20.0}, {"epoch": 2, "val/elbo": -10.0}, {"epoch": 3, "val/elbo": -15.0}]
    got, sel = chosen("error_se", metrics, UNSUPERVISED)
    assert got == [1, 2] and "score 10" in sel.describe()


def test_the_reason_is_said_and_the_state_survives_a_checkpoint():
    _, sel = chosen("error_se", rows([0.5, 0.10, 0.12]))
    text = sel.describe()
    assert text.startswith("epoch 3: validation error 12.00 %") and "10.00 % at epoch 2" in text
    again = Selection.from_state(sel.state_dict())
    assert again == sel and again.update(SPEC, rows([0.5, 0.10, 0.12, 0.11])[-1])
