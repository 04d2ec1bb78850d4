"""Array outputs of a trained run: predictions, encodings, reconstructions and samples as numpy
arrays named after the spec's variables, and writing them as ``.npz`` or ``.csv``.

``graphvae predict | encode | reconstruct RUN --data DATA --out FILE`` and ``graphvae sample RUN
--format npz`` are these functions; in Python ``graphvae.predict(run, data)`` etc., or the same
methods of :class:`graphvae.train.runs.Run` (which also take a run folder's path).  ``run`` is a
loaded Run here.

What each gives, one row per example (``N`` first):

- :func:`predict`: for each supervised variable ``y``, ``y`` (the mode of q(y|x) for a discrete one,
  as class indices for a categorical one; the mean for a continuous one), and for a
  ``categorical[K]`` one ``y_prob`` (N, K), its class probabilities;
- :func:`encode`: for each latent and supervised variable ``z`` its posterior mean (or mode) ``z``,
  and q's parameters ``z_<param>`` (``z_loc``, ``z_scale``, ``y_probs``...), each node computed from
  the previous nodes' means (:meth:`CompiledModel.encode` and :meth:`CompiledModel.posterior`);
- :func:`reconstruct`: for each observed variable ``x`` the mean of p(x | the encoded latents);
- :func:`sample`: every variable of ``n`` ancestral draws of p (observed ones as their means).

Data (:func:`input_arrays`): ``None`` is the run's own data set; a name (``digits``, ``mnist``...)
or an ``.npz`` path, whose arrays named after the observed variables are used whole (``split``
None), or the run's ``train | validation | test`` split of it (the default for a name: ``test``); a
dict of arrays or tensors keyed by the observed variables, or one array when there is one.  Labels
in the data are never used: every supervised value is predicted or encoded from the observed
ones.  Binary observed variables given grey levels are binarized as ``eval`` does (a fixed draw).
Each computation is seeded (``seed``, default 0) without touching the global random state, so the
CLI and Python agree.

CSV (:func:`write_arrays`): one column per scalar entry, ``y`` for a value per example, else
``y_0, y_1, ...`` over the flattened entries (``y_prob_0``, ``z_0``...), a header row first.
"""

from __future__ import annotations

import io
import math
import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from graphvae.atomic import atomic_write_bytes
from graphvae.errors import UserError

BATCH = 250
SPLITS = ("train", "validation", "test")
FORMATS = (".npz", ".csv")


# -- runs and data ------------------------------------------------------------------------------
def _is_file_name(data: str) -> bool:
    from graphvae.data import IMAGE_DATASETS

    return data.lower() not in ("digits", *IMAGE_DATASETS)


def input_arrays(run, data=None, split: str | None = None, data_dir: str | None = None) -> dict[str, np.ndarray]:
    """The observed arrays of ``data`` (see the module docstring) fitted to ``run``'s spec, as the model reads them."""
    from graphvae.data import evaluation_arrays, fit_variable, prepare_data

    spec, cfg = run.spec, run.config
    if split is not None and split not in SPLITS:
        raise UserError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    observed = [v for v in spec.observed]
    if isinstance(data, np.ndarray) or hasattr(data, "detach"):  # one array: the only observed variable's
        if len(observed) != 1:
            raise UserError(f"model '{spec.name}' has {len(observed)} observed variables "
                            f"({', '.join(v.name for v in observed)}); give a dict of arrays keyed by them")
        data = {observed[0].name: data}
    if isinstance(data, dict):
        if split is not None:
            raise UserError("a split is chosen from a data set or file, not from arrays given in Python")
        arrays = {}
        for v in observed:
            if v.name not in data:
                raise UserError(f"no array '{v.name}' for the observed variable {v.name} "
                                f"(given: {', '.join(map(str, data)) or 'none'})")
            value = data[v.name]
            if hasattr(value, "detach"):
                value = value.detach().cpu().numpy()
            arrays[v.name] = fit_variable(v, value, f"array '{v.name}'")
        _same_length(arrays, "the arrays given")
    elif data is not None and split is None and _is_file_name(str(data)):
        arrays = _read_file(str(data), spec)
    else:
        name = cfg.data if data is None else str(data)
        prepared = prepare_data(spec, data=name, data_dir=data_dir or cfg.data_dir or None,
                                validation=cfg.validation, labels=cfg.labels, seed=cfg.seed)
        part = {"train": prepared.train, "validation": prepared.val, "test": prepared.test}[split or "test"]
        arrays = {v.name: part[v.name] for v in observed}
        if not _count(arrays):
            raise UserError(f"the {split} split of {name} holds no examples")
    return evaluation_arrays(arrays, spec, cfg.binarize)


def _read_file(path: str, spec) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` file named after ``spec``'s observed variables, every example."""
    from graphvae.data import fit_variable
    from graphvae.data import read_npz  # the size-checked reader training uses
    from graphvae.spec.diagnostics import did_you_mean

    p = Path(path).expanduser()
    if p.is_dir():
        raise UserError(f"{path} is a folder; --data names an .npz file or a data set")
    if not p.is_file():
        raise UserError(f"data file {path} not found ({p.resolve()})")
    listed, found = read_npz(p, path, [v.name for v in spec.observed])
    arrays = {}
    for v in spec.observed:
        if v.name not in found:
            hint = did_you_mean(v.name, listed)
            raise UserError(f"{path} has no array '{v.name}' for the observed variable {v.name}"
                            + (f"; {hint}" if hint else "") + f" (arrays: {', '.join(listed) or 'none'})")
        arrays[v.name] = fit_variable(v, found[v.name], f"array '{v.name}' of {path}")
    _same_length(arrays, path)
    return arrays


def _same_length(arrays: dict, what: str) -> None:
    sizes = {k: len(a) for k, a in arrays.items()}
    if len(set(sizes.values())) > 1:
        raise UserError(f"{what}: arrays disagree on the number of examples "
                        f"({', '.join(f'{k}: {n}' for k, n in sizes.items())})")
    if not any(sizes.values()):
        raise UserError(f"{what}: no examples")


def _count(arrays: dict) -> int:
    return len(next(iter(arrays.values()))) if arrays else 0


@contextmanager
def _seeded(seed: int, device):
    """Run with torch's RNGs seeded by ``seed``, the global random state restored after."""
    import torch

    devices = [device.index or 0] if getattr(device, "type", "cpu") == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def _batches(run, arrays: dict, batch_size: int):
    import torch

    n = _count(arrays)
    dev = run.model.device
    for start in range(0, n, batch_size):
        yield {k: torch.from_numpy(np.ascontiguousarray(a[start:start + batch_size])).to(dev)
               for k, a in arrays.items()}


def _collect(parts: list[dict], what: str) -> dict[str, np.ndarray]:
    return _finite({k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else {}, what)


def _finite(arrays: dict[str, np.ndarray], what: str) -> dict[str, np.ndarray]:
    """``arrays``, or a one-line UserError naming the first that holds a NaN or an infinity."""
    for name, a in arrays.items():
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            bad = int((~np.isfinite(a)).reshape(len(a), -1).any(1).sum()) if a.ndim else 1
            raise UserError(f"{what}: {name} is not finite for {bad} of {len(a)} examples: the model's weights or "
                            "batch-norm statistics are not finite, or its computation overflows")
    return arrays


def _numpy(t) -> np.ndarray:
    return t.detach().cpu().numpy()


# -- the outputs ----------------------------------------------------------------------------------
def predict(run, data=None, split: str | None = None, data_dir: str | None = None, seed: int = 0,
            batch_size: int = BATCH) -> dict[str, np.ndarray]:
    """Every supervised variable's prediction from q, and ``<y>_prob`` for a categorical one."""
    supervised = run.spec.supervised
    if not supervised:
        raise UserError(f"model '{run.spec.name}' has no supervised variable to predict; "
                        "use encode for its latent variables")
    arrays = input_arrays(run, data, split, data_dir)
    parts = []
    with _seeded(seed, run.model.device):
        for batch in _batches(run, arrays, batch_size):
            out = {}
            for v in supervised:
                out[v.name] = _numpy(run.model.predict(batch, v.name))
                if v.domain == "categorical" and v.value_shape == ():
                    out[f"{v.name}_prob"] = _numpy(run.model.predict_probs(batch, v.name))
            parts.append(out)
    return _collect(parts, "predict")


def encode(run, data=None, split: str | None = None, data_dir: str | None = None, seed: int = 0,
           batch_size: int = BATCH) -> dict[str, np.ndarray]:
    """Posterior means (modes) of the latent and supervised variables, and q's parameters ``<z>_<param>``."""
    arrays = input_arrays(run, data, split, data_dir)
    parts = []
    with _seeded(seed, run.model.device):
        for batch in _batches(run, arrays, batch_size):
            out = {k: _numpy(v) for k, v in run.model.encode(batch).items()}
            for name, params in run.model.posterior(batch).items():
                out.update({f"{name}_{p}": _numpy(v) for p, v in params.items()})
            parts.append(out)
    return _collect(parts, "encode")


def reconstruct(run, data=None, split: str | None = None, data_dir: str | None = None, seed: int = 0,
                batch_size: int = BATCH) -> dict[str, np.ndarray]:
    """Means of p(x | the encoded latents) for every observed variable."""
    arrays = input_arrays(run, data, split, data_dir)
    parts = []
    with _seeded(seed, run.model.device):
        for batch in _batches(run, arrays, batch_size):
            parts.append({k: _numpy(v) for k, v in run.model.reconstruct(batch).items()})
    return _collect(parts, "reconstruct")


def sample(run, n: int = 16, given: dict | None = None, seed: int = 0) -> dict[str, np.ndarray]:
    """``n`` ancestral draws of p: every variable, latent and supervised ones clamped to ``given``."""
    with _seeded(seed, run.model.device):
        out = run.model.sample(n, given=given)
    return _finite({k: _numpy(v) for k, v in out.items()}, "sample")


def parse_given(spec, items) -> dict:
    """``--given y=3 z=0.5,1`` as ``{"y": 3, "z": [0.5, 1.0]}``: integers for a categorical variable,
    numbers otherwise (one for every entry, or one value per entry), checked against the spec."""
    out = {}
    for item in items or ():
        name, eq, text = item.partition("=")
        name = name.strip()
        if not eq or not name or not text.strip():
            raise UserError(f"--given takes NAME=VALUE (e.g. y=3), got {item!r}")
        v = spec.var_map.get(name)
        if v is None or v.role == "observed":
            allowed = ", ".join(x.name for x in spec.variables if x.role != "observed") or "none"
            raise UserError(f"--given {item}: '{name}' is not a latent or supervised variable (those are: {allowed})")
        try:
            values = [int(t) if v.domain == "categorical" else float(t) for t in text.split(",")]
        except ValueError:
            kind = "a class index (an integer)" if v.domain == "categorical" else "numbers"
            raise UserError(f"--given {item}: {name} takes {kind}") from None
        if v.domain == "categorical" and any(not 0 <= c < v.classes for c in values):
            raise UserError(f"--given {item}: {name} is categorical[{v.classes}], so its classes are "
                            f"0..{v.classes - 1}")
        if not all(math.isfinite(x) for x in values):
            raise UserError(f"--given {item}: values must be finite")
        out[name] = values[0] if len(values) == 1 else values
    return out


# -- writing --------------------------------------------------------------------------------------
def output_format(path: str | os.PathLike) -> str:
    """``.npz`` or ``.csv`` from ``path``'s suffix, or a one-line UserError."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise UserError(f"'{path}': unknown output format '{suffix or '(no suffix)'}'; name a "
                        f"{' or '.join(FORMATS)} file")
    return suffix


def csv_columns(arrays: dict[str, np.ndarray]) -> list[tuple[str, np.ndarray]]:
    """``[(column name, values)]``: one column per scalar entry of each array (see the module docstring)."""
    columns = []
    for name, a in arrays.items():
        flat = a.reshape(len(a), -1)
        if a.ndim == 1:
            columns.append((name, flat[:, 0]))
        else:
            columns += [(f"{name}_{i}", flat[:, i]) for i in range(flat.shape[1])]
    return columns


def _csv_text(arrays: dict[str, np.ndarray]) -> str:
    columns = csv_columns(arrays)
    n = len(columns[0][1]) if columns else 0
    texts = []
    for _, values in columns:
        if values.dtype.kind in "biu":
            texts.append([str(int(x)) for x in values])
        else:
            texts.append([repr(float(x)) for x in values.astype(np.float64)])
    lines = [",".join(name for name, _ in columns)]
    lines += [",".join(col[i] for col in texts) for i in range(n)]
    return "\n".join(lines) + "\n"


def write_arrays(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> Path:
    """Write ``arrays`` to ``path`` as ``.npz`` or ``.csv`` (by its suffix), atomically; returns the path."""
    fmt = output_format(path)
    if fmt == ".npz":
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        data = buffer.getvalue()
    else:
        data = _csv_text(arrays).encode("utf-8")
    atomic_write_bytes(path, data)
    return Path(path)
