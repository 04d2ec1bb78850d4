"""Training: run folder contents, exact resume, Ctrl-C, spec mismatch, non-finite loss, CLI exit codes.

Tiny model (z of 2 dims, 16 hidden units) on scikit-learn's bundled digits, a few steps.
"""

from __future__ import annotations

import json
import signal

import pytest
import torch
from conftest import tiny_m2

from graphvae.cli import main
from graphvae.errors import UserError
from graphvae.spec.settings import TrainConfig
from graphvae.train import config as trainconfig
from graphvae.train.checkpoint import load_checkpoint
from graphvae.train.loop import NonFiniteLoss, train
from graphvae.train.optim import lr_factor
from graphvae.train.runfolder import RunFolder, sha256_text

torch.set_num_threads(1)

def spec_text(z: int) -> str:
    return tiny_m2(z, objective="alpha = 0.1\n  y     = enumerate", train="""  data       = digits
  epochs     = 2
  batch_size = 300
  labels     = 50
  labelled_per_batch = 20""")
TIMING = ("epoch_seconds", "steps_per_s", "examples_per_s", "val_seconds", "checkpoint_seconds")


@pytest.fixture
def spec_path(tmp_path):
    path = tmp_path / "tiny.gvae"
    path.write_text(spec_text(z=2))
    return path


def _cfg(spec_path, **over) -> TrainConfig:
    from graphvae.spec.loader import load_spec_file

    return trainconfig.resolve(load_spec_file(spec_path)[0], {"device": "cpu", **over})


def _untimed(rows):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def _weights(run) -> dict:
    return load_checkpoint(RunFolder(run).checkpoint("last"))["model"]


def test_run_folder_contents(tmp_path, spec_path):
    cfg = _cfg(spec_path, epochs=1)
    res = train(spec_path, cfg, tmp_path / "run", progress=False, log=lambda *_: None)
    run = RunFolder(res.run)
    text = spec_path.read_text()
    assert (run.path / "spec.gvae").read_text() == text
    assert run.sha_path.read_text().strip() == sha256_text(text)
    assert trainconfig.from_dict(json.loads(run.config_path.read_text())) == cfg
    labelled = json.loads(run.labelled_path.read_text())
    assert labelled["count"] == 50 == len(labelled["indices"])
    rows = run.read_metrics()
    assert len(rows) == 1 and rows[0]["epoch"] == 1
    for key in ("train/loss", "train/elbo", "val/error/y", "val/elbo", "steps_per_s", "examples_per_s", "lr"):
        assert key in rows[0], key
    assert 0 <= rows[0]["val/error/y"] <= 1
    state = load_checkpoint(run.checkpoint("best"))
    assert state["spec"] == text and state["epoch"] == 1 and state["step"] == res.step > 0
    assert set(state["rng"]) >= {"torch", "numpy", "python", "batches"}


@pytest.mark.parametrize("first_leg", ["mid_epoch", "epoch_boundary"])
def test_resume_equals_uninterrupted(tmp_path, spec_path, first_leg):
    cfg = _cfg(spec_path)
    quiet = dict(progress=False, log=lambda *_: None)
    straight = train(spec_path, cfg, tmp_path / "straight", **quiet)
    per_epoch = straight.step // cfg.epochs
    stop_at = per_epoch // 2 + 1 if first_leg == "mid_epoch" else per_epoch
    part = train(spec_path, cfg, tmp_path / "resumed", max_steps=stop_at, **quiet)
    assert part.interrupted and part.step == stop_at
    resumed = train(None, None, tmp_path / "resumed", resume=True, **quiet)
    assert resumed.step == straight.step and not resumed.interrupted
    a, b = _weights(straight.run), _weights(resumed.run)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert _untimed(straight.metrics) == _untimed(resumed.metrics)


@pytest.mark.parametrize("schedule, step, total, factor", [
    ("constant", 7, 10, 1.0),
    ("cosine", 0, 10, 1.0), ("cosine", 5, 10, 0.5), ("cosine", 10, 10, 0.0), ("cosine", 12, 10, 0.0),
    ("step", 49, 100, 1.0), ("step", 50, 100, 0.1), ("step", 74, 100, 0.1), ("step", 75, 100, 0.01),
    ("exponential", 0, 10, 1.0), ("exponential", 5, 10, 0.1), ("exponential", 10, 10, 0.01),
])
def test_lr_factor(schedule, step, total, factor):
    assert lr_factor(schedule, step, total) == pytest.approx(factor, abs=1e-12)


def test_schedule_in_a_run_and_extended_on_resume(tmp_path, spec_path):
    logs = []
    quiet = dict(progress=False, log=logs.append)
    cfg = _cfg(spec_path, schedule="cosine", lr=0.01)
    first = train(spec_path, cfg, tmp_path / "run", **quiet)
    per_epoch = first.step // 2
    assert [r["lr"] for r in first.metrics] == pytest.approx([0.01 * lr_factor("cosine", per_epoch, 2 * per_epoch),
                                                               0.0], abs=1e-12)
    longer = train(None, trainconfig.resume_overrides(cfg, {"epochs": 4}), tmp_path / "run", resume=True, **quiet)
    assert any("now spans 4 epochs (was 2)" in line for line in logs)
    assert [r["lr"] for r in longer.metrics[2:]] == pytest.approx(
        [0.01 * lr_factor("cosine", e * per_epoch, 4 * per_epoch) for e in (3, 4)], abs=1e-12)


def test_same_seed_same_run_different_seed_differs(tmp_path, spec_path):
    quiet = dict(progress=False, log=lambda *_: None, max_steps=3)
    runs = [train(spec_path, _cfg(spec_path, seed=s), tmp_path / f"r{i}", **quiet) for i, s in enumerate([1, 1, 2])]
    w = [_weights(r.run) for r in runs]
    key = next(iter(w[0]))
    assert torch.equal(w[0][key], w[1][key])
    assert not torch.equal(w[0][key], w[2][key])


def test_ctrl_c_saves_and_resume_hint(tmp_path, spec_path, monkeypatch, capsys):
    from graphvae.compile.model import CompiledModel

    calls = {"n": 0}
    original = CompiledModel.loss

    def loss_then_sigint(self, batch, terms=False, layout=None):
        calls["n"] += 1
        if calls["n"] == 3:
            signal.raise_signal(signal.SIGINT)  # what Ctrl-C delivers
        return original(self, batch, terms=terms, layout=layout)

    monkeypatch.setattr(CompiledModel, "loss", loss_then_sigint)
    before = signal.getsignal(signal.SIGINT)  # default_int_handler, or SIG_IGN under a shell's background job
    code = main(["train", str(spec_path), "--out", str(tmp_path / "run"), "--no-progress", "--device", "cpu"])
    out = capsys.readouterr()
    assert code == 130
    assert f"graphvae train --resume {tmp_path / 'run'}" in out.out + out.err
    state = load_checkpoint(tmp_path / "run" / "last.pt")
    assert state["step"] == 3 and state["epoch"] == 0
    assert signal.getsignal(signal.SIGINT) is before  # handler restored


def test_mismatched_spec_is_refused(tmp_path, spec_path):
    train(spec_path, _cfg(spec_path), tmp_path / "run", progress=False, max_steps=2, log=lambda *_: None)
    other = tmp_path / "other.gvae"
    other.write_text(spec_text(z=3))
    with pytest.raises(UserError, match=r"z: latent real\[2\] in the run, latent real\[3\] in the spec"):
        train(other, None, tmp_path / "run", resume=True, progress=False, log=lambda *_: None)


@pytest.mark.parametrize("command", ["train", "eval"])
def test_checkpoint_of_another_spec_in_the_run_folder_is_refused(tmp_path, spec_path, capsys, command):
    quiet = dict(progress=False, max_steps=2, log=lambda *_: None)
    train(spec_path, _cfg(spec_path), tmp_path / "run", **quiet)
    other = tmp_path / "other.gvae"
    other.write_text(spec_text(z=3))
    train(other, _cfg(other), tmp_path / "other", **quiet)
    (tmp_path / "run" / "last.pt").write_bytes((tmp_path / "other" / "last.pt").read_bytes())
    argv = ["train", "--resume"] if command == "train" else ["eval", "--checkpoint", "last"]
    assert main(argv + [str(tmp_path / "run"), "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert "was trained on a different spec" in err
    assert "z: latent real[3] in the run, latent real[2] in the spec" in err


def test_non_finite_loss_names_term_and_keeps_checkpoint(tmp_path, spec_path, monkeypatch):
    from graphvae.compile.model import CompiledModel

    cfg = _cfg(spec_path)
    first = train(spec_path, _cfg(spec_path, epochs=1), tmp_path / "probe", progress=False, log=lambda *_: None)
    per_epoch = first.step
    original = CompiledModel.loss
    calls = {"n": 0}

    def poisoned(self, batch, terms=False, layout=None):
        loss, parts = original(self, batch, terms=True, layout=layout)
        if self.training:
            calls["n"] += 1
            if calls["n"] == per_epoch + 2:  # in the second epoch, after last.pt of the first
                parts = dict(parts, **{"kl/z": parts["kl/z"] * float("nan")})
                loss = loss * float("nan")
        return (loss, parts) if terms else loss

    monkeypatch.setattr(CompiledModel, "loss", poisoned)
    run = tmp_path / "run"
    with pytest.raises(NonFiniteLoss, match=r"term 'kl/z' is nan.*last good checkpoint .*last\.pt is kept"):
        train(spec_path, cfg, run, progress=False, log=lambda *_: None)
    state = load_checkpoint(run / "last.pt")
    assert state["epoch"] == 1 and state["step"] == per_epoch


@pytest.mark.parametrize("argv, code, message", [
    (["train", "{tmp}/missing.gvae"], 1, "no such spec file"),
    (["train", "{spec}", "--set", "lr=abc"], 1, "lr must be a number"),
    (["train", "{spec}", "--set", "epoch=3"], 1, "did you mean 'epochs'"),
    (["train", "{spec}", "--labelled-per-batch", "-5"], 1, "labelled_per_batch must be a count, or -1 for all"),
    (["train", "--resume", "{tmp}/nowhere"], 1, "no such run folder"),
    (["train", "{spec}", "--epochs", "1", "--out", "{tmp}/ok"], 0, None),
])
def test_cli_exit_codes(tmp_path, spec_path, capsys, argv, code, message):
    argv = [a.format(tmp=tmp_path, spec=spec_path) for a in argv] + ["--no-progress", "--device", "cpu"]
    assert main(argv) == code
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    if message:
        assert message in captured.err
    else:
        assert (tmp_path / "ok" / "best.pt").exists() and "graphvae eval" in captured.out and "test (" in captured.out


def test_cli_refuses_to_overwrite_and_resume_cannot_change_seed(tmp_path, spec_path, capsys):
    base = ["--no-progress", "--device", "cpu"]
    out = str(tmp_path / "run")
    assert main(["train", str(spec_path), "--epochs", "1", "--out", out] + base) == 0
    assert main(["train", str(spec_path), "--epochs", "1", "--out", out] + base) == 1
    assert "already holds a run" in capsys.readouterr().err
    assert main(["train", "--resume", out, "--seed", "7"] + base) == 1
    assert "cannot change seed" in capsys.readouterr().err
    assert main(["train", "--resume", out, "--epochs", "2"] + base) == 0  # extending a finished run
    assert [r["epoch"] for r in RunFolder(out).read_metrics()] == [1, 2]


def test_corrupt_checkpoint_resume_is_one_line(tmp_path, spec_path, capsys):
    out = tmp_path / "run"
    train(spec_path, _cfg(spec_path), out, progress=False, max_steps=2, log=lambda *_: None)
    (out / "last.pt").write_bytes((out / "last.pt").read_bytes()[:200])
    assert main(["train", "--resume", str(out), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "not a readable checkpoint" in err and len(err.strip().splitlines()) == 1


def test_data_error_leaves_no_run_folder(tmp_path, capsys):
    """A spec that does not fit the data fails before anything is written."""
    bad = tmp_path / "wide.gvae"
    bad.write_text(spec_text(z=2).replace("binary[64]", "binary[784]"))
    out = tmp_path / "run"
    assert main(["train", str(bad), "--out", str(out), "--no-progress", "--device", "cpu"]) == 1
    assert "specs/digits_m2.gvae" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("argv", [["train"], ["train", "--epochs", "2"], ["train", "--epochs", "two", "x.gvae"]])
def test_train_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "usage:" in err and "Traceback" not in err


# -- the labelled-only baseline ---------------------------------------------------------------------
def test_baseline_run_folder_steps_and_report(tmp_path, spec_path, capsys):
    run = tmp_path / "run"
    assert main(["train", str(spec_path), "--epochs", "1", "--out", str(run), "--no-progress", "--device", "cpu"]) == 0
    capsys.readouterr()
    assert main(["baseline", str(run), "--no-progress", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    base = RunFolder(run).baseline
    state, base_state = load_checkpoint(run / "last.pt"), load_checkpoint(base.checkpoint("last"))
    assert base_state["step"] == state["step"] and base_state["config"]["labelled_only"] is True
    assert json.loads((base.path / "labelled.json").read_text()) == json.loads((run / "labelled.json").read_text())
    assert "labelled-only baseline" in out and "the unlabelled data gain" in out
    assert main(["eval", str(run), "-k", "0"]) == 0
    assert "the unlabelled data gain" in capsys.readouterr().out
    assert main(["baseline", str(run), "--no-progress", "--device", "cpu"]) == 0  # finished: nothing more to train
    assert load_checkpoint(base.checkpoint("last"))["step"] == state["step"]
    assert main(["baseline", str(base.path), "--no-progress"]) == 1
    assert "is itself a labelled-only run" in capsys.readouterr().err


def test_train_with_baseline_flag(tmp_path, spec_path, capsys):
    run = tmp_path / "run"
    argv = ["train", str(spec_path), "--epochs", "1", "--out", str(run), "--no-progress", "--device", "cpu",
            "--baseline"]
    assert main(argv) == 0
    assert "the unlabelled data gain" in capsys.readouterr().out and (run / "baseline" / "best.pt").exists()


def test_an_older_checkpoint_is_evaluated_not_resumed(tmp_path, spec_path, capsys):
    run = tmp_path / "run"
    assert main(["train", str(spec_path), "--epochs", "1", "--out", str(run), "--no-progress", "--device", "cpu"]) == 0
    state = load_checkpoint(run / "last.pt")
    state["format"] = 1
    del state["digest"], state["files"]  # older formats had neither
    torch.save(state, run / "last.pt")
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--epochs", "2", "--no-progress"]) == 1
    assert "checkpoint format 1" in capsys.readouterr().err
    assert main(["eval", str(run), "-k", "0", "--checkpoint", "last"]) == 0


@pytest.mark.parametrize("threads, expected", [(1, 1), (2, 2), (0, None)])
def test_the_threads_setting_is_used_and_said(tmp_path, spec_path, threads, expected):
    before = torch.get_num_threads()
    lines = []
    try:
        torch.set_num_threads(3)  # what torch would pick by itself on some machine
        train(spec_path, _cfg(spec_path, epochs=1, threads=threads), tmp_path / "run", progress=False,
              log=lines.append)
        used = torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
    assert used == (expected or 3)  # 0 leaves torch's own choice alone
    assert f"device cpu, {used} thread{'s' if used != 1 else ''}; " in lines[0]
    assert json.loads((tmp_path / "run" / "config.json").read_text())["threads"] == threads
