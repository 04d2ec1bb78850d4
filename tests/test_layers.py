"""Import rules between the layers, read from every module's imports (function-level ones included).

Data flows one way: text -> IR -> graph -> modules -> loss.  The packages are layers:

    base     graphvae.errors, graphvae.atomic (and the package's lazy __init__)
    spec     the spec language: IR, diagnostics, front ends, validation, printers, tables
    compile  networks, the compiled model, the objective         (may use spec)
    data     datasets, labelled subsets, batches                   (may use spec)
    render   diagrams and LaTeX                                    (may use spec)
    train    the loop, run folders, checkpoints, evaluation        (may use compile, data, spec)
    cli      argument parsing and every command                    (may use anything)

and these rules hold: the spec layer imports neither torch nor numpy; YAML loading and
validation do not import lark; render (and the check, fmt and render commands) import no
torch; nothing outside the CLI imports it; no two modules import each other, however
indirectly.  The checker is tested on synthetic graphs that break each rule.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "graphvae"

LAYERS = {  # layer -> the layers its modules may import
    "base": {"base"},
    "spec": {"spec", "base"},
    "compile": {"compile", "spec", "base"},
    "data": {"data", "spec", "base"},
    "render": {"render", "spec", "base"},
    "train": {"train", "compile", "data", "spec", "base"},
    "cli": {"cli", "train", "compile", "data", "render", "spec", "base"},
}
# (modules whose whole import closure is checked, third-party packages it must not reach, why)
FORBIDDEN = [
    (("graphvae.spec",), {"torch", "numpy"}, "the spec layer imports neither torch nor numpy"),
    (("graphvae.spec.yaml_loader", "graphvae.spec.validate"), {"lark"}, "YAML loading does not import lark"),
    (("graphvae.render", "graphvae.cli.render", "graphvae.cli.check", "graphvae.cli.fmt", "graphvae.cli.main"),
     {"torch"}, "render, check and fmt import no torch"),
]


# -- reading the graph --------------------------------------------------------------------------
def _modules(package: Path) -> dict[str, Path]:
    out = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def module_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> every module of the package and top-level third-party package it imports,
    at module level or inside functions (``import a.b``: ``a.b``; ``from a import b``: ``a.b``
    when that is a module, else ``a``)."""
    modules = _modules(package)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = name.split(".") if is_package else name.split(".")[:-1]
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for target in targets:
                if target.split(".")[0] == package.name:
                    while target not in modules and "." in target:
                        target = target.rsplit(".", 1)[0]
                    deps.add(target)
                elif target and target != "__future__":
                    deps.add(target.split(".")[0])
        deps.discard(name)
        graph[name] = deps
    return graph


def layer(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "graphvae":
        return None
    if len(parts) == 1 or parts[1] in ("errors", "atomic", "__main__", "grammar"):
        return "base" if parts[-1] != "__main__" else "cli"
    return parts[1]


# -- the rules ------------------------------------------------------------------------------------
def closure(graph: dict[str, set[str]], starts) -> set[str]:
    seen, todo = set(), [m for m in graph if any(m == s or m.startswith(s + ".") for s in starts)]
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        todo.extend(graph.get(m, ()))
    return seen


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            if d not in graph:
                continue
            if state.get(d) == 1:
                return stack[stack.index(d):] + [d]
            if d not in state:
                found = visit(d)
                if found:
                    return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state:
            found = visit(m)
            if found:
                return found
    return None


def violations(graph: dict[str, set[str]]) -> list[str]:
    """Every broken rule, one line each."""
    out = []
    for module, deps in sorted(graph.items()):
        mine = layer(module)
        for dep in sorted(deps):
            theirs = layer(dep)
            if theirs == "cli" and mine != "cli":
                out.append(f"{module} imports the CLI ({dep}): nothing outside graphvae.cli may")
            elif mine and theirs and theirs not in LAYERS[mine]:
                out.append(f"{module} ({mine}) imports {dep} ({theirs}): {mine} may use {sorted(LAYERS[mine])}")
    for starts, banned, why in FORBIDDEN:
        reached = closure(graph, starts)
        for module in sorted(reached):
            for dep in sorted(graph.get(module, set()) & banned):
                out.append(f"{module} imports {dep}, so {'/'.join(starts)} reach it: {why}")
    cycle = find_cycle(graph)
    if cycle:
        out.append("import cycle: " + " -> ".join(cycle))
    return out


# -- the real package -----------------------------------------------------------------------------
def test_the_package_keeps_every_rule():
    graph = module_graph()
    assert len(graph) > 40 and "graphvae.spec.ir" in graph
    assert violations(graph) == []


def test_every_module_is_in_a_layer():
    for module in module_graph():
        assert layer(module) in LAYERS, module


@pytest.mark.parametrize("code", [
    "import graphvae; graphvae.load_spec('specs/m2.yaml')",
    "from graphvae.spec.loader import check_file; check_file('specs/m2.yaml')",
])
def test_loading_yaml_imports_neither_lark_nor_torch(code):
    probe = f"import sys; {code}; assert 'lark' not in sys.modules and 'torch' not in sys.modules, sorted(sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


# -- the checker itself, on synthetic graphs ------------------------------------------------------
CLEAN = {
    "graphvae.errors": set(),
    "graphvae.spec.ir": set(),
    "graphvae.spec.yaml_loader": {"graphvae.spec.ir", "yaml"},
    "graphvae.spec.parser": {"graphvae.spec.ir", "lark"},
    "graphvae.spec.validate": {"graphvae.spec.ir"},
    "graphvae.compile.model": {"graphvae.spec.ir", "torch"},
    "graphvae.render.diagram": {"graphvae.spec.ir", "graphviz"},
    "graphvae.train.loop": {"graphvae.compile.model", "torch"},
    "graphvae.cli.main": {"graphvae.cli.parser"},
    "graphvae.cli.parser": {"graphvae.spec.ir"},
}


def broken(**changes) -> dict[str, set[str]]:
    graph = {k: set(v) for k, v in CLEAN.items()}
    for module, deps in changes.items():
        graph.setdefault(module.replace("__", "."), set()).update(deps)
    return graph


def test_the_clean_synthetic_graph_passes():
    assert violations(CLEAN) == []


@pytest.mark.parametrize("changes, fragment", [
    ({"graphvae__spec__ir": {"torch"}}, "the spec layer imports neither torch nor numpy"),
    ({"graphvae__spec__validate": {"graphvae.spec.helpers"}, "graphvae__spec__helpers": {"numpy"}},
     "the spec layer imports neither torch nor numpy"),
    ({"graphvae__spec__yaml_loader": {"graphvae.spec.parser"}}, "YAML loading does not import lark"),
    ({"graphvae__render__diagram": {"graphvae.compile.model"}}, "graphvae.render.diagram (render) imports graphvae.compile.model"),
    ({"graphvae__render__diagram": {"torch"}}, "render, check and fmt import no torch"),
    ({"graphvae__train__loop": {"graphvae.cli.parser"}}, "imports the CLI"),
    ({"graphvae__spec__ir": {"graphvae.compile.model"}}, "graphvae.spec.ir (spec) imports graphvae.compile.model"),
    ({"graphvae__compile__model": {"graphvae.data.batches"}, "graphvae__data__batches": set()},
     "compile may use"),
    ({"graphvae__cli__parser": {"graphvae.cli.main"}}, "import cycle: graphvae.cli.main -> graphvae.cli.parser"),
])
def test_the_checker_catches_each_broken_rule(changes, fragment):
    found = violations(broken(**changes))
    assert any(fragment in line for line in found), found


def test_function_level_and_relative_imports_count(tmp_path):
    pkg = tmp_path / "graphvae"
    (pkg / "spec").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "spec" / "__init__.py").write_text("")
    (pkg / "spec" / "ir.py").write_text("def f():\n    import torch\n    from . import names\n")
    (pkg / "spec" / "names.py").write_text("from .ir import f\n")
    graph = module_graph(pkg)
    assert graph["graphvae.spec.ir"] == {"torch", "graphvae.spec.names"}
    assert graph["graphvae.spec.names"] == {"graphvae.spec.ir"}
    found = violations(graph)
    assert any("torch" in line for line in found) and any("import cycle" in line for line in found)
