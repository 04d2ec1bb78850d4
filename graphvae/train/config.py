"""Resolving the training configuration: defaults, then the spec's train block, then flags.

Torch-free.  :class:`graphvae.config.TrainConfig` holds the names, types and
defaults; this module layers a spec's ``train`` block and command-line overrides
(named flags and ``--set key=value``) on top, checking each value's type and range.
A bad value is a one-line :class:`~graphvae.errors.UserError`.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Iterable, Mapping

from graphvae.errors import UserError
from graphvae.spec.diagnostics import did_you_mean
from graphvae.spec.settings import TrainConfig, schema

# Settings with a closed set of values (``data`` may also be a path to a .npz file).
CHOICES: dict[str, tuple[str, ...]] = {
    "optimizer": ("adam", "adamw", "sgd", "rmsprop"),
    "schedule": ("constant", "cosine", "step", "exponential"),
    "binarize": ("dynamic", "static", "threshold"),
}
DATASETS = ("digits", "mnist", "fashion-mnist", "kmnist")
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")

# Settings a resumed run may change without breaking exact continuation.
RESUMABLE = frozenset({"epochs", "device", "data_dir", "eval_samples"})

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def _coerce(name: str, kind: type, value: Any, origin: str) -> Any:
    """``value`` as ``kind`` or a UserError naming the setting and where it came from."""
    bad = UserError(f"{origin}: {name} must be {_kind_name(kind)}, got {value!r}")
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise bad
    if kind is int:
        if isinstance(value, bool):
            raise bad
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                raise bad from None
        raise bad
    if kind is float:
        if isinstance(value, bool):
            raise bad
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                raise bad from None
        raise bad
    if kind is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise bad
    return value


def _kind_name(kind: type) -> str:
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(kind, kind.__name__)


def _check_name(name: str, origin: str) -> None:
    known = schema(TrainConfig)
    if name not in known:
        hint = did_you_mean(name, known)
        raise UserError(f"{origin}: unknown train setting '{name}'" + (f"; {hint}" if hint else "")
                        + f" (known: {', '.join(known)})")


def check_config(cfg: TrainConfig) -> TrainConfig:
    """Range and choice checks across the resolved settings; returns ``cfg``."""
    def fail(msg: str):
        raise UserError(msg)

    for name, choices in CHOICES.items():
        value = getattr(cfg, name)
        if value not in choices:
            hint = did_you_mean(value, choices)
            fail(f"{name} must be one of {', '.join(choices)}, got '{value}'" + (f"; {hint}" if hint else ""))
    if cfg.data not in DATASETS and not cfg.data.endswith(".npz"):
        hint = did_you_mean(cfg.data, DATASETS)
        fail(f"data must be one of {', '.join(DATASETS)} or a .npz file, got '{cfg.data}'"
             + (f"; {hint}" if hint else ""))
    if not _DEVICE.match(cfg.device):
        fail(f"device must be auto, cpu, cuda or cuda:N, got '{cfg.device}'")
    if cfg.epochs < 1:
        fail(f"epochs must be at least 1, got {cfg.epochs}")
    if cfg.batch_size < 1:
        fail(f"batch_size must be at least 1, got {cfg.batch_size}")
    if cfg.labels < -1:
        fail(f"labels must be a count of labelled examples, or -1 for all, got {cfg.labels}")
    if not 0 <= cfg.labelled_per_batch < cfg.batch_size:
        fail(f"labelled_per_batch must be between 0 and batch_size - 1 ({cfg.batch_size - 1}: a batch needs room "
             f"for unlabelled examples), got {cfg.labelled_per_batch}")
    if cfg.labels == 0 and cfg.labelled_per_batch > 0:
        fail("labels = 0 leaves no labelled examples to fill labelled_per_batch; set labelled_per_batch = 0")
    if not cfg.lr > 0:
        fail(f"lr must be positive, got {cfg.lr}")
    if cfg.weight_decay < 0:
        fail(f"weight_decay must be non-negative, got {cfg.weight_decay}")
    if not 0 <= cfg.validation < 1:
        fail(f"validation must be a fraction in [0, 1), got {cfg.validation}")
    if cfg.eval_samples < 1:
        fail(f"eval_samples must be at least 1, got {cfg.eval_samples}")
    if cfg.grad_clip < 0:
        fail(f"grad_clip must be non-negative (0 disables), got {cfg.grad_clip}")
    return cfg


def parse_set(items: Iterable[str]) -> dict[str, str]:
    """``["lr=3e-4", "epochs=5"]`` -> ``{"lr": "3e-4", "epochs": "5"}`` (values are typed later)."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise UserError(f"--set expects KEY=VALUE, got '{item}'")
        _check_name(key, "--set")
        out[key] = value.strip()
    return out


def apply(cfg: TrainConfig, values: Mapping[str, Any], origin: str) -> TrainConfig:
    """``cfg`` with ``values`` (name -> raw value) type-checked and substituted."""
    kinds = schema(TrainConfig)
    changes = {}
    for name, value in values.items():
        _check_name(name, origin)
        changes[name] = _coerce(name, kinds[name], value, origin)
    return dataclasses.replace(cfg, **changes)


def from_spec(spec) -> TrainConfig:
    """Defaults overlaid with the spec's train block."""
    origin = f"{spec.path}: train block" if getattr(spec, "path", None) else "train block"
    return apply(TrainConfig(), {s.name: s.value for s in spec.train}, origin)


# Named train flags and the setting each overrides (argparse dest -> TrainConfig field).
FLAG_FIELDS = ("data", "data_dir", "device", "labels", "epochs", "batch_size", "labelled_per_batch",
               "lr", "seed", "binarize")


def flag_overrides(args) -> dict[str, Any]:
    """The settings given on the command line: named flags first, then ``--set`` (which wins)."""
    values = {name: getattr(args, name) for name in FLAG_FIELDS if getattr(args, name, None) is not None}
    values.update(parse_set(getattr(args, "set", None) or []))
    return values


def resolve(spec, overrides: Mapping[str, Any] | None = None) -> TrainConfig:
    """The run's configuration: TrainConfig defaults < the spec's train block < ``overrides``."""
    cfg = from_spec(spec)
    if overrides:
        cfg = apply(cfg, overrides, "command line")
    return check_config(cfg)


def to_dict(cfg: TrainConfig) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def from_dict(values: Mapping[str, Any], origin: str = "config.json") -> TrainConfig:
    """A TrainConfig from a saved dict; unknown keys (from a newer version) are refused."""
    return check_config(apply(TrainConfig(), dict(values), origin))


def resume_overrides(saved: TrainConfig, overrides: Mapping[str, Any]) -> TrainConfig:
    """The saved config with the overrides a resumed run may take; others must not change."""
    cfg = apply(saved, overrides, "command line")
    for name in overrides:
        if name not in RESUMABLE and getattr(cfg, name) != getattr(saved, name):
            raise UserError(f"cannot change {name} when resuming (the run has {getattr(saved, name)!r}, "
                            f"asked for {getattr(cfg, name)!r}); only {', '.join(sorted(RESUMABLE))} may change")
    return check_config(cfg)
