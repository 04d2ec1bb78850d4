"""Loading a trained run: its spec, configuration and a compiled model holding a checkpoint's weights."""

from __future__ import annotations

from graphvae.train import config as trainconfig
from graphvae.train.checkpoint import load_weights, open_checkpoint
from graphvae.train.device import pick_device
from graphvae.train.runfolder import RunFolder


def load_run(run_path, which: str = "best", device: str = "cpu"):
    """``(spec, config, model, state)`` of a run folder: the model (in eval mode, on ``device``)
    holds the ``which`` checkpoint's weights (``best`` falls back to ``last``)."""
    from graphvae.compile.compiler import compile_spec

    state, spec, _, _, path = open_checkpoint(RunFolder(run_path), which)
    cfg = trainconfig.from_dict(state["config"], str(path))
    model = compile_spec(spec)
    load_weights(model, state, path)
    model.to(pick_device(device))
    model.eval()
    return spec, cfg, model, state
