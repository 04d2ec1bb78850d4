"""The training step never waits for the device: the loss and its terms are summed there and the
host looks only every LOG_EVERY steps, at an epoch's end and before a checkpoint; a non-finite step
is still named exactly, and no checkpoint follows it.  Also: what validation and checkpoints cost
(metrics.jsonl), and compile = true's failure path.

Tiny M2 on the bundled digits: 13 steps an epoch (batch_size 100).
"""

from __future__ import annotations

import math
import sys

import pytest
import torch
from conftest import tiny_m2

from graphvae.cli import main
from graphvae.compile.model import CompiledModel
from graphvae.spec.loader import load_spec_file
from graphvae.train import config as trainconfig
from graphvae.train import compiling, loop
from graphvae.train.checkpoint import load_checkpoint
from graphvae.train.loop import LOG_EVERY, NonFiniteLoss, train

torch.set_num_threads(1)
QUIET = dict(progress=False, log=lambda *_: None)
ORIGINAL = CompiledModel.loss


@pytest.fixture
def spec_path(tmp_path):
    path = tmp_path / "tiny.gvae"
    path.write_text(tiny_m2(2, train="""  data = digits
  epochs = 2
  batch_size = 100
  labels = 50
  labelled_per_batch = 20"""))
    return path


def _cfg(spec_path, **over):
    return trainconfig.resolve(load_spec_file(spec_path)[0], {"device": "cpu", **over})


def _wrap(monkeypatch, before=None, after=None):
    """CompiledModel.loss with hooks around the training calls: ``before(model, n)`` and
    ``after(n, loss, terms) -> (loss, terms)``, ``n`` counting training calls from 1."""
    calls = {"n": 0}

    def loss(self, batch, terms=False, layout=None):
        if not self.training:
            return ORIGINAL(self, batch, terms=terms)
        calls["n"] += 1
        if before:
            before(self, calls["n"])
        assert layout is not None  # the trainer passes every batch's layout
        out, parts = ORIGINAL(self, batch, terms=True, layout=layout)
        if after:
            out, parts = after(calls["n"], out, parts)
        return (out, parts) if terms else out

    monkeypatch.setattr(CompiledModel, "loss", loss)
    return calls


def test_the_sums_are_the_host_sums_of_every_steps_floats(tmp_path, spec_path, monkeypatch):
    """The epoch means in metrics.jsonl are exactly what adding each step's floats on the host gives."""
    steps = []

    def record(n, out, parts):
        steps.append(dict(zip(["loss", *parts], torch.stack([out.detach(), *(t.detach().float().reshape(())
                                                                            for t in parts.values())]).tolist())))
        return out, parts

    _wrap(monkeypatch, after=record)
    res = train(spec_path, _cfg(spec_path), tmp_path / "run", **QUIET)
    per_epoch = res.step // 2
    for epoch, row in enumerate(res.metrics):
        sums: dict[str, float] = {}
        for values in steps[epoch * per_epoch:(epoch + 1) * per_epoch]:
            for k, v in values.items():
                sums[k] = sums.get(k, 0.0) + v
        assert {k: row[f"train/{k}"] for k in sums} == {k: s / per_epoch for k, s in sums.items()}


def test_the_host_looks_every_log_every_steps_and_at_the_epochs_end(tmp_path, spec_path, monkeypatch):
    looks = []
    real = loop._DeviceSums.sync

    def sync(self, run, *rest):
        if self.pending:
            looks.append(run.tally.step)
        return real(self, run, *rest)

    monkeypatch.setattr(loop._DeviceSums, "sync", sync)
    res = train(spec_path, _cfg(spec_path), tmp_path / "run", **QUIET)
    per_epoch = res.step // 2
    expected = sorted({*range(LOG_EVERY, res.step + 1, LOG_EVERY), per_epoch, 2 * per_epoch})
    assert per_epoch == 13 and looks == expected


def test_a_stop_mid_epoch_looks_before_its_checkpoint(tmp_path, spec_path):
    """max_steps = 7 (before the first regular look): last.pt holds the sums of those 7 steps."""
    res = train(spec_path, _cfg(spec_path), tmp_path / "run", max_steps=7, **QUIET)
    extra = load_checkpoint(tmp_path / "run" / "last.pt")["extra"]
    assert res.interrupted and extra["epoch_steps"] == 7 and set(extra["sums"]) >= {"loss", "elbo"}
    assert all(isinstance(v, float) and math.isfinite(v) for v in extra["sums"].values())


def _host_reads(monkeypatch, where: tuple[str, ...]):
    """Record every read of a tensor's value on the host (item, tolist, bool, float, int) made by
    code in ``where`` (graphvae's folders), while a step runs."""
    seen, active = [], {"on": False}

    def watch(name):
        real = getattr(torch.Tensor, name)

        def read(self, *args, **kwargs):
            if active["on"]:
                caller = sys._getframe(1).f_code.co_filename.replace("\\", "/")
                if any(f"/graphvae/{w}/" in caller for w in where):
                    seen.append((name, caller))
            return real(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, read)

    for name in ("item", "tolist", "__bool__", "__float__", "__int__", "__index__"):
        watch(name)
    real_step = loop._step

    def step(run, batch):
        active["on"] = True
        try:
            return real_step(run, batch)
        finally:
            active["on"] = False

    monkeypatch.setattr(loop, "_step", step)
    return seen


def test_the_trainers_step_reads_nothing_on_the_host(tmp_path, spec_path, monkeypatch):
    seen = _host_reads(monkeypatch, ("train", "data"))
    train(spec_path, _cfg(spec_path, epochs=1), tmp_path / "run", **QUIET)
    assert seen == []


def test_with_the_layout_the_models_step_reads_nothing_on_the_host(tmp_path, spec_path, monkeypatch):
    seen = _host_reads(monkeypatch, ("compile",))
    train(spec_path, _cfg(spec_path, epochs=1), tmp_path / "run", **QUIET)
    assert seen == []


@pytest.mark.parametrize("bad_step", [3, 14])
def test_a_non_finite_step_is_named_exactly_and_no_checkpoint_follows_it(tmp_path, spec_path, monkeypatch,
                                                                         bad_step):
    """NaN from step 3 (caught at step 10) or step 14, the first of epoch 2 (caught at step 20):
    the message names that step and epoch, and last.pt is epoch 1's, untouched."""
    straight = train(spec_path, _cfg(spec_path, epochs=1), tmp_path / "epoch1", **QUIET)
    kept = load_checkpoint(tmp_path / "epoch1" / "last.pt")["model"]

    def poison(n, out, parts):
        if n >= bad_step:
            parts = dict(parts, **{"kl/z": parts["kl/z"] * float("nan")})
            out = out * float("nan")
        return out, parts

    calls = _wrap(monkeypatch, after=poison)
    run = tmp_path / "run"
    epoch = 1 + (bad_step - 1) // straight.step
    with pytest.raises(NonFiniteLoss) as err:
        train(spec_path, _cfg(spec_path), run, **QUIET)
    assert str(err.value).startswith(f"non-finite loss at step {bad_step} (epoch {epoch}): term 'kl/z' is nan; ")
    if epoch == 1:
        assert "no checkpoint was written yet" in str(err.value) and not (run / "last.pt").exists()
    else:
        assert "last good checkpoint" in str(err.value)
        state = load_checkpoint(run / "last.pt")  # written before the bad step, and never since
        assert state["step"] == straight.step and all(torch.equal(state["model"][k], v) for k, v in kept.items())
    assert calls["n"] < bad_step + LOG_EVERY  # caught at the next look


def test_metrics_say_what_validation_and_checkpoints_cost(tmp_path, spec_path):
    res = train(spec_path, _cfg(spec_path), tmp_path / "run", **QUIET)
    for row in res.metrics:
        assert row["val_seconds"] > 0 and row["checkpoint_seconds"] > 0 and row["epoch_seconds"] > 0
    assert not list((tmp_path / "run").glob(".*.tmp"))  # the staged checkpoints all went in place


def test_compile_failure_is_one_line_and_writes_nothing(tmp_path, spec_path, monkeypatch, capsys):
    """A graph break (forced at the loss's first line) under compile = true: one line naming it, nothing
    in the run folder."""
    def broken(self, batch, terms=False, layout=None):
        torch._dynamo.graph_break()
        return ORIGINAL(self, batch, terms=terms)

    monkeypatch.setattr(CompiledModel, "loss", broken)
    run = tmp_path / "run"
    code = main(["train", str(spec_path), "--out", str(run), "--compile", "true", "--no-progress", "--device", "cpu"])
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if line]
    assert code != 0 and len(lines) == 1 and "Traceback" not in err, err
    assert "torch.compile could not compile the training loss (a graph break" in lines[0]
    assert not run.exists() or not any(run.iterdir())


def test_compile_failure_on_resume_changes_nothing(tmp_path, spec_path, monkeypatch):
    run = tmp_path / "run"
    train(spec_path, _cfg(spec_path, epochs=1), run, **QUIET)
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}

    def broken(self, batch, terms=False, layout=None):
        torch._dynamo.graph_break()
        return ORIGINAL(self, batch, terms=terms)

    monkeypatch.setattr(CompiledModel, "loss", broken)
    cfg = trainconfig.from_dict(dict(trainconfig.to_dict(_cfg(spec_path)), compile=True))
    with pytest.raises(loop.CompileFailed, match="a graph break"):
        train(None, cfg, run, resume=True, **QUIET)
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before


@pytest.mark.parametrize("exc, cause", [
    (RuntimeError("Compiler: g++ is not found"), "RuntimeError"),
    (type("CppCompileError", (RuntimeError,), {})("C++ compile error\nCommand: g++ ..."), "no working C++ compiler"),
    (RuntimeError("invalid compiler: /nonexistent"), "no working C++ compiler"),
    (type("Unsupported", (RuntimeError,), {})("call_function UserDefinedObjectVariable"), "a graph break"),
    (RuntimeError("torch.compile is not supported on this device type 'xpu'"),
     "torch.compile does not support this device or Python"),
])
def test_compile_failure_names_its_cause(exc, cause):
    assert compiling.compile_failure(exc).startswith(cause + ":")


VAE = """model vae
x : observed binary[64]
z : latent real[2]
encoder { z | x ~ Normal(mlp(8)) }
decoder {
  z ~ Normal(0, 1)
  x | z ~ Bernoulli(mlp(8))
}
train {
  data = digits
  epochs = 2
  batch_size = 431
}
"""


@pytest.mark.slow
def test_compiled_training_runs_and_its_trial_leaves_no_trace(tmp_path):
    """compile = true on a tiny VAE (one batch shape: 1293 = 3 x 431), about 20 s with empty
    compiler caches, 5 s with warm ones: it trains, says what compiling took, and ends near the
    eager run (the trial step was undone: same batches, same noise, same initial weights)."""
    spec = tmp_path / "vae.gvae"
    spec.write_text(VAE)
    lines = []
    eager = train(spec, _cfg(spec), tmp_path / "eager", progress=False, log=lines.append)
    compiled = train(spec, _cfg(spec, compile=True), tmp_path / "compiled", progress=False, log=lines.append)
    assert any(line.startswith("compiled the training loss with torch.compile in ") for line in lines)
    assert compiled.step == eager.step == 6
    for a, b in zip(eager.metrics, compiled.metrics):
        assert b["train/loss"] == pytest.approx(a["train/loss"], rel=1e-4)
        assert b["val/elbo"] == pytest.approx(a["val/elbo"], rel=1e-4)
