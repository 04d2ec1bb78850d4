"""Read a spec file, parse it by extension, validate it (torch-free).

* :func:`check_file` returns the spec (or None) and every diagnostic; it never raises for bad input.
* :func:`load_spec` returns a valid :class:`~graphvae.spec.ir.Spec` or raises
  :class:`~graphvae.spec.diagnostics.SpecError` carrying every diagnostic (warnings are allowed).
* :func:`load_spec_file` also returns the file's text and suffix, for a run folder to store.

The DSL parser (and lark) is imported only for ``.gvae`` text, the YAML loader only for YAML.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from graphvae.errors import UserError
from graphvae.spec import errorcodes as codes
from graphvae.spec.diagnostics import Diagnostic, SpecError, error, sort_key
from graphvae.spec.ir import Span, Spec

EXTENSIONS = {".gvae": "dsl", ".yaml": "yaml", ".yml": "yaml"}
# A spec is written by hand (the largest shipped one is 2 KB); a file over 128 KB is refused
# unread, so that checking any file stays within a second or two (PyYAML reads some 100 KB/s).
# check_text has no such limit.
MAX_SPEC_BYTES = 128 * 1024


def _parser(language: str) -> Callable[[str, str], tuple[Spec | None, list[Diagnostic]]]:
    if language == "dsl":
        from graphvae.spec.parser import parse_dsl

        return parse_dsl
    from graphvae.spec.yaml_loader import load_yaml

    return load_yaml


def check_text(text: str, path: str, language: str) -> tuple[Spec | None, list[Diagnostic]]:
    """Parse ``text`` as ``"dsl"`` or ``"yaml"``; write its plates out and validate it when it parsed
    without errors.  The spec returned is the expanded one (its ``written`` the plate form), or
    the spec as written when its plates have errors."""
    from graphvae.spec.plates import expand, fold_repeats
    from graphvae.spec.validate import validate

    spec, diags = _parser(language)(text, path)
    diags = list(diags)
    if spec is not None and not any(d.is_error for d in diags):
        expanded, more = expand(spec)
        diags += more
        if expanded is not None:
            spec = expanded
            diags += fold_repeats(validate(spec)) if spec.written is not None else validate(spec)
    return spec, sorted(diags, key=sort_key)


def _unknown_extension(path: str) -> str:
    return f"cannot tell the language of '{path}': spec files end in {', '.join(EXTENSIONS)}"


def language_of(path: str | os.PathLike) -> str:
    """``"dsl"`` or ``"yaml"`` by the file's extension; a UserError for any other."""
    language = EXTENSIONS.get(Path(path).suffix.lower())
    if language is None:
        raise UserError(_unknown_extension(os.fspath(path)))
    return language


def _read(path: str) -> tuple[str | None, list[Diagnostic]]:
    at = Span(path, 1, 1)
    if Path(path).suffix.lower() not in EXTENSIONS:
        return None, [error(codes.UNKNOWN_EXTENSION, _unknown_extension(path), at)]
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_SPEC_BYTES + 1)  # bounded: a link to /dev/zero cannot fill the memory
        if len(data) > MAX_SPEC_BYTES:
            return None, [error(codes.TOO_LARGE, f"'{path}' is larger than {MAX_SPEC_BYTES // 1024} KB, the most a "
                                "spec file may hold", at)]
        # a byte-order mark is no part of the spec: columns count from after it
        return data.decode("utf-8").removeprefix("\ufeff"), []
    except UnicodeDecodeError as exc:
        return None, [error(codes.UNREADABLE_FILE, f"'{path}' is not UTF-8 text (byte {exc.start})", at)]
    except OSError as exc:
        return None, [error(codes.UNREADABLE_FILE, f"cannot read '{path}': {exc.strerror or exc}", at)]


def read_and_check(path: str) -> tuple[Spec | None, list[Diagnostic], str]:
    """:func:`check_file` that also returns the text read (``""`` when unreadable), for reports."""
    text, diags = _read(path)
    if text is None:
        return None, diags, ""
    spec, diags = check_text(text, path, EXTENSIONS[Path(path).suffix.lower()])
    return spec, diags, text


def check_file(path: str | os.PathLike) -> tuple[Spec | None, list[Diagnostic]]:
    """Read, parse (``.gvae``: DSL; ``.yaml``/``.yml``: YAML) and validate one file.

    Returns the spec (None when it could not be read or parsed) and all diagnostics, sorted."""
    spec, diags, _ = read_and_check(os.fspath(path))
    return spec, diags


def load_spec(path_or_spec: str | os.PathLike | Spec) -> Spec:
    """A validated spec from a file path, or ``path_or_spec`` itself after validating it.

    Raises SpecError with every diagnostic (and the source text) when there are errors."""
    if isinstance(path_or_spec, Spec):
        from graphvae.spec.plates import expand
        from graphvae.spec.validate import validate

        spec, diags = expand(path_or_spec)
        text, path = path_or_spec.source, path_or_spec.path
        if spec is not None:
            diags = diags + validate(spec)
    else:
        path = os.fspath(path_or_spec)
        spec, diags, text = read_and_check(path)
    if spec is None or any(d.is_error for d in diags):
        raise SpecError(diags, {path: text})
    return spec


def load_spec_file(path: str | os.PathLike) -> tuple[Spec, str, str]:
    """``(spec, text, suffix)`` of a valid spec file; a UserError when there is no such file,
    a SpecError when the spec has errors."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such spec file")
    return load_spec(str(path)), path.read_text(encoding="utf-8"), path.suffix.lower()
