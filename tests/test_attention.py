"""glimpse and paste (graphvae.spec.networks): windows read and placed, checked against hand-computed
values, finite differences in the position, and the count's zeroing of a plate's patches."""

from __future__ import annotations

import pytest
import torch

from graphvae.compile.compiler import compile_spec
from graphvae.compile.nets import Glimpse, ParentInput, Paste
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


@pytest.mark.parametrize("which", ["glimpse", "paste"])
def test_the_gradient_in_the_position_matches_finite_differences(which):
    torch.manual_seed(0)
    image, patch, weights = torch.randn(1, 6, 7, dtype=torch.float64), torch.randn(1, 6, dtype=torch.float64), None
    if which == "glimpse":
        net = glimpse(3, 2).double()
        weights = torch.randn(1, 6, dtype=torch.float64)
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
