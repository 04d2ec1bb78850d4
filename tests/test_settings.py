"""The one settings table: check, the trainer, the batcher and the CLI flags all derive from it and agree."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from graphvae.cli.parser import build_parser
from graphvae.errors import UserError
from graphvae.spec.ir import Setting, Spec
from graphvae.spec.loader import load_spec
from graphvae.spec.settings import (CROSS_RULES, DATASETS, FLAGS, SETTINGS, Anything, Interval, OneOf, Pattern,
                                    TrainConfig, literal_ok)
from graphvae.spec.validate import validate
from graphvae.train import config as trainconfig

ROWS = [row for block in SETTINGS.values() for row in block.values()]
TRAIN = SETTINGS["train"]
BASE = load_spec("specs/digits_m2.gvae")

# Candidate literals per type; every one is tried against every setting of that type.
CANDIDATES = {
    int: [-5, -2, -1, 0, 1, 2, 10, 100, 101, 10**9],
    float: [-1.0, -1, 0, 0.0, 1e-12, 0.5, 1, 1.0, 1.5, 3, float("nan"), float("inf")],
    str: ["", "x", "adam", "adm", "cosine", "linear", "dynamic", "static", "threshold", "digits", "mnist",
          "fashion-mnist", "kmnist", "cifar", "data/x.npz", "auto", "cpu", "mps", "cuda", "cuda:1", "cuda:x", "tpu",
          "per_example", "labelled_fraction", "~/data"],
    bool: [True, False],
}


def check_accepts(block: str, settings: dict) -> bool:
    if block == "train":
        spec = dataclasses.replace(BASE, train=tuple(Setting(k, v) for k, v in settings.items()))
    else:
        objective = dataclasses.replace(BASE.objective, settings=tuple(Setting(k, v) for k, v in settings.items()))
        spec = dataclasses.replace(BASE, objective=objective, train=())
    return not [d for d in validate(spec) if d.code == "bad-setting"]


def trainer_accepts(settings: dict) -> bool:
    try:
        trainconfig.resolve(Spec("m", path="m.gvae"), settings)
    except UserError as exc:
        assert "\n" not in str(exc)
        return False
    return True


@pytest.mark.parametrize("row", ROWS, ids=[f"{r.block}.{r.name}" for r in ROWS])
def test_every_row_is_documented_and_its_default_is_valid(row):
    assert row.help and row.type in (bool, int, float, str)
    assert literal_ok(row.type, row.default) and row.constraint.check(row.default)
    assert isinstance(row.constraint, Anything) or (row.constraint.math and row.constraint.words)


@pytest.mark.parametrize("row", list(TRAIN.values()), ids=list(TRAIN))
def test_check_and_trainer_agree_on_every_value(row):
    """A literal a spec's train block may hold is accepted by `check` exactly when the trainer accepts it."""
    for value in CANDIDATES[row.type]:
        assert check_accepts("train", {row.name: value}) == trainer_accepts({row.name: value}), value


@pytest.mark.parametrize("lpb, only", [(10, False), (0, False), (-1, False), (100, True), (-1, True), (0, True)])
def test_check_trainer_and_batcher_agree_on_the_cross_rules(lpb, only):
    from graphvae.data.batches import SemiSupervisedBatches

    settings = {"labelled_per_batch": lpb, "labelled_only": only}
    verdict = check_accepts("train", settings)
    assert verdict == trainer_accepts(settings)
    arrays = {"x": np.zeros((20, 64), np.float32), "y": np.arange(20) % 10}
    try:
        SemiSupervisedBatches(arrays, BASE, np.arange(10), batch_size=8, labelled_per_batch=lpb, labelled_only=only)
        batcher = True
    except UserError:
        batcher = False
    assert batcher == verdict == (not (only and lpb == 0))


@pytest.mark.parametrize("row", list(SETTINGS["objective"].values()), ids=list(SETTINGS["objective"]))
def test_objective_settings_check_and_compile_agree(row):
    from graphvae.compile.compiler import objective_config

    for value in CANDIDATES[row.type]:
        if not literal_ok(row.type, value):
            continue
        try:
            objective_config(BASE, **{row.name: value})
            compiled = True
        except ValueError:
            compiled = False
        assert check_accepts("objective", {row.name: value}) == compiled, value


def test_the_two_reported_bugs():
    """`device = mps` passes check as `--device mps` passes the trainer; labelled_per_batch equal to
    batch_size is judged alike by both (since the labelled examples sit beside batch_size unlabelled
    ones, both accept it; golden: tests/golden/train_settings_agree.gvae)."""
    assert check_accepts("train", {"device": "mps"}) and trainer_accepts({"device": "mps"})
    assert check_accepts("train", {"labelled_per_batch": 100, "batch_size": 100})
    assert trainer_accepts({"labelled_per_batch": 100, "batch_size": 100})


@pytest.mark.parametrize("constraint, math_text, words", [
    (Interval(0, lower_open=True), "> 0", "positive"),
    (Interval(0), ">= 0", "non-negative"),
    (Interval(1), ">= 1", "at least 1"),
    (Interval(0, upper=1), "in [0, 1)", "a fraction in [0, 1)"),
    (Interval(0, note="(0 disables)"), ">= 0 (0 disables)", "non-negative (0 disables)"),
    (OneOf(("a", "b")), "one of a, b", "one of a, b"),
    (OneOf(("a",), npz=True), "one of a or a path to an .npz file", "one of a or a path to an .npz file"),
    (Pattern(r"x|y", "x or y"), "x or y", "x or y"),
])
def test_constraint_wordings(constraint, math_text, words):
    assert (constraint.math, constraint.words) == (math_text, words)


def test_cross_rules_name_real_settings():
    for block, rules in CROSS_RULES.items():
        for rule in rules:
            assert set(rule.names) <= set(SETTINGS[block])


def test_cli_flags_come_from_the_table():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices
    train_flags = {a.dest: a for a in sub["train"]._actions if a.option_strings and a.dest in TRAIN}
    assert tuple(train_flags) == FLAGS
    for name, action in train_flags.items():
        row = TRAIN[name]
        assert action.option_strings == ["--" + name.replace("_", "-")]
        assert action.help.startswith(row.help)
        assert action.choices == (list(row.constraint.choices) if row.constraint.closed else None)
        assert action.type is {int: int, float: float}.get(row.type)
    for command in ("eval", "sample"):
        flags = {a.dest: a for a in sub[command]._actions if a.dest in ("data", "data_dir", "device")}
        assert len(flags) == 3 and all(a.help.startswith(TRAIN[name].help) for name, a in flags.items())
    assert trainconfig.parse_set([f"{name}=1" for name in TRAIN]).keys() == TRAIN.keys()


def test_dataset_names_have_readers():
    from graphvae.data.idx import IMAGE_DATASETS

    assert set(DATASETS) == {"digits", *IMAGE_DATASETS}


def test_optimizer_and_schedule_choices_have_implementations():
    from graphvae.train.optim import OPTIMIZERS, SCHEDULES

    assert set(TRAIN["optimizer"].constraint.choices) == set(OPTIMIZERS)
    assert set(TRAIN["schedule"].constraint.choices) == set(SCHEDULES)
    for schedule in SCHEDULES.values():
        assert math.isclose(schedule(0, 100, 10, TrainConfig()), 1.0)


def test_binarize_choices_are_the_batchers():
    from graphvae.data.batches import BINARIZE_MODES

    assert BINARIZE_MODES == TRAIN["binarize"].constraint.choices
