"""``graphvae check FILE... [--format text|json]``: every diagnostic of every file; 0 clean, 1 errors."""

from __future__ import annotations

import json

from graphvae.spec.diagnostics import Diagnostic, render, summary
from graphvae.spec.loader import read_and_check


def _file_report(path: str, diags: list[Diagnostic]) -> dict:
    return {
        "path": path,
        "errors": sum(d.is_error for d in diags),
        "warnings": sum(d.severity == "warning" for d in diags),
        "diagnostics": [d.to_json() for d in diags],
    }


def run(args) -> int:
    results = []
    for path in args.files:
        _, diags, text = read_and_check(path)
        results.append((path, diags, text))
    all_diags = [d for _, diags, _ in results for d in diags]
    failed = any(d.is_error for d in all_diags)
    if args.format == "json":
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
            print(f"{summary(all_diags)} in {with_issues} of {files}")
        else:
            print(f"ok: {files} checked, no issues")
    return 1 if failed else 0
