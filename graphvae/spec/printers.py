"""IR -> text: the one set of printers ``fmt``, ``render``, ``compile``, messages and checkpoint diffs use (torch-free).

Every printer writes the DSL's own notation (:mod:`graphvae.spec.formatter` builds the
canonical file from them).  ``compact=True`` is the notation of labels and reports, where
space is short: ``activation=tanh`` instead of ``activation = tanh``, and a float that is a
whole number as an integer (``Normal(0, 1)`` for ``loc = 0.0``).
"""

from __future__ import annotations

import re

from graphvae.spec.families import FAMILIES
from graphvae.spec.ir import Call, Dist, Factor, Net, Option, Plate, Uniform, Variable

WORD = re.compile(r"[A-Za-z_~/][A-Za-z0-9_./~+-]*")  # a bare word value, as the grammar's WORD


def number(value, compact: bool = False) -> str:
    """``0.1``, ``1e-06``, ``7``; compact: ``1.0`` as ``1``."""
    if compact and isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


def literal(value, compact: bool = False) -> str:
    """A setting or option value: ``true``, ``0.1``, ``fashion-mnist``, or a quoted string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return number(value, compact)
    text = str(value)
    if compact or (WORD.fullmatch(text) and text not in ("true", "false")):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def option(o: Option, compact: bool = False) -> str:
    return f"{o.name}{'=' if compact else ' = '}{literal(o.value, compact)}"


def dims(shape: tuple[int, ...]) -> str:
    """``[784]``, ``[1, 28, 28]``; ``""`` for a scalar."""
    return f"[{', '.join(str(d) for d in shape)}]" if shape else ""


def domain(var: Variable) -> str:
    """``binary[784]``."""
    return f"{var.domain}{dims(var.shape)}"


def declared_name(var: Variable) -> str:
    """``x``, or ``y[k]`` for a variable declared in plate k."""
    return f"{var.name}[{', '.join(var.indices)}]" if var.indices else var.name


def declaration(var: Variable, name_width: int = 0, role_width: int = 0) -> str:
    """``x : observed binary[784]``, ``y[k] : supervised categorical[10]`` (names and roles padded to the widths given)."""
    return f"{declared_name(var).ljust(name_width)} : {var.role.ljust(role_width)} {domain(var)}"


def plate(p: Plate) -> str:
    """``plate k < 3 count n``."""
    size = "" if p.size is None else f" < {p.size}"
    return f"plate {p.name}{size}" + (f" count {p.count}" if p.count else "")


def net(n: Net, compact: bool = False) -> str:
    """``mlp(500)``, ``mlp(256, 128, activation = tanh)``, ``linear``."""
    if not n.hidden and not n.options:
        return n.kind
    return f"{n.kind}({', '.join([str(h) for h in n.hidden] + [option(o, compact) for o in n.options])})"


def value(v, compact: bool = False) -> str:
    """A family argument: ``uniform``, a network, or a number."""
    if isinstance(v, Uniform):
        return "uniform"
    if isinstance(v, Net):
        return net(v, compact)
    return number(v, compact)


def positional_form(d: Dist) -> bool:
    """Whether the arguments are literals naming exactly the family's leading parameters, so
    they print by position (``Normal(0, 1)``)."""
    family = FAMILIES.get(d.family)
    names = tuple(p.name for p in d.params)
    return (family is not None and bool(names) and names == family.params[: len(names)]
            and all(isinstance(p.value, (int, float)) and not isinstance(p.value, bool) for p in d.params))


def dist(d: Dist, compact: bool = False) -> str:
    """``Normal(0, 1)``, ``Normal(loc = mlp(500), scale = 0.1)``, ``Categorical(uniform)``."""
    by_position = positional_form(d)
    args = [value(p.value, compact) if by_position or p.name is None
            else f"{p.name}{'=' if compact else ' = '}{value(p.value, compact)}" for p in d.params]
    return f"{d.family}({', '.join(args)})"


def given(name: str, parents) -> str:
    """``z | x, y``, or ``z`` without parents."""
    return f"{name} | {', '.join(parents)}" if parents else name


def factor(f: Factor) -> str:
    """A factor as its DSL line: ``z | x, y ~ Normal(mlp(500))`` or ``h | x = mlp(256)``."""
    return f"{given(f.name, f.parents)} {factor_rhs(f)}"


def factor_rhs(f: Factor) -> str:
    """The right-hand side of a factor's line: ``~ Normal(mlp(500))`` or ``= mlp(256)``."""
    if f.dist is not None:
        return f"~ {dist(f.dist)}"
    return f"= {net(f.net)}" if f.net is not None else "="


def call(c: Call, short: bool = False) -> str:
    """An estimator as written: ``enumerate``, ``relax(temperature = 0.66)``; ``short`` gives a lone
    option's value only (``relax(0.66)``) and several as ``name=value``."""
    if not c.options:
        return literal(c.name)
    if short and len(c.options) == 1:
        return f"{c.name}({c.options[0].value})"
    return f"{c.name}({', '.join(option(o, compact=short) for o in c.options)})"
