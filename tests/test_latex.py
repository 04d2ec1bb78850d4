"""graphvae.render.latex: factorisations of q and p, the objective, and a fragment that compiles."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from graphvae.render.latex import factorisation, objective, tex_name, to_latex
from graphvae.spec.parser import parse_dsl

SPECS = Path(__file__).resolve().parent.parent / "specs"

M2 = (SPECS / "m2.gvae").read_text()

STYLE_FIRST = """model style_first
x : observed   binary[784]
y : supervised categorical[10]
z : latent     real[50]
encoder {
  h | x    = mlp(256)
  z | h    ~ Normal(linear)
  y | z, h ~ Categorical(mlp(128))
}
decoder {
  z        ~ Normal(0, 1)
  y        ~ Categorical(uniform)
  x | y, z ~ Bernoulli(mlp(256))
}
objective {
  alpha   = 0.3
  samples = 8
  y       = relax(temperature = 0.66)
  beta z  = 4
}
"""

# A label between two latents: a -> y -> z in q, so y follows a latent.
CHAIN = """model chain
x : observed   real[4]
a : latent     real[2]
y : supervised categorical[3]
z : latent     real[2]
encoder {
  a | x    ~ Normal(linear)
  y | a    ~ Categorical(linear)
  z | x, y ~ Normal(linear)
}
decoder {
  z        ~ Normal(0, 1)
  a | z    ~ Normal(linear)
  y        ~ Categorical(uniform)
  x | a, y ~ Normal(loc = linear, scale = 0.1)
}
objective {
  samples = 4
  y       = reinforce
}
"""

VAE = """model vae
x  : observed binary[784]
z1 : latent   real[20]
encoder {
  z1 | x ~ Normal(mlp(400))
}
decoder {
  z1     ~ Normal(0, 1)
  x | z1 ~ Bernoulli(mlp(400))
}
"""


# Two labels before the latent, deterministic nodes on both sides, a KL weight: four log terms.
TWO_LABELS = """model two_labels
x : observed   unit[1, 28, 28]
y : supervised categorical[10]
w : supervised binary[1]
z : latent     real[32]
encoder {
  h | x       = mlp(512, 256)
  y | h       ~ Categorical(linear)
  w | h       ~ Bernoulli(linear)
  z | h, y, w ~ Normal(loc = mlp(128), scale = 0.1)
}
decoder {
  z           ~ Normal(0, 1)
  y           ~ Categorical(uniform)
  w           ~ Bernoulli(uniform)
  g | y, z, w = mlp(256)
  x | g       ~ ContinuousBernoulli(mlp(512))
}
objective {
  w      = reinforce
  beta z = 2
}
"""

TEXTS = {"two_labels": TWO_LABELS, "m2": M2, "style_first": STYLE_FIRST, "chain": CHAIN, "vae": VAE,
         "style_first_no_beta": STYLE_FIRST.replace("  beta z  = 4\n", ""),
         "m2_beta": M2.replace("  y       = enumerate\n", "  y       = enumerate\n  beta z = 2\n")}


def spec_of(text: str):
    text = TEXTS.get(text, text)
    spec, diags = parse_dsl(text)
    assert spec is not None, [d.headline() for d in diags]
    return spec


@pytest.mark.parametrize("name, tex", [
    ("z", "z"),
    ("z1", "z_{1}"),
    ("z12", "z_{12}"),
    ("y_digit", "y_{\\mathrm{digit}}"),
    ("y_2", "y_{2}"),
    ("style", "\\mathrm{style}"),
    ("two_part_name", "\\mathrm{two\\_part\\_name}"),
])
def test_tex_name(name, tex):
    assert tex_name(name) == tex


@pytest.mark.parametrize("text, block, expected", [
    ("m2", "encoder", "q(y, z \\mid x) = q(y \\mid x)\\, q(z \\mid x, y)"),
    ("m2", "decoder", "p(x, y, z) = p(z)\\, p(y)\\, p(x \\mid y, z)"),
    # h | x = mlp(256) is folded: y | z, h reads q(y | x, z)
    ("style_first", "encoder", "q(y, z \\mid x) = q(z \\mid x)\\, q(y \\mid x, z)"),
    ("chain", "encoder", "q(a, y, z \\mid x) = q(a \\mid x)\\, q(y \\mid a)\\, q(z \\mid x, y)"),
    # the decoder is listed out of order (a | z after z, x last): topological order keeps it
    ("chain", "decoder", "p(x, a, y, z) = p(z)\\, p(a \\mid z)\\, p(y)\\, p(x \\mid a, y)"),
    ("vae", "encoder", "q(z_{1} \\mid x) = q(z_{1} \\mid x)"),
    ("two_labels", "decoder", "p(x, y, w, z) = p(z)\\, p(y)\\, p(w)\\, p(x \\mid y, w, z)"),
])
def test_factorisation(text, block, expected):
    assert factorisation(spec_of(text), block) == expected


@pytest.mark.parametrize("text, present, absent", [
    # label before latent: the exact supervised term with alpha log q(y|x)
    ("m2", ["(exact)", "\\alpha \\frac{N}{N_{\\mathrm{labelled}}} \\log q(y \\mid x)", "\\mathrm{E}_{q(z \\mid x, y)}",
          "\\alpha = 0.1", "S = 1", "enumerated", "\\sum_{y} q(y \\mid x)"],
     ["(1 + \\alpha \\frac{N}{N_{\\mathrm{labelled}}})", "\\frac{1}{S}", "\\beta_"]),
    # label after the latent: importance-sampled with z^(s) ~ q(z|x)
    ("style_first", ["importance-sampled", "(1 + \\alpha \\frac{N}{N_{\\mathrm{labelled}}}) \\log q(y \\mid x)",
                   "\\bigg[\\beta_{z} \\log \\frac{p(z)}{q(z \\mid x)} + \\log \\frac{p(y)}{q(y \\mid x, z)}"
                   " + \\log p(x \\mid y, z)\\bigg] \\\\\n&\\qquad + (1 + \\alpha \\frac{N}{N_{\\mathrm{labelled}}})",
                   "q(y \\mid x) &\\approx \\frac{1}{S} \\sum_{s=1}^{S} q(y \\mid x, z^{(s)})",
                   "z^{(s)} &\\sim q(z \\mid x)", "\\alpha = 0.3", "S = 8", "\\tau = 0.66",
                   "\\beta_{z} \\log \\frac{p(z)}{q(z \\mid x)}", "\\beta_{z} = 4"],
     ["(exact)", "enumerated"]),
    # exact, with a KL weight: the compiled (1 + alpha) form with beta inside, in both terms
    ("m2_beta", ["(exact)", "\\mathrm{E}_{q(z \\mid x, y)}\\bigg[\\beta_{z} \\log \\frac{p(z)}{q(z \\mid x, y)}",
                 "\\bigg] \\\\\n&\\qquad + (1 + \\alpha \\frac{N}{N_{\\mathrm{labelled}}}) \\log q(y \\mid x)"],
     ["\\frac{1}{S}"]),
    ("style_first_no_beta", ["\\left[\\log \\frac{p(x, y, z)}{q(y, z \\mid x)}\\right] + (1 + \\alpha \\frac{N}{N_{\\mathrm{labelled}}})"],
     ["\\beta"]),
    # two latents around the label: proposals from both latents' q factors, weight q(y | a)
    ("chain", ["w_s = q(y \\mid a^{(s)})", "a^{(s)}, z^{(s)} &\\sim q(a \\mid x)\\, q(z \\mid x, y)",
             "REINFORCE", "S = 4"],
     ["(exact)"]),
    # four terms break after three; two labels, both exact; y gets the default estimator
    ("two_labels", ["\\log \\frac{p(w)}{q(w \\mid x)} \\\\\n&\\qquad + \\log p(x \\mid y, w, z)\\bigg]",
                    "(exact)", "q(y, w \\mid x) &= q(y \\mid x)\\, q(w \\mid x)", "\\mathcal{L}(x, y, w)",
                    "$y$: enumerated", "(the default", "$w$: score-function"],
     ["\\frac{1}{S}"]),
    # no supervised variable: the ELBO only
    ("vae", ["\\mathcal{L}(x) &= \\mathrm{E}_{q(z_{1} \\mid x)}"],
     ["\\alpha", "\\mathcal{L}(x, ", "Estimators"]),
])
def test_objective(text, present, absent):
    tex = objective(spec_of(text))
    for piece in present:
        assert piece in tex, piece
    for piece in absent:
        assert piece not in tex, piece


@pytest.mark.parametrize("only, present, absent", [
    (None, ["q(y, z \\mid x) &=", "p(x, y, z) &=", "\\mathcal{L}(x)"], []),
    ("encoder", ["q(y, z \\mid x) &=", "h = \\mathrm{mlp}(x)"], ["p(x, y, z) &=", "\\mathcal{L}"]),
    ("decoder", ["p(x, y, z) &="], ["q(y, z \\mid x) &=", "\\mathcal{L}", "h = "]),
])
def test_only(only, present, absent):
    tex = to_latex(spec_of("style_first"), only)
    for piece in present:
        assert piece in tex, piece
    for piece in absent:
        assert piece not in tex, piece


# -- the fragment compiles --------------------------------------------------------------
ALLOWED_MACROS = {
    "begin", "end", "noindent", "texttt", "item", "mathrm", "mathcal", "text", "mid", "log", "frac",
    "sum", "prod", "in", "left", "right", "bigg", "big", "qquad", "approx", "sim", "alpha", "beta", "tau", "quad", ",", "\\", "_", "{", "}", "#", "$", "%", "&",
}
ALLOWED_ENVIRONMENTS = {"align*", "itemize"}


def structure_problems(tex: str) -> list[str]:
    """Balanced braces, $, \\left/\\right and environments; macros from the allow-list."""
    problems = []
    body = "\n".join(line for line in tex.splitlines() if not line.lstrip().startswith("%"))
    for macro in re.findall(r"\\([A-Za-z]+|.)", body):
        if macro not in ALLOWED_MACROS:
            problems.append(f"macro \\{macro} not allowed")
    unescaped = re.sub(r"\\[{}$\\_%&#]", "", body)
    depth = 0
    for ch in unescaped:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if depth < 0:
            problems.append("} without {")
            depth = 0
    if depth:
        problems.append(f"{depth} unclosed {{")
    if unescaped.count("$") % 2:
        problems.append("unbalanced $")
    if len(re.findall(r"\\left\b", body)) != len(re.findall(r"\\right\b", body)):
        problems.append("\\left and \\right do not pair")
    stack = []
    for kind, env in re.findall(r"\\(begin|end)\{([^}]*)\}", body):
        if env not in ALLOWED_ENVIRONMENTS:
            problems.append(f"environment {env} not allowed")
        if kind == "begin":
            stack.append(env)
        elif not stack or stack.pop() != env:
            problems.append(f"\\end{{{env}}} does not close the open environment")
    problems += [f"environment {env} never closed" for env in stack]
    return problems


@pytest.mark.parametrize("bad", [
    "\\begin{align*} x \\end{itemize}", "{ x", "x }", "$x", "\\left( x", "\\mathbb{E}", "\\begin{tabular}\\end{tabular}",
])
def test_structure_check_catches(bad):
    assert structure_problems(bad)


def _all_specs():
    files = sorted(SPECS.glob("*.gvae")) + sorted(SPECS.glob("*.yaml"))
    return [pytest.param(t, id=t) for t in TEXTS] + [pytest.param(f, id=f.name) for f in files]


def _load(source):
    if isinstance(source, Path):
        from graphvae.spec.loader import load_spec

        return load_spec(str(source))
    return spec_of(source)


@pytest.mark.parametrize("source", _all_specs())
def test_fragment_structure(source):
    tex = to_latex(_load(source))
    assert structure_problems(tex) == []


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed")
def test_fragment_compiles_with_pdflatex(tmp_path):
    fragments = [to_latex(_load(p.values[0])) for p in _all_specs()]
    doc = "\\documentclass{article}\n\\usepackage{amsmath}\n\\begin{document}\n" + "\n".join(fragments) + "\\end{document}\n"
    (tmp_path / "doc.tex").write_text(doc)
    run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-2000:]
    assert (tmp_path / "doc.pdf").stat().st_size > 0
