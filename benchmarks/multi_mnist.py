"""The multi-MNIST experiment of issue 16: specs/multi_mnist.gvae against its labelled-only baseline.

For each seed: write a seeded ``graphvae data make multi-mnist --max-digits 3`` file (0-3 MNIST
digits on a 50x50 canvas), train the spec on it with a labelled subset of canvases (the same
subset for the semi-supervised run and its baseline, which ``train --baseline`` trains on those
labels alone), then measure on the held-out test split the count's error, each slot's digit
error (over the canvases where the slot holds a digit) and each slot's position RMSE in pixels.
Prints each seed, then seed means +- standard deviations side by side.

    python benchmarks/multi_mnist.py --seeds 0-2 --out runs/bench_multi_mnist     # full size
    python benchmarks/multi_mnist.py --small --out /tmp/bench_multi_mnist         # about a minute

MNIST's IDX files must be in ``--data-dir`` or ``$GRAPHVAE_DATA`` (``mnist/`` under it is looked
in too).  ``--small``: 600 canvases, 100 labelled, 1 epoch.  Train with one thread (``--threads``).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import time
from pathlib import Path

from shaded_shapes import hardware, parse_seeds, print_side_by_side

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "specs" / "multi_mnist.gvae"
FULL = {"count": 10000, "labels": 500, "epochs": None}
SMALL = {"count": 600, "labels": 100, "epochs": 1}
SLOTS = 3
ROWS = ([("count error (%)", "error/count", 100.0)]
        + [(f"digit error, slot {k} (%)", f"error/digits_{k}", 100.0) for k in range(SLOTS)]
        + [(f"position RMSE, slot {k} (pixels)", f"error/positions_{k}", 1.0) for k in range(SLOTS)])


def measure(run: Path) -> dict:
    """The test errors of ``run`` and of its baseline (best.pt of each)."""
    from graphvae.train.evaluate import evaluate_run

    res = evaluate_run(run, samples=0, device="cpu")
    return {who: {key: errors[key] for _, key, _ in ROWS if key in errors}
            for who, errors in (("model", res), ("baseline", res["baseline"]))}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", default="0", help="e.g. 0-2 or 0,3 (default 0): data, labels and training seed")
    p.add_argument("--out", default="runs/bench_multi_mnist", help="folder for the data and the runs")
    p.add_argument("--small", action="store_true", help="600 canvases and 1 epoch: about a minute")
    p.add_argument("--spec", default=str(SPEC), help="the spec to train (default specs/multi_mnist.gvae)")
    p.add_argument("--epochs", type=int, default=None, help="override the spec's epochs")
    p.add_argument("--labels", type=int, default=None, help="labelled canvases (default 500; --small 100)")
    p.add_argument("--data-dir", default=None, help="where MNIST's IDX files are (default $GRAPHVAE_DATA)")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    try:
        seeds = parse_seeds(args.seeds)
    except ValueError:
        p.error(f"--seeds {args.seeds!r}: give seeds as 0, 0-2 or 0,3")
    if args.threads < 1 or (args.epochs is not None and args.epochs < 1) or (args.labels is not None
                                                                              and args.labels < 1):
        p.error("--threads, --epochs and --labels must be at least 1")

    from graphvae.cli import main as graphvae

    sizes = dict(SMALL if args.small else FULL)
    epochs, labels = args.epochs or sizes["epochs"], args.labels or sizes["labels"]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print("command: " + " ".join([Path(sys.argv[0]).name if argv is None else "multi_mnist.py",
                                  *(sys.argv[1:] if argv is None else argv)]))
    print(f"hardware: {hardware()}; {args.threads} training thread(s); spec {args.spec}")
    print(f"data: graphvae data make multi-mnist --max-digits {SLOTS} --count {sizes['count']} --seed SEED; "
          f"{labels} labelled canvases; epochs {epochs or 'as in the spec'}")
    results = []
    for seed in seeds:
        data = out / f"multi_seed{seed}.npz"
        run = out / f"run_seed{seed}"
        argv_make = ["data", "make", "multi-mnist", "--max-digits", str(SLOTS), "--out", str(data), "--count",
                     str(sizes["count"]), "--seed", str(seed), "--force"]
        if args.data_dir:
            argv_make += ["--data-dir", args.data_dir]
        argv_train = ["train", args.spec, "--data", str(data), "--out", str(run), "--seed", str(seed),
                      "--threads", str(args.threads), "--device", "cpu", "--no-progress", "--baseline",
                      "--set", f"labels={labels}"]
        if epochs:
            argv_train += ["--epochs", str(epochs)]
        start = time.perf_counter()
        log = io.StringIO()
        with contextlib.redirect_stdout(log):
            done = (run / "baseline" / "best.pt").is_file()
            rc = 0 if done else (graphvae(argv_make) or graphvae(argv_train))
        if rc:
            print(log.getvalue() + f"seed {seed}: graphvae exited {rc}", file=sys.stderr)
            return rc
        row = measure(run)
        row["seconds"] = time.perf_counter() - start
        results.append(row)
        (out / f"seed{seed}.json").write_text(json.dumps(row, indent=2))
        print(f"seed {seed} ({row['seconds']:.0f} s): " + "; ".join(
            f"{label} {row['model'][key] * scale:.2f} vs baseline {row['baseline'][key] * scale:.2f}"
            for label, key, scale in ROWS if key in row["model"]))
    print(f"\n{len(results)} seed(s): mean ± standard deviation over seeds, test split")
    print_side_by_side(results, ROWS, 32)
    return 0


if __name__ == "__main__":
    sys.exit(main())
