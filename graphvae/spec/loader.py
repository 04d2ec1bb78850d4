"""Read a spec file, parse it by extension, validate it; and the ``graphvae check`` command (torch-free).

* :func:`check_file` returns the spec (or None) and every diagnostic; it never raises for bad input.
* :func:`load_spec` returns a valid :class:`~graphvae.ir.Spec` or raises
  :class:`~graphvae.diagnostics.SpecError` carrying every diagnostic (warnings are allowed).
* :func:`run_check` is ``graphvae check FILE... [--format text|json]``: exit 0 when no file has
  errors (warnings allowed), 1 otherwise.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Callable

from graphvae.spec.diagnostics import Diagnostic, SpecError, error, render, sort_key, summary
from graphvae.spec.ir import Span, Spec

EXTENSIONS = {".gvae": "dsl", ".yaml": "yaml", ".yml": "yaml"}


def _parser(language: str) -> Callable[[str, str], tuple[Spec | None, list[Diagnostic]]]:
    if language == "dsl":
        from graphvae.spec.parser import parse_dsl

        return parse_dsl
    from graphvae.spec.yaml_loader import load_yaml

    return load_yaml


def check_text(text: str, path: str, language: str) -> tuple[Spec | None, list[Diagnostic]]:
    """Parse ``text`` as ``"dsl"`` or ``"yaml"``; validate it when it parsed without errors."""
    from graphvae.spec.validate import validate

    spec, diags = _parser(language)(text, path)
    diags = list(diags)
    if spec is not None and not any(d.is_error for d in diags):
        diags += validate(spec)
    return spec, sorted(diags, key=sort_key)


def _read(path: str) -> tuple[str | None, list[Diagnostic]]:
    at = Span(path, 1, 1)
    if Path(path).suffix.lower() not in EXTENSIONS:
        return None, [error("unknown-extension", f"cannot tell the language of '{path}': spec files end in "
                            f"{', '.join(EXTENSIONS)}", at)]
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read(), []
    except UnicodeDecodeError as exc:
        return None, [error("unreadable-file", f"'{path}' is not UTF-8 text (byte {exc.start})", at)]
    except OSError as exc:
        return None, [error("unreadable-file", f"cannot read '{path}': {exc.strerror or exc}", at)]


def _check(path: str) -> tuple[Spec | None, list[Diagnostic], str]:
    text, diags = _read(path)
    if text is None:
        return None, diags, ""
    spec, diags = check_text(text, path, EXTENSIONS[Path(path).suffix.lower()])
    return spec, diags, text


def check_file(path: str | os.PathLike) -> tuple[Spec | None, list[Diagnostic]]:
    """Read, parse (``.gvae``: DSL; ``.yaml``/``.yml``: YAML) and validate one file.

    Returns the spec (None when it could not be read or parsed) and all diagnostics, sorted."""
    spec, diags, _ = _check(os.fspath(path))
    return spec, diags


def load_spec(path_or_spec: str | os.PathLike | Spec) -> Spec:
    """A validated spec from a file path, or ``path_or_spec`` itself after validating it.

    Raises SpecError with every diagnostic (and the source text) when there are errors."""
    if isinstance(path_or_spec, Spec):
        from graphvae.spec.validate import validate

        spec, diags, text = path_or_spec, validate(path_or_spec), path_or_spec.source
        path = spec.path
    else:
        path = os.fspath(path_or_spec)
        spec, diags, text = _check(path)
    if spec is None or any(d.is_error for d in diags):
        raise SpecError(diags, {path: text})
    return spec


# -- graphvae check -------------------------------------------------------------------

def _file_report(path: str, diags: list[Diagnostic]) -> dict:
    return {
        "path": path,
        "errors": sum(d.is_error for d in diags),
        "warnings": sum(d.severity == "warning" for d in diags),
        "diagnostics": [d.to_json() for d in diags],
    }


def run_check(args) -> int:
    """``graphvae check FILE... [--format text|json]``: every diagnostic of every file; 0 clean, 1 errors."""
    results = []
    for path in args.files:
        _, diags, text = _check(path)
        results.append((path, diags, text))
    all_diags = [d for _, diags, _ in results for d in diags]
    failed = any(d.is_error for d in all_diags)
    if getattr(args, "format", "text") == "json":
        report = {
            "ok": not failed,
            "errors": sum(d.is_error for d in all_diags),
            "warnings": sum(d.severity == "warning" for d in all_diags),
            "files": [_file_report(path, diags) for path, diags, _ in results],
        }
        print(json.dumps(report, indent=2))
    else:
        for path, diags, text in results:
            if diags:
                print(render(diags, {path: text}))
        with_issues = sum(1 for _, diags, _ in results if diags)
        n = len(results)
        files = f"{n} file{'s' if n != 1 else ''}"
        if all_diags:
            print(f"{summary(all_diags)} in {with_issues} of {files}", file=sys.stdout)
        else:
            print(f"ok: {files} checked, no issues")
    return 1 if failed else 0
