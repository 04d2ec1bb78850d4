"""Fuzzing the spec front end: ``graphvae check`` on generated and mutated specs in both languages.

Each case is a spec written by a small grammar-aware generator (variables, encoder and
decoder factors, objective and train blocks, with valid and invalid names, families,
networks, options, shapes and numbers), in the DSL or in YAML, then changed by a few
mutators: a token deleted, duplicated or swapped, unicode, huge numbers, a long line, NUL,
a byte-order mark, CRLF or a lone CR, YAML anchors and aliases (a "billion laughs" among
them), YAML tags, deep nesting, truncation, repetition, or plain binary garbage.  The bytes
are written to a file and checked in-process by the code ``graphvae check`` runs
(:func:`graphvae.cli.check.run`, printing the text or the JSON report to a sink that only
counts), with a time limit per case (``SIGALRM``) and the process's peak RSS watched.

A case ends as

* ``ok``: no errors (exit 0), ``diagnosed``: errors reported (exit 1);
* ``traceback``: any exception but the project's :class:`~graphvae.spec.diagnostics.SpecError`
  and :class:`~graphvae.errors.UserError` (a bug);
* ``slow``: it took more than ``--slow`` seconds (2 by default); ``killed``: it hit the hard limit.

Usage::

    python benchmarks/fuzz_spec.py --cases 50000 --seed 0        # counts, peak RSS, failures
    python benchmarks/fuzz_spec.py --case 1234 --seed 0 --show    # one case's input and outcome

Case ``i`` of seed ``s`` is drawn from ``random.Random(f"{s}:{i}")``, so any failure is
reproduced by its number.  ``tests/test_fuzz_spec.py`` runs a few thousand cases.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import random
import resource
import signal
import sys
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from graphvae.errors import UserError  # noqa: E402
from graphvae.spec.diagnostics import SpecError  # noqa: E402

# -- the grammar-aware generator ----------------------------------------------------------------
ROLES = ("observed", "supervised", "latent")
BAD_ROLES = ("obsrved", "hidden", "Latent", "encoder")
DOMAINS = ("real", "positive", "unit", "binary", "categorical", "simplex")
BAD_DOMAINS = ("binray", "integer", "reals", "mlp")
FAMILIES = ("Normal", "Laplace", "StudentT", "LogNormal", "Gamma", "Exponential", "Beta", "ContinuousBernoulli",
            "Bernoulli", "Categorical", "Dirichlet")
BAD_FAMILIES = ("Normall", "Gaussian", "normal", "mlp", "Poisson")
PARAMS = ("loc", "scale", "probs", "logits", "rate", "df", "concentration", "concentration0", "concentration1",
          "mean", "sigma")
NETWORKS = ("mlp", "linear", "uniform", "conv", "MLP")
OPTIONS = {"activation": ("relu", "tanh", "gelu", "softmax", "identity"), "batchnorm": ("true", "false", "1"),
           "dropout": ("0", "0.5", "1", "-0.1", "nan"), "width": ("3",)}
GOOD_OPTIONS = {"activation": ("relu", "tanh", "gelu", "identity"), "batchnorm": ("true", "false"),
                "dropout": ("0", "0.5")}
OBJECTIVE = {"alpha": ("0.1", "0", "-1", "50", "1e999"), "samples": ("1", "5", "0", "2.5", "100000"),
             "alpha_scaling": ("dataset", "per_example", "labelled_fraction", "datset"), "alpa": ("1",)}
ESTIMATORS = ("enumerate", "reinforce", "relax", "relax(temperature = 0.5)", "relax(temperature = -1)",
              "rsample", "enumerat", "relax(tau = 1)")
TRAIN = {"data": ("digits", "mnist", "x.npz", '"data/x.npz"', "fashion-mnist", "imagenet"),
         "epochs": ("1", "0", "20", "1.5", "99999999999999999999"), "batch_size": ("100", "0", "-3"),
         "lr": ("0.001", "0", "nan", "1e999", "-1"), "seed": ("0", "-1", "36893488147419103233"),
         "labels": ("100", "-1", "-2"), "labelled_per_batch": ("0", "-1", "7"), "labelled_only": ("true", "no"),
         "optimizer": ("adam", "sgd", "adamm"), "grad_clip": ("0", "5", "nan"), "weight_decay": ("0", "nan"),
         "validation": ("0.1", "1", "0.99"), "device": ("cpu", "cuda:0", "tpu"), "schedule": ("cosine", "cos"),
         "selection": ("error_se", "best"), "binarize": ("dynamic", "static", "dyn"), "epoch": ("1",)}
NUMBERS = ("0", "1", "-1", "2", "10", "0.5", "1e-3", "1e999", "-1e999", "1" + "0" * 400, "9" * 30, "0.0",
           "+3", ".5", "1.", "007", "18446744073709551616", "9223372036854775807", "9223372036854775808")
UNICODE = ("é", "名前", "\u202e", "\u200b", "\ufeff", "\u0301", "𝔁", "\u2028", "\x85", "\x0c", "\x0b", "\x1b",
           "\t", "\u00a0", "😀", "\ufffd")


@dataclass
class Model:
    """A random spec as the generator draws it, before it is written in a language."""

    name: str
    variables: list[tuple[str, str, str, list[str]]] = field(default_factory=list)  # name, role, domain, dims
    encoder: list[tuple[str, list[str], tuple]] = field(default_factory=list)  # name, parents, right-hand side
    decoder: list[tuple[str, list[str], tuple]] = field(default_factory=list)
    objective: list[tuple[str, str]] = field(default_factory=list)
    train: list[tuple[str, str]] = field(default_factory=list)


def _pick(rng: random.Random, good, bad=(), p_bad: float = 0.1):
    return rng.choice(bad) if bad and rng.random() < p_bad else rng.choice(good)


def _number(rng: random.Random, whole: bool = False, p_odd: float = 0.15) -> str:
    if rng.random() >= p_odd:
        return str(rng.choice((1, 2, 3, 4, 8, 10, 16, 64))) if whole else rng.choice(("0", "1", "0.5", "2"))
    return rng.choice(NUMBERS)


# A network is ``(kind, widths, options)``; a family argument ``(name or None, value)`` with a
# value that is a number's text, "uniform" or a network; a factor's right-hand side
# ``("~", family, args)`` or ``("=", network)``.  Both languages are written from these.

def _net(rng: random.Random, p_odd: float = 0.15) -> tuple:
    kind = _pick(rng, ("mlp", "linear"), NETWORKS, 0.7 * p_odd)
    widths = [_number(rng, True, p_odd) for _ in range(rng.choice((0, 1, 1, 2, 3)))]
    options = []
    for _ in range(rng.choice((0, 0, 0, 1, 2))):
        opt = rng.choice(list(OPTIONS))
        options.append((opt, rng.choice(OPTIONS[opt])))
    return (kind, widths, options)


def _dist(rng: random.Random, family: str | None = None, p_odd: float = 0.15) -> tuple:
    family = family or _pick(rng, FAMILIES, BAD_FAMILIES, 0.5 * p_odd)
    r = rng.random()
    if r < 0.4:
        args = [(None, _net(rng, p_odd))]
    elif r < 0.5:
        args = [(None, "uniform")]
    elif r < 0.8:
        args = [(None, _number(rng, p_odd=p_odd)) for _ in range(rng.choice((1, 2, 3)))]
    else:
        args = [(rng.choice(PARAMS), _net(rng, p_odd) if rng.random() < 0.5 else _number(rng, p_odd=p_odd))
                for _ in range(rng.choice((1, 2)))]
    return ("~", family, args)


def generate(rng: random.Random) -> Model:
    if rng.random() < 0.4:
        return _coherent(rng)
    m = Model(rng.choice(("m2", "golden", "m", "_x", "adgm")))
    names = ["x", "y", "z", "a", "h", "w"][: rng.randint(1, 6)] + [f"v{i}" for i in range(rng.choice((0, 0, 3)))]
    for n in names:
        domain = _pick(rng, DOMAINS, BAD_DOMAINS, 0.05)
        dims = [] if rng.random() < 0.3 else [_number(rng, whole=True) for _ in range(rng.choice((1, 1, 2)))]
        role = "observed" if n == "x" and rng.random() < 0.9 else _pick(rng, ROLES, BAD_ROLES, 0.05)
        m.variables.append((n, role, domain, dims))
    pool = names + ["h", "q", "undefined"]
    for block in (m.encoder, m.decoder):
        for n in rng.sample(names + ["h"], rng.randint(0, len(names) + 1)):
            parents = rng.sample(pool, rng.choice((0, 0, 1, 1, 2, 3)))
            if n == "h" or rng.random() < 0.05:
                block.append((n, parents, ("=", _net(rng))))
            else:
                block.append((n, parents, _dist(rng)))
    for _ in range(rng.choice((0, 1, 2, 3))):
        r = rng.random()
        if r < 0.5:
            key = rng.choice(list(OBJECTIVE))
            m.objective.append((key, rng.choice(OBJECTIVE[key])))
        elif r < 0.8:
            m.objective.append((rng.choice(names), rng.choice(ESTIMATORS)))
        else:
            m.objective.append((f"beta {rng.choice(names)}", _number(rng)))
    for _ in range(rng.choice((0, 0, 1, 3))):
        key = rng.choice(list(TRAIN))
        m.train.append((key, rng.choice(TRAIN[key])))
    return m


FITTING = {  # domain -> families whose support fits it (for an observed variable), a latent's first
    "real": ("Normal", "Laplace", "StudentT"), "positive": ("LogNormal", "Gamma", "Exponential"),
    "unit": ("Beta", "ContinuousBernoulli"), "binary": ("Bernoulli",), "categorical": ("Categorical",),
    "simplex": ("Dirichlet",),
}
ROOTS = {"Normal": ["0", "1"], "Laplace": ["0", "1"], "StudentT": ["3", "0", "1"], "LogNormal": ["0", "1"],
         "Gamma": ["1", "1"], "Exponential": ["1"], "Beta": ["1", "1"], "ContinuousBernoulli": ["0.5"]}


def _coherent(rng: random.Random) -> Model:
    """A spec that is mostly valid: an M2-like model with drawn domains, sizes, networks and settings."""
    odd = 0.02
    m = Model(rng.choice(("m2", "tiny", "adgm")))
    x_domain = rng.choice(("real", "binary", "unit", "positive"))
    m.variables.append(("x", "observed", x_domain, [_number(rng, True, odd)]))
    latents = []
    if rng.random() < 0.7:
        m.variables.append(("y", rng.choice(("supervised", "latent")), "categorical", [rng.choice(("2", "3", "10"))]))
        latents.append("y")
    for name in ("z", "a")[: rng.randint(1, 2)]:
        domain = rng.choice(("real", "real", "positive", "unit", "binary", "simplex"))
        dims = [rng.choice(("2", "3"))] if domain == "simplex" else [_number(rng, True, odd)]
        m.variables.append((name, "latent", domain, dims))
        latents.append(name)
    domains = {n: d for n, _, d, _ in m.variables}

    def network() -> tuple:
        kind, widths, options = _net(rng, odd)
        options = list(dict((k, v) for k, v in options if k in GOOD_OPTIONS and v in GOOD_OPTIONS[k]).items())
        return ("mlp", widths or ["8"], options) if kind == "mlp" else ("linear", [], options)

    for i, name in enumerate(latents):
        m.encoder.append((name, ["x"] + latents[:i], ("~", FITTING[domains[name]][0], [(None, network())])))
    for name in latents:
        family = FITTING[domains[name]][0]
        args = [(None, "uniform")] if family not in ROOTS else [(None, v) for v in ROOTS[family]]
        m.decoder.append((name, [], ("~", family, args)))
    m.decoder.append(("x", latents, ("~", rng.choice(FITTING[x_domain]), [(None, network())])))
    for name in latents:
        if domains[name] in ("categorical", "binary") and rng.random() < 0.8:
            m.objective.append((name, rng.choice(("enumerate", "reinforce", "relax(temperature = 0.5)"))))
    if rng.random() < 0.5:
        m.objective.append(("alpha", rng.choice(("0.1", "1", "50"))))
    if rng.random() < 0.3:
        m.train += [("epochs", "2"), ("batch_size", rng.choice(("10", "100", "1000"))), ("seed", "3")]
    return m


def _dsl_net(net: tuple) -> str:
    kind, widths, options = net
    items = list(widths) + [f"{k} = {v}" for k, v in options]
    return f"{kind}({', '.join(items)})" if items else kind


def _dsl_value(value) -> str:
    return _dsl_net(value) if isinstance(value, tuple) else value


def _dsl_rhs(rhs: tuple) -> str:
    if rhs[0] == "=":
        return f"= {_dsl_net(rhs[1])}"
    _, family, args = rhs
    return f"~ {family}({', '.join((f'{n} = ' if n else '') + _dsl_value(v) for n, v in args)})"


def to_dsl(m: Model) -> str:
    out = [f"model {m.name}", ""]
    out += [f"{n} : {role} {domain}" + (f"[{', '.join(dims)}]" if dims else "") for n, role, domain, dims in m.variables]
    for block, factors in (("encoder", m.encoder), ("decoder", m.decoder)):
        if factors:
            out.append(f"{block} {{")
            out += [f"  {n}" + (f" | {', '.join(ps)}" if ps else "") + f" {_dsl_rhs(rhs)}" for n, ps, rhs in factors]
            out.append("}")
    for block, items in (("objective", m.objective), ("train", m.train)):
        if items:
            out.append(f"{block} {{")
            out += [f"  {k} = {v}" for k, v in items]
            out.append("}")
    return "\n".join(out) + "\n"


def _yaml_net(net: tuple) -> str:
    """``("mlp", ["8"], [("activation", "relu")])`` -> ``{mlp: [8], activation: relu}``; a bare name stays."""
    kind, widths, options = net
    if not widths and not options:
        return kind
    return "{" + ", ".join([f"{kind}: [{', '.join(widths)}]"] + [f"{k}: {v}" for k, v in options]) + "}"


def _yaml_value(value) -> str:
    return _yaml_net(value) if isinstance(value, tuple) else value


def _yaml_factor(parents: list[str], rhs: tuple) -> str:
    fields = [f"given: [{', '.join(parents)}]"] if parents else []
    if rhs[0] == "=":
        return "{" + ", ".join(fields + [f"net: {_yaml_net(rhs[1])}"]) + "}"
    _, family, args = rhs
    fields.append(f"dist: {family}")
    if len(args) == 1 and args[0][0] is None and isinstance(args[0][1], tuple):
        fields.append(f"net: {_yaml_net(args[0][1])}")
    elif all(n is None for n, _ in args):
        fields.append(f"args: [{', '.join(_yaml_value(v) for _, v in args)}]")
    else:
        fields.append("params: {" + ", ".join(f"{n or 'loc'}: {_yaml_value(v)}" for n, v in args) + "}")
    return "{" + ", ".join(fields) + "}"


def _yaml_estimator(text: str) -> str:
    """``relax(temperature = 0.5)`` -> ``{relax: {temperature: 0.5}}``."""
    if "(" not in text:
        return text
    method, _, rest = text.partition("(")
    options = [o.split(" = ", 1) for o in rest.rstrip(")").split(", ") if " = " in o]
    return f"{{{method}: {{{', '.join(f'{k}: {v}' for k, v in options)}}}}}"


def to_yaml(m: Model, rng: random.Random) -> str:
    out = [f"model: {m.name}"]
    if m.variables:
        out.append("variables:")
        for n, role, domain, dims in m.variables:
            shape = ""
            if dims:
                shape = (f", classes: {dims[0]}" if domain == "categorical" and len(dims) == 1 and rng.random() < 0.5
                         else f", shape: [{', '.join(dims)}]")
            out.append(f"  {n}: {{role: {role}, domain: {domain}{shape}}}")
    for block, factors in (("encoder", m.encoder), ("decoder", m.decoder)):
        if factors:
            out.append(f"{block}:")
            out += [f"  {n}: {_yaml_factor(ps, rhs)}" for n, ps, rhs in factors]
    if m.objective:
        out.append("objective:")
        estimators = [(k, v) for k, v in m.objective if k not in OBJECTIVE and not k.startswith("beta ")]
        betas = [(k[5:], v) for k, v in m.objective if k.startswith("beta ")]
        out += [f"  {k}: {v}" for k, v in m.objective if k in OBJECTIVE]
        if estimators:
            out.append("  estimators:")
            out += [f"    {k}: {_yaml_estimator(v)}" for k, v in estimators]
        if betas:
            out.append("  beta: {" + ", ".join(f"{k}: {v}" for k, v in betas) + "}")
    if m.train:
        out.append("train:")
        out += [f"  {k}: {v}" for k, v in m.train]
    return "\n".join(out) + "\n"


# -- mutators -----------------------------------------------------------------------------------
def _tokens(text: str) -> list[str]:
    out, word = [], ""
    for ch in text:
        if ch.isalnum() or ch in "_.+-":
            word += ch
            continue
        if word:
            out.append(word)
            word = ""
        out.append(ch)
    if word:
        out.append(word)
    return out


def _token_edit(rng: random.Random, text: str) -> str:
    toks = _tokens(text)
    if not toks:
        return text
    i = rng.randrange(len(toks))
    r = rng.random()
    if r < 0.35:
        del toks[i]
    elif r < 0.65:
        toks.insert(i, toks[i])
    elif r < 0.9:
        j = rng.randrange(len(toks))
        toks[i], toks[j] = toks[j], toks[i]
    else:
        toks[i] = rng.choice(("{", "}", "(", ")", "[", "]", ",", "|", "~", "=", ":", "#", '"', "'", "-", "&", "*",
                              "!", "%", "@", "`", "\\", "\n", "  "))
    return "".join(toks)


def _huge_number(rng: random.Random, text: str) -> str:
    toks = _tokens(text)
    spots = [i for i, t in enumerate(toks) if t[:1].isdigit()]
    if not spots:
        return text
    big = rng.choice(("1" + "0" * 400, "9" * 5000, "1e999", "-1e999", "1.0e+999", "0x" + "f" * 40, "1" + "_0" * 50,
                      "1:" * 2000 + "0", "." + "0" * 1000 + "1", "nan", ".nan", ".inf", "-.inf", "inf",
                      "0" * 5000 + "4", "2" * 19, str(2**63), str(-2**63 - 1), "1e308", "1e-400", "0b" + "1" * 70))
    toks[rng.choice(spots)] = big
    return "".join(toks)


def _long_line(rng: random.Random, text: str) -> str:
    lines = text.split("\n")
    i = rng.randrange(len(lines))
    piece = rng.choice((" a", ", p", "z", " |", "[", "mlp(", "9", " #", ", 1"))
    lines[i] += piece * rng.choice((1000, 5000, 20000))
    return "\n".join(lines)


def _unicode(rng: random.Random, text: str) -> str:
    i = rng.randrange(len(text) + 1)
    return text[:i] + rng.choice(UNICODE) * rng.choice((1, 1, 3)) + text[i:]


def _control(rng: random.Random, text: str) -> str:
    r = rng.random()
    if r < 0.25:
        i = rng.randrange(len(text) + 1)
        return text[:i] + "\x00" + text[i:]
    if r < 0.5:
        return "\ufeff" + text
    if r < 0.75:
        return text.replace("\n", "\r\n")
    return text.replace("\n", "\r") if r < 0.85 else text.replace("\n", "\u2028")


def _yaml_alias(rng: random.Random, text: str) -> str:
    r = rng.random()
    if r < 0.4:  # a billion laughs
        depth = rng.choice((5, 10, 20))
        bomb = "l0: &l0 [a, a, a, a, a, a, a, a, a, a]\n" + "".join(
            f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]\n" for i in range(1, depth))
        target = rng.choice(("  x: {role: observed, domain: real, shape: *L}\n",
                             "train: *L\n", "decoder: {x: {dist: Normal, args: *L}}\n", "variables: *L\n"))
        return bomb + text + target.replace("*L", f"*l{depth - 1}")
    if r < 0.6:
        return text.replace("{role:", "&a {role:", 1).rstrip("\n") + "\n  w: *a\n  w2: *a\n"
    if r < 0.75:
        return "a: &a [*a]\n" + text
    if r < 0.85:
        return text + "objective: &o {alpha: *o}\n"
    return text.replace(": ", ": *nope ", 1)


def _yaml_tag(rng: random.Random, text: str) -> str:
    tag = rng.choice(("!!python/object/apply:os.system ['echo hi']", "!!binary aGk=", "!custom", "!!str", "!!int",
                      "!!float", "!!map", "!!seq", "!!set", "!!omap", "!!timestamp", "!!null", "!!bool",
                      "!<tag:yaml.org,2002:int>", "!!python/name:os.system", "!"))
    i = text.find(": ", rng.randrange(len(text) + 1))
    if i < 0:
        return f"{tag} {text}"
    return text[:i + 2] + tag + " " + text[i + 2:]


def _nest(rng: random.Random, text: str) -> str:
    n = rng.choice((100, 1000, 20000))
    return text + rng.choice((f"train: {{data: {'[' * n}{']' * n}}}\n", "x" + "(" * n + ")" * n + "\n",
                              "a: " + "- " * n + "1\n", "{" * n + "\n"))


def _truncate(rng: random.Random, text: str) -> str:
    return text[: rng.randrange(len(text) + 1)]


def _repeat(rng: random.Random, text: str) -> str:
    lines = text.split("\n")
    i = rng.randrange(len(lines))
    times = min(rng.choice((10, 200, 3000)), 2_000_000 // (len(lines[i]) + 1))  # at most about 2 MB more
    return "\n".join(lines[: i + 1] + [lines[i]] * times + lines[i + 1:])


TEXT_MUTATORS = (_token_edit, _token_edit, _token_edit, _huge_number, _long_line, _unicode, _control, _nest,
                 _truncate, _repeat)
YAML_MUTATORS = (_yaml_alias, _yaml_tag)


def _garbage(rng: random.Random, data: bytes) -> bytes:
    r = rng.random()
    if r < 0.4:
        return bytes(rng.randrange(256) for _ in range(rng.choice((1, 16, 300))))
    if r < 0.7:  # a few bytes flipped: often not UTF-8
        b = bytearray(data)
        for _ in range(rng.choice((1, 3))):
            if b:
                b[rng.randrange(len(b))] = rng.randrange(256)
        return bytes(b)
    if r < 0.85:
        return b"\xef\xbb\xbf\xef\xbb\xbf" + data  # two BOMs
    return data + b"\xff\xfe\x00"


@dataclass(frozen=True)
class Case:
    index: int
    language: str  # "dsl" | "yaml"
    data: bytes
    mutations: tuple[str, ...]

    @property
    def suffix(self) -> str:
        return ".gvae" if self.language == "dsl" else ".yaml"


def make_case(seed: int, index: int, max_bytes: int = 1_000_000) -> Case:
    """Case ``index`` of ``seed``: a generated spec in one language, mutated 0-3 times."""
    rng = random.Random(f"{seed}:{index}")
    model = generate(rng)
    language = rng.choice(("dsl", "yaml"))
    text = to_dsl(model) if language == "dsl" else to_yaml(model, rng)
    mutators = TEXT_MUTATORS + (YAML_MUTATORS if language == "yaml" else ())
    done = []
    for _ in range(rng.choice((0, 0, 1, 1, 1, 2, 3))):
        mutate = rng.choice(mutators)
        text = mutate(rng, text)[:max_bytes]  # bounded at each step: repeating a long line twice would reach GBs
        done.append(mutate.__name__.lstrip("_"))
    data = text.encode("utf-8", errors="surrogatepass")
    if rng.random() < 0.05:
        data = _garbage(rng, data)
        done.append("garbage")
    return Case(index, language, data[:max_bytes], tuple(done))


# -- running one case ---------------------------------------------------------------------------
class _Timeout(BaseException):
    """Raised by SIGALRM in a case that ran past the hard limit (a BaseException: no ``except
    Exception`` in the code under test can swallow it)."""


class _Sink(io.TextIOBase):
    """A stdout that counts the characters written and keeps none."""

    def __init__(self):
        self.chars = 0

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        self.chars += len(s)
        return len(s)


@dataclass(frozen=True)
class Outcome:
    kind: str  # ok | diagnosed | traceback | killed
    seconds: float
    output_chars: int
    detail: str = ""  # the traceback, for a failure


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KB


def run_case(case: Case, folder: str, hard_limit: float = 20.0) -> Outcome:
    """``graphvae check`` (text or JSON, alternately) on the case's bytes, in-process."""
    from graphvae.cli import check

    path = os.path.join(folder, f"case{case.suffix}")
    with open(path, "wb") as fh:
        fh.write(case.data)
    args = argparse.Namespace(files=[path], format="json" if case.index % 2 else "text")
    sink = _Sink()

    def alarm(signum, frame):
        raise _Timeout()

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, hard_limit)
    start = time.perf_counter()
    try:
        with contextlib.redirect_stdout(sink):
            code = check.run(args)
        kind = "ok" if code == 0 else "diagnosed"
        detail = ""
    except (SpecError, UserError):
        kind, detail = "diagnosed", ""
    except _Timeout:
        kind, detail = "killed", f"over {hard_limit} s"
    except BaseException:  # noqa: BLE001 - every other exception is what the fuzzer looks for
        kind, detail = "traceback", traceback.format_exc()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    return Outcome(kind, time.perf_counter() - start, sink.chars, detail)


@dataclass
class Report:
    counts: Counter = field(default_factory=Counter)
    slow: list[tuple[int, float, int, tuple[str, ...]]] = field(default_factory=list)  # case, s, bytes, mutations
    failures: list[tuple[Case, Outcome]] = field(default_factory=list)
    peak_rss_mb: float = 0.0
    largest_input: int = 0
    most_output: int = 0
    largest_growth: tuple = (0.0, None, 0, ())  # MB the peak RSS grew by in one case: MB, case, bytes, mutations
    seconds: float = 0.0


def fuzz(cases: int, seed: int = 0, max_bytes: int = 1_000_000, slow: float = 2.0, start: int = 0,
         progress: bool = False) -> Report:
    """Run ``cases`` cases from ``start``; return the counts, the slow cases and the failures."""
    report = Report()
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="graphvae-fuzz-") as folder:
        for index in range(start, start + cases):
            case = make_case(seed, index, max_bytes)
            before = peak_rss_mb()  # after drawing the case: the peak RSS a check adds is its own
            outcome = run_case(case, folder)
            grew = peak_rss_mb() - before
            if grew > report.largest_growth[0]:
                report.largest_growth = (grew, index, len(case.data), case.mutations)
            report.counts[outcome.kind] += 1
            report.largest_input = max(report.largest_input, len(case.data))
            report.most_output = max(report.most_output, outcome.output_chars)
            if outcome.seconds > slow:
                report.slow.append((index, outcome.seconds, len(case.data), case.mutations))
            if outcome.kind in ("traceback", "killed"):
                report.failures.append((case, outcome))
            if progress and (index - start + 1) % 1000 == 0:
                print(f"  {index - start + 1:,} cases, {dict(report.counts)}, {len(report.slow)} slow, "
                      f"peak RSS {peak_rss_mb():.0f} MB", file=sys.stderr, flush=True)
    report.peak_rss_mb = peak_rss_mb()
    report.seconds = time.perf_counter() - began
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--start", type=int, default=0, help="the first case's number")
    p.add_argument("--case", type=int, default=None, help="run this one case only")
    p.add_argument("--show", action="store_true", help="with --case: print its input")
    p.add_argument("--max-bytes", type=int, default=1_000_000)
    p.add_argument("--slow", type=float, default=2.0, help="seconds a case may take")
    p.add_argument("--save", default=None, help="folder to write failing inputs to")
    args = p.parse_args(argv)
    if args.case is not None:
        case = make_case(args.seed, args.case, args.max_bytes)
        if args.show:
            print(case.data[:4000])
        with tempfile.TemporaryDirectory() as folder:
            outcome = run_case(case, folder)
        print(f"case {case.index} ({case.language}, {len(case.data):,} bytes, mutations {case.mutations}): "
              f"{outcome.kind} in {outcome.seconds:.2f} s, {outcome.output_chars:,} characters of output")
        print(outcome.detail, end="")
        return 1 if outcome.kind in ("traceback", "killed") else 0
    report = fuzz(args.cases, args.seed, args.max_bytes, args.slow, args.start, progress=True)
    c = report.counts
    print(f"{sum(c.values()):,} cases (seed {args.seed}) in {report.seconds:.0f} s: ok {c['ok']:,}, "
          f"diagnosed {c['diagnosed']:,}, tracebacks {c['traceback']:,}, killed {c['killed']:,}, "
          f"slow (>{args.slow:g} s) {len(report.slow):,}; peak RSS {report.peak_rss_mb:.0f} MB; largest input "
          f"{report.largest_input:,} bytes, most output {report.most_output:,} characters")
    grew, index, size, mutations = report.largest_growth
    if index is not None:
        print(f"  largest rise of the peak RSS in one case: {grew:.0f} MB, case {index} ({size:,} bytes, {mutations})")
    if report.slow:
        sizes = sorted(size for _, _, size, _ in report.slow)
        print(f"  slow cases' inputs: {sizes[0]:,} to {sizes[-1]:,} bytes (median {sizes[len(sizes) // 2]:,})")
    for index, seconds, size, mutations in report.slow[:10]:
        print(f"  slow: case {index} {seconds:.2f} s, {size:,} bytes, {mutations}")
    for case, outcome in report.failures[:10]:
        last = outcome.detail.strip().splitlines()[-1] if outcome.detail.strip() else outcome.kind
        print(f"  {outcome.kind}: case {case.index} {case.mutations}: {last}")
        if args.save:
            Path(args.save).mkdir(parents=True, exist_ok=True)
            (Path(args.save) / f"case{case.index}{case.suffix}").write_bytes(case.data)
    return 1 if report.failures or report.slow else 0


if __name__ == "__main__":
    raise SystemExit(main())
