"""Canonical DSL and YAML text: round trips over every shipped spec, idempotence, and `graphvae fmt`."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from graphvae.cli import main
from graphvae.spec.formatter import header_comment, to_dsl, to_yaml
from graphvae.spec.ir import Beta, Call, Dist, Estimator, Factor, Net, Objective, Option, Param, Setting, Spec, Variable
from graphvae.spec.parser import parse_dsl
from graphvae.spec.yaml_loader import load_yaml

SPECS = Path(__file__).resolve().parent.parent / "specs"
ALL_SPECS = sorted(p.name for p in SPECS.iterdir() if p.suffix in (".gvae", ".yaml"))


def read(name: str) -> Spec:
    path = SPECS / name
    parse = parse_dsl if path.suffix == ".gvae" else load_yaml
    spec, diags = parse(path.read_text(), str(path))
    assert spec is not None and not diags, diags
    return spec


def dsl(text: str) -> Spec:
    spec, diags = parse_dsl(text, "out.gvae")
    assert spec is not None and not diags, diags
    return spec


def yml(text: str) -> Spec:
    spec, diags = load_yaml(text, "out.yaml")
    assert spec is not None and not diags, diags
    return spec


@pytest.mark.parametrize("name", ALL_SPECS)
def test_round_trip_dsl_yaml_dsl(name):
    spec = read(name)
    via_yaml = yml(to_yaml(spec))
    back = dsl(to_dsl(via_yaml))
    assert via_yaml == spec and back == spec


@pytest.mark.parametrize("name", ALL_SPECS)
@pytest.mark.parametrize("to", ["dsl", "yaml"])
def test_formatting_is_idempotent(name, to):
    fmt, parse = (to_dsl, dsl) if to == "dsl" else (to_yaml, yml)
    once = fmt(read(name))
    assert fmt(parse(once)) == once


@pytest.mark.parametrize("name", ALL_SPECS)
def test_shipped_specs_are_canonical(name):
    path = SPECS / name
    fmt = to_dsl if path.suffix == ".gvae" else to_yaml
    assert fmt(read(name)) == path.read_text()


# Specs that exercise corners of the printers: quoting, options, mixed arguments, betas, train values.
CORNERS = [
    Spec("corners",
         variables=(Variable("x", "observed", "unit", (1, 8, 8)), Variable("on", "latent", "real", ()),
                    Variable("c", "supervised", "categorical", (2, 3))),
         encoder=(Factor("h", ("x",), None, Net("mlp", (32, 16), (Option("activation", "tanh"),))),
                  Factor("on", ("h",), Dist("Normal", (Param(None, Net("linear")), Param("scale", 0.5))))),
         decoder=(Factor("on", (), Dist("Laplace", (Param(None, 0), Param("loc", 1.5)))),
                  Factor("x", ("on",), Dist("ContinuousBernoulli", (Param("logits", Net("linear", (4,))),))),
                  Factor("c", (), Dist("Mystery", (Param(None, 1), Param("p", Net("mlp")))))),
         objective=Objective((Setting("alpha", 1e-05), Setting("alpha_scaling", "labelled_fraction")),
                             (Estimator("c", Call("relax", (Option("temperature", 0.5), Option("hard", True)))),),
                             (Beta("on", 2.5),)),
         train=(Setting("data", "data/my digits.npz"), Setting("seed", -3), Setting("flush_denormal", False),
                Setting("device", "true"), Setting("data_dir", "1x"), Setting("optimizer", 'quo"te'))),
]


@pytest.mark.parametrize("spec", CORNERS)
def test_corner_cases_round_trip(spec):
    assert dsl(to_dsl(spec)) == spec
    assert yml(to_yaml(spec)) == spec
    assert dsl(to_dsl(yml(to_yaml(spec)))) == spec


@pytest.mark.parametrize("source, header", [
    ("# one\n# two\nmodel m\n", "# one\n# two\n"),
    ("# one\n\nmodel m\n", "# one\n\n"),
    ("\n# one\n\n# second paragraph\nmodel m\n", "# one\n\n"),
    ("model m  # not a header\n", ""),
    ("", ""),
])
def test_header_comment(source, header):
    assert header_comment(source) == header


def test_header_survives_conversion():
    spec = read("m2.gvae")
    first_line = (SPECS / "m2.gvae").read_text().splitlines()[0]
    assert to_yaml(spec).splitlines()[0] == first_line
    assert to_dsl(spec, header=False).startswith("model m2\n")


# -- the command ------------------------------------------------------------------------------

MESSY = "model   m2\nx:observed binary[784]\nz : latent real[5]\nencoder{\nz|x~Normal(mlp(500))}\n" \
        "decoder {\n z ~ Normal(loc=0, scale = 1)\n x|z ~ Bernoulli(mlp(500))\n}\n"


@pytest.fixture
def messy(tmp_path):
    path = tmp_path / "messy.gvae"
    path.write_text(MESSY)
    return path


def test_fmt_prints_canonical_text(messy, capsys):
    assert main(["fmt", str(messy)]) == 0
    out = capsys.readouterr().out
    assert "z | x ~ Normal(mlp(500))" in out and "z     ~ Normal(0, 1)" in out
    assert messy.read_text() == MESSY  # untouched


@pytest.mark.parametrize("to, parse", [("yaml", yml), ("dsl", dsl)])
def test_fmt_converts(messy, capsys, to, parse):
    assert main(["fmt", str(messy), "--to", to]) == 0
    assert parse(capsys.readouterr().out) == dsl(MESSY)


def test_fmt_check_names_the_file_that_would_change(messy, capsys):
    assert main(["fmt", "--check", str(messy)]) == 1
    assert f"would reformat {messy}" in capsys.readouterr().err
    assert messy.read_text() == MESSY


@pytest.mark.parametrize("name", ["m2.gvae", "m2.yaml"])
def test_fmt_check_passes_canonical_files(tmp_path, name, capsys):
    path = tmp_path / name
    shutil.copy(SPECS / name, path)
    assert main(["fmt", "--check", str(path)]) == 0
    assert capsys.readouterr().err == ""


def test_fmt_in_place_rewrites_atomically(messy, capsys):
    os.chmod(messy, 0o640)
    assert main(["fmt", "--in-place", str(messy)]) == 0
    assert f"reformatted {messy}" in capsys.readouterr().err
    text = messy.read_text()
    assert dsl(text) == dsl(MESSY) and text == to_dsl(dsl(MESSY))
    assert os.stat(messy).st_mode & 0o777 == 0o640
    assert sorted(p.name for p in messy.parent.iterdir()) == ["messy.gvae"]  # no temp file left
    assert main(["fmt", "--check", str(messy)]) == 0


@pytest.mark.parametrize("flag", ["--in-place", "--check"])
def test_fmt_refuses_syntax_errors_and_loses_nothing(tmp_path, capsys, flag):
    path = tmp_path / "bad.gvae"
    bad = "model m\nencoder {\n  z | x Normal(0, 1)\n}\n"
    path.write_text(bad)
    assert main(["fmt", flag, str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}:3:9: error: expected '~' or '='" in err and "not formatted" in err
    assert path.read_text() == bad


def test_fmt_formats_files_with_only_semantic_problems(tmp_path, capsys):
    path = tmp_path / "semantic.gvae"
    path.write_text("model m\nz : latent real[2]\ndecoder {\n  z ~ Nromal(0, -1)\n  w | q ~ Normal(0, 1)\n}\n")
    assert main(["fmt", str(path)]) == 0
    out = capsys.readouterr().out  # printed as written, not judged (that is `graphvae check`'s job)
    assert "  z     ~ Nromal(0, -1)\n  w | q ~ Normal(0, 1)\n" in out


@pytest.mark.parametrize("argv, fragment", [
    (["fmt", "--check", "--to", "yaml", "{dir}/m.gvae"], "--check keeps"),
    (["fmt", "--in-place", "--to", "yaml", "{dir}/m.gvae"], "--in-place keeps"),
    (["fmt", "{dir}/m.txt"], "cannot tell the language"),
    (["fmt", "{dir}/missing.gvae"], "cannot read"),
])
def test_fmt_user_errors(tmp_path, capsys, argv, fragment):
    (tmp_path / "m.gvae").write_text("model m\n")
    (tmp_path / "m.txt").write_text("model m\n")
    assert main([a.format(dir=tmp_path) for a in argv]) == 1
    err = capsys.readouterr().err
    assert err.startswith("graphvae: error: ") and fragment in err and "Traceback" not in err
