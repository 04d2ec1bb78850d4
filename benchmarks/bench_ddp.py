"""Training throughput of one process against two (torchrun, DistributedDataParallel over gloo).

For each size, ``graphvae train`` trains a fresh run for one measured stretch of epochs three
ways, and the trainer's own ``steps_per_s`` (metrics.jsonl: steps over the seconds spent
stepping, validation and checkpoints left out) is read back:

    1 process       graphvae train SPEC ...                   (no process group)
    1 x torchrun    graphvae train SPEC ... --nproc 1          (DDP with one process: its overhead)
    2 x torchrun    graphvae train SPEC ... --nproc 2          (each process half of every global batch)

The global batch is the same in all three (the settings name it), so steps/s compare directly
and examples/s = steps/s x (unlabelled + labelled per step).  The three alternate within one
run of this script, ``--repeats`` times in rotating order, and a cell is the median with its
min-max.  Then it times what a step of two processes adds: ``all_reduce`` of a float32 tensor
as large as the model's parameters, between two gloo processes (``--allreduce``).

    python benchmarks/bench_ddp.py [--sizes digits,mnist] [--repeats 3] [--threads 1] [--epochs E]
    python benchmarks/bench_ddp.py --sizes digits --repeats 1 --epochs 1    # a smoke test

``mnist`` needs the MNIST IDX files (``--data-dir`` or ``$GRAPHVAE_DATA``); without them that row
is left out with a note.  Each process computes with ``--threads`` threads (default 1), so two
processes use two cores.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# size -> (spec, settings for every contender, epochs measured)
SIZES = {
    "digits": ("specs/digits_m2.gvae", ["--batch-size", "100", "--labelled-per-batch", "100"], 6),
    "mnist": ("specs/m2.gvae", ["--data", "mnist", "--batch-size", "100", "--labelled-per-batch", "100",
                                "--labels", "100"], 1),
}
CONTENDERS = {"1 process": None, "1 x torchrun": 1, "2 x torchrun": 2}


def _train(spec: str, settings: list[str], epochs: int, nproc, threads: int, env: dict) -> dict:
    """The last metrics row of a fresh run of ``epochs`` epochs (``nproc``: None, or --nproc N)."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "graphvae", "train", str(ROOT / spec), "--out", f"{tmp}/run", "--epochs",
               str(epochs), "--threads", str(threads), "--no-progress", *settings]
        if nproc is not None:
            cmd += ["--nproc", str(nproc)]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stderr[-2000:]}")
        rows = [json.loads(line) for line in Path(f"{tmp}/run/metrics.jsonl").read_text().splitlines()]
    return rows[-1]


def _allreduce_ms(numel: int, reps: int, env: dict) -> float:
    """Median milliseconds of one float32 all_reduce of ``numel`` numbers between two gloo processes."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", __file__,
               "--allreduce", str(numel), "--reps", str(reps), "--report", f"{tmp}/ms"]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"the all_reduce timing failed:\n{out.stderr[-2000:]}")
        return float(Path(f"{tmp}/ms").read_text())


def _allreduce_worker(numel: int, reps: int, report: str) -> None:
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    t = torch.ones(numel)
    times = []
    for _ in range(reps + 3):
        dist.barrier()
        t0 = time.perf_counter()
        dist.all_reduce(t)
        times.append(time.perf_counter() - t0)
    if dist.get_rank() == 0:
        Path(report).write_text(str(1000 * statistics.median(times[3:])))
    dist.destroy_process_group()


def _parameters(spec: str) -> int:
    from graphvae.compile.compiler import compile_spec
    from graphvae.spec.loader import load_spec

    return sum(p.numel() for p in compile_spec(load_spec(str(ROOT / spec))).parameters())


def _cell(values: list[float]) -> str:
    return f"{statistics.median(values):8.1f} ({min(values):.1f}-{max(values):.1f})"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="digits,mnist")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="threads per process")
    p.add_argument("--epochs", type=int, default=0, help="epochs per run (0: the size's own: digits 6, mnist 1)")
    p.add_argument("--allreduce", type=int, default=None, help=argparse.SUPPRESS)  # the timing worker
    p.add_argument("--reps", type=int, default=50, help=argparse.SUPPRESS)
    p.add_argument("--report", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.allreduce is not None:
        _allreduce_worker(args.allreduce, args.reps, args.report)
        return 0
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    import torch

    print(f"torch {torch.__version__}, {os.cpu_count()} CPU cores, {args.threads} thread(s) per process; "
          f"medians (min-max) of {args.repeats} runs each, in rotating order")
    notes = []
    for size in args.sizes.split(","):
        spec, settings, epochs = SIZES[size]
        epochs = args.epochs or epochs
        results = {name: [] for name in CONTENDERS}
        try:
            for r in range(args.repeats):
                names = list(CONTENDERS)
                names = names[r % len(names):] + names[:r % len(names)]
                for name in names:
                    results[name].append(_train(spec, settings, epochs, CONTENDERS[name], args.threads, env))
        except SystemExit as exc:
            if size == "mnist" and "MNIST" in str(exc).upper():
                notes.append(f"mnist left out: {str(exc).splitlines()[-1]}")
                continue
            raise
        per_step = 200  # 100 unlabelled + 100 labelled
        print(f"\n{size}: {spec}, {epochs} epoch(s) per run, {per_step} examples per global step")
        print(f"  {'':14} {'steps/s':>22} {'examples/s':>24} {'vs 1 process':>13}")
        base = statistics.median(r["steps_per_s"] for r in results["1 process"])
        for name, rows in results.items():
            steps = [r["steps_per_s"] for r in rows]
            print(f"  {name:14} {_cell(steps):>22} {_cell([s * per_step for s in steps]):>24} "
                  f"{statistics.median(steps) / base:12.2f}x")
        numel = _parameters(spec)
        ms = _allreduce_ms(numel, 50, env)
        step_ms = 1000 / statistics.median(r["steps_per_s"] for r in results["2 x torchrun"])
        print(f"  what two processes add per step: all_reduce of {numel:,} float32 gradients (gloo) "
              f"{ms:.2f} ms of a {step_ms:.1f} ms step")
    for note in notes:
        print(note)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
