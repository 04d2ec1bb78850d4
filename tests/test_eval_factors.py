"""``graphvae eval RUN --data FILE.npz --factors NAMES``: a tiny M2 trained on synthetic data with
a categorical and a continuous factor; the report's text and JSON agree with graphvae.train.measures on
the run's own codes; ``_factors`` names the factors; each mistake is one line, exit 1 (2 for usage)."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
import torch

import graphvae
from graphvae.train import measures
from graphvae.cli.eval import code_columns
from graphvae.cli.main import main

SPEC = """\
model shapes

x : observed   real[6]
y : supervised categorical[3]
z : latent     real[2]

encoder {
  y | x    ~ Categorical(mlp(16))
  z | x, y ~ Normal(mlp(16))
}

decoder {
  z        ~ Normal(0, 1)
  y        ~ Categorical(uniform)
  x | y, z ~ Normal(mlp(16))
}

objective {
  y = enumerate
}
"""


def make_data(n: int = 240, seed: int = 0) -> dict[str, np.ndarray]:
    """x from the class ``shape`` (3 means) shifted along a direction by ``shift``; 30 labels of y."""
    rng = np.random.default_rng(seed)
    means = 3 * rng.normal(size=(3, 6))
    shape = rng.integers(0, 3, n)
    shift = rng.normal(size=n).astype(np.float32)
    x = (means[shape] + shift[:, None] * rng.normal(size=6) + 0.2 * rng.normal(size=(n, 6))).astype(np.float32)
    y = np.full(n, -1, dtype=np.int64)
    y[:30] = shape[:30]
    return {"x": x, "y": y, "test_x": x[:60], "test_y": shape[:60], "shape": shape, "shift": shift}


def cli(capsys, *argv) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse's usage errors
        rc = exc.code
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    """The folder with shapes.gvae, data.npz (no _factors), named.npz (with _factors) and a run
    trained 2 epochs on data.npz."""
    root = tmp_path_factory.mktemp("factors")
    (root / "shapes.gvae").write_text(SPEC)
    data = make_data()
    np.savez(root / "data.npz", **data)
    np.savez(root / "named.npz", x=data["x"], shape=data["shape"], shift=data["shift"],
             _factors=np.array(["shape", "shift"]))
    np.savez(root / "short.npz", x=data["x"], shape=data["shape"][:-5], words=np.array(["a"] * len(data["x"])))
    torch.set_num_threads(1)
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["train", str(root / "shapes.gvae"), "--data", str(root / "data.npz"), "--epochs", "2",
                     "--out", str(root / "run"), "--no-progress", "--device", "cpu"]) == 0
    return root


def test_report_text_and_json(shapes, capsys):
    rc, out, err = cli(capsys, "eval", shapes / "run", "--data", shapes / "data.npz", "--factors", "shape,shift",
                       "--device", "cpu")
    assert rc == 0, err
    lines = out.splitlines()
    assert "240 examples" in lines[0]
    assert lines[1].split() == ["codes", "3", "dimensions:", "y", "1", "(mode),", "z", "2", "(mean)"]
    assert lines[2].startswith("  MIG ") and "20 bins" in lines[2]
    assert lines[3].startswith("  DCI ") and "linear probe, 20% held out, seed 0" in lines[3]
    rows = {line.split()[0]: line.split() for line in lines[5:]}
    assert rows["shape"][1] == "categorical" and rows["shape"][-1].endswith("%")
    assert rows["shift"][1] == "continuous" and rows["shift"][-1] == "NRMSE"

    rc, out, err = cli(capsys, "eval", shapes / "run", "--data", shapes / "data.npz", "--factors", "shape,shift",
                       "--device", "cpu", "--json")
    assert rc == 0, err
    res = json.loads(out)
    assert {"mig", "dci", "factors", "codes", "code_columns", "mi", "importance", "skipped", "bins"} <= set(res)
    assert set(res["dci"]) >= {"disentanglement", "completeness", "informativeness", "probe", "seed"}
    assert res["codes"] == {"y": [1, "mode"], "z": [2, "mean"]} and res["code_columns"] == ["y", "z[0]", "z[1]"]
    assert list(res["factors"]) == ["shape", "shift"]
    assert set(res["factors"]["shape"]) == {"kind", "entropy", "mig_gap", "top_code", "mi_top", "completeness", "error"}
    assert np.asarray(res["mi"]).shape == (3, 2) and np.asarray(res["importance"]).shape == (3, 2)

    # the same numbers as graphvae.train.measures on the run's own codes (Python API)
    run = graphvae.load_run(shapes / "run", device="cpu")
    codes, columns, _ = code_columns(run.encode(str(shapes / "data.npz")), run.spec)
    data = np.load(shapes / "data.npz")
    factors = {"shape": data["shape"], "shift": data["shift"]}
    assert res["mig"] == pytest.approx(measures.mig(codes, factors, discrete=[True, False, False]).score, abs=1e-12)
    d = measures.dci(codes, factors)
    assert res["dci"]["disentanglement"] == pytest.approx(d.disentanglement, abs=1e-12)
    assert res["dci"]["informativeness"] == pytest.approx(d.informativeness, abs=1e-12)
    # the mode of y is the class q predicts: with 30 labels it carries information about shape
    assert res["factors"]["shape"]["mi_top"] > 0


def test_factors_listed_in_the_file_and_other_options(shapes, capsys):
    rc, out, err = cli(capsys, "eval", shapes / "run", "--data", shapes / "named.npz", "--factors",
                       "--bins", "10", "--probe", "trees", "--seed", "3", "--device", "cpu", "--json")
    assert rc == 0, err
    res = json.loads(out)
    assert list(res["factors"]) == ["shape", "shift"] and res["bins"] == 10
    assert res["dci"]["probe"] == "trees" and res["dci"]["seed"] == 3


@pytest.mark.parametrize("argv, message", [
    (["--data", "{root}/data.npz", "--factors", "shape,nope"],
     "data.npz has no array 'nope' named by --factors (arrays: x, y, test_x, test_y, shape, shift)"),
    (["--data", "{root}/data.npz", "--factors"], "data.npz has no _factors array listing its factors"),
    (["--factors"], "data.npz has no _factors array"),  # the run's own data file
    (["--data", "{root}/data.npz", "--factors", "shape,shape"], "--factors names shape more than once"),
    (["--data", "{root}/data.npz", "--factors", ","], "--factors names no factor"),
    (["--data", "{root}/short.npz", "--factors", "shape"], "has 235 rows and the file's observed arrays 240 examples"),
    (["--data", "{root}/short.npz", "--factors", "words"], "dtype <U1"),
    (["--data", "{root}/missing.npz", "--factors", "shape"], "missing.npz not found"),
    (["--data", "digits", "--factors", "shape"], "--data digits is a data set"),
    (["--data", "{root}/data.npz", "--factors", "shap"],
     "has no array 'shap' named by --factors; did you mean 'shape'?"),
    (["--data", "{root}/data.npz", "--factors", "shape", "--bins", "0"], "bins must be at least 1"),
    (["--data", "{root}/data.npz", "--factors", "shape", "-k", "5"], "-k (IWAE) does not apply with --factors"),
    (["--data", "{root}/data.npz", "--factors", "shape", "--probe", "svm"], None),  # usage: exit 2
])
def test_mistakes_are_one_line(shapes, capsys, argv, message):
    rc, out, err = cli(capsys, "eval", shapes / "run", "--device", "cpu", *[a.format(root=shapes) for a in argv])
    assert "Traceback" not in err
    assert rc == (2 if message is None else 1), err
    if message is not None:
        assert len(err.strip().splitlines()) == 1 and err.startswith("graphvae: error: ") and message in err, err
