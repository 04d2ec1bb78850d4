"""How much memory a spec's model needs, estimated from the spec alone (torch-free).

A width of ``mlp(100000, 100000)`` or a shape of ``real[100000000]`` is valid syntax but no
machine can allocate it, and torch would say so only after a long wait, in its allocator's
words.  :func:`estimate` counts, as :mod:`graphvae.compile.nets` builds them, the weights of
every network (one affine map per layer: the first over the concatenated, flattened parents,
the last a head of the family's parameters; a batch norm's scale and shift; a conv's kernels;
a paste's canvas; a plate's shared network once), exactly the compiled model's parameters, and, roughly, the activations of one training step
at the configured batch size: every network's layer widths and every variable's value, per
example of the batch, times the samples S and the enumerated values of the networks that see
them, kept for the backward pass.  Training holds the weights four times (the weights, their
gradients and Adam's two moments).

:func:`rule_memory` warns (``large-model``) above :data:`WARN_BYTES` and refuses
(``model-too-large``) above :data:`LIMIT_BYTES`, with the figures in the message.  The estimate
reads only what is valid and skips the rest, so it runs on any spec.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import Iterator

from graphvae.spec import errorcodes as codes
from graphvae.spec.diagnostics import Diagnostic, error, warning
from graphvae.spec.estimators import estimator_method, support_size
from graphvae.spec.families import FAMILIES
from graphvae.spec.ir import Factor, Net, Span, Spec
from graphvae.spec.networks import (ATTENTION, CONVOLUTIONAL, POSITION_SHAPE, conv_geometry, conv_in_channels,
                                    conv_maps, image_parents, image_shape, value_width)
from graphvae.spec.settings import SETTINGS
from graphvae.spec.validate.context import Context, first_span

FLOAT_BYTES = 4  # float32
TRAINING_COPIES = 4  # weights, gradients, Adam's first and second moments
ACTIVATION_COPIES = 3  # an affine output, its activation, and its gradient
WARN_BYTES = 4 * 10**9
LIMIT_BYTES = 64 * 10**9


@dataclass(frozen=True)
class MemoryEstimate:
    """A spec's memory needs in bytes, and what needs the most of it (for a diagnostic to point at)."""

    weights: int  # number of float weights of every network
    activations: int  # bytes of one training step's activations
    batch: int  # examples per step the activations assume
    samples: int = 1  # S, the objective's samples
    enumerated: int = 1  # joint values of the enumerated variables
    largest: Net | None = None  # the network with the most weights
    samples_span: Span | None = None  # where the spec sets `samples`, if it does

    @property
    def weight_bytes(self) -> int:
        return self.weights * FLOAT_BYTES

    @property
    def training_bytes(self) -> int:
        return self.weight_bytes * TRAINING_COPIES + self.activations


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _size(shape) -> int | None:
    """The flattened size of a shape, or None when a dimension is not a positive integer."""
    return prod(shape) if all(_is_count(d) for d in shape) else None


def _widths(net: Net) -> list[int]:
    """The widths of a network's affine layers (a glimpse or paste has none: its sizes are a window;
    a conv's or locate's are its dense layer's, its channel counts counted by :func:`_conv`)."""
    if net.kind in CONVOLUTIONAL:
        dense = net.option("dense")
        return [dense] if _is_count(dense) else []
    return [] if net.kind in ATTENTION else [w for w in net.hidden if _is_count(w)]


def _conv(net: Net, image) -> tuple[int, int, int]:
    """``(weights, units, features)`` of a conv's convolutions over an image of shape ``image`` (its feature maps' values per example, and how many numbers the last one holds);
    zeros where the conv or the shape is not valid."""
    kernel, stride = conv_geometry(net)
    if (image is None or len(image) != 2 or not all(_is_count(d) for d in image) or not net.hidden
            or not all(_is_count(c) for c in net.hidden) or not _is_count(kernel) or not _is_count(stride)):
        return 0, 0, 0
    weights, units, channels_in = 0, 0, conv_in_channels(net)
    maps = conv_maps(net, tuple(image))
    for c, h, w in maps:
        weights += kernel * kernel * channels_in * c + c
        units += c * h * w
        channels_in = c
    c, h, w = maps[-1]
    return weights, units, c * h * w


def _deterministic_widths(ctx: Context, block: str) -> dict[str, int]:
    """The width of each deterministic node's value in ``block`` (0 where its sizes are not valid)."""
    nodes = ctx.deterministic(block)
    return {n: value_width(n, ctx.variables, nodes) if all(_is_count(w) for w in f.net.hidden) else 0
            for n, f in nodes.items() if f.net}


def _setting(rows_block: str, value, name: str) -> int:
    """An integer setting as written if valid, else its default."""
    default = SETTINGS[rows_block][name].default
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _batch(spec: Spec) -> int:
    """Examples per training step: the unlabelled batch and the labelled ones beside it."""
    batch = max(1, _setting("train", spec.train_setting("batch_size"), "batch_size"))
    labelled = _setting("train", spec.train_setting("labelled_per_batch"), "labelled_per_batch")
    if labelled < 0:  # all of the labelled subset, every step
        labels = _setting("train", spec.train_setting("labels"), "labels")
        labelled = labels if labels >= 0 else batch
    return batch + max(0, labelled)


def _nets(f: Factor, var_size: int | None, node_size: int = 0) -> Iterator[tuple[Net, int]]:
    """Each network of a factor with the width of its output: a deterministic node's value
    (``node_size``), else a head of the family's parameters it produces (each the variable's size)."""
    if f.deterministic:
        if f.net is not None:
            yield f.net, node_size
        return
    fam = FAMILIES.get(f.dist.family)
    size = var_size or 1
    nets = f.dist.nets
    if len(f.dist.params) == 1 and nets:  # a lone network produces every head parameter
        yield nets[0], size * (len(fam.head) if fam is not None else 1)
        return
    for net in nets:
        yield net, size


def estimate(spec: Spec, ctx: Context | None = None) -> MemoryEstimate:
    """The memory estimate of ``spec`` (any spec: what is not valid is skipped)."""
    ctx = ctx or Context.build(spec)
    sizes: dict[str, int] = {}
    shapes = {v.name: tuple(v.shape) for v in ctx.variables.values()}
    for v in ctx.variables.values():
        size = _size(v.shape) if v.shape else 1
        if size is not None:
            sizes[v.name] = size
    samples_value = spec.objective.get("samples")
    samples = samples_value if _is_count(samples_value) else 1
    enumerated = 1
    for v in ctx.variables.values():
        if (v.role in ("latent", "supervised") and ctx.stochastic("encoder", v.name) is not None
                and estimator_method(spec, v.name) == "enumerate"):
            enumerated *= support_size(v) or 1
    observed = {v.name for v in ctx.variables.values() if v.role == "observed"}
    batch = _batch(spec)
    weights, per_example, largest, most = 0, 0, None, -1
    shared: set = set()
    for block in ("encoder", "decoder"):
        local = _deterministic_widths(ctx, block)
        for f in ctx.block_factors(block):
            # the parents, and those a plate's slot 0 lacks (z[k-1]), which its shared network still reads
            inputs = sum(local.get(p, sizes.get(p, 0)) for p in f.parents + tuple(like for _, like in f.absent))
            # a network that sees only observed data runs once per example, the others per sample
            # and enumerated value
            repeat = 1 if all(p in observed for p in f.parents) else samples * enumerated
            for k, (net, out) in enumerate(_nets(f, sizes.get(f.name), local.get(f.name, 0))):
                layers = [*_widths(net)] if f.deterministic else [*_widths(net), out]
                n, width_in, units = 0, inputs, 0
                norm = 2 if net.option("batchnorm", False) is True else 0  # a batch norm's scale and shift
                if net.kind in CONVOLUTIONAL:  # the convolutions read the image; the affine layers, their features
                    image = next(iter(image_parents(f.parents, ctx.variables, ctx.deterministic(block))), None)
                    n, units, features = _conv(net, image_shape(image, ctx.variables, ctx.deterministic(block))
                                               if image is not None else None)
                    n += norm * sum(c for c in net.hidden if _is_count(c)) if features else 0
                    width_in = inputs - local.get(image, sizes.get(image, 0)) + features
                    if net.kind == "locate" and features:  # a cell's network: its features, centre, the rest
                        channels = net.hidden[-1]
                        cells = features // channels
                        layers = [*_widths(net), 1 + POSITION_SHAPE[0]]
                        width_in += channels + POSITION_SHAPE[0] - features
                        units += cells * sum(layers)
                for i, width in enumerate(layers):
                    n += width_in * width + width
                    hidden = i < len(layers) - 1 or (f.deterministic and net.kind != "locate")
                    n += norm * width if hidden else 0  # hidden layers only
                    units += width
                    width_in = width
                if f.shared is not None:  # a plate's K copies of a factor share one network: counted once
                    key = (block, f.shared, k)
                    n = 0 if key in shared else n
                    shared.add(key)
                if net.kind in ATTENTION:  # a window read or placed: its output; a paste's learnt canvas
                    n, units = (out if net.kind == "paste" else 0), out
                if net.kind == "identity":  # the parents' values as they are: no weights
                    n, units = 0, out
                weights += n
                per_example += units * repeat
                if n > most:
                    largest, most = net, n
    per_example += sum(sizes.get(v.name, 0) for v in ctx.variables.values()) * samples * enumerated
    activations = per_example * batch * FLOAT_BYTES * ACTIVATION_COPIES
    samples_span = next((s.span for s in spec.objective.settings if s.name == "samples"), None)
    return MemoryEstimate(weights, activations, batch, samples, enumerated, largest, samples_span)


def count_text(n: int) -> str:
    """``10,000,000,000``; ``about 2^700`` for a count too long to print."""
    return f"{n:,}" if n < 10**30 else f"about 2^{n.bit_length() - 1}"


def bytes_text(n: int) -> str:
    """``40 GB``, ``1.5 TB``: decimal units, two significant figures; ``2^1000 bytes`` beyond them."""
    units = ["bytes", "KB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"]
    if n >= 1000 ** len(units):
        return f"2^{n.bit_length() - 1} bytes"
    i = 0
    while i + 1 < len(units) and n >= 1000 ** (i + 1):
        i += 1
    value = n / 1000 ** i
    text = f"{value:.0f}" if value >= 10 or i == 0 else f"{value:.1f}"
    return f"{text} {units[i]}"


def _plural(n: int, word: str) -> str:
    return f"{count_text(n)} {word}{'' if n == 1 else 's'}"


def rule_memory(ctx: Context) -> Iterator[Diagnostic]:
    est = estimate(ctx.spec, ctx)
    total = est.training_bytes
    if total <= WARN_BYTES:
        return
    what = (f"the model needs about {bytes_text(total)} to train: {bytes_text(est.weight_bytes)} of parameters "
            f"({count_text(est.weights)} weights, held {TRAINING_COPIES} times with gradients and Adam's moments) "
            f"and {bytes_text(est.activations)} of activations per step ({_plural(est.batch, 'example')}, "
            f"{_plural(est.samples, 'sample')}, {_plural(est.enumerated, 'enumerated value')})")
    net_span = est.largest.span if est.largest is not None else None
    if est.weight_bytes * TRAINING_COPIES >= est.activations:
        span = first_span(net_span, ctx.spec.span)
    else:
        span = first_span(est.samples_span if est.samples > 1 else None, net_span, ctx.spec.span)
    if total > LIMIT_BYTES:
        yield error(codes.MODEL_TOO_LARGE, f"{what}; more than the {bytes_text(LIMIT_BYTES)} a spec may ask for",
                    span, "use smaller widths, shapes, samples or batches")
    else:
        yield warning(codes.LARGE_MODEL, f"{what}; check that the device has that much memory", span)


RULES = [rule_memory]
