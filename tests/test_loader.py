"""graphvae.spec.loader: reading, dispatch by extension, load_spec, and a mutation fuzz test of both front ends."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graphvae.spec.diagnostics import Diagnostic, SpecError, render
from graphvae.spec.ir import Spec
from graphvae.spec.loader import EXTENSIONS, check_file, check_text, load_spec

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted(p for p in (ROOT / "specs").iterdir() if p.suffix in EXTENSIONS)
DSL = [p for p in SPECS if p.suffix == ".gvae"]
YAML = [p for p in SPECS if p.suffix in (".yaml", ".yml")]


@pytest.mark.parametrize("path", SPECS, ids=[p.name for p in SPECS])
def test_check_file_reads_every_shipped_spec(path):
    spec, diags = check_file(path)
    assert isinstance(spec, Spec) and not any(d.is_error for d in diags)
    assert spec.path == str(path) and spec.source == path.read_text()


@pytest.mark.parametrize("stem", sorted({p.stem for p in YAML} & {p.stem for p in DSL}))
def test_dsl_and_yaml_twins_load_equal(stem):
    assert load_spec(ROOT / "specs" / f"{stem}.gvae") == load_spec(str(ROOT / "specs" / f"{stem}.yaml"))


@pytest.mark.parametrize("name, content, code", [
    ("model.txt", b"model m\n", "unknown-extension"),
    ("model", b"model m\n", "unknown-extension"),
    ("latin1.gvae", "model caf\xe9\n".encode("latin-1"), "unreadable-file"),
    ("missing.gvae", None, "unreadable-file"),
    ("folder.yaml", "dir", "unreadable-file"),
])
def test_unreadable_inputs_become_diagnostics(tmp_path, name, content, code):
    path = tmp_path / name
    if content == "dir":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    spec, diags = check_file(path)
    assert spec is None
    assert [(d.severity, d.code) for d in diags] == [("error", code)]
    assert diags[0].span.path == str(path) and str(path) in diags[0].message


@pytest.mark.parametrize("suffix", [".gvae", ".yaml", ".yml", ".GVAE"])
def test_dispatch_by_extension(tmp_path, suffix):
    source = (ROOT / "specs" / ("m2.gvae" if suffix.lower() == ".gvae" else "m2.yaml")).read_text()
    path = tmp_path / f"m2{suffix}"
    path.write_text(source)
    assert load_spec(path) == load_spec(ROOT / "specs" / "m2.gvae")


def test_syntax_errors_skip_validation():
    spec, diags = check_text("model m\nx : observed binary[4\n", "s.gvae", "dsl")
    assert {d.code for d in diags} == {"syntax"}


def test_load_spec_raises_with_every_error_and_the_source(tmp_path):
    path = tmp_path / "bad.gvae"
    text = (ROOT / "tests" / "golden" / "bad_parameter.gvae").read_text()
    path.write_text(text)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert [d.code for d in info.value.diagnostics] == ["bad-parameter"] * 4
    assert info.value.sources == {str(path): text}
    assert "scale" in str(info.value) and "^" in str(info.value)


def test_load_spec_allows_warnings():
    spec = load_spec(ROOT / "tests" / "golden" / "unused.gvae")
    assert spec.name == "golden"


def test_load_spec_validates_a_spec_object():
    good = load_spec(ROOT / "specs" / "m2.gvae")
    assert load_spec(good) is good
    with pytest.raises(SpecError):
        load_spec(Spec("empty"))


# -- fuzzing: mutated specs give a Spec or diagnostics, never another exception ----------------

TOKEN = re.compile(r"\s+|[A-Za-z_][A-Za-z0-9_]*|\d+(?:\.\d*)?|.", re.S)


def tokens(text: str) -> list[str]:
    return TOKEN.findall(text)


def mutate(text: str, ops: list[tuple[str, int, int]]) -> str:
    """Apply (operation, i, j) steps: delete/duplicate/swap tokens or lines (indices wrap around)."""
    for op, i, j in ops:
        unit = "line" if op.endswith("line") else "token"
        parts = text.splitlines(keepends=True) if unit == "line" else tokens(text)
        if not parts:
            continue
        i, j = i % len(parts), j % len(parts)
        if op.startswith("delete"):
            del parts[i]
        elif op.startswith("duplicate"):
            parts.insert(j, parts[i])
        else:
            parts[i], parts[j] = parts[j], parts[i]
        text = "".join(parts)
    return text


OPS = st.lists(st.tuples(st.sampled_from(["delete_token", "duplicate_token", "swap_token",
                                          "delete_line", "duplicate_line", "swap_line"]),
                         st.integers(0, 10_000), st.integers(0, 10_000)), min_size=1, max_size=3)
FUZZ = settings(max_examples=100, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])


def assert_outcome(text: str, path: str, language: str) -> None:
    spec, diags = check_text(text, path, language)
    assert spec is None or isinstance(spec, Spec)
    assert all(isinstance(d, Diagnostic) and d.severity in ("error", "warning", "note") for d in diags)
    if spec is None:
        assert any(d.is_error for d in diags)
    render(diags, {path: text})  # every span renders against the mutated source


def test_mutate_operations():
    assert mutate("a b", [("delete_token", 1, 0)]) == "ab"
    assert mutate("a\nb\n", [("swap_line", 0, 1)]) == "b\na\n"
    assert mutate("a\nb\n", [("duplicate_line", 1, 0)]) == "b\na\nb\n"


@FUZZ
@given(st.sampled_from(DSL), OPS)
def test_mutated_dsl_gives_spec_or_diagnostics(path, ops):
    assert_outcome(mutate(path.read_text(), ops), "mutant.gvae", "dsl")


@FUZZ
@given(st.sampled_from(YAML), OPS)
def test_mutated_yaml_gives_spec_or_diagnostics(path, ops):
    assert_outcome(mutate(path.read_text(), ops), "mutant.yaml", "yaml")
