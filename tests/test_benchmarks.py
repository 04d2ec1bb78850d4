"""The benchmark scripts still run: a one-epoch compiled-vs-hand-written comparison on digits."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import compare_m2  # noqa: E402


@pytest.mark.parametrize("text, seeds", [("0-3", [0, 1, 2, 3]), ("0,2,5", [0, 2, 5]), ("1-2,7", [1, 2, 7]), ("4", [4])])
def test_parse_seeds(text, seeds):
    assert compare_m2.parse_seeds(text) == seeds


def test_interval_of_paired_differences():
    mean, lo, hi = compare_m2.interval([1.0, 3.0])
    # mean 2, sd sqrt(2), se 1, t(0.975, 1) = 12.706
    assert mean == 2.0
    assert (lo, hi) == pytest.approx((2 - 12.7062, 2 + 12.7062), abs=1e-3)
    assert compare_m2.interval([5.0])[1:] == (-math.inf, math.inf)


def test_compare_runs_both_models_and_prints_the_table(tmp_path):
    spec = tmp_path / "binary_digits_m2.gvae"  # the hand-written M2 is a Bernoulli one
    spec.write_text(BN_M2.replace("mlp(16, 12, batchnorm = true)", "mlp(32)"))
    cmd = [sys.executable, str(ROOT / "benchmarks" / "compare_m2.py"), "--spec", str(spec),
           "--data", "digits", "--seeds", "0", "--epochs", "1", "--batch-size", "64", "--labelled-per-batch", "16",
           "--out", str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    hand = json.loads((tmp_path / "h0.json").read_text())
    assert hand["epochs"] == 1 and len(hand["val_error"]) == 1 and 0 <= hand["test_error_final"] <= 1
    assert (tmp_path / "c0" / "last.pt").exists()
    refused = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "handwritten_m2.py"), "--spec",
                              str(ROOT / "specs" / "digits_m2.gvae"), "--data", "digits"], capture_output=True, text=True)
    assert refused.returncode != 0 and "Bernoulli" in refused.stderr
    row = next(line for line in done.stdout.splitlines() if line.startswith("| 0 |"))
    assert row.count("%") == 4
    assert "compiled worse in" in done.stdout
    again = subprocess.run(cmd + ["--summary"], capture_output=True, text=True, timeout=300)  # reuses the runs
    assert again.returncode == 0 and row in again.stdout


def test_labelled_only_baselines_print_per_seed_and_mean(capsys):
    import baseline_labelled

    spec = str(ROOT / "specs" / "digits_m2.gvae")
    errors = baseline_labelled.baselines(spec, "digits", 30, seed=3)
    assert set(errors) == {"svm_rbf", "logistic_regression"} and all(0 <= e < 0.9 for e in errors.values())
    assert baseline_labelled.baselines(spec, "digits", 30, seed=3) == errors  # the seed fixes the subset
    assert baseline_labelled.main(["--spec", spec, "--labels", "30", "--seeds", "3-4"]) == 0
    out = capsys.readouterr().out
    assert out.count("| 3 |") == 1 and "svm_rbf: mean" in out and "over 2 seed(s)" in out


MNIST_DIR = ROOT.parent / "shared" / "data" / "mnist"


@pytest.mark.skipif(not (MNIST_DIR / "train-images-idx3-ubyte.gz").is_file(),
                    reason=f"MNIST IDX files not found in {MNIST_DIR}")
def test_compiled_m2_equals_the_benchmark_m2_on_an_mnist_batch(monkeypatch):
    """Same seed -> same initial weights; with the same noise the loss is equal and the gradients
    agree to float32 rounding, on a real training batch of the MNIST comparison."""
    import handwritten_m2
    import torch

    from graphvae.compile.compiler import compile_spec
    from graphvae.data import SemiSupervisedBatches, prepare_data
    from graphvae.spec.loader import load_spec

    torch.set_num_threads(1)
    spec = load_spec(str(ROOT / "specs" / "m2.gvae"))
    data = prepare_data(spec, data="mnist", data_dir=str(MNIST_DIR), validation=0.1, labels=100, seed=4)
    batch = next(iter(SemiSupervisedBatches(data.train, spec, data.labelled, batch_size=90, labelled_per_batch=10,
                                            generator=torch.Generator().manual_seed(4))))
    torch.manual_seed(4)
    hand = handwritten_m2.M2()
    torch.manual_seed(4)
    compiled = compile_spec(spec).set_data_size(len(data.train["x"]), len(data.labelled))
    for a, b in zip(compiled.parameters(), hand.parameters()):
        assert torch.equal(a, b)
    x, y = batch["x"].reshape(100, -1), batch["y"]
    n_l, n_u = int((y >= 0).sum()), int((y < 0).sum())
    torch.manual_seed(1)
    loss_c = compiled.loss({"x": batch["x"], "y": y})
    torch.manual_seed(1)  # the compiled model draws (K, S, B_u, Z) for unlabelled rows, then (S, B_l, Z)
    eps_u, eps_l = torch.randn(10, 1, n_u, 50), torch.randn(1, n_l, 50)
    queue = [eps_l[0], eps_u[:, 0].transpose(0, 1).reshape(n_u * 10, 50)]  # hand: labelled first, example-major
    monkeypatch.setattr(handwritten_m2.torch, "randn_like", lambda t: queue.pop(0).clone())
    loss_h = hand.loss(x, y, compiled.objective.alpha_for(100, n_l))  # 0.1 * N / N_l
    assert not queue
    assert float(loss_c.detach()) == pytest.approx(float(loss_h.detach()), rel=1e-6)
    for a, b in zip(torch.autograd.grad(loss_c, list(compiled.parameters())),
                    torch.autograd.grad(loss_h, list(hand.parameters()))):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


BN_M2 = """model bn_m2
x : observed   binary[64]
y : supervised categorical[10]
z : latent     real[8]
encoder {
  y | x    ~ Categorical(mlp(16, 12, batchnorm = true))
  z | x, y ~ Normal(mlp(16, 12, batchnorm = true))
}
decoder {
  z        ~ Normal(0, 1)
  y        ~ Categorical(uniform)
  x | y, z ~ Bernoulli(mlp(16, 12, batchnorm = true))
}
objective {
  y = enumerate
}
"""


@pytest.mark.parametrize("how", ["eager", "torch.compile"])
def test_compiled_m2_equals_the_benchmark_m2_with_batchnorm_on_digits(tmp_path, monkeypatch, how):
    """The hand-written M2 gains the recipe's options: two batch-normalised hidden layers and the
    classifier weight alpha N / N_l; with the same noise it computes the same loss and gradients,
    also as the trainer calls the compiled model under torch.compile (layout, no checks)."""
    import handwritten_m2
    import torch

    from graphvae.compile.compiler import compile_spec
    from graphvae.data import SemiSupervisedBatches, prepare_data
    from graphvae.spec.loader import load_spec

    path = tmp_path / "bn_m2.gvae"
    path.write_text(BN_M2)
    spec = load_spec(str(path))
    data = prepare_data(spec, data="digits", labels=50, seed=2)
    batch = next(iter(SemiSupervisedBatches(data.train, spec, data.labelled, batch_size=40, labelled_per_batch=-1,
                                            generator=torch.Generator().manual_seed(2))))
    torch.manual_seed(2)
    hand = handwritten_m2.m2_like(spec)
    torch.manual_seed(2)
    compiled = compile_spec(spec).set_data_size(len(data.train["x"]), len(data.labelled))
    assert [tuple(p.shape) for p in compiled.parameters()] == [tuple(p.shape) for p in hand.parameters()]
    for a, b in zip(compiled.parameters(), hand.parameters()):
        assert torch.equal(a, b)
    x, y = batch["x"].reshape(90, -1), batch["y"]
    n_l, n_u = int((y >= 0).sum()), int((y < 0).sum())
    assert (n_l, n_u) == (50, 40)
    if how == "eager":
        step = compiled.loss
    else:
        compiled.check_inputs = False
        whole = torch.compile(compiled.loss, fullgraph=True)
        step = lambda b: whole(b, layout=batch.layout)  # noqa: E731
    torch.manual_seed(1)
    loss_c = step({"x": batch["x"], "y": y})
    torch.manual_seed(1)
    eps_u, eps_l = torch.randn(10, 1, n_u, 8), torch.randn(1, n_l, 8)
    queue = [eps_l[0], eps_u[:, 0].transpose(0, 1).reshape(n_u * 10, 8)]
    monkeypatch.setattr(handwritten_m2.torch, "randn_like", lambda t: queue.pop(0).clone())
    loss_h = hand.loss(x, y, compiled.objective.alpha_for(90, n_l))
    assert not queue
    assert float(loss_c.detach()) == pytest.approx(float(loss_h.detach()), rel=1e-5)
    for a, b in zip(torch.autograd.grad(loss_c, list(compiled.parameters())),
                    torch.autograd.grad(loss_h, list(hand.parameters()))):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-5)


def test_semisupervised_benchmark_prints_runs_beside_their_baselines(tmp_path, capsys):
    import semisupervised

    spec = tmp_path / "small.gvae"
    spec.write_text(BN_M2.replace("binary[64]", "unit[64]").replace("Bernoulli(mlp", "ContinuousBernoulli(mlp"))
    argv = ["--spec", str(spec), "--seeds", "0", "--out", str(tmp_path / "out"), "--set", "epochs=1",
            "--curve", str(tmp_path / "curve.png")]
    assert semisupervised.main(argv) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("| 0 |"))
    assert row.count("%") == 3 and "mean ± sd over 1" in out
    assert (tmp_path / "out" / "s0" / "baseline" / "best.pt").exists() and (tmp_path / "curve.png").stat().st_size
    assert semisupervised.finished(tmp_path / "out" / "s0") and semisupervised.jobs_for(0, semisupervised_args(
        tmp_path)) == []


def semisupervised_args(tmp_path):
    from types import SimpleNamespace

    return SimpleNamespace(out=str(tmp_path / "out"), set=[], spec="")


def test_make_tabular_is_deterministic_and_linearly_separable():
    import make_tabular
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    a, b = make_tabular.make(seed=3), make_tabular.make(seed=3)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert a["x"].shape == (2000, 20) and (a["y"] >= 0).sum() == 100 and (a["test_y"] >= 0).all()
    fit = LogisticRegression(max_iter=2000).fit(a["test_x"], a["test_y"])
    assert (fit.predict(a["test_x"]) == a["test_y"]).mean() > 0.99


def test_bench_ddp_prints_one_process_beside_two(tmp_path):
    """The smoke run of benchmarks/bench_ddp.py: three contenders, a ratio each, the all_reduce line."""
    import os

    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_ddp.py"), "--sizes", "digits",
                          "--repeats", "1", "--epochs", "1"], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    for name in ("1 process", "1 x torchrun", "2 x torchrun"):
        row = next(line for line in lines if line.strip().startswith(name))
        assert row.rstrip().endswith("x") and float(row.split()[-1].rstrip("x")) > 0
    assert any("all_reduce of" in line and "float32 gradients (gloo)" in line for line in lines)


@pytest.mark.parametrize("text, seeds", [("0", [0]), ("0-2", [0, 1, 2]), ("1,4-5", [1, 4, 5])])
def test_shaded_shapes_parse_seeds(text, seeds):
    import shaded_shapes

    assert shaded_shapes.parse_seeds(text) == seeds


def test_shaded_shapes_small_prints_both_models_side_by_side(tmp_path):
    """--small: the data, the spec, its labelled-only baseline and every measure, in well under a minute."""
    cmd = [sys.executable, str(ROOT / "benchmarks" / "shaded_shapes.py"), "--small", "--seeds", "0-1",
           "--out", str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert out.startswith("command: shaded_shapes.py --small --seeds 0-1") and "hardware: " in out
    assert "8 labels (2 per identity)" in out
    for label in ("identity error (%)", "light[0] azimuth RMSE (deg)", "light[1] elevation RMSE (deg)", "MIG",
                  "DCI disentanglement", "DCI completeness", "DCI informativeness"):
        row = next(line for line in out.splitlines() if line.startswith(f"| {label}"))
        assert row.count("±") == 2  # seed mean ± sd, for the model and for its baseline
    seed0 = json.loads((tmp_path / "seed0.json").read_text())
    assert set(seed0) == {"model", "baseline", "seconds"}
    for who in ("model", "baseline"):
        assert 0 <= seed0[who]["error/identity"] <= 1 and 0 <= seed0[who]["mig"] <= 1
        assert seed0[who]["rmse/light[0]"] > 0 and seed0[who]["rmse/light[1]"] > 0
    assert (tmp_path / "run_seed1" / "baseline" / "best.pt").is_file()


@pytest.mark.parametrize("argv, message", [(["--seeds", "x"], "--seeds 'x'"), (["--threads", "0"], "at least 1"),
                                           (["--epochs", "0"], "at least 1")])
def test_shaded_shapes_bad_flags(tmp_path, argv, message):
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "shaded_shapes.py"), "--out", str(tmp_path), *argv],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


@pytest.mark.skipif(not (MNIST_DIR / "train-images-idx3-ubyte.gz").is_file(),
                    reason=f"MNIST IDX files not found in {MNIST_DIR}")
def test_multi_mnist_small_prints_the_model_beside_its_baseline(tmp_path):
    """--small: 600 canvases of MNIST digits, specs/multi_mnist.gvae and its labelled-only baseline for
    an epoch, and the count's, each slot's digit and position errors of both."""
    cmd = [sys.executable, str(ROOT / "benchmarks" / "multi_mnist.py"), "--small", "--out", str(tmp_path),
           "--data-dir", str(MNIST_DIR)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert out.startswith("command: multi_mnist.py --small") and "100 labelled canvases" in out
    for label in ("count error (%)", "digit error, slot 2 (%)", "position RMSE, slot 0 (pixels)"):
        row = next(line for line in out.splitlines() if line.startswith(f"| {label}"))
        assert len([cell for cell in row.split("|") if cell.strip()]) == 3  # label, model, baseline
    seed0 = json.loads((tmp_path / "seed0.json").read_text())
    for who in ("model", "baseline"):
        assert 0 <= seed0[who]["error/count"] <= 1 and 0 <= seed0[who]["error/digits_1"] <= 1
        assert seed0[who]["error/positions_0"] > 0


@pytest.mark.parametrize("argv, message", [(["--seeds", "x"], "--seeds 'x'"), (["--labels", "0"], "at least 1")])
def test_multi_mnist_bad_flags(tmp_path, argv, message):
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "multi_mnist.py"), "--out", str(tmp_path), *argv],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr
