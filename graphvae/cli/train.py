"""``graphvae train SPEC`` / ``graphvae train --resume RUN``: train, then report the test error of best.pt."""

from __future__ import annotations

from pathlib import Path

from graphvae.cli.eval import error_text
from graphvae.errors import UserError
from graphvae.spec.loader import load_spec_file
from graphvae.train import config as trainconfig
from graphvae.train.checkpoint import load_checkpoint
from graphvae.train.evaluate import evaluate_run
from graphvae.train.loop import train
from graphvae.train.runfolder import RunFolder


def _default_out(spec) -> Path:
    """``runs/<model>``, or ``runs/<model>-2``, ... : the first that holds no run yet and may take one."""
    base = Path("runs") / (spec.name or "run")
    out, n = base, 1
    while RunFolder(out).has_checkpoint() or (out.exists() and not _may_take_a_run(out)):
        n += 1
        out = base.with_name(f"{base.name}-{n}")
    return out


def _may_take_a_run(path: Path) -> bool:
    try:
        RunFolder(path).check_new_run_place()
    except UserError:
        return False
    return True


def _saved_config(folder: RunFolder):
    """The configuration ``RUN/last.pt`` was trained with (a one-line UserError when there is none)."""
    last = folder.checkpoint("last")
    if not last.is_file():
        if folder.checkpoint("best").is_file():
            raise UserError(f"{folder.path} has best.pt but no last.pt, which resuming needs")
        raise folder.no_checkpoint_yet()
    state = load_checkpoint(last)
    if not isinstance(state.get("config"), dict):
        raise UserError(f"{last}: not a valid graphvae checkpoint: 'config' is missing")
    return trainconfig.from_dict(state["config"], f"{last}")


def run(args) -> int:
    overrides = trainconfig.flag_overrides(args)
    if args.resume:
        folder = RunFolder(args.resume).require()
        saved = _saved_config(folder)
        cfg = trainconfig.resume_overrides(saved, overrides)
        if args.out and Path(args.out).resolve() != folder.path.resolve():
            raise UserError("--out and --resume name different folders; a resumed run stays in its folder")
        result = train(args.spec, cfg, folder.path, resume=True, progress=not args.no_progress)
    else:
        spec, _, _ = load_spec_file(args.spec)
        cfg = trainconfig.resolve(spec, overrides)
        out = Path(args.out) if args.out else _default_out(spec)
        result = train(args.spec, cfg, out, progress=not args.no_progress)
    if result.interrupted:
        return 130
    report = evaluate_run(result.run, samples=0, which="best", split="test", device=cfg.device)
    errors = [f"{name} {error_text(report[f'error/{name}'], domain)}" for name, domain in report["supervised"].items()
              if f"error/{name}" in report]
    epochs = f"{result.epoch} epoch{'s' if result.epoch != 1 else ''}"
    print(f"trained {epochs} ({result.step} steps) into {result.run}; best.pt: {result.selected}")
    print(f"test ({report['examples']} examples, best.pt from epoch {report['epoch']}): "
          + (f"error {', '.join(errors)}; " if errors else "") + f"ELBO {report['elbo']:.3f} nats")
    if args.baseline and not cfg.labelled_only and not result.interrupted:
        from graphvae.cli.baseline import report
        from graphvae.train.baseline import train_baseline

        base = train_baseline(result.run, progress=not args.no_progress)
        if base.interrupted:
            return 130
        print(f"labelled-only baseline: {base.epoch} epochs ({base.step} steps) into {base.run}")
        report(result.run, cfg.device)
    print(f"more with: graphvae eval {result.run}; graphvae sample {result.run} --out figs; graphvae plot {result.run}")
    return 0
