"""identity (graphvae.spec.networks): a family parameter that is its parents' values, checked against
hand-built values, the Normal density by hand, a plate's slot 0, and a supervised position that pins
down the locate node a glimpse reads."""

from __future__ import annotations

import math

import pytest
import torch

from graphvae.compile.compiler import compile_spec
from graphvae.compile.nets import Identity, parameter_count
from graphvae.compile.parents import ParentInput
from graphvae.spec.loader import load_spec
from graphvae.spec.validate.memory import estimate

torch.set_num_threads(1)

T = torch.tensor


@pytest.mark.parametrize("parents, values, head, want", [
    # one parent of the variable's shape: its values
    ([("v", (2,))], [T([[1.0, 2.0], [3.0, 4.0]])], (2,), T([[1.0, 2.0], [3.0, 4.0]])),
    # two parents: concatenated in order
    ([("a", (1,)), ("b", (1,))], [T([[3.0]]), T([[4.0]])], (2,), T([[3.0, 4.0]])),
    # a scalar and a [2] parent into a [3]
    ([("r", ()), ("v", (2,))], [T([7.0]), T([[8.0, 9.0]])], (3,), T([[7.0, 8.0, 9.0]])),
    # an image parent, flattened row by row
    ([("m", (2, 2))], [T([[[1.0, 2.0], [3.0, 4.0]]])], (4,), T([[1.0, 2.0, 3.0, 4.0]])),
    # a [4] parent shaped as a [2, 2] variable
    ([("v", (4,))], [T([[1.0, 2.0, 3.0, 4.0]])], (2, 2), T([[[1.0, 2.0], [3.0, 4.0]]])),
    # an absent parent (a plate's slot 0 reading slot -1) enters as zeros
    ([("s", (2,)), ("v", (2,))], [None, T([[5.0, 6.0]])], (4,), T([[0.0, 0.0, 5.0, 6.0]])),
    # every parent absent: zeros of the variable's shape
    ([("s", (2,))], [None], (2,), T([0.0, 0.0])),
])
def test_identity_is_its_parents_values(parents, values, head, want):
    module = Identity(tuple(ParentInput(n, s) for n, s in parents), {"loc": head})
    torch.testing.assert_close(module(values)["loc"], want)
    assert parameter_count(module) == 0


def test_identity_broadcasts_a_parents_sample_dims_over_the_others():
    """A parent sampled S times ((S, B, 1)) beside one per example ((B, 1)): (S, B, 2)."""
    module = Identity((ParentInput("a", (1,)), ParentInput("b", (1,))), {"loc": (2,)})
    a, b = torch.randn(5, 3, 1), torch.randn(3, 1)
    out = module([a, b])["loc"]
    assert out.shape == (5, 3, 2)
    torch.testing.assert_close(out[..., 0:1], a)
    torch.testing.assert_close(out[..., 1:2], b.expand(5, 3, 1))


PINNED = """model pinned

plate k < 2 count n

x      : observed   binary[12, 12]
n      : supervised categorical[3]
w[k]   : supervised real[2]
y[k]   : supervised categorical[3]

encoder {
  n | x                  ~ Categorical(conv(4, dense = 16))
  loc[k] | x, n, loc[k-1] = locate(4, 8)
  w[k] | loc[k]          ~ Normal(loc = identity, scale = 1)
  g[k] | x, loc[k]       = glimpse(6)
  y[k] | g[k]            ~ Categorical(mlp(16))
}

decoder {
  n                      ~ Categorical(uniform)
  y[k]                   ~ Categorical(uniform)
  w[k]                   ~ Normal(3, 2)
  p[k] | y[k]            = linear(36)
  x | p[*], w[*]         ~ Bernoulli(paste(6))
}

objective {
  n = enumerate
  y = enumerate
}
"""


@pytest.fixture(scope="module")
def pinned(tmp_path_factory):
    path = tmp_path_factory.mktemp("identity") / "pinned.gvae"
    path.write_text(PINNED)
    torch.manual_seed(0)
    return path, compile_spec(load_spec(path))


def test_a_supervised_position_through_identity_is_scored_at_the_locate_nodes_value(pinned):
    """q(w[k] | loc[k]) is Normal(loc[k], 1), by hand; the glimpse reads at loc[k]; and the labelled
    position's log-density trains the locate's convolutions."""
    _, model = pinned
    x = torch.bernoulli(torch.rand(3, 12, 12, generator=torch.Generator().manual_seed(0)))
    n = torch.tensor([2, 1, 2])
    loc0 = model.encoder["loc_0"]([x, n, None])
    loc1 = model.encoder["loc_1"]([x, n, loc0])
    params = model.encoder["w_1"].params([loc1])
    torch.testing.assert_close(params["loc"], loc1)
    w = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.5]])
    by_hand = (-0.5 * (w - loc1) ** 2 - 0.5 * math.log(2 * math.pi)).sum(-1)
    torch.testing.assert_close(model.encoder["w_1"].dist([loc1]).log_prob(w), by_hand)
    window = model.encoder["g_1"]([x, loc1])
    assert window.shape == (3, 36)
    batch = {"x": x, "n": n, "w_0": w, "w_1": w + 1, "y_0": torch.tensor([0, 1, 2]), "y_1": torch.tensor([1, -1, 0])}
    model.zero_grad()
    model.loss(batch).backward()
    assert model.encoder["loc_0"].convs[0].weight.grad.abs().sum() > 0
    assert torch.isfinite(model.loss({"x": x}))


def test_the_memory_estimate_counts_no_weights_for_identity(pinned):
    path, model = pinned
    assert estimate(load_spec(path)).weights == parameter_count(model)
    assert parameter_count(model.encoder["w_0"]) == 0  # Normal(loc = identity, scale = 1): no weights


def test_identity_round_trips_through_yaml(tmp_path, pinned, capsys):
    """fmt --to yaml writes {loc: identity}; the YAML checks and compiles to the same model: with the
    same weights, the same loss."""
    from graphvae.cli.main import main

    path, model = pinned
    yaml_path = tmp_path / "pinned.yaml"
    capsys.readouterr()
    assert main(["fmt", str(path), "--to", "yaml"]) == 0
    yaml_path.write_text(capsys.readouterr().out)
    assert "loc: identity" in yaml_path.read_text()
    assert main(["check", str(yaml_path)]) == 0
    twin = compile_spec(load_spec(yaml_path))
    twin.load_state_dict(model.state_dict())
    x = torch.bernoulli(torch.rand(4, 12, 12, generator=torch.Generator().manual_seed(1)))
    batch = {"x": x, "n": torch.tensor([0, 1, 2, -1]), "w_0": torch.full((4, 2), 3.0), "w_1": torch.full((4, 2), 5.0),
             "y_0": torch.tensor([-1, 1, 2, -1]), "y_1": torch.tensor([-1, -1, 0, -1])}
    torch.manual_seed(2)
    want = model.loss(batch)
    torch.manual_seed(2)
    torch.testing.assert_close(twin.loss(batch), want)


DIGITS = """model pinned_digits

plate k < 2 count count

x            : observed   real[16, 16]
count        : supervised categorical[3]
digits[k]    : supervised categorical[10]
positions[k] : supervised real[2]

encoder {
  count | x                   ~ Categorical(conv(8, 16, dense = 64))
  loc[k] | x, count, loc[k-1] = locate(8, 16, dense = 32)
  positions[k] | loc[k]       ~ Normal(loc = identity, scale = 1)
  g[k] | x, loc[k]            = glimpse(8)
  digits[k] | g[k]            ~ Categorical(mlp(64))
}

decoder {
  count                  ~ Categorical(uniform)
  digits[k]              ~ Categorical(uniform)
  positions[k]           ~ Normal(4, 3)
  p[k] | digits[k]       = linear(64)
  x | p[*], positions[*] ~ Normal(loc = paste(8), scale = 0.3)
}

objective {
  alpha  = 10
  count  = enumerate
  digits = relax(temperature = 0.66)
}
"""


def test_a_spec_with_identity_trains_and_evaluates_from_the_cli(tmp_path, capsys):
    """Two scikit-learn digits on 16x16 canvases, each slot's glimpse at the locate that its supervised
    position pins down: data make, one epoch, eval of every slot."""
    from graphvae.cli.main import main

    spec, data, run = tmp_path / "pinned_digits.gvae", tmp_path / "md.npz", tmp_path / "run"
    spec.write_text(DIGITS)
    assert main(["data", "make", "multi-mnist", "--source", "digits", "--max-digits", "2", "--count", "300",
                 "--out", str(data)]) == 0
    assert main(["train", str(spec), "--data", str(data), "--set", "labels=100", "--epochs", "1", "--out", str(run),
                 "--no-progress", "--device", "cpu", "--threads", "1"]) == 0
    capsys.readouterr()
    assert main(["eval", str(run), "--data", str(data), "--device", "cpu", "-k", "2"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("count", "digits_0", "digits_1", "positions_0", "positions_1"))
