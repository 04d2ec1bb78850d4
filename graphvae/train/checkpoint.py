"""Checkpoints: a plain dict of tensors and primitive containers, written atomically.

A checkpoint holds::

    format      CHECKPOINT_FORMAT
    model       the model's state_dict
    optimizer   the optimiser's state_dict
    scheduler   the learning-rate scheduler's state_dict (or None)
    step, epoch steps taken; epochs completed (a Ctrl-C checkpoint may sit mid-epoch)
    rng         RNG states: torch CPU (+ CUDA), numpy, python, and the data iterator's
    config      the resolved TrainConfig as a dict
    spec        the spec text, and spec_suffix (".gvae" or ".yaml")
    extra       trainer bookkeeping (running sums of the current epoch, best score, ...)

It is loaded with ``torch.load(path, weights_only=True)``, so only tensors, numbers,
strings and lists/dicts/tuples of them are stored.  A missing, truncated or corrupt
file gives a one-line :class:`UserError`.  :func:`spec_differences` names what
differs between the spec a checkpoint was trained on and another spec.
"""

from __future__ import annotations

import io
import os
import random
from typing import Any

import numpy as np
import torch

from graphvae.errors import UserError
from graphvae.spec import printers
from graphvae.atomic import atomic_write_bytes

CHECKPOINT_FORMAT = 2  # 2: batch_size counts unlabelled examples only, alpha_scaling = dataset by default
RESUMABLE_FORMAT = 2  # the oldest format a run can be resumed from (older ones can be evaluated)


# -- saving and loading ---------------------------------------------------------------------
def save_checkpoint(path: str | os.PathLike, state: dict) -> None:
    """Serialise ``state`` and replace ``path`` atomically (the old file survives a failed write)."""
    buffer = io.BytesIO()
    torch.save(dict(state, format=CHECKPOINT_FORMAT), buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: str | os.PathLike) -> dict:
    """The checkpoint dict at ``path`` (on CPU), or a one-line UserError."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise UserError(f"{path}: no such checkpoint")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises RuntimeError, UnpicklingError, EOFError, zipfile errors...
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{path}: not a readable checkpoint (truncated or corrupt: {reason[:160]})") from None
    if not isinstance(state, dict) or "model" not in state or "spec" not in state:
        raise UserError(f"{path}: not a graphvae checkpoint (no model state or spec)")
    if state.get("format", 0) > CHECKPOINT_FORMAT:
        raise UserError(f"{path}: written by a newer graphvae (checkpoint format {state['format']})")
    return state


# -- random number generators ---------------------------------------------------------------
def capture_rng() -> dict:
    """The global RNG states as tensors and lists (safe for ``weights_only`` loading)."""
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"name": str(np_name), "keys": torch.from_numpy(np.asarray(np_keys, dtype=np.int64)),
                  "pos": int(np_pos), "has_gauss": int(np_has_gauss), "gauss": float(np_gauss)},
        "python": {"version": int(py_version), "state": list(py_state), "gauss": py_gauss},
    }
    if torch.cuda.is_available():
        state["cuda"] = list(torch.cuda.get_rng_state_all())
    return state


def restore_rng(state: dict) -> None:
    """Set the global RNGs back to :func:`capture_rng`'s ``state``."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        cuda = state["cuda"]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)


# -- comparing specs ------------------------------------------------------------------------
def _describe_variable(v) -> str:
    return f"{v.role} {printers.domain(v)}"


def _diff_named(out: list[str], run: dict, spec: dict, missing, changed) -> None:
    """Append a line per name only in the run, changed between them, or only in the spec.
    ``missing(name, item)`` gives a template with two ``{}`` for (where it is, where it is not)."""
    for name, item in run.items():
        if name not in spec:
            out.append(missing(name, item).format("run", "spec"))
        elif item != spec[name]:
            out.append(changed(name, item, spec[name]))
    for name, item in spec.items():
        if name not in run:
            out.append(missing(name, item).format("spec", "run"))


def spec_differences(run_spec, spec, limit: int = 6) -> list[str]:
    """What differs between the spec a run was trained on and ``spec``, as short phrases.

    Compares variables (role, domain, shape), encoder and decoder factors, and the
    objective; e.g. ``"z: latent real[50] in the run, latent real[20] in the spec"``.
    Empty when the models are the same (spans, comments and layout never count)."""
    out: list[str] = []
    _diff_named(out, run_spec.var_map, spec.var_map,
                lambda n, v: f"variable {n} ({_describe_variable(v)}) is in the {{}}, not in the {{}}",
                lambda n, x, y: f"{n}: {_describe_variable(x)} in the run, {_describe_variable(y)} in the spec")
    for block in ("encoder", "decoder"):
        _diff_named(out, {f.name: f for f in getattr(run_spec, block)}, {f.name: f for f in getattr(spec, block)},
                    lambda n, f, block=block: f"{block} factor of {n} is in the {{}}, not in the {{}}",
                    lambda n, x, y, block=block: f"{block}: '{printers.factor(x)}' in the run, "
                                                 f"'{printers.factor(y)}' in the spec")
    if run_spec.objective != spec.objective:
        out.append("the objective block differs")
    if len(out) > limit:
        out = out[:limit] + [f"and {len(out) - limit} more"]
    return out


def checkpoint_spec_differences(state: dict, spec) -> list[str]:
    """What differs between the spec text stored in a checkpoint and ``spec`` (see :func:`spec_differences`).

    ``["the checkpoint's spec does not parse"]`` when its text has errors."""
    from graphvae.spec.loader import EXTENSIONS, check_text

    suffix = state.get("spec_suffix", ".gvae")
    old, diags = check_text(state["spec"], f"<checkpoint>{suffix}", EXTENSIONS.get(suffix, "dsl"))
    if old is None or any(d.is_error for d in diags):
        return ["the checkpoint's spec does not parse"]
    return spec_differences(old, spec)


def state_dict_differences(saved: dict[str, Any], current: dict[str, Any], limit: int = 4) -> list[str]:
    """Parameter names/shapes that differ between two state dicts (a last-resort check)."""
    out = []
    for key, value in saved.items():
        if key not in current:
            out.append(f"parameter {key} is in the checkpoint, not in the model")
        elif hasattr(value, "shape") and tuple(value.shape) != tuple(current[key].shape):
            out.append(f"{key}: shape {tuple(value.shape)} in the checkpoint, {tuple(current[key].shape)} in the model")
    out += [f"parameter {key} is in the model, not in the checkpoint" for key in current if key not in saved]
    return out[:limit] + ([f"and {len(out) - limit} more"] if len(out) > limit else [])


# -- opening a run's checkpoint -----------------------------------------------------------------
def open_checkpoint(folder, which: str = "last"):
    """``(state, spec, text, suffix, path)`` of a run folder's ``which`` checkpoint (``best`` falls
    back to ``last``), after checking that the stored spec was not edited and is the one the
    checkpoint was trained on.  Every problem is a one-line UserError."""
    from graphvae.spec.loader import load_spec_file

    folder.require()
    folder.check_spec_hash()
    path = folder.checkpoint(which)
    if which == "best" and not path.exists():
        path = folder.checkpoint("last")
    state = load_checkpoint(path)
    spec, text, suffix = load_spec_file(folder.spec_path())
    diffs = checkpoint_spec_differences(state, spec) if state["spec"] != text else []
    if diffs:
        raise UserError(f"{path} was trained on a different spec than {folder.spec_path()}: {'; '.join(diffs)}")
    return state, spec, text, suffix, path


def load_weights(model, state: dict, path) -> None:
    """Load a checkpoint's weights into a compiled model, or a one-line UserError when they do not fit."""
    diffs = state_dict_differences(state["model"], model.state_dict())
    if diffs:
        raise UserError(f"{path} does not fit the compiled spec: {'; '.join(diffs)}")
    model.load_state_dict(state["model"])
