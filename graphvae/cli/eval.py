"""``graphvae eval RUN``: test error per supervised variable, ELBO and IWAE-K of a trained run;
with ``--factors``, the disentanglement of its codes against known factors (:mod:`graphvae.train.measures`)."""

from __future__ import annotations

import json

from graphvae.errors import UserError
from graphvae.train.evaluate import EVAL_BATCH, evaluate_run


def error_text(value: float, domain: str) -> str:
    """A supervised variable's error: a percentage for a categorical one, an RMSE otherwise."""
    return f"{100 * value:.2f}%" if domain == "categorical" else f"{value:.4f} RMSE"


def format_report(res: dict) -> str:
    lines = [f"{res['run']} ({res['checkpoint']}.pt, epoch {res['epoch']}, step {res['step']}) "
             f"on {res['data']} {res['split']}: {res['examples']} examples"]
    for name, domain in res.get("supervised", {}).items():
        if f"error/{name}" in res:
            text = error_text(res[f"error/{name}"], domain) + (" error" if domain == "categorical" else "")
            lines.append(f"  {name:<10} {text}")
            for part in component_keys(res, name):
                lines.append(f"  {part:<10} {res[f'rmse/{part}']:.4f} RMSE")
    if any(k.startswith("rmse/") for k in res):
        lines.append("  (each RMSE in its variable's own units, those of the data's labels)")
    lines += baseline_lines(res)
    lines.append(f"  ELBO       {res['elbo']:.3f} nats per example")
    if "iwae" in res:
        lines.append(f"  IWAE-{res['iwae_samples']:<5} {res['iwae']:.3f} nats per example (a tighter bound on log p(x))")
    if "labelled_examples" in res and res.get("supervised"):
        lines.append(f"  trained with {res['labelled_examples']} labelled examples")
    return "\n".join(lines)


def baseline_lines(res: dict) -> list[str]:
    """The labelled-only baseline's errors beside the run's, and what the unlabelled data gained."""
    base = res.get("baseline")
    if not base:
        return []
    lines = [f"  labelled-only baseline ({res['run']}/baseline, epoch {base['epoch']}, step {base['step']}):"]
    for name, domain in res.get("supervised", {}).items():
        key = f"error/{name}"
        if key in res and key in base:
            gain = base[key] - res[key]
            unit = "points" if domain == "categorical" else "RMSE"
            amount = f"{100 * gain:+.2f} {unit}" if domain == "categorical" else f"{gain:+.4f} {unit}"
            lines.append(f"  {name:<10} {error_text(base[key], domain)} alone; the unlabelled data gain {amount}")
            for part in component_keys(res, name):
                if f"rmse/{part}" in base:
                    gain = base[f"rmse/{part}"] - res[f"rmse/{part}"]
                    lines.append(f"  {part:<10} {base[f'rmse/{part}']:.4f} RMSE alone; the unlabelled data gain "
                                 f"{gain:+.4f} RMSE")
    return lines


def component_keys(res: dict, name: str) -> list[str]:
    """``["light[0]", "light[1]"]``: the values of ``name`` whose RMSE ``res`` holds as ``rmse/light[0]``, ..."""
    head = f"rmse/{name}["
    return [k[len("rmse/"):] for k in res if k.startswith(head) and k.endswith("]")]


def available_memory(device: str = "cpu") -> int | None:
    """Bytes of memory available now on ``device`` (a CUDA device's free memory, else Linux's
    MemAvailable), or None when unknown."""
    import torch

    if device.startswith("cuda") or (device == "auto" and torch.cuda.is_available()):
        try:
            return int(torch.cuda.mem_get_info(torch.device("cuda" if device == "auto" else device))[0])
        except (RuntimeError, AssertionError, ValueError):
            return None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check_samples(k: int | None, spec, free: int | None = None, device: str = "cpu") -> None:
    """Refuse up front an IWAE ``-k`` whose samples cannot fit in memory: K draws of every
    variable and network activation for each of EVAL_BATCH examples at once, 4 bytes each."""
    free = available_memory(device) if free is None else free
    if not k or free is None:
        return
    width = sum(max(1, _numel(v.shape)) for v in spec.variables)
    nets = [n for f in (*spec.encoder, *spec.decoder) for n in (f.dist.nets if f.dist is not None else (f.net,))]
    width += sum(int(h) for n in nets if n is not None for h in n.hidden)
    need = 4 * 3 * k * EVAL_BATCH * width  # x3: the values, their log-densities and temporaries
    if need > free:
        fits = max(1, free // (4 * 3 * EVAL_BATCH * width))
        raise UserError(f"-k {k} is too large: IWAE draws K samples for each of {EVAL_BATCH} examples at once, "
                        f"about {need / 2**30:,.1f} GiB here, and {free / 2**30:,.1f} GiB is available "
                        f"(about -k {fits:,} fits)")


def _numel(shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


# -- eval --factors: disentanglement against known factors -----------------------------------------
def factor_names(option: str, listed: list[str], stored, path: str) -> list[str]:
    """The factor names: ``--factors a,b``'s, or with no value those of the file's ``_factors`` array."""
    from graphvae.spec.diagnostics import did_you_mean

    arrays = [n for n in listed if n != "_factors"]
    if option.strip():
        names = [n.strip() for n in option.split(",") if n.strip()]
        source = "--factors"
    elif stored is None:
        raise UserError(f"{path} has no _factors array listing its factors; name them: --factors NAME,NAME "
                        f"(arrays: {', '.join(arrays) or 'none'})")
    else:
        names = [(n.decode() if isinstance(n, bytes) else str(n)).strip() for n in stored.reshape(-1)]
        source = f"the _factors array of {path}"
    if not names:
        raise UserError(f"{source} names no factor")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UserError(f"{source} names {', '.join(twice)} more than once")
    unknown = [n for n in names if n not in arrays]
    if unknown:
        hint = did_you_mean(unknown[0], arrays) if len(unknown) == 1 else None
        raise UserError(f"{path} has no array {', '.join(repr(n) for n in unknown)} named by {source}"
                        + (f"; {hint}" if hint else "") + f" (arrays: {', '.join(arrays) or 'none'})")
    return names


def read_factors(path: str, option: str) -> dict:
    """The factor arrays of the .npz file ``path`` named by ``option`` (see :func:`factor_names`),
    each an integer (categorical) or float (continuous) array."""
    from pathlib import Path

    from graphvae.data import read_npz

    p = Path(path).expanduser()
    if not p.is_file():
        raise UserError(f"data file {path} not found ({p.resolve()})")
    listed, found = read_npz(p, path, ["_factors"])
    names = factor_names(option, listed, found.get("_factors"), path)
    _, arrays = read_npz(p, path, names)
    for name in names:
        if arrays[name].dtype.kind not in "iubf":
            raise UserError(f"array '{name}' of {path} has dtype {arrays[name].dtype}; a factor is an integer "
                            "(categorical) or float (continuous) array")
    return {name: arrays[name] for name in names}


def check_rows(factors: dict, n: int, path: str) -> None:
    """Each factor array holds one row per example of the file's observed arrays (``n``)."""
    for name, a in factors.items():
        if a.ndim == 0 or len(a) != n:
            rows = "a single value" if a.ndim == 0 else f"{len(a)} rows"
            raise UserError(f"array '{name}' of {path} has {rows} and the file's observed arrays {n} examples; "
                            "a factor holds one row per example")


def code_columns(encoded: dict, spec) -> tuple:
    """The codes (N, D): every latent and supervised variable's mean (a discrete one's mode),
    flattened, in the spec's order; the columns' names; and ``{variable: (dims, "mean"|"mode")}``."""
    import numpy as np

    blocks, names, parts = [], [], {}
    for v in spec.variables:
        if v.role == "observed":
            continue
        a = np.asarray(encoded[v.name])
        a = a.reshape(len(a), -1)
        blocks.append(a.astype(np.float64) if not v.discrete else a)
        names += [v.name] if a.shape[1] == 1 else [f"{v.name}[{i}]" for i in range(a.shape[1])]
        parts[v.name] = (int(a.shape[1]), "mode" if v.discrete else "mean")
    if not blocks:
        raise UserError(f"model '{spec.name}' has no latent or supervised variable to take codes from")
    same = all(b.dtype.kind in "iub" for b in blocks)
    codes = np.concatenate(blocks, 1) if same else np.concatenate([b.astype(np.float64) for b in blocks], 1)
    return codes, names, parts


def _number(x) -> float | None:
    import math

    x = float(x)
    return x if math.isfinite(x) else None


def factor_scores(codes, columns: list[str], factors: dict, bins: int, probe: str, seed: int,
                  discrete=None) -> dict:
    """MIG and DCI of ``codes`` for ``factors`` as plain (JSON-able) values; ``discrete`` marks the
    columns that are a discrete variable's mode (classes for MIG, not binned)."""
    from graphvae.train.measures import dci, factor_columns, mig

    m = mig(codes, factors, bins=bins, discrete=discrete)
    d = dci(codes, factors, probe=probe, seed=seed)
    per = {}
    for k, name in enumerate(m.factors):
        row = {"kind": None, "entropy": _number(m.entropy[k]), "mig_gap": _number(m.gap[k]),
               "top_code": columns[m.top[k]] if m.top[k] >= 0 else None,
               "mi_top": _number(m.mi[m.top[k], k]) if m.top[k] >= 0 else None,
               "completeness": None, "error": None}
        if name in d.factors:
            j = d.factors.index(name)
            row.update(kind=d.kinds[j], completeness=_number(d.per_factor[j]), error=_number(d.error[j]))
        per[name] = row
    for f in factor_columns(factors):
        per[f.name]["kind"] = f.kind
    return {"mig": m.score, "bins": bins,
            "dci": {"disentanglement": d.disentanglement, "completeness": d.completeness,
                    "informativeness": d.informativeness, "probe": probe, "test_fraction": d.test_fraction,
                    "seed": seed},
            "factors": per,
            "skipped": {"mig": dict(m.skipped), "dci": dict(d.skipped)},
            "mi": [[_number(x) for x in row] for row in m.mi],
            "importance": [[_number(x) for x in row] for row in d.importance],
            "code_columns": columns}


def factors_report(res: dict) -> str:
    """The text of ``eval --factors``: codes, MIG, DCI and a line per factor."""
    lines = [f"{res['run']} ({res['checkpoint']}, epoch {res['epoch']}, step {res['step']}) "
             f"on {res['data']}: {res['examples']} examples (all of the file's)"]
    parts = ", ".join(f"{name} {dims} ({what})" for name, (dims, what) in res["codes"].items())
    lines.append(f"  codes      {len(res['code_columns'])} dimensions: {parts}")
    lines.append(f"  MIG        {res['mig']:.3f}  (mutual-information gap, {res['bins']} bins)")
    d = res["dci"]
    lines.append(f"  DCI        disentanglement {d['disentanglement']:.3f}, completeness {d['completeness']:.3f}, "
                 f"informativeness {d['informativeness']:.3f} mean test error ({d['probe']} probe, "
                 f"{100 * d['test_fraction']:g}% held out, seed {d['seed']})")
    width = max(10, *(len(n) for n in res["factors"]))
    lines.append(f"  {'factor':<{width}} {'kind':<11} {'H nats':>6}  {'top code':<10} {'MIG gap':>7}  "
                 f"{'C':>5}  test error")
    for name, row in res["factors"].items():
        def num(x, spec=".3f"):
            return "-" if x is None else format(x, spec)

        err = "-" if row["error"] is None else (f"{100 * row['error']:.2f}%" if row["kind"] == "categorical"
                                                else f"{row['error']:.3f} NRMSE")
        lines.append(f"  {name:<{width}} {row['kind']:<11} {num(row['entropy']):>6}  {row['top_code'] or '-':<10} "
                     f"{num(row['mig_gap']):>7}  {num(row['completeness'], '.2f'):>5}  {err}")
    for measure, skipped in res["skipped"].items():
        for name, why in skipped.items():
            lines.append(f"  {measure.upper()} skips {name}: {why}")
    return "\n".join(lines)


def run_factors(args) -> int:
    """``graphvae eval RUN --data FILE.npz --factors NAMES``."""
    import json
    from pathlib import Path

    from graphvae.data import IMAGE_DATASETS
    from graphvae.train.runs import load_run

    if args.samples is not None:
        raise UserError("-k (IWAE) does not apply with --factors, which measures the codes instead")
    data = args.data
    run = load_run(args.run, args.checkpoint, args.device or "auto")
    if data is None:
        data = str(run.config.data)
        if data.lower() in ("digits", *IMAGE_DATASETS):
            raise UserError(f"--factors needs --data FILE.npz holding the factor arrays (the run's data, {data}, "
                            "is a data set without them)")
    elif data.lower() in ("digits", *IMAGE_DATASETS):
        raise UserError(f"--factors reads the factor arrays from an .npz file; --data {data} is a data set")
    if not Path(data).expanduser().is_file():
        raise UserError(f"data file {data} not found ({Path(data).expanduser().resolve()})")
    factors = read_factors(data, args.factors)  # names and types before the encoder runs
    codes, columns, parts = code_columns(run.encode(data=data, data_dir=args.data_dir, seed=args.seed), run.spec)
    check_rows(factors, len(codes), data)
    res = {"run": str(args.run), "checkpoint": run.checkpoint.name, "epoch": run.epoch, "step": run.step,
           "data": str(data), "examples": int(len(codes)),
           "codes": {name: list(part) for name, part in parts.items()}}
    discrete = [what == "mode" for dims, what in parts.values() for _ in range(dims)]
    res.update(factor_scores(codes, columns, factors, args.bins, args.probe, args.seed, discrete))
    print(json.dumps(res, indent=2) if args.json else factors_report(res))
    return 0


def run(args) -> int:
    if getattr(args, "factors", None) is not None:
        return run_factors(args)
    if args.samples is not None and args.samples > 0:
        from graphvae.spec.loader import load_spec
        from graphvae.train.runfolder import RunFolder

        folder = RunFolder(args.run).require()
        device = args.device or (folder.read_config().get("device") if folder.config_path.is_file() else None)
        check_samples(args.samples, load_spec(str(folder.spec_path())), device=str(device or "auto"))
    res = evaluate_run(args.run, data=args.data, data_dir=args.data_dir, samples=args.samples,
                       which=args.checkpoint, split=args.split, device=args.device)
    print(json.dumps(res, indent=2) if args.json else format_report(res))
    return 0
