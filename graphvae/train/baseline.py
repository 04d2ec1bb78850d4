"""The labelled-only baseline of a run: the same spec trained on its labelled examples alone.

A semi-supervised model exists to beat what its labels alone give.  :func:`train_baseline`
trains the run's spec with the run's configuration (the same splits, labelled subset,
networks, objective, batches of labelled examples and number of steps), but with
``labelled_only = true``: every step leaves out the unlabelled examples.  The baseline is
an ordinary run folder, ``RUN/baseline``, so it resumes like any run and ``graphvae eval
RUN`` evaluates it beside the run and reports the gain.
"""

from __future__ import annotations

import dataclasses

from graphvae.errors import UserError
from graphvae.train import config as trainconfig
from graphvae.train.checkpoint import open_checkpoint
from graphvae.train.runfolder import RunFolder

def train_baseline(run_path, *, progress: bool = True, log=print, device: str | None = None, world=None):
    """Train (or finish) ``RUN/baseline``; returns its :class:`~graphvae.train.loop.TrainResult`.
    ``world``: as :func:`~graphvae.train.loop.train` takes it (``SINGLE``: one process, even
    under torchrun, as rank 0 trains it after a distributed run)."""
    from graphvae.data import load_labelled
    from graphvae.train.loop import train

    folder = RunFolder(run_path)
    state, spec, _, _, path = open_checkpoint(folder, "last")
    cfg = trainconfig.from_dict(state["config"], str(path))
    if cfg.labelled_only:
        raise UserError(f"{folder.path} is itself a labelled-only run; give the semi-supervised run's folder")
    if not spec.supervised:
        raise UserError(f"{folder.path}: model '{spec.name}' has no supervised variable, so no labelled-only baseline")
    cfg = dataclasses.replace(cfg, labelled_only=True, device=device or cfg.device)
    out = folder.baseline
    if out.checkpoint("last").is_file():
        return train(None, cfg, out.path, resume=True, progress=progress, log=log, world=world)
    return train(folder.spec_path(), trainconfig.check_config(cfg), out.path, progress=progress, log=log,
                 labelled=load_labelled(folder.path), world=world)
