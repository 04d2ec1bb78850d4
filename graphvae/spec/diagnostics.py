"""Diagnostics in mypy's style: ``path:line:col: error: message [code]``, the source line and a caret.

Every stage collects :class:`Diagnostic` objects instead of raising on the first
problem; :class:`SpecError` carries them all out of the Python API.
"""

from __future__ import annotations

import difflib
import json
import re
from collections import Counter
from dataclasses import dataclass, replace
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


MAX_SUGGESTION_CHOICES = 1000  # more choices than this get no "did you mean" (it would cost O(choices))
MAX_SUGGESTION_LENGTH = 100  # nor does a longer name (difflib's matching grows with the product of lengths)


def did_you_mean(name: str, choices: Iterable[str]) -> str | None:
    """``"did you mean 'x'?"`` for the closest choice, or None.  Bounded in cost: a name or a
    set of choices too large to search cheaply gets no suggestion."""
    if not isinstance(name, str) or len(name) > MAX_SUGGESTION_LENGTH:
        return None
    if not isinstance(choices, (list, tuple, dict, set, frozenset)):
        choices = list(choices)
    if len(choices) > MAX_SUGGESTION_CHOICES:
        return None
    choices = [c for c in choices if len(c) <= MAX_SUGGESTION_LENGTH]
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in choices}
        if name.lower() in lowered:
            close = [lowered[name.lower()]]
    return f"did you mean '{close[0]}'?" if close else None


def sort_key(d: Diagnostic):
    s = d.span
    return (s.path, s.line, s.col) if s else ("", 0, 0)


MAX_SHOWN = 50  # diagnostics render() prints in full; the rest are counted by code
MAX_LINE_WIDTH = 120  # characters of a source line shown, a window around the caret beyond that
MAX_MESSAGE_WIDTH = 400  # characters of a headline's message shown (JSON keeps it whole)
ELLIPSIS = "\u2026"

# Line breaks as each front end counts lines: lark counts "\n" (the DSL parser reads "\r\n" as
# one), PyYAML also a lone "\r" and the Unicode line breaks.
_BREAKS = {"dsl": re.compile(r"\r?\n"), "yaml": re.compile("\r\n|[\n\r\x85\u2028\u2029]")}


class SourceLines:
    """A text's lines, indexed once (``line(n)`` is then a slice), for showing many diagnostics
    of one file in time linear in its size."""

    def __init__(self, text: str, path: str = ""):
        language = "yaml" if path.lower().endswith((".yaml", ".yml")) else "dsl"
        self.text = text
        self.bounds = [(0, None)]  # (start, end) of each line; the last line ends with the text
        for m in _BREAKS[language].finditer(text):
            self.bounds[-1] = (self.bounds[-1][0], m.start())
            self.bounds.append((m.end(), None))

    def line(self, n: int) -> str | None:
        """Line ``n`` (1-based) without its line break, or None past the end."""
        if not 1 <= n <= len(self.bounds):
            return None
        start, end = self.bounds[n - 1]
        return self.text[start:end]


def _visible(text: str) -> str:
    """``text`` with tabs as one space and other invisible characters as U+FFFD, one character
    each, so that a caret counted in characters stays under its column."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else (" " if c == "\t" else "\ufffd") for c in text)


def source_excerpt(line: str, col: int, width: int = 1, max_width: int = MAX_LINE_WIDTH) -> tuple[str, str]:
    """The source line and its caret line for a span starting at ``col`` (1-based) and
    ``width`` characters wide.  A line longer than ``max_width`` is cut to a window around the
    column, with an ellipsis at each cut end; the caret stays under its character."""
    col = max(1, min(col, len(line) + 1))
    width = max(1, width)
    start, end = 0, len(line)
    if len(line) > max_width:
        if col > max_width - max_width // 4:  # else the caret fits in the line's first window
            start = max(0, min(col - 1 - max_width // 3, len(line) - max_width))
        end = start + max_width
    shown = _visible(line[start:end])
    prefix = ELLIPSIS if start > 0 else ""
    suffix = ELLIPSIS if end < len(line) else ""
    offset = col - 1 - start + len(prefix)
    width = max(1, min(width, len(prefix) + len(shown) + len(suffix) - offset))
    return prefix + shown + suffix, " " * offset + "^" * width


def _short(message: str, limit: int = MAX_MESSAGE_WIDTH) -> str:
    if len(message) <= limit:
        return message
    keep = limit // 2
    return f"{message[:keep]}{ELLIPSIS}{message[-keep:]}"


def _counted(diags: Sequence[Diagnostic]) -> str:
    """``1,234 more errors [wrong-type], 3 more warnings [unused]``: the diagnostics not shown."""
    counts = Counter((d.severity, d.code) for d in diags)
    parts = []
    for (severity, code), n in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        parts.append(f"{n:,} more {severity}{'s' if n != 1 else ''} [{code}]")
    return ", ".join(parts)


def render(diags: Sequence[Diagnostic], sources: dict[str, str] | None = None,
           limit: int | None = MAX_SHOWN) -> str:
    """Human-readable report: headline, then the source line and a caret under the span.

    The first ``limit`` diagnostics (by position) are shown, then one line counting the rest
    by code; each file is indexed once, a long line is shown as a window around the caret and a
    long message is shortened, so the report costs time linear in the files."""
    sources = sources or {}
    indexed: dict[str, SourceLines] = {}
    ordered = sorted(diags, key=sort_key)
    shown = ordered if limit is None else ordered[:limit]
    out: list[str] = []
    for d in shown:
        headline = d.headline()
        if len(d.message) > MAX_MESSAGE_WIDTH:
            headline = replace(d, message=_short(d.message)).headline()
        out.append(headline)
        s = d.span
        text = sources.get(s.path) if s else None
        if s and text is not None:
            if s.path not in indexed:
                indexed[s.path] = SourceLines(text, s.path)
            src = indexed[s.path].line(s.line)
            if src is not None:
                width = s.end_col - s.col if s.end_line == s.line and s.end_col > s.col else 1
                shown_line, caret = source_excerpt(src, s.col, width)
                out.append(f"    {shown_line}")
                out.append(f"    {caret}")
    rest = ordered[len(shown):]
    if rest:
        out.append(f"{ELLIPSIS} and {_counted(rest)} (graphvae check --format json lists them all)")
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

