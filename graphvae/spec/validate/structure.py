"""Validation rules about names and structure: variables, factors and the graphs q and p (torch-free)."""

from __future__ import annotations

from typing import Iterator

from graphvae.spec import errorcodes as codes
from graphvae.spec.diagnostics import Diagnostic, did_you_mean, error, warning
from graphvae.spec.graph import all_cycles, format_cycle
from graphvae.spec.ir import DOMAINS, ROLES
from graphvae.spec.validate.context import BLOCK_LETTER, BLOCKS, Context, describe_factor, factor_span, parent_span

# -- variables ------------------------------------------------------------------------

def rule_roles_and_domains(ctx: Context) -> Iterator[Diagnostic]:
    for v in ctx.spec.variables:
        if v.role not in ROLES:
            yield error(codes.UNKNOWN_ROLE, f"variable '{v.name}' has unknown role '{v.role}'; "
                        f"roles are {', '.join(ROLES)}", v.role_span or v.span, did_you_mean(v.role, ROLES))
        if v.domain not in DOMAINS:
            yield error(codes.UNKNOWN_DOMAIN, f"variable '{v.name}' has unknown domain '{v.domain}'; "
                        f"domains are {', '.join(DOMAINS)}", v.domain_span or v.span, did_you_mean(v.domain, DOMAINS))


def rule_observed_exists(ctx: Context) -> Iterator[Diagnostic]:
    if not ctx.spec.observed and ctx.spec.variables:
        yield error(codes.NO_OBSERVED, f"model '{ctx.spec.name}' has no observed variable; "
                    "declare the data as e.g. 'x : observed binary[784]'", ctx.spec.span)
    elif not ctx.spec.variables:
        yield error(codes.NO_OBSERVED, f"model '{ctx.spec.name}' declares no variables", ctx.spec.span)


def rule_duplicate_variables(ctx: Context) -> Iterator[Diagnostic]:
    for v in ctx.spec.variables:
        first = ctx.variables[v.name]
        if first is not v:
            where = f" (first declared at line {first.span.line})" if first.span else ""
            yield error(codes.DUPLICATE, f"variable '{v.name}' is declared twice{where}", v.span)


# -- factors and names ----------------------------------------------------------------

def rule_duplicate_factors(ctx: Context) -> Iterator[Diagnostic]:
    for block in BLOCKS:
        for f in ctx.block_factors(block):
            first = ctx.factors[block][f.name]
            if first is not f:
                where = f" (first at line {first.span.line})" if first.span else ""
                yield error(codes.DUPLICATE, f"'{f.name}' is defined twice in the {block}{where}; "
                            "each name has one factor per block", factor_span(f))
            seen: set[str] = set()
            for i, p in enumerate(f.parents):
                if p in seen:
                    yield error(codes.DUPLICATE, f"parent '{p}' is named twice in {describe_factor(block, f)}",
                                parent_span(f, i))
                seen.add(p)


def rule_name_clash(ctx: Context) -> Iterator[Diagnostic]:
    for block, f in ctx.all_factors():
        if f.deterministic and f.name in ctx.variables:
            yield error(codes.NAME_CLASH, f"deterministic node '{f.name}' in the {block} has the name of "
                        f"{ctx.variables[f.name].role} variable '{f.name}'; rename the node",
                        factor_span(f))


def _other_block(block: str) -> str:
    return "decoder" if block == "encoder" else "encoder"


def rule_undefined_names(ctx: Context) -> Iterator[Diagnostic]:
    known_in = {block: list(ctx.variables) + list(ctx.deterministic(block)) for block in BLOCKS}
    for block, f in ctx.all_factors():
        local, known = ctx.deterministic(block), known_in[block]
        if not f.deterministic and f.name not in ctx.variables:
            yield error(codes.UNDEFINED_NAME, f"{describe_factor(block, f)} is a factor for '{f.name}', "
                        "which is not a declared variable", factor_span(f), did_you_mean(f.name, known))
        for i, p in enumerate(f.parents):
            if p in ctx.variables or p in local:
                continue
            if block == "encoder" and p in ctx.deterministic("decoder"):
                continue  # reported by rule_encoder_dependency
            elsewhere = p in ctx.deterministic(_other_block(block))
            hint = (f"'{p}' is a deterministic node of the {_other_block(block)} only"
                    if elsewhere else did_you_mean(p, known))
            yield error(codes.UNDEFINED_NAME, f"{describe_factor(block, f)} names parent '{p}', which is "
                        f"neither a declared variable nor a deterministic node of the {block}",
                        parent_span(f, i), hint)


def rule_cycles(ctx: Context) -> Iterator[Diagnostic]:
    for block in BLOCKS:
        g = ctx.graphs[block]
        for cycle in all_cycles(g):
            f = g.nodes[cycle[0]]["factor"]  # every node on a cycle has parents, hence a factor
            span = factor_span(f) if f is not None else getattr(ctx.spec, f"{block}_span")
            yield error(codes.CYCLE, f"the {block} ({BLOCK_LETTER[block]}) has a cycle: {format_cycle(cycle)}; "
                        "factors must form a directed acyclic graph", span)


def rule_factor_coverage(ctx: Context) -> Iterator[Diagnostic]:
    for v in ctx.spec.variables:
        if ctx.variables[v.name] is not v or not ctx.is_used(v) or v.role not in ROLES:
            continue
        need = ("decoder",) if v.role == "observed" else BLOCKS
        for block in need:
            if ctx.stochastic(block, v.name) is None:
                yield error(codes.MISSING_FACTOR, f"{v.role} variable '{v.name}' has no factor in the {block} "
                            f"({BLOCK_LETTER[block]}); {_coverage_rule(v.role)}", v.span)


def _coverage_rule(role: str) -> str:
    if role == "observed":
        return "an observed variable needs one factor in p and none in q"
    return f"a {role} variable needs exactly one factor in q and one in p"


def rule_observed_in_encoder(ctx: Context) -> Iterator[Diagnostic]:
    for f in ctx.spec.encoder:
        v = ctx.variables.get(f.name)
        if v is not None and v.role == "observed" and not f.deterministic:
            yield error(codes.OBSERVED_IN_ENCODER, f"the encoder has a factor for observed variable '{f.name}'; "
                        "observed variables are always given, so q has no factor for them", factor_span(f))


def rule_encoder_dependency(ctx: Context) -> Iterator[Diagnostic]:
    q_nodes = set(ctx.factors["encoder"])
    for f in ctx.spec.encoder:
        for i, p in enumerate(f.parents):
            v = ctx.variables.get(p)
            if p in q_nodes or (v is not None and v.role == "observed"):
                continue
            if v is not None:
                found = f"{v.role} variable '{p}', which has no factor in q"
            elif p in ctx.deterministic("decoder"):
                found = f"'{p}', a deterministic node of the decoder"
            else:
                continue  # undefined: reported by rule_undefined_names
            yield error(codes.ENCODER_DEPENDENCY, f"{describe_factor('encoder', f)} conditions on {found}; "
                        "q may condition only on observed variables and other q nodes", parent_span(f, i))


def rule_unused(ctx: Context) -> Iterator[Diagnostic]:
    for v in ctx.spec.variables:
        if ctx.variables[v.name] is v and not ctx.is_used(v):
            yield warning(codes.UNUSED, f"{v.role} variable '{v.name}' appears in no factor; it takes no part "
                          "in the model", v.span)
    for block in BLOCKS:
        g = ctx.graphs[block]
        for name, f in ctx.deterministic(block).items():
            if name not in ctx.variables and g.out_degree(name) == 0:
                yield warning(codes.UNUSED, f"deterministic node '{name}' in the {block} is not a parent of "
                              "any factor", factor_span(f))


RULES = [
    rule_roles_and_domains, rule_observed_exists, rule_duplicate_variables,
    rule_duplicate_factors, rule_name_clash, rule_undefined_names, rule_cycles,
    rule_factor_coverage, rule_observed_in_encoder, rule_encoder_dependency, rule_unused,
]
