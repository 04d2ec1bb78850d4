"""Training: the Python API :func:`train` (``graphvae train`` calls it).

A straight loop in the style of nanoGPT: open the run (new, or resumed from ``last.pt``),
load the data, compile the model, then step through semi-supervised batches; at the end of
every epoch validate, append a row to ``metrics.jsonl``, write ``last.pt`` and then, when
validation improved, ``best.pt`` with the same bytes.  ``last.pt`` is the commit point: a
run killed before it is written redoes the epoch on resume; one killed after it, before
``best.pt`` is written, has ``best.pt`` repaired from ``last.pt`` on resume (its
``extra.selected`` says it is the selected epoch), so any kill ends where an
uninterrupted run does.  A resumed run restores the model, optimiser,
scheduler, data iterator and every RNG from ``last.pt``, so that a resumed CPU run ends
exactly where an uninterrupted one does.

Ctrl-C (or SIGTERM) finishes the current step, saves ``last.pt`` and returns; a second
one stops at once.  A non-finite loss stops the run, names the term, and leaves the
last good checkpoint in place.

The step never waits for the device: the loss and its logged terms stay there, summed in a
device accumulator (float64 where the device has it) beside a record of the first non-finite
step.  The host reads them only every ``LOG_EVERY`` steps (the progress bar's loss), at an
epoch's end and before any checkpoint or stop (:class:`graphvae.train.sums._DeviceSums`).  So a non-finite step
is caught up to ``LOG_EVERY - 1`` optimiser steps late: the run then stops with the message
naming that step, and no checkpoint is written after it (the last good one stays).  On the
CPU the sums are the same floats, added in the same order, as reading each step's values
would give, so a resumed run still ends bit-identical to an uninterrupted one.

``compile = true`` wraps the step's loss in ``torch.compile(model.loss, fullgraph=True)``;
one step is tried (and undone) before the run folder is touched, so a loss that does not
compile stops with one line and nothing written (:func:`graphvae.train.compiling.compile_loss`).

Under ``torchrun`` the same loop runs in every process (:mod:`graphvae.train.distributed`):
rank 0 opens the run and hands the others what it read; each process steps on its share of
the global batch, and ``DistributedDataParallel`` averages the gradients, so the weights stay
identical.  Only rank 0 writes, validates and reports.  What the processes must agree on is
decided at the host's looks: the device sums (and any non-finite step) are gathered from
every process, and so is a Ctrl-C, so that all stop after the same step.  Checkpoints hold
every process's RNG state and the world size; a resume needs the same world size (or
``reshard``, which continues, not exactly).
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from graphvae.errors import UserError
from graphvae.spec.settings import TrainConfig
from graphvae.train import config as trainconfig
from graphvae.train import distributed, reporting
from graphvae.atomic import Staged
from graphvae.train.checkpoint import capture_rng, checkpoint_bytes, load_weights, restore_rng, save_checkpoint
from graphvae.train.compiling import CompileFailed  # noqa: F401  (raised by train(); importable from here)
from graphvae.train.compiling import call_loss, compile_error, compile_loss, is_compile_error, unused_parameters
from graphvae.train.checkpoint_checks import optimizer_differences
from graphvae.train.device import seed_everything, use_threads
from graphvae.train.distributed import SINGLE, World
from graphvae.train.opening import open_run, repair_best
from graphvae.train.optim import build_optimizer, build_scheduler, clip_gradients
from graphvae.train.runfolder import RunFolder
from graphvae.train.selection import Selection
from graphvae.train.sums import NonFiniteLoss, _DeviceSums  # noqa: F401  (NonFiniteLoss: importable from here)


LOG_EVERY = 10  # steps between the host's looks at the device (the progress bar's loss, non-finite checks)


@dataclass
class TrainResult:
    run: Path
    step: int  # optimiser steps taken in all
    epoch: int  # epochs completed
    metrics: list[dict] = field(default_factory=list)  # metrics.jsonl rows
    best_score: float = math.inf  # model-selection score of best.pt (lower is better)
    interrupted: bool = False  # stopped early (Ctrl-C or max_steps); last.pt holds the state
    selected: str = ""  # which epoch best.pt holds, and why (graphvae.train.selection)


@dataclass
class Tally:
    """The trainer's bookkeeping, saved in every checkpoint (``step`` and ``extra``)."""

    step: int = 0  # optimiser steps taken in all
    selection: Selection = field(default_factory=Selection)  # which epoch best.pt holds (the selection rule)
    sums: dict[str, float] = field(default_factory=dict)  # sums of the logged terms over this epoch's steps
    epoch_steps: int = 0  # steps taken in this epoch
    epoch_seconds: float = 0.0  # seconds spent stepping in this epoch


@dataclass
class _Run:
    """Everything one training run holds while it runs."""

    folder: RunFolder
    spec: object
    text: str  # the spec's source, stored in the run folder and every checkpoint
    suffix: str
    cfg: TrainConfig
    device: torch.device
    data: object  # graphvae.data.TrainingData
    model: torch.nn.Module
    batches: object  # graphvae.data.SemiSupervisedBatches
    opt: torch.optim.Optimizer
    sched: object  # a LambdaLR, or None for a constant rate
    val_arrays: dict  # the validation split, binarized once
    n_val: int
    tally: Tally = field(default_factory=Tally)
    files: dict = field(default_factory=dict)  # sha256 of the run's tied files (labelled.json), in every checkpoint
    loss: object = None  # the step's loss function: model.loss, or its torch.compile'd form
    sums: _DeviceSums | None = None  # this epoch's logged terms, on the device
    compile_seconds: float = 0.0  # what trying the compiled loss took (compile = true)
    world: World = SINGLE  # this process's place among the training processes (torchrun)


# -- building and restoring a run (opening one: graphvae.train.opening) --------------------------------------------------------------------------------
def _threads_text(device) -> str:
    """", 1 thread" on the CPU (the threads setting at work), nothing on an accelerator."""
    n = torch.get_num_threads()
    return f", {n} thread{'s' if n != 1 else ''}" if device.type == "cpu" else ""


def _build(folder: RunFolder, spec, text: str, suffix: str, cfg: TrainConfig, resume: bool, labelled=None,
           world: World = SINGLE, device: torch.device | None = None) -> _Run:
    """Data, model, batches, optimiser and schedule; a new run folder is laid out (by rank 0) only
    once the data and the model are ready, so bad input leaves nothing behind."""
    from graphvae.compile.compiler import compile_spec
    from graphvae.data import SemiSupervisedBatches, count_examples, evaluation_arrays, prepare_data, save_labelled
    from graphvae.data.batches import mean_values, take_examples

    device = distributed.pick_device(world, cfg.device) if device is None else device
    use_threads(cfg.threads)
    data = prepare_data(spec, data=cfg.data, data_dir=cfg.data_dir or None, validation=cfg.validation,
                        labels=cfg.labels, seed=cfg.seed, labelled=labelled)
    model = compile_spec(spec).to(device)
    canvases = [] if resume else model.canvases()
    if canvases:  # a paste's canvas starts at the training images' mean, not grey
        seen = take_examples(data.train, data.labelled) if cfg.labelled_only else data.train
        means = mean_values(seen, spec, cfg.binarize, canvases)  # a baseline sees its labelled images only
        model.start_canvases({k: torch.from_numpy(m) for k, m in means.items()})
    if world.distributed and cfg.sync_batchnorm:
        model = distributed.sync_batchnorm(model, device)
    model.set_data_size(count_examples(data.train), len(data.labelled))  # for alpha_scaling = dataset
    batches = SemiSupervisedBatches(data.train, spec, data.labelled, batch_size=cfg.batch_size,
                                    labelled_per_batch=cfg.labelled_per_batch, binarize=cfg.binarize,
                                    labelled_only=cfg.labelled_only, generator=torch.Generator().manual_seed(cfg.seed),
                                    device=device, rank=world.rank, world=world.size)
    loss, compile_seconds = (compile_loss(model, batches, device, cfg.autocast) if cfg.compile
                             else (model.loss, 0.0))
    if not resume and world.writes:
        folder.create(text, suffix, trainconfig.to_dict(cfg))
        save_labelled(folder.path, data.labelled)
    opt = build_optimizer(model.parameters(), cfg)
    sched = build_scheduler(opt, cfg, cfg.epochs * len(batches), len(batches))
    return _Run(folder, spec, text, suffix, cfg, device, data, model, batches, opt, sched,
                evaluation_arrays(data.val, spec, cfg.binarize), count_examples(data.val),
                Tally(selection=Selection(cfg.selection)), folder.file_digests() if world.writes else {}, loss,
                _DeviceSums(device, world), compile_seconds, world)


def _restore(run: _Run, state: dict, log, reshard: bool = False) -> None:
    """Put a resumed run back exactly where ``state`` (``last.pt``) left it (each process its own
    RNG state; ``reshard``: ranks the checkpoint has no state for start theirs from the seed)."""
    cfg = run.cfg
    path = run.folder.checkpoint("last")
    load_weights(run.model, state, path)
    diffs = optimizer_differences(state["optimizer"], run.opt)
    try:
        if diffs:
            raise ValueError("; ".join(diffs))
        run.opt.load_state_dict(state["optimizer"])
    except (ValueError, KeyError, TypeError, IndexError, RuntimeError) as exc:
        raise UserError(f"{path}: its optimiser state does not fit the model ({str(exc)[:160]})") from None
    if run.sched is not None and state.get("scheduler"):
        saved = dict(state["scheduler"])
        saved.setdefault("lr_lambdas", [None] * len(run.opt.param_groups))  # a scheduler saved by another class
        try:
            run.sched.load_state_dict(saved)
        except (ValueError, KeyError, TypeError, IndexError, RuntimeError) as exc:
            raise UserError(f"{path}: its learning-rate schedule state is not valid ({str(exc)[:160]})") from None
        planned = state["config"].get("epochs", cfg.epochs)
        if planned != cfg.epochs:
            log(f"the {cfg.schedule} learning-rate schedule now spans {cfg.epochs} epochs (was {planned}); "
                f"from step {int(state['step'])} the rate follows the new plan")
    rank = run.world.rank
    ranks = state["rng"].get("ranks", [])
    try:
        run.batches.load_state_dict(state["rng"]["batches"], reshard=reshard)
        if rank == 0:
            restore_rng(state["rng"])
        elif rank - 1 < len(ranks):
            restore_rng(ranks[rank - 1])
        else:  # --reshard onto more processes than the checkpoint knew
            seed_everything(distributed.rank_seed(cfg.seed, rank) + int(state["step"]))
    except (ValueError, KeyError, TypeError, IndexError, RuntimeError) as exc:
        raise UserError(f"{path}: its random-number state is not valid ({str(exc)[:160]})") from None
    extra = state["extra"]
    run.tally = Tally(int(state["step"]), Selection.from_state(extra["selection"]), dict(extra["sums"]),
                      int(extra["epoch_steps"]), float(extra["epoch_seconds"]))
    if not run.world.writes:
        return
    run.folder.write_metrics([r for r in run.folder.read_metrics() if r.get("epoch", 0) <= int(state["epoch"])])
    run.folder.write_config(trainconfig.to_dict(cfg))
    repair_best(run.folder, state)


def _rank_rngs(run: _Run) -> list:
    """The RNG states of ranks 1.. (a collective: every process calls it; empty for one process)."""
    return distributed.gather(run.world, capture_rng())[1:] if run.world.distributed else []


def _snapshot(run: _Run, ranks: list | None = None) -> dict:
    """The checkpoint of the run as it stands (see graphvae.train.checkpoint); ``ranks``: the
    other processes' RNG states (:func:`_rank_rngs`)."""
    rng = capture_rng()
    rng["batches"] = run.batches.state_dict()
    if ranks:
        rng["ranks"] = list(ranks)
    t = run.tally
    return {"model": run.model.state_dict(), "optimizer": run.opt.state_dict(),
            "scheduler": run.sched.state_dict() if run.sched is not None else None,
            "step": t.step, "epoch": run.batches.epoch, "world_size": run.world.size, "rng": rng,
            "config": trainconfig.to_dict(run.cfg),
            "spec": run.text, "spec_suffix": run.suffix, "files": dict(run.files),
            "extra": {"selection": t.selection.state_dict(), "sums": dict(t.sums), "epoch_steps": t.epoch_steps,
                      "epoch_seconds": t.epoch_seconds, "selected": False}}


# -- one step, one epoch's end ----------------------------------------------------------------------
def _step(run: _Run, batch) -> None:
    """One optimiser step on ``batch`` (a graphvae.data.Batch, on the device).  The loss and the
    logged terms stay on the device (:class:`_DeviceSums`); a non-finite one is refused at the next
    :func:`_sync`, which the loop calls before any checkpoint."""
    try:
        loss, terms = call_loss(run.loss, run.model, batch, run.cfg.autocast, run.device.type)
    except Exception as exc:
        if run.cfg.compile and is_compile_error(exc):  # a shape the trial did not see failed to compile
            raise compile_error(exc) from None
        raise
    # the terms are 0-dim tensors without grad (the model computes them under no_grad): stacked as they are
    values = torch.stack([loss.detach(), *terms.values()]).float()
    run.sums.add(run, ["loss", *terms], values)
    run.opt.zero_grad(set_to_none=True)
    loss.backward()
    clip_gradients(run.model.parameters(), run.cfg)
    run.opt.step()
    if run.sched is not None:
        run.sched.step()
    run.tally.step += 1
    run.tally.epoch_steps += 1


def _sync(run: _Run, stopping: bool = False) -> float:
    """The host's look at the device: refuse a non-finite step since the last look, bring this
    epoch's sums into ``run.tally``; the latest loss.  ``stopping``: this process was asked to
    stop (under torchrun ``run.sums.halt`` then says whether any was)."""
    return run.sums.sync(run, stopping)


def _validate(run: _Run) -> dict:
    """The validation metrics at an epoch's end; a non-finite one stops the run like a non-finite loss."""
    from graphvae.train.evaluate import NonFiniteMetric, validate

    try:
        return validate(run.model, run.spec, run.val_arrays, run.device)
    except NonFiniteMetric as e:
        raise NonFiniteLoss(reporting.non_finite_validation_message(run.folder, run.tally.step, run.batches.epoch,
                                                                    str(e))) from None


def _end_epoch(run: _Run, writer, ranks: list | None = None) -> dict:
    """Validate, log a metrics row, and checkpoint (best.pt too when the selection score improved):
    rank 0's part of an epoch's end (``ranks``: the other processes' RNG states)."""
    t = run.tally
    row = {"epoch": run.batches.epoch, "step": t.step}
    row.update({f"train/{n}": s / max(1, t.epoch_steps) for n, s in t.sums.items()})
    row["lr"] = run.opt.param_groups[0]["lr"]
    t0 = time.perf_counter()
    if run.n_val:
        row.update({f"val/{k}": v for k, v in _validate(run).items()})
    row["epoch_seconds"] = t.epoch_seconds
    row["val_seconds"] = time.perf_counter() - t0
    row["steps_per_s"] = t.epoch_steps / t.epoch_seconds if t.epoch_seconds > 0 else 0.0
    row["examples_per_s"] = row["steps_per_s"] * (run.batches.unlabelled_per_batch + run.batches.labelled_per_batch)
    if run.world.distributed:
        row["processes"] = run.world.size  # steps and examples per second are the global batch's
    improved = t.selection.update(run.spec, row)
    row["selected"] = improved  # best.pt now holds this epoch
    t.sums, t.epoch_steps, t.epoch_seconds = {}, 0, 0.0
    run.sums.reset()
    # the checkpoint is serialised and written beside its place first, so that the row can say what
    # it cost; the row is appended before last.pt goes in place (the commit point, see the module's
    # docstring), then best.pt
    t0 = time.perf_counter()
    snap = _snapshot(run, ranks)
    snap["extra"]["selected"] = improved  # so that a resume can finish a best.pt write a kill cut short
    data = checkpoint_bytes(snap)
    with Staged() as files:
        files.stage(run.folder.checkpoint("last"), data)
        if improved:
            files.stage(run.folder.checkpoint("best"), data)
        row["checkpoint_seconds"] = time.perf_counter() - t0
        run.folder.append_metrics(row)
        reporting.write_scalars(writer, row)
        files.commit()  # last.pt, then best.pt
    return row


# -- the loop ---------------------------------------------------------------------------------------
def _epoch_end(run: _Run, writer) -> dict:
    """An epoch's end in every process: rank 0 validates, logs and checkpoints (with every
    process's RNG state), and its metrics row (or its error) reaches the others, which start
    their next epoch's sums."""
    ranks = _rank_rngs(run)
    if not run.world.distributed:
        return _end_epoch(run, writer)
    row = distributed.on_rank0(run.world, _end_epoch, run, writer, ranks)
    if not run.world.writes:
        t = run.tally
        t.sums, t.epoch_steps, t.epoch_seconds = {}, 0, 0.0
        run.sums.reset()
    return row


def _stop_mid_epoch(run: _Run) -> None:
    """Save the exact position of a run stopped mid-epoch (rank 0 writes; every process takes part)."""
    ranks = _rank_rngs(run)
    distributed.on_rank0(run.world, lambda: save_checkpoint(run.folder.checkpoint("last"), _snapshot(run, ranks)))


def _distribute(run: _Run) -> None:
    """Under torchrun: the step's loss under DistributedDataParallel (its construction gives every
    process rank 0's weights and buffers).  DDP must be told when a step may leave parameters
    without a gradient: when the batches' labelled patterns vary, or when a trial step (undone)
    leaves some without one in any process."""
    unused = run.batches.layouts_vary or unused_parameters(run.model, run.loss, run.batches.peek(), run.cfg.autocast,
                                                           run.device)
    unused = any(distributed.gather(run.world, bool(unused)))
    run.loss = distributed.wrap(run.world, run.model, run.loss, find_unused=unused)


def _quiet(*args, **kwargs) -> None:
    """The log of processes other than rank 0 (which alone reports)."""


def train(spec, config: TrainConfig | None = None, out_dir=None, *, resume: bool = False,
          progress: bool = True, max_steps: int | None = None, log=print, labelled=None,
          world: World | None = None, reshard: bool = False, on_step=None) -> TrainResult:
    """Train ``spec`` (a path or a Spec with source text) into the run folder ``out_dir``.

    ``resume=True`` continues from ``out_dir/last.pt`` (``spec`` may then be None; given,
    it must describe the same model).  ``max_steps`` stops after that many optimiser
    steps in all, saving ``last.pt`` as Ctrl-C does.  ``labelled`` fixes a new run's labelled
    subset (indices into the training split; default: chosen from the seed).  ``world``: this
    process's place under torchrun (default: read from the environment,
    :func:`graphvae.train.distributed.from_env`); ``reshard`` lets a resume use another number
    of processes than the run had.  ``on_step(model, step)`` (optional) is called after every
    optimiser step.  Returns a :class:`TrainResult`.
    """
    if out_dir is None:
        raise UserError("train needs a run folder (out_dir)")
    world = distributed.from_env() if world is None else world
    if not world.writes:  # rank 0 alone reports
        log, progress = _quiet, False
    folder = RunFolder(out_dir)
    distributed.start(world)
    try:
        result = _train(spec, config, folder, resume, progress, max_steps, log, labelled, world, reshard, on_step)
        distributed.finish(world)
        return result
    finally:
        distributed.stop(world)


def _train(spec, config, folder: RunFolder, resume: bool, progress: bool, max_steps, log, labelled, world: World,
           reshard: bool, on_step) -> TrainResult:
    # the spec and its configuration: a new run, or the one RUN/last.pt continues (rank 0 reads them)
    spec, text, suffix, cfg, state, saved_labelled = distributed.on_rank0(world, open_run, spec, config, folder, resume,
                                                                          world, reshard)
    if world.writes:
        folder.remove_stale_temps()  # left by a run killed during an atomic write (the folder is a run, or empty)
    # determinism: denormals slow long CPU runs ~2x (benchmarks/bench_denormal.py); one seed for all RNGs
    torch.set_flush_denormal(cfg.flush_denormal)
    seed_everything(cfg.seed)
    # data, model, batches, optimiser and schedule (a new run folder is written only now, by rank 0)
    run = distributed.agree(world, _build, folder, spec, text, suffix, cfg, resume,
                            saved_labelled if resume else labelled, world)
    if world.rank > 0:  # every process starts from the same weights; each draws its own noise
        seed_everything(distributed.rank_seed(cfg.seed, world.rank))
    # a resumed run continues exactly: weights, optimiser, schedule, batch position, RNGs, metrics
    if state is not None:
        distributed.agree(world, _restore, run, state, log, reshard)
        if run.batches.epoch >= cfg.epochs:
            log(reporting.finished_line(folder, run.batches.epoch, cfg.epochs, run.tally.step))
        else:
            log(f"resuming {folder.path} at step {run.tally.step} (epoch {run.batches.epoch + 1}/{cfg.epochs})"
                + (f" with {world.describe()}" if world.distributed else ""))
    else:
        weight = f"; classifier weight {run.model.objective.alpha_text()}" if spec.supervised else ""
        shares = (f" (of which each of {world.size} processes takes {run.batches.unlabelled_per_batch // world.size}"
                  f" + {run.batches.labelled_per_batch // world.size})" if world.distributed else "")
        log(f"{run.data.summary()}; {len(run.batches)} steps per epoch of {run.batches.unlabelled_per_batch} "
            f"unlabelled + {run.batches.labelled_per_batch} labelled examples{shares}{weight}; device {run.device}"
            f"{_threads_text(run.device)}{' per process' if world.distributed else ''}; "
            f"run folder {folder.path}")
    log(reporting.config_line(cfg, folder.config_path))
    if cfg.compile:
        log(f"compiled the training loss with torch.compile in {run.compile_seconds:.1f} s (compile = true)")
    if world.distributed:
        _distribute(run)

    from tqdm import tqdm

    # the bar only on a terminal (tqdm writes to stderr); elsewhere plain per-epoch lines, no \r frames
    progress = reporting.wants_bar(progress and run.batches.epoch < cfg.epochs, sys.stderr)
    bar = tqdm(total=cfg.epochs * len(run.batches), initial=run.tally.step, disable=not progress, unit="step",
               dynamic_ncols=True, leave=True, file=sys.stderr)
    say = bar.write if progress else log
    domains = {v.name: v.domain for v in spec.supervised}
    writer = reporting.tensorboard(folder) if world.writes else None
    interrupted, postfix = False, {}
    try:
        with reporting.InterruptFlag() as stop:
            while run.batches.epoch < cfg.epochs and not interrupted:
                t0, epoch_before = time.perf_counter(), run.batches.epoch
                for batch in run.batches:
                    # one optimiser step; every LOG_EVERY the host looks (non-finite check, the bar's loss)
                    _step(run, batch)
                    if on_step is not None:
                        on_step(run.model, run.tally.step)
                    bar.update(1)
                    if run.tally.step % LOG_EVERY == 0:
                        postfix["loss"] = f"{_sync(run, stop.set):.2f}"
                        bar.set_postfix(postfix, refresh=False)
                    # Ctrl-C (in some process, as of the last look under torchrun) or max_steps: stop after this step
                    asked = run.sums.halt if world.distributed else stop.set
                    if asked or (max_steps is not None and run.tally.step >= max_steps):
                        interrupted = True
                        break
                _sync(run, stop.set)  # before the epoch's end or a checkpoint; the steps' time includes the device's
                run.tally.epoch_seconds += time.perf_counter() - t0
                # stopped mid-epoch: save the exact position and leave
                if run.batches.epoch == epoch_before:
                    _stop_mid_epoch(run)
                    break
                # the end of an epoch: validate, log, checkpoint
                row = _epoch_end(run, writer)
                postfix.update(reporting.val_postfix(row, domains))
                bar.set_postfix(postfix, refresh=False)
                say(reporting.epoch_line(row, cfg.epochs, domains))
                if world.distributed and run.sums.halt:  # a Ctrl-C seen at the epoch's last look
                    interrupted = True
    finally:
        bar.close()
        if writer is not None:
            writer.close()
    interrupted = interrupted and run.batches.epoch < cfg.epochs
    if interrupted:
        say(f"stopped at step {run.tally.step} (epoch {run.batches.epoch + 1}/{cfg.epochs}); saved "
            f"{folder.checkpoint('last')}. Continue with: graphvae train --resume {folder.path}")
    metrics = folder.read_metrics() if world.writes else []
    return TrainResult(folder.path, run.tally.step, run.batches.epoch, metrics, run.tally.selection.score,
                       interrupted, run.tally.selection.describe())
