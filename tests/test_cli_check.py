"""``graphvae check``: exit codes, text and JSON reports, several files, and no torch import."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from graphvae.cli import main

ROOT = Path(__file__).resolve().parent.parent
M2 = str(ROOT / "specs" / "m2.gvae")
M2_YAML = str(ROOT / "specs" / "m2.yaml")
BAD = str(ROOT / "tests" / "golden" / "bad_parameter.gvae")
CYCLE = str(ROOT / "tests" / "golden" / "cycle_encoder.yaml")
UNUSED = str(ROOT / "tests" / "golden" / "unused.gvae")
SYNTAX = str(ROOT / "tests" / "golden" / "syntax_missing_tilde.gvae")


@pytest.mark.parametrize("files, code", [
    ([M2], 0),
    ([M2, M2_YAML], 0),
    ([UNUSED], 0),
    ([BAD], 1),
    ([M2, BAD], 1),
    ([SYNTAX], 1),
    ([CYCLE, UNUSED], 1),
    (["no/such/file.gvae"], 1),
])
def test_exit_codes(files, code, capsys):
    assert main(["check", *files]) == code
    capsys.readouterr()


@pytest.mark.parametrize("argv", [["check"], ["check", "--format", "xml", M2], ["check", "--bogus", M2]])
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_text_report_has_location_source_caret_and_summary(capsys):
    assert main(["check", BAD, UNUSED, M2]) == 1
    out = capsys.readouterr().out.splitlines()
    first = next(i for i, line in enumerate(out) if line.startswith(BAD + ":20:27: error:"))
    assert out[first].endswith("[bad-parameter]")
    assert out[first + 1].strip() == "z        ~ Normal(0, 1, 2)"
    assert out[first + 2].index("^") == out[first + 1].index("2)")
    assert any(line.startswith(UNUSED + ":9:1: warning:") for line in out)
    assert out[-1] == "4 errors, 2 warnings in 2 of 3 files"


def test_clean_files_report_ok(capsys):
    assert main(["check", M2, M2_YAML]) == 0
    assert capsys.readouterr().out.strip() == "ok: 2 files checked, no issues"


def test_json_report_shape(capsys):
    assert main(["check", "--format", "json", BAD, UNUSED, M2]) == 1
    report = json.loads(capsys.readouterr().out)
    assert set(report) == {"ok", "errors", "warnings", "files"}
    assert (report["ok"], report["errors"], report["warnings"]) == (False, 4, 2)
    assert [f["path"] for f in report["files"]] == [BAD, UNUSED, M2]
    assert [(f["errors"], f["warnings"]) for f in report["files"]] == [(4, 0), (0, 2), (0, 0)]
    d = report["files"][0]["diagnostics"][0]
    assert set(d) >= {"severity", "code", "message", "hint", "path", "line", "column", "end_line", "end_column"}
    assert (d["path"], d["line"], d["column"], d["severity"], d["code"]) == (BAD, 20, 27, "error", "bad-parameter")


def test_json_clean(capsys):
    assert main(["check", "--format", "json", M2]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True and report["files"][0]["diagnostics"] == []


def test_check_does_not_import_torch():
    code = ("import sys; from graphvae.cli import main; rc = main(['check', 'specs/m2.gvae', 'specs/m2.yaml']); "
            "assert rc == 0; assert 'torch' not in sys.modules, 'torch imported'")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_console_script_exit_code():
    result = subprocess.run([sys.executable, "-m", "graphvae", "check", BAD], capture_output=True, text=True)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    assert "[bad-parameter]" in result.stdout


def test_output_into_a_closed_pipe_is_not_a_traceback():
    """`graphvae check --format json FILE | head -1`: the reader leaving early is not an error."""
    golden = Path(__file__).resolve().parent / "golden" / "unused.gvae"
    code = (
        "import sys\n"
        "from graphvae.cli import main\n"
        "class ClosedPipe:\n"
        "    def write(self, text): raise BrokenPipeError(32, 'Broken pipe')\n"
        "    def flush(self): pass\n"
        "    def fileno(self): return 1\n"
        "sys.stdout = ClosedPipe()\n"
        f"raise SystemExit(main(['check', '--format', 'json', {str(golden)!r}]))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert "Traceback" not in result.stderr
