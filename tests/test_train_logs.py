"""What training says: the settings line, the epoch line's units, no progress-bar frames off a
terminal, a finished run resumed, train --help's defaults, and TensorBoard events.

Tiny models (the digits M2 of conftest, and a mixed categorical + continuous model on a small
generated .npz), one or two epochs of a few steps each.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from conftest import tiny_m2

from graphvae.cli import main
from graphvae.cli.parser import build_parser
from graphvae.spec.settings import TrainConfig
from graphvae.train import config as trainconfig
from graphvae.train import reporting
from graphvae.train.loop import train
from graphvae.train.runfolder import RunFolder

torch.set_num_threads(1)

SPEC = tiny_m2(2, objective="alpha = 0.1\n  y     = enumerate", train="""  data       = digits
  epochs     = 1
  batch_size = 300
  labels     = 50
  labelled_per_batch = 20""")

# a categorical and a continuous supervised variable, each labelled for some rows of mix.npz
MIXED = """model mixed
x : observed   real[6]
y : supervised categorical[3]
r : supervised real
z : latent     real[2]
encoder {
  y | x       ~ Categorical(mlp(8))
  r | x       ~ Normal(mlp(8))
  z | x, y, r ~ Normal(mlp(8))
}
decoder {
  z           ~ Normal(0, 1)
  y           ~ Categorical(uniform)
  r           ~ Normal(0, 1)
  x | y, z, r ~ Normal(mlp(8))
}
objective {
  y = enumerate
}
"""


@pytest.fixture
def spec_path(tmp_path):
    path = tmp_path / "tiny.gvae"
    path.write_text(SPEC)
    return path


def _cfg(spec_path, **over) -> TrainConfig:
    from graphvae.spec.loader import load_spec_file

    return trainconfig.resolve(load_spec_file(spec_path)[0], {"device": "cpu", **over})


def _mixed_data(tmp_path):
    rng = np.random.default_rng(0)
    n = 300
    y, r = rng.integers(0, 3, n), rng.normal(size=n).astype(np.float32)
    x = (rng.normal(size=(n, 6)) + y[:, None] + r[:, None]).astype(np.float32)
    shown_y, shown_r = np.full(n, -1), np.full(n, np.nan, dtype=np.float32)
    shown_y[:60], shown_r[:80] = y[:60], r[:80]
    np.savez(tmp_path / "mix.npz", x=x, y=shown_y, r=shown_r)
    (tmp_path / "mixed.gvae").write_text(MIXED)
    return tmp_path / "mixed.gvae", tmp_path / "mix.npz"


# -- the epoch line: each supervised variable's metric in its unit ---------------------------------
ROW = {"epoch": 3, "train/loss": 87.5123, "val/elbo": -90.1144, "val/error/y": 0.123, "val/error/r": 0.83721,
       "steps_per_s": 310.24}


@pytest.mark.parametrize("row, domains, line", [
    (ROW, {"y": "categorical", "r": "real"},
     "epoch 3/20  loss 87.512  val elbo -90.114  val y error 12.30%  val r RMSE 0.8372  310.2 steps/s"),
    (ROW, {"y": "categorical", "r": "positive"},
     "epoch 3/20  loss 87.512  val elbo -90.114  val y error 12.30%  val r RMSE 0.8372  310.2 steps/s"),
    ({**ROW, "val/error/r": 1.0202}, {"y": "categorical", "r": "real"},  # was "val error/r 102.02%"
     "epoch 3/20  loss 87.512  val elbo -90.114  val y error 12.30%  val r RMSE 1.0202  310.2 steps/s"),
    ({k: v for k, v in ROW.items() if not k.startswith("val/")}, {}, "epoch 3/20  loss 87.512  310.2 steps/s"),
])
def test_epoch_line(row, domains, line):
    assert reporting.epoch_line(row, 20, domains) == line


@pytest.mark.parametrize("domains, postfix", [
    ({"y": "categorical", "r": "real"}, {"val_y": "12.3%", "val_r": "0.837 RMSE"}),
    (None, {"val_y": "12.3%", "val_r": "83.7%"}),  # no domains given: each read as a classification error
])
def test_val_postfix(domains, postfix):
    assert reporting.val_postfix(ROW, domains) == postfix


# -- the settings line ------------------------------------------------------------------------------
@pytest.mark.parametrize("changes, line", [
    ({}, "settings: all at their defaults (every one in RUN/config.json)"),
    ({"epochs": 2, "lr": 0.01, "device": "cpu", "flush_denormal": False, "data_dir": "", "labels": -1},
     "settings: labels=-1 epochs=2 lr=0.01 device=cpu flush_denormal=false (the rest at their defaults; every one "
     "in RUN/config.json)"),
])
def test_config_line(changes, line):
    import dataclasses

    assert reporting.config_line(dataclasses.replace(TrainConfig(), **changes), "RUN/config.json") == line


# -- a run's output off a terminal, and on one -------------------------------------------------------
def test_a_run_says_its_settings_and_writes_no_bar_frames_off_a_terminal(tmp_path, spec_path, capsys):
    lines = []
    train(spec_path, _cfg(spec_path, epochs=2), tmp_path / "run", progress=True, log=lines.append)
    captured = capsys.readouterr()
    assert "\r" not in captured.out + captured.err + "".join(lines)  # stderr is no terminal under pytest
    assert lines[1] == (f"settings: labels=50 epochs=2 batch_size=300 labelled_per_batch=20 device=cpu "
                        f"(the rest at their defaults; every one in {tmp_path / 'run' / 'config.json'})")
    assert [line.split("  ")[0] for line in lines[2:]] == ["epoch 1/2", "epoch 2/2"]
    assert " val y error " in lines[2] and lines[2].endswith(" steps/s")


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_on_a_terminal_the_bar_is_drawn(tmp_path, spec_path, monkeypatch):
    term = _Terminal()
    monkeypatch.setattr("sys.stderr", term)
    train(spec_path, _cfg(spec_path), tmp_path / "run", progress=True, log=lambda *_: None)
    assert "\r" in term.getvalue() and "step/s" in term.getvalue()


@pytest.mark.parametrize("progress, stream, drawn", [
    (True, _Terminal(), True), (False, _Terminal(), False), (True, io.StringIO(), False), (True, None, False),
])
def test_wants_bar(progress, stream, drawn):
    assert reporting.wants_bar(progress, stream) is drawn


def test_continuous_supervised_variable_reports_rmse_each_epoch(tmp_path, capsys):
    spec, data = _mixed_data(tmp_path)
    run = tmp_path / "run"
    assert main(["train", str(spec), "--data", str(data), "--epochs", "1", "--batch-size", "100", "--out", str(run),
                 "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    epoch = next(line for line in out.splitlines() if line.startswith("epoch 1/1"))
    assert " val y error " in epoch and "%" in epoch.split(" val y error ")[1].split()[0]
    rmse = float(epoch.split(" val r RMSE ")[1].split()[0])
    assert rmse == pytest.approx(RunFolder(run).read_metrics()[0]["val/error/r"], abs=1e-4)
    assert "error/r" not in out and " RMSE" in out.splitlines()[-2]  # the test report says RMSE too


def test_resuming_a_finished_run_says_so(tmp_path, spec_path, capsys):
    run = tmp_path / "run"
    flags = ["--no-progress", "--device", "cpu"]
    assert main(["train", str(spec_path), "--out", str(run)] + flags) == 0
    capsys.readouterr()
    assert main(["train", "--resume", str(run)] + flags) == 0
    out = capsys.readouterr().out
    steps = RunFolder(run).read_metrics()[-1]["step"]
    assert "epoch 2/1" not in out
    assert out.splitlines()[0] == (f"{run} has already finished: 1 epoch trained (1 planned, {steps} steps), nothing "
                                   f"more to train; to train it longer: graphvae train --resume {run} --epochs N (N > 1)")
    assert [r["epoch"] for r in RunFolder(run).read_metrics()] == [1]


# -- train --help -----------------------------------------------------------------------------------
@pytest.mark.parametrize("flag, default", [("--epochs", "20"), ("--lr", "0.003"), ("--seed", "0"),
                                           ("--batch-size", "100"), ("--data", "'digits'")])
def test_train_help_shows_the_defaults(flag, default):
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    action = next(a for a in sub.choices["train"]._actions if flag in a.option_strings)
    assert action.help.endswith(f"(default: {default}, unless the spec's train block sets it)")


def test_train_help_text(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--epochs EPOCHS passes over the unlabelled training set; at least 1 (default: 20, unless" in text


# -- TensorBoard ------------------------------------------------------------------------------------
def test_each_epoch_goes_to_the_tensorboard_writer(tmp_path, spec_path, monkeypatch):
    """Without TensorBoard installed too: the trainer hands every epoch's numbers to the writer it gets."""
    class Writer:
        scalars, closed = [], False

        def add_scalar(self, key, value, step):
            self.scalars.append((key, step))

        def close(self):
            Writer.closed = True

    monkeypatch.setattr(reporting, "tensorboard", lambda folder: Writer())
    train(spec_path, _cfg(spec_path, epochs=2), tmp_path / "run", progress=False, log=lambda *_: None)
    assert {("train/loss", 1), ("val/error/y", 1), ("val/elbo", 2), ("lr", 2)} <= set(Writer.scalars)
    assert ("epoch", 1) not in Writer.scalars and Writer.closed


def test_tensorboard_events_are_written_when_it_is_installed(tmp_path, spec_path):
    pytest.importorskip("tensorboard", reason="TensorBoard is not installed (pip install graphvae[tensorboard]); "
                                              "the run folder gets no tensorboard/ events without it")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(spec_path, _cfg(spec_path, epochs=2), tmp_path / "run", progress=False, log=lambda *_: None)
    events = RunFolder(tmp_path / "run").tensorboard_dir
    assert list(events.glob("events.out.tfevents.*"))
    acc = EventAccumulator(str(events))
    acc.Reload()
    assert [e.step for e in acc.Scalars("train/loss")] == [1, 2]
    assert {"val/elbo", "val/error/y", "lr"} <= set(acc.Tags()["scalars"])


def test_the_tensorboard_extra_is_declared():
    import tomllib
    from pathlib import Path

    project = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())["project"]
    assert any(dep.startswith("tensorboard") for dep in project["optional-dependencies"]["tensorboard"])
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert "graphvae[tensorboard]" in readme
