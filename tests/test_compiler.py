"""compile_spec: parameter plans, configuration, every shipped spec, `graphvae compile`."""

from __future__ import annotations

import glob
import math
import os

import pytest
import torch

from graphvae import cli
from graphvae.compile.compiler import compile_spec, objective_config
from graphvae.spec.binding import plan_params
from graphvae.spec.diagnostics import SpecError
from graphvae.spec.ir import Dist, Factor, Net, Param, Uniform
from graphvae.spec.parser import parse_dsl
from graphvae.spec.settings import ObjectiveConfig

torch.set_num_threads(1)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPECS = sorted(p for p in glob.glob(os.path.join(ROOT, "specs", "*")) if p.endswith((".gvae", ".yaml", ".yml")))

MLP = Net("mlp", (500,))
PLANS = [
    ("Normal", (Param(None, 0), Param(None, 1)), {"loc": 0.0, "scale": 1.0}, []),
    ("Normal", (Param("scale", 2), Param("loc", -1)), {"loc": -1.0, "scale": 2.0}, []),
    ("Normal", (Param(None, MLP),), {}, [("loc", "scale")]),
    ("Normal", (Param("loc", MLP), Param("scale", 0.1)), {"scale": 0.1}, [("loc",)]),
    ("Normal", (Param("loc", MLP), Param("scale", Net("linear"))), {}, [("loc",), ("scale",)]),
    ("Bernoulli", (Param(None, MLP),), {}, [("logits",)]),
    ("Bernoulli", (Param(None, Uniform()),), {"probs": 0.5}, []),
    ("Bernoulli", (Param("logits", 0.0),), {"logits": 0.0}, []),
    ("Categorical", (Param(None, Uniform()),), {"logits": 0.0}, []),
    ("Categorical", (Param("probs", MLP),), {}, [("probs",)]),
    ("StudentT", (Param(None, Net("linear")),), {}, [("df", "loc", "scale")]),
]


@pytest.mark.parametrize("family, args, literals, heads", PLANS)
def test_plan_params(family, args, literals, heads):
    plan = plan_params(Factor("v", ("x",), Dist(family, args)))
    assert plan.literals == literals
    assert [names for _, names in plan.nets] == heads


@pytest.mark.parametrize("family, args, message", [
    ("Normal", (), r"needs arguments"),
    ("Normal", (Param("loc", 0),), r"Normal needs 'scale'"),
    ("Normal", (Param("mean", 0), Param("scale", 1)), r"has no parameter 'mean'"),
    ("Normal", (Param(None, 0), Param(None, 1), Param(None, 2)), r"at most 2 positional"),
    ("Normal", (Param(None, Uniform()),), r"no uniform form"),
    ("Normal", (Param("loc", Uniform()), Param("scale", 1)), r"'uniform' must be the only argument"),
])
def test_plan_params_rejects(family, args, message):
    with pytest.raises(ValueError, match=message):
        plan_params(Factor("v", ("x",), Dist(family, args)))


def test_objective_config_spec_then_overrides():
    spec, _ = parse_dsl(open(os.path.join(ROOT, "specs", "style_first.gvae")).read())
    assert objective_config(spec) == ObjectiveConfig(alpha=0.1, samples=8)
    assert objective_config(spec, samples=2, alpha_scaling="labelled_fraction") == \
        ObjectiveConfig(alpha=0.1, samples=2, alpha_scaling="labelled_fraction")
    with pytest.raises(TypeError, match="unknown objective setting"):
        objective_config(spec, samples_=3)


def random_batch(model, n=6):
    batch = {}
    for v in model.spec.variables:
        if v.role == "observed":
            if v.domain == "binary":
                batch[v.name] = torch.bernoulli(torch.full((n,) + v.shape, 0.5))
            elif v.domain == "unit":
                batch[v.name] = torch.rand((n,) + v.shape)
            elif v.domain == "positive":
                batch[v.name] = torch.rand((n,) + v.shape) + 0.1
            elif v.domain == "simplex":
                batch[v.name] = torch.softmax(torch.randn((n,) + v.shape), -1)
            else:
                batch[v.name] = torch.randn((n,) + v.shape)
        elif v.role == "supervised":
            if v.domain == "categorical":
                labels = torch.randint(0, v.classes, (n,) + v.value_shape)
                labels[n // 2:] = -1
            else:
                labels = torch.randn((n,) + v.shape) if v.domain == "real" else torch.rand((n,) + v.shape)
                labels[n // 2:] = float("nan")
            batch[v.name] = labels
    return batch


@pytest.mark.parametrize("path", SPECS, ids=[os.path.basename(p) for p in SPECS])
def test_every_spec_compiles_with_finite_loss_and_gradients(path):
    torch.manual_seed(0)
    model = compile_spec(path, samples=2)
    loss, terms = model.loss(random_batch(model), terms=True)
    assert math.isfinite(float(loss.detach()))
    assert all(math.isfinite(float(t)) for t in terms.values()), terms
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and bool(torch.isfinite(g).all()) for g in grads)
    assert any(float(g.abs().sum()) > 0 for g in grads)


def test_m2_dsl_and_yaml_compile_to_the_same_modules():
    a = compile_spec(os.path.join(ROOT, "specs", "m2.gvae"))
    b = compile_spec(os.path.join(ROOT, "specs", "m2.yaml"))
    assert {k: v.shape for k, v in a.state_dict().items()} == {k: v.shape for k, v in b.state_dict().items()}


def test_invalid_spec_raises_spec_error(tmp_path):
    bad = tmp_path / "bad.gvae"
    bad.write_text(open(os.path.join(ROOT, "specs", "m2.gvae")).read().replace("Normal(mlp(500))", "Normall(mlp(500))"))
    with pytest.raises(SpecError) as info:
        compile_spec(str(bad))
    assert any("Normall" in d.message for d in info.value.diagnostics)
    assert cli.main(["compile", str(bad)]) == 1


def test_graphvae_compile_prints_nodes_networks_factorisation_objective(capsys):
    assert cli.main(["compile", os.path.join(ROOT, "specs", "m2.gvae")]) == 0
    out = capsys.readouterr().out
    for needle in [
        "x  observed    binary[784]", "(B, 784)", "z  latent      real[50]", "(B, 50)",
        "mlp(500) -> logits[10]", "397,510",  # 784*500+500 + 500*10+10
        "mlp(500) -> loc[50], scale[50]", "447,600",  # 794*500+500 + 500*100+100
        "423,284", "1,268,394",
        "q(y, z | x) = q(y | x) q(z | x, y)", "p(x, y, z) = p(z) p(y) p(x | y, z)",
        "(1 + alpha) log q(y | x)", "q(y | x) is exact",
        "y  enumerate", "exact sum over its 10 values", "z  rsample",
    ]:
        assert needle in out, (needle, out)


def test_graphvae_compile_style_first_names_relax_and_importance_sampling(capsys):
    assert cli.main(["compile", os.path.join(ROOT, "specs", "style_first.gvae")]) == 0
    out = capsys.readouterr().out
    assert "h = mlp(256)(x)" in out
    assert "y comes after z in q" in out and "S = 8" in out
    assert "y  relax" in out and "temperature 0.66" in out and "RelaxedOneHotCategorical" in out
