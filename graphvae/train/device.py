"""Which torch device a run uses, and seeding every random number generator."""

from __future__ import annotations

import random

import numpy as np
import torch

from graphvae.errors import UserError


def pick_device(name: str) -> torch.device:
    """``auto`` -> CUDA when present, else CPU; an unavailable device is a UserError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device {name}: CUDA is not available on this machine; use --device cpu or auto")
    if name == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise UserError("device mps: not available on this machine; use --device cpu or auto")
    return torch.device(name)


def use_threads(threads: int) -> int:
    """Let torch compute with ``threads`` CPU threads (0: leave torch's own choice); returns the
    number it uses."""
    if threads > 0 and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
