"""Diagnostics in mypy's style: ``path:line:col: error: message [code]``, the source line and a caret.

Every stage collects :class:`Diagnostic` objects instead of raising on the first
problem; :class:`SpecError` carries them all out of the Python API.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from typing import Iterable, Sequence

from graphvae.spec.errorcodes import CODES, ERROR, WARNING, ErrorCode
from graphvae.spec.ir import Span

NOTE = "note"


@dataclass(frozen=True)
class Diagnostic:
    severity: str  # "error" | "warning" | "note"
    code: str  # a code of graphvae.spec.errorcodes, e.g. "undefined-name"
    message: str
    span: Span | None = None
    hint: str | None = None  # e.g. "did you mean 'Normal'?"

    @property
    def is_error(self) -> bool:
        return self.severity == ERROR

    def location(self, default_path: str = "<spec>") -> str:
        if self.span is None:
            return default_path
        return f"{self.span.path}:{self.span.line}:{self.span.col}"

    def headline(self, default_path: str = "<spec>") -> str:
        text = f"{self.location(default_path)}: {self.severity}: {self.message}"
        if self.hint:
            text += f"; {self.hint}"
        return f"{text} [{self.code}]"

    def to_json(self) -> dict:
        d = {"severity": self.severity, "code": self.code, "message": self.message, "hint": self.hint}
        if self.span is not None:
            d.update(path=self.span.path, line=self.span.line, column=self.span.col,
                     end_line=self.span.end_line, end_column=self.span.end_col)
        return d


def _make(severity: str, code: ErrorCode | str, message: str, span: Span | None, hint: str | None) -> Diagnostic:
    """A diagnostic with a registered code (an ErrorCode, or a registered code's name)."""
    registered = CODES.get(code) if isinstance(code, str) else code
    if not isinstance(registered, ErrorCode) or CODES.get(registered.code) is not registered:
        raise TypeError(f"diagnostics take a code registered in graphvae.spec.errorcodes, not {code!r}")
    code = registered
    if code.severity != severity:
        raise ValueError(f"[{code.code}] is registered as {code.severity}, reported as {severity}")
    return Diagnostic(severity, code.code, message, span, hint)


def error(code: ErrorCode | str, message: str, span: Span | None = None, hint: str | None = None) -> Diagnostic:
    return _make(ERROR, code, message, span, hint)


def warning(code: ErrorCode | str, message: str, span: Span | None = None, hint: str | None = None) -> Diagnostic:
    return _make(WARNING, code, message, span, hint)


def did_you_mean(name: str, choices: Iterable[str]) -> str | None:
    """``"did you mean 'x'?"`` for the closest choice, or None."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in choices}
        if name.lower() in lowered:
            close = [lowered[name.lower()]]
    return f"did you mean '{close[0]}'?" if close else None


def sort_key(d: Diagnostic):
    s = d.span
    return (s.path, s.line, s.col) if s else ("", 0, 0)


def render(diags: Sequence[Diagnostic], sources: dict[str, str] | None = None) -> str:
    """Human-readable report: headline, then the source line and a caret under the span."""
    sources = sources or {}
    out: list[str] = []
    for d in sorted(diags, key=sort_key):
        out.append(d.headline())
        s = d.span
        text = sources.get(s.path) if s else None
        if s and text is not None:
            lines = text.splitlines()
            if 1 <= s.line <= len(lines):
                src = lines[s.line - 1].expandtabs(1)
                out.append(f"    {src}")
                width = 1
                if s.end_line == s.line and s.end_col > s.col:
                    width = s.end_col - s.col
                out.append("    " + " " * (s.col - 1) + "^" * max(1, width))
    return "\n".join(out)


def summary(diags: Sequence[Diagnostic]) -> str:
    n_err = sum(d.is_error for d in diags)
    n_warn = sum(d.severity == WARNING for d in diags)
    parts = []
    if n_err:
        parts.append(f"{n_err} error{'s' if n_err != 1 else ''}")
    if n_warn:
        parts.append(f"{n_warn} warning{'s' if n_warn != 1 else ''}")
    return ", ".join(parts) if parts else "no issues"


def to_json(diags: Sequence[Diagnostic]) -> str:
    return json.dumps([d.to_json() for d in sorted(diags, key=sort_key)], indent=2)


class SpecError(Exception):
    """Raised by the Python API when a spec has errors.  Carries every diagnostic."""

    def __init__(self, diagnostics: Sequence[Diagnostic], sources: dict[str, str] | None = None):
        self.diagnostics = list(diagnostics)
        self.sources = dict(sources or {})
        super().__init__(render([d for d in self.diagnostics if d.is_error] or self.diagnostics, self.sources))

