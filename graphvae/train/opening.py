"""Opening a training run's folder (rank 0 reads it; :func:`graphvae.train.loop.train` hands
the rest to every process): a new run's spec and settings, checked before anything is written
into the folder, or a resumed run's ``last.pt`` with its spec, settings, labelled subset and
world size checked against this resume; and the repair of a ``best.pt`` that a kill left behind.
"""

from __future__ import annotations

from pathlib import Path

from graphvae.atomic import atomic_write_bytes
from graphvae.errors import UserError
from graphvae.spec.loader import load_spec_file
from graphvae.spec.settings import TrainConfig
from graphvae.train import config as trainconfig
from graphvae.train.checkpoint import RESUMABLE_FORMAT, open_checkpoint
from graphvae.train.checkpoint_checks import spec_differences
from graphvae.train.distributed import World
from graphvae.train.runfolder import RunFolder


def _spec_and_text(spec):
    if isinstance(spec, (str, Path)):
        return load_spec_file(spec)
    text = getattr(spec, "source", "")
    if not text:
        raise UserError("the Spec has no source text to store in the run folder; pass the spec file's path")
    suffix = Path(getattr(spec, "path", "") or "spec.gvae").suffix.lower() or ".gvae"
    return spec, text, suffix


def _open_new(spec, config: TrainConfig | None, folder: RunFolder):
    """``(spec, text, suffix, cfg)`` of a new run into ``folder``, which must hold no run yet."""
    spec, text, suffix = _spec_and_text(spec)
    cfg = trainconfig.check_config(config or trainconfig.from_spec(spec))
    if folder.has_checkpoint():
        raise UserError(f"{folder.path} already holds a run; continue it with 'graphvae train --resume "
                        f"{folder.path}', or choose another --out")
    folder.check_new_run_place()
    return spec, text, suffix, cfg


def _open_resumed(spec, config: TrainConfig | None, folder: RunFolder):
    """``(spec, text, suffix, cfg, state)`` of the run ``folder/last.pt`` continues; a ``spec``
    given must describe the same model."""
    state, run_spec, text, suffix, path = open_checkpoint(folder, "last", resume=True)
    if state.get("format", 1) < RESUMABLE_FORMAT:
        raise UserError(f"{path} was written by an older graphvae (checkpoint format {state.get('format', 1)}), whose "
                        "batches and classifier weight differ; it can be evaluated and sampled, not resumed")
    if spec is not None:
        diffs = spec_differences(run_spec, _spec_and_text(spec)[0])
        if diffs:
            raise UserError(f"{folder.path} was trained on a different spec: {'; '.join(diffs)}")
    return run_spec, text, suffix, config or trainconfig.from_dict(state["config"]), state


def open_run(spec, config: TrainConfig | None, folder: RunFolder, resume: bool, world: World, reshard: bool):
    """``(spec, text, suffix, cfg, state, labelled)``: what rank 0 reads to open the run (the
    others get it from rank 0).  ``state`` and ``labelled`` (the subset saved in the run folder)
    are None for a new run.  A resumed run must have been trained by as many processes as this
    one, unless ``reshard``."""
    from graphvae.data import load_labelled

    if not resume:
        return (*_open_new(spec, config, folder), None, None)
    spec, text, suffix, cfg, state = _open_resumed(spec, config, folder)
    saved = int(state.get("world_size", 1))
    if saved != world.size and not reshard:
        def procs(n):
            return f"{n} process{'es' if n != 1 else ''}"
        raise UserError(f"{folder.path} was trained by {procs(saved)} and this resume has {procs(world.size)}: "
                        f"resume it with {saved} (graphvae train --resume {folder.path} --nproc {saved}), or add "
                        f"--reshard to continue with {world.size} (not an exact continuation)")
    return spec, text, suffix, cfg, state, load_labelled(folder.path)


def repair_best(folder: RunFolder, state: dict) -> None:
    """A run killed after an epoch's ``last.pt`` (``state``) but before its ``best.pt``: when
    ``last.pt`` holds the selected epoch and ``best.pt`` differs, ``best.pt`` gets ``last.pt``'s
    bytes, as the epoch's end would have written them."""
    if state["extra"].get("selected") is not True:
        return
    last, best = folder.checkpoint("last"), folder.checkpoint("best")
    data = last.read_bytes()
    if not best.is_file() or best.read_bytes() != data:
        atomic_write_bytes(best, data)
