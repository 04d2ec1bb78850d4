"""graphvae.render.diagram: the plain diagram, the graphviz object, output files and the CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from graphvae.cli import main
from graphvae.errors import UserError
from graphvae.render.diagram import INSTALL_HINT, SHADE, STYLES, describe, output_format, to_graphviz, write
from graphvae.spec.parser import parse_dsl
from graphvae.train.runfolder import spec_path

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
HAS_DOT = shutil.which("dot") is not None

STYLE_FIRST = (SPECS / "style_first.gvae").read_text()

# A discrete latent without an estimator (gets the default), a named literal and a deep net.
DISCRETE = """model discrete
x : observed real[4]
c : latent   categorical[3]
z : latent   real[2]
w : latent   positive
encoder {
  c | x    ~ Categorical(linear)
  z | x, c ~ Normal(loc = mlp(8, 8, activation = tanh), scale = 0.5)
  w | x    ~ Gamma(mlp(4))
}
decoder {
  c        ~ Categorical(uniform)
  z        ~ Normal(loc = 0, scale = 1)
  w        ~ Gamma(rate = 2, concentration = 3)
  x | c, z ~ Normal(mlp(8))
}
objective {
  beta z = 2
}
"""


def spec_of(text: str):
    spec, diags = parse_dsl(text)
    assert spec is not None, [d.headline() for d in diags]
    return spec


@pytest.fixture(scope="module")
def style_first():
    return describe(spec_of(STYLE_FIRST))


# -- stage 1: the plain description ----------------------------------------------------------
@pytest.mark.parametrize("cluster, name, kind, lines", [
    ("encoder", "x", "observed", ("x : binary [784]",)),
    ("encoder", "h", "deterministic", ("h = mlp(256)",)),
    ("encoder", "z", "latent", ("z ~ Normal(linear) [50]",)),  # each factor's network, as deterministic nodes show it
    ("encoder", "y", "supervised", ("y ~ Categorical(mlp(128)) [10]", "relax(0.66)")),
    ("decoder", "z", "latent", ("z ~ Normal(0, 1) [50]",)),
    ("decoder", "y", "supervised", ("y ~ Categorical(uniform) [10]",)),
    ("decoder", "x", "observed", ("x ~ Bernoulli(mlp(256)) [784]",)),
])
def test_nodes(style_first, cluster, name, kind, lines):
    node = style_first.cluster(cluster).node(name)
    assert (node.kind, node.lines) == (kind, lines)
    assert node.attrs == STYLES[kind]
    assert node.id == ("q_" if cluster == "encoder" else "p_") + name


@pytest.mark.parametrize("kind, attr, value", [
    ("observed", "fillcolor", SHADE),
    ("observed", "style", "filled"),
    ("supervised", "fillcolor", f"{SHADE};0.5:white"),  # left half shaded
    ("latent", "fillcolor", "white"),
    ("deterministic", "shape", "box"),
    ("latent", "shape", "ellipse"),
])
def test_styles(kind, attr, value):
    assert STYLES[kind][attr] == value


@pytest.mark.parametrize("cluster, edges", [
    ("encoder", {("q_x", "q_h"), ("q_h", "q_z"), ("q_z", "q_y"), ("q_h", "q_y")}),
    ("decoder", {("p_y", "p_x"), ("p_z", "p_x")}),
])
def test_edges_mean_conditions_on(style_first, cluster, edges):
    assert {(e.tail, e.head) for e in style_first.cluster(cluster).edges} == edges


def test_clusters_plate_and_title(style_first):
    assert [c.id for c in style_first.clusters] == ["encoder", "decoder"]
    assert [c.label for c in style_first.clusters] == ["encoder  q(y, z | x)", "decoder  p(x, y, z)"]
    assert {c.plate for c in style_first.clusters} == {"N"}
    assert style_first.label == "model style_first   (alpha = 0.1, S = 8)"


@pytest.mark.parametrize("only, clusters", [(None, ["encoder", "decoder"]), ("encoder", ["encoder"]),
                                            ("decoder", ["decoder"])])
def test_only(only, clusters):
    assert [c.id for c in describe(spec_of(STYLE_FIRST), only).clusters] == clusters


@pytest.mark.parametrize("cluster, name, lines", [
    ("encoder", "c", ("c ~ Categorical(linear) [3]", "enumerate (default)")),
    ("encoder", "z", ("z ~ Normal(loc=mlp(8, 8, activation=tanh), scale=0.5) [2]",)),  # a network among literals
    ("encoder", "w", ("w ~ Gamma(mlp(4))",)),  # a scalar has no shape
    ("decoder", "w", ("w ~ Gamma(3, 2)",)),  # in the family's parameter order
    ("decoder", "z", ("z ~ Normal(0, 1) [2]",)),  # named in the family's order: positional
    ("decoder", "x", ("x ~ Normal(mlp(8)) [4]",)),
    ("decoder", "c", ("c ~ Categorical(uniform) [3]",)),  # estimators show in q only
])
def test_labels_of_other_forms(cluster, name, lines):
    diagram = describe(spec_of(DISCRETE))
    assert diagram.cluster(cluster).node(name).lines == lines
    assert "beta z = 2" in diagram.label and "alpha" not in diagram.label  # no labels: no alpha


# -- stage 2: graphviz ------------------------------------------------------------------------
def test_graphviz_source(style_first):
    source = to_graphviz(style_first).source
    for piece in ["subgraph cluster_encoder {", "subgraph cluster_encoder_plate {", "subgraph cluster_decoder {",
                  "label=N", "q_z -> q_y", 'label="y ~ Categorical(mlp(128)) [10]\\nrelax(0.66)"', "shape=box",
                  "subgraph cluster_legend {", "legend_observed -> legend_supervised [style=invis]"]:
        assert piece in source, piece


VAE = "model vae\nx : observed binary[4]\nz : latent real[2]\nencoder {\n  z | x ~ Normal(mlp(8))\n}\n" \
      "decoder {\n  z ~ Normal(0, 1)\n  x | z ~ Bernoulli(mlp(8))\n}\n"


@pytest.mark.parametrize("text, only, legend", [
    (STYLE_FIRST, None, [("observed", "observed"), ("supervised", "supervised (labelled for some examples)"),
                         ("latent", "latent"), ("deterministic", "deterministic")]),
    (STYLE_FIRST, "decoder", [("observed", "observed"), ("supervised", "supervised (labelled for some examples)"),
                              ("latent", "latent")]),  # the kinds drawn, no others
    (VAE, None, [("observed", "observed"), ("latent", "latent")]),
])
def test_legend_explains_the_shading(text, only, legend):
    diagram = describe(spec_of(text), only)
    assert [(n.kind, n.label) for n in diagram.legend] == legend
    for node in diagram.legend:
        assert node.attrs == STYLES[node.kind] and node.id == f"legend_{node.kind}"
    source = to_graphviz(diagram).source
    assert all(f"legend_{kind} [" in source for kind, _ in legend)


@pytest.mark.parametrize("suffix, fmt", [(".svg", "svg"), (".PNG", "png"), (".pdf", "pdf"), (".dot", "dot"),
                                         (".gv", "dot")])
def test_output_format(suffix, fmt):
    assert output_format("out/m2" + suffix) == fmt


@pytest.mark.parametrize("name", ["m2.jpg", "m2"])
def test_unknown_format_is_a_user_error(name):
    with pytest.raises(UserError, match="unknown output format"):
        output_format(name)


@pytest.mark.skipif(not HAS_DOT, reason="graphviz 'dot' not installed")
@pytest.mark.parametrize("suffix, magic", [(".png", b"\x89PNG"), (".svg", b"<svg"), (".pdf", b"%PDF"),
                                           (".dot", b"digraph style_first")])
def test_write_formats(tmp_path, style_first, suffix, magic):
    out = tmp_path / f"m{suffix}"
    write(to_graphviz(style_first), out)
    assert magic in out.read_bytes()[:400]
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temp file left behind


@pytest.fixture
def no_dot(monkeypatch, tmp_path):
    """A PATH that holds no `dot` program."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    return empty


def test_dot_output_needs_no_dot_program(tmp_path, style_first, no_dot):
    out = tmp_path / "m.dot"
    write(to_graphviz(style_first), out)
    assert out.read_text().startswith("digraph style_first {")


@pytest.mark.parametrize("suffix", [".png", ".svg", ".pdf"])
def test_missing_dot_is_one_clear_line_and_loses_nothing(tmp_path, style_first, no_dot, suffix):
    out = tmp_path / f"m{suffix}"
    out.write_bytes(b"old picture")
    with pytest.raises(UserError) as info:
        write(to_graphviz(style_first), out)
    message = str(info.value)
    assert "\n" not in message and "apt-get install graphviz" in message and message == INSTALL_HINT.format(
        fmt=suffix)
    assert out.read_bytes() == b"old picture"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty-bin", out.name]


def test_missing_dot_via_cli(tmp_path, no_dot, capsys):
    out = tmp_path / "m2.png"
    assert main(["render", str(SPECS / "m2.gvae"), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("graphvae: error: ") and "install Graphviz" in err
    assert not out.exists()


# -- input: spec files and run folders ---------------------------------------------------------
@pytest.mark.parametrize("files, ok", [
    (["spec.gvae"], True), (["spec.yaml"], True), (["spec.yml"], True), (["spec.gvae", "config.json"], True),
    ([], False), (["spec.gvae", "spec.yaml"], False), (["model.gvae"], False),
])
def test_run_folder(tmp_path, files, ok):
    for name in files:
        (tmp_path / name).write_text("model m\n")
    if ok:
        assert spec_path(tmp_path).name in ("spec.gvae", "spec.yaml", "spec.yml")
    else:
        with pytest.raises(UserError, match="exactly one of"):
            spec_path(tmp_path)


def test_missing_input_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no such spec file or run folder"):
        spec_path(tmp_path / "nope.gvae")


# -- the command -------------------------------------------------------------------------------
def test_cli_prints_dot_without_out(capsys):
    assert main(["render", str(SPECS / "m2.gvae")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("digraph m2 {") and "cluster_decoder" in out


def test_cli_yaml_and_dsl_give_the_same_picture(capsys):
    main(["render", str(SPECS / "m2.gvae")])
    dsl = capsys.readouterr().out
    main(["render", str(SPECS / "m2.yaml")])
    assert capsys.readouterr().out == dsl


@pytest.mark.parametrize("name, argv", [
    ("m2.dot", []), ("sub/m2.dot", []), ("m2.tex", ["--latex"]),
    pytest.param("m2.svg", [], marks=pytest.mark.skipif(not HAS_DOT, reason="graphviz 'dot' not installed")),
])
def test_cli_says_the_file_it_wrote(tmp_path, capsys, monkeypatch, name, argv):
    monkeypatch.chdir(tmp_path)
    assert main(["render", str(SPECS / "m2.gvae"), "-o", name, *argv]) == 0
    assert capsys.readouterr().out == f"wrote {name}\n" and (tmp_path / name).is_file()


def test_cli_run_folder_and_only(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(SPECS / "style_first.gvae", run / "spec.gvae")
    assert main(["render", str(run), "--only", "encoder", "-o", str(tmp_path / "q.dot")]) == 0
    source = (tmp_path / "q.dot").read_text()
    assert "cluster_encoder" in source and "cluster_decoder" not in source


@pytest.mark.parametrize("argv, expect", [
    (["--latex"], "q(y, z \\mid x) &= q(y \\mid x)\\, q(z \\mid x, y)"),
    (["--latex", "--only", "decoder"], "p(x, y, z) &= p(z)\\, p(y)\\, p(x \\mid y, z)"),
])
def test_cli_latex(capsys, argv, expect):
    assert main(["render", str(SPECS / "m2.gvae"), *argv]) == 0
    assert expect in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["-o", "m2.jpg"], "unknown output format '.jpg'"),
    (["--latex", "-o", "m2.png"], "must end in .tex"),
    (["-o", "m2.tex"], "use --latex"),
    (["-o", "/proc/no/such/m2.dot"], "cannot create the folder '/proc/no/such'"),  # a missing one is made if it can be
])
def test_cli_user_errors(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    assert main(["render", str(SPECS / "m2.gvae"), *argv]) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_cli_spec_errors_exit_1(tmp_path, capsys):
    bad = tmp_path / "bad.gvae"
    bad.write_text(STYLE_FIRST.replace("Normal(linear)", "Nromal(linear)"))
    assert main(["render", str(bad), "-o", str(tmp_path / "bad.dot")]) == 1
    assert "Nromal" in capsys.readouterr().err
    assert not (tmp_path / "bad.dot").exists()


def test_render_does_not_import_torch(tmp_path):
    code = ("import sys; from graphvae.cli import main; "
            f"rc = main(['render', {str(SPECS / 'style_first.gvae')!r}, '-o', {str(tmp_path / 'm.dot')!r}]); "
            f"rc += main(['render', {str(SPECS / 'style_first.gvae')!r}, '--latex']); "
            "assert 'torch' not in sys.modules, 'torch imported'; sys.exit(rc)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, run.stderr


SPEC_FILES = sorted(SPECS.glob("*.gvae")) + sorted(SPECS.glob("*.yaml"))


@pytest.mark.parametrize("path", SPEC_FILES, ids=lambda p: p.name)
def test_every_shipped_spec_renders(tmp_path, path):
    from graphvae.spec.loader import load_spec

    from graphvae.spec.printers import declared_name

    spec = load_spec(str(path))
    diagram = describe(spec)
    written = spec.as_written  # a plate's copies are drawn as one node, named as written (y[k])
    for cluster, factors in zip(diagram.clusters, (written.encoder, written.decoder)):
        names = {n.name for n in cluster.nodes}
        assert {f.name for f in factors} <= names  # one node per factor, plus inputs
        assert len({n.id for n in cluster.nodes}) == len(cluster.nodes)
        for n in cluster.nodes:  # every node is labelled with its name first
            assert n.lines[0].startswith(n.name + " ")
    for var in written.variables:
        assert diagram.cluster("decoder").node(declared_name(var)).kind == var.role
    write(to_graphviz(diagram), tmp_path / "m.dot")
    assert (tmp_path / "m.dot").read_text().startswith(f"digraph {spec.name} {{")


@pytest.mark.parametrize("path", sorted(SPECS.glob("*.yaml")), ids=lambda p: p.name)
def test_yaml_specs_draw_like_their_dsl_twins(path):
    from graphvae.spec.loader import load_spec

    twin = path.with_suffix(".gvae")
    if not twin.exists():
        pytest.skip(f"no {twin.name}")
    assert to_graphviz(describe(load_spec(str(path)))).source == to_graphviz(describe(load_spec(str(twin)))).source
