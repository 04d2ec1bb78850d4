"""What a training run says while it runs: Ctrl-C handling, the epoch line, TensorBoard, failures."""

from __future__ import annotations

import dataclasses
import signal
import threading
from typing import Mapping


class InterruptFlag:
    """While active, the first Ctrl-C (SIGINT) or SIGTERM only sets ``self.set`` (and ``self.signal``);
    the loop saves and stops after the step.  A second one acts at once (KeyboardInterrupt for
    SIGINT, the earlier handler for SIGTERM: by default the process ends).  Inactive outside the
    main thread."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.set = False
        self.signal = None
        self._old: dict = {}

    def _handle(self, signum, frame):
        self.set, self.signal = True, signum
        signal.signal(signum, self._old[signum])

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                old = signal.getsignal(sig)
                self._old[sig] = signal.SIG_DFL if old is None else old
                signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old = {}


def tensorboard(folder):
    """A SummaryWriter into ``RUN/tensorboard``, or None when TensorBoard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception:  # optional
        return None
    return SummaryWriter(log_dir=str(folder.tensorboard_dir))


def write_scalars(writer, row: dict) -> None:
    if writer is not None:
        for k, v in row.items():
            if isinstance(v, (int, float)) and k != "epoch":
                writer.add_scalar(k, v, row["epoch"])


_LATER_TERMS = ("reconstruction", "ess", "n_labelled", "elbo")  # after the variables' own terms, in this order


def culprit_term(bad: list[str], order=()) -> str:
    """The most specific of the non-finite terms ``bad``: a variable's own term first (its
    ``classifier/``, then ``kl/``; the earliest variable of ``order``, q's order, first, since later
    nodes read its values), then ``reconstruction``, ``ess/``, ``elbo``, any other, and ``loss`` last."""
    order = list(order)

    def rank(name: str) -> tuple:
        head, _, var = name.partition("/")
        if head in ("classifier", "kl"):
            return 0, order.index(var) if var in order else len(order), head == "kl"
        if head in _LATER_TERMS:
            return 1 + _LATER_TERMS.index(head), 0, False
        return 1 + len(_LATER_TERMS) + (name == "loss"), 0, False

    return min(bad, key=rank)


def non_finite_message(folder, step: int, epoch: int, bad: list[str], names: list[str], values: list,
                       order=()) -> str:
    """The stop at a non-finite loss: ``step`` steps were taken before it, in 0-based ``epoch``;
    names the most specific bad term (:func:`culprit_term`, variables in q's ``order``)."""
    culprit = culprit_term(bad, order)
    return (f"non-finite loss at step {step + 1} (epoch {epoch + 1}): term '{culprit}' is "
            f"{values[names.index(culprit)]}; {_kept(folder)}; try a lower --lr or --set grad_clip=10")


def non_finite_validation_message(folder, step: int, epoch: int, metric: str) -> str:
    """The stop at a non-finite validation metric after ``epoch`` epochs (``step`` steps); ``metric``
    says which and why, e.g. "elbo is nan on 144 examples: ..."."""
    return (f"non-finite validation metric after epoch {epoch} (step {step}): val/{metric}; {_kept(folder)}; "
            "try a lower --lr or --set grad_clip=10")


def _kept(folder) -> str:
    return (f"the last good checkpoint {folder.checkpoint('last')} is kept" if folder.checkpoint("last").exists()
            else "no checkpoint was written yet")


def error_text(name: str, value: float, domain: str = "categorical") -> str:
    """A supervised variable's validation metric with its unit: ``y error 12.30%`` for a categorical
    one, ``r RMSE 0.8372`` for a continuous one (graphvae.train.evaluate's ``error/<name>``)."""
    return f"{name} error {100 * value:.2f}%" if domain == "categorical" else f"{name} RMSE {value:.4f}"


def _errors(row: dict, domains: Mapping[str, str] | None):
    """``(name, value, domain)`` of each ``val/error/<name>`` of ``row``; a name ``domains`` lacks is categorical."""
    domains = domains or {}
    for key, value in row.items():
        if key.startswith("val/error/"):
            name = key.split("/", 2)[2]
            yield name, value, domains.get(name, "categorical")


def val_postfix(row: dict, domains: Mapping[str, str] | None = None) -> dict:
    """The progress bar's validation metrics, e.g. ``{"val_y": "12.3%", "val_r": "0.837 RMSE"}``."""
    return {f"val_{name}": f"{100 * v:.1f}%" if domain == "categorical" else f"{v:.3f} RMSE"
            for name, v, domain in _errors(row, domains)}


def epoch_line(row: dict, epochs: int, domains: Mapping[str, str] | None = None) -> str:
    """One line per epoch: ``epoch 3/20  loss 87.512  val elbo -90.114  val y error 12.30%  val r RMSE 0.8372
    310.2 steps/s``; ``domains`` (variable -> domain) says which unit each supervised variable's metric has."""
    parts = [f"epoch {row['epoch']}/{epochs}", f"loss {row.get('train/loss', float('nan')):.3f}"]
    if "val/elbo" in row:
        parts.append(f"val elbo {row['val/elbo']:.3f}")
    parts += [f"val {error_text(name, v, domain)}" for name, v, domain in _errors(row, domains)]
    parts.append(f"{row['steps_per_s']:.1f} steps/s")
    return "  ".join(parts)


def _setting_text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if value == "" else str(value)


def config_line(cfg, where) -> str:
    """The run's resolved train settings in one line: those that differ from the settings table's
    defaults (as ``--set`` takes them), and where all of them are (``where``, the run's config.json)."""
    changed = [f"{f.name}={_setting_text(getattr(cfg, f.name))}" for f in dataclasses.fields(cfg)
               if getattr(cfg, f.name) != f.default]
    if not changed:
        return f"settings: all at their defaults (every one in {where})"
    return f"settings: {' '.join(changed)} (the rest at their defaults; every one in {where})"


def finished_line(folder, epoch: int, epochs: int, step: int) -> str:
    """What resuming a run that has trained its ``epochs`` (or more) says instead of an epoch count."""
    return (f"{folder.path} has already finished: {epoch} epoch{'s' if epoch != 1 else ''} trained ({epochs} planned, "
            f"{step} steps), nothing more to train; to train it longer: graphvae train --resume {folder.path} "
            f"--epochs N (N > {epoch})")


def wants_bar(progress: bool, stream) -> bool:
    """Whether to draw the progress bar: asked for, and ``stream`` (where tqdm writes) is a terminal.
    Elsewhere (a log file, a pipe, a notebook's captured output) the bar's ``\\r`` frames would pile up,
    so the trainer writes its plain per-epoch lines instead."""
    try:
        return bool(progress) and stream is not None and stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
