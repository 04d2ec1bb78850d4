"""graphvae plot (training curves) and graphvae sample (PNG grids of a trained run)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import tiny_m2

from graphvae.cli import main
from graphvae.errors import UserError
from graphvae.spec.ir import Variable
from graphvae.train.pictures import _as_images, _image_shape, image_grid, plot_curves
from graphvae.train.runfolder import RunFolder

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _png_size(path) -> tuple[int, int]:
    import matplotlib.image

    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC)
    img = matplotlib.image.imread(path)
    return img.shape[1], img.shape[0]


def _rows(n: int, supervised: bool = True) -> list[dict]:
    rows = []
    for e in range(1, n + 1):
        row = {"epoch": e, "step": 10 * e, "train/loss": 100.0 / e, "train/elbo": -90.0 / e, "train/kl/z": 5.0 + e,
               "val/elbo": -95.0 / e, "steps_per_s": 20.0, "lr": 0.001}
        if supervised:
            row["val/error/y"] = 0.5 / e
        rows.append(row)
    return rows


@pytest.mark.parametrize("n_rows, supervised", [(1, True), (5, True), (3, False)])
def test_plot_curves_writes_png(tmp_path, n_rows, supervised):
    out = plot_curves(_rows(n_rows, supervised), tmp_path / "curves.png", title="run")
    w, h = _png_size(out)
    assert w > 300 and h > 200


def test_plot_without_metrics_is_user_error(tmp_path):
    with pytest.raises(UserError, match="no metrics"):
        plot_curves([], tmp_path / "c.png")


@pytest.mark.parametrize("var_shape, data_shape, expected", [
    ((784,), (28, 28), (28, 28)),
    ((784,), None, (28, 28)),
    ((64,), (8, 8), (8, 8)),
    ((1, 28, 28), None, (1, 28, 28)),
    ((3, 8, 8), None, (3, 8, 8)),
    ((10,), None, None),
])
def test_image_shape(var_shape, data_shape, expected):
    assert _image_shape(Variable("x", "observed", "unit", var_shape), data_shape) == expected


@pytest.mark.parametrize("shape, out_shape", [((28, 28), (2, 28, 28)), ((1, 8, 8), (2, 8, 8)), ((3, 4, 5), (2, 4, 5, 3))])
def test_as_images(shape, out_shape):
    import torch

    values = torch.linspace(-1, 2, 2 * int(np.prod(shape))).reshape((2,) + shape)
    imgs = _as_images(values, shape)
    assert imgs.shape == out_shape
    assert imgs.min() >= 0 and imgs.max() <= 1  # clipped for display


@pytest.mark.parametrize("rows, cols", [(1, 1), (3, 4)])
def test_image_grid(tmp_path, rows, cols):
    images = np.random.default_rng(0).random((rows * cols, 8, 8))
    out = image_grid(images, rows, cols, tmp_path / "g.png", row_labels=[str(r) for r in range(rows)])
    w, h = _png_size(out)
    assert w > 20 and h > 20


@pytest.mark.parametrize("make, extra, code, message", [
    ("metrics", [], 0, None),
    ("metrics", ["-o", "{tmp}/custom.png"], 0, None),
    ("metrics", ["-o", "{tmp}/custom.svg"], 1, "plot writes PNG"),
    ("empty", [], 1, "no metrics"),
    ("none", [], 1, "no such run folder"),
])
def test_plot_cli_exit_codes(tmp_path, capsys, make, extra, code, message):
    run = RunFolder(tmp_path / "run")
    if make != "none":
        run.create("model m\n", ".gvae", {})
    if make == "metrics":
        for row in _rows(3):
            run.append_metrics(row)
    argv = ["plot", str(run.path)] + [a.format(tmp=tmp_path) for a in extra]
    assert main(argv) == code
    err = capsys.readouterr().err
    if message:
        assert message in err and "Traceback" not in err
    else:
        target = tmp_path / "custom.png" if extra else run.path / "curves.png"
        _png_size(target)


SPEC = tiny_m2(z=3, train="""  epochs = 1
  batch_size = 300
  labels = 30""")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    import torch

    from graphvae.spec.loader import load_spec_file
    from graphvae.train import config as trainconfig
    from graphvae.train.loop import train

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("pictures")
    path = root / "tiny.gvae"
    path.write_text(SPEC)
    cfg = trainconfig.resolve(load_spec_file(path)[0], {"device": "cpu"})
    return train(path, cfg, root / "run", progress=False, log=lambda *_: None).run


@pytest.mark.parametrize("n, grids", [
    (4, {"generation.png": (10, 4), "style_transfer.png": (4, 11), "reconstructions.png": (4, 4),
         "traversals.png": (3, 4)}),
    (2, {"generation.png": (10, 2), "style_transfer.png": (2, 11), "reconstructions.png": (4, 2),
         "traversals.png": (3, 2)}),
])
def test_sample_writes_every_grid(trained, tmp_path, n, grids):
    from graphvae.train.pictures import sample_pictures

    written = sample_pictures(trained, tmp_path / "figs", n=n, device="cpu", log=lambda *_: None)
    assert sorted(p.name for p in written) == sorted(grids)
    sizes = {p.name: _png_size(p) for p in written}
    for name, (rows, cols) in grids.items():
        w, h = sizes[name]
        assert w >= cols * 20 and h >= rows * 20, name  # room for every cell


@pytest.mark.parametrize("argv, code, message", [
    (["sample", "{run}", "--out", "{tmp}/figs", "--n", "3", "--device", "cpu"], 0, None),
    (["sample", "{run}", "--out", "{tmp}/figs", "--n", "0"], 1, "--n must be at least 1"),
    (["sample", "{tmp}/nowhere", "--out", "{tmp}/figs"], 1, "no such run folder"),
])
def test_sample_cli(trained, tmp_path, capsys, argv, code, message):
    assert main([a.format(run=trained, tmp=tmp_path) for a in argv]) == code
    captured = capsys.readouterr()
    if message:
        assert message in captured.err and "Traceback" not in captured.err
    else:
        assert captured.out.count("wrote ") == 4
        for name in ("generation", "style_transfer", "reconstructions", "traversals"):
            _png_size(tmp_path / "figs" / f"{name}.png")
