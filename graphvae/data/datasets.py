"""Reading a dataset and matching its arrays to a spec's variables; everything a training run needs.

See the package docstring (:mod:`graphvae.data`) for the API and the decisions results depend on.
"""


from __future__ import annotations

import math
import os
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from graphvae.data.batches import count_examples, split_validation, take_examples
from graphvae.data.labels import choose_labelled, has_label, label_variable
from graphvae.data import idx
from graphvae.data.idx import IMAGE_CLASSES, IMAGE_DATASETS, read_idx_dataset
from graphvae.errors import UserError
from graphvae.spec import printers
from graphvae.spec.diagnostics import did_you_mean
from graphvae.spec.ir import Spec, Variable
from graphvae.spec.settings import DATASETS  # the names the settings table accepts: digits and IMAGE_DATASETS

DIGITS_TEST_FRACTION = 0.2
DIGITS_SPLIT_SEED = 0
NPZ_TEST_FRACTION = 0.2
NPZ_SPLIT_SEED = 0
CLASS_KEY = "_class"
_SUGGESTED_SPECS = {64: "specs/digits_m2.gvae", 784: "specs/m2.gvae"}


# -- raw datasets ------------------------------------------------------------------------------

@dataclass
class _Images:  # a labelled image set before it meets a spec
    name: str
    train: tuple[np.ndarray, np.ndarray]  # float32 (N, H, W) in [0, 1], int64 (N,)
    test: tuple[np.ndarray, np.ndarray]
    classes: int
    sources: tuple[str, ...] = ()


def _read_digits() -> _Images:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=DIGITS_TEST_FRACTION, stratify=y,
                                              random_state=DIGITS_SPLIT_SEED)
    return _Images("digits", (x_tr, y_tr), (x_te, y_te), 10, ("sklearn.datasets.load_digits",))


# -- matching arrays to spec variables ---------------------------------------------------------

def fit_variable(var: Variable, array: np.ndarray, what: str, hint: str = "") -> np.ndarray:
    """``array`` (examples first) reshaped to ``var``'s value shape, converted and domain-checked.

    ``what`` names the data in messages, e.g. "array 'x' of data.npz".  Supervised variables may
    have missing labels (-1 or NaN); observed ones may not."""
    array = np.asarray(array)
    if array.ndim == 0:
        raise UserError(f"{what} is a scalar; expected one value per example for {printers.declaration(var)}")
    if array.dtype.kind not in "biuf":
        raise UserError(f"{what} holds {array.dtype} values, not numbers; {printers.declaration(var)} needs numbers")
    n, per, target = len(array), math.prod(array.shape[1:]), var.value_shape
    if per != math.prod(target):
        if var.domain == "categorical" and per == var.classes:
            hint = hint or "give class indices (one integer per example), not one-hot rows"
        raise UserError(f"{what} has {per} values per example (shape {tuple(array.shape[1:])}) but "
                        f"{printers.declaration(var)} takes {math.prod(target)}" + (f"; {hint}" if hint else ""))
    array = array.reshape((n, *target))
    missing_ok = var.role == "supervised"
    if var.domain == "categorical":
        return _check_classes(var, array, what, missing_ok)
    array = array.astype(np.float32, copy=False)
    nan = np.isnan(array)
    n_nan = int(nan.sum())
    if n_nan and not missing_ok:
        raise UserError(f"{what}: {n_nan} NaN values in {var.role} variable {var.name} (only missing "
                        "labels of supervised variables may be NaN)")
    if n_nan == array.size:
        return array
    lo, hi = float(np.nanmin(array)), float(np.nanmax(array))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise UserError(f"{what}: infinite values for {printers.declaration(var)}")
    bounds = {"binary": (0.0, 1.0, "lie in [0, 1]"), "unit": (0.0, 1.0, "lie in [0, 1]")}
    if var.domain in bounds and (lo < 0 or hi > 1):
        raise UserError(f"{what}: values range over [{lo:g}, {hi:g}] but {printers.declaration(var)} needs them to "
                        f"lie in [0, 1]; rescale the data (e.g. divide grey levels by 255)")
    if var.domain == "positive" and lo <= 0:
        raise UserError(f"{what}: smallest value {lo:g} but {printers.declaration(var)} needs values > 0")
    if var.domain == "simplex":
        rows = array.reshape(-1, array.shape[-1]) if array.ndim > 1 else array.reshape(-1, 1)
        rows = rows[~np.isnan(rows).any(axis=1)]
        bad = (rows < 0).any(axis=1) | (np.abs(rows.sum(axis=1) - 1) > 1e-4)
        if bad.any():
            raise UserError(f"{what}: {int(bad.sum())} rows are not probability vectors (non-negative, "
                            f"summing to 1) as {printers.declaration(var)} needs")
    return array


def _check_classes(var: Variable, array: np.ndarray, what: str, missing_ok: bool) -> np.ndarray:
    k = var.classes or 0
    if array.dtype.kind == "f":
        nan = np.isnan(array)
        if nan.any() and not missing_ok:
            raise UserError(f"{what}: {int(nan.sum())} NaN values in {var.role} variable {var.name}")
        whole = np.where(nan, -1, array)
        if not np.all(np.isfinite(whole)) or not np.all(whole == np.round(whole)):
            raise UserError(f"{what}: {printers.declaration(var)} needs integer class indices; the data has "
                            "fractional values")
        array = whole
    low = -1 if missing_ok else 0
    bad = (array < low) | (array >= k)  # before the cast to int64, which would wrap 1e20 round
    if bad.any():
        allowed = f"0..{k - 1}" + (" or -1 for a missing label" if missing_ok else "")
        raise UserError(f"{what}: {int(bad.sum())} values outside {allowed} for {printers.declaration(var)} "
                        f"(e.g. {array[bad][0]:g})")
    return array.astype(np.int64)


def infer_image_shape(shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """A picture shape for a value shape: (H, W), (C, H, W) with C in 1/3, or a square side."""
    if len(shape) == 2 or (len(shape) == 3 and shape[0] in (1, 3)):
        return tuple(shape)
    side = math.isqrt(math.prod(shape)) if shape else 0
    return (side, side) if side > 1 and side * side == math.prod(shape) else None


@dataclass
class Dataset:
    """Training and test arrays keyed by spec variable name (see the module docstring)."""

    name: str
    train: dict[str, np.ndarray]
    test: dict[str, np.ndarray]
    classes: int | None = None
    image_shape: tuple[int, ...] | None = None
    observed: tuple[str, ...] = ()
    label_var: str | None = None
    sources: tuple[str, ...] = field(default=())

    @property
    def n_train(self) -> int:
        return count_examples(self.train)

    @property
    def n_test(self) -> int:
        return count_examples(self.test)


def _match_images(raw: _Images, spec: Spec) -> Dataset:
    observed, supervised = spec.observed, spec.supervised
    side = "x".join(map(str, raw.train[0].shape[1:]))
    if len(observed) != 1:
        names = ", ".join(v.name for v in observed) or "none"
        raise UserError(f"{raw.name} supplies one observed array (images {side}) but the spec has "
                        f"{len(observed)} observed variables ({names}); use an .npz file with one "
                        "array per variable")
    var = observed[0]
    per = math.prod(raw.train[0].shape[1:])
    hint = ""
    if var.size != per:
        other = _SUGGESTED_SPECS.get(per)
        hint = (f"declare {var.name} : observed {var.domain}[{per}]"
                + (f" (as {other} does)" if other else ""))
    what = f"{raw.name} images ({side})"
    train = {var.name: fit_variable(var, raw.train[0], what, hint)}
    test = {var.name: fit_variable(var, raw.test[0], what, hint)}
    label_var = None
    if supervised:
        cats = [v for v in supervised if v.domain == "categorical"]
        if len(supervised) > 1 or not cats:
            raise UserError(f"{raw.name} supplies one class label per image ({raw.classes} classes) but the "
                            f"spec's supervised variables are {', '.join(printers.declaration(v) for v in supervised)}; "
                            f"declare a single supervised categorical[{raw.classes}]")
        label = cats[0]
        if label.classes != raw.classes:
            raise UserError(f"{raw.name} has {raw.classes} classes but the spec declares "
                            f"{printers.declaration(label)}; declare {label.name} : supervised "
                            f"categorical[{raw.classes}]")
        label_var = label.name
    key = label_var or CLASS_KEY
    train[key], test[key] = raw.train[1], raw.test[1]
    return Dataset(raw.name, train, test, raw.classes, tuple(raw.train[0].shape[1:]), (var.name,),
                   label_var, raw.sources)


def _npy_header(fp, what: str) -> tuple[tuple[int, ...], np.dtype, int]:
    """``(shape, dtype, header bytes)`` from the start of a .npy stream."""
    version = np.lib.format.read_magic(fp)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(fp)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(fp)
    else:
        raise ValueError(f"{what}: .npy format version {version[0]}.{version[1]} is not supported (1.0 and 2.0 are)")
    return tuple(shape), dtype, fp.tell()


def read_npz(p: Path, path: str, names: list[str]) -> tuple[list[str], dict[str, np.ndarray]]:
    """``(every array's name, the arrays)`` of an .npz file: of the arrays ``names`` (those present),
    each checked before it is allocated: the shape its header declares against the bytes its zip
    member holds, and :func:`idx.check_data_size`."""
    try:
        with open(p, "rb") as f:
            if f.read(6) == b"\x93NUMPY":
                raise ValueError("it holds a single array, not named arrays")
        with zipfile.ZipFile(p) as zf:
            members = {(i.filename[:-4] if i.filename.endswith(".npy") else i.filename): i for i in zf.infolist()}
            arrays: dict[str, np.ndarray] = {}
            declared = 0
            for name in (n for n in names if n in members):
                info, what = members[name], f"array '{name}' of {path}"
                with zf.open(info) as fp:
                    shape, dtype, header = _npy_header(fp, what)
                size = math.prod(shape) * dtype.itemsize
                if not dtype.hasobject and header + size > info.file_size:
                    raise UserError(f"{what}: its header declares shape {shape} ({idx.size_text(size)}) but the file "
                                    f"holds {idx.size_text(max(0, info.file_size - header))} of values")
                declared += size
                idx.check_data_size(what, size, info.compress_size)
                idx.check_data_size(f"{path} (arrays {', '.join([*arrays, name])})", declared)
                with zf.open(info) as fp:
                    arrays[name] = np.lib.format.read_array(fp, allow_pickle=False)
            return list(members), arrays
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError) as e:
        # NotImplementedError: a zip version or compression zipfile lacks; RuntimeError: an encrypted member
        raise UserError(f"cannot read {path} as an .npz file: {e or type(e).__name__}") from None


def _split_plates(spec: Spec, wanted, arrays: dict[str, np.ndarray], path: str) -> None:
    """An array named after a plate variable, of shape (N, K, ...), feeds its slots y_0 .. y_{K-1}
    (an array y_0 of its own wins); -1 or NaN marks an absent or unlabelled slot, as elsewhere."""
    for prefix in ("", "test_"):
        for v in wanted:
            if v.slot is None or prefix + v.name in arrays or prefix + v.slot.base not in arrays:
                continue
            whole = arrays[prefix + v.slot.base]
            k = spec.plate(v.slot.plate).size
            if whole.ndim < 2 or whole.shape[1] != k:
                raise UserError(f"array '{prefix}{v.slot.base}' of {path} has shape {tuple(whole.shape)}; for the "
                                f"{k} slots of plate {v.slot.plate} it needs (N, {k}, ...): one column per slot")
            arrays[prefix + v.name] = np.ascontiguousarray(whole[:, v.slot.index])


def _load_npz(path: str, spec: Spec) -> Dataset:
    p = Path(path).expanduser()
    if p.is_dir():
        raise UserError(f"{path} is a folder; give an .npz file, or a dataset name ({', '.join(DATASETS)}) "
                        "with --data-dir FOLDER")
    if not p.is_file():
        tried = f" (looked for {p.absolute()})" if str(p.absolute()) != path else ""
        raise UserError(f"data file {path} not found{tried}")
    wanted = [*spec.observed, *spec.supervised]
    if not spec.observed:
        raise UserError("the spec has no observed variable to feed data to")
    bases = list(dict.fromkeys(v.slot.base for v in wanted if v.slot is not None))
    listed, arrays = read_npz(p, path, [n for v in wanted for n in (v.name, f"test_{v.name}")]
                              + [n for b in bases for n in (b, f"test_{b}")])
    _split_plates(spec, wanted, arrays, path)
    for v in wanted:
        if v.name not in arrays:
            hint = did_you_mean(v.name, listed)
            raise UserError(f"{path} has no array '{v.name}' for {printers.declaration(v)}"
                            + (f"; {hint}" if hint else "") + f" (arrays: {', '.join(listed) or 'none'})")
    has_test = [v.name for v in wanted if f"test_{v.name}" in arrays]
    if has_test and len(has_test) != len(wanted):
        lacking = ", ".join(f"test_{v.name}" for v in wanted if v.name not in has_test)
        raise UserError(f"{path} has test arrays for some variables but lacks {lacking}")
    splits = {"train": {v.name: arrays[v.name] for v in wanted}}
    if has_test:
        splits["test"] = {v.name: arrays[f"test_{v.name}"] for v in wanted}
    for split, group in splits.items():
        for v in wanted:
            if np.ndim(group[v.name]) == 0:
                fit_variable(v, group[v.name], f"array '{'test_' if split == 'test' else ''}{v.name}' of {path}")
        sizes = {k: len(a) for k, a in group.items()}
        if len(set(sizes.values())) > 1:
            listing = ", ".join(f"{'test_' if split == 'test' else ''}{k}: {n}" for k, n in sizes.items())
            raise UserError(f"{path}: arrays disagree on the number of examples ({listing})")
        for v in wanted:
            name = f"test_{v.name}" if split == "test" else v.name
            group[v.name] = fit_variable(v, group[v.name], f"array '{name}' of {path}")
        if not count_examples(group):
            names = ", ".join(f"{'test_' if split == 'test' else ''}{v.name}" for v in wanted)
            raise UserError(f"{path}: arrays {names} hold no examples" + (
                "; give test examples, or leave the test_ arrays out to hold out "
                f"{NPZ_TEST_FRACTION:.0%} of the examples" if split == "test" else ""))
    if not has_test:
        n = count_examples(splits["train"])
        n_test = int(round(n * NPZ_TEST_FRACTION))
        if n_test < 1 or n - n_test < 1:
            least = next(m for m in range(2, 1000) if 1 <= round(m * NPZ_TEST_FRACTION) < m)
            raise UserError(f"{path} has {n} example{'s' if n != 1 else ''}; holding out "
                            f"{NPZ_TEST_FRACTION:.0%} as a test set needs at least {least} (or give test_ arrays)")
        perm = np.random.default_rng(NPZ_SPLIT_SEED).permutation(n)
        splits["train"], splits["test"] = (take_examples(splits["train"], np.sort(perm[n_test:])),
                                           take_examples(splits["train"], np.sort(perm[:n_test])))
    label = label_variable(spec)
    return Dataset(str(path), splits["train"], splits["test"], label.classes if label else None,
                   infer_image_shape(spec.observed[0].value_shape), tuple(v.name for v in spec.observed),
                   label.name if label else None, (str(p),))


def load_dataset(name: str, spec: Spec, data_dir: str | None = None) -> Dataset:
    """Read a dataset and match it to ``spec``'s observed and supervised variables."""
    key = name.lower()
    if key == "digits":
        return _match_images(_read_digits(), spec)
    if key in IMAGE_DATASETS:
        train, test, paths = read_idx_dataset(key, data_dir or None)
        return _match_images(_Images(key, train, test, IMAGE_CLASSES, paths), spec)
    if key.endswith(".npz") or os.sep in name or Path(name).expanduser().is_file():
        return _load_npz(name, spec)
    hint = did_you_mean(name, DATASETS)
    raise UserError(f"unknown dataset '{name}'" + (f"; {hint}" if hint else "")
                    + f"; use one of {', '.join(DATASETS)} or a path to an .npz file")


# -- everything a training run needs -----------------------------------------------------------

@dataclass
class TrainingData:
    dataset: Dataset
    train: dict[str, np.ndarray]  # after the validation split, labels intact (batches mask them)
    val: dict[str, np.ndarray]
    test: dict[str, np.ndarray]
    labelled: np.ndarray  # indices into train
    label_var: str | None = None
    supervised: tuple[str, ...] = ()  # every supervised variable, in the spec's order

    @property
    def n_labelled(self) -> int:
        return len(self.labelled)

    def label_counts(self) -> dict[str, int]:
        """Labelled examples the run uses, per supervised variable."""
        names = self.supervised or ((self.label_var,) if self.label_var else ())
        subset = take_examples({n: self.train[n] for n in names}, self.labelled)
        return {n: int(has_label(subset[n]).sum()) for n in names}

    def _per_class(self, name: str) -> str:
        """": 10 per class" (or "0-1 per class"), counted over all the variable's classes."""
        labels = self.train[name][self.labelled]
        labels = labels[labels >= 0]
        if not len(labels):
            return ""
        counts = np.bincount(labels, minlength=self.dataset.classes or int(labels.max()) + 1)
        lo, hi = int(counts.min()), int(counts.max())
        return f": {lo} per class" if lo == hi else f": {lo}-{hi} per class"

    def summary(self) -> str:
        """One line, e.g. "digits: 1293 train (100 labelled: 10 per class), 144 validation, 360 test";
        with several supervised variables, each one's count: "(205 labelled: y 93: 19-27 per class, s 205)"."""
        counts = self.label_counts()
        categorical = [n for n in counts if self.train[n].dtype.kind in "iu"]
        text = f"{self.n_labelled} labelled"
        if len(counts) > 1:
            text += ": " + ", ".join(f"{n} {c}{self._per_class(n) if n in categorical else ''}"
                                     for n, c in counts.items())
        elif categorical:
            text += self._per_class(categorical[0])
        return (f"{self.dataset.name}: {count_examples(self.train)} train ({text}), "
                f"{count_examples(self.val)} validation, "
                f"{count_examples(self.test)} test")


def prepare_data(spec: Spec, data: str = "digits", data_dir: str | None = None, validation: float = 0.1,
                 labels: int = 100, seed: int = 0, labelled: np.ndarray | None = None) -> TrainingData:
    """Load, split off validation, and choose (or check the given, e.g. resumed) labelled subset."""
    ds = load_dataset(data, spec, data_dir)
    train, val = split_validation(ds.train, validation, seed)
    label = label_variable(spec)
    if labelled is not None:
        labelled = np.sort(np.asarray(labelled, dtype=np.int64))
        if len(labelled) and (labelled.min() < 0 or labelled.max() >= count_examples(train)):
            raise UserError(f"saved labelled indices exceed the {count_examples(train)} training examples; "
                            "the data changed since the run started")
    elif label is None:
        labelled = np.zeros(0, dtype=np.int64)
    else:
        labelled = choose_labelled(train[label.name], labels, seed)
        if labels == -1:  # every label given, of any supervised variable (not only the one classes come from)
            given = np.zeros(count_examples(train), dtype=bool)
            for v in spec.supervised:
                given |= has_label(train[v.name])
            labelled = np.flatnonzero(given).astype(np.int64)
    return TrainingData(ds, train, val, ds.test, labelled, label.name if label else None,
                        tuple(v.name for v in spec.supervised))
