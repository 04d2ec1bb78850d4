"""Numerics of the semi-supervised objective: closed forms, quadrature, exact sums, gradients."""

from __future__ import annotations

import math

import pytest
import torch

from graphvae.compile.compiler import compile_spec
from graphvae.spec.parser import parse_dsl

torch.set_num_threads(1)


def compile_text(text: str, **overrides):
    spec, diags = parse_dsl(text, "<test>")
    assert spec is not None, diags
    return compile_spec(spec, **overrides)


def set_linear(layer, weight, bias):
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(weight, dtype=layer.weight.dtype).reshape(layer.weight.shape))
        layer.bias.copy_(torch.as_tensor(bias, dtype=layer.bias.dtype).reshape(layer.bias.shape))


# -- one-dimensional linear Gaussian: z ~ N(0, 1), x | z ~ N(a z + b, s) ------------------------
LG = """model lg
x : observed real[1]
z : latent real[1]
encoder {
  z | x ~ Normal(linear)
}
decoder {
  z ~ Normal(0, 1)
  x | z ~ Normal(loc = linear, scale = %s)
}
"""
A, B, S = 1.5, -0.5, 0.5


def linear_gaussian(c, d, e, f, samples=1):
    """q(z|x) = N(c x + d, exp(e x + f)); p as above."""
    model = compile_text(LG % S, samples=samples)
    set_linear(model.encoder["z"].nets["loc+scale"].first, [[c], [e]], [d, f])
    set_linear(model.decoder["x"].nets["loc"].first, [[A]], [B])
    return model


def exact_posterior():
    var = 1.0 / (1.0 + A * A / S ** 2)
    return var * A / S ** 2, -var * A * B / S ** 2, 0.0, 0.5 * math.log(var)  # c, d, e, f


def closed_elbo(x, c, d, e, f):
    m, v = c * x + d, math.exp(e * x + f) ** 2
    rec = -0.5 * math.log(2 * math.pi * S ** 2) - ((x - A * m - B) ** 2 + A * A * v) / (2 * S ** 2)
    prior = -0.5 * math.log(2 * math.pi) - (m * m + v) / 2
    entropy = 0.5 * math.log(2 * math.pi * v) + 0.5
    return rec + prior + entropy


def log_px(x):
    var = A * A + S ** 2
    return -0.5 * math.log(2 * math.pi * var) - (x - B) ** 2 / (2 * var)


XS = [-1.0, 0.3, 2.0]


@pytest.mark.parametrize("x", XS)
@pytest.mark.parametrize("k", [1, 5, 50])
def test_exact_posterior_makes_elbo_and_iwae_equal_log_px(x, k):
    torch.manual_seed(0)
    model = linear_gaussian(*exact_posterior(), samples=k)
    batch = {"x": torch.tensor([[x]])}
    _, terms = model.loss(batch, terms=True)
    assert float(terms["elbo"]) == pytest.approx(log_px(x), abs=1e-5)
    assert float(model.log_marginal(batch, samples=k).detach()[0]) == pytest.approx(log_px(x), abs=1e-5)


@pytest.mark.parametrize("x", XS)
def test_elbo_estimate_matches_closed_form(x):
    torch.manual_seed(1)
    params = (0.2, 0.1, 0.3, -0.7)  # a deliberately poor q
    n = 100_000
    model = linear_gaussian(*params, samples=n)
    with torch.no_grad():
        _, terms = model.loss({"x": torch.tensor([[x]])}, terms=True)
        spread = float(model.log_marginal({"x": torch.full((n, 1), x)}, samples=1).std())  # per-sample ELBO sd
    assert float(terms["elbo"]) == pytest.approx(closed_elbo(x, *params), abs=5 * spread / math.sqrt(n))
    assert float(terms["elbo"]) < log_px(x)


def test_iwae_with_one_sample_is_the_elbo_same_noise():
    params = (0.2, 0.1, 0.3, -0.7)
    model = linear_gaussian(*params, samples=1)
    batch = {"x": torch.tensor([[0.3], [2.0], [-1.0]])}
    torch.manual_seed(5)
    _, terms = model.loss(batch, terms=True)
    torch.manual_seed(5)
    iwae = model.log_marginal(batch, samples=1)
    assert float(iwae.detach().mean()) == pytest.approx(float(terms["elbo"]), abs=1e-5)


def test_iwae_increases_with_k_towards_log_px():
    torch.manual_seed(2)
    x, reps = 2.0, 4000
    params = (0.2, 0.1, 0.3, -0.7)
    model = linear_gaussian(*params)
    batch = {"x": torch.full((reps, 1), x)}
    means, errs = [], []
    for k in (1, 4, 16, 128):
        with torch.no_grad():
            est = model.log_marginal(batch, samples=k)
        means.append(float(est.mean()))
        errs.append(float(est.std()) / math.sqrt(reps))
    assert means[0] == pytest.approx(closed_elbo(x, *params), abs=4 * errs[0] + 1e-3)
    for lo, hi, e_lo, e_hi in zip(means, means[1:], errs, errs[1:]):
        assert hi > lo + 2 * (e_lo + e_hi) or hi > lo  # strictly increasing on average
        assert hi > lo
    assert means[-1] < log_px(x) + 4 * errs[-1]
    assert abs(means[-1] - log_px(x)) < abs(means[0] - log_px(x)) / 10


# -- style_first shrunk to a one-dimensional z: log q(y|x) by quadrature ---------------------
STYLE_FIRST_1D = """model style_first_1d
x : observed binary[4]
y : supervised categorical[3]
z : latent real[1]
encoder {
  h | x = mlp(6)
  z | h ~ Normal(linear)
  y | z, h ~ Categorical(mlp(5, activation = tanh))
}
decoder {
  z ~ Normal(0, 1)
  y ~ Categorical(uniform)
  x | y, z ~ Bernoulli(mlp(5))
}
objective {
  y = relax(temperature = 0.5)
}
"""


def quadrature_log_qy(model, x, y):
    """log q(y|x) = log of the integral of q(z|x) q(y|z, x) over a fine grid of z."""
    enc = model.encoder
    with torch.no_grad():
        h = enc["h"]([x[None]])  # (1, 6)
        qz = enc["z"].dist([h])
        loc, scale = float(qz.mean[0, 0]), float(qz.stddev[0, 0])
        z = torch.linspace(loc - 12 * scale, loc + 12 * scale, 40001, dtype=h.dtype)[:, None]  # (G, 1)
        log_qz = qz.log_prob(z)  # (G,)
        log_qy = enc["y"].dist([z, h.expand(len(z), -1)]).log_prob(torch.full((len(z),), y))
        integrand = torch.exp(log_qz + log_qy).double()
        return math.log(float(torch.trapezoid(integrand, z[:, 0].double())))


def test_style_first_log_qy_converges_to_quadrature():
    torch.manual_seed(3)
    model = compile_text(STYLE_FIRST_1D)
    with torch.no_grad():  # a q(y|z) that depends strongly on z, so the weights are far from uniform
        layer = model.encoder["y"].nets["logits"].first
        layer.weight[:, 0] = torch.tensor([4.0, -3.0, 5.0, 2.0, -4.0])
        model.encoder["y"].nets["logits"].rest[1].weight.mul_(4.0)
        model.encoder["z"].nets["loc+scale"].first.bias[1] = 0.5
    x, y = torch.tensor([1.0, 0.0, 1.0, 1.0]), 2
    exact = quadrature_log_qy(model, x, y)
    reps = 200
    batch = {"x": x.expand(reps, 4).clone(), "y": torch.full((reps,), y)}
    errors = []
    for s in (1, 10, 100, 10_000):
        model.config = model.config.__class__(**{**model.config.__dict__, "samples": s})
        with torch.no_grad():
            _, terms = model.loss(batch, terms=True)
        assert float(terms["n_labelled/y"]) == reps
        errors.append(abs(float(terms["classifier/y"]) - exact))
        assert float(terms["ess/y"]) <= s + 1e-4
    assert errors[0] > 0.1 and errors[0] > errors[1] > errors[2], errors  # the log-mean-exp's bias falls with S
    assert errors[3] < 0.005, errors  # (float32 log-densities set the floor)


M2_TINY = """model m2tiny
x : observed binary[5]
y : supervised categorical[3]
z : latent real[2]
encoder {
  y | x ~ Categorical(mlp(4))
  z | x, y ~ Normal(mlp(4))
}
decoder {
  z ~ Normal(0, 1)
  y ~ Categorical(uniform)
  x | y, z ~ Bernoulli(mlp(4))
}
objective {
  samples = 6
}
"""


def test_label_without_latent_ancestor_gives_exact_q_y():
    torch.manual_seed(4)
    model = compile_text(M2_TINY)
    x = torch.bernoulli(torch.full((7, 5), 0.5))
    y = torch.tensor([0, 2, 1, 1, 0, 2, 1])
    _, terms = model.loss({"x": x, "y": y}, terms=True)
    with torch.no_grad():
        exact = model.encoder["y"].dist([x]).log_prob(y).mean()
    assert float(terms["classifier/y"]) == pytest.approx(float(exact), abs=1e-5)
    assert float(terms["ess/y"]) == pytest.approx(6.0, abs=1e-4)


# -- a discrete latent: enumeration against the exact sum; relax and reinforce -----------------
MIXTURE = """model mixture
x : observed real[2]
c : latent categorical[3]
encoder {
  c | x ~ Categorical(linear)
}
decoder {
  c ~ Categorical(uniform)
  x | c ~ Normal(loc = linear, scale = 0.8)
}
objective {
  c = %s
}
"""


def mixture(method, samples=1):
    torch.manual_seed(6)
    model = compile_text(MIXTURE % method, samples=samples)
    set_linear(model.encoder["c"].nets["logits"].first, [[0.5, -1.0], [1.0, 0.3], [-0.2, 0.4]], [0.1, -0.3, 0.2])
    set_linear(model.decoder["x"].nets["loc"].first, [[1.0, -1.0, 0.5], [0.2, 0.7, -1.5]], [0.3, -0.1])
    return model


def exact_mixture_elbo(x):
    """sum_c q(c|x) [log p(x|c) + log p(c) - log q(c|x)], written out."""
    w_q = torch.tensor([[0.5, -1.0], [1.0, 0.3], [-0.2, 0.4]])
    b_q = torch.tensor([0.1, -0.3, 0.2])
    w_p = torch.tensor([[1.0, -1.0, 0.5], [0.2, 0.7, -1.5]])
    b_p = torch.tensor([0.3, -0.1])
    log_q = torch.log_softmax(x @ w_q.T + b_q, -1)  # (B, 3)
    total = torch.zeros(len(x))
    for c in range(3):
        loc = w_p[:, c] + b_p  # one-hot(c) through the linear map
        log_px = (-0.5 * ((x - loc) / 0.8) ** 2 - math.log(0.8) - 0.5 * math.log(2 * math.pi)).sum(-1)
        total = total + log_q[:, c].exp() * (log_px + math.log(1 / 3) - log_q[:, c])
    return total


X_MIX = torch.tensor([[0.5, -1.0], [2.0, 0.1], [-1.0, 1.5]])


def test_enumeration_equals_exact_sum():
    model = mixture("enumerate")
    loss, terms = model.loss({"x": X_MIX}, terms=True)
    loss = loss.detach()
    assert float(loss) == pytest.approx(float(-exact_mixture_elbo(X_MIX).mean()), abs=1e-5)
    assert float(model.log_marginal({"x": X_MIX}, samples=3).detach().mean()) >= float(terms["elbo"]) - 1e-5


def _exact_grad():
    model = mixture("enumerate")
    model.loss({"x": X_MIX}).backward()
    return model.encoder["c"].nets["logits"].first.weight.grad.clone()


@pytest.mark.parametrize("samples", [1, 20])
def test_reinforce_is_unbiased_in_value_and_gradient(samples):
    reps = 40_000 // samples
    model = mixture("reinforce", samples=samples)
    x = X_MIX.repeat(reps, 1)
    loss, terms = model.loss({"x": x}, terms=True)
    loss.backward()
    assert float(loss.detach()) == pytest.approx(float(-exact_mixture_elbo(X_MIX).mean()), abs=0.02)
    grad = model.encoder["c"].nets["logits"].first.weight.grad
    torch.testing.assert_close(grad, _exact_grad(), atol=0.02, rtol=0.05)


def test_relax_scores_kl_with_relaxed_densities():
    temperature = 0.1
    model = mixture(f"relax(temperature = {temperature})", samples=50_000)
    with torch.no_grad():
        _, terms = model.loss({"x": X_MIX[:1]}, terms=True)
        # the KL term recomputed from value-space RelaxedOneHotCategorical densities (float64: no underflow)
        logits = model.encoder["c"].dist([X_MIX[:1]]).logits.double()
        t = torch.tensor(temperature, dtype=torch.float64)
        q = torch.distributions.RelaxedOneHotCategorical(t, logits=logits, validate_args=False)
        p = torch.distributions.RelaxedOneHotCategorical(t, logits=torch.zeros(3, dtype=torch.float64),
                                                         validate_args=False)
        draws = q.sample((200_000,))
        kl = (q.log_prob(draws) - p.log_prob(draws)).mean()
    assert float(terms["kl/c"]) == pytest.approx(float(kl), abs=0.02)


def test_relax_reconstruction_approaches_enumeration_as_temperature_falls():
    """The relaxed objective is its own (biased) objective: its KL term is that of two Concrete
    densities (temperature-invariant), but its reconstruction term tends to the exact one."""
    with torch.no_grad():
        _, exact = mixture("enumerate").loss({"x": X_MIX[:1]}, terms=True)
        gaps = []
        for temperature in (0.3, 0.1, 0.02):
            _, terms = mixture(f"relax(temperature = {temperature})", samples=50_000).loss({"x": X_MIX[:1]}, terms=True)
            gaps.append(abs(float(terms["reconstruction"]) - float(exact["reconstruction"])))
    assert gaps == sorted(gaps, reverse=True), gaps
    assert gaps[-1] < 0.03, gaps


# -- alpha, beta and gradcheck --------------------------------------------------------------------
def test_alpha_scaling_conventions():
    x = torch.bernoulli(torch.full((8, 5), 0.5))
    y = torch.tensor([0, 1, -1, -1, -1, -1, -1, -1])
    out = {scaling: compile_text(M2_TINY, alpha=0.5, alpha_scaling=scaling)
           for scaling in ("per_example", "labelled_fraction")}
    out["labelled_fraction"].load_state_dict(out["per_example"].state_dict())
    losses, cls = {}, {}
    for scaling, model in out.items():
        torch.manual_seed(9)
        losses[scaling], terms = model.loss({"x": x, "y": y}, terms=True)
        cls[scaling] = float(terms["classifier/y"])
    # labelled_fraction weights log q(y|x) of each labelled example by alpha * N / N_l instead of alpha
    extra = 0.5 * (8 / 2 - 1) * cls["per_example"] * 2 / 8
    assert float(losses["labelled_fraction"].detach()) == pytest.approx(float(losses["per_example"].detach()) - extra, abs=1e-5)


@pytest.mark.parametrize("scaling, data_size, weight", [
    ("per_example", None, 0.5),
    ("labelled_fraction", None, 0.5 * 8 / 2),
    ("dataset", (1000, 10), 0.5 * 1000 / 10),  # Kingma's alpha * N / N_l of the training set
    ("dataset", None, 0.5 * 8 / 2),  # not told the training set: the batch stands for it
    ("per_example", (1000, 10), 0.5),
])
def test_the_classifier_weight_of_each_labelled_example(scaling, data_size, weight):
    """loss(scaling) = loss(no classifier term) - weight * sum_labelled log q(y|x) / B, B = 8."""
    x = torch.bernoulli(torch.full((8, 5), 0.5))
    y = torch.tensor([0, 1, -1, -1, -1, -1, -1, -1])
    model = compile_text(M2_TINY, alpha=0.5, alpha_scaling=scaling)
    zero = compile_text(M2_TINY, alpha=0.0, alpha_scaling="per_example")
    zero.load_state_dict(model.state_dict())
    if data_size:
        model.set_data_size(*data_size)
    assert model.objective.alpha_for(8, 2) == pytest.approx(weight)
    torch.manual_seed(9)
    loss, terms = model.loss({"x": x, "y": y}, terms=True)
    torch.manual_seed(9)
    base = zero.loss({"x": x, "y": y})
    log_qy = float(terms["classifier/y"]) * 2  # the mean over the 2 labelled examples, times 2
    assert float(loss.detach()) == pytest.approx(float(base.detach()) - weight * log_qy / 8, abs=1e-4)


def test_the_resolved_weight_is_said():
    model = compile_text(M2_TINY, alpha=0.1)
    assert "of each batch" in model.objective.alpha_text()
    assert model.set_data_size(1293, 100).objective.alpha_text() == \
        "alpha * N / N_labelled = 0.1 * 1293 / 100 = 1.293 per labelled example"


def test_beta_weights_the_kl_term():
    x = torch.tensor([[0.3], [2.0]])
    params = (0.2, 0.1, 0.3, -0.7)
    plain = linear_gaussian(*params, samples=3)
    weighted = compile_text((LG % S).replace("encoder {", "objective {\n  beta z = 4\n}\nencoder {"), samples=3)
    weighted.load_state_dict(plain.state_dict())
    torch.manual_seed(11)
    loss_1, terms = plain.loss({"x": x}, terms=True)
    torch.manual_seed(11)
    loss_4, terms_4 = weighted.loss({"x": x}, terms=True)
    assert float(loss_4.detach()) == pytest.approx(float(loss_1.detach()) + 3 * float(terms["kl/z"]), abs=1e-5)
    assert float(terms_4["elbo"]) == pytest.approx(float(terms["elbo"]), abs=1e-6)  # elbo reported with beta = 1


def test_gradcheck_float64():
    from torch.func import functional_call

    torch.manual_seed(12)
    model = compile_text(M2_TINY.replace("samples = 6", "samples = 2")).double()
    x = torch.bernoulli(torch.full((3, 5), 0.5, dtype=torch.float64))
    batch = {"x": x, "y": torch.tensor([1, -1, -1])}
    names = [n for n, _ in model.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_(True) for p in model.parameters())

    def loss(*ps):
        torch.manual_seed(13)  # the same noise at every evaluation
        return functional_call(model, dict(zip(names, ps)), (batch,))

    assert torch.autograd.gradcheck(loss, params, eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("shapes", [
    [(10, 1, 16), (10, 1, 1), (16,), (1, 1, 1)],  # an enumerated y's terms beside the data's
    [(3, 4), (3, 4)],  # nothing to broadcast
    [(2, 1, 5), (7, 1), ()],
    [(1,), (4, 1, 1)],
    [[2, 1], [3]],  # shapes as lists: worked out, not looked up
])
def test_broadcast_shapes_is_torchs_and_the_same_when_looked_up(shapes):
    from graphvae.compile.objective import broadcast_shapes

    first, again = broadcast_shapes(*shapes), broadcast_shapes(*shapes)  # worked out, then looked up
    assert first == again == torch.broadcast_shapes(*shapes)


def test_broadcast_shapes_refuses_shapes_that_do_not_broadcast_every_time():
    from graphvae.compile.objective import broadcast_shapes

    for _ in range(2):  # a refusal is not remembered as a result
        with pytest.raises(RuntimeError, match="do not broadcast"):
            broadcast_shapes((3, 4), (5, 4))
