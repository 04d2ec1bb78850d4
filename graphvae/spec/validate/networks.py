"""Validation rules for the networks of factors and deterministic nodes (torch-free): their kind
and widths, their options, and what the convolutional and attention networks (conv, locate,
glimpse, erase, paste, identity) need of their parents.  :mod:`graphvae.spec.validate.factors`
runs :func:`rule_networks` among its rules; :mod:`graphvae.compile.nets` reads the options."""

from __future__ import annotations

from typing import Iterator

from graphvae.spec import errorcodes as codes
from graphvae.spec.binding import bind_params, lone_argument
from graphvae.spec.diagnostics import Diagnostic, did_you_mean, error, warning
from graphvae.spec.families import FAMILIES
from graphvae.spec.ir import Factor, Net, Variable
from graphvae.spec.networks import (ATTENTION, CONVOLUTIONAL, NETWORKS, NONNEGATIVE_ACTIVATIONS, POSITION_SHAPE,
                                    erased_image, image_parents, value_width, window)
from graphvae.spec.settings import Bool, Constraint, Interval, OneOf
from graphvae.spec.validate.context import (Context, base_constraint, check_options, describe_factor, first_span,
                                            head_span, is_number, is_width)

ACTIVATIONS = ("relu", "softplus", "tanh", "sigmoid", "elu", "leaky_relu", "gelu", "silu", "identity")
NET_OPTIONS: dict[str, Constraint] = {  # option -> its constraint (graphvae.compile.nets reads them)
    "activation": OneOf(ACTIVATIONS),
    "batchnorm": Bool(),  # batch normalisation before each hidden activation
    "dropout": Interval(0, upper=1),  # dropout probability after each hidden activation
}
CONV_OPTIONS: dict[str, Constraint] = {  # a conv's and locate's options: the above, their geometry and dense layer
    **NET_OPTIONS,
    "kernel": Interval(1, text=(">= 1, odd", "an odd whole number")),  # kernel x kernel convolutions
    "stride": Interval(1, text=(">= 1", "a whole number >= 1")),  # each convolution's stride
    "dense": Interval(1, text=(">= 1", "a whole number >= 1")),  # a hidden affine layer after the flattening
    "coords": Bool(),  # two more input channels, each pixel's row and column (CoordConv)
}
WHOLE_CONV_OPTIONS = ("kernel", "stride", "dense")



def _factor_nets(f: Factor) -> tuple[tuple[Net, bool], ...]:
    """The networks of a factor with whether each is a deterministic node's."""
    if f.deterministic:
        return ((f.net, True),) if f.net is not None else ()
    return tuple((n, False) for n in f.dist.nets)


def rule_networks(ctx: Context) -> Iterator[Diagnostic]:
    for block, f in ctx.all_factors():
        for net, node in _factor_nets(f):
            span = first_span(net.span, f.span)
            if net.kind not in NETWORKS:
                span = head_span(net.span, net.kind) or span
                hint = did_you_mean(net.kind, NETWORKS + ("uniform",))
                if node and net.kind in FAMILIES:
                    hint = f"a stochastic factor is written '{f.name} | ... ~ {net.kind}(...)'"
                yield error(codes.UNKNOWN_NETWORK, f"{describe_factor(block, f)} uses unknown network '{net.kind}'; "
                            f"networks are {', '.join(NETWORKS)}", span, hint)
                continue
            if net.kind in ATTENTION:
                yield from _check_attention(ctx, block, f, net, node)
                continue
            if net.kind in CONVOLUTIONAL:
                yield from _check_conv(ctx, block, f, net, node)
                continue
            if not f.parents and not f.absent:  # a plate's slot 0 feeds zeros for z[k-1] to the shared network
                yield error(codes.NETWORK_NEEDS_PARENT, f"{describe_factor(block, f)} uses network '{net.kind}' "
                            "but has no parents to feed it; a root factor takes literals or uniform", span)
            if net.kind == "identity":
                problem = _identity_problem(ctx, block, f, net, node)
                if problem is not None:
                    yield error(codes.BAD_NETWORK, problem[0], span, problem[1])
                continue
            yield from _check_options(block, f, net)
            yield from _check_widths(block, f, net, node)


def _is_position(var: Variable | None) -> bool:
    return var is not None and var.domain == "real" and tuple(var.shape) == POSITION_SHAPE


def _gives_position(ctx: Context, block: str, name: str) -> bool:
    """A parent whose value is a position: a ``real[2]`` variable, or a ``locate`` node of the block."""
    node = ctx.deterministic(block).get(name)
    if node is not None:
        return node.net is not None and node.net.kind == "locate"
    return _is_position(ctx.variables.get(name))


def _input_size(ctx: Context, block: str, name: str) -> int | None:
    """The flattened size of a parent: a deterministic node's width, a variable's size."""
    nodes = ctx.deterministic(block)
    if name in nodes:
        return value_width(name, ctx.variables, nodes) if nodes[name].net is not None else None
    var = ctx.variables.get(name)
    if var is None or var.discrete or not all(is_width(d) for d in var.shape):
        return None
    size = 1
    for d in var.shape:
        size *= d
    return size


EXAMPLES = {"glimpse": "g | x, w = glimpse(28)", "erase": "r | x, w = erase(28)",
            "paste": "x | p, w ~ Bernoulli(paste(28))"}


def _attention_problem(ctx: Context, block: str, f: Factor, net: Net, node: bool) -> tuple[str, str | None] | None:
    """What is wrong with a ``glimpse``, ``erase`` or ``paste`` (message, hint), or None
    (:mod:`graphvae.spec.networks` says what each one reads and makes)."""
    kind, where = net.kind, describe_factor(block, f)
    example = EXAMPLES[kind]
    if kind in ("glimpse", "erase") and not node:
        return (f"{kind} as an argument of {where}: a{'n' if kind == 'erase' else ''} {kind} is a deterministic "
                f"node, whose value is the {'window it reads' if kind == 'glimpse' else 'image it leaves'}",
                f"write '{example}' and give the node to the family's network")
    if kind == "paste" and node:
        return (f"paste as {where}: paste builds a family's parameter from patches, so it is a family's argument",
                f"write '{example}'")
    if len(net.hidden) not in (1, 2) or not all(is_width(s) and s >= 2 for s in net.hidden):
        return (f"{kind} in {where} takes a window of one size or two (height, width), each a whole number >= 2, "
                f"found ({', '.join(map(repr, net.hidden))})", f"e.g. {example}")
    if net.options:
        return f"{kind} in {where} takes no options ('{net.options[0].name}')", None
    if kind == "erase":
        return _erase_problem(ctx, block, f, net, where)
    if f.absent:
        return (f"{kind} in {where} reads a previous slot, which slot 0 lacks; a window network reads its own "
                "slot's position", None)
    h, w = window(net)
    image = ctx.variables.get(f.name) if kind == "paste" else None
    positions = [p for p in f.parents if _gives_position(ctx, block, p)]
    others = [p for p in f.parents if p not in positions]
    if kind == "glimpse":
        images = image_parents(others, ctx.variables, ctx.deterministic(block))
        erased = [p for p in images if p in ctx.deterministic(block)]
        if len(positions) != 1 or len(images) != 1 or len(f.parents) != 2 or \
                any(ctx.deterministic(block)[p].net.kind != "erase" for p in erased):
            return (f"{kind} in {where} reads one image (a variable of shape [H, W] or an erase node) at one "
                    "position (a real[2] variable or a locate node: row, column); its parents are "
                    f"{', '.join(f.parents) or 'none'}", f"e.g. {example}")
        source = erased_image(ctx.deterministic(block)[images[0]], ctx.variables) if erased else images[0]
        image = ctx.variables.get(source) if source is not None else None
        if image is None:
            return None  # the erase node's own rule reports it
    if kind == "paste":
        if image is None or len(image.shape) != 2:
            return (f"paste in {where} makes an image: its variable needs a shape [H, W], found "
                    f"{list(image.shape) if image else '?'}", None)
        family = FAMILIES.get(f.dist.family)
        if len(f.dist.nets) != 1:
            return f"paste in {where} must be the factor's only network", None
        if family is not None and lone_argument(f.dist) is not None and len(family.head) != 1:
            return (f"paste in {where} makes one parameter, and {family.name}'s head has {', '.join(family.head)}",
                    f"name it and give the others as numbers, e.g. {family.name}({family.head[0]} = paste({h}), ...)")
        if not positions or len(positions) != len(others):
            return (f"paste in {where} pairs each patch with a position (a real[2] variable or a locate node), in "
                    "order; it has "
                    f"{len(others)} patches ({', '.join(others) or 'none'}) and {len(positions)} positions", None)
        wrong = [p for p in others if _input_size(ctx, block, p) != h * w]
        if wrong:
            return (f"paste({h}, {w}) in {where} places patches of {h * w} numbers; '{wrong[0]}' has "
                    f"{_input_size(ctx, block, wrong[0]) or 'not a fixed number of real'} values", None)
    if not all(is_width(d) for d in image.shape):
        return None  # the variable's shape is reported by its own rule
    if h > image.shape[0] or w > image.shape[1]:
        return (f"{kind}({h}, {w}) in {where} does not fit in '{image.name}', whose shape is "
                f"[{image.shape[0]}, {image.shape[1]}]", None)
    return None


def _erase_problem(ctx: Context, block: str, f: Factor, net: Net, where: str) -> tuple[str, str | None] | None:
    """An ``erase`` reads one image variable of shape [H, W], at most one erase node (the image it
    goes on from: its own previous slot in a plate) and one position; a parent a plate's slot 0
    lacks (``r[k-1]``, ``w[k-1]``) counts as what it stands for."""
    nodes = ctx.deterministic(block)
    hint = f"e.g. {EXAMPLES['erase']}, or in a plate r[k] | x, r[k-1], w[k-1] = erase(28)"
    inputs = list(f.parents) + [like for _, like in f.absent]
    positions = [p for p in inputs if _gives_position(ctx, block, p)]
    chain = [p for p in inputs if p in nodes and nodes[p].net is not None and nodes[p].net.kind == "erase"]
    images = [p for p in inputs if (v := ctx.variables.get(p)) is not None and len(v.shape) == 2]
    if len(positions) != 1 or len(images) != 1 or len(chain) > 1 or len(inputs) != 2 + len(chain):
        return (f"erase in {where} blanks a window of one image (a variable of shape [H, W], or the erase node it "
                "goes on from) at one position (a real[2] variable or a locate node); its parents are "
                f"{', '.join(f.parents) or 'none'}", hint)
    image = ctx.variables[images[0]]
    if chain and erased_image(nodes[chain[0]], ctx.variables) != image.name:
        return (f"erase in {where} goes on from '{nodes[chain[0]].shared or chain[0]}', which erases "
                f"'{erased_image(nodes[chain[0]], ctx.variables)}', not '{image.name}'", None)
    h, w = window(net)
    if all(is_width(d) for d in image.shape) and (h > image.shape[0] or w > image.shape[1]):
        return (f"erase({h}, {w}) in {where} does not fit in '{image.name}', whose shape is "
                f"[{image.shape[0]}, {image.shape[1]}]", None)
    return None


def _check_attention(ctx: Context, block: str, f: Factor, net: Net, node: bool) -> Iterator[Diagnostic]:
    problem = _attention_problem(ctx, block, f, net, node)
    if problem is not None:
        yield error(codes.BAD_ATTENTION, problem[0], first_span(net.span, f.span), problem[1])
    elif net.kind == "paste":
        yield from _check_patches(ctx, block, f, net)


def _check_patches(ctx: Context, block: str, f: Factor, net: Net) -> Iterator[Diagnostic]:
    """A patch whose values are >= 0 (an activated node) only adds ink: warned once per paste."""
    nodes = ctx.deterministic(block)
    for p in f.parents:
        patch = nodes.get(p)
        if patch is None or patch.net is None or patch.net.kind not in ("mlp", "conv"):
            continue
        if patch.net.activation in NONNEGATIVE_ACTIVATIONS:
            name = patch.shared or p  # a plate's patch by its written name, p[k]
            yield warning(codes.NONNEGATIVE_PATCH,
                          f"patch '{name}' of the paste in {describe_factor(block, f)} is an {patch.net.kind} node "
                          f"ending in {patch.net.activation}: its values are >= 0, so it can only raise the "
                          "canvas (a Bernoulli's logits: add ink), never lower it", first_span(net.span, f.span),
                          "end the patch in linear, e.g. h[k] | digits[k], z[k] = mlp(256) then "
                          "p[k] | h[k] = linear(784)")
            return


def _conv_problem(ctx: Context, block: str, f: Factor, net: Net, node: bool) -> tuple[str, str | None] | None:
    """What is wrong with a ``conv`` or ``locate`` besides its options (message, hint), or None
    (:mod:`graphvae.spec.networks` says what each reads and makes)."""
    where, kind = describe_factor(block, f), net.kind
    example = f"{kind}(16, 32)" if not node or kind == "locate" else "conv(16, 32, dense = 256)"
    if not net.hidden:
        return f"{kind} in {where} needs at least one channel count, e.g. {example}", None
    bad = [c for c in net.hidden if not is_width(c)]
    if bad:
        return f"{kind} in {where} has channel count {bad[0]!r}; channel counts are positive integers", None
    whole = [o for o in net.options if o.name in WHOLE_CONV_OPTIONS and is_number(o.value) and o.value != int(o.value)]
    if whole:
        return f"{whole[0].name} = {whole[0].value!r} in {where} must be a whole number", None
    if is_number(net.option("kernel", 3)) and int(net.option("kernel", 3)) % 2 == 0:
        return (f"kernel = {net.option('kernel')} in {where} must be odd (each convolution is padded by "
                "kernel // 2 on each side)", f"e.g. kernel = {int(net.option('kernel')) + 1}")
    if node and kind == "conv" and net.option("dense") is None:
        return (f"conv as {where} needs dense = n: the node's value is a hidden layer of n units after the "
                "convolutions", f"e.g. {example}")
    images = image_parents(f.parents, ctx.variables, ctx.deterministic(block))
    if len(images) != 1:
        found = f"it has {len(images)}: {', '.join(images)}" if images else \
            f"its parents ({', '.join(f.parents) or 'none'}) hold none"
        return (f"{kind} in {where} reads one image (a variable of shape [H, W], a glimpse or an erase) among its "
                f"parents; {found}", None)
    image = ctx.variables.get(images[0]) if images[0] not in ctx.deterministic(block) else None
    if image is not None and image.discrete and image.domain != "binary":
        return f"{kind} in {where} reads '{image.name}', a {image.domain} image; it reads real or binary pixels", None
    if kind == "locate" and not node:
        return _locate_problem(ctx, f, net, where)
    return None


def _locate_problem(ctx: Context, f: Factor, net: Net, where: str) -> tuple[str, str | None] | None:
    """A ``locate`` as a family argument gives a position: 2 numbers, for one unconstrained
    parameter of a ``real[2]`` variable (a Normal's loc, say)."""
    hint = f"e.g. {f.shared or f.name} | ... ~ Normal(loc = locate(16, 32, dense = 64), scale = 1)"  # a plate's as written
    var, fam = ctx.variables.get(f.name), FAMILIES.get(f.dist.family)
    if not _is_position(var):
        shape = f"{var.domain}[{', '.join(map(str, var.shape))}]" if var is not None else "undeclared"
        return (f"locate in {where} gives a position (row, column: 2 numbers), but '{f.name}' is {shape}, "
                "not real[2]", hint)
    if fam is None:
        return None
    slots, _ = bind_params(f.dist, fam, where, f.span)
    filled = [name for name, arg in slots.items() if arg.value is net]
    if len(filled) != 1 or fam.constraints.get(filled[0], "real") != "real":
        what = ", ".join(filled) or "no parameter"
        return (f"locate in {where} fills {what} of {fam.name}; it gives one unconstrained position, so it "
                "fills one real parameter alone (a loc), the others literals or networks of their own", hint)
    return None


def _identity_problem(ctx: Context, block: str, f: Factor, net: Net, node: bool) -> tuple[str, str | None] | None:
    """An ``identity`` fills one unconstrained parameter of a family with its parents' values,
    which are real and together as many numbers as the variable (a parent a plate's slot 0
    lacks counts as what it stands for)."""
    where, name = describe_factor(block, f), f.shared or f.name  # a plate's variable as written
    hint = f"e.g. {name} | v ~ Normal(loc = identity, scale = 1)"
    if node:
        return (f"identity as {where}: a node equal to its parent is the parent itself; identity is a family's "
                "argument, whose parameter is the parents' values", hint)
    if net.hidden or net.options:
        return f"identity in {where} takes no widths or options: it has no weights", "write 'identity'"
    inputs = list(f.parents) + [like for _, like in f.absent]
    if not inputs:
        return None  # network-needs-parent
    fam = FAMILIES.get(f.dist.family)
    if fam is not None:
        if lone_argument(f.dist) is not None:  # a lone network fills the family's head: Bernoulli's logits
            filled = list(fam.head)
        else:  # by the name written: logits = identity fills Bernoulli's probs through its logits
            filled = [arg.name or slot for slot, arg in bind_params(f.dist, fam, where, f.span)[0].items()
                      if arg.value is net]
        if len(filled) != 1 or base_constraint(fam.constraints.get(filled[0], "real")) != "real":
            return (f"identity in {where} fills {', '.join(filled) or 'no parameter'} of {fam.name}; it copies "
                    "values as they are, so it fills one unconstrained parameter alone (a loc, logits), the others "
                    "literals or networks of their own", "e.g. Normal(loc = identity, scale = 1), "
                    "Bernoulli(logits = identity)")
    discrete = [p for p in inputs if (v := ctx.variables.get(p)) is not None and v.discrete]
    if discrete:
        return (f"identity in {where} copies real values; '{discrete[0]}' is "
                f"{ctx.variables[discrete[0]].domain}", "give it to a network, e.g. linear")
    sizes = [_input_size(ctx, block, p) for p in inputs]
    var = ctx.variables.get(f.name)
    if var is None or None in sizes or not all(is_width(d) for d in var.shape):
        return None  # an undeclared parent or a bad shape is reported by its own rule
    size = 1
    for d in var.shape:
        size *= d
    if sum(sizes) != size:
        held = " + ".join(f"{p} {n}" for p, n in zip(inputs, sizes))
        return (f"identity in {where} fills a parameter of '{name}', {size} number(s), with its parents' values, "
                f"which hold {sum(sizes)} ({held})", "give the parents to a network, e.g. linear")
    return None


def _check_conv(ctx: Context, block: str, f: Factor, net: Net, node: bool) -> Iterator[Diagnostic]:
    yield from _check_options(block, f, net, CONV_OPTIONS)
    problem = _conv_problem(ctx, block, f, net, node)
    if problem is not None:
        yield error(codes.BAD_NETWORK, problem[0], first_span(net.span, f.span), problem[1])


def _check_options(block: str, f: Factor, net: Net, allowed: dict[str, Constraint] = NET_OPTIONS
                   ) -> Iterator[Diagnostic]:
    """A network's options against ``allowed`` (an mlp's or linear's; a conv's adds its own)."""
    where = describe_factor(block, f)
    yield from check_options(net.options, allowed, net.kind, f"{net.kind} in {where}", net.span,
                             lambda opt, c: (f"{opt.name} = {opt.value!r} in {where} is not one of "
                                             f"{', '.join(c.choices)}", did_you_mean(str(opt.value), c.choices))
                             if c.choices else (f"{opt.name} = {opt.value!r} in {where} must be {c.math}", None))


def _check_widths(block: str, f: Factor, net: Net, node: bool) -> Iterator[Diagnostic]:
    where, span = describe_factor(block, f), first_span(net.span, f.span)
    bad = [w for w in net.hidden if not is_width(w)]
    if bad:
        yield error(codes.BAD_NETWORK, f"{net.kind} in {where} has width {bad[0]!r}; widths are positive integers",
                    span)
    if net.kind == "mlp" and not net.hidden:
        yield error(codes.BAD_NETWORK, f"mlp in {where} needs at least one hidden width, e.g. mlp(256)", span,
                    None if node else "use 'linear' for an affine map")
    elif net.kind == "linear" and node and len(net.hidden) != 1:
        yield error(codes.BAD_NETWORK, f"linear as {where} needs exactly one output width, e.g. linear(64); "
                    f"found {len(net.hidden)}", span)
    elif net.kind == "linear" and not node and net.hidden:
        yield error(codes.BAD_NETWORK, f"linear as an argument of {where} takes no width: the family's "
                    "parameters set its output", span, "write 'linear'")
