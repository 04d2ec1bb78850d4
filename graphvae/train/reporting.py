"""What a training run says while it runs: Ctrl-C handling, the epoch line, TensorBoard, failures."""

from __future__ import annotations

import signal
import threading


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


def val_postfix(row: dict) -> dict:
    """The progress bar's validation errors, e.g. ``{"val_y": "12.3%"}``."""
    return {f"val_{k.split('/', 2)[2]}": f"{100 * v:.1f}%" for k, v in row.items() if k.startswith("val/error/")}


def epoch_line(row: dict, epochs: int) -> str:
    parts = [f"epoch {row['epoch']}/{epochs}", f"loss {row.get('train/loss', float('nan')):.3f}"]
    if "val/elbo" in row:
        parts.append(f"val elbo {row['val/elbo']:.3f}")
    parts += [f"val {k.split('/', 1)[1]} {100 * v:.2f}%" for k, v in row.items() if k.startswith("val/error/")]
    parts.append(f"{row['steps_per_s']:.1f} steps/s")
    return "  ".join(parts)
