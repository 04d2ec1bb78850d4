"""Check a user's batch against a spec before any network sees it.

A batch is a dict ``variable name -> tensor`` with examples first:

* observed variables: floating-point ``(B, *shape)``, no NaN or infinity (a categorical one:
  integer ``(B, *shape[:-1])`` class indices, none missing);
* categorical supervised variables: integer ``(B, *shape[:-1])`` class indices, ``-1``
  where the label is missing;
* other supervised variables: floating-point ``(B, *shape)``, NaN where missing.

Every mistake raises :class:`~graphvae.errors.UserError` with a message that
names the variable, what was expected and what was found -- never a shape traceback
from deep inside a network.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import torch

from graphvae.errors import UserError
from graphvae.spec.diagnostics import did_you_mean
from graphvae.spec.ir import Spec, Variable


@dataclass
class CheckedBatch:
    values: dict[str, torch.Tensor]  # observed and (present) supervised values, on the model's dtype
    labelled: dict[str, torch.Tensor]  # supervised name -> bool (B,): which examples carry the label
    size: int


def _describe(t: torch.Tensor) -> str:
    return f"{str(t.dtype).removeprefix('torch.')} tensor of shape {tuple(t.shape)}"


def _expected_shape(v: Variable) -> tuple[int, ...]:
    return v.value_shape if v.domain == "categorical" else v.shape


def _shape_text(v: Variable) -> str:
    dims = ", ".join(["B"] + [str(d) for d in _expected_shape(v)])
    return f"({dims})"


def check_batch(spec: Spec, batch, dtype: torch.dtype, device: torch.device | None,
                require: tuple[str, ...] | None = None) -> CheckedBatch:
    """Validate ``batch`` for ``spec``; ``require`` names the variables that must be present
    (default: every observed variable)."""
    if not isinstance(batch, Mapping):
        raise UserError(f"a batch is a dict of tensors keyed by variable name, got {type(batch).__name__}")
    variables = spec.var_map
    givable = [v.name for v in spec.variables if v.role in ("observed", "supervised")]
    for key in batch:
        if key not in variables:
            hint = did_you_mean(str(key), givable)
            raise UserError(f"batch key '{key}' is not a variable of model '{spec.name}'"
                            f"{'; ' + hint if hint else ''} (the batch takes {', '.join(givable)})")
        if variables[key].role == "latent":
            raise UserError(f"batch key '{key}' is a latent variable of model '{spec.name}'; a batch gives only "
                            f"observed and supervised variables ({', '.join(givable)})")
    need = require if require is not None else tuple(v.name for v in spec.observed)
    for name in need:
        if name not in batch:
            v = variables[name]
            raise UserError(f"batch lacks {v.role} variable '{name}' ({v.domain}, tensor of shape {_shape_text(v)})")
    size = None
    values: dict[str, torch.Tensor] = {}
    labelled: dict[str, torch.Tensor] = {}
    for name, t in batch.items():
        v = variables[name]
        if not torch.is_tensor(t):
            raise UserError(f"batch['{name}'] must be a torch.Tensor of shape {_shape_text(v)}, got {type(t).__name__}")
        shape = _expected_shape(v)
        if t.dim() != 1 + len(shape) or tuple(t.shape[1:]) != tuple(shape):
            raise UserError(f"batch['{name}'] should have shape {_shape_text(v)} for {v.domain}{list(v.shape)}, "
                            f"got {_describe(t)}")
        if size is None:
            size = t.shape[0]
        elif t.shape[0] != size:
            first = next(iter(batch))
            raise UserError(f"batch['{name}'] has {t.shape[0]} examples but batch['{first}'] has {size}")
        if device is not None and t.device != device:
            raise UserError(f"batch['{name}'] is on {t.device} but the model is on {device}; move it with .to()")
        if v.role == "supervised" and v.domain == "categorical":
            values[name], labelled[name] = _check_labels(name, v, t)
        elif v.role == "supervised":
            values[name], labelled[name] = _check_continuous_labels(name, v, t, dtype)
        elif v.domain == "categorical":
            values[name] = _check_observed_classes(name, v, t)
        else:
            values[name] = _check_observed(name, v, t, dtype)
    if not size:
        raise UserError("the batch is empty (0 examples)")
    return CheckedBatch(values, labelled, size)


def _check_observed(name: str, v: Variable, t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    if not t.is_floating_point():
        hint = " (0/1 floats for binary data)" if v.domain == "binary" else ""
        raise UserError(f"batch['{name}'] must be a floating-point tensor{hint}, got {_describe(t)}")
    bad = ~torch.isfinite(t)
    if bool(bad.any()):
        kind = "NaN" if bool(torch.isnan(t).any()) else "infinite values"
        raise UserError(f"batch['{name}'] (observed) contains {kind} in {int(bad.flatten(1).any(1).sum())} "
                        f"example(s); observed data cannot be missing")
    return t.to(dtype)


def _check_observed_classes(name: str, v: Variable, t: torch.Tensor) -> torch.Tensor:
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise UserError(f"batch['{name}'] must be an integer (long) tensor of class indices, got {_describe(t)}")
    k = v.classes
    if t.numel() and (bool((t < 0).any()) or bool((t >= k).any())):
        bad = t[(t < 0) | (t >= k)]
        raise UserError(f"batch['{name}'] (observed) has class {int(bad[0])} out of range: classes are 0..{k - 1}; "
                        "observed data cannot be missing")
    return t.long()


def _check_labels(name: str, v: Variable, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise UserError(f"batch['{name}'] must be an integer (long) tensor of class indices, -1 where missing, "
                        f"got {_describe(t)}")
    k = v.classes
    if t.numel() and (bool((t < -1).any()) or bool((t >= k).any())):
        bad = t[(t < -1) | (t >= k)]
        raise UserError(f"batch['{name}'] has label {int(bad[0])} out of range: classes are 0..{k - 1} "
                        f"and -1 marks a missing label")
    t = t.long()
    flat = t.reshape(t.shape[0], -1)
    given = flat >= 0
    mask = given.all(1)
    if bool((given.any(1) & ~mask).any()):
        raise UserError(f"batch['{name}'] has examples with some entries labelled and others -1; "
                        "an example's label is given whole or not at all")
    return t.clamp(min=0), mask


def _check_continuous_labels(name: str, v: Variable, t: torch.Tensor, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    if not t.is_floating_point():
        raise UserError(f"batch['{name}'] must be a floating-point tensor, NaN where missing, got {_describe(t)}")
    flat = t.reshape(t.shape[0], -1)
    missing = torch.isnan(flat)
    mask = ~missing.any(1)
    if bool((missing.any(1) & ~missing.all(1)).any()):
        raise UserError(f"batch['{name}'] has examples with some entries NaN and others given; "
                        "an example's value is given whole or not at all")
    if bool(torch.isinf(flat).any()):
        raise UserError(f"batch['{name}'] contains infinite values")
    return torch.nan_to_num(t, nan=0.0).to(dtype), mask
