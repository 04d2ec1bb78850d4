"""Exact resume after a kill at every write point of an epoch's end.

A forked child trains the tiny digits M2 for two epochs and ``os._exit``s at one write of the
second epoch's end (``metrics.jsonl``, ``last.pt``, ``best.pt``; with the temp file written
but not yet in place, or right after it is), as kill -9 would.  ``graphvae train --resume``
must then end with the same ``best.pt``, ``last.pt``, metrics and final report as a run that
was never killed, and no temp file left behind.
"""

from __future__ import annotations

import os
import sys

import pytest
import torch
from conftest import tiny_m2

from graphvae.cli import main
from graphvae.train.checkpoint import load_checkpoint

torch.set_num_threads(1)

SPEC = tiny_m2(2, objective="alpha = 0.1\n  y     = enumerate", train="""  data       = digits
  epochs     = 2
  batch_size = 300
  labels     = 50
  labelled_per_batch = 20""")
FLAGS = ["--no-progress", "--device", "cpu"]
TIMING = ("epoch_seconds", "steps_per_s", "examples_per_s", "val_seconds", "checkpoint_seconds")

def _train_and_die(argv, target: str, phase: str, nth: int) -> int:
    """Run ``graphvae argv`` in a forked child that ``os._exit``s at the ``nth`` os.replace onto
    ``target``: "during" just before it (the temp file written, not in place), "after" just after
    it (in place, the next write not begun).  Returns the child's exit status."""
    pid = os.fork()
    if pid == 0:  # the child: nothing it does returns to pytest
        try:
            real_replace, seen = os.replace, {"n": 0}

            def replace(src, dst):
                hit = os.path.basename(dst) == target
                seen["n"] += hit
                if hit and seen["n"] == nth and phase == "during":
                    os._exit(9)
                real_replace(src, dst)
                if hit and seen["n"] == nth and phase == "after":
                    os._exit(9)

            os.replace = replace
            sys.stdout = sys.stderr = open(os.devnull, "w")
            main(argv)
        finally:
            os._exit(3)  # the kill point was never reached
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def _report(text: str, run) -> list[str]:
    return [line.replace(str(run), "RUN") for line in text.splitlines() if line.startswith(("trained", "test ("))]


def _state(run, which):
    state = load_checkpoint(run / f"{which}.pt")
    return state["model"], state["step"], state["epoch"], state["extra"]["selection"]


def _untimed(path):
    import json

    return [{k: v for k, v in json.loads(line).items() if k not in TIMING} for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """The uninterrupted run: its folder and final report."""
    import contextlib
    import io

    tmp = tmp_path_factory.mktemp("straight")
    spec = tmp / "tiny.gvae"
    spec.write_text(SPEC)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["train", str(spec), "--out", str(tmp / "run")] + FLAGS) == 0
    rows = _untimed(tmp / "run" / "metrics.jsonl")
    assert rows[-1]["selected"], "the second epoch must improve, or a lost best.pt write would not show"
    return spec, tmp / "run", _report(out.getvalue(), tmp / "run")


@pytest.mark.parametrize("target, phase", [
    ("metrics.jsonl", "during"), ("metrics.jsonl", "after"),
    ("last.pt", "during"), ("last.pt", "after"),
    ("best.pt", "during"), ("best.pt", "after"),
])
def test_kill_at_every_epoch_end_write_resumes_exactly(tmp_path, straight, capsys, target, phase):
    spec, straight_run, straight_report = straight
    run = tmp_path / "run"
    assert _train_and_die(["train", str(spec), "--out", str(run)] + FLAGS, target, phase, 2) == 9
    if phase == "during":
        assert any(p.name.startswith(f".{target}.") for p in run.iterdir())  # the temp file a kill leaves
    capsys.readouterr()
    if (target, phase) == ("last.pt", "after"):  # eval before any resume already takes the selected epoch
        assert main(["eval", str(run), "-k", "0", "--device", "cpu"]) == 0
        assert "(best.pt, epoch 2, " in capsys.readouterr().out
    assert main(["train", "--resume", str(run)] + FLAGS) == 0
    out = capsys.readouterr().out
    assert _report(out, run) == straight_report
    for which in ("best", "last"):
        (a, *rest_a), (b, *rest_b) = _state(straight_run, which), _state(run, which)
        assert rest_a == rest_b, which
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), which
    assert _untimed(run / "metrics.jsonl") == _untimed(straight_run / "metrics.jsonl")
    assert not [p.name for p in run.iterdir() if p.name.endswith(".tmp")]
