"""graphvae eval: the RMSE of each value of a continuous supervised variable (rmse/light[0], ...),
checked against hand-computed values on a stub model, in the text report, and on a trained run."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from graphvae.cli import main
from graphvae.cli.eval import format_report
from graphvae.spec.ir import Spec, Variable
from graphvae.train.evaluate import evaluate_arrays

torch.set_num_threads(1)
NAN = float("nan")


class TablePredictions:
    """A stand-in model: x holds each example's row number, and predict reads the row of a table."""

    training = False

    def __init__(self, table: dict):
        self.table = {k: torch.as_tensor(np.asarray(v)) for k, v in table.items()}

    def eval(self):
        return self

    def train(self, mode=True):
        return self

    def loss(self, batch, terms=False):
        return torch.zeros(()), {"elbo": torch.zeros(())}

    def predict(self, batch, name):
        return self.table[name][batch["x"][:, 0].long()]


def _spec(*supervised):
    return Spec("m", (Variable("x", "observed", "real", (1,)),
                      *(Variable(name, "supervised", "real", shape) for name, shape in supervised)))


# (label shape, truth, prediction, expected error/light, expected {rmse key: value}), all by hand:
#   rows 0, 1 known, row 2 missing: value 0 errs 3 and 0 -> sqrt(9/2); value 1 errs 4 and 10 -> sqrt(116/2);
#   overall sqrt(mean over rows of the mean over values) = sqrt(((9 + 16)/2 + (0 + 100)/2) / 2) = sqrt(31.25)
CASES = [
    ((2,), [[0, 0], [10, 20], [NAN, NAN]], [[3, 4], [10, 10], [5, 5]],
     math.sqrt(31.25), {"rmse/light[0]": math.sqrt(4.5), "rmse/light[1]": math.sqrt(58.0)}),
    # degrees as shaded-shapes stores them: azimuth off by 10 and -10, elevation exact
    ((2,), [[-70, 60], [70, -40]], [[-60, 60], [60, -40]],
     math.sqrt(50.0), {"rmse/light[0]": 10.0, "rmse/light[1]": 0.0}),
    # three values, one example: each value's RMSE is its absolute error
    ((3,), [[1, 2, 3]], [[2, 0, 3]], math.sqrt(5 / 3), {"rmse/light[0]": 1.0, "rmse/light[1]": 2.0,
                                                         "rmse/light[2]": 0.0}),
    # a variable of two dimensions counts its values in row-major order
    ((2, 2), [[[1, 1], [1, 1]]], [[[1, 2], [4, 1]]], math.sqrt(10 / 4),
     {"rmse/light[0]": 0.0, "rmse/light[1]": 1.0, "rmse/light[2]": 3.0, "rmse/light[3]": 0.0}),
    # one value: the overall RMSE alone, no per-value keys
    ((1,), [[1], [3]], [[2], [6]], math.sqrt(5.0), {}),
]


@pytest.mark.parametrize("batch_size", [1, 2, 250])
@pytest.mark.parametrize("shape, truth, pred, overall, parts", CASES)
def test_component_rmse_by_hand(shape, truth, pred, overall, parts, batch_size):
    n = len(truth)
    arrays = {"x": np.arange(n, dtype=np.float32)[:, None], "light": np.asarray(truth, dtype=np.float32)}
    model = TablePredictions({"light": np.asarray(pred, dtype=np.float32)})
    res = evaluate_arrays(model, _spec(("light", shape)), arrays, batch_size=batch_size, components=True)
    assert res["error/light"] == pytest.approx(overall)
    assert {k: v for k, v in res.items() if k.startswith("rmse/")} == pytest.approx(parts)
    if parts:  # the overall RMSE is the root of the mean of the squared per-value RMSEs
        assert math.sqrt(sum(v * v for v in parts.values()) / len(parts)) == pytest.approx(overall)


def test_components_only_when_asked():
    """Validation (the trainer's per-epoch metrics) keeps its keys: no rmse/ entries by default."""
    shape, truth, pred, overall, _ = CASES[0]
    arrays = {"x": np.arange(3, dtype=np.float32)[:, None], "light": np.asarray(truth, dtype=np.float32)}
    res = evaluate_arrays(TablePredictions({"light": np.asarray(pred, dtype=np.float32)}), _spec(("light", shape)),
                          arrays)
    assert res["error/light"] == pytest.approx(overall) and not any(k.startswith("rmse/") for k in res)


@pytest.mark.parametrize("res, expected, absent", [
    ({"error/light": 12.5, "rmse/light[0]": 10.0, "rmse/light[1]": 14.5},
     ["  light      12.5000 RMSE", "  light[0]   10.0000 RMSE", "  light[1]   14.5000 RMSE",
      "each RMSE in its variable's own units"], ["alone"]),
    ({"error/light": 12.5, "rmse/light[0]": 10.0, "rmse/light[1]": 14.5,
      "baseline": {"error/light": 20.0, "rmse/light[0]": 16.0, "rmse/light[1]": 23.5, "epoch": 3, "step": 9}},
     ["  light      20.0000 RMSE alone; the unlabelled data gain +7.5000 RMSE",
      "  light[0]   16.0000 RMSE alone; the unlabelled data gain +6.0000 RMSE",
      "  light[1]   23.5000 RMSE alone; the unlabelled data gain +9.0000 RMSE"], []),
    ({"error/light": 2.0}, ["  light      2.0000 RMSE"], ["light[0]", "own units"]),
])
def test_report_text(res, expected, absent):
    base = {"run": "r", "checkpoint": "best", "epoch": 1, "step": 2, "data": "f.npz", "split": "test",
            "examples": 4, "elbo": -1.0, "supervised": {"light": "real"}}
    text = format_report({**base, **res})
    for line in expected:
        assert line in text.splitlines() or line in text
    for word in absent:
        assert word not in text


SPEC = """model light2

x     : observed   real[6]
light : supervised real[2]
z     : latent     real[2]

encoder {
  light | x    ~ Normal(mlp(16))
  z | x, light ~ Normal(mlp(16, batchnorm = true))
}

decoder {
  z            ~ Normal(0, 1)
  light        ~ Normal(0, 45)
  x | light, z ~ Normal(mlp(16, batchnorm = true))
}

train {
  epochs = 2
  batch_size = 100
  eval_samples = 2
}
"""


@pytest.fixture(scope="module")
def light_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("light")
    rng = np.random.default_rng(0)
    n = 400
    light = np.stack([rng.uniform(-70, 70, n), rng.uniform(-40, 60, n)], 1).astype(np.float32)
    x = (light @ rng.normal(size=(2, 6)) / 40 + 0.1 * rng.normal(size=(n, 6))).astype(np.float32)
    labelled = light.copy()
    labelled[40:] = np.nan
    np.savez(root / "light.npz", x=x, light=labelled, test_x=x[:100], test_light=light[:100])
    np.savez(root / "nolight.npz", x=x)
    (root / "light.gvae").write_text(SPEC)
    assert main(["train", str(root / "light.gvae"), "--data", str(root / "light.npz"), "--out", str(root / "run"),
                 "--no-progress", "--device", "cpu", "--baseline"]) == 0
    return root


def test_eval_trained_run(light_run, capsys):
    capsys.readouterr()
    assert main(["eval", str(light_run / "run"), "--device", "cpu", "--json", "-k", "0"]) == 0
    res = json.loads(capsys.readouterr().out)
    parts = [res["rmse/light[0]"], res["rmse/light[1]"]]
    assert math.sqrt((parts[0] ** 2 + parts[1] ** 2) / 2) == pytest.approx(res["error/light"], rel=1e-6)
    assert set(res["baseline"]) >= {"error/light", "rmse/light[0]", "rmse/light[1]"}
    assert main(["eval", str(light_run / "run"), "--device", "cpu", "-k", "0"]) == 0
    text = capsys.readouterr().out
    assert "light[0]" in text and "light[1]" in text and "own units" in text


@pytest.mark.parametrize("argv, message", [
    (["--data", "{root}/nolight.npz"], "light"),
    (["--data", "{root}/missing.npz"], "missing.npz"),
])
def test_eval_wrong_data(light_run, capsys, argv, message):
    capsys.readouterr()
    argv = [a.format(root=light_run) for a in argv]
    assert main(["eval", str(light_run / "run"), "--device", "cpu", "-k", "0"] + argv) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and message in err
