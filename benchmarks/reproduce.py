"""The papers' MNIST table from specs: models x label counts x seeds, each cell a run folder.

Each cell is ``graphvae train SPEC --seed S --set labels=N --baseline`` into
``OUT/MODEL/nN/sS`` (an ordinary run folder with its labelled-only baseline in ``baseline/``,
as ``benchmarks/semisupervised.py`` lays them out), ``--parallel`` processes at a time with one
thread each.  A finished cell is skipped and an unfinished one resumed, so the command can be
stopped and run again.  ``--epochs E`` caps every cell at E epochs (the cell's recipe, its
spec's train block, may ask for more: the table then says "(E of R epochs)"); ``--budget H``
starts no new cell after H hours (cells already running finish) and lists the cells it did
not start.  Then it writes, in ``OUT``:

* ``results.json``: per cell the model, labels, seed, epochs run and planned, the test error
  (percent) of best.pt and of the final weights, the baseline's, seconds per epoch, device
  (each evaluated once per state of its checkpoints; cells of earlier calls are kept), and
  the final weights' test error at every epoch a call ended the cell (``test_error_at``);
* ``table.md``: mean ± standard deviation over seeds per model and label count, beside the
  papers' figures, and for the ADGM the public training log at the same epochs;
* ``curves.png``: validation error per epoch, a panel per model, a line per label count and seed.

    python benchmarks/reproduce.py --out runs/reproduce                       # everything, CPU
    python benchmarks/reproduce.py --out runs/reproduce --models kingma_m2 --labels 100 --seeds 0-2
    python benchmarks/reproduce.py --out runs/reproduce --models adgm --labels 100 --budget 4
    python benchmarks/reproduce.py --out runs/gpu --device cuda --set autocast=bf16 --labels 100
    python benchmarks/reproduce.py --out runs/reproduce --summary              # print, run nothing

MNIST is read from ``$GRAPHVAE_DATA`` (or ``--set data_dir=DIR``).  docs/reproduce.md has the recipes.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from compare_m2 import compiled_done, parse_seeds, run_jobs  # noqa: E402
from semisupervised import _mean_sd, figures  # noqa: E402

MODELS = ("kingma_m2", "mnist_m2", "siddharth_mnist", "adgm", "sdgm")
LABELS = (100, 600, 1000, 3000)

# test error (percent) the papers report, per label count
PAPERS = {
    "kingma_m2": ("Kingma et al. 2014, M2", {100: 11.97, 600: 4.94, 1000: 3.60, 3000: 3.92}),
    "mnist_m2": ("Kingma et al. 2014, M2", {100: 11.97, 600: 4.94, 1000: 3.60, 3000: 3.92}),
    "siddharth_mnist": ("Siddharth et al. 2017", {100: 9.71, 600: 3.84, 1000: 2.88, 3000: 1.57}),
    "adgm": ("Maaløe et al. 2016, ADGM", {100: 0.96}),
    "sdgm": ("Maaløe et al. 2016, SDGM", {100: 1.32}),
}
# the public ADGM training log (MNIST, 100 labels, 10 samples): test error (percent) at these epochs
ADGM_LOG = {10: 17.3, 50: 14.6}


class BudgetedJobs(list):
    """The cells still to start, as ``compare_m2.run_jobs`` takes them: it starts jobs while the
    list is true, so once the deadline has passed the list reads as empty and no new cell
    starts (the running ones finish); ``left`` then holds the names of those not started."""

    def __init__(self, jobs, deadline: float):
        super().__init__(jobs)
        self.deadline = deadline

    def __bool__(self) -> bool:
        return len(self) > 0 and time.monotonic() < self.deadline

    @property
    def left(self) -> list[str]:
        return [name for name, _, _ in self]


# -- the cells ---------------------------------------------------------------------------------------
def spec_path(model: str) -> Path:
    """A model by name (``specs/NAME.gvae`` or ``.yaml``) or a spec file's path."""
    path = Path(model)
    if path.suffix in (".gvae", ".yaml", ".yml") and path.exists():
        return path
    for suffix in (".gvae", ".yaml"):
        if (ROOT / "specs" / f"{model}{suffix}").exists():
            return ROOT / "specs" / f"{model}{suffix}"
    raise SystemExit(f"no spec for model {model!r} (looked for specs/{model}.gvae and a file of that name)")


def recipe_epochs(spec: Path, sets: list[str]) -> int:
    """The epochs the cell's recipe plans: ``--set epochs=`` if given, else the spec's train block."""
    for item in sets:
        key, _, value = item.partition("=")
        if key.strip() == "epochs":
            return int(value)
    from graphvae.spec.loader import load_spec_file
    from graphvae.train import config as trainconfig

    return trainconfig.from_spec(load_spec_file(spec)[0]).epochs


def metric_rows(run: Path) -> list[dict]:
    path = run / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def epochs_run(run: Path) -> int:
    rows = metric_rows(run)
    return int(rows[-1]["epoch"]) if rows else 0


def cell_job(name: str, spec: Path, run: Path, seed: int, labels: int, target: int, args):
    """The command that brings the cell to ``target`` epochs (run and baseline), or None when it is there."""
    if compiled_done(run, target) and compiled_done(run / "baseline", target):
        return None
    if (run / "last.pt").exists() and epochs_run(run) > target:
        return None  # it ran further before (a larger cap); leave it as it is
    py = [sys.executable, "-m", "graphvae"]
    if (run / "last.pt").exists():
        if compiled_done(run, target):
            cmd = py + ["baseline", str(run), "--device", args.device, "--no-progress"]
        else:
            cmd = py + ["train", "--resume", str(run), "--epochs", str(target), "--device", args.device, "--baseline",
                        "--no-progress"]
    else:
        flags = [f"--set={item}" for item in args.set]
        cmd = py + ["train", str(spec), "--seed", str(seed), "--out", str(run), "--baseline", "--no-progress",
                    *flags, f"--set=labels={labels}", f"--set=epochs={target}", f"--set=device={args.device}"]
    return (name, cmd, run.parent / f"{run.name}.log")


def cells(args) -> list[dict]:
    out = []
    for model in args.models:
        spec = spec_path(model)
        planned = recipe_epochs(spec, args.set)
        target = min(planned, args.epochs) if args.epochs else planned
        for labels in args.labels:
            for seed in args.seeds:
                run = Path(args.out) / spec.stem / f"n{labels}" / f"s{seed}"
                out.append({"model": spec.stem, "spec": spec, "labels": labels, "seed": seed, "run": run,
                            "planned": planned, "target": target,
                            "name": f"{spec.stem} labels={labels} seed={seed}"})
    return out


# -- figures -----------------------------------------------------------------------------------------
def _stamp(path: Path) -> list:
    st = path.stat() if path.exists() else None
    return [st.st_mtime_ns, st.st_size] if st else None


def _device(run: Path, config: dict) -> str:
    """The device the run's first line named (``device cuda:0``), else its config's setting."""
    log = run.parent / f"{run.name}.log"
    if log.exists():
        m = re.search(r"; device (\S+?)[;,]", log.read_text(errors="replace"))
        if m:
            return m.group(1)
    return config.get("device", "?")


def cell_result(cell: dict, cache: dict) -> dict | None:
    """The cell's entry of results.json (its test errors evaluated once per pair of checkpoints), or None."""
    run = cell["run"]
    if not (run / "best.pt").exists():
        return None
    stamp = [_stamp(run / "best.pt"), _stamp(run / "last.pt"), _stamp(run / "baseline" / "best.pt")]
    key = f"{cell['model']}/n{cell['labels']}/s{cell['seed']}"
    old = cache.get(key)
    if old and old.get("stamp") == stamp:
        return old
    rows = metric_rows(run)
    config = json.loads((run / "config.json").read_text())
    fig = figures(run)
    at = dict(old.get("test_error_at", {})) if old else {}  # the final weights' test error at each epoch it ended
    at[str(epochs_run(run))] = fig["final"]
    return {"model": cell["model"], "labels": cell["labels"], "seed": cell["seed"], "run": str(run),
            "epochs": epochs_run(run), "planned_epochs": cell["planned"], "best_epoch": fig["epoch"],
            "test_error_best": fig["best"], "test_error_final": fig["final"],
            "baseline_test_error": fig.get("baseline"), "baseline_epochs": epochs_run(run / "baseline"),
            "seconds_per_epoch": sum(r["epoch_seconds"] for r in rows) / len(rows),
            "device": _device(run, config), "test_error_at": at, "stamp": stamp}


def _epochs_mark(results: list[dict], planned: int, seeds: int) -> str:
    marks = []
    done = sorted({r["epochs"] for r in results})
    if done and done[0] < planned:
        ran = str(done[0]) if len(done) == 1 else f"{done[0]}-{done[-1]}"
        marks.append(f"{ran} of {planned} epochs")
    if len(results) < seeds:
        marks.append(f"{len(results)} of {seeds} seeds")
    return f" ({'; '.join(marks)})" if marks else ""


def table(all_cells: list[dict], results: dict, n_seeds: int) -> list[str]:
    lines = [("| model | labels | semi-supervised (best.pt) | final weights | labelled-only baseline | s / epoch | "
              "paper |"), "|---|---|---|---|---|---|---|"]
    groups: dict[tuple, list[dict]] = {}
    for c in all_cells:
        groups.setdefault((c["model"], c["labels"], c["planned"]), [])
        r = results.get(f"{c['model']}/n{c['labels']}/s{c['seed']}")
        if r:
            groups[(c["model"], c["labels"], c["planned"])].append(r)
    for (model, labels, planned), rs in groups.items():
        source, figs = PAPERS.get(model, ("", {}))
        paper = f"{figs[labels]:.2f} % ({source})" if labels in figs else "-"
        if not rs:
            lines.append(f"| {model} | {labels} | not run | | | | {paper} |")
            continue
        best = _mean_sd([r["test_error_best"] for r in rs])
        final = _mean_sd([r["test_error_final"] for r in rs])
        base = _mean_sd([r["baseline_test_error"] for r in rs if r["baseline_test_error"] is not None])
        speed = statistics.mean(r["seconds_per_epoch"] for r in rs)
        devices = ", ".join(sorted({r["device"] for r in rs}))
        lines.append(f"| {model} | {labels} | **{best} %**{_epochs_mark(rs, planned, n_seeds)} | {final} % | "
                     f"{base} % | {speed:.1f} ({devices}) | {paper} |")
    return lines


def adgm_log_lines(all_cells: list[dict], results: dict) -> list[str]:
    """The ADGM at 100 labels beside the public log, at the log's epochs that some seed reached."""
    runs = [c for c in all_cells
            if c["model"] == "adgm" and c["labels"] == 100 and (c["run"] / "metrics.jsonl").exists()]
    if not runs:
        return []
    from graphvae.spec.loader import load_spec_file
    from graphvae.spec.settings import objective_setting

    samples = objective_setting(load_spec_file(runs[0]["spec"])[0].objective, "samples")
    lines = [(f"ADGM, 100 labels, beside the public ADGM log (10 samples; this spec: {samples}). Ours is the "
              "validation error at that epoch (metrics.jsonl), and the test error of the final weights where a "
              "call of this script ended the run there (--epochs 10, then --epochs 50):"), "",
             "| epoch | public log, test | ours, validation | ours, test (final) |", "|---|---|---|---|"]
    for epoch, theirs in ADGM_LOG.items():
        val, test = [], []
        for c in runs:
            row = next((r for r in metric_rows(c["run"]) if r["epoch"] == epoch), None)
            if row:
                val.append(100 * next(v for k, v in row.items() if k.startswith("val/error/")))
                r = results.get(f"adgm/n100/s{c['seed']}")
                if r and str(epoch) in r.get("test_error_at", {}):
                    test.append(r["test_error_at"][str(epoch)])
        if val:
            lines.append(f"| {epoch} | {theirs:.1f} % | {_mean_sd(val)} % ({len(val)} seeds) | "
                         f"{_mean_sd(test) + ' %' if test else '-'} |")
    return lines if len(lines) > 4 else []


def curves(all_cells: list[dict], path: Path) -> bool:
    from graphvae.train.pictures import _pyplot, save_figure

    models = list(dict.fromkeys(c["model"] for c in all_cells if (c["run"] / "metrics.jsonl").exists()))
    if not models:
        return False
    plt = _pyplot()
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    labels = sorted({c["labels"] for c in all_cells})
    seeds = sorted({c["seed"] for c in all_cells})
    fig, axes = plt.subplots(1, len(models), figsize=(4.2 * len(models), 3.4), squeeze=False)
    for ax, model in zip(axes[0], models):
        for c in all_cells:  # a colour per label count, a line style per seed
            rows = metric_rows(c["run"]) if c["model"] == model else []
            key = next((k for k in rows[0] if k.startswith("val/error/")), None) if rows else None
            if key:
                ax.plot([r["epoch"] for r in rows], [100 * r[key] for r in rows], marker="." if len(rows) < 3 else None,
                        color=colours[labels.index(c["labels"]) % len(colours)],
                        linestyle=("-", "--", ":", "-.")[seeds.index(c["seed"]) % 4],
                        label=f"{c['labels']} labels, seed {c['seed']}")
        ax.set_title(model)
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation error (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    save_figure(fig, str(path))
    return True


# -- the command -------------------------------------------------------------------------------------
def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="the table's folder: OUT/MODEL/nLABELS/sSEED run folders")
    p.add_argument("--models", default=",".join(MODELS), help="spec names in specs/ or spec paths, comma separated")
    p.add_argument("--labels", default=",".join(map(str, LABELS)), help="label counts, comma separated")
    p.add_argument("--seeds", default="0-2", help="e.g. 0-2 or 0,3")
    p.add_argument("--epochs", type=int, default=0, help="cap every cell at this many epochs (0: each recipe's)")
    p.add_argument("--budget", type=float, default=None, metavar="HOURS",
                   help="start no new cell after this many hours (running cells finish)")
    p.add_argument("--parallel", type=int, default=2, help="cells at once, one thread each")
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N | auto, for every cell it starts or resumes")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a train setting for every new cell (not labels or epochs: use --labels, --epochs)")
    p.add_argument("--summary", action="store_true",
                   help="run nothing: print the table of what is there (and rewrite the files)")
    args = p.parse_args(argv)
    for item in args.set:
        if item.partition("=")[0].strip() == "labels":
            p.error("--set labels=...: give the label counts with --labels")
    args.models = [m for m in args.models.split(",") if m]
    args.labels = [int(n) for n in args.labels.split(",") if n]
    args.seeds = parse_seeds(args.seeds)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    all_cells = cells(args)
    left: list[str] = []
    if not args.summary:
        jobs = []
        for c in all_cells:
            c["run"].parent.mkdir(parents=True, exist_ok=True)
            job = cell_job(c["name"], c["spec"], c["run"], c["seed"], c["labels"], c["target"], args)
            if job:
                jobs.append(job)
        if not jobs:
            print("every cell is already at its epochs; nothing to run")
        deadline = time.monotonic() + 3600 * args.budget if args.budget is not None else float("inf")
        queue = BudgetedJobs(jobs, deadline)
        run_jobs(queue, args.parallel)
        left = queue.left
    results_path = out / "results.json"
    cache = {}
    if results_path.exists():
        cache = {f"{r['model']}/n{r['labels']}/s{r['seed']}": r for r in json.loads(results_path.read_text())["cells"]}
    # results.json keeps the cells of earlier calls (while their run folders hold a best.pt); the table
    # and the curves show the cells of this call
    results = {k: r for k, r in cache.items() if (Path(r["run"]) / "best.pt").exists()}
    for c in all_cells:
        r = cell_result(c, cache)
        if r:
            results[f"{c['model']}/n{c['labels']}/s{c['seed']}"] = r
    results_path.write_text(json.dumps({"cells": sorted(results.values(), key=lambda r: (r["model"], r["labels"],
                                                                                     r["seed"]))}, indent=1) + "\n")
    lines = table(all_cells, results, len(args.seeds))
    log_lines = adgm_log_lines(all_cells, results)
    notes = []
    capped = [c["name"] for c in all_cells if c["target"] < c["planned"]]
    if capped:
        notes.append(f"capped by --epochs {args.epochs}: {len(capped)} cells ({', '.join(capped)})")
    if left:
        notes.append(f"not started, --budget {args.budget} h spent: {len(left)} cells ({', '.join(left)})")
    missing = [c["name"] for c in all_cells if f"{c['model']}/n{c['labels']}/s{c['seed']}" not in results]
    if missing:
        notes.append(f"no best.pt yet: {len(missing)} cells ({', '.join(missing)})")
    text = "\n".join(lines + ([""] + log_lines if log_lines else []) + ([""] + notes if notes else [])) + "\n"
    (out / "table.md").write_text(text)
    print(text, end="")
    if curves(all_cells, out / "curves.png"):
        print(f"wrote {results_path}, {out / 'table.md'}, {out / 'curves.png'}")
    else:
        print(f"wrote {results_path}, {out / 'table.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
