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
