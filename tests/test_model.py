"""CompiledModel: the M2 loss against a hand-written one, the API, and bad batches."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from graphvae.compile.compiler import compile_spec
from graphvae.errors import UserError
from graphvae.spec.parser import parse_dsl

torch.set_num_threads(1)


def compile_text(text: str, **overrides):
    spec, diags = parse_dsl(text, "<test>")
    assert spec is not None, diags
    return compile_spec(spec, **overrides)


M2 = """model m2small
x : observed binary[12]
y : supervised categorical[4]
z : latent real[3]
encoder {
  y | x    ~ Categorical(mlp(8))
  z | x, y ~ Normal(mlp(7))
}
decoder {
  z        ~ Normal(0, 1)
  y        ~ Categorical(uniform)
  x | y, z ~ Bernoulli(mlp(6))
}
objective {
  alpha   = 0.3
  samples = 2
  y       = enumerate
}
"""


def mlp(layers, h):
    (w1, b1), (w2, b2) = layers
    return F.linear(torch.relu(F.linear(h, w1, b1)), w2, b2)


def hand_written_m2_loss(model, x, y, alpha, samples):
    """Kingma et al.'s M2 with Siddharth et al.'s labelled term, written out with loops over classes.

    Noise: the compiled model runs the unlabelled examples first (one draw of shape
    (K, S, B_u, Z)) and then the labelled ones ((S, B_l, Z))."""
    k, zdim = 4, 3
    qy = model.encoder["y"].nets["logits"].linear_layers()
    qz = model.encoder["z"].nets["loc+scale"].linear_layers()
    px = model.decoder["x"].nets["logits"].linear_layers()
    lab = y >= 0
    xu, xl, yl = x[~lab], x[lab], y[lab]
    eps_u = torch.randn(k, samples, len(xu), zdim)
    eps_l = torch.randn(samples, len(xl), zdim)

    def log_normal(v, loc, scale):
        return (-0.5 * ((v - loc) / scale) ** 2 - torch.log(scale) - 0.5 * math.log(2 * math.pi)).sum(-1)

    def elbo_given(xs, onehot, eps):  # mean over samples of log p(x,y,z) - log q(z|x,y)
        out = mlp(qz, torch.cat([xs, onehot], -1))
        loc, scale = out[:, :zdim], torch.exp(out[:, zdim:])
        total = 0.0
        for s in range(samples):
            z = loc + scale * eps[s]
            logits = mlp(px, torch.cat([onehot, z], -1))
            log_px = -F.binary_cross_entropy_with_logits(logits, xs, reduction="none").sum(-1)
            log_pz = log_normal(z, torch.zeros(()), torch.ones(()))
            total = total + log_px + log_pz + math.log(1.0 / k) - log_normal(z, loc, scale)
        return total / samples

    log_qy_l = torch.log_softmax(mlp(qy, xl), -1).gather(1, yl[:, None])[:, 0]
    labelled = elbo_given(xl, F.one_hot(yl, k).float(), eps_l) - log_qy_l + (1 + alpha) * log_qy_l
    log_qy_u = torch.log_softmax(mlp(qy, xu), -1)
    unlabelled = 0.0
    for c in range(k):
        onehot = F.one_hot(torch.full((len(xu),), c), k).float()
        unlabelled = unlabelled + log_qy_u[:, c].exp() * (elbo_given(xu, onehot, eps_u[c]) - log_qy_u[:, c])
    return -(labelled.sum() + unlabelled.sum()) / len(x)


@pytest.mark.parametrize("labels", [[1, -1, 3, -1, -1, 0, -1], [-1] * 5, [2, 0, 1]])
def test_m2_loss_equals_hand_written(labels):
    torch.manual_seed(0)
    model = compile_text(M2).set_data_size(200, 20)  # alpha_scaling = dataset: alpha * N / N_l = 0.3 * 10
    y = torch.tensor(labels)
    x = torch.bernoulli(torch.full((len(y), 12), 0.4))
    torch.manual_seed(1)
    loss = model.loss({"x": x, "y": y})
    torch.manual_seed(1)
    expected = hand_written_m2_loss(model, x, y, alpha=3.0, samples=2)
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), abs=1e-5)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    expected_grads = torch.autograd.grad(expected, list(model.parameters()), allow_unused=True)
    for g, e in zip(grads, expected_grads):
        torch.testing.assert_close(g, e if e is not None else torch.zeros_like(g), atol=1e-5, rtol=1e-4)


# -- an exact (sampling-free) model: a supervised class and a Gaussian observation -------------
CLASSES = """model classes
x : observed real[2]
y : supervised categorical[3]
encoder {
  y | x ~ Categorical(linear)
}
decoder {
  y ~ Categorical(uniform)
  x | y ~ Normal(loc = linear, scale = 1)
}
"""


def test_mixed_batch_is_the_average_of_its_groups_and_order_free():
    """With the training set's size known, a labelled example weighs the same in any batch."""
    torch.manual_seed(2)
    model = compile_text(CLASSES).set_data_size(60, 6)  # a fixed classifier weight, whatever the batch
    x = torch.randn(6, 2)
    y = torch.tensor([0, -1, 2, -1, -1, 1])
    lab = y >= 0
    mixed = model.loss({"x": x, "y": y})
    only_l = model.loss({"x": x[lab], "y": y[lab]})
    only_u = model.loss({"x": x[~lab]})
    assert float(mixed.detach()) == pytest.approx(float((only_l * 3 / 6 + only_u * 3 / 6).detach()), abs=1e-5)
    perm = torch.tensor([5, 3, 0, 1, 4, 2])
    assert float(model.loss({"x": x[perm], "y": y[perm]}).detach()) == pytest.approx(float(mixed.detach()), abs=1e-5)


def test_log_marginal_sums_the_joint_over_labels():
    torch.manual_seed(3)
    model = compile_text(CLASSES)
    x = torch.randn(4, 2)
    with torch.no_grad():
        log_px = model.log_marginal({"x": x}, samples=1)
        joint = torch.stack([model.log_marginal({"x": x, "y": torch.full((4,), c)}, samples=1) for c in range(3)])
    torch.testing.assert_close(log_px, torch.logsumexp(joint, 0), atol=1e-5, rtol=0)
    mixed = model.log_marginal({"x": x, "y": torch.tensor([0, -1, 2, -1])}, samples=1)
    torch.testing.assert_close(mixed, torch.stack([joint[0, 0], log_px[1], joint[2, 2], log_px[3]]), atol=1e-5, rtol=0)


def test_predict_encode_reconstruct_and_sample_m2():
    torch.manual_seed(4)
    model = compile_text(M2)
    x = torch.bernoulli(torch.full((5, 12), 0.5))
    y = torch.tensor([3, -1, -1, 0, -1])
    with torch.no_grad():
        logits = model.encoder["y"].dist([x]).logits
        pred = model.predict({"x": x, "y": y}, "y")  # the label of y itself is not used
        assert torch.equal(pred, logits.argmax(-1))
        codes = model.encode({"x": x, "y": y})
        assert torch.equal(codes["y"], torch.where(y >= 0, y, logits.argmax(-1)))
        z_loc = model.encoder["z"].dist([x, codes["y"]]).mean
        torch.testing.assert_close(codes["z"], z_loc)
        recon = model.reconstruct({"x": x, "y": y})["x"]
        torch.testing.assert_close(recon, torch.sigmoid(model.decoder["x"].params([codes["y"], codes["z"]])["logits"]))
        draws = model.sample(6, given={"y": 2})
    assert set(draws) == {"x", "y", "z"}
    assert draws["x"].shape == (6, 12) and draws["z"].shape == (6, 3)
    assert torch.equal(draws["y"], torch.full((6,), 2))
    assert bool(((draws["x"] > 0) & (draws["x"] < 1)).all())  # means, not draws


STYLE_FIRST = """model sf
x : observed binary[12]
y : supervised categorical[4]
z : latent real[3]
encoder {
  z | x    ~ Normal(mlp(8))
  y | x, z ~ Categorical(mlp(8))
}
decoder {
  z        ~ Normal(0, 1)
  y        ~ Categorical(uniform)
  x | y, z ~ Bernoulli(mlp(8))
}
objective {
  samples = 2
  y       = enumerate
}
"""


@pytest.mark.parametrize("given, expected", [(None, 32), (5, 5), (100, 100)])
def test_predict_after_latents_averages_over_at_least_32_draws(given, expected, monkeypatch):
    from graphvae.compile import model as model_module

    torch.manual_seed(6)
    model = compile_text(STYLE_FIRST)
    seen = []
    original = model_module.CompiledModel._trace

    def spy(self, values, size, labelled, samples, *args, **kwargs):
        seen.append(samples)
        return original(self, values, size, labelled, samples, *args, **kwargs)

    monkeypatch.setattr(model_module.CompiledModel, "_trace", spy)
    pred = model.predict({"x": torch.bernoulli(torch.full((7, 12), 0.5))}, "y", samples=given)
    assert seen == [expected] and pred.shape == (7,) and bool(((pred >= 0) & (pred < 4)).all())


def test_predict_continuous_supervised_is_the_mean():
    torch.manual_seed(5)
    model = compile_text("""model reg
x : observed real[3]
r : supervised real[2]
encoder {
  r | x ~ Normal(linear)
}
decoder {
  r ~ Normal(0, 1)
  x | r ~ Normal(loc = mlp(4), scale = 0.5)
}
""")
    x = torch.randn(4, 3)
    with torch.no_grad():
        pred = model.predict({"x": x, "r": torch.full((4, 2), float("nan"))}, "r")
        torch.testing.assert_close(pred, model.encoder["r"].dist([x]).mean)
        loss = model.loss({"x": x, "r": torch.tensor([[0.5, 1.0], [float("nan")] * 2, [0.0, 0.0], [1.0, -1.0]])})
    assert math.isfinite(float(loss))


def test_predict_continuous_beside_an_enumerated_variable_it_does_not_read():
    """q(r | x, z) ignores the enumerated b, whose values are still particles beside z's samples: the
    mean broadcasts over them (it had S rows against the weights' 4 x S)."""
    torch.manual_seed(5)
    model = compile_text("""model reg
x : observed real[3]
b : supervised binary[2]
r : supervised real[2]
z : latent real[2]
encoder {
  b | x ~ Bernoulli(linear)
  z | x ~ Normal(linear)
  r | x, z ~ Normal(linear)
}
decoder {
  z ~ Normal(0, 1)
  b ~ Bernoulli(uniform)
  r | b ~ Normal(linear)
  x | r, z ~ Normal(loc = mlp(4), scale = 0.5)
}
objective { b = enumerate }
""")
    with torch.no_grad():
        pred = model.predict({"x": torch.randn(4, 3)}, "r")
    assert pred.shape == (4, 2) and bool(torch.isfinite(pred).all())


TWO_HEADS = """model two_heads
x : observed binary[6]
a : supervised categorical[3]
b : supervised categorical[4]
z : latent real[2]
encoder {
  a | x    ~ Categorical(mlp(5))
  z | x, a ~ Normal(linear)
  b | x, z ~ Categorical(mlp(5))
}
decoder {
  a ~ Categorical(uniform)
  b ~ Categorical(uniform)
  z ~ Normal(0, 1)
  x | a, b, z ~ Bernoulli(mlp(5))
}
objective { a = enumerate
  b = enumerate }
"""


@pytest.mark.parametrize("var, runs, skips", [("a", ["a"], ["z", "b"]), ("b", ["a", "z", "b"], [])])
def test_predict_runs_only_the_q_nodes_the_variable_depends_on(var, runs, skips):
    """A trace that stops at a variable runs its ancestors in q (a: none; b: a, then z), not the
    rest of q's order before it; a is exact (no draw), so its probabilities are the full trace's."""
    torch.manual_seed(3)
    model = compile_text(TWO_HEADS)
    assert model._q_ancestry(var) == runs
    called = []
    for name in ("a", "z", "b"):
        for net in model.encoder[name].nets.values():  # a factor's networks run when q reaches it
            net.register_forward_hook(lambda m, i, o, name=name: called.append(name))
    x = torch.bernoulli(torch.full((5, 6), 0.5))
    probs = model.predict_probs({"x": x}, var)
    assert set(called) == set(runs) and not set(called) & set(skips)
    if var == "a":
        with torch.no_grad():
            torch.testing.assert_close(probs, torch.softmax(model.encoder["a"].dist([x]).logits, -1))


def test_observed_categorical_takes_class_indices():
    torch.manual_seed(5)
    model = compile_text("""model words
x : observed categorical[5]
z : latent real[2]
encoder { z | x ~ Normal(mlp(4)) }
decoder {
  z ~ Normal(0, 1)
  x | z ~ Categorical(mlp(4))
}
""")
    loss = model.loss({"x": torch.tensor([0, 4, 2])})
    assert math.isfinite(float(loss.detach()))
    assert model.reconstruct({"x": torch.tensor([0, 4, 2])})["x"].dtype == torch.long  # the mode, not a NaN mean
    for bad, message in [(torch.tensor([0.0, 1.0]), "must be an integer"), (torch.tensor([0, 5]), "class 5 out of range"),
                         (torch.tensor([-1, 0]), "observed data cannot be missing")]:
        with pytest.raises(UserError, match=message):
            model.loss({"x": bad})


def test_state_dict_round_trip_and_double():
    torch.manual_seed(6)
    a, b = compile_text(M2), compile_text(M2)
    b.load_state_dict(a.state_dict())
    x = torch.bernoulli(torch.full((3, 12), 0.5))
    batch = {"x": x, "y": torch.tensor([1, -1, -1])}
    torch.manual_seed(7)
    la = a.loss(batch)
    torch.manual_seed(7)
    assert float(b.loss(batch).detach()) == pytest.approx(float(la.detach()), abs=1e-6)
    b.double()
    assert b.loss(batch).dtype == torch.float64


def test_torch_compile_eager_backend_matches():
    torch.manual_seed(8)
    model = compile_text(CLASSES)
    x, y = torch.randn(5, 2), torch.tensor([0, -1, 2, -1, 1])
    compiled = torch.compile(model, backend="eager")
    with torch.no_grad():
        assert float(compiled({"x": x, "y": y})) == pytest.approx(float(model.loss({"x": x, "y": y})), abs=1e-6)


# -- bad input -------------------------------------------------------------------------------
X = torch.bernoulli(torch.full((4, 12), 0.5))
Y = torch.tensor([1, -1, 0, -1])
NAN_X = X.clone()
NAN_X[2, 5] = float("nan")

BAD_BATCHES = [
    ("not a dict", [X], r"dict of tensors"),
    ("unknown key", {"x": X, "yy": Y}, r"'yy' is not a variable.*did you mean 'y'"),
    ("latent key", {"x": X, "z": torch.zeros(4, 3)}, r"'z' is a latent variable"),
    ("missing observed", {"y": Y}, r"lacks observed variable 'x'.*\(B, 12\)"),
    ("wrong width", {"x": X[:, :11]}, r"batch\['x'\] should have shape \(B, 12\).*\(4, 11\)"),
    ("missing batch dim", {"x": X[0]}, r"should have shape \(B, 12\)"),
    ("label shape", {"x": X, "y": Y[:, None]}, r"batch\['y'\] should have shape \(B\)"),
    ("integer data", {"x": X.long()}, r"floating-point"),
    ("float labels", {"x": X, "y": Y.float()}, r"integer \(long\) tensor of class indices"),
    ("label too big", {"x": X, "y": torch.tensor([1, 4, 0, -1])}, r"label 4 out of range.*0\.\.3"),
    ("label below -1", {"x": X, "y": torch.tensor([1, -2, 0, -1])}, r"label -2 out of range"),
    ("NaN in data", {"x": NAN_X}, r"contains NaN in 1 example"),
    ("sizes differ", {"x": X, "y": Y[:3]}, r"has 3 examples but batch\['x'\] has 4"),
    ("not a tensor", {"x": X.numpy()}, r"must be a torch.Tensor"),
    ("empty", {"x": X[:0]}, r"empty"),
]


@pytest.mark.parametrize("case, batch, message", BAD_BATCHES, ids=[c[0] for c in BAD_BATCHES])
@pytest.mark.parametrize("call", ["loss", "log_marginal", "encode"])
def test_bad_batch_is_a_user_error(case, batch, message, call):
    model = compile_text(M2)
    with pytest.raises(UserError, match=message):
        getattr(model, call)(batch)


@pytest.mark.parametrize("call, args, message", [
    ("predict", ({"x": X}, "z"), r"'z' is not a supervised variable.*supervised: y"),
    ("sample", (0,), r"n >= 1"),
    ("sample", (2, {"x": X[:2]}), r"cannot clamp 'x'"),
    ("sample", (2, {"y": torch.tensor([0.5, 1.0])}), r"class indices"),
    ("sample", (3, {"y": torch.tensor([0, 1])}), r"given\['y'\] should have shape"),
    ("log_marginal", ({"x": X}, 0), r"samples >= 1"),
])
def test_bad_api_arguments(call, args, message):
    model = compile_text(M2)
    with pytest.raises(UserError, match=message):
        getattr(model, call)(*args)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_runs_on_cuda():
    torch.manual_seed(9)
    model = compile_text(M2).to("cuda")
    x = torch.bernoulli(torch.full((5, 12), 0.5)).cuda()
    y = torch.tensor([1, -1, 3, -1, -1]).cuda()
    loss = model.loss({"x": x, "y": y})
    loss.backward()
    assert loss.device.type == "cuda" and math.isfinite(float(loss.detach()))
    assert model.predict({"x": x}, "y").device.type == "cuda"
    assert model.sample(3, given={"y": 1})["x"].device.type == "cuda"
    with pytest.raises(UserError, match="is on cpu but the model is on cuda"):
        model.loss({"x": x.cpu()})
