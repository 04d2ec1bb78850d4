"""How a family's arguments fill its parameters: one binding for the front ends, validation and the compiler.

Torch-free, lark-free.

* :func:`canonical_params` puts arguments in the canonical form both front ends produce, so
  ``Normal(0, 1)`` equals ``Normal(loc = 0, scale = 1)`` and YAML's ``params: {loc: 0, scale: 1}``.
* :func:`bind_params` maps each parameter slot to the argument filling it, with a diagnostic for
  every problem: ``Family(net)``, a lone positional network, produces every parameter (its
  head); ``Family(uniform)`` means the family's ``uniform`` parameters, broadcast to the
  shape; otherwise positional arguments fill ``family.params`` in order and named ones their
  slot (an alias such as ``logits`` fills the slot of ``probs``); every slot must be filled.
* :func:`plan_params` is the compiler's reading of the same binding: which parameters are
  literals, and which a network's head produces.
"""

from __future__ import annotations

from dataclasses import dataclass

from graphvae.spec import errorcodes as codes
from graphvae.spec.diagnostics import Diagnostic, did_you_mean, error
from graphvae.spec.families import FAMILIES, Family
from graphvae.spec.ir import Dist, Factor, Net, Param, Span, Uniform


def _first(*spans: Span | None) -> Span | None:
    return next((s for s in spans if s is not None), None)


def canonical_params(family: str, params: tuple[Param, ...]) -> tuple[Param, ...]:
    """The canonical form of a family's arguments, shared by both front ends.

    Literal numbers given by position take their family's parameter names, so
    ``Normal(0, 1)`` equals ``Normal(loc = 0, scale = 1)`` and YAML's
    ``params: {loc: 0, scale: 1}``; named parameters are then put in the family's
    order (unknown names last, as written).  Arguments that cannot be named for
    sure stay as written for validation to judge: an unknown family, a positional
    network or ``uniform`` (one network for all parameters), too many arguments, or
    a name given twice.
    """
    fam = FAMILIES.get(family)
    if fam is None:
        return params
    positional = [p for p in params if p.name is None]
    named = [p for p in params if p.name is not None]
    if positional and all(isinstance(p.value, (int, float)) and not isinstance(p.value, bool) for p in positional):
        names = fam.params[: len(positional)]
        taken = {p.name for p in named}
        if len(positional) <= len(fam.params) and not taken & set(names):
            named = [Param(n, p.value, p.span) for n, p in zip(names, positional)] + named
            positional = []
    order = {n: i for i, n in enumerate(fam.param_names())}
    named.sort(key=lambda p: order.get(p.name, len(order)))
    return tuple(positional) + tuple(named)


def lone_argument(dist: Dist) -> Param | None:
    """The argument when it is a lone positional network or ``uniform``, which fills every slot."""
    args = dist.params
    if len(args) == 1 and args[0].name is None and isinstance(args[0].value, (Net, Uniform)):
        return args[0]
    return None


def bind_params(dist: Dist, family: Family, where: str = "", span: Span | None = None) -> tuple[dict[str, Param], list[Diagnostic]]:
    """Map each parameter slot of ``family`` (``family.params``) to the argument filling it, and
    every problem of the arguments as diagnostics (``where`` names the factor in messages).

    ``Param.name`` tells whether a slot was filled by its own name, an alias (``logits``) or
    positionally (None)."""
    args, diags, fam = dist.params, [], family.name
    at = _first(dist.span, span)
    if not args:
        return {}, [error(codes.MISSING_PARAMETER, f"{where}: {fam}() needs arguments: literals for "
                          f"{', '.join(family.params)}, a network, or uniform", at)]
    lone = lone_argument(dist)
    if lone is not None:
        if isinstance(lone.value, Uniform) and family.uniform is None:
            diags.append(error(codes.BAD_PARAMETER, f"{where}: {fam} has no uniform form; 'uniform' works for "
                               f"{', '.join(n for n, x in FAMILIES.items() if x.uniform)}",
                               _first(lone.span, dist.span)))
        return {p: lone for p in family.params}, diags
    uniform = [a for a in args if isinstance(a.value, Uniform)]
    if uniform:
        return {}, [error(codes.BAD_PARAMETER, f"'uniform' must be the only argument of {fam}, as in {fam}(uniform)",
                          _first(uniform[0].span, dist.span))]
    slots: dict[str, Param] = {}
    for i, arg in enumerate(args):
        arg_span = _first(arg.span, dist.span)
        if arg.name is None:
            if i >= len(family.params):
                diags.append(error(codes.BAD_PARAMETER, f"{fam} takes at most {len(family.params)} positional "
                                   f"argument(s) ({', '.join(family.params)}), found {len(args)}", arg_span))
                continue
            slot = family.params[i]
        elif arg.name in family.params:
            slot = arg.name
        elif arg.name in family.aliases:
            slot = family.aliases[arg.name]
        else:
            diags.append(error(codes.UNKNOWN_PARAMETER, f"{fam} has no parameter '{arg.name}'; its parameters are "
                               f"{', '.join(family.param_names())}", arg_span,
                               did_you_mean(arg.name, family.param_names())))
            continue
        if slot in slots:
            given = f" (as '{arg.name}')" if arg.name not in (None, slot) else ""
            diags.append(error(codes.DUPLICATE, f"parameter '{slot}' of {fam} is given twice{given}", arg_span))
            continue
        slots[slot] = arg
    if not diags:
        for slot in family.params:
            if slot not in slots:
                diags.append(error(codes.MISSING_PARAMETER, f"{where}: {fam} needs '{slot}', found only "
                                   f"{', '.join(p.name or '<positional>' for p in args)}; give it a literal "
                                   "or a network", at))
    return slots, diags


@dataclass(frozen=True)
class ParamPlan:
    """Where each parameter of a factor comes from."""

    literals: dict[str, float]  # parameter (as named: an alias stays an alias) -> value
    nets: tuple[tuple[Net, tuple[str, ...]], ...]  # (network, the parameters its head outputs)


def plan_params(factor: Factor) -> ParamPlan:
    """The compiler's reading of :func:`bind_params` for a stochastic factor.  Raises ValueError, with
    the first diagnostic's message, for arguments validation rejects."""
    family = FAMILIES.get(factor.dist.family)
    if family is None:
        raise ValueError(f"unknown family {factor.dist.family!r}")
    slots, diags = bind_params(factor.dist, family, f"the factor of '{factor.name}'")
    errors = [d for d in diags if d.is_error]
    if errors:
        raise ValueError(errors[0].message)
    lone = lone_argument(factor.dist)
    if lone is not None:
        if isinstance(lone.value, Uniform):
            return ParamPlan(dict(family.uniform), ())
        return ParamPlan({}, ((lone.value, tuple(family.head)),))
    literals: dict[str, float] = {}
    nets: list[tuple[Net, tuple[str, ...]]] = []
    for slot, arg in slots.items():
        name = arg.name or slot
        if isinstance(arg.value, Net):
            nets.append((arg.value, (name,)))
        else:
            literals[name] = float(arg.value)
    return ParamPlan(literals, tuple(nets))
