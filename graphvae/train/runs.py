"""Loading a trained run: its spec, configuration, labelled subset and a compiled model holding a
checkpoint's weights (``graphvae.load_run``).

A run folder (:mod:`graphvae.train.runfolder`) holds the spec, ``config.json``, ``labelled.json`` and
the checkpoints ``last.pt`` and ``best.pt`` (:mod:`graphvae.train.checkpoint`: a dict of tensors and
plain values, the model's ``state_dict`` under ``"model"``, loaded with ``weights_only=True``).
:func:`load_run` checks all of it (spec hash, digest, labelled subset) and gives a :class:`Run`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from graphvae.errors import UserError
from graphvae.train import arrays
from graphvae.train import config as trainconfig
from graphvae.train.checkpoint import load_weights, open_checkpoint
from graphvae.train.device import pick_device
from graphvae.train.runfolder import RunFolder

CHECKPOINTS = ("best", "last")


@dataclass
class Run:
    """A trained run, loaded: ``model`` (a :class:`~graphvae.compile.model.CompiledModel` in eval
    mode on ``device``), the ``spec`` it was compiled from, the resolved train ``config``, the
    ``labelled`` subset (sorted indices into the run's training split; empty when it has none),
    and which checkpoint file was read, at which ``epoch`` and ``step``.

    The methods give dicts of numpy arrays named after the spec's variables (see
    :mod:`graphvae.train.arrays`; ``graphvae.predict(run, data)`` etc. are the same).  For older
    callers a Run unpacks as ``spec, config, model, state = run``."""

    path: Path
    spec: Any = field(repr=False)
    config: Any = field(repr=False)
    model: Any = field(repr=False)
    labelled: np.ndarray = field(repr=False)
    checkpoint: Path
    epoch: int = 0
    step: int = 0
    state: dict = field(default_factory=dict, repr=False)

    @property
    def device(self):
        return self.model.device

    def predict(self, data=None, split: str | None = None, data_dir: str | None = None, seed: int = 0) -> dict:
        """Predictions of every supervised variable from q (and ``<y>_prob`` for a categorical one)."""
        return arrays.predict(self, data, split=split, data_dir=data_dir, seed=seed)

    def encode(self, data=None, split: str | None = None, data_dir: str | None = None, seed: int = 0) -> dict:
        """Means (or modes) of q's latent and supervised variables, and q's parameters (``<z>_<param>``)."""
        return arrays.encode(self, data, split=split, data_dir=data_dir, seed=seed)

    def reconstruct(self, data=None, split: str | None = None, data_dir: str | None = None, seed: int = 0) -> dict:
        """Means of p(x | encoded latents) for every observed variable."""
        return arrays.reconstruct(self, data, split=split, data_dir=data_dir, seed=seed)

    def sample(self, n: int = 16, given: dict | None = None, seed: int = 0) -> dict:
        """``n`` ancestral draws of p as arrays, latent and supervised variables clamped to ``given``."""
        return arrays.sample(self, n, given=given, seed=seed)


def load_run(run, checkpoint: str = "best", device: str = "cpu") -> Run:
    """The :class:`Run` in folder ``run``: the model (in eval mode, on ``device``: ``cpu``, ``cuda``,
    ``auto``...) holds the ``checkpoint`` file's weights (``best``: the epoch model selection kept,
    falling back to ``last`` before there is one).  Every problem (not a run, no checkpoint yet, a
    damaged or edited file) is a one-line UserError."""
    from graphvae.compile.compiler import compile_spec
    from graphvae.data import load_labelled

    if checkpoint not in CHECKPOINTS:
        raise UserError(f"checkpoint must be one of {', '.join(CHECKPOINTS)}, got {checkpoint!r}")
    folder = RunFolder(run)
    state, spec, _, _, path = open_checkpoint(folder, checkpoint)
    cfg = trainconfig.from_dict(state["config"], str(path))
    model = compile_spec(spec)
    load_weights(model, state, path)
    model.to(pick_device(str(device)))
    model.eval()
    labelled = load_labelled(folder.path) if folder.labelled_path.exists() else np.zeros(0, dtype=np.int64)
    return Run(folder.path, spec, cfg, model, labelled, Path(path), int(state.get("epoch", 0)),
               int(state.get("step", 0)), state)


def _as_run(run) -> Run:
    return run if isinstance(run, Run) else load_run(run)


def predict(run, data=None, split: str | None = None, data_dir: str | None = None, seed: int = 0) -> dict:
    """``graphvae.predict``: :meth:`Run.predict` of a Run or a run folder (loaded on the CPU)."""
    return _as_run(run).predict(data, split=split, data_dir=data_dir, seed=seed)


def encode(run, data=None, split: str | None = None, data_dir: str | None = None, seed: int = 0) -> dict:
    """``graphvae.encode``: :meth:`Run.encode` of a Run or a run folder (loaded on the CPU)."""
    return _as_run(run).encode(data, split=split, data_dir=data_dir, seed=seed)


def reconstruct(run, data=None, split: str | None = None, data_dir: str | None = None, seed: int = 0) -> dict:
    """``graphvae.reconstruct``: :meth:`Run.reconstruct` of a Run or a run folder (loaded on the CPU)."""
    return _as_run(run).reconstruct(data, split=split, data_dir=data_dir, seed=seed)


def sample(run, n: int = 16, given: dict | None = None, seed: int = 0) -> dict:
    """``graphvae.sample``: :meth:`Run.sample` of a Run or a run folder (loaded on the CPU)."""
    return _as_run(run).sample(n, given=given, seed=seed)
