"""graphvae.spec.validate: golden invalid specs, the shipped specs, and the structural rules on IR."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from graphvae.spec.errorcodes import CODES
from graphvae.spec.estimators import default_estimator, estimator_method
from graphvae.spec.ir import Call, Dist, Estimator, Factor, Net, Objective, Param, Setting, Spec, Uniform, Variable
from graphvae.spec.loader import check_file
from graphvae.spec.validate import RULES, has_errors, validate

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = sorted((ROOT / "tests" / "golden").glob("*.*"))
SPECS = sorted(p for p in (ROOT / "specs").glob("*") if p.suffix in (".gvae", ".yaml", ".yml"))
EXPECT = re.compile(r"#\s*expect:\s*(\d+):(\d+)\s+(error|warning)\s+([a-z][a-z-]*)")

# Warnings the shipped specs may carry: (file name, code, variable or node named in the message).
ACCEPTED_SPEC_WARNINGS: set[tuple[str, str]] = set()


def expected(path: Path) -> set[tuple[int, int, str, str]]:
    text = path.read_bytes().decode("utf-8", errors="replace")  # a golden may hold bytes that are not UTF-8
    return {(int(l), int(c), sev, code) for l, c, sev, code in EXPECT.findall(text)}


def test_golden_files_exist_for_every_code():
    """Every registered code a spec file can trigger has a golden spec that triggers it."""
    codes = {code for p in GOLDEN for *_, code in expected(p)}
    wanted = {c.code for c in CODES.values() if c.golden}
    assert wanted <= codes, sorted(wanted - codes)
    assert codes <= set(CODES), sorted(codes - set(CODES))
    for p in GOLDEN:
        for *_, severity, code in expected(p):
            assert CODES[code].severity == severity, (p.name, code)


@pytest.mark.parametrize("path", GOLDEN, ids=[p.name for p in GOLDEN])
def test_golden(path):
    want = expected(path)
    assert want, f"{path.name} has no '# expect:' lines"
    spec, diags = check_file(path)
    got = {(d.span.line, d.span.col, d.severity, d.code) for d in diags}
    assert got == want
    for d in diags:
        assert d.span.path == str(path)
        assert d.message and d.code in d.headline()


TWINS = [p for p in GOLDEN if p.suffix == ".yaml" and p.with_suffix(".gvae").exists()]


def test_yaml_goldens_twin_dsl_goldens():
    assert len(TWINS) >= 5


@pytest.mark.parametrize("path", TWINS, ids=[p.stem for p in TWINS])
def test_yaml_and_dsl_twins_report_the_same_rules(path):
    """The same mistakes in YAML and in the DSL give the same codes, messages and order."""
    _, yaml_diags = check_file(path)
    _, dsl_diags = check_file(path.with_suffix(".gvae"))
    assert [(d.severity, d.code, d.message) for d in yaml_diags] == \
           [(d.severity, d.code, d.message) for d in dsl_diags]


@pytest.mark.parametrize("path", SPECS, ids=[p.name for p in SPECS])
def test_shipped_specs_are_valid(path):
    spec, diags = check_file(path)
    assert spec is not None
    assert not has_errors(diags), "\n".join(d.headline() for d in diags)
    warnings = {(path.name, d.code) for d in diags}
    assert warnings <= ACCEPTED_SPEC_WARNINGS, warnings - ACCEPTED_SPEC_WARNINGS


# -- rules on IR ------------------------------------------------------------------------------

X = Variable("x", "observed", "binary", (4,))
Y = Variable("y", "supervised", "categorical", (3,))
Z = Variable("z", "latent", "real", (2,))


def net(*hidden: int) -> Dist:
    return Dist("Normal", (Param(None, Net("mlp", hidden or (8,))),))


def fac(name: str, parents: str = "", dist: Dist | None = None, family: str | None = None) -> Factor:
    ps = tuple(p.strip() for p in parents.split(",") if p.strip())
    if dist is None:
        fam = family or {"x": "Bernoulli", "y": "Categorical"}.get(name, "Normal")
        if ps:
            dist = Dist(fam, (Param(None, Net("mlp", (8,))),))
        elif fam == "Categorical":
            dist = Dist(fam, (Param(None, Uniform()),))
        else:
            dist = Dist(fam, (Param("loc", 0), Param("scale", 1)))
    return Factor(name, ps, dist)


def m2(**changes) -> Spec:
    base = dict(
        name="m2", variables=(X, Y, Z),
        encoder=(fac("y", "x"), fac("z", "x, y")),
        decoder=(fac("z"), fac("y"), fac("x", "y, z")),
        objective=Objective(estimators=(Estimator("y", Call("enumerate")),)),
    )
    base.update(changes)
    return Spec(**base)


def codes(spec: Spec) -> list[tuple[str, str]]:
    return [(d.severity, d.code) for d in validate(spec)]


def test_m2_ir_is_clean():
    assert validate(m2()) == []


@pytest.mark.parametrize("changes, want", [
    (dict(variables=(Z,), encoder=(fac("z"),), decoder=(fac("z"),), objective=Objective()),
     [("error", "no-observed")]),
    (dict(variables=(X, Y, Z, Variable("z", "latent", "real", (3,)))), [("error", "duplicate")]),
    (dict(encoder=(fac("y", "x"), fac("z", "x, y"), fac("z", "x"))), [("error", "duplicate")]),
    (dict(encoder=(fac("y", "x, z"), fac("z", "x, y"))), [("error", "cycle")]),
    (dict(decoder=(fac("z", "z"), fac("y"), fac("x", "y, z"))), [("error", "cycle")]),
    (dict(encoder=(fac("z", "x"),)), [("error", "missing-factor")]),
    (dict(decoder=(fac("z"), fac("y"))), [("error", "missing-factor")]),
    (dict(encoder=(fac("y", "x"), fac("z", "x, y"), fac("x", "z"))), [("error", "cycle"),
                                                                        ("error", "observed-in-encoder")]),
    (dict(encoder=(fac("y", "x"), fac("z", "x, w"))), [("error", "undefined-name")]),
    (dict(decoder=(fac("z"), fac("y"), fac("x", "y, z"), fac("w"))), [("error", "undefined-name")]),
    (dict(variables=(X, Y, Z, Variable("w", "latent", "real", (2,)))), [("warning", "unused")]),
    (dict(variables=(X, Variable("y", "supervized", "categorical", (3,)), Z)), [("error", "unknown-role")]),
])
def test_structural_rules(changes, want):
    assert sorted(codes(m2(**changes))) == sorted(want)


def test_label_after_style_is_allowed():
    """Any DAG order in q, including y inferred from z (the paper's general case)."""
    h = Factor("h", ("x",), net=Net("mlp", (8,)))
    spec = m2(encoder=(h, fac("z", "h"), fac("y", "z, h")))
    assert validate(spec) == []


def test_cycle_message_prints_the_cycle():
    [d] = validate(m2(encoder=(fac("y", "x, z"), fac("z", "x, y"))))
    assert "y -> z -> y" in d.message and "encoder" in d.message


def test_encoder_dependency_on_a_latent_without_q_factor():
    w = Variable("w", "latent", "real", (2,))
    spec = m2(variables=(X, Y, Z, w), encoder=(fac("y", "x"), fac("z", "x, w")),
              decoder=(fac("z"), fac("y"), fac("w"), fac("x", "y, z, w")))
    got = {(d.code, d.message.split("'")[1]) for d in validate(spec)}
    assert got == {("missing-factor", "w"), ("encoder-dependency", "w")}


@pytest.mark.parametrize("name, kind", [("h", "encoder"), ("g", "decoder")])
def test_deterministic_node_clashing_with_variable(name, kind):
    clash = Factor("z", ("x",), net=Net("mlp", (8,)))
    spec = m2(encoder=(fac("y", "x"), clash)) if kind == "encoder" else m2(
        decoder=(fac("z"), fac("y"), fac("x", "y, z"), Factor("y", ("z",), net=Net("mlp", (4,)))))
    assert "name-clash" in [c for _, c in codes(spec)]


def test_every_rule_tolerates_an_empty_spec():
    diags = validate(Spec("empty"))
    assert [d.code for d in diags] == ["no-observed"]
    assert len(RULES) >= 20


@pytest.mark.parametrize("var, method", [
    (Variable("y", "supervised", "categorical", (10,)), "enumerate"),
    (Variable("y", "supervised", "categorical", (1024,)), "enumerate"),
    (Variable("y", "supervised", "categorical", (1025,)), "reinforce"),
    (Variable("b", "latent", "binary", (10,)), "enumerate"),
    (Variable("b", "latent", "binary", (11,)), "reinforce"),
    (Variable("b", "latent", "binary", (2, 5)), "enumerate"),
])
def test_default_estimator(var, method):
    spec = Spec("t", (X, var))
    assert default_estimator(spec, var) == method
    assert default_estimator(spec, var.name) == method
    assert estimator_method(spec, var.name) == method


@pytest.mark.parametrize("name", ["x", "z", "nope"])
def test_default_estimator_rejects_non_discrete_or_observed(name):
    spec = m2()
    with pytest.raises(ValueError):
        default_estimator(spec, name)
    assert estimator_method(spec, name) is None


def test_estimator_method_prefers_the_spec():
    spec = m2(objective=Objective(estimators=(Estimator("y", Call("relax")),)))
    assert estimator_method(spec, "y") == "relax"


def test_diagnostics_are_sorted_by_position():
    from graphvae.spec.ir import Span

    s = lambda line: Span("f", line, 1)  # noqa: E731
    spec = m2(objective=Objective(settings=(Setting("alpa", 1, s(9)), Setting("samples", 0, s(3))),
                                  estimators=(Estimator("y", Call("enumerate")),)))
    lines = [d.span.line for d in validate(spec)]
    assert lines == sorted(lines) == [3, 9]
