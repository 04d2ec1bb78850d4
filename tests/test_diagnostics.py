"""Diagnostics: mypy-style headlines, source line and caret, "did you mean", summaries and JSON."""

from __future__ import annotations

import json

import pytest

from graphvae.spec.diagnostics import SpecError, did_you_mean, error, render, summary, to_json, warning
from graphvae.spec.ir import Span

SOURCE = "model m\nx : observed binray[4]\n"


@pytest.mark.parametrize("name, choices, expected", [
    ("binray", ["binary", "real", "unit"], "did you mean 'binary'?"),
    ("Normall", ["Normal", "Laplace"], "did you mean 'Normal'?"),
    ("normal", ["Normal", "Gamma"], "did you mean 'Normal'?"),
    ("zzz", ["Normal", "Gamma"], None),
])
def test_did_you_mean(name, choices, expected):
    assert did_you_mean(name, choices) == expected


def test_render_has_headline_source_line_and_caret_under_the_span():
    d = error("unknown-domain", "unknown domain 'binray'", Span("m.gvae", 2, 14, 2, 20), "did you mean 'binary'?")
    lines = render([d], {"m.gvae": SOURCE}).splitlines()
    assert lines == [
        "m.gvae:2:14: error: unknown domain 'binray'; did you mean 'binary'? [unknown-domain]",
        "    x : observed binray[4]",
        "                 ^^^^^^",
    ]


def test_render_sorts_by_position_and_tolerates_missing_source():
    later = warning("unused", "b", Span("m.gvae", 2, 1))
    earlier = error("syntax", "a", Span("m.gvae", 1, 1))
    text = render([later, earlier], {})
    assert text.splitlines() == ["m.gvae:1:1: error: a [syntax]", "m.gvae:2:1: warning: b [unused]"]


@pytest.mark.parametrize("diags, expected", [
    ([], "no issues"),
    ([error("syntax", "m")], "1 error"),
    ([error("syntax", "m"), error("cycle", "m"), warning("unused", "m")], "2 errors, 1 warning"),
])
def test_summary(diags, expected):
    assert summary(diags) == expected


def test_json_carries_positions_and_codes():
    rows = json.loads(to_json([error("cycle", "q has a cycle", Span("s.yaml", 3, 5, 3, 9))]))
    assert rows == [{"severity": "error", "code": "cycle", "message": "q has a cycle", "hint": None,
                     "path": "s.yaml", "line": 3, "column": 5, "end_line": 3, "end_column": 9}]


def test_spec_error_message_lists_errors_only():
    exc = SpecError([warning("unused", "w"), error("cycle", "c", Span("s.gvae", 1, 1))], {"s.gvae": "model s\n"})
    assert "error: c [cycle]" in str(exc) and "unused" not in str(exc)
    assert len(exc.diagnostics) == 2


def test_only_registered_codes_make_diagnostics():
    with pytest.raises(TypeError, match="registered in graphvae.spec.errorcodes"):
        error("no-such-code", "m")
    with pytest.raises(ValueError, match="registered as warning"):
        error("unused", "m")


# -- long lines, many diagnostics: the report stays linear ----------------------------------------
from graphvae.spec.diagnostics import MAX_LINE_WIDTH, SourceLines, source_excerpt  # noqa: E402


@pytest.mark.parametrize("line, col, width, shown, caret", [
    ("short line", 7, 4, "short line", "      ^^^^"),
    ("a\tb", 3, 1, "a b", "  ^"),  # a tab is one column, shown as a space
    ("x\x00y", 3, 1, "x\ufffdy", "  ^"),  # an invisible character keeps its column
    ("x" * 200, 3, 1, "x" * MAX_LINE_WIDTH + "\u2026", "  ^"),  # the caret fits the first window
    ("a" * 500 + "XYZ" + "b" * 500, 501, 3, "\u2026" + "a" * 40 + "XYZ" + "b" * 77 + "\u2026", " " * 41 + "^^^"),
    ("x" * 200 + "E", 201, 1, "\u2026" + "x" * 119 + "E", " " * 120 + "^"),  # the last character
    ("abc", 10, 1, "abc", "   ^"),  # past the end: at the end
])
def test_source_excerpt_windows_a_long_line_around_the_caret(line, col, width, shown, caret):
    got_line, got_caret = source_excerpt(line, col, width)
    assert (got_line, got_caret) == (shown, caret)


@pytest.mark.parametrize("text, path, lines", [
    ("a\nb\r\nc", "s.gvae", ["a", "b", "c"]),
    ("a\rb\nc", "s.gvae", ["a\rb", "c"]),  # the DSL counts "\n" only, as lark does
    ("a\rb\x85c\u2028d\n", "s.yaml", ["a", "b", "c", "d", ""]),  # PyYAML's line breaks
    ("", "s.gvae", [""]),
])
def test_source_lines_count_lines_as_each_front_end_does(text, path, lines):
    src = SourceLines(text, path)
    assert [src.line(n) for n in range(1, len(lines) + 1)] == lines
    assert src.line(len(lines) + 1) is None and src.line(0) is None


@pytest.mark.parametrize("n, tail", [
    (50, None),
    (51, "\u2026 and 1 more error [syntax] (graphvae check --format json lists them all)"),
    (10_000, "\u2026 and 9,950 more errors [syntax] (graphvae check --format json lists them all)"),
])
def test_render_shows_the_first_50_and_counts_the_rest(n, tail):
    text = "x\n" * n
    diags = [error("syntax", f"e{i}", Span("m.gvae", i + 1, 1, i + 1, 2)) for i in range(n)]
    lines = render(diags, {"m.gvae": text}).splitlines()
    assert len(lines) == 3 * min(n, 50) + (tail is not None)
    assert lines[0] == "m.gvae:1:1: error: e0 [syntax]"
    assert (lines[-1] if tail else None) == tail


def test_render_counts_the_rest_by_code_most_first():
    diags = ([error("syntax", "e", Span("m.gvae", 1, 1))] * 50 + [warning("unused", "w", Span("m.gvae", 2, 1))] * 2
             + [error("cycle", "c", Span("m.gvae", 3, 1))] * 3)
    assert render(diags, {}).splitlines()[-1] == ("\u2026 and 3 more errors [cycle], 2 more warnings [unused] "
                                                   "(graphvae check --format json lists them all)")


def test_render_shortens_a_long_message_and_json_keeps_it():
    d = error("syntax", "m" * 10_000, Span("m.gvae", 1, 1))
    [headline] = render([d], {}).splitlines()
    assert len(headline) < 500 and "\u2026" in headline and headline.endswith("[syntax]")
    assert json.loads(to_json([d]))[0]["message"] == "m" * 10_000


def test_did_you_mean_is_bounded():
    assert did_you_mean("v1", [f"v{i}" for i in range(5000)]) is None  # too many choices to search
    assert did_you_mean("x" * 1000, ["x"]) is None
    assert did_you_mean("Normall", ("Normal",)) == "did you mean 'Normal'?"
