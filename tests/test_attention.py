"""glimpse, erase and paste (graphvae.spec.networks): windows read, blanked and placed, checked against
hand-computed values, finite differences in the position, and the count's zeroing of a plate's patches."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from graphvae.compile.compiler import compile_spec
from graphvae.compile.attention import Erase, Glimpse, Paste, window_weights
from graphvae.compile.parents import ParentInput
from graphvae.spec.ir import Net
from graphvae.spec.loader import load_spec

IMAGE = torch.arange(42.0).reshape(6, 7)  # pixel (r, c) holds 7 r + c


def glimpse(h: int, w: int, shape=(6, 7), image_first: bool = True) -> Glimpse:
    parents = (ParentInput("x", shape), ParentInput("w", (2,)))
    return Glimpse(Net("glimpse", (h, w)), parents if image_first else parents[::-1])


def paste(h: int, w: int, canvas=(4, 5)) -> Paste:
    return Paste(Net("paste", (h, w)), (ParentInput("p", (h * w,)), ParentInput("w", (2,))), {"logits": canvas})


@pytest.mark.parametrize("row, col, h, w, want", [
    (1, 2, 3, 2, [[9, 10], [16, 17], [23, 24]]),          # 7 r + c over rows 1..3, columns 2..3
    (0, 0, 2, 2, [[0, 1], [7, 8]]),
    (1.5, 2, 2, 2, [[12.5, 13.5], [19.5, 20.5]]),         # halfway between rows: the mean, 7 (r + .5) + c
    (1, 2.25, 2, 2, [[9.25, 10.25], [16.25, 17.25]]),
    (5, 6, 2, 2, [[41, 0], [0, 0]]),                      # off the image reads zero
    (-1, -1, 2, 2, [[0, 0], [0, 0]]),
])
def test_glimpse_reads_the_window_at_its_position(row, col, h, w, want):
    out = glimpse(h, w)([IMAGE[None], torch.tensor([[row, col]], dtype=torch.float32)])
    assert out.shape == (1, h * w)
    torch.testing.assert_close(out.reshape(h, w), torch.tensor(want, dtype=torch.float32))


def test_glimpse_takes_its_parents_in_either_order_and_broadcasts_samples():
    positions = torch.tensor([[[0.0, 0.0], [1.0, 2.0]], [[1.0, 2.0], [0.0, 0.0]]])  # (S=2, B=2, 2)
    images = torch.stack([IMAGE, IMAGE + 100])  # (B=2, 6, 7)
    out = glimpse(2, 2, image_first=False)([positions, images])
    assert out.shape == (2, 2, 4)
    torch.testing.assert_close(out[0, 1], torch.tensor([109.0, 110, 116, 117]))
    torch.testing.assert_close(out[1, 0], torch.tensor([9.0, 10, 16, 17]))


@pytest.mark.parametrize("row, col, want", [
    (1, 2, [[0, 0, 0, 0, 0], [0, 0, 1, 2, 0], [0, 0, 3, 4, 0], [0, 0, 0, 0, 0]]),
    (3, 4, [[0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 1]]),   # cut off at the edge
    (0, 0.5, [[.5, 1.5, 1, 0, 0], [1.5, 3.5, 2, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]]),  # between columns
])
def test_paste_places_the_patch_on_the_learnt_canvas(row, col, want):
    net = paste(2, 2)
    with torch.no_grad():
        net.bias.fill_(-1.0)
    out = net([torch.tensor([[1.0, 2, 3, 4]]), torch.tensor([[row, col]])])["logits"]
    torch.testing.assert_close(out[0], torch.tensor(want) - 1.0)


def test_a_zero_patch_adds_nothing_and_pasting_then_reading_gives_the_patch_back():
    net = paste(3, 2, canvas=(6, 7))
    zero = net([torch.zeros(1, 6), torch.tensor([[2.0, 3.0]])])["logits"]
    torch.testing.assert_close(zero, torch.zeros(1, 6, 7))
    patch, at = torch.randn(1, 6), torch.tensor([[2.0, 3.0]])
    canvas = net([patch, at])["logits"]
    torch.testing.assert_close(glimpse(3, 2)([canvas, at]), patch)


def erase(h: int, w: int, shape=(6, 7), chain: bool = False) -> Erase:
    parents = (ParentInput("x", shape),) + ((ParentInput("r", shape, node="erase"),) if chain else ()) + \
        (ParentInput("w", (2,)),)
    return Erase(Net("erase", (h, w)), parents)


@pytest.mark.parametrize("start, length, size, want", [
    (1.0, 2, 5, [0, 1, 1, 0, 0]),
    (1.25, 2, 5, [0, .75, 1, .25, 0]),     # a window of ones placed bilinearly at 1.25: 1 - .25 at pixel 1, .25 at 3
    (-1.5, 3, 4, [1, .5, 0, 0]),           # off the top: pixels -1.5 .. 0.5 covered
    (3.5, 2, 4, [0, 0, 0, .5]),            # off the bottom
])
def test_window_weights_are_a_bilinearly_placed_window_of_ones(start, length, size, want):
    want = torch.tensor(want, dtype=torch.float32)
    torch.testing.assert_close(window_weights(torch.tensor([start]), length, size)[0], want)
    ones = paste(length, 3, canvas=(size, 3))([torch.ones(1, 3 * length), torch.tensor([[start, 0.0]])])["logits"]
    torch.testing.assert_close(window_weights(torch.tensor([start]), length, size)[0], ones[0, :, 0])  # paste agrees


def test_erase_blanks_the_window_and_leaves_the_rest():
    out = erase(2, 3)([IMAGE[None], torch.tensor([[1.0, 2.0]])])
    want = IMAGE.clone()
    want[1:3, 2:5] = 0
    assert out.shape == (1, 6, 7)
    torch.testing.assert_close(out[0], want)
    half = erase(2, 3)([IMAGE[None], torch.tensor([[1.5, 2.0]])])[0]  # row 1 half blanked, row 2 blanked, row 3 half
    torch.testing.assert_close(half[1:4, 2:5], IMAGE[1:4, 2:5] * torch.tensor([[.5], [0], [.5]]))
    torch.testing.assert_close(half[:, :2], IMAGE[:, :2])


def test_erase_goes_on_from_the_erase_before_and_slot_0_starts_from_the_image():
    """r[k] | x, r[k-1], w[k-1] = erase(...): slot 0 has neither r[-1] nor w[-1] and is x; slot 1 is
    x less slot 0's window; slot 2 is slot 1's image less slot 1's window (both windows blanked)."""
    net = erase(2, 2, chain=True)
    x = IMAGE[None]
    r0 = net([x, None, None])
    torch.testing.assert_close(r0, x)
    r1 = net([x, r0, torch.tensor([[0.0, 0.0]])])
    r2 = net([x, r1, torch.tensor([[3.0, 4.0]])])
    want = IMAGE.clone()
    want[0:2, 0:2] = 0
    want[3:5, 4:6] = 0
    torch.testing.assert_close(r2[0], want)


def test_erase_broadcasts_a_position_with_sample_dims_over_the_image():
    positions = torch.tensor([[[0.0, 0.0], [1.0, 2.0]], [[4.0, 5.0], [0.0, 0.0]]])  # (S=2, B=2, 2)
    images = torch.stack([IMAGE, IMAGE + 100])  # (B=2, 6, 7)
    out = erase(2, 2)([images, positions])
    assert out.shape == (2, 2, 6, 7)
    torch.testing.assert_close(out[1, 1, 2:, :], images[1, 2:, :])
    assert out[1, 1, :2, :2].abs().sum() == 0 and out[0, 1, 1:3, 2:4].abs().sum() == 0


@pytest.mark.parametrize("which", ["glimpse", "erase", "paste"])
def test_the_gradient_in_the_position_matches_finite_differences(which):
    torch.manual_seed(0)
    image, patch, weights = torch.randn(1, 6, 7, dtype=torch.float64), torch.randn(1, 6, dtype=torch.float64), None
    if which == "glimpse":
        net = glimpse(3, 2).double()
        weights = torch.randn(1, 6, dtype=torch.float64)
        f = lambda at: (net([image, at]) * weights).sum()  # noqa: E731
    elif which == "erase":
        net = erase(3, 2).double()
        weights = torch.randn(1, 6, 7, dtype=torch.float64)
        f = lambda at: (net([image, at]) * weights).sum()  # noqa: E731
    else:
        net = paste(3, 2, canvas=(6, 7)).double()
        weights = torch.randn(1, 6, 7, dtype=torch.float64)
        f = lambda at: (net([patch, at])["logits"] * weights).sum()  # noqa: E731
    at = torch.tensor([[1.3, 2.6]], dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(f(at), at)
    eps = 1e-6  # inside one bilinear cell the map is smooth
    numeric = [(f(at.detach() + eps * e) - f(at.detach() - eps * e)) / (2 * eps) for e in torch.eye(2)[:, None]]
    torch.testing.assert_close(grad[0], torch.stack(numeric).to(grad.dtype), rtol=1e-5, atol=1e-7)


SLOTS = """
model slots

plate k < 2 count n

x        : observed   binary[8, 8]
n        : supervised categorical[3]
w[k]     : supervised real[2]
z[k]     : latent     real[2]

encoder {
  n | x                   ~ Categorical(linear)
  w[k] | x, w[k-1]        ~ Normal(loc = linear, scale = 1)
  g[k] | x, w[k]          = glimpse(3)
  z[k] | g[k]             ~ Normal(linear)
}

decoder {
  n                       ~ Categorical(uniform)
  w[k]                    ~ Normal(2, 2)
  z[k]                    ~ Normal(0, 1)
  p[k] | z[k]             = mlp(4, 9)
  x | p[*], w[*]          ~ Bernoulli(paste(3))
}
"""


@pytest.fixture
def slots_model(tmp_path):
    path = tmp_path / "slots.gvae"
    path.write_text(SLOTS)
    torch.manual_seed(0)
    return compile_spec(load_spec(str(path)))


@pytest.mark.parametrize("count, patch_gets_gradient", [(0, False), (1, True), (2, True)])
def test_a_slot_past_the_count_puts_no_patch_on_the_canvas(slots_model, count, patch_gets_gradient):
    """With every canvas's count 0, x's likelihood cannot depend on the patch network (both slots'
    patches are zeroed before paste); with a slot present it does."""
    b = 5
    batch = {"x": torch.bernoulli(torch.full((b, 8, 8), 0.3)), "n": torch.full((b,), count),
             "w_0": torch.full((b, 2), 1.0), "w_1": torch.full((b, 2), 4.0)}
    slots_model.loss(batch).backward()
    patch = slots_model.decoder["p_0"]
    assert slots_model.decoder["p_1"] is patch  # one network for the plate's slots
    grads = [p.grad for p in patch.parameters()]
    moved = any(g is not None and g.abs().sum() > 0 for g in grads)
    assert moved is patch_gets_gradient
    assert slots_model.decoder["x"].nets["logits"].bias.grad.abs().sum() > 0


def test_a_new_run_starts_the_canvas_at_the_training_images_mean(slots_model):
    """A Bernoulli canvas starts at the logit of each pixel's mean (a pixel never on clamped to
    1e-3), not at 0 (grey); ``threshold`` binarization's mean is the thresholded images'."""
    from graphvae.data.batches import mean_values

    assert slots_model.canvases() == ["x"]
    images = np.zeros((4, 8, 8), np.float32)
    images[:, 0, 0] = [1, 1, 0, 0]       # mean 0.5: logit 0
    images[:, 0, 1] = [1, 1, 1, 0]       # 0.75: log 3
    images[:, 0, 2] = [0.4, 0.4, 0.4, 1]  # grey levels: 0.55 drawn, 0.25 thresholded at 0.5
    images[:, 7, 7] = 1                  # always on: clamped to 1 - 1e-3
    arrays = {"x": images, "n": np.zeros(4, np.int64)}
    for mode, third in (("dynamic", 0.55), ("threshold", 0.25)):
        means = mean_values(arrays, slots_model.spec, mode, slots_model.canvases())
        slots_model.start_canvases({k: torch.from_numpy(m) for k, m in means.items()})
        canvas = slots_model.decoder["x"].nets["logits"].bias.detach().double()
        want = torch.full((8, 8), math.log(1e-3 / (1 - 1e-3)), dtype=torch.float64)
        want[0, 0], want[0, 1], want[0, 2] = 0.0, math.log(3.0), math.log(third / (1 - third))
        want[7, 7] = -want[1, 1]
        torch.testing.assert_close(canvas, want, rtol=0, atol=5e-5)  # a float32 canvas


@pytest.mark.parametrize("family, param, mean, want", [
    ("Bernoulli", "logits", 0.2, math.log(0.25)),
    ("Normal", "loc", 0.2, 0.2),
    ("Laplace", "loc", -3.0, -3.0),
    ("Normal", "scale", 0.2, None),      # a scale is not set by a mean: the canvas stays at 0
])
def test_the_parameter_at_a_mean_is_registered_per_family(family, param, mean, want):
    from graphvae.compile.distributions import parameter_at_mean

    got = parameter_at_mean(family, param, torch.tensor(mean, dtype=torch.float64))
    assert (got is None) if want is None else abs(float(got) - want) < 1e-12


def test_a_registered_mean_map_is_checked_against_the_family():
    from graphvae.compile.distributions import at_mean

    with pytest.raises(ValueError, match="registered already"):
        at_mean("Bernoulli", "logits")(lambda m: m)
    with pytest.raises(ValueError, match="not one of Normal's network parameters"):
        at_mean("Normal", "df")(lambda m: m)


def test_the_trainer_starts_a_new_runs_canvas_at_the_mean_and_a_resumed_run_keeps_its_own(tmp_path, monkeypatch):
    from graphvae.compile.model import CompiledModel
    from graphvae.data.synthetic import npz_bytes
    from graphvae.train.config import TrainConfig
    from graphvae.train.loop import train

    rng = np.random.default_rng(0)
    x = (rng.random((40, 8, 8)) < 0.1).astype(np.float32)
    x[:, 0, :] = 1.0  # a row always on, the rest mostly off
    n = rng.integers(0, 3, 40)
    w = np.where((np.arange(2) < n[:, None])[..., None], rng.uniform(0, 5, (40, 2, 2)), np.nan).astype(np.float32)
    (tmp_path / "d.npz").write_bytes(npz_bytes({"x": x, "n": n, "w": w}))
    (tmp_path / "slots.gvae").write_text(SLOTS)
    seen, calls = [], []
    start = CompiledModel.start_canvases
    monkeypatch.setattr(CompiledModel, "start_canvases", lambda self, means: calls.append(1) or start(self, means))
    cfg = TrainConfig(data=str(tmp_path / "d.npz"), epochs=1, batch_size=10, labels=10, device="cpu", validation=0.0)
    canvas = lambda m: m.decoder["x"].nets["logits"].bias.detach().clone()  # noqa: E731
    train(str(tmp_path / "slots.gvae"), cfg, tmp_path / "run", progress=False, max_steps=1, log=lambda *a: None,
          on_step=lambda m, step: seen.append(canvas(m)))
    assert calls == [1]
    assert (seen[0][0] > 6.0).all() and (seen[0][1:] < 0.0).all()  # one Adam step (lr 1e-3) from the logits of the means
    train(None, None, tmp_path / "run", resume=True, progress=False, max_steps=2, log=lambda *a: None,
          on_step=lambda m, step: seen.append(canvas(m)))
    assert calls == [1]  # the resumed run keeps its trained canvas
    assert (seen[1] - seen[0]).abs().max() < 0.01


def test_a_labelled_only_baseline_starts_its_canvas_at_its_labelled_images_mean(tmp_path, monkeypatch):
    """The labelled-only baseline sees no unlabelled image, its canvas's start included."""
    from graphvae.compile.model import CompiledModel
    from graphvae.data.synthetic import npz_bytes
    from graphvae.train.config import TrainConfig
    from graphvae.train.loop import train

    rng = np.random.default_rng(0)
    n = rng.integers(0, 3, 40)
    w = np.where((np.arange(2) < n[:, None])[..., None], rng.uniform(0, 5, (40, 2, 2)), np.nan).astype(np.float32)
    x = (rng.random((40, 8, 8)) < 0.5).astype(np.float32)
    (tmp_path / "d.npz").write_bytes(npz_bytes({"x": x, "n": n, "w": w}))
    (tmp_path / "slots.gvae").write_text(SLOTS)
    means = []
    start = CompiledModel.start_canvases
    monkeypatch.setattr(CompiledModel, "start_canvases", lambda self, m: means.append(m["x"]) or start(self, m))
    labelled = np.array([0, 3, 5])
    for only in (False, True):
        cfg = TrainConfig(data=str(tmp_path / "d.npz"), epochs=1, batch_size=10, labels=3, device="cpu",
                          validation=0.0, labelled_only=only)
        train(str(tmp_path / "slots.gvae"), cfg, tmp_path / f"run{only}", progress=False, max_steps=1,
              log=lambda *a: None, labelled=labelled)
    from graphvae.data import prepare_data

    train_x = prepare_data(load_spec(str(tmp_path / "slots.gvae")), data=str(tmp_path / "d.npz"), validation=0.0,
                           labels=3, seed=0, labelled=labelled).train["x"]  # the split's training images
    torch.testing.assert_close(means[0], torch.from_numpy(train_x.mean(0, dtype=np.float64)))
    torch.testing.assert_close(means[1], torch.from_numpy(train_x[labelled].mean(0, dtype=np.float64)))
    assert not torch.equal(means[0], means[1])


GLIMPSE_AT_LOCATE = """model glimpse_at_locate

x : observed   binary[12, 12]
y : supervised categorical[3]

encoder {
  w | x    = locate(4, 8)
  g | x, w = glimpse(6)
  y | g    ~ Categorical(conv(4, dense = 8))
}

decoder {
  y        ~ Categorical(uniform)
  x | y    ~ Bernoulli(mlp(8))
}

objective {
  y = enumerate
}
"""


def test_a_glimpse_reads_at_a_locate_nodes_position_and_the_gradient_reaches_the_locate(tmp_path):
    """A locate node is a position: the glimpse's window is the image at the locate's value, and the
    loss's gradient flows through the bilinear window into the locate's convolutions."""
    path = tmp_path / "glimpse_at_locate.gvae"
    path.write_text(GLIMPSE_AT_LOCATE)
    model = compile_spec(load_spec(path))
    x = torch.bernoulli(torch.rand(4, 12, 12, generator=torch.Generator().manual_seed(0)))
    where = model.encoder["w"]([x])
    assert where.shape == (4, 2)
    window = model.encoder["g"]([x, where])
    direct = glimpse(6, 6, shape=(12, 12))([x, where])
    torch.testing.assert_close(window, direct)
    model.loss({"x": x, "y": torch.tensor([0, 2, -1, -1])}).backward()
    assert model.encoder["w"].convs[0].weight.grad.abs().sum() > 0


ERASE_CHAIN = """
model erase_chain

plate k < 2 count n

x    : observed   binary[12, 12]
n    : supervised categorical[3]
w[k] : supervised real[2]
y[k] : supervised categorical[3]

encoder {
  n | x                    ~ Categorical(conv(4, dense = 16))
  r[k] | x, r[k-1], w[k-1] = erase(6)
  w[k] | r[k], n           ~ Normal(loc = locate(4), scale = 1)
  g[k] | r[k], w[k]        = glimpse(6)
  y[k] | g[k]              ~ Categorical(mlp(16))
}

decoder {
  n                        ~ Categorical(uniform)
  y[k]                     ~ Categorical(uniform)
  w[k]                     ~ Normal(3, 2)
  p[k] | y[k]              = linear(36)
  x | p[*], w[*]           ~ Bernoulli(paste(6))
}

objective {
  n = enumerate
  y = enumerate
}
"""


def test_a_plate_of_erases_chains_and_the_gradient_reaches_the_earlier_slots_locate(tmp_path):
    """Slot 1 locates in x less slot 0's window (the shared erase, its r[-1] and w[-1] absent at slot 0),
    and an unlabelled loss's gradient reaches slot 0's position through slot 1's erased image."""
    path = tmp_path / "erase_chain.gvae"
    path.write_text(ERASE_CHAIN)
    model = compile_spec(load_spec(path))
    assert model.encoder["r_0"] is model.encoder["r_1"]
    x = torch.bernoulli(torch.rand(3, 12, 12, generator=torch.Generator().manual_seed(0)))
    w0 = torch.tensor([[1.0, 2.0], [0.0, 0.0], [5.5, 6.0]])
    r0 = model.encoder["r_0"]([x, None, None])
    torch.testing.assert_close(r0, x)
    r1 = model.encoder["r_1"]([x, r0, w0])
    torch.testing.assert_close(r1, erase(6, 6, shape=(12, 12))([x, w0]))
    at = w0.clone().requires_grad_(True)  # slot 1's position moves with slot 0's, through the erased image
    loc = model.encoder["w_1"].params([model.encoder["r_1"]([x, r0, at]), torch.tensor([2, 2, 2])])["loc"]
    (grad,) = torch.autograd.grad(loc.sum(), at)
    assert grad.abs().sum() > 0
    batch = {"x": x, "n": torch.tensor([2, 2, 2]), "w_0": w0, "w_1": torch.full((3, 2), 3.0),
             "y_0": torch.tensor([0, 1, 2]), "y_1": torch.tensor([1, 1, 0])}
    assert torch.isfinite(model.loss(batch)) and torch.isfinite(model.loss({"x": x}))


def test_the_shipped_erase_spec_trains_and_evaluates_on_digits_canvases(tmp_path, capsys):
    """specs/erase_digits.gvae as its header says: `graphvae data make multi-mnist --source digits
    --max-digits 2` (scikit-learn's digits, no download), one epoch with 100 labels, then eval
    reports the count's, each slot's digit and position errors."""
    from pathlib import Path

    from graphvae.cli.main import main

    spec = Path(__file__).resolve().parents[1] / "specs" / "erase_digits.gvae"
    data, run = tmp_path / "md.npz", tmp_path / "run"
    torch.set_num_threads(1)
    assert main(["data", "make", "multi-mnist", "--source", "digits", "--max-digits", "2", "--count", "300",
                 "--out", str(data)]) == 0
    assert main(["train", str(spec), "--data", str(data), "--set", "labels=100", "--epochs", "1", "--out", str(run),
                 "--no-progress", "--device", "cpu"]) == 0
    capsys.readouterr()
    assert main(["eval", str(run), "--data", str(data), "--device", "cpu", "-k", "2"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("count", "digits_0", "digits_1", "positions_0", "positions_1"))
