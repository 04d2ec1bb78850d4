"""The torch side of the family registry."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import constraints

from graphvae.compile import distributions as dists
from graphvae.compile.compiler import compile_spec
from graphvae.spec import families
from graphvae.spec.estimators import support_size
from graphvae.spec.ir import Variable
from graphvae.spec.parser import parse_dsl

torch.set_num_threads(1)

HEADS = [(name, p) for name, fam in families.FAMILIES.items() for p in fam.head
         if fam.torch_class.startswith("torch.")]


@pytest.mark.parametrize("family, param", HEADS)
def test_constrain_maps_any_block_into_the_parameter_constraint(family, param):
    torch.manual_seed(0)
    block = torch.randn(7, 4) * 5
    value = dists.constrain(family, param, block)
    cons = dists.torch_class(family).arg_constraints[param]
    assert value.shape == block.shape
    assert bool(cons.check(value).all())
    expected = torch.distributions.transform_to(cons)(block)
    torch.testing.assert_close(value, expected)


@pytest.mark.parametrize("family, param", HEADS)
def test_the_resolved_constraint_map_equals_transform_to_bit_for_bit(family, param):
    """constraint_map's shortcuts (nothing for a real parameter, exp for a positive one) give the
    values of transform_to's own transform, to the bit, also at the ends of float's range."""
    torch.manual_seed(0)
    block = torch.cat([torch.randn(64) * 5, torch.tensor([0.0, -0.0, 88.0, 89.0, -104.0, -110.0, 1e-30])])
    if dists.torch_class(family).arg_constraints[param].event_dim:
        block = block.reshape(-1, 1).expand(-1, 3).contiguous()
    expected = torch.distributions.transform_to(dists.torch_class(family).arg_constraints[param])(block)
    assert torch.equal(dists.constraint_map(family, param)(block), expected)


@pytest.mark.parametrize("family", sorted(n for n, f in families.FAMILIES.items() if f.torch_class.startswith("torch.")))
def test_constraint_names_match_the_metadata(family):
    fam = families.FAMILIES[family]
    cls = dists.torch_class(family)
    for param, name in fam.constraints.items():
        assert dists.constraint_name(cls.arg_constraints[param]) == name


@pytest.mark.parametrize("family, params, shape", [
    ("Normal", {"loc": torch.zeros(5, 3), "scale": torch.ones(5, 3)}, (3,)),
    ("Bernoulli", {"logits": torch.zeros(5, 2, 4)}, (2, 4)),
    ("Categorical", {"logits": torch.zeros(5, 6)}, (6,)),
    ("Categorical", {"logits": torch.zeros(5, 2, 6)}, (2, 6)),
    ("Dirichlet", {"concentration": torch.ones(5, 4)}, (4,)),
])
def test_build_sums_log_probs_over_the_event_dims(family, params, shape):
    torch.manual_seed(1)
    d = dists.build(family, params, dists.event_dims(family, shape))
    assert d.batch_shape == (5,)
    value = d.sample()
    raw = dists.torch_class(family)(**params).log_prob(value)
    torch.testing.assert_close(d.log_prob(value), raw.reshape(5, -1).sum(1))


@pytest.mark.parametrize("domain, shape, expected", [
    ("categorical", (3,), [0, 1, 2]),
    ("categorical", (2, 2), [[0, 0], [0, 1], [1, 0], [1, 1]]),
    ("binary", (2,), [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]),
    ("binary", (), [0.0, 1.0]),
])
def test_support_values(domain, shape, expected):
    values = dists.support_values(domain, shape)
    assert values.tolist() == expected
    if domain == "binary" or len(shape) == 1:  # a spec's categorical has the one dimension K
        assert support_size(Variable("v", "latent", domain, shape)) == len(expected)


@pytest.mark.parametrize("family, logits", [
    ("Categorical", torch.tensor([[0.5, -1.0, 2.0]])),
    ("Bernoulli", torch.tensor([[0.3, -2.0]])),
])
def test_relaxed_log_space_density_ratio_equals_value_space_ratio(family, logits):
    """Scoring in log space keeps log q - log p equal to the relaxed densities' ratio."""
    torch.manual_seed(2)
    temperature = 0.7
    n = 0 if family == "Categorical" else 1  # a batch of one: categorical[3], binary[2]
    q = dists.build(family, {"logits": logits}, n)
    p = dists.build(family, {"logits": torch.zeros_like(logits)}, n)
    rq, rp = dists.build_relaxed(family, q, temperature), dists.build_relaxed(family, p, temperature)
    s = rq.sample((5,))
    value = dists.relaxation(family).to_value(s)
    value_space = {"Categorical": torch.distributions.RelaxedOneHotCategorical,
                   "Bernoulli": torch.distributions.RelaxedBernoulli}[family]
    vq = value_space(torch.tensor(temperature), logits=logits)
    vp = value_space(torch.tensor(temperature), logits=torch.zeros_like(logits))
    ratio = vq.log_prob(value) - vp.log_prob(value)
    if family == "Bernoulli":
        ratio = ratio.sum(-1)
    torch.testing.assert_close(rq.log_prob(s) - rp.log_prob(s), ratio, atol=1e-4, rtol=1e-4)


def test_register_adds_a_family_usable_in_a_spec():
    fam = dists.register("Gumbel", torch.distributions.Gumbel, ("loc", "scale"))
    try:
        assert families.FAMILIES["Gumbel"] is fam
        assert fam.constraints == {"loc": "real", "scale": "positive"} and fam.support == "real"
        spec, diags = parse_dsl("""model g
x : observed real[2]
z : latent real[1]
encoder {
  z | x ~ Normal(linear)
}
decoder {
  z ~ Normal(0, 1)
  x | z ~ Gumbel(mlp(3))
}
""")
        assert spec is not None, diags
        model = compile_spec(spec)
        loss = model.loss({"x": torch.randn(4, 2)})
        loss.backward()
        assert torch.isfinite(loss.detach())
    finally:
        families.FAMILIES.pop("Gumbel", None)


def test_register_a_local_class_and_reject_unknown_params():
    class Shifted(torch.distributions.Normal):
        pass

    fam = dists.register("Shifted", Shifted, ("loc", "scale"))
    try:
        assert dists.torch_class("Shifted") is Shifted
        assert fam.support == "real"
    finally:
        families.FAMILIES.pop("Shifted", None)
    with pytest.raises(ValueError, match="has no rate"):
        dists.register("Bad", torch.distributions.Normal, ("loc", "rate"))
    assert "Bad" not in families.FAMILIES


def test_constraint_name_of_independent_and_unknown():
    assert dists.constraint_name(constraints.independent(constraints.positive, 1)) == "independent(positive, 1)"
    assert dists.constraint_name(constraints.greater_than(3.0)) == "greaterthan"


def test_mean_falls_back_to_the_mode_where_undefined():
    d = dists.build("StudentT", {"df": torch.tensor([0.5, 3.0, float("nan")]), "loc": torch.tensor([1.0, 2.0, 3.0]),
                                 "scale": torch.ones(3)}, 0)
    assert torch.isnan(d.mean[0])
    assert dists.mean(d).tolist() == [1.0, 2.0, 3.0]  # torch's mean where it has one (NaN df: loc too)
    normal = dists.build("Normal", {"loc": torch.zeros(2), "scale": torch.ones(2)}, 1)
    assert dists.mean(normal) is normal.mean or torch.equal(dists.mean(normal), normal.mean)
