"""The YAML front end: same IR as the DSL, 1-based positions, safe loading, structural errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from graphvae.spec.ir import Call, Dist, Estimator, Factor, Net, Option, Param, Setting, Span, Uniform, Variable
from graphvae.spec.parser import parse_dsl
from graphvae.spec.yaml_loader import load_yaml

SPECS = Path(__file__).resolve().parent.parent / "specs"


def load_ok(text: str):
    spec, diags = load_yaml(text, "t.yaml")
    assert spec is not None and diags == [], diags
    return spec


@pytest.mark.parametrize("name", sorted(p.stem for p in SPECS.glob("*.yaml")))
def test_yaml_twins_equal_their_dsl(name):
    dsl, dsl_diags = parse_dsl((SPECS / f"{name}.gvae").read_text(), f"{name}.gvae")
    yml, yml_diags = load_yaml((SPECS / f"{name}.yaml").read_text(), f"{name}.yaml")
    assert dsl_diags == yml_diags == []
    assert dsl == yml


def test_m2_yaml_equals_m2_dsl():
    assert load_ok((SPECS / "m2.yaml").read_text()) == parse_dsl((SPECS / "m2.gvae").read_text())[0]


@pytest.mark.parametrize("entry, expected", [
    ("{role: observed, domain: binary, shape: [784]}", Variable("v", "observed", "binary", (784,))),
    ("{role: supervised, domain: categorical, classes: 10}", Variable("v", "supervised", "categorical", (10,))),
    ("{role: observed, domain: unit, shape: [1, 28, 28]}", Variable("v", "observed", "unit", (1, 28, 28))),
    ("{role: latent, domain: real, shape: 5}", Variable("v", "latent", "real", (5,))),
    ("{role: latent, domain: real}", Variable("v", "latent", "real", ())),
])
def test_variables(entry, expected):
    assert load_ok(f"model: m\nvariables:\n  v: {entry}\n").variables == (expected,)


def mlp(*hidden, **options):
    return Net("mlp", hidden, tuple(Option(k, v) for k, v in options.items()))


@pytest.mark.parametrize("entry, expected", [
    ("{given: [x], net: {mlp: [256], activation: relu}}", Factor("f", ("x",), None, mlp(256, activation="relu"))),
    ("{given: x, net: {linear: 64}}", Factor("f", ("x",), None, Net("linear", (64,)))),
    ("{given: [h], dist: Normal, net: linear}", Factor("f", ("h",), Dist("Normal", (Param(None, Net("linear")),)))),
    ("{dist: Normal, params: {loc: 0, scale: 1}}", Factor("f", (), Dist("Normal", (Param("loc", 0), Param("scale", 1))))),
    ("{dist: Normal, params: [0, 1]}", Factor("f", (), Dist("Normal", (Param("loc", 0), Param("scale", 1))))),
    ("{dist: Categorical, params: uniform}", Factor("f", (), Dist("Categorical", (Param(None, Uniform()),)))),
    ("{given: [y, z], dist: Normal, params: {loc: {mlp: [500]}, scale: 0.1}}",
     Factor("f", ("y", "z"), Dist("Normal", (Param("loc", mlp(500)), Param("scale", 0.1))))),
    ("{dist: Normal, net: linear, params: {scale: 0.1}}",
     Factor("f", (), Dist("Normal", (Param(None, Net("linear")), Param("scale", 0.1))))),
    ("{dist: Normal, args: [linear, 0.1]}",
     Factor("f", (), Dist("Normal", (Param(None, Net("linear")), Param(None, 0.1))))),
    ("{dist: Bernoulli, net: {mlp: [], activation: tanh}}",
     Factor("f", (), Dist("Bernoulli", (Param(None, mlp(activation="tanh")),)))),
])
def test_factors(entry, expected):
    assert load_ok(f"model: m\ndecoder:\n  f: {entry}\n").decoder == (expected,)


def test_objective_and_train():
    spec = load_ok("model: m\nobjective:\n  samples: 8\n  alpha: 0.1\n"
                   "  estimators: {y: {relax: {temperature: 0.66}}, c: enumerate}\n  beta: {z: 4}\n"
                   "train: {epochs: 50, lr: 0.001, data: fashion-mnist, flush_denormal: false}\n")
    assert spec.objective.settings == (Setting("alpha", 0.1), Setting("samples", 8))
    assert spec.objective.estimators == (Estimator("c", Call("enumerate")),
                                         Estimator("y", Call("relax", (Option("temperature", 0.66),))))
    assert spec.objective.beta("z") == 4
    assert spec.train == (Setting("epochs", 50), Setting("lr", 0.001), Setting("data", "fashion-mnist"),
                          Setting("flush_denormal", False))


def test_positions_are_one_based():
    text = (SPECS / "m2.yaml").read_text()
    spec = load_ok(text)
    lines = text.splitlines()

    def covered(span: Span) -> str:
        return lines[span.line - 1][span.col - 1:span.end_col - 1]

    assert spec.span == Span("t.yaml", 1, 1, 1, 10)
    assert covered(spec.encoder_span) == "encoder"
    z = spec.encoder[1]
    assert (z.name_span.line, z.name_span.col) == (8, 3)
    assert covered(z.span) == "z: {given: [x, y], dist: Normal, net: {mlp: [500]}}"
    assert [covered(s) for s in z.parent_spans] == ["x", "y"]
    assert covered(spec.variables[1].span) == "y: {role: supervised, domain: categorical, classes: 10}"
    assert covered(spec.objective.estimators[0].span) == "y: enumerate"
    assert spec.path == "t.yaml" and spec.source == text


@pytest.mark.parametrize("payload", [
    "!!python/object/apply:os.system ['echo pwned']",
    "!!python/object/new:os.system ['echo pwned']",
    "!!python/name:os.system",
    "!!binary aGVsbG8=",
    "!custom {a: 1}",
])
def test_no_tag_constructs_an_object(payload, tmp_path, monkeypatch):
    import os
    monkeypatch.setattr(os, "system", lambda *a: pytest.fail("os.system was called"))
    text = f"model: m\nvariables:\n  x:\n    role: observed\n    shape: {payload}\n"
    spec, diags = load_yaml(text, "t.yaml")
    assert spec is None
    assert [(d.code, d.span.line, d.span.col) for d in diags] == [("yaml-tag", 5, 12)]


@pytest.mark.parametrize("text, code, line, col, fragment", [
    ("model: m\nencoder:\n  y: {givn: [x], dist: Categorical, net: linear}\n", "unknown-key", 3, 7, "'givn'"),
    ("model: m\nvariables: [x, y]\n", "wrong-type", 2, 12, "expected a mapping, found a list"),
    ("model: m\nencoder:\n  y: {given: {x: 1}, dist: Categorical, net: linear}\n", "wrong-type", 3, 14,
     "expected a list, found a mapping"),
    ("variables: {}\n", "missing-model", 1, 1, "no 'model: NAME'"),
    ("", "missing-model", 1, 1, "empty"),
    ("model: m\nvariables:\n  x: {role: observed}\n", "missing-key", 3, 3, "no 'domain'"),
    ("model: m\nvariables:\n  x: {role: latent, domain: real, shape: [1.5]}\n", "wrong-type", 3, 43, "whole number"),
    ("model: m\nvariables:\n  y: {role: supervised, domain: categorical, classes: 3, shape: [3]}\n",
     "conflicting-keys", 3, 3 + len("y: {role: supervised, domain: categorical, classes: "), "both"),
    ("model: m\ndecoder:\n  y: {dist: Categorical, params: uniform, params: 3}\n", "duplicate-key", 3, 43, "twice"),
    ("model: m\ndecoder:\n  y: {given: [x]}\n", "missing-key", 3, 3, "needs 'dist'"),
    ("model: m\nobjective: {alpah: 0.1}\n", "unknown-key", 2, 13, "'alpah'"),
    ("model: m\nobjective: {beta: {z: yes}}\n", "wrong-type", 2, 23, "expected a number"),
    ("model: m\ntrain: {epochs: [5]}\n", "wrong-type", 2, 17, "expected a single value"),
    ("model: my model\n", "wrong-type", 1, 8, "expected a name"),
    ("model: m\nextra: 1\n", "unknown-key", 2, 1, "'extra'"),
])
def test_structural_errors(text, code, line, col, fragment):
    spec, diags = load_yaml(text, "t.yaml")
    assert spec is not None
    assert len(diags) == 1, diags
    d = diags[0]
    assert (d.code, d.severity, d.span.path, d.span.line, d.span.col) == (code, "error", "t.yaml", line, col)
    assert fragment in d.message


@pytest.mark.parametrize("text, key, hint", [
    ("model: m\nencoder:\n  y: {givn: [x], dist: Categorical, net: linear}\n", "givn", "did you mean 'given'?"),
    ("modle: m\n", "modle", "did you mean 'model'?"),
    ("model: m\nobjective: {estimator: {y: enumerate}}\n", "estimator", "did you mean 'estimators'?"),
])
def test_unknown_keys_suggest(text, key, hint):
    _, diags = load_yaml(text, "t.yaml")
    unknown = [d for d in diags if d.code == "unknown-key"]
    assert len(unknown) == 1 and f"'{key}'" in unknown[0].message and unknown[0].hint == hint


def test_all_structural_errors_are_collected():
    text = ("model: m\nvariables:\n  x: {role: observed, domain: binary, shape: [784], clases: 3}\n"
            "encoder:\n  y: {givn: [x], dist: Categorical, net: linear}\ntrain: {epochs: [5]}\n")
    spec, diags = load_yaml(text, "t.yaml")
    assert spec is not None
    assert [(d.code, d.span.line) for d in diags] == [("unknown-key", 3), ("unknown-key", 5), ("wrong-type", 6)]


@pytest.mark.parametrize("text, line", [
    ("model: m\nvariables: [\n", 3),
    ("model: m\n  bad indent: 1\n", 2),
    ("model: m\n---\nmodel: n\n", 3),
])
def test_yaml_syntax_errors(text, line):
    spec, diags = load_yaml(text, "t.yaml")
    assert spec is None
    assert [(d.code, d.span.line) for d in diags] == [("syntax", line)]


def test_duplicate_factors_reach_validation():
    spec = load_ok("model: m\ndecoder:\n  z: {dist: Normal, params: [0, 1]}\n  z: {dist: Normal, params: [0, 2]}\n")
    assert [f.name for f in spec.decoder] == ["z", "z"]


def test_alias_bomb_stays_cheap():
    text = "a: &a [x, x, x, x, x, x, x, x, x]\n"
    for i in range(1, 12):  # 9**12 nodes if expanded
        text += f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}" if i > 1 else "*a"] * 9) + "]\n"
    text += "model: m\nvariables:\n  x: {role: latent, domain: real, shape: *a11}\n"
    spec, diags = load_yaml(text, "t.yaml")
    assert spec is None
    assert [(d.code, d.message) for d in diags] == [
        ("too-large", "the YAML document's aliases expand it by more than 100,000 nodes")]


def test_aliases_that_add_few_nodes_are_read():
    spec, diags = load_yaml("model: m\nvariables:\n  x: &v {role: observed, domain: real, shape: [2]}\n"
                            "  y: *v\n", "t.yaml")
    assert spec is not None and not diags and [v.name for v in spec.variables] == ["x", "y"]


def test_a_node_inside_itself_is_too_large():
    spec, diags = load_yaml("model: m\ntrain: &a {data: [*a]}\n", "t.yaml")
    assert spec is None and [d.code for d in diags] == ["too-large"]


def test_names_read_as_written():
    spec = load_ok("model: m\nvariables:\n  on: {role: observed, domain: real, shape: [2]}\n")
    assert spec.variables[0].name == "on"
