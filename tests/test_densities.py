"""The training step's plain distributions (graphvae.compile.densities) against torch's, and the
step they make against the one torch's objects make, for every shipped spec."""

from __future__ import annotations

import glob
import math
import os

import pytest
import torch
from torch.distributions import Bernoulli, Categorical, Independent, Normal

from graphvae.compile import densities
from graphvae.compile.compiler import compile_spec
from graphvae.compile.nets import ParentsLinear
from graphvae.compile.parents import ParentInput
from graphvae.spec.families import FAMILIES

torch.set_num_threads(1)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPECS = sorted(glob.glob(os.path.join(ROOT, "specs", "*.gvae")) + glob.glob(os.path.join(ROOT, "specs", "*.yaml")))
TORCH = {"Normal": Normal, "Bernoulli": Bernoulli, "Categorical": Categorical}


def test_every_plain_form_is_of_a_family_with_its_head_parameters():
    assert set(densities.PLAIN) == set(TORCH)
    for family, (params, cls) in densities.PLAIN.items():
        assert family in FAMILIES and params == frozenset(FAMILIES[family].head), family
        assert cls.family == family


@pytest.mark.parametrize("family, params, expected", [
    ("Normal", ("loc", "scale"), densities.PlainNormal),
    ("Normal", ("scale", "loc"), densities.PlainNormal),
    ("Categorical", ("logits",), densities.PlainCategorical),
    ("Categorical", ("probs",), None),  # torch's normalising of probs is not repeated here
    ("Bernoulli", ("probs",), None),
    ("Laplace", ("loc", "scale"), None),
])
def test_a_plain_form_only_where_the_parameters_match(family, params, expected):
    assert densities.plain_class(family, params) is expected


def _params(family, batch, event, gen):
    if family == "Normal":
        shape = batch + event
        return {"loc": torch.randn(shape, generator=gen), "scale": torch.rand(shape, generator=gen) + 0.2}
    if family == "Bernoulli":
        return {"logits": 3 * torch.randn(batch + event, generator=gen)}
    return {"logits": 2 * torch.randn(batch + event + (5,), generator=gen)}


def _value(family, shape, gen):
    if family == "Normal":
        return torch.randn(shape, generator=gen)
    if family == "Bernoulli":
        return torch.bernoulli(torch.full(shape, 0.5), generator=gen)
    return torch.randint(0, 5, shape, generator=gen)


# (batch shape of the parameters, event shape, shape of the value scored): equal shapes, a value
# with more lead dims (S samples), a value broadcast over the batch (an enumerated support)
SHAPES = [((4,), (), (4,)), ((4,), (3,), (4, 3)), ((2, 4), (3,), (6, 2, 4, 3)), ((4,), (2, 3), (4, 2, 3)),
          ((4,), (), (7, 1)), ((3, 4), (2,), (1, 4, 2))]


@pytest.mark.parametrize("family", sorted(TORCH))
@pytest.mark.parametrize("batch, event, value_shape", SHAPES)
def test_log_prob_equals_torch(family, batch, event, value_shape):
    gen = torch.Generator().manual_seed(hash((family, batch, event)) % 1000)
    params = _params(family, batch, event, gen)
    value = _value(family, value_shape, gen)
    ours = densities.plain_class(family, params)(len(event), **params)
    theirs = Independent(TORCH[family](**params, validate_args=False), len(event), validate_args=False)
    assert ours.batch_shape == theirs.batch_shape and ours.event_shape == theirs.event_shape
    torch.testing.assert_close(ours.log_prob(value), theirs.log_prob(value), atol=1e-5, rtol=1e-5)


def test_normal_log_prob_by_hand():
    d = densities.PlainNormal(0, torch.tensor([1.0]), torch.tensor([2.0]))
    expected = -0.5 * (0.5 / 2.0) ** 2 - math.log(2.0) - 0.5 * math.log(2 * math.pi)
    assert float(d.log_prob(torch.tensor([1.5]))) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("family, literals, event", [
    ("Normal", {"loc": 0.0, "scale": 1.0}, (3,)),  # N(0, I): the standard form
    ("Normal", {"loc": 1.5, "scale": 0.5}, (3,)),  # its log scale and variance worked out once
    ("Normal", {"loc": 0.0, "scale": 1.0}, (2, 3)),
    ("Categorical", {"logits": 0.0}, (10,)),  # uniform: every class alike
    ("Categorical", {"logits": 2.0}, (2, 5)),  # two uniform indices a value
    ("Bernoulli", {"logits": -1.0}, (4,)),
])
def test_a_factor_of_literals_scores_as_torch_does(family, literals, event):
    """A prior such as ``Normal(0, 1)`` or ``Categorical(uniform)``, built once with
    ``of_literals``: the same log-densities as torch's object of the same parameters."""
    params = {k: torch.full(event, v) for k, v in literals.items()}
    n_event = len(event) - (1 if family == "Categorical" else 0)
    ours = densities.plain_class(family, params).of_literals(n_event, literals, **params)
    theirs = Independent(TORCH[family](**params, validate_args=False), n_event, validate_args=False)
    gen = torch.Generator().manual_seed(3)
    value_event = event[:-1] if family == "Categorical" else event
    for lead in [(7,), (4, 1, 7), (10, 1, 1)]:
        value = _value(family, lead + value_event, gen) if family != "Categorical" else \
            torch.randint(0, event[-1], lead + value_event, generator=gen)
        got, expected = ours.log_prob(value), theirs.log_prob(value)
        assert got.shape == expected.shape
        torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-6)


def test_the_standard_normal_form_gives_the_general_forms_numbers_and_gradients():
    value = torch.randn(5, 3, requires_grad=True)
    loc, scale = torch.zeros(3), torch.ones(3)
    standard = densities.PlainNormal.of_literals(1, {"loc": 0.0, "scale": 1.0}, loc=loc, scale=scale)
    general = densities.PlainNormal(1, loc, scale)
    assert standard._standard and not general._standard
    a, b = standard.log_prob(value), general.log_prob(value)
    assert torch.equal(a, b)
    assert torch.equal(*(torch.autograd.grad(t.sum(), value)[0] for t in (a, b)))
    # z also feeds the decoder: its gradient sums over its uses, which must come in the same order
    other = torch.randn(5, 3)
    grads = [torch.autograd.grad((d.log_prob(value) * 1.7 + (value * other).sum(-1)).sum(), value)[0]
             for d in (standard, general)]
    assert torch.equal(*grads)


@pytest.mark.parametrize("logits_shape, dim, lead", [
    ((6, 4), 0, 2),  # y of q(y|x) enumerated first: (K, 1, B)
    ((6, 4), 1, 3),  # enumerated second of two
    ((3, 1, 6, 4), 1, 2),  # log_pmf varying over an earlier enumerated variable's dim
    ((2, 1, 6, 4), 2, 3),  # with lead dims left out in front
])
def test_log_prob_of_the_support_equals_log_prob_of_its_values(logits_shape, dim, lead):
    """The enumerated layout of every class's log q (a view of log_pmf) against log_prob of the
    support values placed along lead dim ``dim``, values and gradients."""
    logits = torch.randn(logits_shape, requires_grad=True)
    d = densities.PlainCategorical(0, logits)
    k = logits_shape[-1]
    support = torch.arange(k).reshape((1,) * dim + (k,) + (1,) * (lead - dim))
    got, expected = d.log_prob_support(dim, lead), d.log_prob(support)
    assert got.shape == expected.shape and torch.equal(got, expected)
    weights = torch.randn(expected.shape)
    g1, = torch.autograd.grad((got * weights).sum(), logits, retain_graph=True)
    g2, = torch.autograd.grad((expected * weights).sum(), logits)
    torch.testing.assert_close(g1, g2)


@pytest.mark.parametrize("logits_shape, n_event, dim, lead", [
    ((6, 2, 4), 1, 0, 2),  # two indices a value: the joint support is not one class dim
    ((4, 6, 4), 0, 0, 1),  # log_pmf already varies over lead dim 0
    ((1, 1, 1, 6, 4), 0, 0, 1),  # more dims than the lead, batch and classes
])
def test_log_prob_of_the_support_declines_where_it_does_not_apply(logits_shape, n_event, dim, lead):
    assert densities.PlainCategorical(n_event, torch.randn(logits_shape)).log_prob_support(dim, lead) is None


@pytest.mark.parametrize("batch, event, expand", [((4,), (3,), None), ((4,), (3,), (2, 4)), ((2, 1), (), (2, 5))])
def test_rsample_draws_torchs_numbers_and_scores_them(batch, event, expand):
    """The same noise as torch's rsample on the same seed; the score is log_prob of the draw, and
    its gradients are those of torch's log_prob at torch's draw."""
    gen = torch.Generator().manual_seed(1)
    params = {k: v.requires_grad_() for k, v in _params("Normal", batch, event, gen).items()}
    ours = densities.PlainNormal(len(event), **params)
    theirs = Independent(Normal(**params, validate_args=False), len(event), validate_args=False)
    if expand is not None:
        ours, theirs_draw = ours.expand(expand), theirs.expand(expand)
    else:
        theirs_draw = theirs
    torch.manual_seed(7)
    value, score = ours.rsample_scored()
    torch.manual_seed(7)
    reference = theirs_draw.rsample()
    assert torch.equal(value, reference)
    expected = theirs.log_prob(reference)
    torch.testing.assert_close(score, expected, atol=1e-5, rtol=1e-5)
    g1 = torch.autograd.grad(score.sum() + value.sum(), list(params.values()))
    g2 = torch.autograd.grad(expected.sum() + reference.sum(), list(params.values()))
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("parents, values", [
    # x and labelled y of one example each; an enumerated y beside a z drawn per value; two floats
    ((("x", (5,), None), ("y", (4,), 4)), lambda: [torch.randn(3, 5), torch.tensor([0, 3, 1])]),
    ((("y", (4,), 4), ("z", (2,), None)), lambda: [torch.arange(4).reshape(4, 1), torch.randn(4, 3, 2)]),
    ((("a", (2,), None), ("b", (3,), None)), lambda: [torch.randn(2, 3, 2), torch.randn(2, 3, 3)]),
    ((("y", (2, 3), 3), ("x", (5,), None)), lambda: [torch.randint(0, 3, (3, 2)), torch.randn(3, 5)]),  # 2 slots
])
def test_parents_joined_equal_the_blocks(parents, values):
    torch.manual_seed(0)
    layer = ParentsLinear(tuple(ParentInput(n, s, k) for n, s, k in parents), 6)
    vals = values()
    joined = layer._joined(vals)
    assert joined is not None
    torch.testing.assert_close(joined, layer._blockwise(vals), atol=1e-5, rtol=1e-5)


def test_parents_are_not_joined_where_the_data_would_be_copied():
    """An enumerated y beside the data x: the blocks broadcast x's product instead."""
    layer = ParentsLinear((ParentInput("x", (5,), None), ParentInput("y", (4,), 4)), 6)
    assert layer._joined([torch.randn(3, 5), torch.arange(4).reshape(4, 1)]) is None


def _step(path, plain: bool, monkeypatch):
    with monkeypatch.context() as m:
        if not plain:
            m.setattr(densities, "PLAIN", {})  # no family has a plain form: torch's objects throughout
        torch.manual_seed(0)
        model = compile_spec(path, samples=2)
    from test_lean_step import spec_batch  # tests/ is on sys.path under pytest

    torch.manual_seed(1)
    batch, layout = spec_batch(model, 8)
    model.check_inputs = False
    torch.manual_seed(3)
    loss, terms = model.loss(batch, terms=True, layout=layout)
    return model, loss, terms, torch.autograd.grad(loss, list(model.parameters()), allow_unused=True)


@pytest.mark.parametrize("path", SPECS, ids=[os.path.basename(p) for p in SPECS])
def test_the_plain_step_equals_the_step_of_torchs_distributions(path, monkeypatch):
    """The training step with the plain forms gives the loss, logged terms and gradients of the step
    built from torch.distributions objects, on the same noise."""
    model, loss, terms, grads = _step(path, True, monkeypatch)
    reference, loss0, terms0, grads0 = _step(path, False, monkeypatch)
    modules = lambda mdl: [m for m in [*mdl.encoder.values(), *mdl.decoder.values()] if hasattr(m, "has_plain")]  # noqa: E731
    assert not any(m.has_plain for m in modules(reference)) and any(m.has_plain for m in modules(model))
    torch.testing.assert_close(loss, loss0, atol=1e-4, rtol=1e-5)
    assert terms.keys() == terms0.keys()
    for k in terms:
        torch.testing.assert_close(terms[k], terms0[k], atol=1e-4, rtol=1e-5, msg=k)
    for a, b in zip(grads, grads0):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
