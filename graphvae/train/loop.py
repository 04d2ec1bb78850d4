"""Training: ``graphvae train`` and the Python API :func:`train`.

A flat loop in the style of nanoGPT: resolve the config, lay out the run folder,
load the data, compile the model, then step through semi-supervised batches; at
the end of every epoch validate, append a row to ``metrics.jsonl`` and write
``last.pt`` (and ``best.pt`` when validation improved).  ``--resume RUN`` restores
the model, optimiser, scheduler, data iterator and every RNG from ``last.pt`` so
that a resumed CPU run ends exactly where an uninterrupted one does.

Ctrl-C finishes the current step, saves ``last.pt`` and returns; a second Ctrl-C
stops at once.  A non-finite loss stops the run, names the term, and leaves the
last good checkpoint in place.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from graphvae.errors import UserError
from graphvae.spec.loader import load_spec_file
from graphvae.spec.settings import TrainConfig
from graphvae.train import config as trainconfig
from graphvae.train.checkpoint import (capture_rng, checkpoint_spec_differences, load_checkpoint, restore_rng,
                                       save_checkpoint, spec_differences, state_dict_differences)
from graphvae.train.device import pick_device, seed_everything
from graphvae.train.optim import build_optimizer, build_scheduler
from graphvae.train.runfolder import RunFolder


class NonFiniteLoss(UserError):
    """The loss (or one of its terms) became NaN or infinite; the run stopped."""


@dataclass
class TrainResult:
    run: Path
    step: int  # optimiser steps taken in all
    epoch: int  # epochs completed
    metrics: list[dict] = field(default_factory=list)  # metrics.jsonl rows
    best_score: float = math.inf  # model-selection score of best.pt (lower is better)
    interrupted: bool = False  # stopped early (Ctrl-C or max_steps); last.pt holds the state


def _spec_and_text(spec):
    if isinstance(spec, (str, Path)):
        return load_spec_file(spec)
    text = getattr(spec, "source", "")
    if not text:
        raise UserError("the Spec has no source text to store in the run folder; pass the spec file's path")
    suffix = Path(getattr(spec, "path", "") or "spec.gvae").suffix.lower() or ".gvae"
    return spec, text, suffix


class _InterruptFlag:
    """While active, the first Ctrl-C only sets ``self.set``; the loop saves and stops after the step.
    A second Ctrl-C raises KeyboardInterrupt at once.  Inactive outside the main thread."""

    def __init__(self):
        self.set = False
        self._old = None

    def _handle(self, signum, frame):
        self.set = True
        signal.signal(signal.SIGINT, self._old)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._old = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


def _tensorboard(run: RunFolder):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception:  # tensorboard not installed: optional
        return None
    return SummaryWriter(log_dir=str(run.tensorboard_dir))


# -- the loop ---------------------------------------------------------------------------------
def train(spec, config: TrainConfig | None = None, out_dir=None, *, resume: bool = False,
          progress: bool = True, max_steps: int | None = None, log=print) -> TrainResult:
    """Train ``spec`` (a path or a Spec with source text) into the run folder ``out_dir``.

    ``resume=True`` continues from ``out_dir/last.pt`` (``spec`` may then be None; given,
    it must describe the same model).  ``max_steps`` stops after that many optimiser
    steps in all, saving ``last.pt`` as Ctrl-C does.  Returns a :class:`TrainResult`.
    """
    from graphvae.compile.compiler import compile_spec
    from graphvae.data import (SemiSupervisedBatches, count_examples, evaluation_arrays, load_labelled, prepare_data,
                               save_labelled)
    from graphvae.train.evaluate import selection_score, validate

    if out_dir is None:
        raise UserError("train needs a run folder (out_dir)")
    run = RunFolder(out_dir)
    state = None
    if resume:
        run.require()
        run.check_spec_hash()
        state = load_checkpoint(run.checkpoint("last"))
        run_spec, text, suffix = load_spec_file(run.spec_path())
        diffs = checkpoint_spec_differences(state, run_spec) if state["spec"] != text else []
        if diffs:
            raise UserError(f"{run.checkpoint('last')} was trained on a different spec than {run.spec_path()}: "
                            f"{'; '.join(diffs)}")
        if spec is not None:
            given = _spec_and_text(spec)[0]
            diffs = spec_differences(run_spec, given)
            if diffs:
                raise UserError(f"{run.path} was trained on a different spec: {'; '.join(diffs)}")
        spec = run_spec
        cfg = config or trainconfig.from_dict(state["config"])
    else:
        spec, text, suffix = _spec_and_text(spec)
        cfg = trainconfig.check_config(config or trainconfig.from_spec(spec))
        if run.has_checkpoint():
            raise UserError(f"{run.path} already holds a run; continue it with 'graphvae train --resume "
                            f"{run.path}', or choose another --out")

    torch.set_flush_denormal(cfg.flush_denormal)  # denormals slow long CPU runs ~2x (benchmarks/bench_denormal.py)
    seed_everything(cfg.seed)
    device = pick_device(cfg.device)
    labelled = load_labelled(run.path) if resume else None
    data = prepare_data(spec, data=cfg.data, data_dir=cfg.data_dir or None, validation=cfg.validation,
                        labels=cfg.labels, seed=cfg.seed, labelled=labelled)
    model = compile_spec(spec).to(device)
    if not resume:  # only now, so bad data or a bad spec leaves no half-made run folder behind
        run.create(text, suffix, trainconfig.to_dict(cfg))
        save_labelled(run.path, data.labelled)
    batches = SemiSupervisedBatches(data.train, spec, data.labelled, batch_size=cfg.batch_size,
                                    labelled_per_batch=cfg.labelled_per_batch, binarize=cfg.binarize,
                                    generator=torch.Generator().manual_seed(cfg.seed))
    steps_per_epoch = len(batches)
    opt = build_optimizer(model.parameters(), cfg)
    sched = build_scheduler(opt, cfg, cfg.epochs * steps_per_epoch)
    val_arrays = evaluation_arrays(data.val, spec, cfg.binarize)
    n_val = count_examples(data.val)

    step, best, sums, epoch_steps, epoch_seconds = 0, math.inf, {}, 0, 0.0
    if state is not None:
        diffs = state_dict_differences(state["model"], model.state_dict())
        if diffs:
            raise UserError(f"{run.checkpoint('last')} does not fit the compiled spec: {'; '.join(diffs)}")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        if sched is not None and state.get("scheduler"):
            saved_sched = dict(state["scheduler"])
            saved_sched.setdefault("lr_lambdas", [None] * len(opt.param_groups))  # a scheduler saved by another class
            sched.load_state_dict(saved_sched)
            planned = int(state["config"].get("epochs", cfg.epochs))
            if planned != cfg.epochs:
                log(f"the {cfg.schedule} learning-rate schedule now spans {cfg.epochs} epochs (was {planned}); "
                    f"from step {int(state['step'])} the rate follows the new plan")
        batches.load_state_dict(state["rng"]["batches"])
        restore_rng(state["rng"])
        step, extra = int(state["step"]), state["extra"]
        best, sums = float(extra["best"]), dict(extra["sums"])
        epoch_steps, epoch_seconds = int(extra["epoch_steps"]), float(extra["epoch_seconds"])
        run.write_metrics([r for r in run.read_metrics() if r.get("epoch", 0) <= int(state["epoch"])])
        run.write_config(trainconfig.to_dict(cfg))
        log(f"resuming {run.path} at step {step} (epoch {batches.epoch + 1}/{cfg.epochs})")
    else:
        log(f"{data.summary()}; {steps_per_epoch} steps per epoch; device {device}; run folder {run.path}")

    def snapshot(epoch_done: int) -> dict:
        rng = capture_rng()
        rng["batches"] = batches.state_dict()
        return {"model": model.state_dict(), "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict() if sched is not None else None,
                "step": step, "epoch": epoch_done, "rng": rng, "config": trainconfig.to_dict(cfg),
                "spec": text, "spec_suffix": suffix,
                "extra": {"best": best, "sums": dict(sums), "epoch_steps": epoch_steps,
                          "epoch_seconds": epoch_seconds}}

    writer = _tensorboard(run)
    from tqdm import tqdm

    bar = tqdm(total=cfg.epochs * steps_per_epoch, initial=step, disable=not progress, unit="step",
               dynamic_ncols=True, leave=True)
    say = bar.write if progress else log
    interrupted, postfix = False, {}
    try:
        with _InterruptFlag() as stop:
            while batches.epoch < cfg.epochs and not interrupted:
                t0, epoch_before = time.perf_counter(), batches.epoch
                for batch in batches:
                    loss, terms = model.loss({k: v.to(device) for k, v in batch.items()}, terms=True)
                    names = ["loss", *terms]
                    values = torch.stack([loss.detach(), *(t.detach().float().reshape(()) for t in terms.values())]).tolist()
                    bad = [n for n, v in zip(names, values) if not math.isfinite(v)]
                    if bad:
                        raise NonFiniteLoss(_non_finite_message(run, step, batches.epoch, bad, names, values))
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    if cfg.grad_clip > 0:
                        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                    opt.step()
                    if sched is not None:
                        sched.step()
                    step += 1
                    epoch_steps += 1
                    for n, v in zip(names, values):
                        sums[n] = sums.get(n, 0.0) + v
                    bar.update(1)
                    if step % 10 == 0:
                        postfix["loss"] = f"{values[0]:.2f}"
                        bar.set_postfix(postfix, refresh=False)
                    if stop.set or (max_steps is not None and step >= max_steps):
                        interrupted = True
                        break
                epoch_seconds += time.perf_counter() - t0
                if batches.epoch == epoch_before:  # stopped mid-epoch: save the exact position
                    save_checkpoint(run.checkpoint("last"), snapshot(batches.epoch))
                    break
                # -- end of epoch: validate, log, checkpoint -----------------------------------
                row = {"epoch": batches.epoch, "step": step}
                row.update({f"train/{n}": s / max(1, epoch_steps) for n, s in sums.items()})
                row["lr"] = opt.param_groups[0]["lr"]
                if n_val:
                    row.update({f"val/{k}": v for k, v in validate(model, spec, val_arrays, device).items()
                                if k != "examples"})
                row["epoch_seconds"] = epoch_seconds
                row["steps_per_s"] = epoch_steps / epoch_seconds if epoch_seconds > 0 else 0.0
                row["examples_per_s"] = row["steps_per_s"] * cfg.batch_size
                run.append_metrics(row)
                if writer is not None:
                    for k, v in row.items():
                        if isinstance(v, (int, float)) and k != "epoch":
                            writer.add_scalar(k, v, row["epoch"])
                score = selection_score(spec, row)
                improved = score < best or not math.isfinite(best)
                if improved:
                    best = score
                sums, epoch_steps, epoch_seconds = {}, 0, 0.0
                snap = snapshot(batches.epoch)
                save_checkpoint(run.checkpoint("last"), snap)
                if improved:
                    save_checkpoint(run.checkpoint("best"), snap)
                postfix.update(_val_postfix(row))
                bar.set_postfix(postfix, refresh=False)
                say(_epoch_line(row, cfg.epochs))
    finally:
        bar.close()
        if writer is not None:
            writer.close()
    interrupted = interrupted and batches.epoch < cfg.epochs
    if interrupted:
        say(f"stopped at step {step} (epoch {batches.epoch + 1}/{cfg.epochs}); saved {run.checkpoint('last')}. "
            f"Continue with: graphvae train --resume {run.path}")
    return TrainResult(run.path, step, batches.epoch, run.read_metrics(), best, interrupted)


def _non_finite_message(run: RunFolder, step: int, epoch: int, bad: list[str], names: list[str], values: list) -> str:
    culprit = next((n for n in bad if n != "loss"), "loss")
    kept = (f"the last good checkpoint {run.checkpoint('last')} is kept" if run.checkpoint("last").exists()
            else "no checkpoint was written yet")
    return (f"non-finite loss at step {step + 1} (epoch {epoch + 1}): term '{culprit}' is "
            f"{values[names.index(culprit)]}; {kept}; try a lower --lr or --set grad_clip=10")


def _val_postfix(row: dict) -> dict:
    return {f"val_{k.split('/', 2)[2]}": f"{100 * v:.1f}%" for k, v in row.items() if k.startswith("val/error/")}


def _epoch_line(row: dict, epochs: int) -> str:
    parts = [f"epoch {row['epoch']}/{epochs}", f"loss {row.get('train/loss', float('nan')):.3f}"]
    if "val/elbo" in row:
        parts.append(f"val elbo {row['val/elbo']:.3f}")
    parts += [f"val {k.split('/', 1)[1]} {100 * v:.2f}%" for k, v in row.items() if k.startswith("val/error/")]
    parts.append(f"{row['steps_per_s']:.1f} steps/s")
    return "  ".join(parts)
