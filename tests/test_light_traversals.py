"""graphvae sample: a traversal picture per value of a continuous supervised variable (the light of
the shaded shapes), swept over its test labels' range with identity and style held fixed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import tiny_m2

from graphvae.cli import main
from graphvae.data.synthetic import make_shaded_shapes
from graphvae.spec.ir import Spec, Variable
from graphvae.train.pictures import sweep_ranges

torch.set_num_threads(1)
NAN = float("nan")

SPEC = """model shapes8

x        : observed   unit[8, 8]
identity : supervised categorical[3]
light    : supervised real[2]
z        : latent     real[2]

encoder {
  h | x                  = mlp(32, batchnorm = true)
  identity | h           ~ Categorical(linear)
  light | h              ~ Normal(linear)
  z | h, identity, light ~ Normal(linear)
}

decoder {
  z                      ~ Normal(0, 1)
  identity               ~ Categorical(uniform)
  light                  ~ Normal(0, 45)
  x | identity, light, z ~ ContinuousBernoulli(mlp(32, batchnorm = true))
}

objective {
  identity = enumerate
}

train {
  epochs = 1
  labels = 6
  batch_size = 100
}
"""


@pytest.mark.parametrize("values, shape, expected", [
    ([[0, 5], [-70, 60], [NAN, NAN], [10, -40]], (2,), {"light": ([-70, -40], [10, 60])}),
    ([[NAN, 1], [3, 4]], (2,), {"light": ([3, 4], [3, 4])}),  # a row with a missing value is left out
    ([[NAN, NAN]], (2,), {}),  # no known label: no range
    ([[2.0], [-1.0]], (1,), {"light": ([-1], [2])}),
])
def test_sweep_ranges_by_hand(values, shape, expected):
    spec = Spec("m", (Variable("x", "observed", "real", (1,)), Variable("light", "supervised", "real", shape),
                      Variable("y", "supervised", "categorical", (3,))))
    got = sweep_ranges(spec, {"light": np.asarray(values, dtype=np.float32), "y": np.zeros(len(values), int)})
    assert set(got) == set(expected)
    for name, (lows, highs) in expected.items():
        assert got[name][0].tolist() == pytest.approx(lows) and got[name][1].tolist() == pytest.approx(highs)


@pytest.fixture(scope="module")
def shapes_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("shapes8")
    arrays = make_shaded_shapes(300, 3, 8, 0)
    np.savez(root / "shapes.npz", **{k: arrays[k] for k in ("x", "identity", "light")})
    (root / "shapes8.gvae").write_text(SPEC)
    assert main(["train", str(root / "shapes8.gvae"), "--data", str(root / "shapes.npz"), "--out", str(root / "run"),
                 "--no-progress", "--device", "cpu"]) == 0
    return root


def test_light_traversal_pictures(shapes_run, capsys):
    import matplotlib.image

    capsys.readouterr()
    out = shapes_run / "figs"
    assert main(["sample", str(shapes_run / "run"), "--out", str(out), "--n", "5", "--device", "cpu"]) == 0
    said = capsys.readouterr().out
    for name in ("traversal_light_0.png", "traversal_light_1.png"):
        assert (out / name).is_file() and f"wrote {out / name}" in said
        img = matplotlib.image.imread(out / name)
        assert img.shape[1] > img.shape[0] > 50  # 4 rows of 5 columns: wider than tall
    assert {p.name for p in out.iterdir()} >= {"generation.png", "traversals.png", "reconstructions.png"}


def test_decoded_rows_hold_all_but_the_swept_value(shapes_run, monkeypatch, tmp_path):
    """The decoder is given, down each row, the same identity and z and the other light value, and
    the swept value goes from the least to the greatest known test label."""
    from graphvae.train import pictures

    calls = []
    real_decode = pictures._Grids.decode

    def spy(self, n, given):
        calls.append({k: v.clone() for k, v in given.items()})
        return real_decode(self, n, given)

    monkeypatch.setattr(pictures._Grids, "decode", spy)
    pictures.sample_pictures(shapes_run / "run", tmp_path / "f", n=4, device="cpu")
    sweeps = [c for c in calls if "light" in c and "z" in c and "identity" in c and len(c["light"]) == 16]
    assert len(sweeps) == 2
    test_light = make_shaded_shapes(300, 3, 8, 0)["light"]
    for i, given in enumerate(sweeps):
        light = given["light"].reshape(4, 4, 2)
        assert torch.equal(given["identity"].reshape(4, 4), given["identity"].reshape(4, 4)[:, :1].expand(4, 4))
        assert torch.equal(given["z"].reshape(4, 4, -1), given["z"].reshape(4, 4, -1)[:, :1].expand(4, 4, -1))
        other = light[:, :, 1 - i]
        assert torch.equal(other, other[:, :1].expand(4, 4))
        swept = light[:, :, i]
        assert torch.equal(swept, swept[:1].expand(4, 4))  # the same sweep in every row
        assert test_light[:, i].min() - 1e-3 <= float(swept[0, 0]) < float(swept[0, -1]) <= test_light[:, i].max() + 1e-3


def test_no_supervised_continuous_variable_no_traversal(tmp_path, capsys):
    spec = tmp_path / "tiny.gvae"
    spec.write_text(tiny_m2(train="  epochs = 1\n  batch_size = 500\n  labels = 20"))
    assert main(["train", str(spec), "--out", str(tmp_path / "run"), "--no-progress", "--device", "cpu"]) == 0
    assert main(["sample", str(tmp_path / "run"), "--out", str(tmp_path / "figs"), "--n", "3", "--device", "cpu"]) == 0
    names = {p.name for p in (tmp_path / "figs").iterdir()}
    assert names == {"generation.png", "style_transfer.png", "reconstructions.png", "traversals.png"}
