"""Checking a loaded checkpoint: the structure of each field, what a resume needs, the optimiser
state against the optimiser's own kind, and what differs from a spec or a model.

Each check names the field at fault in a one-line :class:`~graphvae.errors.UserError`
(``RUN/last.pt: not a valid graphvae checkpoint: 'step' must be a whole number >= 0, not 'abc'``);
the differences come back as lists of short phrases for the caller's message.
:mod:`graphvae.train.checkpoint` saves, loads and opens checkpoints and calls these.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from graphvae.errors import UserError
from graphvae.spec import printers


# -- the structure of a loaded checkpoint ---------------------------------------------------------
def invalid(path, what: str) -> UserError:
    """The one-line error for a checkpoint at ``path`` whose ``what`` is wrong."""
    return UserError(f"{path}: not a valid graphvae checkpoint: {what}")


def _type_name(value) -> str:
    return type(value).__name__


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _need(ok: bool, path, what: str) -> None:
    if not ok:
        raise invalid(path, what)


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
    for key in ("step", "epoch", "world_size"):
        if key in state:
            _need(_is_count(state[key]), path, f"'{key}' must be a whole number >= 0, not {str(state[key])[:40]!r}")
    if "world_size" in state:
        _need(state["world_size"] >= 1, path, "'world_size' must be at least 1")
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


def _check_rng(rng: dict, path, ranks: int = 1) -> None:
    """A checkpoint's RNG states: the global generators' and the batch position's, and with
    ``ranks`` > 1 processes (torchrun) the other ranks' global generators under ``rng.ranks``."""
    _check_generators(rng, path, "rng")
    if ranks > 1 or "ranks" in rng:
        others = rng.get("ranks")
        _need(isinstance(others, list) and len(others) == ranks - 1 and all(isinstance(r, dict) for r in others), path,
              f"'rng.ranks' must hold the RNG states of the other {ranks - 1} processes")
        for i, r in enumerate(others):
            _check_generators(r, path, f"rng.ranks[{i}]")
    b = rng.get("batches")
    generator = torch.Generator().get_state()
    _need(isinstance(b, dict) and all(_is_count(b.get(k)) for k in ("epoch", "step", "steps", "n_examples"))
          and isinstance(b.get("epoch_seed"), int) and _tensor_like(b.get("generator"), generator.dtype, generator.shape),
          path, "'rng.batches' is not a batch position")


def _check_generators(rng: dict, path, where: str) -> None:
    _need(_tensor_like(rng.get("torch"), torch.uint8, torch.get_rng_state().shape), path,
          f"'{where}.torch' is not a torch RNG state (a uint8 tensor of "
          f"{torch.get_rng_state().numel()} bytes)")
    n = rng.get("numpy")
    _need(isinstance(n, dict) and isinstance(n.get("name"), str) and _tensor_like(n.get("keys"), torch.int64, (624,))
          and _is_count(n.get("pos")) and n["pos"] <= 624 and isinstance(n.get("has_gauss"), int)
          and _is_number(n.get("gauss")), path, f"'{where}.numpy' is not a numpy RNG state")
    p = rng.get("python")
    _need(isinstance(p, dict) and isinstance(p.get("version"), int) and isinstance(p.get("state"), (list, tuple))
          and len(p["state"]) == 625 and all(_is_count(v) for v in p["state"])
          and (p.get("gauss") is None or _is_number(p.get("gauss"))), path, f"'{where}.python' is not a Python RNG state")
    if "cuda" in rng:
        _need(isinstance(rng["cuda"], (list, tuple)) and all(isinstance(t, torch.Tensor) and t.dtype == torch.uint8
                                                             for t in rng["cuda"]), path,
              f"'{where}.cuda' is not a list of CUDA RNG states")


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
    _check_rng(state["rng"], path, int(state.get("world_size", 1)))
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
