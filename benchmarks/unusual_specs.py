"""Valid-but-unusual specs pushed through every command: ``check``, ``compile``, one step of
``train``, ``eval``, ``sample`` and ``train --resume``, on a tiny synthetic .npz made to fit each spec.

A spec is generated from a :class:`Recipe` (variables, the q and p factors, estimators,
settings); :func:`random_recipe` draws one, and keyword arguments force any choice, so that
``tests/test_unusual_specs.py`` can list one recipe per feature (deterministic nodes, several
supervised variables, every estimator and family, multi-dimensional and size-1 shapes, every
domain, a label read after the style) while this script runs many random ones::

    python benchmarks/unusual_specs.py --cases 300 --seed 0

It prints how many specs validated, the exit codes of every command, and every Python
traceback (the goal: none). Commands run in-process through ``graphvae.cli.main.main``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import shutil
import sys
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# families whose support is each domain exactly (a latent's or supervised variable's must be)
HIDDEN_FAMILIES = {
    "real": ["Normal", "Laplace", "StudentT"],
    "positive": ["LogNormal"],
    "unit": ["Beta", "ContinuousBernoulli"],
    "binary": ["Bernoulli"],
    "categorical": ["Categorical"],
    "simplex": ["Dirichlet"],
}
# families that may model observed data of each domain (their support contains it)
OBSERVED_FAMILIES = {
    "real": ["Normal", "Laplace", "StudentT"],
    "positive": ["LogNormal", "Gamma", "Exponential", "Normal"],
    "unit": ["ContinuousBernoulli", "Beta", "Normal"],
    "binary": ["Bernoulli", "ContinuousBernoulli", "Normal"],
    "categorical": ["Categorical"],
    "simplex": ["Dirichlet"],
}
PRIORS = {  # a fixed prior of each family
    "Normal": "Normal(0, 1)", "Laplace": "Laplace(0, 1)", "StudentT": "StudentT(3, 0, 1)",
    "LogNormal": "LogNormal(0, 1)", "Beta": "Beta(2, 2)", "ContinuousBernoulli": "ContinuousBernoulli(0.5)",
    "Bernoulli": "Bernoulli(uniform)", "Categorical": "Categorical(uniform)", "Dirichlet": "Dirichlet(uniform)",
}
SHAPES = {  # shapes a variable of each domain may take
    "real": [(), (1,), (2,), (3,), (2, 2)],
    "positive": [(), (1,), (2,)],
    "unit": [(1,), (2,), (2, 1)],
    "binary": [(1,), (2,), (3,)],
    "categorical": [(2,), (3,), (5,)],
    "simplex": [(2,), (3,)],
}
OBSERVED_SHAPES = [(16,), (4, 4), (1, 4, 4), (3, 2, 2), (2, 3, 2), (5,), (1,)]
NETS = ["mlp(4)", "mlp(6, 3)", "linear", "mlp(4, activation = tanh)", "mlp(5, batchnorm = true)",
        "mlp(4, dropout = 0.2)", "mlp(3, activation = softplus)", "mlp(2, 2, activation = elu)"]
N_EXAMPLES = 40
TRAIN = {"epochs": "1", "batch_size": "64", "labels": "-1", "labelled_per_batch": "4", "eval_samples": "2",
         "device": "cpu"}  # one step an epoch (64 > the 32 or so training examples)
TRAIN_CHOICES = {  # what random_recipe(train=True) draws from, beside TRAIN
    "batch_size": ["64", "64", "1", "7"], "labelled_per_batch": ["4", "0", "1", "-1"],
    "binarize": ["dynamic", "static", "threshold"], "validation": ["0.1", "0", "0.5"],
    "optimizer": ["adam", "adamw", "sgd", "rmsprop"], "schedule": ["constant", "cosine", "step", "exponential", "decay"],
    "grad_clip": ["0", "1"], "grad_clip_value": ["0", "0.5"], "selection": ["error_se", "error", "elbo", "last"],
    "weight_decay": ["0", "0.01"],
}


@dataclass
class Node:
    """One variable: its declaration, its q factor (latent and supervised ones) and its p factor."""

    name: str
    role: str
    domain: str
    shape: tuple[int, ...]
    q_family: str = ""
    q_parents: tuple[str, ...] = ()
    q_net: str = "mlp(4)"
    p_family: str = ""
    p_parents: tuple[str, ...] = ()
    p_net: str = "mlp(4)"
    p_literal: str = ""  # a fixed prior (no parents), e.g. "Normal(0, 1)"; else a learnt one
    estimator: str = ""  # discrete hidden variables: enumerate, relax, reinforce, relax(temperature = 0.5)

    @property
    def declaration(self) -> str:
        dims = f"[{', '.join(map(str, self.shape))}]" if self.shape else ""
        return f"{self.name} : {self.role} {self.domain}{dims}"


@dataclass
class Recipe:
    name: str
    nodes: list[Node]
    q_order: list[str]  # latent and supervised names in the encoder's order
    p_order: list[str]  # every name in the decoder's order
    q_det: dict[str, tuple[tuple[str, ...], str]] = field(default_factory=dict)  # name -> (parents, net)
    p_det: dict[str, tuple[tuple[str, ...], str]] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)  # objective settings, e.g. {"samples": "3"}
    betas: dict[str, float] = field(default_factory=dict)
    train: dict[str, str] = field(default_factory=lambda: dict(TRAIN))  # the train block

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    def text(self) -> str:
        lines = [f"model {self.name}", ""] + [n.declaration for n in self.nodes] + ["", "encoder {"]
        q_lines = {n: f"  {n} | {', '.join(ps)} = {net}" for n, (ps, net) in self.q_det.items()}
        for name in list(self.q_det) + self.q_order:
            if name in q_lines:
                lines.append(q_lines[name])
                continue
            v = self.node(name)
            lines.append(f"  {name} | {', '.join(v.q_parents)} ~ {v.q_family}({v.q_net})")
        lines += ["}", "", "decoder {"]
        for name, (ps, net) in self.p_det.items():
            lines.append(f"  {name} | {', '.join(ps)} = {net}")
        for name in self.p_order:
            v = self.node(name)
            given = f" | {', '.join(v.p_parents)}" if v.p_parents else ""
            dist = v.p_literal if v.p_literal and not v.p_parents else f"{v.p_family}({v.p_net})"
            lines.append(f"  {name}{given} ~ {dist}")
        lines += ["}", "", "objective {"]
        lines += [f"  {k} = {value}" for k, value in self.settings.items()]
        lines += [f"  {v.name} = {v.estimator}" for v in self.nodes if v.estimator]
        lines += [f"  beta {k} = {b:g}" for k, b in self.betas.items()]
        lines += ["}", "", "train {"] + [f"  {k} = {value}" for k, value in self.train.items()] + ["}", ""]
        return "\n".join(lines)


def _pick(rng, options):
    return options[int(rng.integers(len(options)))]


def random_recipe(rng: np.random.Generator, name: str = "unusual", *, observed=None, supervised=None, latent=None,
                  q_det: bool | None = None, p_det: bool | None = None, style_first: bool | None = None,
                  estimator: str | None = None, samples: int | None = None, beta: bool | None = None,
                  nets=None, train: bool = False, train_settings: dict[str, str] | None = None) -> Recipe:
    """A random recipe; any keyword fixes that choice: ``observed``/``supervised``/``latent`` as lists of
    ``(domain, shape)`` or ``(domain, shape, family)``, ``q_det``/``p_det`` deterministic nodes,
    ``style_first`` (labels after the latents in q), ``estimator`` for every discrete hidden variable;
    ``train=True`` also draws the train settings (batch sizes down to 1, no validation, optimisers,
    schedules, clipping, selection, binarization, the labelled-only baseline), ``train_settings`` sets some."""
    def declared(spec, count, observed=False):
        out = []
        for item in spec if spec is not None else [None] * count:
            if item is None:
                domain = _pick(rng, list(HIDDEN_FAMILIES))
                shapes = OBSERVED_SHAPES if observed and domain not in ("categorical", "simplex") else SHAPES[domain]
                item = (domain, _pick(rng, shapes))
            out.append(item)
        return out

    observed = declared(observed, int(rng.integers(1, 3)), observed=True)
    supervised = declared(supervised, int(rng.integers(0, 3)))
    latent = declared(latent, int(rng.integers(1, 3)))
    nets = nets or NETS
    nodes: list[Node] = []
    for i, item in enumerate(observed):
        domain, shape = item[0], item[1]
        family = item[2] if len(item) > 2 else _pick(rng, OBSERVED_FAMILIES[domain])
        nodes.append(Node("x" if i == 0 else f"x{i}", "observed", domain, tuple(shape), p_family=family,
                          p_net=_pick(rng, nets)))
    for role, items, stem in (("supervised", supervised, "y"), ("latent", latent, "z")):
        for i, item in enumerate(items):
            domain, shape = item[0], item[1]
            family = item[2] if len(item) > 2 else _pick(rng, HIDDEN_FAMILIES[domain])
            nodes.append(Node(f"{stem}{i}", role, domain, tuple(shape), q_family=family, p_family=family,
                              q_net=_pick(rng, nets), p_net=_pick(rng, nets)))
    obs = [n.name for n in nodes if n.role == "observed"]
    hidden = [n for n in nodes if n.role != "observed"]
    # q: an optional trunk h | x, then the hidden variables (labels first, or last: style first)
    recipe = Recipe(name, nodes, [], [])
    if q_det if q_det is not None else rng.random() < 0.4:
        recipe.q_det["h"] = (tuple(obs), _pick(rng, ["mlp(6)", "linear(3)", "mlp(4, 4)"]))
    style_first = style_first if style_first is not None else rng.random() < 0.3
    order = sorted(hidden, key=lambda n: (n.role == "supervised") == style_first)
    if rng.random() < 0.5:
        rng.shuffle(order)
    for i, v in enumerate(order):
        base = ["h"] if recipe.q_det and rng.random() < 0.7 else list(obs)
        earlier = [u.name for u in order[:i] if rng.random() < 0.6]
        v.q_parents = tuple(base + earlier)
        recipe.q_order.append(v.name)
    # p: hidden variables in a random order, each given some earlier ones; then the observed ones
    p_hidden = list(hidden)
    rng.shuffle(p_hidden)
    for i, v in enumerate(p_hidden):
        v.p_parents = tuple(u.name for u in p_hidden[:i] if rng.random() < 0.4)
        if not v.p_parents:  # a root factor takes literals or uniform
            v.p_literal = PRIORS[v.p_family]
    top = [v.name for v in p_hidden]
    if p_det if p_det is not None else rng.random() < 0.3:
        recipe.p_det["g"] = (tuple(top[: max(1, len(top) // 2)]), _pick(rng, ["linear(3)", "mlp(4)"]))
    for v in nodes:
        if v.role == "observed":
            v.p_parents = tuple((["g"] if recipe.p_det else []) + [u for u in top if rng.random() < 0.7 or u == top[-1]])
    recipe.p_order = top + obs
    # objective: estimators of discrete hidden variables, samples, alpha, beta
    for v in hidden:
        if v.domain in ("binary", "categorical"):
            v.estimator = estimator or _pick(rng, ["enumerate", "relax", "reinforce", "relax(temperature = 0.5)"])
    recipe.settings["samples"] = str(samples if samples is not None else _pick(rng, [1, 1, 2, 3]))
    if any(v.role == "supervised" for v in hidden):
        recipe.settings["alpha"] = _pick(rng, ["0", "0.1", "2"])
        recipe.settings["alpha_scaling"] = _pick(rng, ["dataset", "per_example", "labelled_fraction"])
    latents = [v.name for v in hidden if v.role == "latent"]
    if latents and (beta if beta is not None else rng.random() < 0.3):
        recipe.betas[latents[0]] = _pick(rng, [0.5, 4.0])
    if train:
        recipe.train.update({k: _pick(rng, options) for k, options in TRAIN_CHOICES.items() if rng.random() < 0.5})
        if any(v.role == "supervised" for v in hidden) and rng.random() < 0.15:
            recipe.train["labelled_only"] = "true"
    recipe.train.update(train_settings or {})
    return recipe


def _values(rng, domain: str, shape: tuple[int, ...], n: int) -> np.ndarray:
    if domain == "categorical":
        return rng.integers(0, shape[-1], (n,) + shape[:-1])
    full = (n,) + shape
    if domain == "binary":
        return (rng.random(full) < 0.5).astype(np.float32)
    if domain == "unit":
        return rng.uniform(0.05, 0.95, full).astype(np.float32)
    if domain == "positive":
        return np.exp(rng.normal(size=full)).astype(np.float32)
    if domain == "simplex":
        return rng.dirichlet(np.ones(shape[-1]), full[:-1]).astype(np.float32)
    return rng.normal(size=full).astype(np.float32)


def make_data(recipe: Recipe, path: Path, seed: int = 0, n: int = N_EXAMPLES) -> Path:
    """An .npz for ``recipe``'s observed and supervised variables; about a third of each label missing."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for v in recipe.nodes:
        if v.role == "latent":
            continue
        a = _values(rng, v.domain, v.shape, n)
        if v.role == "supervised":
            missing = rng.random(n) < 0.35
            missing[:2] = False  # at least two labels
            a = a.astype(np.float32) if v.domain != "categorical" else a
            a[missing] = -1 if v.domain == "categorical" else np.nan
        arrays[v.name] = a
    np.savez(path, **arrays)
    return path


def _call(argv: list[str]) -> tuple[int | None, str, str]:
    """``(exit code, stderr, traceback)`` of one in-process command; the code is None after a traceback."""
    from graphvae.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as e:  # argparse: a usage error
            code = e.code if isinstance(e.code, int) else 2
        except Exception:  # noqa: BLE001 -- what this script counts
            return None, err.getvalue(), traceback.format_exc()
    return code, err.getvalue(), ""


def run_recipe(recipe: Recipe, folder: Path, seed: int = 0) -> list[tuple[str, int | None, str, str]]:
    """``[(command, exit code, last stderr line, traceback)]``: check, then (when the spec is valid)
    compile, one training step, eval, sample and a resumed step."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    spec = folder / "spec.gvae"
    spec.write_text(recipe.text())
    data = make_data(recipe, folder / "data.npz", seed)
    run = folder / "run"
    commands = [
        ("check", ["check", str(spec)]),
        ("compile", ["compile", str(spec)]),
        ("train", ["train", str(spec), "--data", str(data), "--out", str(run), "--no-progress"]),
        ("eval", ["eval", str(run), "-k", "2", "--device", "cpu"]),
        ("sample", ["sample", str(run), "--out", str(folder / "figs"), "--n", "2", "--device", "cpu"]),
        ("resume", ["train", "--resume", str(run), "--epochs", "2", "--no-progress"]),
    ]
    results = []
    for name, argv in commands:
        code, err, tb = _call(argv)
        lines = err.strip().splitlines()
        results.append((name, code, lines[-1] if lines else "", tb))
        if code != 0 and name in ("check", "train"):
            break  # an invalid spec, or no run to go on with
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="/tmp/graphvae_unusual_specs")
    parser.add_argument("--train", action="store_true", help="draw the train settings too")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    codes: Counter = Counter()
    messages: Counter = Counter()  # the one-line errors of commands after check
    tracebacks: list[str] = []
    valid = 0
    t0 = time.perf_counter()
    for i in range(args.cases):
        rng = np.random.default_rng([args.seed, i])
        recipe = random_recipe(rng, f"case{i}", train=args.train)
        results = run_recipe(recipe, Path(args.out) / f"case{i}", seed=i)
        valid += results[0][1] == 0
        for name, code, last, tb in results:
            codes[(name, code)] += 1
            if tb:
                tracebacks.append(f"case {i} {name}:\n{recipe.text()}\n{tb}")
            elif code != 0 and name != "check":
                messages[(name, last[:110])] += 1
    seconds = time.perf_counter() - t0
    print(f"{args.cases} generated specs, {valid} valid, {seconds:.0f} s")
    for (name, code), count in sorted(codes.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
        if count:
            print(f"  {name:<8} exit {code}: {count}")
    for (name, last), count in messages.most_common(20):
        print(f"  {count:>4} x {name}: {last}")
    print(f"tracebacks: {len(tracebacks)}")
    for tb in tracebacks[:5]:
        print(tb)
    return 1 if tracebacks else 0


if __name__ == "__main__":
    sys.exit(main())
