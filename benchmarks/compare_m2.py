"""Compiled M2 (``graphvae train specs/m2.gvae``) against the hand-written one, over several seeds.

For each seed it trains both models with the same flags, two processes at a time with one
thread each (so each pair shares the machine equally), then prints per-seed test errors and
seconds per epoch, and the paired difference over seeds:

    python benchmarks/compare_m2.py --seeds 0-7 --epochs 50 --out /tmp/m2cmp

Runs already finished in ``--out`` are reused, so the command can be stopped and rerun, and
``--summary`` only prints the table.  Layout of ``--out``: ``c{seed}/`` (a graphvae run folder)
and ``h{seed}.json`` (written by ``benchmarks/handwritten_m2.py --json``).

M2 at 100 labels varies a lot from seed to seed (the classifier stays near 50 % error for
~20 epochs and then falls at a seed-dependent pace), so one seed says little; the paired
difference over seeds and its 95 % interval is the figure to read.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def parse_seeds(text: str) -> list[int]:
    seeds: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        seeds += list(range(int(lo), int(hi or lo) + 1))
    return seeds


def compiled_done(run: Path, epochs: int) -> bool:
    metrics = run / "metrics.jsonl"
    if not (run / "last.pt").exists() or not metrics.exists():
        return False
    rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    return bool(rows) and rows[-1].get("epoch") == epochs


def jobs_for(seed: int, args) -> list[tuple[str, list[str], Path]]:
    out = Path(args.out)
    common = ["--data", args.data, "--labels", str(args.labels), "--epochs", str(args.epochs), "--seed", str(seed),
              "--batch-size", str(args.batch_size), "--labelled-per-batch", str(args.labelled_per_batch),
              "--lr", str(args.lr), "--device", args.device] + (["--data-dir", args.data_dir] if args.data_dir else [])
    jobs = []
    if not compiled_done(out / f"c{seed}", args.epochs):
        if (out / f"c{seed}").exists():
            raise SystemExit(f"{out / f'c{seed}'} holds an unfinished run; finish it with 'graphvae train --resume "
                             f"{out / f'c{seed}'}' or remove it")
        jobs.append((f"compiled seed {seed}", [sys.executable, "-m", "graphvae", "train", args.spec,
                     *common, "--out", str(out / f"c{seed}"), "--no-progress"], out / f"c{seed}.log"))
    if not (out / f"h{seed}.json").exists():
        jobs.append((f"hand-written seed {seed}", [sys.executable, str(ROOT / "benchmarks" / "handwritten_m2.py"),
                     "--spec", args.spec, *common, "--threads", "1", "--json", str(out / f"h{seed}.json")], out / f"h{seed}.log"))
    return jobs


def run_jobs(jobs, parallel: int) -> None:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    running: list[tuple[str, subprocess.Popen, object]] = []  # (name, process, its open log file)
    while jobs or running:
        while jobs and len(running) < parallel:
            name, cmd, log = jobs.pop(0)
            print(f"start {name}: {' '.join(cmd)}", flush=True)
            log_file = open(log, "w")
            running.append((name, subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, env=env), log_file))
        time.sleep(5)
        for name, proc, log_file in list(running):
            if proc.poll() is not None:
                running.remove((name, proc, log_file))
                log_file.close()
                print(f"done {name}: exit {proc.returncode}", flush=True)
                if proc.returncode != 0:
                    raise SystemExit(f"{name} failed; see its log in the --out folder")


def compiled_figures(run: Path, data_dir: str | None) -> dict:
    from graphvae.train.evaluate import evaluate_run

    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    figures = {"seconds_per_epoch": sum(r["epoch_seconds"] for r in rows) / len(rows)}
    for which in ("best", "last"):
        report = evaluate_run(run, data_dir=data_dir, samples=0, which=which, split="test", device="cpu")
        figures["final" if which == "last" else "best"] = report["error/y"]
    return figures


def hand_figures(path: Path) -> dict:
    res = json.loads(path.read_text())
    return {"seconds_per_epoch": sum(res["seconds_per_epoch"]) / len(res["seconds_per_epoch"]),
            "final": res["test_error_final"], "best": res.get("test_error_best", math.nan)}


def interval(diffs: list[float]) -> tuple[float, float, float]:
    """Mean of ``diffs`` and its two-sided 95 % t interval."""
    n = len(diffs)
    mean = sum(diffs) / n
    if n < 2:
        return mean, -math.inf, math.inf
    from scipy.stats import t

    se = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1) / n)
    half = float(t.ppf(0.975, n - 1)) * se
    return mean, mean - half, mean + half


def summary(seeds: list[int], out: Path, data_dir: str | None) -> None:
    rows = []
    for s in seeds:
        if (out / f"c{s}" / "metrics.jsonl").exists() and (out / f"h{s}.json").exists():
            rows.append((s, compiled_figures(out / f"c{s}", data_dir), hand_figures(out / f"h{s}.json")))
    if not rows:
        print("no finished pair of runs yet")
        return
    print("| seed | compiled final | hand final | compiled best-val | hand best-val | compiled s/epoch | hand s/epoch |")
    print("|---|---|---|---|---|---|---|")
    for s, c, h in rows:
        cells = [c["final"], h["final"], c["best"], h["best"]]
        print(f"| {s} | " + " | ".join(f"{100 * v:.2f} %" if math.isfinite(v) else "-" for v in cells)
              + f" | {c['seconds_per_epoch']:.1f} | {h['seconds_per_epoch']:.1f} |")
    for key in ("final", "best"):  # seeds lacking a figure (NaN) are left out of that line
        pairs = [(100 * c[key], 100 * h[key]) for _, c, h in rows if math.isfinite(c[key] + h[key])]
        if not pairs:
            continue
        cs, hs = [a for a, _ in pairs], [b for _, b in pairs]
        mean, lo, hi = interval([a - b for a, b in pairs])
        worse = sum(a > b for a, b in pairs)
        print(f"{key}: compiled mean {sum(cs) / len(cs):.2f} %, hand-written mean {sum(hs) / len(hs):.2f} %; "
              f"compiled - hand = {mean:+.2f} points, 95 % interval [{lo:+.2f}, {hi:+.2f}]; "
              f"compiled worse in {worse} of {len(pairs)} seeds")
    ratio = [h["seconds_per_epoch"] / c["seconds_per_epoch"] for _, c, h in rows]
    print(f"speed: hand s/epoch / compiled s/epoch, mean over seeds {sum(ratio) / len(ratio):.3f}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", default="0-3", help="e.g. 0-7 or 0,2,5")
    p.add_argument("--spec", default=str(ROOT / "specs" / "m2.gvae"), help="an M2-shaped spec (one x, y, z)")
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--labelled-per-batch", type=int, default=100)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--labels", type=int, default=100)
    p.add_argument("--data", default="mnist")
    p.add_argument("--data-dir", default=None, help="folder of the IDX files (else $GRAPHVAE_DATA)")
    p.add_argument("--out", default="runs/compare_m2")
    p.add_argument("--parallel", type=int, default=2, help="processes at once, one thread each")
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N (both models)")
    p.add_argument("--summary", action="store_true", help="only print the table of finished runs")
    args = p.parse_args(argv)
    seeds, out = parse_seeds(args.seeds), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not args.summary:
        run_jobs([job for s in seeds for job in jobs_for(s, args)], args.parallel)
    summary(seeds, out, args.data_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
