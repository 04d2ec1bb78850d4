"""The faces-like experiment of issue 16: specs/shaded_shapes.gvae against its labelled-only baseline.

For each seed: train the spec on a seeded ``graphvae data make shaded-shapes`` file (the same file,
and the same labelled subset, for the semi-supervised run and its baseline, which ``train
--baseline`` trains on the run's labels alone), then measure on the held-out test split the
identity error and the RMSE of each light component (degrees: the file stores the light in
degrees and nothing is rescaled), and on every example of the file MIG and DCI of the codes
(identity's mode, light's mean, z's mean) against the factors identity, light[0] (azimuth) and
light[1] (elevation).  Prints each seed, then seed means +- standard deviations side by side.

    python benchmarks/shaded_shapes.py --seeds 0 --out runs/bench_shapes            # full size
    python benchmarks/shaded_shapes.py --small --out /tmp/bench_shapes              # < 1 minute

``--small`` (the smoke test's mode): 300 images of 4 identities at 8x8, 2 epochs, the spec's
sizes cut to match.  Train with one thread (``--threads``, default 1).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "specs" / "shaded_shapes.gvae"
FULL = {"count": 2432, "identities": 38, "size": 32, "labels_per_identity": 2, "epochs": None}
SMALL = {"count": 300, "identities": 4, "size": 8, "labels_per_identity": 2, "epochs": 2}
ROWS = [("identity error (%)", "error/identity", 100.0), ("light[0] azimuth RMSE (deg)", "rmse/light[0]", 1.0),
        ("light[1] elevation RMSE (deg)", "rmse/light[1]", 1.0), ("MIG", "mig", 1.0),
        ("DCI disentanglement", "dci_d", 1.0), ("DCI completeness", "dci_c", 1.0),
        ("DCI informativeness (mean test error)", "dci_i", 1.0)]


def parse_seeds(text: str) -> list[int]:
    """``"0-2,5"`` -> [0, 1, 2, 5]."""
    seeds: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.strip().partition("-")
        seeds += list(range(int(lo), int(hi or lo) + 1))
    return seeds


def spec_text(sizes: dict, spec: Path = SPEC) -> str:
    """``spec`` (default specs/shaded_shapes.gvae) with its image size, identities and data path set for ``sizes``."""
    text = Path(spec).read_text()
    text = text.replace("unit[32, 32]", f"unit[{sizes['size']}, {sizes['size']}]")
    text = text.replace("categorical[38]", f"categorical[{sizes['identities']}]")
    text = re.sub(r"labels\s*=\s*\d+", f"labels = {sizes['identities'] * sizes['labels_per_identity']}", text)
    return text


def hardware() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), cpu)
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, torch {torch.__version__}, "
            f"{platform.system()} {platform.release()}")


def measure(run: Path, data: Path) -> dict:
    """Test errors of ``run`` and its baseline, and MIG / DCI of both against the file's factors."""
    import numpy as np

    from graphvae.cli.eval import code_columns, factor_scores
    from graphvae.train.evaluate import evaluate_run
    from graphvae.train.runs import load_run

    res = evaluate_run(run, samples=0, device="cpu")
    out = {}
    for who, path, errors in (("model", run, res), ("baseline", run / "baseline", res["baseline"])):
        row = {k: v for k, v in errors.items() if k.startswith(("error/", "rmse/"))}
        loaded = load_run(path, "best", "cpu")
        codes, columns, parts = code_columns(loaded.encode(data=str(data)), loaded.spec)
        f = np.load(data)
        discrete = [what == "mode" for dims, what in parts.values() for _ in range(dims)]
        scores = factor_scores(codes, columns, {"identity": f["identity"], "light": f["light"]}, 20, "linear", 0,
                               discrete)
        row.update(mig=scores["mig"], dci_d=scores["dci"]["disentanglement"], dci_c=scores["dci"]["completeness"],
                   dci_i=scores["dci"]["informativeness"])
        out[who] = row
    return out


def mean_sd(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def print_side_by_side(results: list[dict], rows, width: int) -> None:
    """A Markdown table of each measure's seed mean ± sd, the model beside its baseline (a measure
    that some seed lacks is left out)."""
    print(f"| {'measure':<{width}} | {'semi-supervised':>17} | {'labelled-only':>17} |")
    print(f"|{'-' * (width + 2)}|{'-' * 19}|{'-' * 19}|")
    for label, key, scale in rows:
        if all(key in r["model"] for r in results):
            model = mean_sd([r["model"][key] * scale for r in results])
            base = mean_sd([r["baseline"][key] * scale for r in results])
            print(f"| {label:<{width}} | {model:>17} | {base:>17} |")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", default="0", help="e.g. 0-2 or 0,3 (default 0): data, labels and training seed")
    p.add_argument("--out", default="runs/bench_shaded_shapes", help="folder for the data and the runs")
    p.add_argument("--small", action="store_true", help="a small data set and 2 epochs: under a minute")
    p.add_argument("--epochs", type=int, default=None, help="override the spec's epochs")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--spec", default=str(SPEC), help="the model (default specs/shaded_shapes.gvae; "
                   "specs/shaded_shapes_conv.gvae reads the images with a conv)")
    args = p.parse_args(argv)
    try:
        seeds = parse_seeds(args.seeds)
    except ValueError:
        p.error(f"--seeds {args.seeds!r}: give seeds as 0, 0-2 or 0,3")
    if args.threads < 1 or (args.epochs is not None and args.epochs < 1):
        p.error("--threads and --epochs must be at least 1")
    if not Path(args.spec).is_file():
        p.error(f"--spec {args.spec}: no such file")

    from graphvae.cli import main as graphvae
    from graphvae.data.synthetic import make_shaded_shapes  # noqa: F401  (fails early when missing)

    sizes = dict(SMALL if args.small else FULL)
    epochs = args.epochs or sizes["epochs"]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    spec = out / "shaded_shapes.gvae"
    spec.write_text(spec_text(sizes, Path(args.spec)))
    print("command: " + " ".join([Path(sys.argv[0]).name if argv is None else "shaded_shapes.py",
                                  *(sys.argv[1:] if argv is None else argv)]))
    print(f"hardware: {hardware()}; {args.threads} training thread(s)")
    print(f"data: graphvae data make shaded-shapes --count {sizes['count']} --identities {sizes['identities']} "
          f"--size {sizes['size']} --seed SEED; {sizes['identities'] * sizes['labels_per_identity']} labels "
          f"({sizes['labels_per_identity']} per identity); epochs {epochs or 'as in the spec'}")
    results = []
    for seed in seeds:
        data = out / f"shapes_seed{seed}.npz"
        run = out / f"run_seed{seed}"
        argv_make = ["data", "make", "shaded-shapes", "--out", str(data), "--count", str(sizes["count"]),
                     "--identities", str(sizes["identities"]), "--size", str(sizes["size"]), "--seed", str(seed),
                     "--force"]
        argv_train = ["train", str(spec), "--data", str(data), "--out", str(run), "--seed", str(seed),
                      "--threads", str(args.threads), "--device", "cpu", "--no-progress", "--baseline"]
        if epochs:
            argv_train += ["--epochs", str(epochs)]
        start = time.perf_counter()
        log = io.StringIO()
        with contextlib.redirect_stdout(log):
            rc = graphvae(argv_make) or (0 if (run / "baseline" / "best.pt").is_file() else graphvae(argv_train))
        if rc:
            print(log.getvalue() + f"seed {seed}: graphvae exited {rc}", file=sys.stderr)
            return rc
        row = measure(run, data)
        row["seconds"] = time.perf_counter() - start
        results.append(row)
        (out / f"seed{seed}.json").write_text(json.dumps(row, indent=2))
        print(f"seed {seed} ({row['seconds']:.0f} s): " + "; ".join(
            f"{label} {row['model'][key] * scale:.3f} vs baseline {row['baseline'][key] * scale:.3f}"
            for label, key, scale in ROWS))
    print(f"\n{len(results)} seed(s): mean ± standard deviation over seeds (test split for the errors, "
          "every example of the file for MIG and DCI)")
    print_side_by_side(results, ROWS, 40)
    return 0


if __name__ == "__main__":
    sys.exit(main())
