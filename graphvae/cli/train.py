"""``graphvae train SPEC`` / ``graphvae train --resume RUN``: train, then report the test error of best.pt.

Under torchrun every process runs this command; rank 0 alone reports (and trains ``--baseline``,
in one process, after the distributed run).  ``--nproc N`` starts N such processes on this
machine through torch's own launcher (``torch.distributed.launcher``, what ``torchrun
--standalone --nproc_per_node N`` runs), with the same arguments.
"""

from __future__ import annotations

import sys
from pathlib import Path

from graphvae.cli.eval import error_text
from graphvae.errors import UserError
from graphvae.spec.loader import load_spec_file
from graphvae.train import config as trainconfig
from graphvae.train import distributed
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


def _without_nproc(argv: list[str]) -> list[str]:
    """The command line with ``--nproc N`` (or ``--nproc=N``) taken out."""
    out, skip = [], False
    for i, a in enumerate(argv):
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            out.append(a)
    return out


def _launch(args, n: int) -> int:
    """``graphvae train ... --nproc N``: N processes of this command on this machine, started by
    torch's elastic launcher as ``torchrun --standalone`` starts them; the exit code of the first
    that failed (each says why itself; rank 0 reports), else 0."""
    import logging
    import uuid

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    if n < 1:
        raise UserError(f"--nproc {n}: the number of processes must be at least 1")
    if distributed.from_env().distributed:
        raise UserError("--nproc: this process was itself started by torchrun; give the processes to torchrun "
                        "(--nproc_per_node) and leave --nproc out")
    argv = _without_nproc(args.argv)
    if not args.resume and not args.out:  # every process must name the same new folder
        spec, _, _ = load_spec_file(args.spec)
        argv += ["--out", str(_default_out(spec))]
    for name in [n for n in logging.root.manager.loggerDict if n.startswith("torch.distributed.elastic")] + [
            "torch.distributed.elastic"]:
        logging.getLogger(name).setLevel(logging.CRITICAL)  # the processes speak for themselves
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=n, run_id=str(uuid.uuid4()),
                          rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0, monitor_interval=0.2)
    try:
        elastic_launch(config, sys.executable)("-m", "graphvae", *argv)
    except SignalException:  # Ctrl-C or SIGTERM: the launcher passed it on, and the processes saved and stopped
        return 130
    except ChildFailedError as exc:
        codes = [f.exitcode for f in exc.failures.values()] or [1]
        return next((c for c in codes if c not in (0, None)), 1) if all(c is not None and c >= 0 for c in codes) else 1
    return 0


def run(args) -> int:
    if args.nproc is not None:
        return _launch(args, args.nproc)
    world = distributed.from_env()
    if args.reshard and not args.resume:
        raise UserError("--reshard goes with --resume RUN (a new run has no processes to re-deal)")
    overrides = trainconfig.flag_overrides(args)
    if not world.writes:  # rank 0 reads the spec, the settings and the run folder, and hands them on
        result = train(None if args.resume else args.spec, None, Path(args.resume or args.out or "runs"),
                       resume=bool(args.resume), progress=False, world=world, reshard=args.reshard)
        return 130 if result.interrupted else 0
    if args.resume:
        folder = RunFolder(args.resume).require()
        saved = _saved_config(folder)
        cfg = trainconfig.resume_overrides(saved, overrides)
        if args.out and Path(args.out).resolve() != folder.path.resolve():
            raise UserError("--out and --resume name different folders; a resumed run stays in its folder")
        result = train(args.spec, cfg, folder.path, resume=True, progress=not args.no_progress, world=world,
                       reshard=args.reshard)
    else:
        spec, _, _ = load_spec_file(args.spec)
        cfg = trainconfig.resolve(spec, overrides)
        out = Path(args.out) if args.out else _default_out(spec)
        result = train(args.spec, cfg, out, progress=not args.no_progress, world=world)
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

        base = train_baseline(result.run, progress=not args.no_progress, world=distributed.SINGLE)
        if base.interrupted:
            return 130
        print(f"labelled-only baseline: {base.epoch} epochs ({base.step} steps) into {base.run}")
        report(result.run, cfg.device)
    print(f"more with: graphvae eval {result.run}; graphvae sample {result.run} --out figs; graphvae plot {result.run}")
    return 0
