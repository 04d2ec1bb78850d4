"""graphvae.spec.validate.objective: objective and train settings, estimators, betas, on IR."""

from __future__ import annotations

from dataclasses import fields

import pytest

from graphvae.spec.estimators import ENUMERATE_LIMIT, support_size
from graphvae.spec.families import FAMILIES, Family, register_family
from graphvae.spec.ir import (Beta, Call, Dist, Estimator, Factor, Net, Objective, Option, Param, Setting, Spec,
                              Uniform, Variable)
from graphvae.spec.settings import ObjectiveConfig, TrainConfig
from graphvae.spec.validate import validate

X = Variable("x", "observed", "binary", (4,))
Y = Variable("y", "supervised", "categorical", (3,))
Z = Variable("z", "latent", "real", (2,))
B = Variable("b", "latent", "binary", (2,))
NET = (Param(None, Net("mlp", (8,))),)


def spec(objective: Objective = Objective(), train=(), y: Variable = Y, b: Variable = B, yq: str = "Categorical") -> Spec:
    return Spec(
        "t", (X, y, Z, b),
        (Factor("y", ("x",), Dist(yq, NET)), Factor("b", ("x",), Dist("Bernoulli", NET)),
         Factor("z", ("x", "y", "b"), Dist("Normal", NET))),
        (Factor("z", (), Dist("Normal", (Param("loc", 0), Param("scale", 1)))),
         Factor("y", (), Dist("Categorical", (Param(None, Uniform()),))),
         Factor("b", (), Dist("Bernoulli", (Param("probs", 0.5),))),
         Factor("x", ("y", "z", "b"), Dist("Bernoulli", NET))),
        objective, tuple(train))


def est(var: str, method: str, **options) -> Estimator:
    return Estimator(var, Call(method, tuple(Option(k, v) for k, v in options.items())))


BOTH = (est("b", "enumerate"), est("y", "enumerate"))


def codes(s: Spec) -> list[tuple[str, str]]:
    return sorted((d.severity, d.code) for d in validate(s))


@pytest.mark.parametrize("settings, want", [
    ((Setting("alpha", 0.1), Setting("samples", 8), Setting("alpha_scaling", "labelled_fraction")), []),
    ((Setting("alpha", 0),), []),
    ((Setting("alpha", 1),), []),
    ((Setting("alpha", -0.1),), [("error", "bad-setting")]),
    ((Setting("alpha", "big"),), [("error", "bad-setting")]),
    ((Setting("alpha", float("nan")),), [("error", "bad-setting")]),
    ((Setting("samples", 0),), [("error", "bad-setting")]),
    ((Setting("samples", 2.0),), [("error", "bad-setting")]),
    ((Setting("samples", True),), [("error", "bad-setting")]),
    ((Setting("alpha_scaling", "per_batch"),), [("error", "bad-setting")]),
    ((Setting("alpa", 0.1),), [("error", "unknown-setting")]),
    ((Setting("alpha", 0.1), Setting("alpha", 0.2)), [("error", "duplicate")]),
])
def test_objective_settings(settings, want):
    assert codes(spec(Objective(settings, BOTH))) == want


@pytest.mark.parametrize("estimators, want", [
    (BOTH, []),
    ((est("b", "reinforce"), est("y", "relax", temperature=0.66)), []),
    ((est("b", "relax"), est("y", "relax")), []),
    ((est("b", "enumerate"), est("y", "relax", temperature=0)), [("error", "bad-option")]),
    ((est("b", "enumerate"), est("y", "relax", temperature="hot")), [("error", "bad-option")]),
    ((est("b", "enumerate"), est("y", "relax", temp=1)), [("error", "unknown-option")]),
    ((est("b", "enumerate", depth=1), est("y", "enumerate")), [("error", "unknown-option")]),
    ((est("b", "enumerate"), est("y", "relax", temperature=1, temperature_=1)), [("error", "unknown-option")]),
    ((est("b", "enumerate"), est("y", "enumarate")), [("error", "unknown-estimator")]),
    ((*BOTH, est("z", "enumerate")), [("error", "bad-estimator")]),
    ((*BOTH, est("x", "reinforce")), [("error", "bad-estimator")]),
    ((*BOTH, est("w", "reinforce")), [("error", "undefined-name")]),
    ((*BOTH, est("y", "reinforce")), [("error", "duplicate")]),
    ((est("y", "enumerate"),), [("warning", "missing-estimator")]),
    ((), [("warning", "missing-estimator"), ("warning", "missing-estimator")]),
])
def test_estimators(estimators, want):
    assert codes(spec(Objective((), estimators))) == want


def test_relax_needs_a_relaxable_family_in_q():
    fam = register_family(Family("Cat2", "torch.distributions.Categorical", ("probs",), ("logits",),
                                 {"probs": "simplex", "logits": "independent(real, 1)"}, "integer_interval",
                                 event_rank=1, aliases={"logits": "probs"}))
    try:
        s = spec(Objective((), (est("b", "enumerate"), est("y", "relax"))), yq="Cat2")
        assert codes(s) == [("error", "bad-estimator")]
        s = spec(Objective((), BOTH), yq="Cat2")
        assert codes(s) == []
    finally:
        FAMILIES.pop(fam.name)


@pytest.mark.parametrize("y, b, want", [
    (Y, B, []),
    (Variable("y", "supervised", "categorical", (256,)), Variable("b", "latent", "binary", (2,)), []),
    (Variable("y", "supervised", "categorical", (257,)), Variable("b", "latent", "binary", (2,)),
     [("warning", "large-enumeration")]),
    (Y, Variable("b", "latent", "binary", (9,)), [("warning", "large-enumeration")]),
])
def test_large_enumeration(y, b, want):
    assert codes(spec(Objective((), BOTH), y=y, b=b)) == want


def test_large_enumeration_counts_defaults():
    """b has no estimator: 2^8 = 256 values, small enough to default to enumerate; with y (10) that is 2560."""
    y = Variable("y", "supervised", "categorical", (10,))
    b = Variable("b", "latent", "binary", (8,))
    got = codes(spec(Objective((), (est("y", "enumerate"),)), y=y, b=b))
    assert got == [("warning", "large-enumeration"), ("warning", "missing-estimator")]


@pytest.mark.parametrize("var, size", [
    (Y, 3), (B, 4), (Variable("b", "latent", "binary", (2, 3)), 64), (Z, None),
    (Variable("b", "latent", "binary", (10**9,)), None),  # too many to count; never computes 2**(10**9)
    (Variable("y", "latent", "categorical", ("ten",)), None),
])
def test_enumeration_size(var, size):
    assert support_size(var) == size


def test_huge_binary_latent_defaults_to_reinforce_and_warns_when_enumerated():
    b = Variable("b", "latent", "binary", (10**9,))  # its values alone fill terabytes: model-too-large too
    assert codes(spec(Objective((), (est("y", "enumerate"),)), b=b)) == [("error", "model-too-large"),
                                                                       ("warning", "missing-estimator")]
    [d] = [d for d in validate(spec(Objective((), BOTH), b=b)) if d.code != "model-too-large"]
    assert d.code == "large-enumeration" and "2^1000000000" in d.message


def test_enumerate_limit():
    assert ENUMERATE_LIMIT == 1024


@pytest.mark.parametrize("betas, want", [
    ((Beta("z", 4),), []),
    ((Beta("z", 0),), []),
    ((Beta("z", -1),), [("error", "bad-beta")]),
    ((Beta("y", 2),), [("error", "bad-beta")]),
    ((Beta("x", 2),), [("error", "bad-beta")]),
    ((Beta("w", 2),), [("error", "undefined-name")]),
    ((Beta("z", 2), Beta("z", 3)), [("error", "duplicate")]),
])
def test_betas(betas, want):
    assert codes(spec(Objective((), BOTH, betas))) == want


@pytest.mark.parametrize("train, want", [
    ((Setting("epochs", 50), Setting("lr", 0.001), Setting("data", "mnist")), []),
    ((Setting("lr", 1),), []),
    ((Setting("data", "fashion-mnist"), Setting("data_dir", "~/data")), []),
    ((Setting("data", "data/x.npz"),), []),
    ((Setting("data", "cifar"),), [("error", "bad-setting")]),
    ((Setting("device", "cuda:1"),), []),
    ((Setting("device", "tpu"),), [("error", "bad-setting")]),
    ((Setting("labels", -1),), []),
    ((Setting("labels", -2),), [("error", "bad-setting")]),
    ((Setting("epochs", 0),), [("error", "bad-setting")]),
    ((Setting("epochs", 2.5),), [("error", "bad-setting")]),
    ((Setting("lr", 0),), [("error", "bad-setting")]),
    ((Setting("validation", 1.0),), [("error", "bad-setting")]),
    ((Setting("flush_denormal", False),), []),
    ((Setting("flush_denormal", 1),), [("error", "bad-setting")]),
    ((Setting("optimizer", "adm"),), [("error", "bad-setting")]),
    ((Setting("schedule", "cosine"), Setting("binarize", "static")), []),
    ((Setting("batch_size", 8),), []),  # the labelled examples sit beside the batch_size unlabelled ones
    ((Setting("labelled_per_batch", 101),), []),
    ((Setting("labelled_per_batch", -1),), []),
    ((Setting("labelled_per_batch", -2),), [("error", "bad-setting")]),
    ((Setting("labelled_only", True), Setting("labelled_per_batch", 0)), [("error", "bad-setting")]),
    ((Setting("epoch", 3),), [("error", "unknown-setting")]),
    ((Setting("epochs", 3), Setting("epochs", 4)), [("error", "duplicate")]),
])
def test_train_settings(train, want):
    assert codes(spec(Objective((), BOTH), train)) == want


def test_every_field_has_a_known_type():
    for cls in (ObjectiveConfig, TrainConfig):
        for f in fields(cls):
            assert f.type in ("int", "float", "str", "bool", int, float, str, bool), f.name


@pytest.mark.parametrize("cls", [ObjectiveConfig, TrainConfig])
def test_config_defaults_are_valid(cls):
    block = [Setting(f.name, getattr(cls(), f.name)) for f in fields(cls)]
    if cls is ObjectiveConfig:
        s = spec(Objective(tuple(block), BOTH))
    else:
        s = spec(Objective((), BOTH), block)
    assert codes(s) == []
