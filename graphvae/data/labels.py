"""The labelled subset of a training set: which examples keep their labels (chosen per class,
seeded), its file in the run folder (``labelled.json``), and the arrays with every other label
hidden.  Arrays are dicts ``variable name -> np.ndarray`` with examples first (see
:mod:`graphvae.data`)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from graphvae.atomic import atomic_write_bytes
from graphvae.data.batches import LABELLED_STREAM, check_settings, count_examples, stream_rng
from graphvae.errors import UserError
from graphvae.spec.ir import Spec, Variable

LABELLED_FILE = "labelled.json"


def has_label(labels: np.ndarray) -> np.ndarray:
    """Per example, whether ``labels`` holds its label (not -1, not NaN in any entry)."""
    labels = np.asarray(labels)
    if labels.dtype.kind == "f":
        return ~np.isnan(labels.reshape(len(labels), -1)).any(axis=1)
    return labels.reshape(len(labels), -1)[:, 0] >= 0


def _balanced_quota(n: int, counts: np.ndarray) -> np.ndarray:
    """Split n over classes as evenly as their counts allow; the remainder goes to the lowest classes."""
    quota = np.zeros(len(counts), dtype=np.int64)
    left = n
    while left > 0:
        open_ = np.flatnonzero(quota < counts)
        share, extra = divmod(left, len(open_))
        add = np.full(len(open_), share)
        add[:extra] += 1
        add = np.minimum(add, counts[open_] - quota[open_])
        quota[open_] += add
        left -= int(add.sum())
    return quota


def choose_labelled(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Sorted indices of ``n`` labelled examples (``-1``: all that have a label), balanced per class.

    ``labels``: int class indices (-1 missing) or floats (NaN missing; then a uniform choice)."""
    labels = np.asarray(labels)
    available = np.flatnonzero(has_label(labels))
    if n == -1:
        return available.astype(np.int64)
    check_settings(labels=n)
    if n > len(available):
        raise UserError(f"asked for {n} labelled examples but the training data has only "
                        f"{len(available)} with a label")
    rng = stream_rng(seed, LABELLED_STREAM)
    if labels.dtype.kind == "f":
        return np.sort(rng.choice(available, n, replace=False)).astype(np.int64)
    classes, counts = np.unique(labels[available], return_counts=True)
    quota = _balanced_quota(n, counts)
    chosen = [rng.choice(np.flatnonzero(labels == c), q, replace=False) for c, q in zip(classes, quota)]
    return np.sort(np.concatenate(chosen)).astype(np.int64) if chosen else np.zeros(0, np.int64)


def _labelled_path(run_dir: str | os.PathLike) -> Path:
    path = Path(run_dir)
    return path if path.suffix == ".json" else path / LABELLED_FILE


def save_labelled(run_dir: str | os.PathLike, indices: np.ndarray) -> Path:
    """Write the labelled indices to ``run_dir/labelled.json`` atomically; returns the path."""
    path = _labelled_path(run_dir)
    idx = [int(i) for i in np.asarray(indices).ravel()]
    atomic_write_bytes(path, json.dumps({"count": len(idx), "indices": idx}).encode())
    return path


def load_labelled(run_dir: str | os.PathLike, n_examples: int | None = None) -> np.ndarray:
    """The indices saved by :func:`save_labelled`, checked (and against ``n_examples`` if given)."""
    path = _labelled_path(run_dir)
    try:
        payload = json.loads(path.read_text())
        idx = payload["indices"]
        if not isinstance(idx, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in idx):
            raise ValueError("'indices' is not a list of integers")
        if payload.get("count", len(idx)) != len(idx):
            raise ValueError(f"'count' says {payload['count']} but {len(idx)} indices are listed")
    except FileNotFoundError:
        raise UserError(f"{path} not found: the run folder has no labelled subset") from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"{path} is not a valid labelled-subset file: {e}") from None
    out = np.asarray(idx, dtype=np.int64)
    if len(np.unique(out)) != len(out) or (out < 0).any() or (n_examples is not None and (out >= n_examples).any()):
        raise UserError(f"{path}: indices must be distinct and within 0..{(n_examples or 1) - 1}")
    return np.sort(out)


def mask_unlabelled(arrays: dict[str, np.ndarray], spec: Spec, labelled: np.ndarray) -> dict[str, np.ndarray]:
    """A copy of ``arrays`` whose supervised labels outside ``labelled`` are missing (-1 / NaN)."""
    keep = np.zeros(count_examples(arrays), dtype=bool)
    keep[np.asarray(labelled, dtype=np.int64)] = True
    out = dict(arrays)
    for v in spec.supervised:
        if v.name in out:
            masked = out[v.name].copy()
            masked[~keep] = v.missing
            out[v.name] = masked
    return out


def labelled_counts(arrays: dict[str, np.ndarray], spec: Spec) -> dict[str, int]:
    """Examples with a label, per supervised variable present in ``arrays``."""
    return {v.name: int(has_label(arrays[v.name]).sum()) for v in spec.supervised if v.name in arrays}


def label_variable(spec: Spec) -> Variable | None:
    """The supervised variable that defines classes: the first categorical one, else the first."""
    sup = spec.supervised
    return next((v for v in sup if v.domain == "categorical"), sup[0] if sup else None)
