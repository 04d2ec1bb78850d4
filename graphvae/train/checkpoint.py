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
    files       sha256 of the run folder's files the run depends on ({"labelled.json": ...})
    digest      sha256 of everything above (format 3 on; see :func:`payload_digest`)

It is loaded with ``torch.load(path, weights_only=True)``, so only tensors, numbers,
strings and lists/dicts/tuples of them are stored.  A missing, truncated or corrupt
file gives a one-line :class:`UserError`: torch does not check the zip's CRCs, so a
flipped bit is caught by ``digest`` (format 2 checkpoints have none and load unchecked),
and the structure of every field is checked before it is used (:func:`check_structure`;
:func:`check_resumable` for what a resume needs, both in :mod:`graphvae.train.checkpoint_checks`,
which also names what differs between the spec a checkpoint was trained on and another spec).
"""

from __future__ import annotations

import hashlib
import io
import os
import random

import numpy as np
import torch

from graphvae.atomic import atomic_write_bytes
from graphvae.errors import UserError
from graphvae.train.checkpoint_checks import (check_resumable, check_structure, checkpoint_spec_differences, invalid,
                                              state_dict_differences)

CHECKPOINT_FORMAT = 3  # 3: a digest of the contents and of the run's files; 2: batch_size counts unlabelled
#                        examples only, alpha_scaling = dataset by default
RESUMABLE_FORMAT = 2  # the oldest format a run can be resumed from (older ones can be evaluated)
DIGEST_FORMAT = 3  # from this format on a checkpoint must carry its digest


# -- saving and loading ---------------------------------------------------------------------
def _feed(h, value, depth: int = 0) -> None:
    """Feed ``value`` (a checkpoint's tensors and primitive containers) into the hash ``h``,
    tagged by type so that ``1``, ``1.0``, ``"1"`` and ``[1]`` differ."""
    if depth > 100:
        raise ValueError("nested more than 100 deep")
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}:".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy())  # the raw bytes, without a copy
    elif isinstance(value, dict):
        h.update(f"D{len(value)}:".encode())
        for key, item in value.items():
            _feed(h, key, depth + 1)
            _feed(h, item, depth + 1)
    elif isinstance(value, (list, tuple)):
        h.update(f"{'L' if isinstance(value, list) else 'U'}{len(value)}:".encode())
        for item in value:
            _feed(h, item, depth + 1)
    elif isinstance(value, str):
        data = value.encode("utf-8", "surrogatepass")
        h.update(f"S{len(data)}:".encode() + data)
    elif value is None or isinstance(value, (bool, int, float)):
        h.update(f"{type(value).__name__}:{value!r};".encode())
    else:
        h.update(f"O{type(value).__name__}:{value!r};".encode())


def payload_digest(state: dict) -> str:
    """The sha256 of a checkpoint's contents (every field but ``digest``, in order)."""
    h = hashlib.sha256()
    _feed(h, {k: v for k, v in state.items() if k != "digest"})
    return h.hexdigest()


def checkpoint_bytes(state: dict) -> bytes:
    """``state`` serialised as a checkpoint file: the current format and the digest added."""
    state = dict(state, format=CHECKPOINT_FORMAT)
    state.pop("digest", None)
    state["digest"] = payload_digest(state)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def save_checkpoint(path: str | os.PathLike, state: dict) -> None:
    """Serialise ``state`` and replace ``path`` atomically (the old file survives a failed write)."""
    atomic_write_bytes(path, checkpoint_bytes(state))


def load_checkpoint(path: str | os.PathLike) -> dict:
    """The checkpoint dict at ``path`` (on CPU), its digest verified and its structure checked
    (:func:`check_structure`), or a one-line UserError."""
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
    if "digest" in state:
        try:
            ok = state["digest"] == payload_digest(state)
        except (ValueError, TypeError, RuntimeError, RecursionError):
            ok = False
        if not ok:
            raise UserError(f"{path}: corrupt checkpoint (its contents do not match the sha256 digest stored "
                            "in it: a damaged file)")
    check_structure(state, path)
    if state["format"] > CHECKPOINT_FORMAT:
        raise UserError(f"{path}: written by a newer graphvae (checkpoint format {state['format']})")
    if state["format"] >= DIGEST_FORMAT and "digest" not in state:
        raise UserError(f"{path}: corrupt checkpoint (format {state['format']} without its sha256 digest)")
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


# -- opening a run's checkpoint -----------------------------------------------------------------
def open_checkpoint(folder, which: str = "last", resume: bool = False):
    """``(state, spec, text, suffix, path)`` of a run folder's ``which`` checkpoint (``best`` falls
    back to ``last``), after checking that the stored spec was not edited and is the one the
    checkpoint was trained on, and that the run's files (``labelled.json``) are the ones it
    was trained with.  ``resume`` also checks what resuming needs.  Every problem is a
    one-line UserError."""
    from graphvae.spec.loader import load_spec_file

    folder.require()
    folder.check_spec_hash()
    path = folder.checkpoint(which)
    if which == "best" and not path.exists():
        path = folder.checkpoint("last")
    if not path.exists() and not folder.has_checkpoint():
        raise folder.no_checkpoint_yet()
    state = load_checkpoint(path)
    if which == "best" and path == folder.checkpoint("best"):
        path, state = _selected(folder, state)
    if resume:
        check_resumable(state, path)
    if "config" not in state:
        raise invalid(path, "'config' is missing")
    folder.check_files(state.get("files"), path)
    spec, text, suffix = load_spec_file(folder.spec_path())
    diffs = checkpoint_spec_differences(state, spec) if state["spec"] != text else []
    if diffs:
        raise UserError(f"{path} was trained on a different spec than {folder.spec_path()}: {'; '.join(diffs)}")
    return state, spec, text, suffix, path


def _selected(folder, best_state: dict):
    """``(path, state)`` of ``best.pt`` (loaded as ``best_state``), or of ``last.pt`` when a kill came
    between an epoch's ``last.pt`` and its ``best.pt``: ``last.pt`` holds a later, selected epoch
    (a resume would copy it to ``best.pt``)."""
    best, last = folder.checkpoint("best"), folder.checkpoint("last")
    try:
        if not last.is_file() or best.read_bytes() == last.read_bytes():
            return best, best_state
        state = load_checkpoint(last)
    except (OSError, UserError):
        return best, best_state
    extra = state.get("extra")
    later = state.get("step", 0) > best_state.get("step", 0)
    return (last, state) if later and isinstance(extra, dict) and extra.get("selected") is True else (best, best_state)


def load_weights(model, state: dict, path) -> None:
    """Load a checkpoint's weights into a compiled model, or a one-line UserError when they do not fit."""
    diffs = state_dict_differences(state["model"], model.state_dict())
    if diffs:
        raise UserError(f"{path} does not fit the compiled spec: {'; '.join(diffs)}")
    model.load_state_dict(state["model"])
