"""The logged terms of an epoch's steps, summed on the device until the host looks
(:class:`_DeviceSums`), and :class:`NonFiniteLoss`, raised when one went bad.

The trainer (:mod:`graphvae.train.loop`) adds each step's stacked ``[loss, *terms]`` and reads
the sums every ``LOG_EVERY`` steps, at an epoch's end and before any checkpoint; under torchrun
each read gathers every process's sums (:mod:`graphvae.train.distributed`).
"""

from __future__ import annotations

import math

import torch

from graphvae.errors import UserError
from graphvae.train import distributed, reporting
from graphvae.train.distributed import SINGLE, World


class NonFiniteLoss(UserError):
    """The loss (or one of its terms) became NaN or infinite; the run stopped."""



class _DeviceSums:
    """The logged terms of this epoch's steps, kept on the device until the host looks.

    Per step :meth:`add` puts the stacked ``[loss, *terms]`` into a running sum (float64 where
    the device has it, else float32) and, with ``torch.where``, keeps the first non-finite step's
    index and values: nothing reads a value on the host.  :meth:`sync` reads everything in one
    transfer: it raises :class:`NonFiniteLoss` for the first bad step since the last sync (the
    message a per-step check gave), else writes the sums into ``tally.sums`` (Python floats, as
    checkpoints store them) and returns the latest step's loss.  The running sum starts from
    ``tally.sums`` (a resumed epoch) and is never folded in pieces, so the additions are exactly
    those of summing each step's floats on the host."""

    def __init__(self, device: torch.device, world: World = SINGLE):
        self.device = device
        self.world = world
        self.dtype = torch.float32 if device.type == "mps" else torch.float64
        self.names: list[str] | None = None
        self.pending = 0  # steps added since the last sync
        self.last_loss = math.nan
        self.halt = False  # whether some process asked to stop (Ctrl-C), as of the last sync

    def reset(self) -> None:
        """A new epoch: the sums start again from ``tally.sums`` at the next step."""
        self.names, self.pending = None, 0

    def add(self, run, names: list[str], values: torch.Tensor) -> None:
        """Add a step's ``values`` (``run``: the trainer's ``graphvae.train.loop._Run``)."""
        if names != self.names:  # the first step of an epoch (or of a resumed run)
            self.sync(run)
            sums = run.tally.sums
            self.names = names
            self.sums = torch.tensor([sums.get(n, 0.0) for n in names], dtype=self.dtype, device=self.device)
            self.bad = torch.full((), -1, dtype=torch.long, device=self.device)
            self.bad_values = torch.zeros_like(values)
        if not self.pending:  # where the steps since the last sync begin (they share an epoch)
            b = run.batches  # the batcher moves to the next epoch as it hands out an epoch's last batch
            self.first_step, self.epoch = run.tally.step, (b.epoch - 1 if b.step == 0 else b.epoch)
        first_bad = torch.logical_and(~torch.isfinite(values).all(), self.bad < 0)
        self.bad = torch.where(first_bad, self.pending, self.bad)
        self.bad_values = torch.where(first_bad, values, self.bad_values)
        self.sums += values.to(self.dtype)
        self.last = values[0]
        self.pending += 1

    def sync(self, run, stopping: bool = False) -> float:
        """Read the device once: raise for a non-finite step, else update ``tally.sums``; the
        latest step's loss.  Under torchrun every process's values are gathered (a collective:
        all processes sync together) and combined: the sums and the loss are the processes'
        means (their shares of each global batch are equal), the first non-finite step of any
        process stops them all, and ``halt`` says whether any was ``stopping``."""
        if not self.pending:
            return self.last_loss
        k = len(self.names)
        mine = torch.cat([self.sums, self.bad.to(self.dtype).reshape(1), self.bad_values.to(self.dtype),
                          self.last.to(self.dtype).reshape(1),
                          torch.full((1,), float(stopping), dtype=self.dtype, device=self.device)])
        packed = self._combine(distributed.gather_tensor(self.world, mine).tolist(), k)
        self.pending = 0
        self.halt = bool(packed[-1])
        packed = packed[:-1]
        bad = int(packed[k])
        if bad >= 0:
            values = packed[k + 1:2 * k + 1]
            names = [n for n, v in zip(self.names, values) if not math.isfinite(v)]
            exc = NonFiniteLoss(reporting.non_finite_message(run.folder, self.first_step + bad, self.epoch, names,
                                                             self.names, values, order=run.model.q_order))
            exc.silent = not self.world.writes  # every process stops with it; rank 0 says it
            raise exc
        run.tally.sums.update(zip(self.names, packed[:k]))
        self.last_loss = packed[-1]
        return self.last_loss

    @staticmethod
    def _combine(rows: list[list[float]], k: int) -> list[float]:
        """One process's packed values from every process's ``[sums(k), bad, bad_values(k), last,
        stopping]``: one process's are its own; several give the mean sums and loss, the
        earliest bad step (and its process's values), and whether any is stopping."""
        if len(rows) == 1:
            return rows[0]
        n = len(rows)
        sums = [sum(r[i] for r in rows) / n for i in range(k)]
        bad_rows = [r for r in rows if r[k] >= 0]
        first = min(bad_rows, key=lambda r: r[k]) if bad_rows else rows[0]
        last = sum(r[2 * k + 1] for r in rows) / n
        return [*sums, first[k] if bad_rows else -1.0, *first[k + 1:2 * k + 1], last,
                float(any(r[-1] for r in rows))]
