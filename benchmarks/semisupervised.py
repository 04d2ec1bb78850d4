"""Semi-supervised test error over seeds, each beside its labelled-only baseline, as the README reports it.

For each seed it runs ``graphvae train SPEC --seed S --baseline [FLAGS]`` into ``OUT/s{S}`` (an
ordinary run folder, with the labelled-only baseline in ``OUT/s{S}/baseline``), two processes at
a time with one thread each; finished seeds are skipped, so the command can be stopped and
rerun.  Then it prints, per seed and as mean ± standard deviation over seeds, the test error
of best.pt and of the final weights, the baseline's, and the gain of the unlabelled data, and
(with ``--curve``) draws the per-epoch validation error of every seed into a PNG.

    python benchmarks/semisupervised.py --spec specs/digits_m2.gvae --seeds 0-7 --out /tmp/bench/digits
    python benchmarks/semisupervised.py --spec specs/mnist_m2.gvae --seeds 0-2 --out /tmp/bench/mnist \\
        --curve /tmp/bench/mnist.png
    python benchmarks/semisupervised.py ... --set labels=50     # any train flag, after --set

``--summary`` only prints the table of what is there.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from compare_m2 import compiled_done, parse_seeds, run_jobs  # noqa: E402


def finished(run: Path) -> bool:
    """The run and its baseline both reached their last epoch."""
    if not (run / "config.json").exists():
        return False
    epochs = json.loads((run / "config.json").read_text())["epochs"]
    return compiled_done(run, epochs) and compiled_done(run / "baseline", epochs)


def jobs_for(seed: int, args) -> list:
    run = Path(args.out) / f"s{seed}"
    if finished(run):
        return []
    flags = [f"--set={item}" for item in args.set]
    if (run / "last.pt").exists():  # an unfinished run (or baseline): continue where it stopped
        if compiled_done(run, json.loads((run / "config.json").read_text())["epochs"]):
            cmd = [sys.executable, "-m", "graphvae", "baseline", str(run), "--no-progress"]
        else:
            cmd = [sys.executable, "-m", "graphvae", "train", "--resume", str(run), "--baseline", "--no-progress"]
    else:
        cmd = [sys.executable, "-m", "graphvae", "train", args.spec, "--seed", str(seed), "--out", str(run),
               "--baseline", "--no-progress", *flags]
    return [(f"seed {seed}", cmd, Path(args.out) / f"s{seed}.log")]


def figures(run: Path) -> dict:
    """Test errors (percent) of the run's best.pt and final weights and of its baseline's best.pt."""
    from graphvae.train.evaluate import evaluate_run

    best = evaluate_run(run, samples=0, which="best", split="test", device="cpu")
    last = evaluate_run(run, samples=0, which="last", split="test", device="cpu")
    key = next(f"error/{name}" for name, domain in best["supervised"].items() if f"error/{name}" in best)
    out = {"best": 100 * best[key], "final": 100 * last[key], "epoch": best["epoch"]}
    if "baseline" in best:
        out["baseline"] = 100 * best["baseline"][key]
        out["gain"] = out["baseline"] - out["best"]
    return out


def _mean_sd(values: list[float]) -> str:
    if not values:
        return "-"
    sd = f" ± {statistics.stdev(values):.2f}" if len(values) > 1 else ""
    return f"{statistics.mean(values):.2f}{sd}"


def summary(seeds: list[int], out: Path) -> dict:
    rows = {s: figures(out / f"s{s}") for s in seeds if (out / f"s{s}" / "best.pt").exists()}
    if not rows:
        raise SystemExit(f"no finished runs in {out}")
    print("| seed | best.pt epoch | best.pt | final | labelled-only baseline | gain |")
    print("|---|---|---|---|---|---|")
    for s, r in rows.items():
        print(f"| {s} | {r['epoch']} | {r['best']:.2f} % | {r['final']:.2f} % | {r.get('baseline', float('nan')):.2f} % "
              f"| {r.get('gain', float('nan')):+.2f} |")
    cols = {k: [r[k] for r in rows.values() if k in r] for k in ("best", "final", "baseline", "gain")}
    print(f"| mean ± sd over {len(rows)} | | {_mean_sd(cols['best'])} % | {_mean_sd(cols['final'])} % | "
          f"{_mean_sd(cols['baseline'])} % | {_mean_sd(cols['gain'])} |")
    return rows


def curve(seeds: list[int], out: Path, path: str) -> None:
    from graphvae.train.pictures import _pyplot, save_figure

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for s in seeds:
        for folder, style in ((out / f"s{s}", "-"), (out / f"s{s}" / "baseline", ":")):
            metrics = folder / "metrics.jsonl"
            if not metrics.exists():
                continue
            rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
            key = next((k for k in rows[0] if k.startswith("val/error/")), None)
            if key:
                label = f"seed {s}" + (" labelled-only" if style == ":" else "")
                ax.plot([r["epoch"] for r in rows], [100 * r[key] for r in rows], style, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation error (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    save_figure(fig, path)
    print(f"wrote {path}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--spec", default=str(ROOT / "specs" / "digits_m2.gvae"))
    p.add_argument("--seeds", default="0-7")
    p.add_argument("--out", required=True)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a train setting for every seed")
    p.add_argument("--parallel", type=int, default=2)
    p.add_argument("--curve", default="", help="also draw the validation curves into this PNG")
    p.add_argument("--summary", action="store_true", help="only print the table of the finished runs")
    args = p.parse_args(argv)
    seeds, out = parse_seeds(args.seeds), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not args.summary:
        run_jobs([job for s in seeds for job in jobs_for(s, args)], args.parallel)
    summary(seeds, out)
    if args.curve:
        curve(seeds, out, args.curve)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
