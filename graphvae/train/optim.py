"""The optimisers and learning-rate schedules the ``optimizer`` and ``schedule`` settings name.

The names here are the choices of those settings in :mod:`graphvae.spec.settings`;
``tests/test_settings.py`` checks that the two agree.  Gradient clipping (``grad_clip`` by
norm, ``grad_clip_value`` by entry) is :func:`clip_gradients`.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from graphvae.spec.settings import TrainConfig

OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD, "rmsprop": torch.optim.RMSprop,
}

# schedule -> the learning rate at optimiser step `step` of `total` (`per_epoch` steps an epoch), as a fraction of lr
SCHEDULES: dict[str, Callable[[int, int, int, TrainConfig], float]] = {
    "constant": lambda step, total, per_epoch, cfg: 1.0,
    "cosine": lambda step, total, per_epoch, cfg: 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total)),  # 1 to 0
    "step": lambda step, total, per_epoch, cfg: 0.1 ** ((step >= total // 2) + (step >= (3 * total) // 4)),
    "exponential": lambda step, total, per_epoch, cfg: 0.01 ** (min(step, total) / total),  # to 1 % by the end
    "decay": lambda step, total, per_epoch, cfg: cfg.lr_decay ** (step // (per_epoch * cfg.lr_decay_epochs)),
}


def build_optimizer(params, cfg: TrainConfig) -> torch.optim.Optimizer:
    return OPTIMIZERS[cfg.optimizer](params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def lr_factor(schedule: str, step: int, total_steps: int, steps_per_epoch: int = 1,
              cfg: TrainConfig = TrainConfig()) -> float:
    """The learning rate at optimiser step ``step`` of ``total_steps``, as a fraction of ``lr``
    (see :data:`SCHEDULES`)."""
    return SCHEDULES[schedule](step, max(1, total_steps), max(1, steps_per_epoch), cfg)


def build_scheduler(opt, cfg: TrainConfig, total_steps: int, steps_per_epoch: int = 1):
    """A LambdaLR stepped once per optimiser step (None for a constant rate).  The rate is a
    function of (step, planned total) only, so a resumed run that adds epochs re-plans the
    schedule over the new total from the step it has reached."""
    if cfg.schedule == "constant":
        return None
    schedule = cfg.schedule
    return torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: lr_factor(schedule, step, total_steps, steps_per_epoch, cfg))


def clip_gradients(params, cfg: TrainConfig) -> None:
    """Clip by value (``grad_clip_value``), then by norm (``grad_clip``); 0 disables either."""
    params = [p for p in params if p.grad is not None]
    if cfg.grad_clip_value > 0:
        torch.nn.utils.clip_grad_value_(params, cfg.grad_clip_value)
    if cfg.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
