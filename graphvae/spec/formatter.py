"""Canonical text of a spec, in either language, and the ``graphvae fmt`` command (torch-free).

:func:`to_dsl` and :func:`to_yaml` print a :class:`~graphvae.ir.Spec` in a fixed
layout (the layout of ``specs/m2.gvae`` and ``specs/m2.yaml``): reading the output
back gives an equal spec, and formatting is idempotent.  Comments do not survive,
except the header: the comment lines at the very top of the source, which both
languages write with ``#``.
"""

from __future__ import annotations

import re

import yaml

from graphvae.spec.families import FAMILIES
from graphvae.spec.ir import Dist, Net, Option, Param, Spec, Uniform

__all__ = ["to_dsl", "to_yaml", "format_text", "run_fmt", "header_comment"]

_WORD = re.compile(r"[A-Za-z_~/][A-Za-z0-9_./~+-]*")
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

def _number(value) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def _literal(value) -> str:
    """A setting or option value as the DSL writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return _number(value)
    text = str(value)
    if _WORD.fullmatch(text) and text not in ("true", "false"):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _options(options: tuple[Option, ...]) -> list[str]:
    return [f"{o.name} = {_literal(o.value)}" for o in options]


def _net(net: Net) -> str:
    if not net.hidden and not net.options:
        return net.kind
    return f"{net.kind}({', '.join([str(h) for h in net.hidden] + _options(net.options))})"


def _value(value) -> str:
    if isinstance(value, Uniform):
        return "uniform"
    if isinstance(value, Net):
        return _net(value)
    return _number(value)


def _positional_form(dist: Dist) -> bool:
    """Whether named literals are exactly the family's leading parameters, so they print by position."""
    family = FAMILIES.get(dist.family)
    names = tuple(p.name for p in dist.params)
    return (family is not None and bool(names) and names == family.params[: len(names)]
            and all(isinstance(p.value, (int, float)) and not isinstance(p.value, bool) for p in dist.params))


def _dist(dist: Dist) -> str:
    if _positional_form(dist):
        args = [_value(p.value) for p in dist.params]
    else:
        args = [_value(p.value) if p.name is None else f"{p.name} = {_value(p.value)}" for p in dist.params]
    return f"{dist.family}({', '.join(args)})"


def _aligned(rows: list[tuple[str, str]], indent: str = "  ") -> list[str]:
    width = max((len(left) for left, _ in rows), default=0)
    return [f"{indent}{left.ljust(width)} {right}".rstrip() for left, right in rows]


def _block(name: str, rows: list[tuple[str, str]]) -> str:
    return "\n".join([f"{name} {{", *_aligned(rows), "}"])


def to_dsl(spec: Spec, header: bool = True) -> str:
    """The spec in the DSL's canonical layout (with the source's header comment when ``header``)."""
    parts = [f"model {spec.name}"]
    if spec.variables:
        name_w = max(len(v.name) for v in spec.variables)
        role_w = max(len(v.role) for v in spec.variables)
        parts.append("\n".join(
            f"{v.name.ljust(name_w)} : {v.role.ljust(role_w)} {v.domain}"
            + (f"[{', '.join(str(d) for d in v.shape)}]" if v.shape else "") for v in spec.variables))
    for block, factors in (("encoder", spec.encoder), ("decoder", spec.decoder)):
        if factors:
            rows = []
            for f in factors:
                left = f.name + (f" | {', '.join(f.parents)}" if f.parents else "")
                right = f"= {_net(f.net)}" if f.dist is None and f.net is not None else f"~ {_dist(f.dist)}" \
                    if f.dist is not None else "="
                rows.append((left, right))
            parts.append(_block(block, rows))
    obj = spec.objective
    rows = [(s.name, f"= {_literal(s.value)}") for s in obj.settings]
    for e in obj.estimators:
        call = _literal(e.method.name)
        if e.method.options:
            call = f"{e.method.name}({', '.join(_options(e.method.options))})"
        rows.append((e.var, f"= {call}"))
    rows += [(f"beta {b.var}", f"= {_number(b.value)}") for b in obj.betas]
    if rows:
        parts.append(_block("objective", rows))
    if spec.train:
        parts.append(_block("train", [(s.name, f"= {_literal(s.value)}") for s in spec.train]))
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
    lines = [f"model: {_scalar(spec.name)}"]
    if spec.variables:
        lines.append("variables:")
        for v in spec.variables:
            pairs = [("role", _scalar(v.role)), ("domain", _scalar(v.domain))]
            if v.domain == "categorical" and len(v.shape) == 1:
                pairs.append(("classes", str(v.shape[0])))
            elif v.shape:
                pairs.append(("shape", _flow_list([str(d) for d in v.shape])))
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
