"""The IR: equality ignores source positions; variable and block helpers."""

from __future__ import annotations

import pytest

from graphvae.spec.ir import Beta, Call, Estimator, Factor, Net, Objective, Option, Setting, Span, Spec, Variable


def test_equality_ignores_spans_and_source():
    a = Spec("m", (Variable("x", "observed", "binary", (4,), Span("a.gvae", 3, 1)),),
             path="a.gvae", source="text a")
    b = Spec("m", (Variable("x", "observed", "binary", (4,), Span("b.yaml", 9, 7)),),
             path="b.yaml", source="text b")
    assert a == b and hash(a) == hash(b)
    assert a != Spec("m", (Variable("x", "observed", "binary", (5,)),))


@pytest.mark.parametrize("var, classes, size, value_shape, discrete", [
    (Variable("y", "supervised", "categorical", (10,)), 10, 10, (), True),
    (Variable("x", "observed", "unit", (1, 28, 28)), None, 784, (1, 28, 28), False),
    (Variable("b", "latent", "binary", (3,)), None, 3, (3,), True),
    (Variable("p", "latent", "simplex", (4,)), None, 4, (4,), False),
])
def test_variable_properties(var, classes, size, value_shape, discrete):
    assert (var.classes, var.size, var.value_shape, var.discrete) == (classes, size, value_shape, discrete)


def test_lookups():
    spec = Spec("m", (Variable("x", "observed", "real", (2,)), Variable("z", "latent", "real", (1,))),
                encoder=(Factor("z", ("x",), net=None),), decoder=(Factor("x", ("z",)),),
                objective=Objective((Setting("alpha", 0.5),), (Estimator("y", Call("relax", (Option("temperature", 0.5),))),),
                                    (Beta("z", 4.0),)),
                train=(Setting("epochs", 3),))
    assert spec.variable("z").role == "latent" and spec.variable("nope") is None
    assert [v.name for v in spec.observed] == ["x"] and [v.name for v in spec.latent] == ["z"]
    assert [(block, f.name) for block, f in spec.factors()] == [("encoder", "z"), ("decoder", "x")]
    assert spec.objective.get("alpha") == 0.5 and spec.objective.get("samples", 1) == 1
    assert spec.objective.estimator("y").method.option("temperature") == 0.5
    assert spec.objective.beta("z") == 4.0 and spec.objective.beta("w") == 1.0
    assert spec.train_setting("epochs") == 3
    assert Net("mlp", (8,), (Option("activation", "tanh"),)).activation == "tanh"
    assert Net("mlp", (8,)).activation == "relu"
