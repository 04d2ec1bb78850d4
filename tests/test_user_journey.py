"""A user's own tabular data, end to end (issue 12's acceptance): a generated ``.npz`` with partial
labels of a categorical ``y`` and a continuous ``s`` through ``check``, ``train``, ``eval``,
``predict`` to a file, ``sample --format npz``, and ``graphvae.load_run`` in Python giving the same
predictions as the command; ``encode``/``reconstruct`` and CSV; and each bad input one line, exit 1
(2 for usage), with nothing written."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import graphvae
from graphvae.cli.main import main

SPEC = """\
model journey

x : observed   real[6]
y : supervised categorical[3]
s : supervised real[1]
z : latent     real[2]

encoder {
  y | x       ~ Categorical(mlp(16))
  s | x       ~ Normal(mlp(16))
  z | x, y, s ~ Normal(mlp(16))
}

decoder {
  z           ~ Normal(0, 1)
  y           ~ Categorical(uniform)
  s           ~ Normal(0, 1)
  x | y, z, s ~ Normal(mlp(16))
}

objective {
  y = enumerate
}
"""


def make_data(n: int = 300, n_test: int = 60, seed: int = 0) -> dict[str, np.ndarray]:
    """x from three class means shifted along a direction by s, plus noise; 10 % of y and about
    13 % of s given (independently), the test arrays labelled in full."""
    rng = np.random.default_rng(seed)
    means = 3 * rng.normal(size=(3, 6))

    def draw(m):
        y = rng.integers(0, 3, m)
        s = rng.normal(size=(m, 1)).astype(np.float32)
        x = (means[y] + s + 0.3 * rng.normal(size=(m, 6))).astype(np.float32)
        return x, y.astype(np.int64), s

    x, y, s = draw(n)
    shown_y = np.full(n, -1, dtype=np.int64)
    keep = rng.choice(n, 30, replace=False)
    shown_y[keep] = y[keep]
    shown_s = np.full((n, 1), np.nan, dtype=np.float32)
    keep = rng.choice(n, 40, replace=False)
    shown_s[keep] = s[keep]
    test_x, test_y, test_s = draw(n_test)
    return {"x": x, "y": shown_y, "s": shown_s, "test_x": test_x, "test_y": test_y, "test_s": test_s}


def cli(capsys, *argv) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse's usage errors
        rc = exc.code
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.fixture(scope="module")
def journey(tmp_path_factory):
    """The folder with journey.gvae, data.npz, new.npz (7 unlabelled rows) and a run trained 3 epochs."""
    root = tmp_path_factory.mktemp("journey")
    (root / "journey.gvae").write_text(SPEC)
    data = make_data()
    np.savez(root / "data.npz", **data)
    np.savez(root / "new.npz", x=data["test_x"][:7])
    torch.set_num_threads(1)
    import contextlib
    import io

    said = io.StringIO()
    with contextlib.redirect_stdout(said):
        assert main(["train", str(root / "journey.gvae"), "--data", str(root / "data.npz"), "--epochs", "3",
                     "--out", str(root / "run"), "--no-progress"]) == 0
    (root / "train.log").write_text(said.getvalue())
    return root


def test_check_train_eval(journey, capsys):
    rc, out, err = cli(capsys, "check", journey / "journey.gvae")
    assert rc == 0, err
    run = graphvae.load_run(journey / "run")
    assert run.config.labels == -1  # an .npz file's own labels: all of them
    data = graphvae.prepare_data(run.spec, data=str(journey / "data.npz"), validation=run.config.validation,
                                 labels=-1, seed=run.config.seed)
    given = (data.train["y"] >= 0) | ~np.isnan(data.train["s"][:, 0])
    assert run.labelled.tolist() == np.flatnonzero(given).tolist()  # every example with a y or an s label
    counts = f"({len(run.labelled)} labelled: y {int((data.train['y'] >= 0).sum())}"
    first = (journey / "train.log").read_text().splitlines()[0]
    assert counts in first and f", s {int((~np.isnan(data.train['s'][:, 0])).sum())})" in first  # per variable
    rc, out, err = cli(capsys, "eval", journey / "run", "--json")
    assert rc == 0, err
    import json

    res = json.loads(out)
    assert res["examples"] == 60 and math.isfinite(res["error/s"]) and 0 <= res["error/y"] <= 1


def test_predict_sample_and_load_run_agree(journey, capsys):
    rc, out, err = cli(capsys, "predict", journey / "run", "--data", journey / "new.npz",
                       "--out", journey / "out" / "preds.npz", "--device", "cpu")  # as load_run's below
    assert rc == 0, err
    assert "wrote" in out and "7 examples" in out
    preds = dict(np.load(journey / "out" / "preds.npz"))
    assert sorted(preds) == ["s", "y", "y_prob"]
    assert preds["y"].shape == (7,) and preds["y"].dtype == np.int64 and preds["s"].shape == (7, 1)
    np.testing.assert_allclose(preds["y_prob"].sum(1), 1, rtol=1e-5)
    assert (preds["y_prob"].argmax(1) == preds["y"]).all()

    run = graphvae.load_run(journey / "run", checkpoint="best", device="cpu")
    assert not run.model.training and run.checkpoint.name in ("best.pt", "last.pt")
    same = run.predict(str(journey / "new.npz"))
    assert (same["y"] == preds["y"]).all()
    np.testing.assert_allclose(same["s"], preds["s"], rtol=1e-6)
    np.testing.assert_allclose(same["y_prob"], preds["y_prob"], rtol=1e-6)
    x = torch.from_numpy(np.load(journey / "new.npz")["x"])
    assert (run.model.predict({"x": x}, "y").numpy() == preds["y"]).all()  # the model itself, too
    by_path = graphvae.predict(journey / "run", {"x": x})
    assert (by_path["y"] == preds["y"]).all()
    assert (run.predict(x.numpy())["y"] == preds["y"]).all()  # one array: the only observed variable's

    rc, out, err = cli(capsys, "sample", journey / "run", "--format", "npz", "--n", 20, "--given", "y=1",
                       "--out", journey / "draws.npz", "--device", "cpu")
    assert rc == 0, err
    draws = dict(np.load(journey / "draws.npz"))
    assert {k: v.shape for k, v in draws.items()} == {"x": (20, 6), "y": (20,), "s": (20, 1), "z": (20, 2)}
    assert (draws["y"] == 1).all()
    again = run.sample(20, given={"y": 1})
    np.testing.assert_allclose(again["x"], draws["x"], rtol=1e-6)  # the same seed (0), the same draws


def test_encode_reconstruct_and_csv(journey, capsys):
    rc, _, err = cli(capsys, "encode", journey / "run", "--data", journey / "new.npz", "--out", journey / "codes.csv")
    assert rc == 0, err
    lines = (journey / "codes.csv").read_text().splitlines()
    assert len(lines) == 8
    header = lines[0].split(",")
    assert {"y", "s_0", "z_0", "z_1", "z_loc_0", "z_scale_1", "y_probs_2", "s_loc_0"} <= set(header)
    row = dict(zip(header, map(float, lines[1].split(","))))
    assert row["z_0"] == row["z_loc_0"] and row["z_scale_0"] > 0
    rc, _, err = cli(capsys, "reconstruct", journey / "run", "--split", "test", "--out", journey / "recon.npz")
    assert rc == 0, err
    recon = dict(np.load(journey / "recon.npz"))
    assert list(recon) == ["x"] and recon["x"].shape == (60, 6)  # the file's test_ arrays
    rc, _, err = cli(capsys, "predict", journey / "run", "--out", journey / "preds.csv")
    assert rc == 0, err
    assert (journey / "preds.csv").read_text().splitlines()[0] == "y,y_prob_0,y_prob_1,y_prob_2,s_0"


@pytest.mark.parametrize("argv, message", [
    (["predict", "{run}", "--data", "{bad}", "--out", "{o}/p.npz"], "has 5 values per example"),
    (["predict", "{run}", "--data", "{noarr}", "--out", "{o}/p.npz"], "has no array 'x'"),
    (["predict", "{run}", "--data", "{root}/missing.npz", "--out", "{o}/p.npz"], "not found"),
    (["predict", "{run}", "--data", "{new}", "--out", "{o}/p.txt"], "unknown output format '.txt'"),
    (["encode", "{run}", "--data", "{new}", "--out", "{new}/p.npz"], "is a file, not a folder"),
    (["predict", "{run}", "--data", "{new}", "--out", "{o}"], "is a folder"),
    (["reconstruct", "{root}", "--data", "{new}", "--out", "{o}/p.npz"], "not a run folder"),
    (["predict", "{root}/nowhere", "--out", "{o}/p.npz"], "no such run folder"),
    (["sample", "{run}", "--format", "npz", "--out", "{o}/s.csv"], "--format npz writes a .npz file"),
    (["sample", "{run}", "--format", "csv", "--given", "x=1", "--out", "{o}/s.csv"], "not a latent or supervised"),
    (["sample", "{run}", "--format", "csv", "--given", "y=3", "--out", "{o}/s.csv"], "classes are 0..2"),
    (["sample", "{run}", "--format", "csv", "--given", "y", "--out", "{o}/s.csv"], "NAME=VALUE"),
    (["predict", "{run}", "--out", "{o}/p.npz", "--split", "everything"], None),  # usage: exit 2
])
def test_bad_input_is_one_line(journey, capsys, argv, message):
    o = journey / "bad_out"
    o.mkdir(exist_ok=True)
    np.savez(journey / "bad.npz", x=np.zeros((4, 5), np.float32))
    np.savez(journey / "noarr.npz", xs=np.zeros((4, 6), np.float32))
    names = {"run": journey / "run", "root": journey, "new": journey / "new.npz", "bad": journey / "bad.npz",
             "noarr": journey / "noarr.npz", "o": o}
    rc, out, err = cli(capsys, *[a.format(**names) for a in argv])
    assert rc == (2 if message is None else 1)
    assert "Traceback" not in err
    if message is not None:
        assert len(err.strip().splitlines()) == 1 and err.startswith("graphvae: error: ") and message in err, err
    assert list(o.iterdir()) == []  # nothing written


def test_evaluation_methods_give_no_gradients():
    spec = graphvae.check_text(SPEC, "journey.gvae", "dsl")[0]
    model = graphvae.compile_spec(spec)
    x = torch.randn(5, 6)
    outputs = [model.log_marginal({"x": x}, samples=3), model.predict({"x": x}, "y"), model.predict({"x": x}, "s"),
               model.predict_probs({"x": x}, "y"), *model.encode({"x": x}).values(),
               *model.reconstruct({"x": x}).values(), *model.sample(4, given={"y": 2}).values(),
               *[t for params in model.posterior({"x": x}).values() for t in params.values()]]
    assert all(not t.requires_grad for t in outputs)
    loss = model.loss({"x": x})
    assert loss.requires_grad  # training is untouched


def test_class_probabilities_match_predict_when_y_follows_a_latent():
    """style_first: y | z, h in q, so q(y|x) averages over draws of z; its argmax is predict's."""
    spec = graphvae.load_spec("specs/style_first.gvae")
    torch.manual_seed(0)
    model = graphvae.compile_spec(spec).eval()
    x = torch.bernoulli(torch.full((6, 784), 0.3))
    torch.manual_seed(1)
    pred = model.predict({"x": x}, "y")
    torch.manual_seed(1)
    probs = model.predict_probs({"x": x}, "y")
    assert probs.shape == (6, 10) and torch.allclose(probs.sum(1), torch.ones(6))
    assert (probs.argmax(1) == pred).all()


def test_given_twice_and_non_finite_outputs(journey, capsys):
    rc, _, err = cli(capsys, "sample", journey / "run", "--format", "csv", "--n", 3, "--given", "y=2",
                     "--given", "z=0.5,-1", "--out", journey / "draws.csv")
    assert rc == 0, err
    lines = (journey / "draws.csv").read_text().splitlines()
    header = lines[0].split(",")
    row = dict(zip(header, lines[1].split(",")))
    assert row["y"] == "2" and float(row["z_0"]) == 0.5 and float(row["z_1"]) == -1.0
    run = graphvae.load_run(journey / "run")
    with torch.no_grad():
        next(iter(run.model.parameters())).fill_(float("nan"))
    with pytest.raises(graphvae.UserError, match="predict: y_prob is not finite|predict: s is not finite"):
        run.predict(str(journey / "new.npz"))
