"""``graphvae eval RUN``: test error per supervised variable, ELBO and IWAE-K of a trained run."""

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
    return lines


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


def run(args) -> int:
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
