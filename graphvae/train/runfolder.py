"""The run folder: where a training run keeps its spec, config, labelled subset, metrics and checkpoints.

Torch-free.  Layout of ``RUN/``::

    spec.gvae | spec.yaml   the spec text, same extension as its source
    spec.sha256             sha256 of that text
    config.json             the resolved TrainConfig
    labelled.json           indices (into the training data) of the labelled subset
    metrics.jsonl           one JSON object per epoch
    last.pt, best.pt        checkpoints (see graphvae.train.checkpoint)
    baseline/               the labelled-only baseline, a run folder (graphvae baseline RUN)
    tensorboard/            optional, when TensorBoard is installed

Every file is written atomically: a temp file in the same folder, then ``os.replace``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

from graphvae.atomic import atomic_write_text
from graphvae.errors import UserError

SPEC_NAMES = ("spec.gvae", "spec.yaml", "spec.yml")  # graphvae writes the first two


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _jsonable(value: Any) -> Any:
    """Non-finite floats as strings ("nan", "inf") so metrics.jsonl stays strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


class RunFolder:
    """Paths and small files of one run folder."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    # -- paths -------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def labelled_path(self) -> Path:
        return self.path / "labelled.json"

    @property
    def sha_path(self) -> Path:
        return self.path / "spec.sha256"

    @property
    def tensorboard_dir(self) -> Path:
        return self.path / "tensorboard"

    def checkpoint(self, which: str = "last") -> Path:
        """``RUN/last.pt`` or ``RUN/best.pt``."""
        return self.path / f"{which}.pt"

    @property
    def baseline(self) -> "RunFolder":
        """``RUN/baseline``: the run's labelled-only baseline (graphvae.train.baseline), a run folder itself."""
        return RunFolder(self.path / "baseline")

    def spec_path(self) -> Path | None:
        for name in SPEC_NAMES:
            if (self.path / name).is_file():
                return self.path / name
        return None

    # -- state -------------------------------------------------------------------------
    def exists(self) -> bool:
        return self.path.is_dir() and self.spec_path() is not None

    def require(self) -> "RunFolder":
        """This folder, or a UserError when it is not a run folder."""
        if not self.path.is_dir():
            raise UserError(f"{self.path}: no such run folder")
        if self.spec_path() is None:
            raise UserError(f"{self.path}: not a run folder (no spec.gvae or spec.yaml); "
                            "train one with 'graphvae train SPEC --out RUN'")
        return self

    def has_checkpoint(self) -> bool:
        return self.checkpoint("last").is_file() or self.checkpoint("best").is_file()

    # -- writing -----------------------------------------------------------------------
    def create(self, spec_text: str, spec_suffix: str, config: dict) -> None:
        """Lay out a new run: the spec text and its hash, and the config (graphvae.data writes labelled.json)."""
        self.path.mkdir(parents=True, exist_ok=True)
        suffix = ".yaml" if spec_suffix in (".yaml", ".yml") else ".gvae"
        for name in SPEC_NAMES:  # a fresh run replaces an earlier spec of the other language
            if name != f"spec{suffix}" and (self.path / name).exists():
                (self.path / name).unlink()
        atomic_write_text(self.path / f"spec{suffix}", spec_text)
        atomic_write_text(self.sha_path, sha256_text(spec_text) + "\n")
        self.write_config(config)
        if self.metrics_path.exists():
            self.metrics_path.unlink()

    def write_config(self, config: dict) -> None:
        atomic_write_text(self.config_path, json.dumps(config, indent=2, sort_keys=True) + "\n")

    def write_metrics(self, rows: list[dict]) -> None:
        """Replace metrics.jsonl by ``rows`` (atomic; used after a resume truncates to the checkpoint)."""
        text = "".join(json.dumps({k: _jsonable(v) for k, v in r.items()}) + "\n" for r in rows)
        atomic_write_text(self.metrics_path, text)

    def append_metrics(self, row: dict) -> None:
        rows = self.read_metrics() if self.metrics_path.exists() else []
        rows.append(row)
        self.write_metrics(rows)

    # -- reading -----------------------------------------------------------------------
    def read_spec_text(self) -> str:
        path = self.require().spec_path()
        return path.read_text(encoding="utf-8")

    def read_config(self) -> dict:
        try:
            return json.loads(self.config_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UserError(f"{self.path}: run folder has no config.json") from None
        except json.JSONDecodeError as exc:
            raise UserError(f"{self.config_path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None

    def read_metrics(self) -> list[dict]:
        """Every row of metrics.jsonl (``[]`` when there is none yet)."""
        if not self.metrics_path.exists():
            return []
        rows = []
        for n, line in enumerate(self.metrics_path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                raise UserError(f"{self.metrics_path}:{n}: not valid JSON") from None
        return rows

    def check_spec_hash(self) -> None:
        """Refuse a run whose spec text was edited after training (its hash no longer matches)."""
        text = self.read_spec_text()
        if self.sha_path.exists():
            want = self.sha_path.read_text(encoding="utf-8").strip()
            if want and want != sha256_text(text):
                raise UserError(f"{self.spec_path()}: edited after training (its sha256 differs from "
                                f"{self.sha_path.name}); the checkpoints belong to the original spec")


def spec_path(path: str | os.PathLike) -> Path:
    """The spec file for ``path``: the file itself, or the one spec file of a run folder."""
    p = Path(path)
    if p.is_dir():
        found = [p / n for n in SPEC_NAMES if (p / n).is_file()]
        if len(found) != 1:
            what = "none" if not found else " and ".join(f.name for f in found)
            raise UserError(f"run folder '{p}' must hold exactly one of {', '.join(SPEC_NAMES)}; found {what}")
        return found[0]
    if not p.exists():
        raise UserError(f"no such spec file or run folder: '{p}'")
    return p
