"""The network kinds a spec may name, and what each one's output is (torch-free).

* ``mlp(h1, h2, ...)``: hidden affine layers, each followed by the activation. As a deterministic
  node its value is the last hidden layer; as a family argument an affine head follows.
* ``linear``: one affine map (as a deterministic node ``linear(width)``).
* ``glimpse(h, w)`` (``glimpse(s)`` for a square): attention, as a deterministic node only.
  ``g | x, w = glimpse(28)`` reads the ``h x w`` window of the image ``x`` (a variable of shape
  ``[H, W]``) whose top-left pixel is at ``w`` (a ``real[2]`` variable or a ``locate`` node: row,
  column, in pixels, fractional positions interpolated bilinearly). Its value is the window,
  flattened: ``h * w`` numbers.
* ``conv(c1, c2, ...)``: a convolutional network over one image parent (a variable of shape
  ``[H, W]``, or a ``glimpse`` node, whose window is an ``h x w`` image): one convolution per channel count ``c_i`` (``kernel`` x ``kernel``, default 3,
  with ``stride``, default 2, zero-padded by ``kernel // 2``), each followed by the activation
  (batch normalisation before it with ``batchnorm = true``, dropout after it with ``dropout``).
  The last feature map, flattened, joins the factor's other parents (each flattened) in an
  affine map: with ``dense = n`` a hidden layer of ``n`` units (activated), else the family's
  head directly. As a deterministic node it needs ``dense = n``, whose ``n`` units are its value.
  With ``coords = true`` the first convolution also reads each pixel's row and column, scaled
  to [-1, 1] (CoordConv, Liu et al. 2018), which helps a conv say where something is.
* ``locate(c1, c2, ...)``: where something is in one image parent: a position (row, column, in
  the image's pixels; 2 numbers), as a deterministic node or as the one parameter it fills of a
  ``real[2]`` variable's family (``w | x ~ Normal(loc = locate(16, 32, dense = 64), scale = 1)``).
  The convolutions are a conv's (with its options); at every cell of the last feature map a
  small network (``mlp(dense)`` with ``dense = n``, else ``linear``) reads the cell's features,
  its centre in pixels and the other parents, and gives a score and an offset; the position is
  the softmax-weighted mean of centre + offset over the cells (a soft argmax).
* ``paste(h, w)`` (``paste(s)``): the inverse, as a family argument only, of a variable of shape
  ``[H, W]``. ``x | p[*], w[*] ~ Bernoulli(paste(28))`` places each patch ``p_i`` (``h * w``
  numbers: a deterministic node of that width or a variable of that size) with its top-left
  pixel at the position ``w_i`` (a ``real[2]`` variable), patches and positions paired in
  order, and adds them to a learnt canvas of the variable's shape. The sum is the family's one
  network parameter (a Bernoulli's logits). A patch that is all zeros adds nothing, so a slot
  past its plate's count (whose values enter as zeros) leaves the canvas as it is.

:mod:`graphvae.spec.validate.factors` checks how they are used; :mod:`graphvae.compile.nets`
builds them.
"""

from __future__ import annotations

from graphvae.spec.ir import Net

NETWORKS = ("mlp", "linear", "conv", "locate", "glimpse", "paste")
CONVOLUTIONAL = ("conv", "locate")  # the networks that convolve one image parent
ATTENTION = ("glimpse", "paste")  # the networks with a window: no activation, batchnorm or dropout
POSITION_SHAPE = (2,)  # a position: (row, column) of a window's top-left pixel
NONNEGATIVE_ACTIVATIONS = ("relu", "softplus", "sigmoid")  # a node activated by one of these has values >= 0
CONV_KERNEL = 3  # a conv's default kernel size (odd: padded by kernel // 2 on each side)
CONV_STRIDE = 2  # a conv's default stride: each layer halves the feature map


def conv_in_channels(net: Net) -> int:
    """The channels a ``conv``'s first convolution reads: the image, and with ``coords = true`` each
    pixel's row and column (from -1 to 1), as in CoordConv (Liu et al. 2018)."""
    return 3 if net.option("coords", False) is True else 1


def conv_geometry(net: Net) -> tuple[int, int]:
    """``(kernel, stride)`` of a ``conv``: its options as written, else the defaults."""
    return int(net.option("kernel", CONV_KERNEL)), int(net.option("stride", CONV_STRIDE))


def conv_step(net: Net) -> int:
    """How many image pixels apart the cells of a conv's or locate's last feature map are centred
    (the product of the strides: cell (i, j) is centred on pixel (i * step, j * step))."""
    return conv_geometry(net)[1] ** len(net.hidden)


def conv_maps(net: Net, image: tuple[int, int]) -> list[tuple[int, int, int]]:
    """``(channels, height, width)`` of each feature map of a ``conv`` over an image of shape ``image``."""
    kernel, stride = conv_geometry(net)
    (h, w), out = image, []
    for channels in net.hidden:
        h = (h + 2 * (kernel // 2) - kernel) // stride + 1
        w = (w + 2 * (kernel // 2) - kernel) // stride + 1
        out.append((int(channels), h, w))
    return out


def conv_features(net: Net, image: tuple[int, int]) -> int:
    """How many numbers a ``conv``'s last feature map holds (what its affine map reads of the image)."""
    c, h, w = conv_maps(net, image)[-1]
    return c * h * w


def image_parents(parents, variables, nodes) -> list[str]:
    """The parents a ``conv`` may read as its image: a variable of shape ``[H, W]`` (``variables``:
    name -> Variable) or a ``glimpse`` node (``nodes``: the block's deterministic factors by name)."""
    out = []
    for p in parents:
        node = nodes.get(p)
        if node is not None:
            if node.net is not None and node.net.kind == "glimpse":
                out.append(p)
        elif (v := variables.get(p)) is not None and len(v.shape) == 2:
            out.append(p)
    return out


def image_shape(parent: str, variables, nodes) -> tuple[int, int] | None:
    """``(H, W)`` of the image a conv reads of ``parent`` (one of :func:`image_parents`): a
    variable's shape or a glimpse's window; None where the sizes are not valid numbers."""
    node = nodes.get(parent)
    if node is not None:
        sizes = node.net.hidden if node.net is not None else ()
        ok = sizes and len(sizes) <= 2 and all(isinstance(s, int) and not isinstance(s, bool) and s > 0
                                               for s in sizes)
        return window(node.net) if ok else None
    v = variables.get(parent)
    return tuple(v.shape) if v is not None and len(v.shape) == 2 else None


def window(net: Net) -> tuple[int, int]:
    """``(h, w)`` of a ``glimpse`` or ``paste``: ``(s, s)`` from one size, else the two given."""
    sizes = tuple(int(s) for s in net.hidden)
    return (sizes[0], sizes[0]) if len(sizes) == 1 else (sizes[0], sizes[1])


def node_width(net: Net) -> int:
    """The width of a deterministic node's value: a glimpse's window size ``h * w``, a conv's
    ``dense`` width, a locate's position (2), else the network's last width (0 when it has none,
    which validation reports)."""
    if net.kind == "glimpse" and net.hidden:
        h, w = window(net)
        return h * w
    if net.kind == "locate":
        return POSITION_SHAPE[0]
    if net.kind == "conv":
        dense = net.option("dense", 0)
        return int(dense) if isinstance(dense, int) and not isinstance(dense, bool) else 0
    return int(net.hidden[-1]) if net.hidden else 0
