"""Loading digits, IDX sets and .npz files, matching them to a spec, and prepare_data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from graphvae.data import (CLASS_KEY, DATA_ENV, IDX_FILES, fit_variable, infer_image_shape, load_dataset, prepare_data,
                           write_idx)
from graphvae.errors import UserError
from graphvae.spec.ir import Spec, Variable

MNIST_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def make_spec(*declared: str) -> Spec:
    """make_spec("x observed binary 64", "y supervised categorical 10") -> a Spec (plus a latent z)."""
    variables = [Variable("z", "latent", "real", (2,))]
    for text in declared:
        name, role, domain, *dims = text.split()
        variables.append(Variable(name, role, domain, tuple(int(d) for d in dims)))
    return Spec("t", variables=tuple(variables))


M2_DIGITS = make_spec("x observed binary 64", "y supervised categorical 10")


def fake_idx(folder: Path, side=28, n_train=30, n_test=10):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for role, stem in IDX_FILES.items():
        n = n_train if role.startswith("train") else n_test
        array = rng.integers(0, 256, (n, side, side)) if role.endswith("images") else np.arange(n) % 10
        write_idx(folder / f"{stem}.gz", array.astype(np.uint8))
    return folder


# -- digits and IDX sets -----------------------------------------------------------------------

@pytest.mark.parametrize("declared, shape", [
    (("x observed binary 64", "y supervised categorical 10"), (64,)),
    (("x observed unit 8 8", "y supervised categorical 10"), (8, 8)),
    (("x observed real 1 8 8",), (1, 8, 8)),
])
def test_digits(declared, shape):
    ds = load_dataset("digits", make_spec(*declared))
    assert ds.n_train == 1437 and ds.n_test == 360 and ds.classes == 10 and ds.image_shape == (8, 8)
    assert ds.train["x"].shape == (1437, *shape) and ds.train["x"].dtype == np.float32
    assert 0 <= ds.train["x"].min() and ds.train["x"].max() == 1.0
    label = "y" if len(declared) > 1 else CLASS_KEY
    assert ds.label_var == (None if label == CLASS_KEY else "y") and ds.observed == ("x",)
    assert np.bincount(ds.test[label]).min() >= 35  # a stratified split keeps every class in the test set
    again = load_dataset("digits", make_spec(*declared))
    np.testing.assert_array_equal(again.test["x"], ds.test["x"])  # the split does not depend on a run seed


@pytest.mark.parametrize("declared, shape", [
    (("x observed binary 784", "y supervised categorical 10"), (784,)),
    (("x observed unit 1 28 28",), (1, 28, 28)),
])
def test_idx_dataset_through_data_dir(tmp_path, monkeypatch, declared, shape):
    monkeypatch.delenv(DATA_ENV, raising=False)
    ds = load_dataset("fashion-mnist", make_spec(*declared), str(fake_idx(tmp_path / "fashion-mnist")))
    assert ds.train["x"].shape == (30, *shape) and ds.test["x"].shape == (10, *shape)
    assert ds.image_shape == (28, 28) and ds.classes == 10


@pytest.mark.parametrize("name, declared, fragment", [
    ("digits", ("x observed binary 784", "y supervised categorical 10"),
     r"64 values per example \(shape \(8, 8\)\) but x : observed binary\[784\] takes 784; "
     r"declare x : observed binary\[64\] \(as specs/digits_m2.gvae does\)"),
    ("digits", ("x observed binary 64", "w observed binary 64"), "2 observed variables"),
    ("digits", ("y supervised categorical 10",), "0 observed variables"),
    ("digits", ("x observed binary 64", "y supervised categorical 5"), r"10 classes .*categorical\[10\]"),
    ("digits", ("x observed binary 64", "y supervised real 1"), "single supervised categorical"),
    ("digits", ("x observed binary 64", "y supervised categorical 10", "c supervised categorical 10"),
     "single supervised categorical"),
    ("digits", ("x observed categorical 64 16",), "integer class indices"),
    ("digits", ("x observed positive 64",), "needs values > 0"),
    ("mnistt", ("x observed binary 784",), "unknown dataset 'mnistt'; did you mean 'mnist'"),
    ("nowhere/data.npz", ("x observed binary 784",), "data file nowhere/data.npz not found"),
])
def test_matching_errors(name, declared, fragment):
    with pytest.raises(UserError, match=fragment) as info:
        load_dataset(name, make_spec(*declared))
    assert "\n" not in str(info.value)


def test_folder_given_as_data(tmp_path):
    with pytest.raises(UserError, match="is a folder; give an .npz file, or a dataset name"):
        load_dataset(str(tmp_path), M2_DIGITS)


def test_28x28_into_64_suggests_the_m2_spec(tmp_path):
    with pytest.raises(UserError, match=r"declare x : observed binary\[784\] \(as specs/m2.gvae does\)"):
        load_dataset("mnist", M2_DIGITS, str(fake_idx(tmp_path)))


# -- fit_variable: shapes and domains ----------------------------------------------------------

@pytest.mark.parametrize("declared, array, fragment", [
    ("x observed binary 4", np.full((3, 4), 1.5), r"values range over \[1.5, 1.5\].*lie in \[0, 1\]"),
    ("x observed unit 4", -np.ones((3, 4)), r"lie in \[0, 1\]"),
    ("x observed positive 2", np.zeros((3, 2)), "smallest value 0 .*> 0"),
    ("x observed real 2", np.array([[0, np.inf]] * 3), "infinite values"),
    ("x observed real 2", np.array([[0, np.nan], [np.nan, 1], [0, 1]]), "2 NaN values in observed variable x"),
    ("x observed simplex 3", np.array([[0.5, 0.5, 0.5]] * 2), "2 rows are not probability vectors"),
    ("x observed simplex 3", np.array([[1.5, -0.5, 0]] * 2), "not probability vectors"),
    ("x observed binary 4", np.zeros((3, 5)), r"5 values per example \(shape \(5,\)\) but x : observed binary\[4\]"),
    ("x observed binary 4", np.zeros(3), r"1 values per example"),
    ("x observed binary 4", np.array(1.0), "is a scalar"),
    ("x observed binary 4", np.array([["a"] * 4] * 3), "not numbers"),
    ("y supervised categorical 3", np.array([0, 3, 1]), r"1 values outside 0\.\.2 or -1 for a missing label.*e\.g\. 3"),
    ("y supervised categorical 3", np.array([0, -2, 1]), r"outside 0\.\.2"),
    ("y supervised categorical 3", np.array([0.5, 1, 2]), "integer class indices"),
    ("y supervised categorical 3", np.eye(3), "class indices .*not one-hot"),
    ("y observed categorical 3", np.array([0, -1, 1]), r"outside 0\.\.2 for"),
    ("y supervised positive 1", np.array([1.0, np.nan, -1.0]), "needs values > 0"),
])
def test_fit_variable_errors(declared, array, fragment):
    var = make_spec(declared).variables[1]
    with pytest.raises(UserError, match=fragment):
        fit_variable(var, array, "the data")


@pytest.mark.parametrize("declared, array, expected", [
    ("x observed unit 1 2 2", np.full((2, 4), 0.5), np.full((2, 1, 2, 2), 0.5)),
    ("x observed binary 4", np.ones((2, 2, 2), np.uint8), np.ones((2, 4))),
    ("y supervised categorical 3", np.array([[2.0], [np.nan]]), np.array([2, -1])),
    ("y supervised categorical 3", np.array([2, -1], np.int8), np.array([2, -1])),
    ("y supervised real 1", np.array([0.5, np.nan]), np.array([[0.5], [np.nan]])),
    ("p observed simplex 2", np.array([[0.25, 0.75]]), np.array([[0.25, 0.75]])),
])
def test_fit_variable_converts(declared, array, expected):
    var = make_spec(declared).variables[1]
    out = fit_variable(var, array, "the data")
    assert out.dtype == (np.int64 if var.domain == "categorical" else np.float32)
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("shape, expected", [
    ((784,), (28, 28)), ((28, 28), (28, 28)), ((1, 28, 28), (1, 28, 28)), ((3, 8, 8), (3, 8, 8)), ((10,), None),
    ((), None),
])
def test_infer_image_shape(shape, expected):
    assert infer_image_shape(shape) == expected


# -- .npz files --------------------------------------------------------------------------------

def write_npz(tmp_path, **arrays) -> str:
    path = tmp_path / "data.npz"
    np.savez(path, **arrays)
    return str(path)


def test_npz_with_missing_labels_and_held_out_test(tmp_path):
    x = np.random.default_rng(0).random((40, 4)).astype(np.float32)
    y = np.arange(40) % 4
    y[::3] = -1
    ds = load_dataset(write_npz(tmp_path, x=x, y=y, extra=np.zeros(2)), make_spec("x observed binary 2 2", "y supervised categorical 4"))
    assert ds.n_train == 32 and ds.n_test == 8 and ds.train["x"].shape == (32, 2, 2)
    assert ds.classes == 4 and ds.label_var == "y" and ds.image_shape == (2, 2)
    assert sorted(ds.train["y"].tolist() + ds.test["y"].tolist()) == sorted(y.tolist())


def test_npz_test_arrays_and_nan_labels(tmp_path):
    rng = np.random.default_rng(0)
    y = np.where(np.arange(20) % 2, np.nan, np.arange(20) % 3)
    path = write_npz(tmp_path, x=rng.random((20, 3)), y=y, test_x=rng.random((5, 3)), test_y=np.zeros(5))
    ds = load_dataset(path, make_spec("x observed unit 3", "y supervised categorical 3"))
    assert ds.n_train == 20 and ds.n_test == 5
    assert ds.train["y"].dtype == np.int64 and (ds.train["y"] == -1).sum() == 10


def test_npz_continuous_label(tmp_path):
    t = np.linspace(0.1, 1, 10)
    t[3] = np.nan
    ds = load_dataset(write_npz(tmp_path, x=np.ones((10, 2)), t=t), make_spec("x observed real 2", "t supervised positive"))
    assert ds.classes is None and ds.label_var == "t" and np.isnan(np.concatenate([ds.train["t"], ds.test["t"]])).sum() == 1


@pytest.mark.parametrize("arrays, fragment", [
    ({"images": np.ones((5, 3)), "y": np.zeros(5)}, "has no array 'x' for x : observed unit\\[3\\]"),
    ({"X": np.ones((5, 3)), "y": np.zeros(5)}, "did you mean 'X'"),
    ({"x": np.ones((5, 3))}, "no array 'y' for y : supervised categorical\\[2\\]"),
    ({"x": np.ones((5, 3)), "y": np.zeros(5), "test_x": np.ones((2, 3))}, "lacks test_y"),
    ({"x": np.ones((5, 3)), "y": np.zeros(4)}, r"disagree on the number of examples \(x: 5, y: 4\)"),
    ({"x": np.ones((5, 3)), "y": np.zeros(5), "test_x": np.ones((2, 3)), "test_y": np.zeros(3)}, "test_x: 2, test_y: 3"),
    ({"x": np.full((5, 3), np.nan), "y": np.zeros(5)}, "array 'x' of .*: 15 NaN values in observed variable x"),
    ({"x": np.ones((5, 3)), "y": np.full(5, 2)}, "array 'y' of .*values outside 0..1"),
    ({"x": np.ones((5, 3)), "y": np.zeros(5), "test_x": np.ones((2, 4)), "test_y": np.zeros(2)}, "array 'test_x'.*4 values per example"),
    ({"x": np.ones((1, 3)), "y": np.zeros(1)}, "has 1 example; holding out 20% as a test set needs at least 3"),
    ({"x": np.ones((2, 3)), "y": np.zeros(2)}, "has 2 examples; holding out 20% as a test set needs at least 3"),
    ({"x": np.ones((5, 3)), "y": np.array([0, 1, 1e20, 0, 1])}, r"1 values outside 0..1 or -1 .*\(e.g. 1e\+20\)"),
    ({"x": np.ones((5, 3)), "y": np.array([0, 1, -5, 0, 1])}, r"1 values outside 0..1 or -1 .*\(e.g. -5\)"),
    ({"x": np.ones((5, 3)), "y": np.array([0, 1, 0.5, 0, 1])}, "needs integer class indices"),
    ({"x": np.float32(1), "y": np.zeros(5)}, r"array 'x' of .* is a scalar; expected one value per example"),
    ({"x": np.ones((5, 3)), "y": np.int64(0)}, r"array 'y' of .* is a scalar"),
    ({"x": np.ones((5, 3)), "y": np.zeros(5), "test_x": np.float32(1), "test_y": np.zeros(2)},
     r"array 'test_x' of .* is a scalar"),
    ({"x": np.ones((5, 3)), "y": np.zeros(5), "test_x": np.ones((0, 3)), "test_y": np.zeros(0)},
     "arrays test_x, test_y hold no examples; give test examples, or leave the test_ arrays out"),
    ({"x": np.ones((0, 3)), "y": np.zeros(0)}, "arrays x, y hold no examples$"),
])
def test_npz_errors(tmp_path, arrays, fragment):
    with pytest.raises(UserError, match=fragment):
        load_dataset(write_npz(tmp_path, **arrays), make_spec("x observed unit 3", "y supervised categorical 2"))


def _unsupported_compression(path):
    np.savez(path, x=np.ones(3))
    raw = bytearray(path.read_bytes())
    for signature, offset in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):  # local and central headers
        at = raw.find(signature)
        while at >= 0:
            raw[at + offset:at + offset + 2] = (99).to_bytes(2, "little")
            at = raw.find(signature, at + 4)
    path.write_bytes(bytes(raw))


def test_mutated_data_files_raise_only_user_errors(tmp_path):
    """Seeded byte mutations (flips, cuts, insertions, truncation) of .npz and IDX files."""
    import random

    from graphvae.data import read_idx

    np.savez(tmp_path / "a.npz", x=np.random.default_rng(0).random((10, 3)), y=np.arange(10) % 2,
             test_x=np.ones((4, 3)), test_y=np.zeros(4))
    np.savez_compressed(tmp_path / "b.npz", x=np.random.default_rng(1).random((10, 3)), y=np.arange(10) % 2)
    write_idx(tmp_path / "a-idx.gz", np.arange(80, dtype=np.uint8).reshape(5, 4, 4))
    write_idx(tmp_path / "b-idx", np.arange(80, dtype=np.uint8).reshape(5, 4, 4))
    npz = [(tmp_path / n).read_bytes() for n in ("a.npz", "b.npz")]
    idx = [(tmp_path / n).read_bytes() for n in ("a-idx.gz", "b-idx")]
    rng = random.Random(0)
    spec = make_spec("x observed unit 3", "y supervised categorical 2")

    def mutate(raw: bytes) -> bytes:
        b = bytearray(raw)
        for _ in range(rng.randint(1, 8)):
            i, kind = rng.randrange(len(b)), rng.random()
            if kind < 0.5:
                b[i] = rng.randrange(256)
            elif kind < 0.7:
                del b[i:i + rng.randint(1, 50)]
            elif kind < 0.85:
                b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 20)))
            else:
                del b[i:]
            b = b or bytearray(b"\0")
        return bytes(b)

    for _ in range(400):
        (tmp_path / "m.npz").write_bytes(mutate(rng.choice(npz)))
        (tmp_path / "m-idx").write_bytes(mutate(rng.choice(idx)))
        for load in (lambda: load_dataset(str(tmp_path / "m.npz"), spec), lambda: read_idx(tmp_path / "m-idx")):
            try:
                load()
            except UserError as e:
                assert "\n" not in str(e)


@pytest.mark.parametrize("write, fragment", [
    (lambda p: p.write_bytes(b"not a zip file"), "cannot read .* as an .npz file"),
    (lambda p: np.save(open(p, "wb"), np.ones(3)), "single array"),
    (lambda p: np.savez(p, x=np.array([{"a": 1}] * 3, dtype=object)), "cannot read .* as an .npz file"),
    (_unsupported_compression, "cannot read .* as an .npz file: .*compression method"),
])
def test_unreadable_npz(tmp_path, write, fragment):
    path = tmp_path / "bad.npz"
    write(path)
    with pytest.raises(UserError, match=fragment):
        load_dataset(str(path), make_spec("x observed unit 3"))


# -- data bombs: sizes are checked before anything is allocated -----------------------------------

def _npy_bytes(shape, dtype="<f4", data: bytes = b"") -> bytes:
    import io

    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buffer.getvalue() + data


def _zip(path: Path, **members: bytes) -> str:
    import zipfile

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in members.items():
            zf.writestr(f"{name}.npy", content)
    return str(path)


def lying_header(tmp_path):  # 2 KB: a header claiming a (10**12, 64) float32 array
    return _zip(tmp_path / "lie.npz", x=_npy_bytes((10**12, 64), data=bytes(1024)), y=_npy_bytes((5,), "<i8",
                                                                                                   bytes(40)))


def deflate_bomb(tmp_path):  # ~80 KB on disk, 82 MB of zeros
    path = tmp_path / "bomb.npz"
    np.savez_compressed(path, x=np.zeros((320_000, 64), np.float32), y=np.zeros(320_000, np.int64))
    return str(path)


def big_for_the_machine(tmp_path, monkeypatch):  # honest arrays, more than the memory limit (set low here)
    from graphvae.data import idx

    monkeypatch.setattr(idx, "MAX_DATA_BYTES", 10_000)
    return write_npz(tmp_path, x=np.random.default_rng(0).random((100, 64)), y=np.zeros(100))


def two_arrays_over_the_limit(tmp_path, monkeypatch):  # each array fits the limit, the two together do not
    from graphvae.data import idx

    monkeypatch.setattr(idx, "MAX_DATA_BYTES", 60_000)
    return write_npz(tmp_path, x=np.random.default_rng(0).random((100, 64)), y=np.zeros(100),
                     test_x=np.random.default_rng(1).random((100, 64)), test_y=np.zeros(100))


@pytest.mark.parametrize("make, fragment", [
    (lying_header, r"array 'x' of .*lie.npz: its header declares shape \(1000000000000, 64\) \(256 TB\) but the file "
                   "holds 1.02 KB of values"),
    (deflate_bomb, r"array 'x' of .*bomb.npz: .* KB compressed expand to 81.9 MB, more than 500 times: nearly all one "
                   "value, or a compression bomb"),
    (big_for_the_machine, r"array 'x' of .*: 51.2 KB of values, more than half of this machine's memory "
                          r"\(10 KB\)"),
    (two_arrays_over_the_limit, r"data.npz \(arrays x, test_x\): 102 KB of values, more than half"),
])
def test_data_bombs_are_refused_before_allocating(tmp_path, monkeypatch, make, fragment):
    import resource

    path = make(tmp_path) if make in (lying_header, deflate_bomb) else make(tmp_path, monkeypatch)
    assert Path(path).stat().st_size < 200_000  # small on disk
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(UserError, match=fragment):
        load_dataset(path, make_spec("x observed real 64", "y supervised categorical 2"))
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50_000  # KB: nothing big was allocated


def _idx_with_labels(tmp_path, labels):
    folder = tmp_path / "idx"
    folder.mkdir()
    for role, stem in IDX_FILES.items():
        n = 20 if role.startswith("train") else 5
        array = np.zeros((n, 8, 8), np.uint8) if role.endswith("images") else (np.arange(n) % 10).astype(np.uint8)
        write_idx(folder / f"{stem}.gz", labels if role == "train_labels" else array)
    return folder


CLI_CASES = {
    "lying_header": (lambda t: ["--data", lying_header(t)], "declares shape (1000000000000, 64)"),
    "two_examples": (lambda t: ["--data", write_npz(t, x=np.ones((2, 64)), y=np.zeros(2))],
                     "has 2 examples; holding out 20% as a test set needs at least 3"),
    "label_1e20": (lambda t: ["--data", write_npz(t, x=np.ones((9, 64)), y=np.array([0, 1e20] + [1] * 7))],
                   "(e.g. 1e+20)"),
    "scalar_x": (lambda t: ["--data", write_npz(t, x=np.float32(0.5), y=np.zeros(9))], "array 'x' of "),
    "empty_test_arrays": (lambda t: ["--data", write_npz(t, x=np.ones((9, 64)), y=np.zeros(9), test_x=np.ones((0, 64)),
                                                        test_y=np.zeros(0))], "arrays test_x, test_y hold no examples"),
    "idx_nan_labels": (lambda t: ["--data", "mnist", "--data-dir", str(_idx_with_labels(t, np.array([np.nan] * 20)))],
                       "20 labels are NaN or infinite"),
    "idx_half_labels": (lambda t: ["--data", "mnist", "--data-dir", str(_idx_with_labels(t, np.full(20, 0.5)))],
                        "20 labels are not whole numbers (e.g. 0.5)"),
    "idx_negative_labels": (lambda t: ["--data", "mnist", "--data-dir",
                                       str(_idx_with_labels(t, np.array([-1, -5] + [0] * 18, np.int8)))],
                            "label -1 is outside 0..9 (2 labels are)"),
}


@pytest.mark.parametrize("case", list(CLI_CASES))
def test_bad_data_through_the_cli_is_one_line_before_training(tmp_path, capsys, case):
    from conftest import tiny_m2

    from graphvae.cli import main

    make, fragment = CLI_CASES[case]
    spec = tmp_path / "m2.gvae"
    spec.write_text(tiny_m2() if case.startswith("idx") else tiny_m2().replace("categorical[10]", "categorical[2]"))
    code = main(["train", str(spec), *make(tmp_path), "--out", str(tmp_path / "run"), "--no-progress", "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith("graphvae: error: ") and fragment in err
    assert not (tmp_path / "run").exists()  # refused before a run folder was written


# -- prepare_data ------------------------------------------------------------------------------

@pytest.mark.parametrize("labels, per_class", [(100, [10] * 10), (25, [3] * 5 + [2] * 5), (-1, None)])
def test_prepare_digits(labels, per_class):
    data = prepare_data(M2_DIGITS, "digits", validation=0.1, labels=labels, seed=0)
    assert len(data.train["x"]) + len(data.val["x"]) == 1437 and len(data.val["x"]) == 144
    if per_class is None:
        assert data.n_labelled == len(data.train["x"])
    else:
        assert data.n_labelled == labels
        assert np.bincount(data.train["y"][data.labelled]).tolist() == per_class
    assert f"({data.n_labelled} labelled" in data.summary() and "144 validation, 360 test" in data.summary()
    again = prepare_data(M2_DIGITS, "digits", labels=labels, seed=0, labelled=data.labelled)
    np.testing.assert_array_equal(again.labelled, data.labelled)


@pytest.fixture
def two_labels(tmp_path):
    """40 examples: y (4 classes) labelled on 0..9, s (real) on 10..29: 30 carry a label, none both."""
    rng = np.random.default_rng(0)
    y = np.where(np.arange(40) < 10, np.arange(40) % 4, -1)
    s = np.where((np.arange(40) >= 10) & (np.arange(40) < 30), rng.normal(size=40), np.nan).astype("f4")
    path = tmp_path / "two.npz"
    np.savez(path, x=rng.normal(size=(40, 3)).astype("f4"), y=y, s=s,
             test_x=np.zeros((4, 3), "f4"), test_y=np.arange(4), test_s=np.zeros(4, "f4"))
    return str(path), make_spec("x observed real 3", "y supervised categorical 4", "s supervised real")


@pytest.mark.parametrize("labels, n, counts, text", [
    (-1, 30, {"y": 10, "s": 20}, "(30 labelled: y 10: 2-3 per class, s 20)"),  # every label of either variable
    (2, 2, {"y": 2, "s": 0}, "(2 labelled: y 2: 0-1 per class, s 0)"),  # 2 of 4 classes: not "1 per class"
])
def test_labels_of_several_supervised_variables_are_counted_each(two_labels, labels, n, counts, text):
    path, spec = two_labels
    data = prepare_data(spec, path, validation=0, labels=labels, seed=0)
    assert data.n_labelled == n and data.label_counts() == counts
    assert text in data.summary()


def test_per_class_counts_cover_every_class():
    data = prepare_data(M2_DIGITS, "digits", validation=0.1, labels=5, seed=0)
    assert "(5 labelled: 0-1 per class)" in data.summary()


def test_prepare_without_supervised_variable():
    data = prepare_data(make_spec("x observed binary 64"), "digits", labels=100)
    assert data.n_labelled == 0 and data.label_var is None and CLASS_KEY in data.train


def test_prepare_refuses_stale_labelled_indices():
    with pytest.raises(UserError, match="data changed"):
        prepare_data(M2_DIGITS, "digits", labelled=np.array([0, 5000]))


@pytest.mark.skipif(not (MNIST_DIR / "train-images-idx3-ubyte.gz").is_file(),
                    reason=f"MNIST IDX files not found in {MNIST_DIR}")
def test_real_mnist_m2(monkeypatch):
    monkeypatch.setenv(DATA_ENV, str(MNIST_DIR))
    spec = make_spec("x observed binary 784", "y supervised categorical 10")
    data = prepare_data(spec, "mnist", validation=0.1, labels=100, seed=0)
    assert np.bincount(data.dataset.train["y"]).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert len(data.train["x"]) == 54000 and len(data.val["x"]) == 6000 and len(data.test["x"]) == 10000
    assert np.bincount(data.train["y"][data.labelled]).tolist() == [10] * 10
