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
:func:`check_resumable` for what a resume needs).  :func:`spec_differences` names what
differs between the spec a checkpoint was trained on and another spec.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import random
from typing import Any

import numpy as np
import torch

from graphvae.errors import UserError
from graphvae.spec import printers
from graphvae.atomic import atomic_write_bytes

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


# -- the structure of a loaded checkpoint ---------------------------------------------------------
def _invalid(path, what: str) -> UserError:
    return UserError(f"{path}: not a valid graphvae checkpoint: {what}")


def _type_name(value) -> str:
    return type(value).__name__


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _need(ok: bool, path, what: str) -> None:
    if not ok:
        raise _invalid(path, what)


def _tensor_like(value, dtype, shape) -> bool:
    return isinstance(value, torch.Tensor) and value.dtype == dtype and tuple(value.shape) == tuple(shape)


def check_structure(state: dict, path) -> None:
    """Refuse (one line naming the field) a checkpoint whose fields have the wrong types.

    ``model`` and ``spec`` are needed; any other field present must have its type."""
    fmt = state.setdefault("format", 1)
    _need(isinstance(fmt, int) and not isinstance(fmt, bool) and fmt >= 1, path,
          f"'format' must be a whole number, not {fmt!r}"[:160])
    model = state["model"]
    _need(isinstance(model, dict), path, f"'model' must be a dict of tensors, not a {_type_name(model)}")
    for key, value in model.items():
        _need(isinstance(key, str) and isinstance(value, torch.Tensor), path,
              f"'model' must map parameter names to tensors ({str(key)[:60]!r} holds a {_type_name(value)})")
    _need(isinstance(state["spec"], str), path, f"'spec' must be the spec's text, not a {_type_name(state['spec'])}")
    suffix = state.get("spec_suffix", ".gvae")
    _need(suffix in (".gvae", ".yaml", ".yml"), path, f"'spec_suffix' must be .gvae or .yaml, not {str(suffix)[:40]!r}")
    for key in ("step", "epoch"):
        if key in state:
            _need(_is_count(state[key]), path, f"'{key}' must be a whole number >= 0, not {str(state[key])[:40]!r}")
    if "config" in state:
        config = state["config"]
        _need(isinstance(config, dict) and all(isinstance(k, str) for k in config), path,
              f"'config' must be a dict of settings, not a {_type_name(config)}")
    for key in ("optimizer", "rng", "extra", "files"):
        if key in state:
            _need(isinstance(state[key], dict), path, f"'{key}' must be a dict, not a {_type_name(state[key])}")
    if "files" in state:
        _need(all(isinstance(k, str) and isinstance(v, str) for k, v in state["files"].items()), path,
              "'files' must map file names to sha256 digests")
    if state.get("scheduler") is not None:
        _need(isinstance(state["scheduler"], dict), path,
              f"'scheduler' must be a dict or None, not a {_type_name(state['scheduler'])}")


def _check_rng(rng: dict, path) -> None:
    _need(_tensor_like(rng.get("torch"), torch.uint8, torch.get_rng_state().shape), path,
          "'rng.torch' is not a torch RNG state (a uint8 tensor of "
          f"{torch.get_rng_state().numel()} bytes)")
    n = rng.get("numpy")
    _need(isinstance(n, dict) and isinstance(n.get("name"), str) and _tensor_like(n.get("keys"), torch.int64, (624,))
          and _is_count(n.get("pos")) and n["pos"] <= 624 and isinstance(n.get("has_gauss"), int)
          and _is_number(n.get("gauss")), path, "'rng.numpy' is not a numpy RNG state")
    p = rng.get("python")
    _need(isinstance(p, dict) and isinstance(p.get("version"), int) and isinstance(p.get("state"), (list, tuple))
          and len(p["state"]) == 625 and all(_is_count(v) for v in p["state"])
          and (p.get("gauss") is None or _is_number(p.get("gauss"))), path, "'rng.python' is not a Python RNG state")
    if "cuda" in rng:
        _need(isinstance(rng["cuda"], (list, tuple)) and all(isinstance(t, torch.Tensor) and t.dtype == torch.uint8
                                                             for t in rng["cuda"]), path,
              "'rng.cuda' is not a list of CUDA RNG states")
    b = rng.get("batches")
    generator = torch.Generator().get_state()
    _need(isinstance(b, dict) and all(_is_count(b.get(k)) for k in ("epoch", "step", "steps", "n_examples"))
          and isinstance(b.get("epoch_seed"), int) and _tensor_like(b.get("generator"), generator.dtype, generator.shape),
          path, "'rng.batches' is not a batch position")


def _check_extra(extra: dict, path) -> None:
    from dataclasses import fields

    from graphvae.train.selection import Selection

    sel = extra.get("selection")
    kinds = {f.name: f.type for f in fields(Selection)}
    _need(isinstance(sel, dict) and set(sel) == set(kinds), path,
          f"'extra.selection' must hold {', '.join(kinds)}")
    for name, kind in kinds.items():
        value = sel[name]
        good = {"str": isinstance(value, str), "bool": isinstance(value, bool),
                "int": _is_count(value), "float": _is_number(value)}.get(str(kind), True)
        _need(good, path, f"'extra.selection.{name}' has the wrong type ({_type_name(value)})")
    _need(sel["rule"] in ("error_se", "error", "elbo", "last"), path,
          f"'extra.selection.rule' is not a selection rule ({sel['rule'][:40]!r})")
    sums = extra.get("sums")
    _need(isinstance(sums, dict) and all(isinstance(k, str) and _is_number(v) for k, v in sums.items()), path,
          "'extra.sums' must map term names to numbers")
    _need(_is_count(extra.get("epoch_steps")), path, "'extra.epoch_steps' must be a whole number >= 0")
    _need(_is_number(extra.get("epoch_seconds")) and math.isfinite(extra["epoch_seconds"]), path,
          "'extra.epoch_seconds' must be a number")


def check_resumable(state: dict, path) -> None:
    """Refuse (one line) a checkpoint that lacks, or has malformed, what resuming a run needs."""
    for key in ("optimizer", "rng", "extra", "config", "step", "epoch"):
        _need(key in state, path, f"'{key}' is missing")
    opt = state["optimizer"]
    groups = opt.get("param_groups")
    _need(isinstance(opt.get("state"), dict) and isinstance(groups, list) and len(groups) > 0
          and all(isinstance(g, dict) and isinstance(g.get("params"), list) for g in groups), path,
          "'optimizer' is not an optimiser state (it needs 'state' and 'param_groups')")
    _check_rng(state["rng"], path)
    _check_extra(state["extra"], path)


def _same_kind(saved, current) -> bool:
    """Whether a saved optimiser hyperparameter has the kind of the current one (numbers match
    numbers, tuples match tuples of as many numbers, ...)."""
    if isinstance(current, bool) or current is None or isinstance(current, str):
        return type(saved) is type(current)
    if isinstance(current, (int, float)):
        return _is_number(saved)
    if isinstance(current, torch.Tensor):
        return isinstance(saved, torch.Tensor) and saved.numel() == current.numel()
    if isinstance(current, (list, tuple)):
        return (isinstance(saved, (list, tuple)) and len(saved) == len(current)
                and all(_same_kind(a, b) for a, b in zip(saved, current)))
    return True


def _per_parameter_schema(opt) -> dict:
    """``{key: example value}`` of the state ``opt``'s class keeps per parameter, from one step of
    a copy of it on a one-number stand-in parameter."""
    groups = [{k: v for k, v in opt.param_groups[0].items() if k != "params"}]
    stand_in = torch.zeros(1, requires_grad=True)
    stand_in.grad = torch.zeros(1)
    probe = type(opt)([{"params": [stand_in], **groups[0]}])
    probe.step()
    return dict(probe.state_dict()["state"].get(0, {}))


def optimizer_differences(saved: dict, opt) -> list[str]:
    """Why an optimiser's state ``saved`` does not fit ``opt`` (empty when it does): its groups'
    sizes and hyperparameters, and each parameter's state (the keys, kinds and shapes ``opt``'s
    class keeps)."""
    params = [p for g in opt.param_groups for p in g["params"]]
    ids = [i for g in saved["param_groups"] for i in g["params"]]
    if [len(g["params"]) for g in saved["param_groups"]] != [len(g["params"]) for g in opt.param_groups]:
        return [f"it holds {len(ids)} parameters in {len(saved['param_groups'])} groups, the model "
                f"{len(params)} in {len(opt.param_groups)}"]
    if not all(_is_count(i) for i in ids) or len(set(ids)) != len(ids):
        return ["its parameter groups must list distinct parameter numbers"]
    out = []
    for group, current in zip(saved["param_groups"], opt.param_groups):
        for key, value in current.items():
            if key != "params" and (key not in group or not _same_kind(group[key], value)):
                out.append(f"hyperparameter {key} is {str(group.get(key, 'missing'))[:40]}")
    schema = _per_parameter_schema(opt)
    by_id = dict(zip(ids, params))
    for pid, state in saved["state"].items():
        if pid not in by_id or not isinstance(state, dict):
            out.append(f"it has a state for an unknown parameter {str(pid)[:20]}")
            continue
        if state and set(state) != set(schema):
            out.append(f"parameter {pid}'s state holds {', '.join(map(str, state))[:80]}, not "
                       f"{', '.join(schema)}")
            continue
        for name, value in state.items():
            like = schema[name]
            if isinstance(like, torch.Tensor):
                shape = () if like.dim() == 0 else tuple(by_id[pid].shape)
                if not isinstance(value, torch.Tensor) or tuple(value.shape) != shape:
                    what = f"shape {tuple(value.shape)}" if isinstance(value, torch.Tensor) else _type_name(value)
                    out.append(f"{name} of parameter {pid} has {what}, not shape {shape}")
                elif name == "step" and not (value.dim() == 0 and math.isfinite(float(value)) and float(value) >= 0):
                    out.append(f"step of parameter {pid} is {float(value)}")
            elif not _same_kind(value, like):
                out.append(f"{name} of parameter {pid} is a {_type_name(value)}")
    return out[:3]


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
        raise _invalid(path, "'config' is missing")
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
