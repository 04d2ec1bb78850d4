"""Throughput of the trainer with and without ``torch.set_flush_denormal`` (TrainConfig.flush_denormal).

Denormal floats (tiny weights/gradients late in training) are ~100x slower on x86 CPUs
without flush-to-zero.  This trains the same spec twice, each in its own process and
with the same seed, once with ``flush_denormal=true`` and once with ``false``, and
prints the steps per second of every epoch (from each run's metrics.jsonl) and the
final validation error, so that both speed and results can be compared.

    python benchmarks/bench_denormal.py specs/m2.gvae --data mnist --epochs 10
    python benchmarks/bench_denormal.py specs/digits_m2.gvae --epochs 30      # small and quick
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path


def train_once(spec: str, flush: bool, out: Path, extra: list[str]) -> list[dict]:
    cmd = [sys.executable, "-m", "graphvae", "train", spec, "--out", str(out), "--no-progress",
           "--set", f"flush_denormal={'true' if flush else 'false'}", *extra]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("spec")
    p.add_argument("--data", default=None)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    extra = ["--seed", str(args.seed), "--device", "cpu"]
    for flag in ("data", "data_dir", "epochs"):
        if getattr(args, flag) is not None:
            extra += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
    with tempfile.TemporaryDirectory() as tmp:
        runs = {flush: train_once(args.spec, flush, Path(tmp) / f"flush-{flush}", extra) for flush in (True, False)}
    print(f"{'epoch':>5}  {'flush=true steps/s':>18}  {'flush=false steps/s':>19}")
    for a, b in zip(runs[True], runs[False]):
        print(f"{a['epoch']:>5}  {a['steps_per_s']:>18.1f}  {b['steps_per_s']:>19.1f}")
    for flush, rows in runs.items():
        errs = {k: v for k, v in rows[-1].items() if k.startswith("val/error") or k == "val/elbo"}
        total = sum(r["epoch_seconds"] for r in rows)
        print(f"flush_denormal={str(flush).lower()}: {total:.1f} s training; last epoch {errs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
