"""Training-step throughput of the compiled M2 against a hand-written PyTorch M2, and compile times.

Both models have the architecture of ``specs/m2.gvae`` (q(y|x), q(z|x,y) and p(x|y,z)
each an MLP with one hidden layer of 500 ReLU units; z has 50 dims; x is 784 binary
pixels) and take the same batches (100 examples, 10 of them labelled).  A step is
forward + backward + Adam.  The two are timed in alternation within one run, in
blocks of ``--steps`` steps, and the median steps/s over ``--repeats`` blocks is
reported with the ratio compiled / hand-written (target >= 0.95).

    python benchmarks/bench_step.py [--repeats 7] [--steps 20] [--device cpu|cuda] [--threads N]
    python benchmarks/bench_step.py --spec specs/digits_m2.gvae --batch 64 --labelled 16 --steps 100

The target is for the MNIST-sized M2.  On a model as small as the digits one the
compiled step is slower (Python overhead of the general trace: two labelled-pattern
groups, torch.distributions objects, the logged terms), which the second command shows.
"""

from __future__ import annotations

import argparse
import glob
import os
import statistics
import sys
import time

import torch
from handwritten_m2 import m2_like  # benchmarks/ is on sys.path when this script runs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_batch(batch, labelled, device, gen, x_dim=784):
    x = torch.bernoulli(torch.rand(batch, x_dim, generator=gen)).to(device)
    y = torch.randint(0, 10, (batch,), generator=gen)
    y[labelled:] = -1
    return x, y.to(device)


def time_steps(step, steps, device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return steps / (time.perf_counter() - t0)


def compile_times(pattern: str) -> list[tuple[str, float]]:
    import graphvae

    out = []
    for path in sorted(glob.glob(pattern)):
        t0 = time.perf_counter()
        try:
            graphvae.compile_spec(path)
            out.append((os.path.relpath(path, ROOT), time.perf_counter() - t0))
        except Exception as exc:  # report and keep timing the others
            out.append((f"{os.path.relpath(path, ROOT)} (failed: {type(exc).__name__})", float("nan")))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", default=os.path.join(ROOT, "specs", "m2.gvae"),
                    help="an M2-shaped spec; the hand-written model takes its sizes (e.g. specs/digits_m2.gvae)")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--steps", type=int, default=20, help="steps per timed block")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--labelled", type=int, default=10)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("bench_step: CUDA is not available", file=sys.stderr)
        return 2
    sys.path.insert(0, ROOT)
    import graphvae

    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    compiled = graphvae.compile_spec(args.spec).to(device)
    hand = m2_like(compiled.spec).to(device)  # the same hand-written M2 that benchmarks/handwritten_m2.py trains
    opt_c = torch.optim.Adam(compiled.parameters(), lr=1e-3)
    opt_h = torch.optim.Adam(hand.parameters(), lr=1e-3)
    batches = [make_batch(args.batch, args.labelled, device, gen, compiled.spec.observed[0].size) for _ in range(8)]
    i = {"c": 0, "h": 0}

    def step_compiled():
        x, y = batches[i["c"] % len(batches)]
        i["c"] += 1
        opt_c.zero_grad(set_to_none=True)
        compiled.loss({"x": x, "y": y}).backward()
        opt_c.step()

    def step_hand():
        x, y = batches[i["h"] % len(batches)]
        i["h"] += 1
        opt_h.zero_grad(set_to_none=True)
        hand.loss(x, y, compiled.config.alpha).backward()
        opt_h.step()

    time_steps(step_compiled, args.warmup, device)
    time_steps(step_hand, args.warmup, device)
    rates_c, rates_h = [], []
    for r in range(args.repeats):  # interleaved, alternating which goes first
        pair = [(step_compiled, rates_c), (step_hand, rates_h)]
        for step, rates in (pair if r % 2 == 0 else pair[::-1]):
            rates.append(time_steps(step, args.steps, device))
    med_c, med_h = statistics.median(rates_c), statistics.median(rates_h)
    print(f"{os.path.relpath(args.spec, ROOT)}: device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, batch {args.batch} "
          f"({args.labelled} labelled), {args.repeats} repeats x {args.steps} steps")
    print(f"compiled M2     {med_c:8.1f} steps/s   (blocks: {', '.join(f'{r:.1f}' for r in rates_c)})")
    print(f"hand-written M2 {med_h:8.1f} steps/s   (blocks: {', '.join(f'{r:.1f}' for r in rates_h)})")
    target = "  (target >= 0.95)" if os.path.basename(args.spec) == "m2.gvae" else ""
    print(f"ratio compiled / hand-written: {med_c / med_h:.3f}{target}")
    print("compile time per spec (parse + validate + build):")
    for path, seconds in compile_times(os.path.join(ROOT, "specs", "*")):
        print(f"  {path:40s} {seconds * 1000:8.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
