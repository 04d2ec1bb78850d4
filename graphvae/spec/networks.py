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
  ``[H, W]``, an ``erase`` node, whose value is such an image, or a ``glimpse`` node, whose window
  is an ``h x w`` image): one convolution per channel count ``c_i`` (``kernel`` x ``kernel``, default 3,
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
* ``erase(h, w)`` (``erase(s)``): what is left of an image once a window is explained, as a
  deterministic node only. ``r | x, w = erase(28)`` is the image ``x`` (a variable of shape
  ``[H, W]``) with the ``h x w`` window whose top-left pixel is at ``w`` (a position, as a
  glimpse's) set to 0; a fractional position blanks its edge pixels in part (each pixel is
  multiplied by 1 minus the window's bilinear weight there, so the value is differentiable in
  the position). Its value is an image of ``x``'s shape, which a conv, a locate, a glimpse or
  another erase reads as they read ``x``. In a plate, ``r[k] | x, r[k-1], w[k-1] = erase(28)``
  chains: slot k's image is slot k-1's with slot k-1's window blanked, and slot 0, which has
  neither, is ``x`` itself (an attend-infer-repeat-style residual: each slot sees what the
  earlier ones left).
* ``paste(h, w)`` (``paste(s)``): the inverse, as a family argument only, of a variable of shape
  ``[H, W]``. ``x | p[*], w[*] ~ Bernoulli(paste(28))`` places each patch ``p_i`` (``h * w``
  numbers: a deterministic node of that width or a variable of that size) with its top-left
  pixel at the position ``w_i`` (a ``real[2]`` variable), patches and positions paired in
  order, and adds them to a learnt canvas of the variable's shape. The sum is the family's one
  network parameter (a Bernoulli's logits). A patch that is all zeros adds nothing, so a slot
  past its plate's count (whose values enter as zeros) leaves the canvas as it is.
* ``identity``: no network at all, as a family argument only: the parameter it fills is its
  parents' values themselves, flattened and concatenated in order
  (``w | v ~ Normal(loc = identity, scale = 1)`` is ``Normal(v, 1)``). It fills one
  unconstrained parameter (a loc, a Bernoulli's or Categorical's logits), and the parents, each
  a real variable or a deterministic node, hold as many numbers as the variable. A parent a
  plate's slot 0 lacks (``w[k-1]``) enters as zeros. It lets a supervised variable pin down a
  deterministic node that other factors read (``loc[k] | x = locate(16, 32)`` read by a glimpse,
  with ``positions[k] | loc[k] ~ Normal(loc = identity, scale = 1)``), so that what the node
  learns from the labels is what those factors see at test time.

:mod:`graphvae.spec.validate.networks` checks how they are used; :mod:`graphvae.compile.nets`
builds them.
"""

from __future__ import annotations

from graphvae.spec.ir import Net

NETWORKS = ("mlp", "linear", "conv", "locate", "glimpse", "erase", "paste", "identity")
CONVOLUTIONAL = ("conv", "locate")  # the networks that convolve one image parent
ATTENTION = ("glimpse", "erase", "paste")  # the networks with a window: no activation, batchnorm or dropout
IMAGE_NODES = ("glimpse", "erase")  # the deterministic nodes whose value is an image a conv can read
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
    name -> Variable) or a ``glimpse`` or ``erase`` node (``nodes``: the block's deterministic
    factors by name)."""
    out = []
    for p in parents:
        node = nodes.get(p)
        if node is not None:
            if node.net is not None and node.net.kind in IMAGE_NODES:
                out.append(p)
        elif (v := variables.get(p)) is not None and len(v.shape) == 2:
            out.append(p)
    return out


def image_shape(parent: str, variables, nodes) -> tuple[int, int] | None:
    """``(H, W)`` of the image a conv reads of ``parent`` (one of :func:`image_parents`): a
    variable's shape, a glimpse's window, or the shape of the image an erase blanks; None where
    the sizes are not valid numbers."""
    node = nodes.get(parent)
    if node is not None:
        if node.net is not None and node.net.kind == "erase":
            source = erased_image(node, variables)
            return image_shape(source, variables, {}) if source is not None else None
        sizes = node.net.hidden if node.net is not None else ()
        ok = sizes and len(sizes) <= 2 and all(isinstance(s, int) and not isinstance(s, bool) and s > 0
                                               for s in sizes)
        return window(node.net) if ok else None
    v = variables.get(parent)
    if v is None or len(v.shape) != 2 or not all(isinstance(d, int) and d > 0 for d in v.shape):
        return None
    return tuple(v.shape)


def erased_image(node, variables) -> str | None:
    """The image variable an ``erase`` node starts from: its one parent of shape ``[H, W]``."""
    return next((p for p in node.parents if (v := variables.get(p)) is not None and len(v.shape) == 2), None)


def window(net: Net) -> tuple[int, int]:
    """``(h, w)`` of a ``glimpse`` or ``paste``: ``(s, s)`` from one size, else the two given."""
    sizes = tuple(int(s) for s in net.hidden)
    return (sizes[0], sizes[0]) if len(sizes) == 1 else (sizes[0], sizes[1])


def node_width(net: Net, image: tuple[int, int] | None = None) -> int:
    """The width of a deterministic node's value: a glimpse's window size ``h * w``, an erase's
    image size ``H * W`` (``image``: the shape of the image it blanks; 0 without it), a conv's
    ``dense`` width, a locate's position (2), else the network's last width (0 when it has none,
    which validation reports)."""
    if net.kind == "glimpse" and net.hidden:
        h, w = window(net)
        return h * w
    if net.kind == "erase":
        return image[0] * image[1] if image is not None else 0
    if net.kind == "locate":
        return POSITION_SHAPE[0]
    if net.kind == "conv":
        dense = net.option("dense", 0)
        return int(dense) if isinstance(dense, int) and not isinstance(dense, bool) else 0
    return int(net.hidden[-1]) if net.hidden else 0


def value_width(name: str, variables, nodes) -> int:
    """The width of deterministic node ``name``'s value (``nodes``: the block's deterministic
    factors by name), flattened: :func:`node_width`, given an erase its image's shape."""
    net = nodes[name].net
    return node_width(net, image_shape(name, variables, nodes) if net.kind == "erase" else None)
