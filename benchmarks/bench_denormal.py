"""Throughput of the trainer with and without ``torch.set_flush_denormal`` (TrainConfig.flush_denormal).

Denormal floats (tiny weights/gradients late in training) are ~100x slower on x86 CPUs
without flush-to-zero.  This trains the same spec twice, each in its own process and
with the same seed, once with ``flush_denormal=true`` and once with ``false``, and
prints the steps per second of every epoch (from each run's metrics.jsonl) and the
final validation error, so that both speed and results can be compared.

    python benchmarks/bench_denormal.py specs/m2.gvae --data mnist --epochs 10
    python benchmarks/bench_denormal.py specs/digits_m2.gvae --epochs 30      # small and quick

Denormals appear late in training, so the most direct measure starts from a trained run:
``--run RUN`` loads ``RUN/last.pt`` (weights and Adam state), then times blocks of training
steps on the run's own data alternately with flush-to-zero on and off, in one process, and
prints the median steps/s of each and their ratio:

    python benchmarks/bench_denormal.py --run runs/m2-100 --blocks 6 --steps 30
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


def time_trained_run(run: str, blocks: int, steps: int) -> int:
    """Alternate blocks of steps with flush_denormal on and off from a trained run's last checkpoint."""
    import statistics
    import time

    import torch

    from graphvae.data import SemiSupervisedBatches, prepare_data
    from graphvae.train.runs import load_run
    from graphvae.train.optim import build_optimizer

    spec, cfg, model, state = load_run(run, "last", "cpu")
    model.train()
    opt = build_optimizer(model.parameters(), cfg)
    opt.load_state_dict(state["optimizer"])
    data = prepare_data(spec, data=cfg.data, data_dir=cfg.data_dir or None, validation=cfg.validation,
                        labels=cfg.labels, seed=cfg.seed)
    batches = SemiSupervisedBatches(data.train, spec, data.labelled, batch_size=cfg.batch_size,
                                    labelled_per_batch=cfg.labelled_per_batch, binarize=cfg.binarize,
                                    generator=torch.Generator().manual_seed(cfg.seed))
    stream = iter(())

    def block(flush: bool) -> float:
        nonlocal stream
        torch.set_flush_denormal(flush)
        t0 = time.perf_counter()
        for _ in range(steps):
            batch = next(stream, None)
            if batch is None:
                stream = iter(batches)
                batch = next(stream)
            loss = model.loss(batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return steps / (time.perf_counter() - t0)

    block(True)  # warm-up
    rates = {True: [], False: []}
    for b in range(blocks):
        for flush in ((True, False) if b % 2 == 0 else (False, True)):
            rates[flush].append(block(flush))
    on, off = statistics.median(rates[True]), statistics.median(rates[False])
    print(f"{run}: step {state['step']}, threads {torch.get_num_threads()}, {blocks} blocks x {steps} steps each way")
    print(f"flush_denormal=true   {on:7.1f} steps/s  (blocks: {', '.join(f'{r:.1f}' for r in rates[True])})")
    print(f"flush_denormal=false  {off:7.1f} steps/s  (blocks: {', '.join(f'{r:.1f}' for r in rates[False])})")
    print(f"ratio on / off: {on / off:.2f}")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("spec", nargs="?", help="train this spec twice (flush on, then off)")
    p.add_argument("--run", help="instead: time steps from this trained run's last.pt, flush on vs off")
    p.add_argument("--blocks", type=int, default=6)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--data", default=None)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.run:
        return time_trained_run(args.run, args.blocks, args.steps)
    if not args.spec:
        p.error("give a SPEC to train, or --run RUN")
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
