"""graphvae eval: test error, ELBO, IWAE-K and example counts, as text and JSON; refusals."""

from __future__ import annotations

import json
import math

import pytest
import torch
from conftest import tiny_m2

from graphvae.cli import main
from graphvae.data.batches import hide_labels
from graphvae.spec.ir import Spec, Variable
from graphvae.train import config as trainconfig
from graphvae.train.evaluate import evaluate_run
from graphvae.train.selection import selection_score
from graphvae.train.loop import train

torch.set_num_threads(1)

SPEC = tiny_m2(objective="y = enumerate", train="""  epochs = 1
  batch_size = 300
  labels = 30
  labelled_per_batch = 10
  eval_samples = 3""")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from graphvae.spec.loader import load_spec_file

    root = tmp_path_factory.mktemp("eval")
    path = root / "tiny.gvae"
    path.write_text(SPEC)
    cfg = trainconfig.resolve(load_spec_file(path)[0], {"device": "cpu"})
    return train(path, cfg, root / "run", progress=False, log=lambda *_: None).run


@pytest.mark.parametrize("split, expected_n", [("test", 360), ("validation", 144)])
def test_evaluate_run(run, split, expected_n):
    res = evaluate_run(run, split=split, device="cpu")
    assert res["examples"] == expected_n
    assert 0 <= res["error/y"] <= 1
    assert res["elbo"] < 0 and math.isfinite(res["elbo"])
    assert res["iwae_samples"] == 3
    assert res["iwae"] >= res["elbo"] - 1.0  # IWAE-K is (up to noise) the tighter bound
    assert res["labelled_examples"] == 30


@pytest.mark.parametrize("extra, check", [
    ([], lambda out: "error" in out and "ELBO" in out and "IWAE-3" in out and "360 examples" in out),
    (["-k", "2"], lambda out: "IWAE-2" in out),
    (["-k", "0"], lambda out: "IWAE" not in out and "ELBO" in out),
    (["--json"], lambda out: set(json.loads(out)) >= {"error/y", "elbo", "iwae", "examples", "labelled_examples"}),
    (["--json", "--checkpoint", "last", "--split", "validation"],
     lambda out: json.loads(out)["checkpoint"] == "last" and json.loads(out)["examples"] == 144),
])
def test_eval_cli(run, capsys, extra, check):
    assert main(["eval", str(run), "--device", "cpu"] + extra) == 0
    assert check(capsys.readouterr().out)


@pytest.mark.parametrize("setup, argv_extra, message", [
    ("missing_run", [], "no such run folder"),
    ("corrupt_best", [], "not a readable checkpoint"),
    ("edited_spec", [], "edited after training"),
    ("negative_k", ["-k", "-1"], "-k must be"),
])
def test_eval_errors(run, tmp_path, capsys, setup, argv_extra, message):
    import shutil

    target = tmp_path / "copy"
    shutil.copytree(run, target)
    if setup == "missing_run":
        target = tmp_path / "nowhere"
    elif setup == "corrupt_best":
        (target / "best.pt").write_bytes(b"PK\x03\x04 broken")
    elif setup == "edited_spec":
        spec = target / "spec.gvae"
        spec.write_text(spec.read_text().replace("real[2]", "real[3]"))
    assert main(["eval", str(target), "--device", "cpu"] + argv_extra) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_hide_labels():
    spec = Spec("m", (Variable("x", "observed", "binary", (2,)), Variable("y", "supervised", "categorical", (3,)),
                      Variable("c", "supervised", "real", (1,))))
    batch = {"x": torch.ones(2, 2), "y": torch.tensor([0, 2]), "c": torch.ones(2, 1)}
    out = hide_labels(batch, spec)
    assert out["y"].tolist() == [-1, -1] and torch.isnan(out["c"]).all()
    assert batch["y"].tolist() == [0, 2] and torch.equal(out["x"], batch["x"])


@pytest.mark.parametrize("variables, row, expected", [
    ([("y", "categorical")], {"val/error/y": 0.2, "val/elbo": -5.0}, 0.2),
    ([("y", "categorical"), ("w", "categorical")], {"val/error/y": 0.2, "val/error/w": 0.4}, 0.3),
    ([("y", "categorical"), ("c", "real")], {"val/error/y": 0.2, "val/error/c": 3.0}, 0.2),
    ([("c", "real")], {"val/error/c": 3.0, "val/elbo": -5.0}, 3.0),
    ([], {"val/elbo": -5.0, "train/elbo": -4.0}, 5.0),
    ([], {"train/elbo": -4.0}, 4.0),
])
def test_selection_score(variables, row, expected):
    spec = Spec("m", tuple(Variable(n, "supervised", d, (10,) if d == "categorical" else (1,)) for n, d in variables))
    assert selection_score(spec, row) == pytest.approx(expected)


def test_eval_validation_split_of_a_run_without_one(tmp_path, capsys):
    spec = tmp_path / "noval.gvae"
    spec.write_text(tiny_m2(train="  epochs = 1\n  batch_size = 2000\n  labels = 20\n  validation = 0"))
    assert main(["train", str(spec), "--out", str(tmp_path / "run"), "--no-progress", "--device", "cpu"]) == 0
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "run"), "--split", "validation", "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "holds out no validation examples (validation = 0); evaluate the test split instead" in err
