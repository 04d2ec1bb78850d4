"""Canonical text of a spec in either language (torch-free; ``graphvae fmt`` prints it).

:func:`to_dsl` and :func:`to_yaml` print a :class:`~graphvae.spec.ir.Spec` in a fixed
layout (the layout of ``specs/m2.gvae`` and ``specs/m2.yaml``): reading the output
back gives an equal spec, and formatting is idempotent.  Comments do not survive,
except the header: the comment lines at the very top of the source, which both
languages write with ``#``.
"""

from __future__ import annotations

import yaml

from graphvae.spec import printers
from graphvae.spec.ir import Net, Param, Spec, Uniform

__all__ = ["to_dsl", "to_yaml", "format_text", "header_comment"]

_LANGUAGES = {".gvae": "dsl", ".yaml": "yaml", ".yml": "yaml"}


def header_comment(source: str) -> str:
    """The comment lines at the top of ``source`` (with a blank line after them if the
    source had one), or ``""``."""
    lines = source.splitlines()
    comments, blank_after = [], False
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("#"):
            if blank_after:  # a blank line between comments: keep the first paragraph only
                break
            comments.append(line.rstrip())
        elif not stripped:
            blank_after = bool(comments)
        else:
            break
    if not comments:
        return ""
    return "\n".join(comments) + "\n" + ("\n" if blank_after else "")


# -- the DSL --------------------------------------------------------------------------------

def _aligned(rows: list[tuple[str, str]], indent: str = "  ") -> list[str]:
    width = max((len(left) for left, _ in rows), default=0)
    return [f"{indent}{left.ljust(width)} {right}".rstrip() for left, right in rows]


def _block(name: str, rows: list[tuple[str, str]]) -> str:
    return "\n".join([f"{name} {{", *_aligned(rows), "}"])


def to_dsl(spec: Spec, header: bool = True) -> str:
    """The spec in the DSL's canonical layout (with the source's header comment when ``header``)."""
    spec = spec.as_written
    parts = [f"model {spec.name}"]
    if spec.plates:
        parts.append("\n".join(printers.plate(p) for p in spec.plates))
    if spec.variables:
        name_w = max(len(printers.declared_name(v)) for v in spec.variables)
        role_w = max(len(v.role) for v in spec.variables)
        parts.append("\n".join(printers.declaration(v, name_w, role_w).rstrip() for v in spec.variables))
    for block, factors in (("encoder", spec.encoder), ("decoder", spec.decoder)):
        if factors:
            parts.append(_block(block, [(printers.given(f.name, f.parents), printers.factor_rhs(f)) for f in factors]))
    obj = spec.objective
    rows = [(s.name, f"= {printers.literal(s.value)}") for s in obj.settings]
    rows += [(e.var, f"= {printers.call(e.method)}") for e in obj.estimators]
    rows += [(f"beta {b.var}", f"= {printers.number(b.value)}") for b in obj.betas]
    if rows:
        parts.append(_block("objective", rows))
    if spec.train:
        parts.append(_block("train", [(s.name, f"= {printers.literal(s.value)}") for s in spec.train]))
    return (header_comment(spec.source) if header else "") + "\n\n".join(parts) + "\n"


# -- YAML -----------------------------------------------------------------------------------

def _scalar(value) -> str:
    """A scalar as YAML writes it inside a flow collection (PyYAML decides the quoting)."""
    text = yaml.safe_dump([value], default_flow_style=True, width=1 << 30, allow_unicode=True).strip()
    return text[1:-1]


def _flow(pairs: list[tuple[str, str]]) -> str:
    return "{" + ", ".join(f"{_scalar(k)}: {v}" for k, v in pairs) + "}"


def _flow_list(items: list[str]) -> str:
    return "[" + ", ".join(items) + "]"


def _yaml_net(net: Net) -> str:
    if not net.hidden and not net.options:
        return _scalar(net.kind)
    pairs = [(net.kind, _flow_list([str(h) for h in net.hidden]))]
    return _flow(pairs + [(o.name, _scalar(o.value)) for o in net.options])


def _yaml_value(value) -> str:
    if isinstance(value, Uniform):
        return "uniform"
    if isinstance(value, Net):
        return _yaml_net(value)
    return _scalar(value)


def _yaml_params(params: tuple[Param, ...]) -> list[tuple[str, str]]:
    positional = [p.value for p in params if p.name is None]
    named = [(p.name, _yaml_value(p.value)) for p in params if p.name is not None]
    out: list[tuple[str, str]] = []
    lone_net = len(positional) == 1 and isinstance(positional[0], Net)
    if lone_net:
        out.append(("net", _yaml_net(positional[0])))
    elif positional and named:
        out.append(("args", _flow_list([_yaml_value(v) for v in positional])))
    elif len(positional) == 1:
        out.append(("params", _yaml_value(positional[0])))
    elif positional:
        out.append(("params", _flow_list([_yaml_value(v) for v in positional])))
    if named:
        out.append(("params", _flow(named)))
    return out


def to_yaml(spec: Spec, header: bool = True) -> str:
    """The spec in YAML's canonical layout (flow mappings, one variable or factor a line)."""
    spec = spec.as_written
    lines = [f"model: {_scalar(spec.name)}"]
    if spec.plates:
        lines.append("plates:")
        for p in spec.plates:
            pairs = [("size", _scalar(p.size))] if p.size is not None else []
            pairs += [("count", _scalar(p.count))] if p.count else []
            lines.append(f"  {_scalar(p.name)}: {_flow(pairs)}")
    if spec.variables:
        lines.append("variables:")
        for v in spec.variables:
            pairs = [("role", _scalar(v.role)), ("domain", _scalar(v.domain))]
            if v.domain == "categorical" and len(v.shape) == 1:
                pairs.append(("classes", str(v.shape[0])))
            elif v.shape:
                pairs.append(("shape", _flow_list([str(d) for d in v.shape])))
            if v.indices:
                pairs.append(("plate", _scalar(v.indices[0]) if len(v.indices) == 1
                              else _flow_list([_scalar(i) for i in v.indices])))
            lines.append(f"  {_scalar(v.name)}: {_flow(pairs)}")
    for block, factors in (("encoder", spec.encoder), ("decoder", spec.decoder)):
        if factors:
            lines.append(f"{block}:")
            for f in factors:
                pairs = [("given", _flow_list([_scalar(p) for p in f.parents]))] if f.parents else []
                if f.dist is not None:
                    pairs.append(("dist", _scalar(f.dist.family)))
                    pairs += _yaml_params(f.dist.params)
                elif f.net is not None:
                    pairs.append(("net", _yaml_net(f.net)))
                lines.append(f"  {_scalar(f.name)}: {_flow(pairs)}")
    obj = spec.objective
    if obj.settings or obj.estimators or obj.betas:
        lines.append("objective:")
        lines += [f"  {_scalar(s.name)}: {_scalar(s.value)}" for s in obj.settings]
        if obj.estimators:
            methods = []
            for e in obj.estimators:
                method = _scalar(e.method.name)
                if e.method.options:
                    method = _flow([(e.method.name, _flow([(o.name, _scalar(o.value)) for o in e.method.options]))])
                methods.append((e.var, method))
            lines.append(f"  estimators: {_flow(methods)}")
        if obj.betas:
            lines.append(f"  beta: {_flow([(b.var, _scalar(b.value)) for b in obj.betas])}")
    if spec.train:
        lines.append("train:")
        lines += [f"  {_scalar(s.name)}: {_scalar(s.value)}" for s in spec.train]
    return (header_comment(spec.source) if header else "") + "\n".join(lines) + "\n"


def format_text(text: str, path: str, language: str, to: str | None = None):
    """``(formatted text or None, diagnostics)``: None when the text has front-end errors."""
    if language == "dsl":
        from graphvae.spec.parser import parse_dsl as parse
    else:
        from graphvae.spec.yaml_loader import load_yaml as parse
    spec, diags = parse(text, path)
    if spec is None or any(d.is_error for d in diags):
        return None, diags
    return (to_dsl if (to or language) == "dsl" else to_yaml)(spec), diags
