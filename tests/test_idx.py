"""IDX reading/writing, corrupt files, file lookup order and the real MNIST files."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest

from graphvae.data.idx import (DATA_ENV, IDX_FILES, data_dirs, find_idx_files, parse_idx, read_idx, read_idx_dataset,
                               write_idx)
from graphvae.errors import UserError

MNIST_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


def fake_idx_set(folder: Path, n_train=12, n_test=6, side=4, prefix="", suffix=".gz", dotted=False):
    """Write a tiny, valid four-file IDX dataset into folder; returns the training labels."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    labels = {"train": np.arange(n_train) % 10, "test": np.arange(n_test) % 10}
    for role, stem in IDX_FILES.items():
        split, kind = role.split("_")
        n = n_train if split == "train" else n_test
        array = (rng.integers(0, 256, (n, side, side)) if kind == "images" else labels[split]).astype(np.uint8)
        name = stem.replace("-idx", ".idx") if dotted else stem
        write_idx(folder / f"{prefix}{name}{suffix}", array)
    return labels["train"]


@pytest.fixture
def no_env(monkeypatch, tmp_path):
    """No $GRAPHVAE_DATA and an empty home, so only what a test sets up is found."""
    monkeypatch.delenv(DATA_ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path


@pytest.mark.parametrize("dtype", ["u1", "i1", "i2", "i4", "f4", "f8"])
@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
def test_round_trip(tmp_path, dtype, name):
    array = (np.arange(2 * 3 * 5) - 7).reshape(2, 3, 5)
    array = (array % 256 if dtype == "u1" else array).astype(dtype)
    write_idx(tmp_path / name, array)
    back = read_idx(tmp_path / name)
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)
    assert os.listdir(tmp_path) == [name]  # nothing left behind by the atomic write


def _valid_bytes() -> bytes:
    return bytes([0, 0, 8, 2]) + np.array([2, 3], ">u4").tobytes() + bytes(range(6))


@pytest.mark.parametrize("content, fragment", [
    (b"", "shorter than the 4-byte magic number"),
    (b"\x00\x00", "shorter than the 4-byte magic number"),
    (b"\x01\x00\x08\x01" + bytes(8), "magic number 0x01000801"),
    (b"\x00\x00\x07\x01" + bytes(8), "magic number 0x00000701"),
    (b"\x00\x00\x08\x00" + bytes(8), "magic number 0x00000800"),
    (bytes([0, 0, 8, 3]) + bytes(6), "header of a rank-3 IDX file needs 16 bytes"),
    (_valid_bytes()[:-2], "truncated: dims 2x3 need 18 bytes, the file has 16"),
    (_valid_bytes() + b"xx", "2 unexpected bytes after the 2x3 values"),
    (gzip.compress(_valid_bytes())[:-10], "corrupt or truncated gzip data"),
    (b"\x1f\x8b" + b"garbage" * 5, "corrupt or truncated gzip data"),
    (gzip.compress(_valid_bytes()[:-1]), "truncated"),
])
def test_corrupt_files_name_the_file_and_fault(tmp_path, content, fragment):
    path = tmp_path / "bad-idx"
    path.write_bytes(content)
    with pytest.raises(UserError) as info:
        read_idx(path)
    message = str(info.value)
    assert str(path) in message and fragment in message and "\n" not in message


def test_parse_valid_bytes():
    np.testing.assert_array_equal(parse_idx(_valid_bytes()), np.arange(6, dtype=np.uint8).reshape(2, 3))


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="cannot read .*nothing.gz"):
        read_idx(tmp_path / "nothing.gz")


@pytest.mark.parametrize("layout, kwargs", [
    ("DIR", {}),
    ("DIR/mnist", {}),
    ("DIR/MNIST/raw", {}),
    ("DIR", {"suffix": ""}),
    ("DIR", {"dotted": True}),
    ("DIR/mnist", {"prefix": "mnist-"}),
    ("ENV", {}),
    ("ENV/mnist", {}),
    ("HOME/.cache/graphvae/data", {}),
    ("HOME/.cache/graphvae/data/mnist", {}),
])
def test_layouts_are_found(no_env, monkeypatch, layout, kwargs):
    roots = {"DIR": no_env / "dir", "ENV": no_env / "env", "HOME": no_env / "home"}
    monkeypatch.setenv(DATA_ENV, str(roots["ENV"]))
    head, _, rest = layout.partition("/")
    folder = roots[head] / rest if rest else roots[head]
    labels = fake_idx_set(folder, **kwargs)
    files = find_idx_files("mnist", str(roots["DIR"]))
    assert set(files) == set(IDX_FILES) and all(p.parent == folder for p in files.values())
    (x_train, y_train), (x_test, _), _ = read_idx_dataset("mnist", str(roots["DIR"]))
    assert x_train.shape == (12, 4, 4) and x_test.shape == (6, 4, 4) and x_train.dtype == np.float32
    assert 0 <= x_train.min() and x_train.max() <= 1
    np.testing.assert_array_equal(y_train, labels)


@pytest.mark.parametrize("present, winner", [
    (("dir", "env", "home"), "dir"),
    (("env", "home"), "env"),
    (("home",), "home"),
])
def test_lookup_order(no_env, monkeypatch, present, winner):
    monkeypatch.setenv(DATA_ENV, str(no_env / "env"))
    folders = {"dir": no_env / "dir", "env": no_env / "env", "home": no_env / "home/.cache/graphvae/data"}
    for key in present:
        fake_idx_set(folders[key])
    assert [origin for _, origin in data_dirs(str(folders["dir"]))] == ["--data-dir", f"${DATA_ENV}", "default"]
    files = find_idx_files("kmnist", str(folders["dir"]))
    assert files["train_images"].parent == folders[winner]


def test_missing_files_message_lists_every_place(no_env, monkeypatch):
    monkeypatch.setenv(DATA_ENV, str(no_env / "env"))
    partial = no_env / "env" / "fashion-mnist"
    fake_idx_set(partial)
    (partial / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(UserError) as info:
        find_idx_files("fashion-mnist", str(no_env / "dir"))
    message = str(info.value)
    for place in [no_env / "dir", no_env / "dir/fashion-mnist", no_env / "env", partial,
                  no_env / "home/.cache/graphvae/data/fashion-mnist", no_env / "dir/FashionMNIST/raw"]:
        assert str(place) in message
    assert f"{partial} lacks t10k-labels-idx1-ubyte" in message
    assert f"{no_env / 'dir'} (--data-dir, no such folder)" in message and f"{no_env / 'env'} (${DATA_ENV})" in message
    assert all(f"{stem}.gz" in message for stem in IDX_FILES.values()) and "--data-dir" in message
    assert "\n" not in message


@pytest.mark.parametrize("break_it, fragment", [
    ("images_rank", "unsigned-byte images of rank 3"),
    ("label_count", "expected 12 labels"),
    ("label_range", "label 10 is outside 0..9"),
])
def test_inconsistent_dataset(no_env, break_it, fragment):
    folder = no_env / "dir"
    fake_idx_set(folder)
    if break_it == "images_rank":
        write_idx(folder / "train-images-idx3-ubyte.gz", np.zeros((12, 16), np.uint8))
    elif break_it == "label_count":
        write_idx(folder / "train-labels-idx1-ubyte.gz", np.zeros(11, np.uint8))
    else:
        write_idx(folder / "train-labels-idx1-ubyte.gz", np.full(12, 10, np.uint8))
    with pytest.raises(UserError, match=fragment):
        read_idx_dataset("mnist", str(folder))


@pytest.mark.skipif(not (MNIST_DIR / "train-labels-idx1-ubyte.gz").is_file(),
                    reason=f"MNIST IDX files not found in {MNIST_DIR}")
def test_real_mnist(no_env):
    (x_train, y_train), (x_test, y_test), paths = read_idx_dataset("mnist", str(MNIST_DIR))
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert np.bincount(y_train).tolist() == MNIST_TRAIN_COUNTS
    assert len(y_test) == 10000 and set(np.unique(y_test)) == set(range(10))
    assert x_train.min() == 0.0 and x_train.max() == 1.0 and len(paths) == 4


# -- bombs: the header's dims are checked before the values are read ------------------------------

def _gzip_bomb(path: Path) -> None:  # ~90 KB on disk: 94 MB of zero pixels
    write_idx(path, np.zeros((120_000, 28, 28), np.uint8))


def _huge_dims(path: Path) -> None:  # 24 bytes claiming 2**31 images of 28x28
    path.write_bytes(gzip.compress(bytes([0, 0, 8, 3]) + np.array([2**31, 28, 28], ">u4").tobytes() + bytes(8)))


def _huge_dims_raw(path: Path) -> None:
    path.write_bytes(bytes([0, 0, 0x0E, 2]) + np.array([2**32 - 1, 2**32 - 1], ">u4").tobytes())


def _trailing_bomb(path: Path) -> None:  # valid values, then 64 MB of zeros after them
    raw = bytes([0, 0, 8, 1]) + np.array([3], ">u4").tobytes() + bytes(3) + bytes(64 * 2**20)
    path.write_bytes(gzip.compress(raw))


@pytest.mark.parametrize("make, fragment", [
    (_gzip_bomb, r"\(dims 120000x28x28\): .* KB compressed expand to 94.1 MB, more than 500 times: nearly all one "
                 "value, or a compression bomb; refused"),
    (_huge_dims, r"\(dims 2147483648x28x28\): 1.68 TB of values, more than half of this machine's memory"),
    (_huge_dims_raw, r"\(dims 4294967295x4294967295\): 1.48e\+08 TB of values, more than half"),
    (_trailing_bomb, r"1048576 or more unexpected bytes after the 3 values"),
])
def test_bombs_are_refused_before_allocating(tmp_path, make, fragment):
    path = tmp_path / "bomb-idx.gz"  # gzip-compressed or not: told apart by content
    make(path)
    assert path.stat().st_size < 200_000
    with pytest.raises(UserError, match=fragment) as info:
        read_idx(path)
    assert str(info.value).startswith(str(path))


# -- labels: whole class indices 0..9, none missing ------------------------------------------------

@pytest.mark.parametrize("labels, fragment", [
    (np.array([0, 1, np.nan] + [1] * 9, np.float32), r"1 labels are NaN or infinite"),
    (np.array([0, 1, np.inf] + [1] * 9, np.float64), r"1 labels are NaN or infinite"),
    (np.array([0, 0.5] + [1] * 10, np.float32), r"1 labels are not whole numbers \(e.g. 0.5\)"),
    (np.array([0, -1] + [1] * 10, np.int8), r"label -1 is outside 0..9 \(1 labels are\); .*none is missing"),
    (np.array([-5, -1] + [1] * 10, np.float64), r"label -5 is outside 0..9 \(2 labels are\)"),
    (np.array([0, 1e20] + [1] * 10, np.float64), r"label 1e\+20 is outside 0..9"),
])
def test_bad_labels_name_the_file(no_env, labels, fragment):
    folder = no_env / "dir"
    fake_idx_set(folder)
    write_idx(folder / "train-labels-idx1-ubyte.gz", labels)
    with pytest.raises(UserError, match=fragment) as info:
        read_idx_dataset("mnist", str(folder))
    assert str(info.value).startswith(str(folder / "train-labels-idx1-ubyte.gz"))


def test_float_labels_that_are_whole_are_read(no_env):
    folder = no_env / "dir"
    expected = fake_idx_set(folder)
    write_idx(folder / "train-labels-idx1-ubyte.gz", expected.astype(np.float32))
    (_, labels), _, _ = read_idx_dataset("mnist", str(folder))
    assert labels.dtype == np.int64 and labels.tolist() == expected.tolist()


def test_no_test_images_is_refused_before_training(no_env):
    folder = no_env / "dir"
    fake_idx_set(folder, n_test=0)
    with pytest.raises(UserError, match=r"t10k-images-idx3-ubyte.gz: no images \(dims 0x4x4\)"):
        read_idx_dataset("mnist", str(folder))
