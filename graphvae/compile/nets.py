"""Networks built from ``Net`` expressions: MLPs, linear maps, convolutions and parameter heads
(the attention networks, glimpse, erase and paste, are in :mod:`graphvae.compile.attention`).

Every tensor flowing between nodes has the layout ``(*lead, B, *value_shape)``:
``lead`` holds the enumeration dims and the sample dim S (broadcastable, so a node
that depends only on observed data runs once, not S or K times).

The first layer of a node's network takes its parents directly
(:class:`ParentsLinear`).  It holds one weight matrix over the concatenated,
flattened parents -- exactly the parameters of ``nn.Linear(sum of widths, out)``.  Where
every float parent already spans the lead dims of all, it multiplies their concatenation
(class indices as one-hots) once; otherwise it applies the matrix per parent and sums, with
broadcasting:

* a float parent (continuous values, binary 0/1, a relaxed one-hot sample, a
  deterministic node) is flattened and multiplied by its block of columns;
* a categorical parent given as class indices (a label, an enumerated value) is the
  same as one-hot times the block, computed as a column lookup.

So an encoder ``z | x, y`` over 10 enumerated values of y multiplies x once, not 10
times, and never materialises the one-hot concatenation there.  A factor's module, which holds
its networks and gives its distribution, is :class:`graphvae.compile.factor.FactorModule`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from graphvae.compile.attention import Erase, Glimpse, Paste, flat_lead
from graphvae.compile.objective import broadcast_shapes
from graphvae.compile.parents import ParentInput
from graphvae.spec.ir import Net
from graphvae.spec.networks import POSITION_SHAPE, conv_geometry, conv_in_channels, conv_maps, conv_step

class _ReLUFromOutput(torch.autograd.Function):
    """relu whose backward reads its output: ``g * sign(out)``, which is ``g`` where out > 0 and 0
    elsewhere, as torch's own (``threshold_backward``)."""

    @staticmethod
    def forward(h: torch.Tensor) -> torch.Tensor:
        return torch.relu(h)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.save_for_backward(output)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        out, = ctx.saved_tensors
        return grad * out.sign()


class ReLU(nn.ReLU):
    """``max(h, 0)``: ``torch.relu`` when run eagerly or on a GPU.  Traced by torch.compile for a
    CPU tensor it is :class:`_ReLUFromOutput` (the same values and gradients), because with
    torch's relu inductor's partitioner saves the mask ``h <= 0`` as a bool tensor for the
    backward, and inductor's CPU kernels that store a bool tensor run at about 12 ns an element
    (torch 2.13; the two such kernels of the digits M2 at B = 64 took 2.2 ms of a 5.2 ms step's
    kernels).  The output is saved anyway (the next layer's weight gradient reads it), so the
    backward multiplies by its sign in a float kernel instead (``docs/training.md#throughput``)."""

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if torch.compiler.is_compiling() and h.device.type == "cpu" and not self.inplace:
            return _ReLUFromOutput.apply(h)
        return F.relu(h, inplace=self.inplace)


ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": ReLU, "softplus": nn.Softplus, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU, "gelu": nn.GELU, "selu": nn.SELU, "silu": nn.SiLU, "swish": nn.SiLU,
    "mish": nn.Mish, "identity": nn.Identity, "none": nn.Identity,
}


def activation(name: str) -> nn.Module:
    try:
        return ACTIVATIONS[name.lower()]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; known: {', '.join(sorted(ACTIVATIONS))}") from None


class ParentsLinear(nn.Module):
    """An affine map of the concatenated, flattened (one-hot for indices) parents, applied blockwise."""

    def __init__(self, parents: tuple[ParentInput, ...], out_features: int):
        super().__init__()
        self.parents = parents
        self.in_features = sum(p.width for p in parents)
        reference = nn.Linear(self.in_features, out_features)  # its initialisation, its parameter shapes
        self.weight = reference.weight
        self.bias = reference.bias
        self._widths = [p.width for p in parents]
        for k in sorted({p.classes for p in parents if p.classes is not None}):  # one-hot rows, see _joined
            self.register_buffer(f"eye_{k}", torch.eye(k), persistent=False)

    @property
    def out_features(self) -> int:
        return self.weight.shape[0]

    def forward(self, values: list[torch.Tensor]) -> torch.Tensor:
        if len(self.parents) > 1:
            joined = self._joined(values)
            if joined is not None:
                return joined
        return self._blockwise(values)

    def _blockwise(self, values: list[torch.Tensor]) -> torch.Tensor:
        """A block of the weight per parent, the blocks' outputs summed (broadcasting each parent's lead dims)."""
        out, bias = None, self.bias  # the bias rides on the first float parent's F.linear, else is added last
        blocks = (self.weight,) if len(self.parents) == 1 else self.weight.split(self._widths, 1)
        for p, value, block in zip(self.parents, values, blocks):
            if value is None:  # an absent parent (z[k-1] of a plate's slot 0) reads zero: adds nothing
                continue
            if value.is_floating_point():
                if len(p.shape) != 1:  # a vector parent is already flat
                    value = value.flatten(value.dim() - len(p.shape)) if p.shape else value.unsqueeze(-1)
                term, bias = F.linear(value, block, bias), None
            else:  # class indices: one-hot(value) @ block.T == a lookup of block's columns
                k = p.classes
                n_slots = p.width // k
                if n_slots == 1:  # one index per example: a row lookup, no slot dim to sum
                    term = F.embedding(value, block.t())
                else:
                    idx = value.reshape(value.shape[:value.dim() - (len(p.shape) - 1)] + (n_slots,))
                    idx = idx + torch.arange(n_slots, device=idx.device) * k
                    term = F.embedding(idx, block.t()).sum(-2)
            out = term if out is None else out + term
        if out is None:  # every input absent: the bias alone
            return self.bias
        return out if bias is None else out + bias

    def _joined(self, values: list[torch.Tensor]) -> torch.Tensor | None:
        """One ``F.linear`` of the parents concatenated (class indices as one-hots), where that
        broadcasts no float parent: each spans the lead dims of all (a labelled example's x and y,
        or an enumerated y with a z drawn for each of its values).  Fewer operations, forward and
        backward, than a block per parent; None where a float parent would be copied (an
        enumerated y beside the data x), which the blocks handle without copying it."""
        leads = []
        for p, value in zip(self.parents, values):
            if value is None:
                return None
            event = len(p.shape) if value.is_floating_point() else len(p.shape) - 1
            leads.append(value.shape[:value.dim() - event])
        full = broadcast_shapes(*leads)
        columns = []
        for p, value, lead in zip(self.parents, values, leads):
            if value.is_floating_point():
                if lead != full:
                    return None
                columns.append(value.reshape(full + (p.width,)))
            else:
                index = value.expand(full + value.shape[len(lead):])  # one-hots as rows of the identity
                columns.append(F.embedding(index, getattr(self, f"eye_{p.classes}")).reshape(full + (p.width,)))
        return F.linear(torch.cat(columns, -1), self.weight, self.bias)


def _hidden(net: Net, width: int) -> list[nn.Module]:
    """What follows a hidden affine layer of ``width`` units: batch norm, the activation, dropout."""
    out: list[nn.Module] = [BatchNorm(width)] if net.option("batchnorm", False) else []
    out.append(activation(net.activation))
    p = float(net.option("dropout", 0.0))
    return out + ([nn.Dropout(p)] if p > 0 else [])


def _widths(net: Net) -> list[int]:
    return [int(h) for h in net.hidden]


class BatchNorm(nn.BatchNorm1d):
    """Batch normalisation of the last dim, over every leading dim (samples, enumerated values, batch).

    A single value per unit (a group of one labelled example, say) has no batch statistics: it is
    normalised with the running ones, as in evaluation, and leaves them as they are."""

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        flat = h.reshape(-1, h.shape[-1])
        if self.training and flat.shape[0] == 1:
            return F.batch_norm(flat, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0,
                                self.eps).reshape(h.shape)
        return super().forward(flat).reshape(h.shape)


class NodeNet(nn.Module):
    """A network over a node's parents.

    With ``head`` blocks it outputs a dict of unconstrained parameter blocks (one per
    head parameter, each of the variable's parameter shape); without, it is a
    deterministic node and outputs its last layer (activated for ``mlp``).  Each hidden
    layer of an ``mlp`` is affine, then batch normalisation (``batchnorm = true``), the
    activation, and dropout (``dropout = p``)."""

    def __init__(self, net: Net, parents: tuple[ParentInput, ...], head: dict[str, tuple[int, ...]] | None):
        super().__init__()
        self.kind = net.kind
        self.head_shapes = {name: tuple(shape) for name, shape in (head or {}).items()}
        self._head_widths = [math.prod(shape) for shape in self.head_shapes.values()]
        widths = _widths(net)
        if head is None and not widths:
            raise ValueError(f"deterministic {net.kind} needs an output width, e.g. {net.kind}(64)")
        sizes = widths + ([sum(math.prod(s) for s in self.head_shapes.values())] if head is not None else [])
        activate_last = head is None and net.kind != "linear"
        self.parents = parents
        self.free = None
        if parents:
            self.first = ParentsLinear(parents, sizes[0])
        else:  # no inputs: the first layer's output is a learnt constant
            self.first = None
            self.free = nn.Parameter(torch.zeros(sizes[0]))
        layers: list[nn.Module] = []
        for i in range(1, len(sizes)):
            if net.kind != "linear":
                layers += _hidden(net, sizes[i - 1])
            layers.append(nn.Linear(sizes[i - 1], sizes[i]))
        if activate_last:
            layers += _hidden(net, sizes[-1])
        self.rest = nn.Sequential(*layers)
        self.out_features = sizes[-1]
        # the same two submodules again, outside nn.Module's lookup, for forward (their layers are
        # read from them at each call, so a layer swapped in, as SyncBatchNorm's conversion does, is used)
        self._first_and_rest = (self.first, self.rest)

    def linear_layers(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(weight, bias) of each affine layer in order (the first over the concatenated parents)."""
        first = [(self.first.weight, self.first.bias)] if self.first is not None else []
        return first + [(m.weight, m.bias) for m in self.rest if isinstance(m, nn.Linear)]

    def forward(self, values: list[torch.Tensor]):
        # the layers' own forwards in turn: nn.Module's call machinery (for hooks, which these inner
        # layers have none of) costs a small model about as much as its arithmetic
        first, rest = self._first_and_rest
        h = first.forward(values) if first is not None else self.free
        for layer in rest._modules.values():
            h = layer.forward(h)
        if not self.head_shapes:
            return h
        blocks = (h,) if len(self.head_shapes) == 1 else h.split(self._head_widths, -1)
        lead = h.shape[:-1]
        return {name: (block if len(shape) == 1 else block.reshape(lead + shape))
                for (name, shape), block in zip(self.head_shapes.items(), blocks)}



class _ImageNet(nn.Module):
    """What a conv and a locate share: the one image parent (a variable of shape [H, W], or a
    glimpse's window, which arrives flattened) and the convolutions over it (each ``kernel`` x
    ``kernel`` with ``stride``, zero-padded by ``kernel // 2``, then batch norm if asked, the
    activation, dropout if asked); with ``coords = true`` the first also reads each pixel's row
    and column, scaled to [-1, 1], as two more channels (the buffer ``grid``)."""

    def __init__(self, net: Net, parents: tuple[ParentInput, ...]):
        super().__init__()
        self.kind = net.kind
        self.image = next(i for i, p in enumerate(parents) if p.image_shape is not None)
        self.image_shape = parents[self.image].image_shape
        self.flat_image = len(parents[self.image].shape) == 1  # a glimpse's window arrives flattened
        kernel, stride = conv_geometry(net)
        layers: list[nn.Module] = []
        channels_in = conv_in_channels(net)
        self.coords = channels_in > 1
        for channels in (int(c) for c in net.hidden):
            layers.append(nn.Conv2d(channels_in, channels, kernel, stride=stride, padding=kernel // 2))
            if net.option("batchnorm", False):
                layers.append(nn.BatchNorm2d(channels))
            layers.append(activation(net.activation))
            p = float(net.option("dropout", 0.0))
            layers += [nn.Dropout(p)] if p > 0 else []
            channels_in = channels
        self.convs = nn.Sequential(*layers)
        if self.coords:
            h, w = self.image_shape
            grid = torch.stack(torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij"))
            self.register_buffer("grid", grid, persistent=False)


def _dense_or_linear(net: Net) -> Net:
    """The affine layers after a conv's or locate's convolutions: ``mlp(n)`` with ``dense = n``
    (with the network's activation, batch norm and dropout), else ``linear``."""
    options = tuple(o for o in net.options if o.name in ("activation", "batchnorm", "dropout"))
    dense = net.option("dense")
    return Net("mlp", (int(dense),), options) if dense is not None else Net("linear", (), options)


def _convolve(net: _ImageNet, image: torch.Tensor) -> tuple[tuple[int, ...], torch.Tensor]:
    """``(lead dims, last feature maps (N, c, h, w))`` of ``net``'s convolutions over ``image``
    (lead dims + [H, W], or a glimpse's flattened window), once per value of the lead dims."""
    if net.flat_image:
        image = image.reshape(image.shape[:-1] + net.image_shape)
    lead, (flat,) = flat_lead((image.to(net.convs[0].weight.dtype), 2))
    planes = flat.unsqueeze(1)
    if net.coords:
        planes = torch.cat([planes, net.grid.to(planes.dtype).expand(planes.shape[0], -1, -1, -1)], 1)
    return lead, net.convs(planes)


class ConvNet(_ImageNet):
    """``conv(c1, ..., cn)`` over one image parent ([H, W]): the convolutions (each ``kernel`` x
    ``kernel`` with ``stride``, zero-padded by ``kernel // 2``, then batch norm if asked, the
    activation, dropout if asked), the last feature map flattened, then a :class:`NodeNet` over
    it and the other parents: ``mlp(dense)`` with ``dense = n``, else ``linear`` (the head alone).
    The image runs through the convolutions once per value of its lead dims, so an observed
    image (no sample or enumeration dims) is convolved once per step."""

    def __init__(self, net: Net, parents: tuple[ParentInput, ...], head: dict[str, tuple[int, ...]] | None):
        super().__init__(net, parents)
        c, h, w = conv_maps(net, self.image_shape)[-1]
        self.features = c * h * w
        inner = tuple(ParentInput(f"{p.name}:conv", (self.features,)) if i == self.image else p
                      for i, p in enumerate(parents))
        self.tail = NodeNet(_dense_or_linear(net), inner, head)
        self.out_features = self.tail.out_features

    def forward(self, values: list[torch.Tensor]):
        image = values[self.image]
        if image is not None:  # absent (a plate's slot 0 reading slot -1): reads zero, like any absent parent
            lead, maps = _convolve(self, image)
            features = maps.flatten(1)
            values = list(values)
            values[self.image] = features.reshape(lead + (self.features,))
        return self.tail(values)


class LocateNet(_ImageNet):
    """``locate(c1, ..., cn)``: where something is in an image parent, as a position (row, column
    in the image's pixels).  The convolutions are a conv's.  At every cell of the last feature map
    (h x w cells; cell (i, j) is centred on pixel (i * s, j * s), s the product of the strides) a
    small network reads the cell's features, its centre in pixels and the other parents (each
    once per example, broadcast over the cells), and gives a score and an offset (2 numbers):

        position = sum_cells softmax(scores)_cell * (centre_cell + offset_cell)

    a soft argmax over the cells (translation-equivariant, unlike a dense layer over the
    flattened map), each cell pointing from itself to the position (a digit's body can point at
    its corner).  The cell network is ``mlp(dense)`` with ``dense = n``, else ``linear``."""

    def __init__(self, net: Net, parents: tuple[ParentInput, ...], head: dict[str, tuple[int, ...]] | None):
        super().__init__(net, parents)
        c, h, w = conv_maps(net, self.image_shape)[-1]
        step = conv_step(net)
        rows, cols = torch.meshgrid(torch.arange(h) * float(step), torch.arange(w) * float(step), indexing="ij")
        self.register_buffer("centres", torch.stack([rows.flatten(), cols.flatten()], -1), persistent=False)
        self.others = [i for i in range(len(parents)) if i != self.image]
        inner = (ParentInput("cell:features", (c,)), ParentInput("cell:centre", POSITION_SHAPE),
                 *(parents[i] for i in self.others))
        self._event_dims = [len(parents[i].shape) - (parents[i].classes is not None) for i in self.others]
        self.cell = NodeNet(_dense_or_linear(net), inner, {"score": (1,), "offset": POSITION_SHAPE})
        self.name = next(iter(head)) if head else None
        self.out_features = POSITION_SHAPE[0]

    def forward(self, values: list[torch.Tensor]):
        image = values[self.image]
        if image is None:  # absent (a plate's slot 0 reading slot -1): zero features at every cell
            features = self.centres.new_zeros((self.centres.shape[0], self.cell.parents[0].width))
        else:
            lead, maps = _convolve(self, image)
            features = maps.flatten(2).transpose(1, 2)  # (N, cells, c)
            features = features.reshape(lead + features.shape[1:])
        centres = self.centres.to(features.dtype)
        others = []
        for i, n in zip(self.others, self._event_dims):  # each with a cell dim before its values
            value = values[i]
            others.append(None if value is None else value.unsqueeze(value.dim() - n))
        out = self.cell([features, centres, *others])
        weights = torch.softmax(out["score"].squeeze(-1), -1).unsqueeze(-1)
        position = (weights * (centres + out["offset"])).sum(-2)
        return position if self.name is None else {self.name: position}


# -- attention: a window read from an image, patches placed on a canvas ----------------------

class Identity(nn.Module):
    """``identity``: the parameter it fills is the parents' values themselves, each flattened,
    concatenated in order and shaped as the variable; no weights.  An absent parent (a plate's
    slot 0 reading slot -1) enters as zeros."""

    def __init__(self, parents: tuple[ParentInput, ...], head: dict[str, tuple[int, ...]]):
        super().__init__()
        (self.name, self.shape), = head.items()
        self.parents = parents
        self.register_buffer("zero", torch.zeros(self.shape), persistent=False)  # every parent absent

    def forward(self, values: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        present = [(p, v) for p, v in zip(self.parents, values) if v is not None]
        if not present:
            return {self.name: self.zero}
        p0, v0 = present[0]
        lead = v0.shape[:v0.dim() - len(p0.shape)]
        if len(present) == 1 and len(self.parents) == 1:  # one parent, of the variable's size
            return {self.name: v0.reshape(lead + self.shape)}
        flat = [v0.new_zeros(lead + (p.width,)) if v is None else v.flatten(v.dim() - len(p.shape))
                if p.shape else v.unsqueeze(-1) for p, v in zip(self.parents, values)]
        lead = torch.broadcast_shapes(*(t.shape[:-1] for t in flat))
        return {self.name: torch.cat([t.expand(lead + t.shape[-1:]) for t in flat], -1).reshape(lead + self.shape)}


def build_net(net: Net, parents: tuple[ParentInput, ...], head: dict[str, tuple[int, ...]] | None) -> nn.Module:
    """The module of one network expression: a glimpse, an erase, a paste, a conv, a locate, an
    identity, or an mlp/linear :class:`NodeNet`."""
    if net.kind == "conv":
        return ConvNet(net, parents, head)
    if net.kind == "locate":
        return LocateNet(net, parents, head)
    if net.kind == "glimpse":
        return Glimpse(net, parents)
    if net.kind == "erase":
        return Erase(net, parents)
    if net.kind == "paste":
        return Paste(net, parents, head)
    if net.kind == "identity":
        return Identity(parents, head)
    return NodeNet(net, parents, head)


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
