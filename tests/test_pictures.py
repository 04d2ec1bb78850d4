"""graphvae plot (training curves) and graphvae sample (PNG grids of a trained run)."""

from __future__ import annotations

import numpy as np
import pytest

from graphvae.cli import main
from graphvae.diagnostics import UserError
from graphvae.ir import Variable
from graphvae.pictures import _as_images, _image_shape, image_grid, plot_curves
from graphvae.runfolder import RunFolder

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
