"""The DSL front end: each construct to its IR, spans, and syntax errors in words."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graphvae.spec.binding import canonical_params
from graphvae.spec.ir import (Beta, Call, Dist, Estimator, Factor, Net, Objective, Option, Param, Setting, Span,
                              Uniform, Variable)
from graphvae.spec.parser import grammar_path, parse_dsl

SPECS = Path(__file__).resolve().parent.parent / "specs"


def parse_ok(text: str):
    spec, diags = parse_dsl(text, "t.gvae")
    assert spec is not None and diags == [], diags
    return spec


def factor_of(line: str, block: str = "decoder") -> Factor:
    spec = parse_ok(f"model m\n{block} {{\n  {line}\n}}\n")
    return (spec.decoder if block == "decoder" else spec.encoder)[0]


def mlp(*hidden, **options):
    return Net("mlp", hidden, tuple(Option(k, v) for k, v in options.items()))


@pytest.mark.parametrize("line, expected", [
    ("x : observed binary[784]", Variable("x", "observed", "binary", (784,))),
    ("y : supervised categorical[10]", Variable("y", "supervised", "categorical", (10,))),
    ("img : observed unit[1, 28, 28]", Variable("img", "observed", "unit", (1, 28, 28))),
    ("s : latent real", Variable("s", "latent", "real", ())),
    ("w : hidden reals[3]", Variable("w", "hidden", "reals", (3,))),  # roles/domains are validation's job
])
def test_variable_declarations(line, expected):
    assert parse_ok(f"model m\n{line}\n").variables == (expected,)


@pytest.mark.parametrize("line, expected", [
    ("z ~ Normal(0, 1)", Factor("z", (), Dist("Normal", (Param("loc", 0), Param("scale", 1))))),
    ("z ~ Normal(loc = 0, scale = 1)", Factor("z", (), Dist("Normal", (Param("loc", 0), Param("scale", 1))))),
    ("z ~ Normal(scale = 1.5, loc = -2)", Factor("z", (), Dist("Normal", (Param("loc", -2), Param("scale", 1.5))))),
    ("z ~ Normal(0, scale = 1e-3)", Factor("z", (), Dist("Normal", (Param("loc", 0), Param("scale", 0.001))))),
    ("z | x ~ Normal(mlp(500))", Factor("z", ("x",), Dist("Normal", (Param(None, mlp(500)),)))),
    ("z | x, y ~ Normal(loc = mlp(500), scale = 0.1)",
     Factor("z", ("x", "y"), Dist("Normal", (Param("loc", mlp(500)), Param("scale", 0.1))))),
    ("y ~ Categorical(uniform)", Factor("y", (), Dist("Categorical", (Param(None, Uniform()),)))),
    ("z | h ~ Normal(linear)", Factor("z", ("h",), Dist("Normal", (Param(None, Net("linear")),)))),
    ("x | z ~ Bernoulli(probs = 0.5)", Factor("x", ("z",), Dist("Bernoulli", (Param("probs", 0.5),)))),
    ("x | z ~ Bernoulli(0.5)", Factor("x", ("z",), Dist("Bernoulli", (Param("probs", 0.5),)))),
    ("x | z ~ Bernoulli(mlp(500, 500, activation = tanh))",
     Factor("x", ("z",), Dist("Bernoulli", (Param(None, mlp(500, 500, activation="tanh")),)))),
    ("h | x = mlp(256)", Factor("h", ("x",), None, mlp(256))),
    ("h | x = linear(64)", Factor("h", ("x",), None, Net("linear", (64,)))),
    ("h | x = mlp(activation = softplus)", Factor("h", ("x",), None, mlp(activation="softplus"))),
    ("h | x = foo(3, depth = 2)", Factor("h", ("x",), None, Net("foo", (3,), (Option("depth", 2),)))),
    # Arguments that cannot be named for sure stay as written (validation judges them).
    ("z ~ Normal(0, 1, 2)", Factor("z", (), Dist("Normal", (Param(None, 0), Param(None, 1), Param(None, 2))))),
    ("z ~ Normal(0, loc = 1)", Factor("z", (), Dist("Normal", (Param(None, 0), Param("loc", 1))))),
    ("z ~ Normal(linear, 0.1)", Factor("z", (), Dist("Normal", (Param(None, Net("linear")), Param(None, 0.1))))),
    ("z ~ Nromal(0, 1)", Factor("z", (), Dist("Nromal", (Param(None, 0), Param(None, 1))))),
    ("z ~ Normal()", Factor("z", (), Dist("Normal", ()))),
])
def test_factors(line, expected):
    assert factor_of(line) == expected


@pytest.mark.parametrize("body, settings, estimators, betas", [
    ("alpha = 0.1\nsamples = 8", (Setting("alpha", 0.1), Setting("samples", 8)), (), ()),
    ("samples = 8\nalpha = 0.1", (Setting("alpha", 0.1), Setting("samples", 8)), (), ()),  # sorted by name
    ("alpha_scaling = per_example", (Setting("alpha_scaling", "per_example"),), (), ()),
    ("y = enumerate", (), (Estimator("y", Call("enumerate")),), ()),
    ("y = relax(temperature = 0.66)", (), (Estimator("y", Call("relax", (Option("temperature", 0.66),))),), ()),
    ("y = reinforce\nc = enumerate", (), (Estimator("c", Call("enumerate")), Estimator("y", Call("reinforce"))), ()),
    ("beta z = 4\nbeta a = 0.5", (), (), (Beta("a", 0.5), Beta("z", 4))),
    ("alpah = 0.1", (Setting("alpah", 0.1),), (), ()),  # a literal is a setting; validation names the typo
])
def test_objective_block(body, settings, estimators, betas):
    spec = parse_ok(f"model m\nobjective {{\n{body}\n}}\n")
    assert spec.objective == Objective(settings, estimators, betas)


@pytest.mark.parametrize("line, expected", [
    ("epochs = 50", Setting("epochs", 50)),
    ("lr = 0.001", Setting("lr", 0.001)),
    ("lr = 1e-3", Setting("lr", 0.001)),
    ("data = fashion-mnist", Setting("data", "fashion-mnist")),
    ("data = data/train.npz", Setting("data", "data/train.npz")),
    ('data_dir = "~/my data"', Setting("data_dir", "~/my data")),
    ("flush_denormal = false", Setting("flush_denormal", False)),
    ("flush_denormal = true", Setting("flush_denormal", True)),
    ("labels = -1", Setting("labels", -1)),
    ("optimizer = adam", Setting("optimizer", "adam")),
])
def test_train_settings(line, expected):
    spec = parse_ok(f"model m\ntrain {{\n  {line}\n}}\n")
    assert spec.train == (expected,)


@pytest.mark.parametrize("text", [
    "model m\nencoder { z | x ~ Normal(linear) }\n",  # a one-line block
    "model m\nencoder {\n  z | x ~ Normal(linear)\n}",  # no final newline
    "model m\r\nencoder {\r\n  z | x ~ Normal(linear)\r\n}\r\n",  # CRLF
    "# header\n\nmodel m  # trailing comment\n\nencoder {  # here too\n  # a comment line\n\n  z | x ~ Normal(linear)\n}\n",
    "\n\nmodel m\nencoder{\nz|x~Normal(linear)}\n",
])
def test_layout_freedom(text):
    spec = parse_ok(text)
    assert spec.name == "m"
    assert spec.encoder == (Factor("z", ("x",), Dist("Normal", (Param(None, Net("linear")),))),)


def test_acceptance_m2_ir():
    spec = parse_ok((SPECS / "m2.gvae").read_text())
    assert spec.name == "m2"
    assert [v.name for v in spec.variables] == ["x", "y", "z"]
    assert spec.encoder[1] == Factor("z", ("x", "y"), Dist("Normal", (Param(None, mlp(500)),)))
    assert spec.decoder[0].dist == Dist("Normal", (Param("loc", 0), Param("scale", 1)))
    assert spec.objective == Objective((Setting("alpha", 0.1), Setting("samples", 1)),
                                       (Estimator("y", Call("enumerate")),))


def test_spans_are_one_based_and_cover_the_text():
    text = (SPECS / "style_first.gvae").read_text()
    spec = parse_ok(text)
    lines = text.splitlines()

    def covered(span: Span) -> str:
        assert span.line == span.end_line
        return lines[span.line - 1][span.col - 1:span.end_col - 1]

    assert spec.span == Span("t.gvae", 1, 1, 1, 18)
    assert covered(spec.encoder_span) == "encoder"
    assert covered(spec.decoder_span) == "decoder"
    y = spec.encoder[2]
    assert covered(y.span) == "y | z, h ~ Categorical(mlp(128))"
    assert covered(y.name_span) == "y"
    assert [covered(s) for s in y.parent_spans] == ["z", "h"]
    assert covered(y.dist.span) == "Categorical(mlp(128))"
    assert covered(y.dist.params[0].span) == "mlp(128)"
    assert covered(spec.variables[1].span) == "y : supervised categorical[10]"
    relax = spec.objective.estimators[0]
    assert covered(relax.span) == "y       = relax(temperature = 0.66)"
    assert covered(relax.method.span) == "relax(temperature = 0.66)"
    assert covered(relax.method.options[0].span) == "temperature = 0.66"
    assert covered(spec.objective.settings[1].span) == "samples = 8"


def test_spec_keeps_path_and_source():
    text = "model m\n"
    spec, _ = parse_dsl(text, "some/file.gvae")
    assert spec.path == "some/file.gvae" and spec.source == text


@pytest.mark.parametrize("text, line, col, fragment", [
    ("model m\nencoder {\n  z | x, y Normal(0, 1)\n}\n", 3, 12, "expected '~' or '=' after the parents of 'z'"),
    ("model m\nencoder {\n  z Normal(0, 1)\n}\n", 3, 5, "expected '|', '~' or '=' after 'z'"),
    ("model m\nencoder {\n  z ~ Normal(0, 1\n}\n", 3, 18, "expected ',' or ')' after '1', found the end of the line"),
    ("model m\nx : observed binary[784\n", 2, 24, "expected ',' or ']'"),
    ("model m\nx : observed\n", 2, 13, "expected a name after 'observed'"),
    ("model\n", 1, 6, "expected a name after 'model'"),
    ("model m\nencodr {\n}\n", 2, 8, "unknown block 'encodr'"),
    ("model m\nencoder {\n  z ~ Normal(0, 1)\n", 3, 19, "expected '}' to close the 'encoder' block opened at line 2"),
    ("model m\nencoder {\n  z ~ Normal(0, 1)\ndecoder {\n}\n", 4, 9, "to close the 'encoder' block"),
    ("model m\n~ x\n", 2, 1, "expected a statement"),
    ("model m\nx : observed binary[784] $\n", 2, 26, "found '$'"),
    ("model m\nx : observed binary[2.5]\n", 2, 21, "expected a whole number for a shape dimension, found '2.5'"),
    ("model m\nencoder { h | x = mlp(1.5) }\n", 2, 23, "a layer width of 'mlp'"),
    ("model m\nobjective {\n  alpha = relax(t = 1)\n}\n", 3, 11, "expected a value for 'alpha'"),
    ("model m\nobjective {\n  beta = 3\n}\n", 3, 8, "expected a name after 'beta'"),
    ("model m\ntrain {\n  epochs = 5 5\n}\n", 3, 14, "expected '}' or the end of the line after '5'"),
])
def test_syntax_errors(text, line, col, fragment):
    spec, diags = parse_dsl(text, "bad.gvae")
    assert spec is None
    first = diags[0]
    assert (first.code, first.severity) == ("syntax", "error")
    assert (first.span.path, first.span.line, first.span.col) == ("bad.gvae", line, col)
    assert fragment in first.message


def test_unknown_block_suggests_the_keyword():
    _, diags = parse_dsl("model m\ndecodr {\n}\n")
    assert diags[0].hint == "did you mean 'decoder'?"


def test_several_syntax_errors_are_reported():
    text = ("model m\nx : observed binary[784\ny : supervised categorical[10]\nencoder {\n"
            "  y | x Categorical(mlp(500))\n  z | x, y ~ Normal(mlp(500)\n}\n")
    spec, diags = parse_dsl(text, "t.gvae")
    assert spec is None
    assert [(d.code, d.span.line) for d in diags] == [("syntax", 2), ("syntax", 5), ("syntax", 6)]


@pytest.mark.parametrize("text, code, line", [
    ("x : observed binary[1]\n", "missing-model", 1),
    ("", "missing-model", 1),
    ("model a\nmodel b\n", "duplicate-model", 2),
    ("model a\nencoder {\n}\nencoder {\n}\n", "duplicate-block", 4),
])
def test_front_end_errors_keep_the_spec(text, code, line):
    spec, diags = parse_dsl(text, "t.gvae")
    assert spec is not None
    assert [(d.code, d.span.line) for d in diags] == [(code, line)]


def test_duplicate_blocks_keep_every_factor():
    spec, _ = parse_dsl("model a\nencoder { z | x ~ Normal(linear) }\nencoder { y | x ~ Categorical(linear) }\n")
    assert [f.name for f in spec.encoder] == ["z", "y"]


@pytest.mark.parametrize("family, params, expected", [
    ("Normal", (Param(None, 0), Param(None, 1)), (Param("loc", 0), Param("scale", 1))),
    ("Normal", (Param("scale", 1), Param("loc", 0)), (Param("loc", 0), Param("scale", 1))),
    ("Bernoulli", (Param("logits", 0.0),), (Param("logits", 0.0),)),
    ("Normal", (Param(None, Net("linear")),), (Param(None, Net("linear")),)),
    ("Categorical", (Param(None, Uniform()),), (Param(None, Uniform()),)),
    ("Unknown", (Param(None, 1),), (Param(None, 1),)),
    ("Normal", (Param("bogus", 1), Param("loc", 0)), (Param("loc", 0), Param("bogus", 1))),
])
def test_canonical_params(family, params, expected):
    assert canonical_params(family, params) == expected
    assert canonical_params(family, expected) == expected  # idempotent


def test_grammar_comes_from_the_package():
    path = grammar_path()
    assert path.name == "graphvae.lark" and path.is_file()
    assert path.parent.name == "grammar"


# A few hundred mutated texts: every outcome is a spec or diagnostics, never an exception.
_BASE = (SPECS / "style_first.gvae").read_text() + "train {\n  data = digits\n}\n"
_PIECES = ["{", "}", "(", ")", "[", "]", "|", "~", "=", ",", ":", "#", "\n", '"', "beta", "model", "1.5", "-"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(_BASE)), st.sampled_from(_PIECES + ["DEL"])), max_size=4))
def test_mutations_never_raise(edits):
    text = _BASE
    for pos, piece in edits:
        pos = min(pos, len(text))
        text = text[:pos] + text[pos + 1:] if piece == "DEL" else text[:pos] + piece + text[pos:]
    spec, diags = parse_dsl(text, "fuzz.gvae")
    assert spec is not None or any(d.is_error for d in diags)
    assert all(d.span is not None and d.span.line >= 1 and d.span.col >= 1 for d in diags)


def test_language_reference_covers_families_and_settings():
    from dataclasses import fields

    from graphvae.spec.families import FAMILIES
    from graphvae.spec.settings import ObjectiveConfig, TrainConfig

    doc = (SPECS.parent / "docs" / "language.md").read_text()
    names = list(FAMILIES) + [f.name for f in fields(ObjectiveConfig)] + [f.name for f in fields(TrainConfig)]
    assert [n for n in names if f"`{n}`" not in doc] == []
