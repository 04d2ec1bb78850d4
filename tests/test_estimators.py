"""The estimator registry: metadata in graphvae.spec.estimators, drawings in graphvae.compile.estimators."""

from __future__ import annotations

import pytest
import torch

from graphvae.compile import distributions as dists
from graphvae.compile import estimators as drawing
from graphvae.compile.compiler import compile_spec
from graphvae.render.latex import to_latex
from graphvae.spec import estimators as registry
from graphvae.spec.estimators import DECLARABLE, ESTIMATORS, Estimator, register_estimator
from graphvae.spec.ir import Call, Option
from graphvae.spec.loader import check_text

SPEC = """model t
x : observed   binary[6]
y : supervised categorical[3]
z : latent     real[2]
encoder {
  y | x    ~ Categorical(mlp(8))
  z | x, y ~ Normal(mlp(8))
}
decoder {
  z        ~ Normal(0, 1)
  y        ~ Categorical(uniform)
  x | y, z ~ Bernoulli(mlp(8))
}
objective {
  y = METHOD
}
"""


def test_every_estimator_has_a_drawing_and_back():
    drawing.check_registry()
    assert set(drawing.DRAWS) == set(ESTIMATORS)
    assert DECLARABLE == ("enumerate", "relax", "reinforce")


def test_relax_needs_exactly_the_families_with_a_relaxation():
    assert set(ESTIMATORS["relax"].families) == set(dists.RELAXATIONS)


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_evaluation_draws_exactly(name):
    """Evaluation replaces an estimator by one that draws exact values: no relaxation, no score terms."""
    est = ESTIMATORS[name]
    target = ESTIMATORS[est.evaluation or name]
    assert not target.reinforced and target.name != "relax"
    assert target.discrete == est.discrete or target.name == "sample"


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_every_estimator_describes_itself(name):
    est = ESTIMATORS[name]
    assert est.describe(10, "RelaxedOneHotCategorical") and "{" not in est.describe(10)
    tex = est.describe_latex("q(y \\mid x)", "y", Call(name, (Option("temperature", 0.5),)), str)
    assert tex.count("{") == tex.count("}") and tex.count("$") % 2 == 0


def test_enumerate_in_latex():
    assert ESTIMATORS["enumerate"].describe_latex("q(y \\mid x)", "y") == \
        "enumerated, $\\mathrm{E}_{q(y \\mid x)}[f] = \\sum_{y} q(y \\mid x)\\, f(y)$"


def test_options_resolve_to_the_spec_or_the_default():
    relax = ESTIMATORS["relax"]
    assert relax.resolved(Call("relax")) == {"temperature": pytest.approx(2 / 3)}
    assert relax.resolved(Call("relax", (Option("temperature", 0.5),))) == {"temperature": 0.5}
    assert "0.5" in relax.describe(options={"temperature": 0.5})


def test_a_drawing_needs_a_registered_estimator():
    with pytest.raises(KeyError, match="no estimator 'nonesuch'"):
        drawing.draws("nonesuch")(lambda *a: None)
    with pytest.raises(KeyError, match="already has a drawing"):
        drawing.draws("enumerate")(lambda *a: None)


@pytest.fixture
def sample_twice(monkeypatch):
    """A new estimator in two calls: its metadata, then its drawing."""
    monkeypatch.setattr(registry, "ESTIMATORS", dict(ESTIMATORS))
    monkeypatch.setattr(drawing, "DRAWS", dict(drawing.DRAWS))
    for module in ("graphvae.spec.validate.objective", "graphvae.compile.model", "graphvae.compile.compiler",
                   "graphvae.compile.estimators", "graphvae.render.latex"):
        monkeypatch.setattr(f"{module}.ESTIMATORS", registry.ESTIMATORS)
    monkeypatch.setattr("graphvae.spec.validate.objective.DECLARABLE", DECLARABLE + ("twice",))
    register_estimator(Estimator("twice", discrete=True, declarable=True, evaluation="sample",
                                 text="the mean of two exact draws' log q", latex="two exact draws"))
    calls = []

    @drawing.draws("twice")
    def _twice(node, d, trace, samples):
        calls.append(node.name)
        drawing.DRAWS["sample"](node, d, trace, samples)

    return calls


def test_a_new_estimator_validates_compiles_trains_and_renders(sample_twice):
    spec, diags = check_text(SPEC.replace("METHOD", "twice"), "t.gvae", "dsl")
    assert not [d for d in diags if d.is_error], diags
    model = compile_spec(spec)
    assert model.methods["y"] == "twice"
    loss = model.loss({"x": torch.bernoulli(torch.full((4, 6), 0.5)), "y": torch.tensor([-1, -1, 0, 2])})
    loss.backward()
    assert torch.isfinite(loss) and sample_twice == ["y"]
    assert "two exact draws" in to_latex(spec)


def test_an_undeclarable_estimator_is_unknown_to_specs():
    _, diags = check_text(SPEC.replace("METHOD", "rsample"), "t.gvae", "dsl")
    assert [d.code for d in diags if d.is_error] == ["unknown-estimator"]
