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


def parse_idx(raw: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode the bytes of an (uncompressed) IDX file: magic 00 00 TYPE RANK, RANK big-endian
    uint32 dims, then the values big-endian."""
    if len(raw) < 4:
        raise UserError(f"{name}: not an IDX file: {len(raw)} bytes, shorter than the 4-byte magic number")
    if raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES or raw[3] == 0:
        raise UserError(f"{name}: not an IDX file: magic number 0x{raw[:4].hex()} "
                        "(expected 0x0000, a type code 08/09/0b/0c/0d/0e and a rank, e.g. 0x00000803)")
    rank, dtype = raw[3], np.dtype(_IDX_TYPES[raw[2]])
    header = 4 + 4 * rank
    if len(raw) < header:
        raise UserError(f"{name}: truncated: the header of a rank-{rank} IDX file needs {header} bytes, "
                        f"the file has {len(raw)}")
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", rank, 4))
    count = math.prod(dims)
    expected = header + count * dtype.itemsize
    shape = "x".join(map(str, dims))
    if len(raw) < expected:
        raise UserError(f"{name}: truncated: dims {shape} need {expected} bytes, the file has {len(raw)}")
    if len(raw) > expected:
        raise UserError(f"{name}: {len(raw) - expected} unexpected bytes after the {shape} values")
    return np.frombuffer(raw, dtype, count, header).reshape(dims).astype(dtype.newbyteorder("="))


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file, gzip-compressed or not (told apart by content)."""
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror or e}") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise UserError(f"{path}: corrupt or truncated gzip data ({e})") from None
    return parse_idx(raw, str(path))


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
        if labels.size and int(labels.max()) >= IMAGE_CLASSES:
            raise UserError(f"{files[f'{split}_labels']}: label {int(labels.max())} is outside "
                            f"0..{IMAGE_CLASSES - 1}")
        splits.append((images.astype(np.float32) / 255.0, labels.astype(np.int64)))
    return splits[0], splits[1], tuple(str(p) for p in files.values())
