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

Every file is written atomically: a temp file in the same folder, then ``os.replace``; the
temp files a killed write leaves behind are removed when a run starts or resumes.

A folder *is a run* when it holds a spec file, ``config.json`` and a ``spec.sha256`` that
matches the spec (as graphvae writes them).  A new run goes into a missing folder, an
empty one, or a run that has no checkpoint yet (it is started again); any other folder
is refused untouched.  While a run is laid out, ``.graphvae-creating`` marks the folder, so
that one killed halfway is still taken.  Each checkpoint records the sha256 of ``labelled.json``, and a
run whose ``labelled.json`` no longer matches is refused.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

from graphvae.atomic import atomic_write_text, remove_stale_temps
from graphvae.errors import UserError

SPEC_NAMES = ("spec.gvae", "spec.yaml", "spec.yml")  # graphvae writes the first two
TIED_FILES = ("labelled.json",)  # files whose sha256 every checkpoint records (see check_files)
WRITTEN = (*SPEC_NAMES, "spec.sha256", "config.json", "labelled.json", "metrics.jsonl", "last.pt", "best.pt")
CREATING = ".graphvae-creating"  # present while create() lays a run out; a kill leaves it, and the folder stays a run


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


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

    def no_checkpoint_yet(self) -> UserError:
        """The error for resuming a run that has no checkpoint yet, saying how to start it again."""
        return UserError(f"{self.path}: no checkpoint yet (the run stopped before its first epoch ended or its "
                         f"first Ctrl-C); start it again with 'graphvae train SPEC --out {self.path}'")

    def is_run(self) -> bool:
        """Whether graphvae laid this folder out: a spec file, config.json, and a spec.sha256 that matches."""
        spec = self.spec_path()
        if not self.path.is_dir() or spec is None or not self.config_path.is_file() or not self.sha_path.is_file():
            return False
        try:
            return self.sha_path.read_text(encoding="utf-8").strip() == sha256_text(spec.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            return False

    def check_new_run_place(self) -> None:
        """Refuse (one line, nothing touched) to lay a new run out here unless the folder is missing,
        empty (stale temp files aside) or a run; ``--out`` must not name a file."""
        if self.path.exists() and not self.path.is_dir():
            raise UserError(f"{self.path} is a file, not a folder; --out names the run folder")
        if not self.path.is_dir() or self.is_run() or (self.path / CREATING).is_file():
            return
        try:
            entries = [e.name for e in self.path.iterdir()
                       if not (e.name.startswith(".") and e.name.endswith(".tmp")
                               and any(e.name.startswith(f".{n}.") for n in WRITTEN))]
        except OSError as exc:
            raise UserError(f"cannot read the folder {self.path}: {exc.strerror or exc}") from None
        if entries:
            raise UserError(f"{self.path} is not empty and is not a graphvae run folder (no config.json and "
                            f"spec.sha256 matching its spec); nothing was written: choose a new or empty folder "
                            f"for --out")

    def remove_stale_temps(self) -> None:
        """Delete the temp files that a run killed during an atomic write left here."""
        if self.path.is_dir():
            remove_stale_temps(self.path, WRITTEN)

    # -- the files a checkpoint is tied to -----------------------------------------------
    def file_digests(self) -> dict[str, str]:
        """``{name: sha256}`` of the run's tied files (those present), for a checkpoint to record."""
        return {name: sha256_file(self.path / name) for name in TIED_FILES if (self.path / name).is_file()}

    def check_files(self, recorded: dict[str, str] | None, checkpoint) -> None:
        """Refuse a run whose tied files differ from those ``checkpoint`` recorded (``recorded``;
        None for a checkpoint older than format 3, whose files are only checked to parse)."""
        if recorded is None:
            if self.labelled_path.is_file():
                self._read_json(self.labelled_path)
            return
        for name, digest in recorded.items():
            if name not in TIED_FILES:
                raise UserError(f"{checkpoint}: not a valid graphvae checkpoint: it records an unknown file "
                                f"{name[:60]!r}")
            path = self.path / name
            if not path.is_file():
                raise UserError(f"{path} is missing; {checkpoint} was trained with it")
            if sha256_file(path) != digest:
                raise UserError(f"{path} was changed after training (its sha256 differs from the one "
                                f"{checkpoint} records); restore it, or train a new run")

    @staticmethod
    def _read_json(path: Path):
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError as exc:
            raise UserError(f"{path}: not UTF-8 text (byte {exc.start})") from None
        except RecursionError:
            raise UserError(f"{path}: not a valid file of graphvae's (JSON nested too deeply)") from None
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
        except OSError as exc:
            raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None

    # -- writing -----------------------------------------------------------------------
    def create(self, spec_text: str, spec_suffix: str, config: dict) -> None:
        """Lay out a new run: the spec text and its hash, and the config (graphvae.data writes labelled.json)."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot create the run folder {self.path}: {exc.strerror or exc}") from None
        atomic_write_text(self.path / CREATING, "graphvae is laying out a run here\n")
        suffix = ".yaml" if spec_suffix in (".yaml", ".yml") else ".gvae"
        for name in SPEC_NAMES:  # a fresh run replaces an earlier spec of the other language
            if name != f"spec{suffix}" and (self.path / name).exists():
                (self.path / name).unlink()
        atomic_write_text(self.path / f"spec{suffix}", spec_text)
        atomic_write_text(self.sha_path, sha256_text(spec_text) + "\n")
        self.write_config(config)
        if self.metrics_path.exists():
            self.metrics_path.unlink()
        (self.path / CREATING).unlink()

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
        try:
            return path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise UserError(f"{path}: not UTF-8 text (byte {exc.start}); not a spec graphvae wrote") from None
        except OSError as exc:
            raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None

    def read_config(self) -> dict:
        if not self.config_path.is_file():
            raise UserError(f"{self.path}: run folder has no config.json")
        config = self._read_json(self.config_path)
        if not isinstance(config, dict):
            raise UserError(f"{self.config_path}: not a JSON object of settings")
        return config

    def read_metrics(self) -> list[dict]:
        """Every row of metrics.jsonl (``[]`` when there is none yet)."""
        if not self.metrics_path.exists():
            return []
        rows = []
        try:
            text = self.metrics_path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise UserError(f"{self.metrics_path}: not UTF-8 text (byte {exc.start})") from None
        except OSError as exc:
            raise UserError(f"cannot read {self.metrics_path}: {exc.strerror or exc}") from None
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except RecursionError:
                raise UserError(f"{self.metrics_path}:{n}: not a metrics row (JSON nested too deeply)") from None
            except json.JSONDecodeError:
                raise UserError(f"{self.metrics_path}:{n}: not valid JSON") from None
            epoch = row.get("epoch", 0) if isinstance(row, dict) else None
            if not isinstance(epoch, int) or isinstance(epoch, bool):
                raise UserError(f"{self.metrics_path}:{n}: not a metrics row (a JSON object with a whole-number "
                                "epoch)")
            rows.append(row)
        return rows

    def check_spec_hash(self) -> None:
        """Refuse a run whose spec text was edited after training (its hash no longer matches)."""
        text = self.read_spec_text()
        if self.sha_path.exists():
            try:
                want = self.sha_path.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                raise UserError(f"cannot read {self.sha_path}: {getattr(exc, 'strerror', None) or exc}") from None
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
