"""The optimisers and learning-rate schedules the ``optimizer`` and ``schedule`` settings name.

The names here are the choices of those settings in :mod:`graphvae.spec.settings`;
``tests/test_settings.py`` checks that the two agree.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from graphvae.spec.settings import TrainConfig

OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD, "rmsprop": torch.optim.RMSprop,
}

# schedule -> the learning rate at optimiser step `step` of `total`, as a fraction of lr
SCHEDULES: dict[str, Callable[[int, int], float]] = {
    "constant": lambda step, total: 1.0,
    "cosine": lambda step, total: 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total)),  # 1 to 0
    "step": lambda step, total: 0.1 ** ((step >= total // 2) + (step >= (3 * total) // 4)),  # x0.1 at 50 % and 75 %
    "exponential": lambda step, total: 0.01 ** (min(step, total) / total),  # to 1 % by the end
}


def build_optimizer(params, cfg: TrainConfig) -> torch.optim.Optimizer:
    return OPTIMIZERS[cfg.optimizer](params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def lr_factor(schedule: str, step: int, total_steps: int) -> float:
    """The learning rate at optimiser step ``step`` of ``total_steps``, as a fraction of ``lr``
    (see :data:`SCHEDULES`)."""
    return SCHEDULES[schedule](step, max(1, total_steps))


def build_scheduler(opt, cfg: TrainConfig, total_steps: int):
    """A LambdaLR stepped once per optimiser step (None for a constant rate).  The rate is a
    function of (step, planned total) only, so a resumed run that adds epochs re-plans the
    schedule over the new total from the step it has reached."""
    if cfg.schedule == "constant":
        return None
    schedule = cfg.schedule
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda step: lr_factor(schedule, step, total_steps))
