"""Networks: blockwise first layer over parents, MLP shapes, heads, literal buffers."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from graphvae.compile.factor import FactorModule
from graphvae.compile.nets import ACTIVATIONS, NodeNet, ParentsLinear, ReLU, activation, parameter_count
from graphvae.compile.parents import ParentInput
from graphvae.spec.ir import Net, Option

torch.set_num_threads(1)

# (parents, values of one example batch with lead dims (2, 1) and B = 3, as the layer receives them)
CASES = {
    "float": ((ParentInput("x", (4,)),), lambda: [torch.randn(1, 1, 3, 4)]),
    "image": ((ParentInput("x", (2, 3)),), lambda: [torch.randn(1, 1, 3, 2, 3)]),
    "scalar": ((ParentInput("r", ()),), lambda: [torch.randn(2, 1, 3)]),
    "index": ((ParentInput("y", (5,), 5),), lambda: [torch.randint(0, 5, (2, 1, 3))]),
    "index multi": ((ParentInput("y", (2, 5), 5),), lambda: [torch.randint(0, 5, (2, 1, 3, 2))]),
    "relaxed": ((ParentInput("y", (5,), 5),), lambda: [torch.softmax(torch.randn(2, 1, 3, 5), -1)]),
    "mixed": ((ParentInput("x", (4,)), ParentInput("y", (5,), 5), ParentInput("h", (3,))),
              lambda: [torch.randn(1, 1, 3, 4), torch.randint(0, 5, (2, 1, 1)), torch.randn(2, 1, 3, 3)]),
    "index first": ((ParentInput("y", (5,), 5), ParentInput("x", (4,))),
                    lambda: [torch.randint(0, 5, (2, 1, 3)), torch.randn(1, 1, 3, 4)]),
    "indices only": ((ParentInput("y", (5,), 5), ParentInput("c", (3,), 3)),
                     lambda: [torch.randint(0, 5, (2, 1, 3)), torch.randint(0, 3, (1, 1, 3))]),
}


def concat_reference(parents, values):
    """Broadcast, one-hot the indices, flatten and concatenate, as a plain nn.Linear would need."""
    feats = []
    for p, v in zip(parents, values):
        if v.is_floating_point():
            feats.append(v.reshape(v.shape[:v.dim() - len(p.shape)] + (-1,)) if p.shape else v[..., None])
        else:
            oh = F.one_hot(v, p.classes).float()
            feats.append(oh.reshape(oh.shape[:v.dim() - (len(p.shape) - 1)] + (-1,)))
    lead = torch.broadcast_shapes(*(f.shape[:-1] for f in feats))
    return torch.cat([f.expand(lead + f.shape[-1:]) for f in feats], -1)


@pytest.mark.parametrize("case", sorted(CASES))
def test_parents_linear_equals_linear_over_the_concatenation(case):
    torch.manual_seed(0)
    parents, make = CASES[case]
    layer = ParentsLinear(parents, 6)
    values = make()
    reference = F.linear(concat_reference(parents, values), layer.weight, layer.bias)
    out = layer(values)
    assert out.shape == reference.shape
    torch.testing.assert_close(out, reference)
    assert layer.weight.shape == (6, sum(p.width for p in parents))


@pytest.mark.parametrize("net, head, widths, last", [
    (Net("mlp", (500,)), {"logits": (10,)}, [(794, 500), (500, 10)], None),
    (Net("mlp", (8, 4), (Option("activation", "tanh"),)), {"loc": (3,), "scale": (3,)}, [(794, 8), (8, 4), (4, 6)], None),
    (Net("linear"), {"loc": (2, 3)}, [(794, 6)], None),
    (Net("mlp", (16,)), None, [(794, 16)], ReLU),
    (Net("mlp", (16,), (Option("activation", "softplus"),)), None, [(794, 16)], nn.Softplus),
    (Net("linear", (7,)), None, [(794, 7)], None),
])
def test_node_net_layers_and_outputs(net, head, widths, last):
    torch.manual_seed(1)
    parents = (ParentInput("x", (784,)), ParentInput("y", (10,), 10))
    module = NodeNet(net, parents, head)
    shapes = [tuple(w.shape[::-1]) for w, _ in module.linear_layers()]
    assert shapes == widths
    assert parameter_count(module) == sum(i * o + o for i, o in widths)
    out = module([torch.rand(1, 5, 784), torch.randint(0, 10, (1, 5))])
    if head is None:
        assert out.shape == (1, 5, widths[-1][1])
        final = list(module.rest)[-1] if len(module.rest) else None
        assert (type(final) is last) if last else not isinstance(final, tuple(ACTIVATIONS.values()))
        if last is ReLU:
            assert bool((out >= 0).all())
    else:
        assert {k: tuple(v.shape) for k, v in out.items()} == {k: (1, 5) + s for k, s in head.items()}


@pytest.mark.parametrize("run", ["eager", "relu from its output", "torch.compile"])
def test_relu_gives_torch_relus_values_and_gradients(run):
    """graphvae's ReLU (under torch.compile on a CPU its backward reads the output, see its
    docstring) equals torch.relu to the bit, also at 0, where the gradient is 0."""
    from graphvae.compile.nets import _ReLUFromOutput

    h = torch.tensor([[-2.0, -0.0, 0.0, 1e-30, 3.5], [7.0, -1e-30, 0.25, -4.0, 0.0]])
    g = torch.tensor([[1.0, 2.0, 3.0, 4.0, 5.0], [-1.0, -2.0, -3.0, -4.0, -5.0]])
    fn = {"eager": ReLU(), "relu from its output": _ReLUFromOutput.apply,
          "torch.compile": torch.compile(ReLU(), backend="aot_eager", fullgraph=True)}[run]
    a, b = h.clone().requires_grad_(), h.clone().requires_grad_()
    out = fn(a)
    out.backward(g)
    torch.relu(b).backward(g)
    assert torch.equal(out, torch.relu(h))
    assert torch.equal(a.grad, b.grad)
    assert a.grad[0, 2] == 0 and a.grad[1, 4] == 0


def test_relu_under_torch_compile_on_cpu_keeps_no_bool_mask_for_its_backward():
    """The traced backward multiplies by the output's sign: no threshold_backward, whose mask
    inductor's partitioner would save as a bool tensor (slow to store on a CPU)."""
    from functorch.compile import make_boxed_func
    from torch._dynamo.backends.common import aot_autograd

    graphs = {}

    def keep(kind):
        def compiler(gm, inputs):
            graphs[kind] = {str(n.target) for n in gm.graph.nodes if n.op == "call_function"}
            return make_boxed_func(gm.forward)
        return compiler

    net = nn.Sequential(nn.Linear(3, 4), ReLU(), nn.Linear(4, 2))
    step = torch.compile(net, backend=aot_autograd(fw_compiler=keep("forward"), bw_compiler=keep("backward")),
                         fullgraph=True)
    step(torch.randn(5, 3)).sum().backward()
    assert "aten.relu.default" in graphs["forward"]
    assert "aten.sign.default" in graphs["backward"]
    assert not any("threshold_backward" in op or "le." in op for op in graphs["backward"])


def test_hidden_activation_by_name():
    module = NodeNet(Net("mlp", (4, 4), (Option("activation", "tanh"),)), (ParentInput("x", (2,)),), {"loc": (1,)})
    assert [type(m) for m in module.rest] == [nn.Tanh, nn.Linear, nn.Tanh, nn.Linear]
    with pytest.raises(ValueError, match="unknown activation 'relu6'"):
        activation("relu6")


def test_deterministic_needs_a_width_and_a_parentless_node_learns_a_constant():
    with pytest.raises(ValueError, match="needs an output width"):
        NodeNet(Net("linear"), (ParentInput("x", (2,)),), None)
    module = NodeNet(Net("linear"), (), {"loc": (3,), "scale": (3,)})
    out = module([])
    assert out["loc"].shape == (3,) and module.free.requires_grad


def test_factor_module_literals_are_buffers_and_heads_are_constrained():
    torch.manual_seed(2)
    module = FactorModule("Normal", (3,), {"scale": 0.1}, [(Net("mlp", (4,)), ("loc",))], (ParentInput("x", (2,)),))
    params = module.params([torch.randn(1, 5, 2)])
    assert params["loc"].shape == (1, 5, 3)
    assert torch.equal(params["scale"], torch.full((3,), 0.1))
    assert "literal_scale" not in module.state_dict()  # from the spec, not learnt
    module.double()
    d = module.dist([torch.randn(1, 5, 2, dtype=torch.float64)])
    assert d.batch_shape == (1, 5) and d.event_shape == (3,)
    assert d.mean.dtype == torch.float64
    prior = FactorModule("Normal", (3,), {}, [(Net("linear"), ("loc", "scale"))], (ParentInput("x", (2,)),))
    scale = prior.params([torch.randn(1, 4, 2) * 100])["scale"]
    assert bool((scale > 0).all())


def test_batchnorm_of_a_single_value_uses_the_running_statistics():
    from graphvae.compile.nets import BatchNorm

    torch.manual_seed(0)
    bn = BatchNorm(3)
    bn.running_mean.fill_(0.5)
    bn.running_var.fill_(2.0)
    h = torch.randn(1, 1, 3)  # one example, one sample: no batch statistics
    out = bn.train()(h)
    assert torch.equal(out, bn.eval()(h)) and out.shape == h.shape
    assert bool((bn.running_mean == 0.5).all()) and bool((bn.running_var == 2.0).all())
    bn.train()(torch.randn(4, 3))  # more than one value: batch statistics, running ones updated
    assert not bool((bn.running_mean == 0.5).all())


# -- conv: convolutions over one image parent, then the affine layers over its features and the rest --
def _conv(hidden, parents, head, **options):
    from graphvae.compile.nets import ConvNet

    return ConvNet(Net("conv", tuple(hidden), tuple(Option(k, v) for k, v in options.items())), parents, head)


def test_conv_computes_the_padded_strided_sums_then_the_head_by_hand():
    """A 3x3 all-ones kernel, stride 2, padding 1, over the image 1..9: the four window sums
    12, 16, 24, 28; then a head of one unit summing them, plus a categorical parent's column."""
    net = _conv([1], (ParentInput("x", (3, 3)), ParentInput("y", (2,), 2)), {"loc": (1,)}, activation="identity")
    with torch.no_grad():
        conv = net.convs[0]
        conv.weight.fill_(1.0), conv.bias.zero_()
        first = net.tail.first
        first.weight.copy_(torch.tensor([[1.0, 1.0, 1.0, 1.0, 0.0, 100.0]])), first.bias.fill_(0.5)
    image = torch.arange(1.0, 10.0).reshape(1, 3, 3)
    assert net.features == 4
    torch.testing.assert_close(net.convs(image.unsqueeze(1)).flatten(), torch.tensor([12.0, 16.0, 24.0, 28.0]))
    out = net([image, torch.tensor([1])])["loc"]
    torch.testing.assert_close(out, torch.tensor([[12 + 16 + 24 + 28 + 100 + 0.5]]))


@pytest.mark.parametrize("image, hidden, options, maps", [
    ((50, 50), [16, 32, 64], {}, [(16, 25, 25), (32, 13, 13), (64, 7, 7)]),
    ((12, 10), [4, 8], {"kernel": 5}, [(4, 6, 5), (8, 3, 3)]),
    ((9, 9), [3], {"stride": 1}, [(3, 9, 9)]),
    ((8, 8), [2, 2], {"stride": 3, "kernel": 1}, [(2, 3, 3), (2, 1, 1)]),
])
def test_conv_feature_maps_follow_the_padding_and_stride(image, hidden, options, maps):
    from graphvae.spec.networks import conv_maps

    net = Net("conv", tuple(hidden), tuple(Option(k, v) for k, v in options.items()))
    assert conv_maps(net, image) == maps
    module = _conv(hidden, (ParentInput("x", image),), {"logits": (3,)}, **options)
    assert module.convs(torch.zeros((1, 1) + image)).shape[1:] == maps[-1]


def test_conv_broadcasts_lead_dims_and_convolves_an_observed_image_once():
    """An image with no sample dim and a parent with S = 4 samples: the convolutions see B images,
    the output has the samples' lead dims; as a node with dense = n its value is n activated units."""
    net = _conv([3, 5], (ParentInput("x", (7, 6)), ParentInput("z", (2,))), None, dense=9)
    seen = []
    net.convs.register_forward_hook(lambda m, i, o: seen.append(i[0].shape))
    out = net([torch.rand(2, 7, 6), torch.randn(4, 2, 2)])
    assert out.shape == (4, 2, 9) and (out >= 0).all()  # relu
    assert seen == [torch.Size([2, 1, 7, 6])]
    assert net.out_features == 9


def test_conv_reads_a_glimpse_window_as_the_image_it_is():
    """A glimpse node's value arrives flattened (h * w numbers, with sample dims before it); a conv
    over it computes what it computes over the same window as an [h, w] image: the 1..9 window
    sums 12, 16, 24, 28 of the all-ones kernel, per sample."""
    from graphvae.compile.attention import Glimpse

    flat = _conv([1], (ParentInput("g", (9,), image=(3, 3)),), {"loc": (1,)}, activation="identity")
    square = _conv([1], (ParentInput("x", (3, 3)),), {"loc": (1,)}, activation="identity")
    square.load_state_dict(flat.state_dict())
    with torch.no_grad():
        flat.convs[0].weight.fill_(1.0), flat.convs[0].bias.zero_()
        flat.tail.first.weight.fill_(1.0), flat.tail.first.bias.zero_()
    canvas = torch.zeros(1, 5, 5)
    canvas[0, 1:4, 2:5] = torch.arange(1.0, 10.0).reshape(3, 3)
    glimpse = Glimpse(Net("glimpse", (3,)), (ParentInput("x", (5, 5)), ParentInput("w", (2,))))
    window = glimpse([canvas, torch.tensor([[[1.0, 2.0]], [[1.0, 2.0]]])])  # 2 samples of one position
    assert window.shape == (2, 1, 9)
    torch.testing.assert_close(flat([window])["loc"], torch.full((2, 1, 1), 12.0 + 16 + 24 + 28))
    with torch.no_grad():
        square.load_state_dict(flat.state_dict())
    torch.testing.assert_close(flat([window])["loc"], square([window.reshape(2, 1, 3, 3)])["loc"])


def test_conv_options_batchnorm_and_dropout_follow_each_convolution():
    net = _conv([4, 4], (ParentInput("x", (8, 8)),), {"logits": (2,)}, batchnorm=True, dropout=0.5,
                activation="tanh")
    kinds = [type(m).__name__ for m in net.convs]
    assert kinds == ["Conv2d", "BatchNorm2d", "Tanh", "Dropout"] * 2


@pytest.mark.parametrize("parent", [ParentInput("x", (3, 3)), ParentInput("g", (9,), image=(3, 3))])
def test_conv_coords_reads_each_pixels_row_and_column_as_two_more_channels(parent):
    """With coords = true the first convolution reads 3 channels: the image, then each pixel's row
    and column scaled to [-1, 1] (CoordConv). A 1x1 kernel at stride 1 picking one channel gives
    the image itself, the rows -1, 0, 1 and the columns -1, 0, 1 of a 3x3 image, whatever the image
    (here zeros, and a flattened glimpse window), for each of two examples."""
    picks = {0: torch.arange(1.0, 10.0), 1: torch.tensor([-1.0, -1, -1, 0, 0, 0, 1, 1, 1]),
             2: torch.tensor([-1.0, 0, 1, -1, 0, 1, -1, 0, 1])}
    for channel, expected in picks.items():
        net = _conv([1], (parent,), {"loc": (9,)}, activation="identity", coords=True, kernel=1, stride=1)
        assert net.convs[0].in_channels == 3 and net.features == 9
        with torch.no_grad():
            net.convs[0].weight.zero_(), net.convs[0].bias.zero_()
            net.convs[0].weight[0, channel] = 1.0
            net.tail.first.weight.copy_(torch.eye(9)), net.tail.first.bias.zero_()
        image = torch.arange(1.0, 10.0).expand(2, 9).reshape((2,) + parent.shape)
        torch.testing.assert_close(net([image])["loc"], expected.expand(2, 9))


def test_conv_without_coords_reads_the_image_alone_and_its_grid_is_not_saved():
    plain = _conv([2], (ParentInput("x", (4, 5)),), {"loc": (1,)})
    with_coords = _conv([2], (ParentInput("x", (4, 5)),), {"loc": (1,)}, coords=True)
    assert plain.convs[0].in_channels == 1 and not plain.coords
    assert with_coords.grid.shape == (2, 4, 5) and "grid" not in with_coords.state_dict()
    assert with_coords.to(torch.float64).convs[0](torch.zeros(1, 3, 4, 5, dtype=torch.float64)).dtype == torch.float64


# -- locate: a soft argmax over a conv's cells, each pointing from its centre to the position --
def _locate(hidden, parents, head, **options):
    from graphvae.compile.nets import LocateNet

    return LocateNet(Net("locate", tuple(hidden), tuple(Option(k, v) for k, v in options.items())), parents, head)


def _score_is_the_pixel(net, offset=(0.0, 0.0)):
    """A 1x1 identity convolution, and a linear cell network whose score is the cell's feature
    (the pixel) and whose offset is ``offset`` everywhere."""
    with torch.no_grad():
        net.convs[0].weight.fill_(1.0), net.convs[0].bias.zero_()
        first = net.cell.first
        first.weight.zero_(), first.bias.zero_()
        first.weight[0, 0] = 1.0
        first.bias[1:] = torch.tensor(offset)


def test_locate_is_the_softmax_weighted_mean_of_the_cell_centres_plus_offsets():
    """A 1x2 image [0, log 3]: the scores are the pixels, so the weights are 1/4 and 3/4 on the
    centres (0, 0) and (0, 1): position (0, 3/4); an offset of (1, -1) at every cell moves it to (1, -1/4)."""
    image = torch.tensor([[[0.0, math.log(3.0)]]])
    for offset, expected in [((0.0, 0.0), [0.0, 0.75]), ((1.0, -1.0), [1.0, -0.25])]:
        net = _locate([1], (ParentInput("x", (1, 2)),), {"loc": (2,)}, activation="identity", kernel=1, stride=1)
        _score_is_the_pixel(net, offset)
        torch.testing.assert_close(net([image])["loc"], torch.tensor([expected]))


@pytest.mark.parametrize("image, hidden, stride, centres", [
    ((5, 5), [1, 1], 2, [(0, 0), (0, 4), (4, 0), (4, 4)]),  # 5 -> 3 -> 2 cells, 4 pixels apart
    ((3, 2), [1], 1, [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1)]),
    ((50, 50), [16, 32, 32], 2, [(8 * i, 8 * j) for i in range(7) for j in range(7)]),
])
def test_locate_centres_each_cell_on_the_pixel_its_strides_reach(image, hidden, stride, centres):
    net = _locate(hidden, (ParentInput("x", image),), {"loc": (2,)}, kernel=1 if stride == 1 else 3, stride=stride)
    assert net.centres.tolist() == [list(map(float, c)) for c in centres]


def test_locate_broadcasts_the_other_parents_over_the_cells_and_convolves_the_image_once():
    """The image (B = 3) is convolved once; a real parent with 4 enumerated values, a class index
    and an absent parent (slot 0's w[k-1]) each enter every cell: the position has their lead dims.
    A score that is only the class's column picks no cell: every centre weighs the same."""
    parents = (ParentInput("x", (6, 6)), ParentInput("n", (4,), 4), ParentInput("z", (3,)), ParentInput("w", (2,)))
    net = _locate([2], parents, {"loc": (2,)}, dense=5)
    seen = []
    net.convs.register_forward_hook(lambda m, i, o: seen.append(i[0].shape))
    out = net([torch.rand(3, 6, 6), torch.tensor([0, 3, 1]), torch.randn(4, 3, 3), None])["loc"]
    assert out.shape == (4, 3, 2) and seen == [torch.Size([3, 1, 6, 6])]
    node = _locate([2], parents, None, activation="identity")
    with torch.no_grad():
        node.cell.first.weight.zero_(), node.cell.first.bias.zero_()
        node.cell.first.weight[0, 2 + 2 + 1] = 7.0  # the score reads one-hot column 1 of n
    mean = node.centres.mean(0)
    torch.testing.assert_close(node([torch.rand(3, 6, 6), torch.tensor([0, 1, 1]), torch.randn(3, 3), None]),
                               mean.expand(3, 2))
    assert node.out_features == 2
    # an absent image (a plate's slot 0 reading x[k-1]) reads zero features at every cell
    assert net([None, torch.tensor([0, 3, 1]), torch.randn(3, 3), None])["loc"].shape == (3, 2)
