"""Training with several processes (torchrun, gloo on the CPU): sharded batches, identical
weights after every step, one process x 2B = two x B, kill -9 and resume, one writer, and the
world-size rule on resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from graphvae.errors import UserError
from graphvae.train import distributed
from graphvae.train.distributed import World

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "tests" / "distributed" / "worker.py"
MIXTURE = ROOT / "tests" / "distributed" / "mixture.gvae"
DIGITS = ROOT / "specs" / "digits_m2.gvae"
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


# -- the world from torchrun's environment ----------------------------------------------------------
@pytest.mark.parametrize("env, world", [
    ({}, distributed.SINGLE),
    ({"RANK": "0"}, distributed.SINGLE),  # WORLD_SIZE missing: not torchrun
    ({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"}, World(1, 2, 1, True)),
    ({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"}, World(3, 4, 1, True)),  # the second node of 2 x 2
    ({"RANK": "0", "WORLD_SIZE": "1"}, World(0, 1, 0, True)),  # torchrun with one process is still DDP
])
def test_the_world_comes_from_torchruns_variables(env, world):
    assert distributed.from_env(env) == world


@pytest.mark.parametrize("env, message", [
    ({"RANK": "x", "WORLD_SIZE": "2"}, "$RANK is 'x', not a whole number"),
    ({"RANK": "2", "WORLD_SIZE": "2"}, "do not fit"),
    ({"RANK": "-1", "WORLD_SIZE": "2"}, "$RANK is -1"),
])
def test_a_bad_torchrun_environment_is_one_line(env, message):
    with pytest.raises(UserError, match=None) as exc:
        distributed.from_env(env)
    assert message in str(exc.value) and "\n" not in str(exc.value)


# -- sharded batches ---------------------------------------------------------------------------------
def _batches(world: int, rank: int, n: int = 53, batch_size: int = 8, labelled_per_batch: int = 4,
             labelled: int = 10):
    from graphvae.data import SemiSupervisedBatches
    from graphvae.spec.loader import load_spec

    spec = load_spec(str(MIXTURE))
    ids = np.arange(n, dtype=np.float32)
    arrays = {"x": np.repeat(ids[:, None], 64, axis=1) / 1000.0, "y": (np.arange(n) % 10).astype(np.int64)}
    return SemiSupervisedBatches(arrays, spec, np.arange(labelled), batch_size=batch_size,
                                 labelled_per_batch=labelled_per_batch, generator=torch.Generator().manual_seed(3),
                                 rank=rank, world=world)


def _rows(batch):
    """``(labelled ids, unlabelled ids)`` of a batch (labelled rows come first)."""
    ids = [int(round(v)) for v in (batch["x"][:, 0] * 1000).tolist()]
    k = sum(n for pattern, n in batch.layout if pattern)
    return ids[:k], ids[k:]


@pytest.mark.parametrize("world", [2, 4])
def test_the_processes_steps_together_are_one_processs_step(world):
    """Step k of the ranks together holds the examples of one process's step k (the last step
    aside, where padding evens the shards), labelled picks included; the shards are disjoint."""
    single = [_rows(b) for b in _batches(1, 0)]
    ranks = [[_rows(b) for b in _batches(world, r)] for r in range(world)]
    assert all(len(r) == len(single) for r in ranks)  # ceil(53 / 8) = 7 steps everywhere
    for k in range(len(single) - 1):
        assert sorted(sum((r[k][1] for r in ranks), [])) == sorted(single[k][1])
        assert sorted(sum((r[k][0] for r in ranks), [])) == sorted(single[k][0])
        assert all(len(r[k][1]) == 8 // world and len(r[k][0]) == 4 // world for r in ranks)
    shards = [sum((step[1] for step in r), []) for r in ranks]
    seen = sum(shards, [])
    assert sorted(set(seen)) == list(range(53))  # every example, once per epoch ...
    padded = -(-53 // world) * world
    assert len(seen) == padded  # ... plus the padding that evens the shards
    assert len({len(s) for s in shards}) == 1


def test_each_rank_binarizes_with_its_own_noise():
    from graphvae.data.batches import _rank_noise_seed

    assert _rank_noise_seed(12345, 0) == 12345
    assert len({_rank_noise_seed(12345, r) for r in range(8)}) == 8


@pytest.mark.parametrize("kwargs, message", [
    ({"batch_size": 9}, "batch_size 9 does not split over 2 processes"),
    ({"labelled_per_batch": 5}, "labelled_per_batch 5 does not split over 2 processes"),
    ({"labelled_per_batch": -1, "labelled": 11}, "all 11 labelled examples in every step, which do not split"),
])
def test_a_batch_that_does_not_split_is_one_line(kwargs, message):
    with pytest.raises(UserError) as exc:
        _batches(2, 0, **kwargs)
    assert message in str(exc.value)


def test_the_device_sums_of_the_processes_combine_as_their_means():
    from graphvae.train.loop import _DeviceSums

    # k = 2 terms; rows: [sums(2), bad, bad_values(2), last, stopping]
    rows = [[2.0, 4.0, -1.0, 0.0, 0.0, 1.0, 0.0],
            [4.0, 8.0, 3.0, float("nan"), 1.0, 3.0, 1.0],
            [0.0, 0.0, 1.0, 5.0, float("inf"), 2.0, 0.0]]
    out = _DeviceSums._combine(rows, 2)
    assert out[:2] == [2.0, 4.0]  # (2 + 4 + 0) / 3, (4 + 8 + 0) / 3
    assert out[2] == 1.0 and out[3] == 5.0 and out[4] == float("inf")  # the earliest bad step: rank 2's step 1
    assert out[5] == 2.0  # the mean last loss
    assert out[6] == 1.0  # rank 1 was asked to stop
    assert _DeviceSums._combine(rows[:1], 2) == rows[0]


# -- training with two processes ---------------------------------------------------------------------
def _torchrun(*args, nproc: int = 2, timeout: int = 240):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *map(str, args)]
    return subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=timeout)


def _graphvae(*args, timeout: int = 240):
    return subprocess.run([sys.executable, "-m", "graphvae", *map(str, args)], env=ENV, capture_output=True,
                          text=True, timeout=timeout)


def _weights(run: Path, which: str = "last") -> dict:
    return torch.load(run / f"{which}.pt", map_location="cpu", weights_only=True)["model"]


def test_two_processes_hold_identical_weights_after_every_step(tmp_path):
    """The digits M2 (batch normalisation, reparameterised noise): DDP keeps the weights equal
    after each of 8 steps, and rank 0 alone writes the run folder.  The batch-norm statistics are
    each process's own after a step (each saw its share of the batch) until the next step's
    forward, where DDP gives every process rank 0's."""
    out = _torchrun(WORKER, DIGITS, tmp_path / "run", tmp_path / "report", "batch_size=32", "labelled_per_batch=32",
                    "max_steps=8")
    assert out.returncode == 0, out.stderr[-2000:]
    reports = [json.loads((tmp_path / f"report.{r}").read_text()) for r in range(2)]
    for rep in reports:
        assert rep["world"] == 2 and rep["steps"] == list(range(1, 9)) and rep["step"] == 8
        assert rep["parameters"] == 0.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.0", "report.1", "run"]
    state = torch.load(tmp_path / "run" / "last.pt", map_location="cpu", weights_only=True)
    assert state["world_size"] == 2 and len(state["rng"]["ranks"]) == 1
    assert not torch.equal(state["rng"]["torch"], state["rng"]["ranks"][0]["torch"])  # each rank its own noise


def test_two_processes_of_batch_b_take_the_step_of_one_process_of_2b(tmp_path):
    """The objective is a mean over the batch: with equal shares the mean of the processes'
    gradients is the whole batch's.  The mixture draws no noise, so the first step's weights
    agree to float tolerance."""
    from graphvae.spec.loader import load_spec_file
    from graphvae.train import config as trainconfig
    from graphvae.train.loop import train

    settings = {"batch_size": "64", "labelled_per_batch": "32", "epochs": "1"}
    out = _torchrun(WORKER, MIXTURE, tmp_path / "two", tmp_path / "report", *(f"{k}={v}" for k, v in settings.items()),
                    "max_steps=1")
    assert out.returncode == 0, out.stderr[-2000:]
    spec, _, _ = load_spec_file(MIXTURE)
    train(MIXTURE, trainconfig.resolve(spec, settings), tmp_path / "one", progress=False, max_steps=1,
          log=lambda *a: None, world=distributed.SINGLE)
    states = [torch.load(tmp_path / r / "last.pt", map_location="cpu", weights_only=True) for r in ("two", "one")]
    assert [s["step"] for s in states] == [1, 1] and [s.get("world_size") for s in states] == [2, 1]
    two, one = (s["model"] for s in states)
    assert two.keys() == one.keys()
    for name in one:
        torch.testing.assert_close(two[name], one[name], rtol=1e-5, atol=1e-6, msg=name)
    moments = [s["optimizer"]["state"][0]["exp_avg"] for s in states]  # Adam's first moment: the gradient
    assert moments[0].abs().sum() > 0
    torch.testing.assert_close(moments[0], moments[1], rtol=1e-5, atol=1e-7)


def _rows_of(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]


def test_a_two_process_run_killed_with_9_resumes_and_ends_where_an_uninterrupted_one_ends(tmp_path):
    flags = ["--epochs", "3", "--batch-size", "20", "--labelled-per-batch", "20", "--no-progress"]
    whole = _graphvae("train", DIGITS, "--out", tmp_path / "whole", "--nproc", "2", *flags)
    assert whole.returncode == 0, whole.stderr[-2000:]
    assert whole.stdout.count("trained 3 epochs") == 1  # rank 0 alone reports
    cut = tmp_path / "cut"
    proc = subprocess.Popen([sys.executable, "-m", "graphvae", "train", str(DIGITS), "--out", str(cut), "--nproc", "2",
                             *flags], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and not ((cut / "metrics.jsonl").exists() and _rows_of(cut)):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the launcher and both processes, mid-way through epoch 2
    proc.wait()
    assert len(_rows_of(cut)) < 3, "the run ended before the kill"
    resumed = _graphvae("train", "--resume", cut, "--nproc", "2", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    for name, value in _weights(tmp_path / "whole").items():
        assert torch.equal(value, _weights(cut)[name]), name
    assert [r["epoch"] for r in _rows_of(cut)] == [1, 2, 3]
    assert [r["val/error/y"] for r in _rows_of(cut)] == [r["val/error/y"] for r in _rows_of(tmp_path / "whole")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut", "whole"]
    assert sorted(p.name for p in cut.iterdir() if p.suffix in (".jsonl", ".pt")) == ["best.pt", "last.pt",
                                                                                    "metrics.jsonl"]
    # another world size is refused in one line, and continues with --reshard
    other = _graphvae("train", "--resume", cut, "--epochs", "4", "--no-progress")
    assert other.returncode == 1
    assert other.stderr.strip().splitlines() == [
        f"graphvae: error: {cut} was trained by 2 processes and this resume has 1 process: resume it with 2 "
        f"(graphvae train --resume {cut} --nproc 2), or add --reshard to continue with 1 (not an exact continuation)"]
    assert [r["epoch"] for r in _rows_of(cut)] == [1, 2, 3]
    again = _graphvae("train", "--resume", cut, "--epochs", "4", "--reshard", "--no-progress")
    assert again.returncode == 0, again.stderr[-2000:]
    assert [r["epoch"] for r in _rows_of(cut)] == [1, 2, 3, 4]


@pytest.mark.parametrize("args, message", [
    (["--nproc", "0"], "graphvae: error: --nproc 0: the number of processes must be at least 1"),
    (["--nproc", "2", "--batch-size", "25"],
     "graphvae: error: batch_size 25 does not split over 2 processes: the global batch must be a multiple of the "
     "number of processes (e.g. 24)"),
    (["--reshard"], "graphvae: error: --reshard goes with --resume RUN (a new run has no processes to re-deal)"),
    (["--nproc", "2", "--set", "sync_batchnorm=true"],
     "graphvae: error: sync_batchnorm = true: torch's SyncBatchNorm runs on GPUs only, and this run is on the cpu; "
     "train with sync_batchnorm = false (each process then normalises with its own share of the batch)"),
])
def test_distributed_flags_misused_are_one_line_and_write_nothing(tmp_path, args, message):
    out = _graphvae("train", DIGITS, "--out", tmp_path / "run", "--epochs", "1", "--no-progress", *args)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [message]  # once: rank 0 says it
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "run").exists()


def test_ctrl_c_stops_every_process_after_the_same_step_and_resumes(tmp_path):
    """SIGINT to the launcher and its processes (a terminal's Ctrl-C): they agree at the host's
    next look, rank 0 saves last.pt, the exit code is 130 with no traceback, and the run resumes."""
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "graphvae", "train", str(DIGITS), "--out", str(run), "--nproc", "2",
                             "--epochs", "30", "--batch-size", "20", "--labelled-per-batch", "20", "--no-progress"],
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and not ((run / "metrics.jsonl").exists() and _rows_of(run)):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr and stdout.count("stopped at step") == 1
    state = torch.load(run / "last.pt", map_location="cpu", weights_only=True)
    assert state["step"] < 30 * 65 and state["world_size"] == 2
    resumed = _graphvae("train", "--resume", run, "--nproc", "2", "--epochs", str(state["epoch"] + 1), "--no-progress")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert _rows_of(run)[-1]["epoch"] == state["epoch"] + 1
