"""``graphvae data make multi-mnist|shaded-shapes`` and :mod:`graphvae.data.synthetic`: determinism,
the recorded factors against the pixels, Lambert's law on hand-computed cases, and the command line."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pytest

from graphvae.cli.main import main
from graphvae.data import synthetic
from graphvae.data.datasets import _read_digits, load_dataset
from graphvae.data.idx import find_idx_files, read_idx_dataset
from graphvae.errors import UserError
from graphvae.spec.loader import check_text

SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="module")
def digits():
    """scikit-learn's 8x8 digits, training split: (images (M, 8, 8), labels (M,))."""
    return _read_digits().train


def _multi(digits, n=40, k=3, canvas=16, seed=0):
    return synthetic.make_multi_digits(*digits, n, k, canvas, seed, "digits/train")


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k], equal_nan=a[k].dtype.kind == "f") for k in a)


# -- determinism -------------------------------------------------------------------------------

GENERATORS = {
    "multi-digits": lambda digits, seed: _multi(digits, seed=seed),
    "shaded-shapes": lambda digits, seed: synthetic.make_shaded_shapes(30, 4, 16, seed),
}


@pytest.mark.parametrize("name", GENERATORS)
def test_same_seed_same_arrays_and_bytes(digits, name):
    make = GENERATORS[name]
    first, second = make(digits, 7), make(digits, 7)
    assert _same(first, second)
    assert synthetic.npz_bytes(first) == synthetic.npz_bytes(second)


@pytest.mark.parametrize("name", GENERATORS)
def test_different_seed_different_arrays(digits, name):
    make = GENERATORS[name]
    a, b = make(digits, 1), make(digits, 2)
    assert not np.array_equal(a["x"], b["x"])


@pytest.mark.parametrize("name", GENERATORS)
def test_npz_loads_without_pickle_and_names_its_factors(digits, name):
    arrays = GENERATORS[name](digits, 0)
    with np.load(io.BytesIO(synthetic.npz_bytes(arrays)), allow_pickle=False) as z:
        assert list(z.keys()) == list(arrays)
        assert all(np.array_equal(z[k], arrays[k], equal_nan=arrays[k].dtype.kind == "f") for k in arrays)
        factors = list(z[synthetic.FACTORS_KEY])
    assert factors and all(f in arrays for f in factors)
    x = arrays["x"]
    assert x.dtype == np.float32 and x.ndim == 3 and 0 <= x.min() and x.max() <= 1


# -- multi-digit canvases ----------------------------------------------------------------------

@pytest.mark.parametrize("n, k, canvas, seed", [(50, 1, 8, 0), (50, 3, 16, 1), (30, 6, 12, 2), (20, 10, 30, 3)])
def test_slots_agree_with_count(digits, n, k, canvas, seed):
    a = _multi(digits, n, k, canvas, seed)
    count, present = a["count"], a["digits"] >= 0
    assert a["count"].dtype == a["digits"].dtype == a["source_index"].dtype == np.int64
    assert a["positions"].dtype == np.float32
    assert a["digits"].shape == a["source_index"].shape == (n, k) and a["positions"].shape == (n, k, 2)
    assert ((0 <= count) & (count <= k)).all()
    assert (present == (np.arange(k) < count[:, None])).all()
    assert (present == (a["source_index"] >= 0)).all()
    assert (present == ~np.isnan(a["positions"]).any(axis=-1)).all()
    assert (np.isnan(a["positions"]).all(axis=-1) == ~present).all()
    assert (a["digits"][present] == digits[1][a["source_index"][present]]).all()
    corners = a["positions"][present]
    assert (corners == np.round(corners)).all() and corners.min() >= 0 and corners.max() <= canvas - 8


def test_slots_run_left_to_right(digits):
    a = _multi(digits, 200, 4, 20, 5)
    for count, pos in zip(a["count"], a["positions"]):
        keys = [(c, r) for r, c in pos[:count]]
        assert keys == sorted(keys)


def test_counts_are_uniform(digits):
    a = _multi(digits, 4000, 3, 8, 11)
    frequencies = np.bincount(a["count"], minlength=4) / 4000
    assert np.abs(frequencies - 0.25).max() < 0.03  # about 4 standard errors


def _recomposite(images, source_index, positions, canvas):
    """The canvas recomputed from the recorded slots: each digit on its own zero canvas, then the
    pixelwise maximum over the digits (no in-place pasting, unlike the generator)."""
    h, w = images.shape[1:]
    layers = [np.zeros((canvas, canvas), np.float32)]
    for s, (r, c) in zip(source_index, positions):
        if s >= 0:
            layer = np.zeros((canvas, canvas), np.float32)
            layer[int(r):int(r) + h, int(c):int(c) + w] = images[s]
            layers.append(layer)
    return np.max(layers, axis=0)


@pytest.mark.parametrize("k, canvas", [(1, 8), (3, 12), (5, 16)])
def test_canvas_is_the_max_of_its_digits(digits, k, canvas):
    a = _multi(digits, 60, k, canvas, 3)
    images = digits[0]
    for x, s, p in zip(a["x"], a["source_index"], a["positions"]):
        assert np.array_equal(x, _recomposite(images, s, p, canvas))
        for j in np.flatnonzero(s >= 0):  # every digit's pixels are on the canvas at its place
            r, c = p[j].astype(int)
            assert (x[r:r + 8, c:c + 8] >= images[s[j]]).all()
    assert (a["x"][a["count"] == 0] == 0).all()


def test_the_digit_patch_is_visible_when_alone(digits):
    a = _multi(digits, 80, 1, 12, 4)
    for x, s, p in zip(a["x"], a["source_index"], a["positions"]):
        if s[0] >= 0:
            r, c = p[0].astype(int)
            assert np.array_equal(x[r:r + 8, c:c + 8], digits[0][s[0]])
            assert x.sum() == pytest.approx(digits[0][s[0]].sum())


# -- shaded shapes: Lambert's law on hand-computed cases --------------------------------------

FLAT = np.zeros((5, 5))
# (azimuth, elevation) in degrees -> cosine of the angle between the flat surface's normal (+z) and the light
FLAT_CASES = [((0, 0), 1.0), ((60, 0), 0.5), ((-60, 0), 0.5), ((0, 60), 0.5), ((0, -60), 0.5),
              ((90, 0), 0.0), ((180, 0), 0.0), ((45, 45), 0.5), ((0, 90), 0.0)]


@pytest.mark.parametrize("light, cosine", FLAT_CASES)
@pytest.mark.parametrize("albedo, ambient", [(1.0, 0.0), (0.6, 0.0), (0.8, 0.1)])
def test_a_flat_patch_follows_lambert(light, cosine, albedo, ambient):
    normals = synthetic.surface_normals(FLAT, 0.5)
    image = synthetic.lambert(normals, np.full(FLAT.shape, albedo), synthetic.light_vector(*light), ambient)
    assert image == pytest.approx(np.full(FLAT.shape, albedo * (ambient + (1 - ambient) * cosine)), abs=1e-12)


def _plane(dx: float, dy: float, size: int = 9) -> np.ndarray:
    """The height field z = dx * x + dy * y on the grid of :func:`synthetic.image_grid`."""
    x, y = synthetic.image_grid(size)
    return dx * x + dy * y


# (slopes dz/dx, dz/dy), light (azimuth, elevation), n . l worked out by hand
TILTED_CASES = [
    ((1, 0), (-45, 0), 1.0),  # rises to the right: faces left, up to the camera at 45 degrees
    ((1, 0), (45, 0), 0.0),  # the same plane, lit grazing from the right
    ((1, 0), (0, 0), math.sqrt(0.5)),
    ((0, 1), (0, -45), 1.0),  # rises to the top: faces down
    ((0, 1), (0, 45), 0.0),
    ((0, -1), (0, 45), 1.0),
    ((-1, 0), (90, 0), math.sqrt(0.5)),
    ((1, 0), (-90, 0), math.sqrt(0.5)),
]


@pytest.mark.parametrize("slopes, light, cosine", TILTED_CASES)
def test_a_tilted_plane_follows_lambert(slopes, light, cosine):
    height = _plane(*slopes)
    normals = synthetic.surface_normals(height, 2 / (height.shape[0] - 1))
    image = synthetic.lambert(normals, np.ones(height.shape), synthetic.light_vector(*light), ambient=0.0)
    assert image == pytest.approx(np.full(height.shape, cosine), abs=1e-9)


@pytest.mark.parametrize("azimuth, elevation, vector", [
    (0, 0, (0, 0, 1)), (90, 0, (1, 0, 0)), (-90, 0, (-1, 0, 0)), (0, 90, (0, 1, 0)), (0, -90, (0, -1, 0)),
    (30, 0, (0.5, 0, math.sqrt(3) / 2)), (0, 30, (0, 0.5, math.sqrt(3) / 2)),
])
def test_light_vector_convention(azimuth, elevation, vector):
    assert synthetic.light_vector(azimuth, elevation) == pytest.approx(np.array(vector), abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("identity", [0, 1, 2, 3])
def test_light_from_the_left_brightens_the_left(seed, identity):
    surface = synthetic.identity_surface(seed, identity, 32)
    normals = synthetic.surface_normals(surface.height, surface.spacing)
    inside = surface.height > 0
    half = np.zeros(inside.shape, bool)
    half[:, :16] = True
    images = {side: synthetic.lambert(normals, surface.albedo, synthetic.light_vector(az, 0))
              for side, az in (("left", -60), ("right", 60))}
    for side, image in images.items():
        left, right = image[inside & half].mean(), image[inside & ~half].mean()
        assert (left > right) == (side == "left")


def test_the_backdrop_is_lit_as_recorded():
    a = synthetic.make_shaded_shapes(60, 5, 24, 3)
    expected = synthetic.BACKGROUND_ALBEDO * (synthetic.AMBIENT + (1 - synthetic.AMBIENT)
                                              * np.maximum(0, a["light_vector"][:, 2]))
    for corner in (a["x"][:, 0, 0], a["x"][:, 0, -1], a["x"][:, -1, 0], a["x"][:, -1, -1]):
        assert corner == pytest.approx(expected, abs=1e-6)


def test_recorded_lights_and_identities():
    a = synthetic.make_shaded_shapes(300, 6, 16, 9)
    assert a["identity"].dtype == np.int64 and set(a["identity"]) == set(range(6))
    az, el = a["light"].T
    assert a["light"].dtype == np.float32 and a["light"].shape == (300, 2)
    assert synthetic.AZIMUTH_RANGE[0] <= az.min() and az.max() <= synthetic.AZIMUTH_RANGE[1]
    assert synthetic.ELEVATION_RANGE[0] <= el.min() and el.max() <= synthetic.ELEVATION_RANGE[1]
    assert a["light_vector"] == pytest.approx(synthetic.light_vector(az, el), abs=1e-6)
    assert list(a[synthetic.FACTORS_KEY]) == ["identity", "light"]


def test_images_are_the_lit_surfaces_of_their_identities():
    a = synthetic.make_shaded_shapes(20, 3, 16, 4)
    for x, i, l in zip(a["x"], a["identity"], a["light_vector"]):
        surface = synthetic.identity_surface(4, int(i), 16)
        normals = synthetic.surface_normals(surface.height, surface.spacing)
        assert x == pytest.approx(synthetic.lambert(normals, surface.albedo, l.astype(np.float64)), abs=1e-6)


@pytest.mark.parametrize("seed", [0, 5])
def test_identities_differ_and_are_fixed_by_the_seed(seed):
    surfaces = [synthetic.identity_surface(seed, i, 24) for i in range(6)]
    for i, s in enumerate(surfaces):
        again = synthetic.identity_surface(seed, i, 24)
        assert np.array_equal(s.height, again.height) and np.array_equal(s.albedo, again.albedo)
        assert not np.array_equal(s.height, synthetic.identity_surface(seed + 1, i, 24).height)
        for t in surfaces[:i]:
            assert np.abs(s.height - t.height).max() > 0.05


# -- loadable as graphvae data -----------------------------------------------------------------

SPEC = """model t
x : observed unit[SHAPE]
LABEL : supervised categorical[CLASSES]
z : latent real[2]
encoder {
  LABEL | x ~ Categorical(mlp(8))
  z | x, LABEL ~ Normal(mlp(8))
}
decoder {
  z ~ Normal(0, 1)
  LABEL ~ Categorical(uniform)
  x | LABEL, z ~ ContinuousBernoulli(mlp(8))
}
"""


@pytest.mark.parametrize("name, label, classes", [("multi-digits", "count", 4), ("shaded-shapes", "identity", 4)])
@pytest.mark.parametrize("shape", ["16, 16", "256", "1, 16, 16"])
def test_the_file_loads_as_graphvae_data(digits, tmp_path, name, label, classes, shape):
    arrays = GENERATORS[name](digits, 0)
    path = tmp_path / "data.npz"
    path.write_bytes(synthetic.npz_bytes(arrays))
    text = SPEC.replace("SHAPE", shape).replace("LABEL", label).replace("CLASSES", str(classes))
    spec, diagnostics = check_text(text, "t.gvae", "dsl")
    assert spec is not None and not [d for d in diagnostics if d.is_error]
    ds = load_dataset(str(path), spec)
    dims = tuple(int(d) for d in shape.split(", "))
    assert ds.train["x"].shape[1:] == dims and ds.n_train + ds.n_test == len(arrays["x"])
    assert set(np.concatenate([ds.train[label], ds.test[label]])) <= set(range(classes))


# -- the command line --------------------------------------------------------------------------

def _cli(capsys, *argv):
    code = main(["data", "make", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("graphvae: error: "), err
    return lines[0]


MAKE_ARGS = {
    "multi-mnist": ["multi-mnist", "--source", "digits", "--max-digits", "2", "--count", "12"],
    "shaded-shapes": ["shaded-shapes", "--identities", "3", "--size", "16", "--count", "12"],
}


@pytest.mark.parametrize("name", MAKE_ARGS)
def test_cli_writes_the_file_and_one_summary_line(capsys, tmp_path, name):
    out, preview = tmp_path / "new" / "folder" / "d.npz", tmp_path / "p" / "d.png"
    code, stdout, err = _cli(capsys, *MAKE_ARGS[name], "--seed", "3", "--out", str(out), "--preview", str(preview))
    assert code == 0 and not err
    lines = stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"wrote {out}") and "12 examples" in lines[0]
    assert "seed 3" in lines[0] and "x (12, 16, 16) float32" in lines[0]
    with np.load(out, allow_pickle=False) as z:
        assert z["x"].shape == (12, 16, 16)
        first = {k: z[k] for k in z.keys()}
    assert preview.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in out.parent.iterdir() if p.name != "d.npz"]  # no temp file left
    again = tmp_path / "again.npz"
    assert _cli(capsys, *MAKE_ARGS[name], "--seed", "3", "--out", str(again))[0] == 0
    assert again.read_bytes() == out.read_bytes()
    with np.load(again, allow_pickle=False) as z:
        assert _same(first, {k: z[k] for k in z.keys()})


@pytest.mark.parametrize("name", MAKE_ARGS)
def test_cli_keeps_an_existing_file_unless_force(capsys, tmp_path, name):
    out = tmp_path / "d.npz"
    out.write_bytes(b"precious")
    code, stdout, err = _cli(capsys, *MAKE_ARGS[name], "--out", str(out))
    assert code == 1 and not stdout
    assert "exists; pass --force" in _one_error_line(err)
    assert out.read_bytes() == b"precious"
    assert _cli(capsys, *MAKE_ARGS[name], "--out", str(out), "--force")[0] == 0
    with np.load(out, allow_pickle=False) as z:
        assert len(z["x"]) == 12


BAD_FLAGS = [
    (["multi-mnist", "--source", "digits", "--max-digits", "0"], "--max-digits 0"),
    (["multi-mnist", "--source", "digits", "--max-digits", "-2"], "--max-digits -2"),
    (["multi-mnist", "--source", "digits", "--max-digits", "1000"], "--max-digits 1000"),
    (["multi-mnist", "--source", "digits", "--max-digits", "2", "--canvas", "7"], "--canvas 7"),
    (["multi-mnist", "--max-digits", "2", "--canvas", "27"], "a mnist digit is 28x28"),
    (["multi-mnist", "--source", "digits", "--max-digits", "2", "--count", "0"], "--count 0"),
    (["multi-mnist", "--source", "digits", "--max-digits", "2", "--seed", "-1"], "--seed -1"),
    (["multi-mnist", "--source", "digits", "--max-digits", "2", "--count", "9000000", "--canvas", "1000"],
     "more than half of this machine's memory"),
    (["shaded-shapes", "--identities", "0"], "--identities 0"),
    (["shaded-shapes", "--size", "4"], "--size 4"),
    (["shaded-shapes", "--size", "5000"], "--size 5000"),
    (["shaded-shapes", "--count", "-5"], "--count -5"),
    (["shaded-shapes", "--preview", "p.jpg"], "--preview"),
]


@pytest.mark.parametrize("argv, needle", BAD_FLAGS)
def test_cli_bad_flag_is_one_line_and_writes_nothing(capsys, tmp_path, argv, needle):
    out = tmp_path / "sub" / "d.npz"
    code, stdout, err = _cli(capsys, *argv, "--out", str(out))
    assert code == 1 and not stdout
    assert needle in _one_error_line(err)
    assert not (tmp_path / "sub").exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("out, needle", [("d.txt", "must end in .npz"), ("folder", "is a folder")])
def test_cli_bad_output_path(capsys, tmp_path, out, needle):
    (tmp_path / "folder").mkdir()
    code, _, err = _cli(capsys, *MAKE_ARGS["shaded-shapes"], "--out", str(tmp_path / out))
    assert code == 1 and needle in _one_error_line(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder"] and not any((tmp_path / "folder").iterdir())


USAGE_ERRORS = [  # argparse's usage errors (exit 2): a missing required flag, an unknown NAME, a non-number
    (["multi-mnist", "--source", "digits", "--out", "OUT"], "--max-digits"),
    (["shaded-shapes"], "--out"),
    (["circles", "--out", "OUT"], "circles"),
    (["shaded-shapes", "--count", "many", "--out", "OUT"], "many"),
]


@pytest.mark.parametrize("argv, needle", USAGE_ERRORS)
def test_cli_usage_errors_exit_2(capsys, tmp_path, argv, needle):
    with pytest.raises(SystemExit) as exc:
        main(["data", "make", *(str(tmp_path / "d.npz") if a == "OUT" else a for a in argv)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "error:" in err and needle in err.strip().splitlines()[-1]
    assert list(tmp_path.iterdir()) == []


def test_cli_missing_mnist_is_one_line_that_says_where_and_how(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHVAE_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    out = tmp_path / "m.npz"
    code, stdout, err = _cli(capsys, "multi-mnist", "--max-digits", "2", "--count", "5", "--out", str(out))
    line = _one_error_line(err)
    assert code == 1 and not stdout and not out.exists()
    assert "mnist data not found; looked in" in line and str(tmp_path / "empty") in line
    assert "graphvae data download mnist" in line and "--source digits" in line


def _mnist_dir() -> str | None:
    """A folder holding MNIST's four IDX files: $GRAPHVAE_DATA, the default cache or the shared one."""
    for folder in (None, str(SHARED_MNIST)):
        try:
            find_idx_files("mnist", folder)
            return folder or ""
        except UserError:
            continue
    return None


MNIST_DIR = _mnist_dir()


@pytest.mark.skipif(MNIST_DIR is None, reason="MNIST's IDX files are not in $GRAPHVAE_DATA, ~/.cache/graphvae/data "
                                              "or ../shared/data (graphvae data download mnist fetches them)")
@pytest.mark.parametrize("split", ["train", "test"])
def test_cli_multi_mnist_from_mnist(capsys, tmp_path, split):
    out = tmp_path / "m.npz"
    flags = ["--data-dir", MNIST_DIR] if MNIST_DIR else []
    code, stdout, err = _cli(capsys, "multi-mnist", "--max-digits", "3", "--count", "25", "--split", split,
                             "--seed", "1", "--out", str(out), *flags)
    assert code == 0 and not err and "x (25, 50, 50) float32" in stdout and f"mnist {split}" in stdout
    train, test, _ = read_idx_dataset("mnist", MNIST_DIR or None)
    images, labels = train if split == "train" else test
    with np.load(out, allow_pickle=False) as z:
        assert list(z["_source"]) == [f"mnist/{split}"]
        x, s, p, d = z["x"], z["source_index"], z["positions"], z["digits"]
    assert x.shape == (25, 50, 50) and 0 <= x.min() and x.max() <= 1
    assert (d[s >= 0] == labels[s[s >= 0]]).all()
    for canvas, slots, corners in zip(x, s, p):
        assert np.array_equal(canvas, _recomposite(images, slots, corners, 50))


def test_the_generators_import_numpy_and_the_standard_library_only():
    import ast
    import sys

    tree = ast.parse(Path(synthetic.__file__).read_text(encoding="utf-8"))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module and node.level == 0}
    assert imported - {"__future__"} <= {"numpy"} | set(sys.stdlib_module_names)
    assert "numpy" in imported
