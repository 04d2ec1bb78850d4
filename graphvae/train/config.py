"""Resolving a run's training configuration: defaults, then the spec's train block, then flags.

Torch-free.  :mod:`graphvae.spec.settings` holds the names, types, defaults, constraints and
which settings have flags or may change on resume; this module layers a spec's ``train``
block and command-line overrides (named flags and ``--set key=value``) on top, reading each
value as its type and checking the result against that table.  A bad value is a one-line
:class:`~graphvae.errors.UserError`.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Iterable, Mapping

from graphvae.errors import UserError
from graphvae.spec.diagnostics import did_you_mean
from graphvae.spec.settings import FLAGS, SETTINGS, TrainConfig, coerce, problems

TRAIN = SETTINGS["train"]
FLAG_FIELDS = FLAGS  # named train flags (argparse dest == TrainConfig field), in the table's order
# Settings a resumed run may change without breaking exact continuation.
RESUMABLE = frozenset(name for name, row in TRAIN.items() if row.resumable)


def _check_name(name: str, origin: str) -> None:
    if name not in TRAIN:
        hint = did_you_mean(name, TRAIN)
        raise UserError(f"{origin}: unknown train setting '{name}'" + (f"; {hint}" if hint else "")
                        + f" (known: {', '.join(TRAIN)})")


def check_config(cfg: TrainConfig) -> TrainConfig:
    """Every constraint and cross rule of the table over the resolved settings; returns ``cfg``."""
    found = problems("train", dataclasses.asdict(cfg))
    if found:
        raise UserError(found[0])
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
    """``cfg`` with ``values`` (name -> raw value) read as their types and substituted."""
    changes = {}
    for name, value in values.items():
        _check_name(name, origin)
        changes[name] = coerce(TRAIN[name], value, origin)
    return dataclasses.replace(cfg, **changes)


def from_spec(spec) -> TrainConfig:
    """Defaults overlaid with the spec's train block.  A relative ``.npz`` path written in a spec
    file is read from the spec's folder (as the spec's author sees it), made absolute."""
    path = getattr(spec, "path", None)
    origin = f"{path}: train block" if path else "train block"
    cfg = apply(TrainConfig(), {s.name: s.value for s in spec.train}, origin)
    written = any(s.name == "data" for s in spec.train)
    if path and written and str(cfg.data).endswith(".npz") and not os.path.isabs(os.path.expanduser(cfg.data)):
        cfg = dataclasses.replace(cfg, data=os.path.abspath(os.path.join(os.path.dirname(path), cfg.data)))
    return cfg


def flag_overrides(args) -> dict[str, Any]:
    """The settings given on the command line: named flags first, then ``--set`` (which wins)."""
    values = {name: getattr(args, name) for name in FLAG_FIELDS if getattr(args, name, None) is not None}
    values.update(parse_set(getattr(args, "set", None) or []))
    return values


def resolve(spec, overrides: Mapping[str, Any] | None = None) -> TrainConfig:
    """The run's configuration: TrainConfig defaults < the spec's train block < ``overrides``.

    One default depends on the data: an ``.npz`` file's labels are the user's own, so unless
    the spec or the command line names ``labels``, the run takes every label the file gives
    (``labels = -1``) rather than subsampling 100 of them."""
    cfg = from_spec(spec)
    if overrides:
        cfg = apply(cfg, overrides, "command line")
    named = "labels" in (overrides or {}) or any(s.name == "labels" for s in spec.train)
    if str(cfg.data).endswith(".npz") and not named:
        cfg = dataclasses.replace(cfg, labels=-1)
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
