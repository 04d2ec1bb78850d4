"""The IDX file format (MNIST, Fashion-MNIST, KMNIST) and where the files are looked up.

Reading is plain numpy + gzip.  Every problem with a file (missing, truncated, corrupt, not IDX,
wrong rank or type) is a :class:`~graphvae.errors.UserError` naming the file and the fault.
Lookup: ``data_dir`` (``--data-dir``), then ``$GRAPHVAE_DATA``, then ``~/.cache/graphvae/data``;
in each folder ``F`` the places ``F``, ``F/<name>`` and ``F/<TorchvisionName>/raw`` are tried and
the first holding all four files wins.  Names: ``train-images-idx3-ubyte`` (or
``train-images.idx3-ubyte``), with or without ``.gz`` (told apart by content), optionally
prefixed ``<name>-``.
"""

from __future__ import annotations

import gzip
import io
import math
import os
import zlib
from pathlib import Path

import numpy as np

from graphvae.atomic import atomic_write_bytes
from graphvae.errors import UserError

IMAGE_DATASETS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST", "kmnist": "KMNIST"}  # -> torchvision folder
IMAGE_CLASSES = 10  # all three IDX sets have ten classes
DATA_ENV = "GRAPHVAE_DATA"
DEFAULT_DATA_DIR = "~/.cache/graphvae/data"
IDX_FILES = {  # role -> standard file name without ".gz"
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

_IDX_TYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _memory_limit() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (AttributeError, ValueError, OSError):
        return 16 * 2**30


MAX_DATA_BYTES = _memory_limit()  # the values one data file may declare: half of this machine's memory
MAX_EXPANSION = 500  # a compressed array may expand this many times (real data: under 50) ...
EXPANSION_FLOOR = 64 * 2**20  # ... or to this many bytes, whichever is more


def size_text(n: int) -> str:
    """``2.5 GB``, ``3.1 MB``, ``512 bytes``."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} bytes"


def check_data_size(what: str, declared: int, stored: int | None = None) -> None:
    """Refuse ``declared`` bytes of values before they are allocated: more than MAX_DATA_BYTES, or
    (``stored``: the compressed bytes they come from) more than MAX_EXPANSION times ``stored`` and
    over EXPANSION_FLOOR, the signature of a compression bomb."""
    if declared > MAX_DATA_BYTES:
        raise UserError(f"{what}: {size_text(declared)} of values, more than half of this machine's memory "
                        f"({size_text(MAX_DATA_BYTES)})")
    if stored is not None and declared > max(EXPANSION_FLOOR, MAX_EXPANSION * max(stored, 1)):
        raise UserError(f"{what}: {size_text(stored)} compressed expand to {size_text(declared)}, more than "
                        f"{MAX_EXPANSION} times: nearly all one value, or a compression bomb; refused")


def _read(stream, n: int) -> bytes:
    """Up to ``n`` bytes of ``stream`` (fewer only at its end)."""
    parts, left = [], n
    while left > 0:
        part = stream.read(min(left, 2**26))
        if not part:
            break
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def _read_stream(stream, name: str, stored: int | None = None) -> np.ndarray:
    """Decode an (uncompressed) IDX stream: magic 00 00 TYPE RANK, RANK big-endian uint32 dims, then
    the values big-endian; the dims are checked (:func:`check_data_size`) before the values are read."""
    magic = _read(stream, 4)
    if len(magic) < 4:
        raise UserError(f"{name}: not an IDX file: {len(magic)} bytes, shorter than the 4-byte magic number")
    if magic[0] != 0 or magic[1] != 0 or magic[2] not in _IDX_TYPES or magic[3] == 0:
        raise UserError(f"{name}: not an IDX file: magic number 0x{magic.hex()} "
                        "(expected 0x0000, a type code 08/09/0b/0c/0d/0e and a rank, e.g. 0x00000803)")
    rank, dtype = magic[3], np.dtype(_IDX_TYPES[magic[2]])
    header = 4 + 4 * rank
    raw_dims = _read(stream, 4 * rank)
    if len(raw_dims) < 4 * rank:
        raise UserError(f"{name}: truncated: the header of a rank-{rank} IDX file needs {header} bytes, "
                        f"the file has {4 + len(raw_dims)}")
    dims = tuple(int(d) for d in np.frombuffer(raw_dims, ">u4", rank))
    count = math.prod(dims)
    expected = header + count * dtype.itemsize
    shape = "x".join(map(str, dims))
    check_data_size(f"{name} (dims {shape})", count * dtype.itemsize, stored)
    values = _read(stream, count * dtype.itemsize)
    if len(values) < count * dtype.itemsize:
        raise UserError(f"{name}: truncated: dims {shape} need {expected} bytes, the file has {header + len(values)}")
    extra = len(_read(stream, 2**20))
    if extra:
        more = "" if extra < 2**20 else " or more"
        raise UserError(f"{name}: {extra}{more} unexpected bytes after the {shape} values")
    return np.frombuffer(values, dtype, count).reshape(dims).astype(dtype.newbyteorder("="))


def parse_idx(raw: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode the bytes of an (uncompressed) IDX file: magic 00 00 TYPE RANK, RANK big-endian
    uint32 dims, then the values big-endian."""
    return _read_stream(io.BytesIO(raw), name)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file, gzip-compressed or not (told apart by content), as a stream: a header that
    declares more than :func:`check_data_size` allows is refused before anything is allocated."""
    try:
        with open(path, "rb") as f:
            stored = os.fstat(f.fileno()).st_size
            if f.read(2) != b"\x1f\x8b":
                f.seek(0)
                return _read_stream(f, str(path))
            f.seek(0)
            try:
                with gzip.GzipFile(fileobj=f) as stream:
                    return _read_stream(stream, str(path), stored)
            except (OSError, EOFError, zlib.error) as e:
                raise UserError(f"{path}: corrupt or truncated gzip data ({e})") from None
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror or e}") from None


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write ``array`` as an IDX file (gzip-compressed when the name ends in .gz), atomically."""
    array = np.asarray(array)
    code = {np.dtype(t).newbyteorder("="): c for c, t in _IDX_TYPES.items()}.get(array.dtype)
    if code is None or array.ndim == 0:
        raise ValueError(f"IDX cannot hold a {array.ndim}-d {array.dtype} array")
    raw = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    raw += array.astype(np.dtype(_IDX_TYPES[code])).tobytes()
    atomic_write_bytes(path, gzip.compress(raw) if str(path).endswith(".gz") else raw)


def data_dirs(data_dir: str | None = None) -> list[tuple[Path, str]]:
    """The folders searched for IDX files, in order, each with where it came from."""
    dirs = [(Path(data_dir).expanduser(), "--data-dir")] if data_dir else []
    if os.environ.get(DATA_ENV):
        dirs.append((Path(os.environ[DATA_ENV]).expanduser(), f"${DATA_ENV}"))
    dirs.append((Path(DEFAULT_DATA_DIR).expanduser(), "default"))
    return dirs


def _file_names(stem: str, name: str) -> list[str]:
    stems = [stem, stem.replace("-idx", ".idx")]
    stems += [f"{name}-{s}" for s in stems]
    return [s + ext for s in stems for ext in (".gz", "")]


def find_idx_files(name: str, data_dir: str | None = None) -> dict[str, Path]:
    """Paths of the four IDX files of ``name`` (keys of IDX_FILES) from the first place holding all."""
    looked: list[str] = []
    partial: list[str] = []
    for base, origin in data_dirs(data_dir):
        for folder in (base, base / name, base / IMAGE_DATASETS[name] / "raw"):
            where = str(folder)
            if folder == base:
                where += f" ({origin}{'' if base.is_dir() else ', no such folder'})"
            if where in looked:
                continue
            looked.append(where)
            found = {}
            for role, stem in IDX_FILES.items():
                hit = next((folder / f for f in _file_names(stem, name) if (folder / f).is_file()), None)
                if hit is not None:
                    found[role] = hit
            if len(found) == len(IDX_FILES):
                return found
            if found:
                missing = [IDX_FILES[r] for r in IDX_FILES if r not in found]
                partial.append(f"{folder} lacks {', '.join(missing)}")
    wanted = ", ".join(f"{s}.gz" for s in IDX_FILES.values())
    extra = f" ({'; '.join(partial)})" if partial else ""
    raise UserError(f"{name} data not found; looked in {', '.join(looked)}{extra}; put {wanted} "
                    f"in one of them, or pass --data-dir FOLDER or set ${DATA_ENV}")


def _class_labels(labels: np.ndarray, path: Path) -> np.ndarray:
    """IDX labels as int64 class indices, each a whole number in 0..IMAGE_CLASSES-1 (an IDX label
    file gives every image's class: none is missing)."""
    bad = ~np.isfinite(labels) if labels.dtype.kind == "f" else np.zeros(labels.shape, bool)
    if bad.any():
        raise UserError(f"{path}: {int(bad.sum())} labels are NaN or infinite; an IDX label file gives every image's "
                        f"class 0..{IMAGE_CLASSES - 1}")
    fractional = labels != np.round(labels) if labels.dtype.kind == "f" else bad
    if fractional.any():
        raise UserError(f"{path}: {int(fractional.sum())} labels are not whole numbers (e.g. "
                        f"{labels[fractional][0]:g}); labels are class indices 0..{IMAGE_CLASSES - 1}")
    outside = (labels < 0) | (labels >= IMAGE_CLASSES)
    if outside.any():
        raise UserError(f"{path}: label {labels[outside][0]:g} is outside 0..{IMAGE_CLASSES - 1} ({int(outside.sum())} "
                        "labels are); an IDX label file gives every image's class, none is missing")
    return labels.astype(np.int64)


def read_idx_dataset(name: str, data_dir: str | None = None):
    """``((train_images, train_labels), (test_images, test_labels), paths)`` of an IDX dataset:
    images float32 (N, H, W) in [0, 1], labels int64 (N,)."""
    files = find_idx_files(name, data_dir)
    arrays = {role: read_idx(path) for role, path in files.items()}
    splits = []
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        where = files[f"{split}_images"]
        if images.ndim != 3 or images.dtype != np.uint8:
            raise UserError(f"{where}: expected unsigned-byte images of rank 3, got a {images.ndim}-d "
                            f"{images.dtype} array of shape {images.shape}")
        if labels.ndim != 1 or len(labels) != len(images):
            raise UserError(f"{files[f'{split}_labels']}: expected {len(images)} labels (one per image "
                            f"in {where.name}), got an array of shape {labels.shape}")
        if not len(images):
            raise UserError(f"{where}: no images (dims 0x{images.shape[1]}x{images.shape[2]})")
        splits.append((images.astype(np.float32) / 255.0, _class_labels(labels, files[f"{split}_labels"])))
    return splits[0], splits[1], tuple(str(p) for p in files.values())
