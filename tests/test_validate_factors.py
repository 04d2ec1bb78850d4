"""graphvae.spec.validate.factors: families, argument binding, networks, supports and shapes, on IR."""

from __future__ import annotations

import pytest

from graphvae.spec.binding import bind_params
from graphvae.spec.families import FAMILIES, Family, register_family
from graphvae.spec.ir import Dist, Factor, Net, Option, Param, Spec, Uniform, Variable
from graphvae.spec.validate import validate
from graphvae.spec.validate.factors import support_fits
from graphvae.spec.validate.networks import ACTIVATIONS

X = Variable("x", "observed", "binary", (4,))


def lit(family: str, *args, **named) -> Dist:
    return Dist(family, tuple(Param(None, a) for a in args) + tuple(Param(k, v) for k, v in named.items()))


def mlp(*hidden, **options) -> Net:
    return Net("mlp", hidden, tuple(Option(k, v) for k, v in options.items()))


def one_latent(var: Variable, q: Dist | Factor, p: Dist, obs: Dist | None = None) -> Spec:
    """x observed; one latent/supervised ``var`` with q(var | x) and p(var); p(x | var)."""
    qf = q if isinstance(q, Factor) else Factor(var.name, ("x",), q)
    return Spec("t", (X, var), (qf,), (Factor(var.name, (), p), Factor("x", (var.name,), obs or lit("Bernoulli", mlp(8)))))


def codes(spec: Spec) -> set[tuple[str, str]]:
    return {(d.severity, d.code) for d in validate(spec)}


Z = Variable("z", "latent", "real", (2,))
NORMAL_Q = lit("Normal", mlp(8))


@pytest.mark.parametrize("p, want", [
    (lit("Normal", 0, 1), set()),
    (lit("Normal", loc=0, scale=1), set()),
    (lit("Normal", 0, scale=1), set()),
    (lit("Normal", 0, -1), {("error", "bad-parameter")}),
    (lit("Normal", 0, 0), {("error", "bad-parameter")}),
    (lit("Normal", 0, float("inf")), {("error", "bad-parameter")}),
    (lit("Normal", 0, True), {("error", "bad-parameter")}),
    (lit("Normal", 0, 1, 2), {("error", "bad-parameter")}),
    (lit("Normal", 0, loc=1), {("error", "duplicate")}),
    (lit("Normal", 0), {("error", "missing-parameter")}),
    (lit("Normal"), {("error", "missing-parameter")}),
    (lit("Normal", loc=0, sigma=1), {("error", "unknown-parameter")}),
    (lit("Normal", Uniform()), {("error", "bad-parameter")}),
    (lit("Normal", 0, Uniform()), {("error", "bad-parameter")}),
    (lit("Normall", 0, 1), {("error", "unknown-family")}),
    (lit("Normal", mlp(8)), {("error", "network-needs-parent")}),
])
def test_root_parameters(p, want):
    assert codes(one_latent(Z, NORMAL_Q, p)) == want


@pytest.mark.parametrize("var, p, want", [
    (Variable("b", "latent", "binary", (3,)), lit("Bernoulli", 0.5), set()),
    (Variable("b", "latent", "binary", (3,)), lit("Bernoulli", logits=-2), set()),
    (Variable("b", "latent", "binary", (3,)), lit("Bernoulli", Uniform()), set()),
    (Variable("b", "latent", "binary", (3,)), lit("Bernoulli", 1.5), {("error", "bad-parameter")}),
    (Variable("b", "latent", "binary", (3,)), lit("Bernoulli", probs=0.5, logits=0), {("error", "duplicate")}),
    (Variable("y", "supervised", "categorical", (4,)), lit("Categorical", Uniform()), set()),
    (Variable("y", "supervised", "categorical", (4,)), lit("Categorical", probs=0.25), set()),
    (Variable("y", "supervised", "categorical", (4,)), lit("Categorical", logits=0), set()),
    (Variable("y", "supervised", "categorical", (4,)), lit("Categorical", probs=0.5), {("error", "bad-parameter")}),
    (Variable("s", "latent", "simplex", (4,)), lit("Dirichlet", Uniform()), set()),
    (Variable("s", "latent", "simplex", (4,)), lit("Dirichlet", 0.5), set()),
    (Variable("s", "latent", "simplex", (4,)), lit("Dirichlet", -0.5), {("error", "bad-parameter")}),
    (Variable("p", "latent", "positive", (2,)), lit("Gamma", 2, 1), set()),
    (Variable("p", "latent", "positive", (2,)), lit("Gamma", Uniform()), {("error", "bad-parameter")}),
    (Variable("u", "latent", "unit", (2,)), lit("Beta", 1, 1), set()),
])
def test_discrete_and_other_families(var, p, want):
    family = p.family if p.family in FAMILIES else "Normal"
    spec = one_latent(var, lit(family, mlp(8)), p)
    got = {c for c in codes(spec) if c[1] != "missing-estimator"}
    assert got == want


@pytest.mark.parametrize("args, slots", [
    ((Param(None, Net("mlp", (8,))),), {"loc", "scale"}),
    ((Param(None, 0), Param(None, 1)), {"loc", "scale"}),
    ((Param("loc", Net("mlp", (8,))), Param("scale", 0.1)), {"loc", "scale"}),
    ((Param(None, Net("mlp", (8,))), Param(None, 0.1)), {"loc", "scale"}),
])
def test_bind_params_fills_slots(args, slots):
    bound, diags = bind_params(Dist("Normal", args), FAMILIES["Normal"])
    assert diags == [] and set(bound) == slots


def test_bind_params_alias_fills_the_canonical_slot():
    bound, diags = bind_params(lit("Bernoulli", logits=0), FAMILIES["Bernoulli"])
    assert diags == [] and set(bound) == {"probs"} and bound["probs"].name == "logits"


@pytest.mark.parametrize("q, want", [
    (lit("Normal", mlp(8)), set()),
    (lit("Normal", Net("linear")), set()),
    (lit("Normal", loc=mlp(8), scale=0.1), set()),
    (lit("Normal", mlp(8, 8, activation="tanh")), set()),
    (lit("Normal", mlp(8, activation="rleu")), {("error", "bad-option")}),
    (lit("Normal", mlp(8, activation=3)), {("error", "bad-option")}),
    (lit("Normal", mlp(8, depth=2)), {("error", "unknown-option")}),
    (lit("Normal", mlp(8, dropout=0.1, batchnorm=True)), set()),
    (lit("Normal", mlp(8, dropout=1.5)), {("error", "bad-option")}),
    (lit("Normal", mlp(8, batchnorm=1)), {("error", "bad-option")}),
    (lit("Normal", mlp(0)), {("error", "bad-network")}),
    (lit("Normal", mlp(2.5)), {("error", "bad-network")}),
    (lit("Normal", mlp()), {("error", "bad-network")}),
    (lit("Normal", Net("linear", (4,))), {("error", "bad-network")}),
    (lit("Normal", Net("resnet", (4,))), {("error", "unknown-network")}),
    (lit("Normal", loc=mlp(8)), {("error", "missing-parameter")}),
    (lit("Normal", 0, 1), {("warning", "ignored-parents")}),
])
def test_parameter_networks(q, want):
    assert codes(one_latent(Z, q, lit("Normal", 0, 1))) == want


@pytest.mark.parametrize("node, want", [
    (mlp(16), set()),
    (mlp(16, 8, activation="elu"), set()),
    (Net("linear", (16,)), set()),
    (Net("linear"), {("error", "bad-network")}),
    (Net("linear", (4, 4)), {("error", "bad-network")}),
    (mlp(), {("error", "bad-network")}),
    (Net("Normal", (4,)), {("error", "unknown-network")}),
])
def test_deterministic_nodes(node, want):
    spec = one_latent(Z, Factor("z", ("h",), NORMAL_Q), lit("Normal", 0, 1))
    spec = Spec("t", spec.variables, (Factor("h", ("x",), net=node),) + spec.encoder, spec.decoder)
    assert codes(spec) == want


def test_unknown_network_hint_for_a_family_used_as_a_node():
    spec = one_latent(Z, Factor("z", ("h",), NORMAL_Q), lit("Normal", 0, 1))
    spec = Spec("t", spec.variables, (Factor("h", ("x",), net=Net("Normal")),) + spec.encoder, spec.decoder)
    [d] = validate(spec)
    assert "~ Normal(...)" in d.hint


@pytest.mark.parametrize("role, domain, family, block, fits", [
    ("observed", "binary", "Bernoulli", "decoder", True),
    ("observed", "unit", "Bernoulli", "decoder", False),
    ("observed", "unit", "Normal", "decoder", True),
    ("observed", "unit", "ContinuousBernoulli", "decoder", True),
    ("observed", "unit", "Beta", "decoder", True),
    ("observed", "binary", "Beta", "decoder", True),
    ("observed", "positive", "Gamma", "decoder", True),
    ("observed", "real", "LogNormal", "decoder", False),
    ("observed", "categorical", "Categorical", "decoder", True),
    ("latent", "real", "Normal", "encoder", True),
    ("latent", "positive", "Normal", "encoder", False),
    ("latent", "positive", "LogNormal", "decoder", True),
    ("latent", "positive", "Gamma", "encoder", True),
    ("latent", "positive", "Exponential", "decoder", True),
    ("latent", "unit", "Normal", "decoder", False),
    ("latent", "unit", "Beta", "encoder", True),
    ("latent", "simplex", "Dirichlet", "encoder", True),
    ("latent", "binary", "Bernoulli", "encoder", True),
    ("latent", "categorical", "Categorical", "encoder", True),
    ("latent", "categorical", "Normal", "decoder", False),
    ("supervised", "categorical", "Normal", "encoder", False),
    ("supervised", "unit", "Normal", "decoder", True),
    ("supervised", "unit", "Normal", "encoder", False),
    ("supervised", "unit", "Beta", "encoder", True),
])
def test_support_fits(role, domain, family, block, fits):
    var = Variable("v", role, domain, (3,))
    assert support_fits(FAMILIES[family], var, block) == fits


def test_support_mismatch_reported_with_families_that_fit():
    w = Variable("w", "latent", "positive", (2,))
    diags = validate(one_latent(w, NORMAL_Q, lit("LogNormal", 0, 1)))
    [d] = diags
    assert d.code == "support-mismatch" and "LogNormal" in d.hint and "'w'" in d.message


@pytest.mark.parametrize("shape, want", [
    ((3,), set()),
    ((1,), {("error", "bad-shape")}),
    ((), {("error", "bad-shape")}),
    ((2, 3), {("error", "bad-shape")}),
    ((0,), {("error", "bad-shape")}),
])
def test_categorical_shapes(shape, want):
    y = Variable("y", "latent", "categorical", shape)
    spec = one_latent(y, lit("Categorical", mlp(8)), lit("Categorical", Uniform()))
    assert {c for c in codes(spec) if c[1] != "missing-estimator"} == want


def test_shape_mismatch_for_a_family_with_event_rank():
    fam = register_family(Family("VecNormal", "torch.distributions.Normal", ("loc", "scale"), ("loc", "scale"),
                                 {"loc": "real", "scale": "positive"}, "real", event_rank=2))
    try:
        spec = one_latent(Z, lit("VecNormal", mlp(8)), lit("Normal", 0, 1))
        assert codes(spec) == {("error", "shape-mismatch")}
    finally:
        FAMILIES.pop(fam.name)


def test_activations_cover_the_brief():
    assert {"relu", "softplus", "tanh", "sigmoid", "elu", "leaky_relu", "gelu", "silu", "identity"} <= set(ACTIVATIONS)
