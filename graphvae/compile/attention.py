"""The attention networks of a spec: ``glimpse`` reads a window of an image, ``erase`` blanks one,
``paste`` places patches on a learnt canvas; each differentiable in the window's position
(bilinear in fractional pixels) and without weights but the canvas.

Tensors have the layout ``(*lead, B, *value_shape)`` of :mod:`graphvae.compile.nets`; the
window's geometry comes from :func:`graphvae.spec.networks.window`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from graphvae.compile.parents import ParentInput
from graphvae.spec.ir import Net
from graphvae.spec.networks import POSITION_SHAPE, window


def flat_lead(*pairs: tuple[torch.Tensor, int]) -> tuple[tuple[int, ...], list[torch.Tensor]]:
    """The broadcast lead shape of tensors that each end in ``n`` value dims, and each tensor
    expanded to it and flattened to ``(N, *value)``."""
    lead = tuple(torch.broadcast_shapes(*(t.shape[:t.dim() - n] for t, n in pairs)))
    return lead, [t.expand(lead + t.shape[t.dim() - n:]).reshape((-1,) + t.shape[t.dim() - n:]) for t, n in pairs]


def _axis(start: torch.Tensor, length: int, size: int) -> torch.Tensor:
    """``(N, length)``: grid_sample's coordinates (align_corners=True: -1 is pixel 0, +1 pixel
    size - 1) of the pixels ``start + 0 .. start + length - 1`` of an axis of ``size`` pixels."""
    steps = torch.arange(length, dtype=start.dtype, device=start.device)
    return (start[:, None] + steps) * (2.0 / (size - 1)) - 1.0


def _sample(image: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """``(N, len rows, len cols)``: ``image`` (N, H, W) at every (row, column) pair of the grid
    ``rows`` (N, h) by ``cols`` (N, w), in grid_sample's coordinates, bilinearly interpolated,
    zero outside the image."""
    n, h, w = rows.shape[0], rows.shape[1], cols.shape[1]
    grid = torch.stack([cols[:, None, :].expand(n, h, w), rows[:, :, None].expand(n, h, w)], dim=-1)
    return F.grid_sample(image.unsqueeze(1), grid, mode="bilinear", padding_mode="zeros",
                         align_corners=True).squeeze(1)


class Glimpse(nn.Module):
    """``g | x, w = glimpse(h, w)``: the ``h x w`` window of the image ``x`` whose top-left pixel is
    at ``w`` = (row, column), flattened to ``h * w`` numbers; fractional positions interpolate
    bilinearly (so the window is differentiable in its position) and pixels off the image read 0.
    No parameters."""

    def __init__(self, net: Net, parents: tuple[ParentInput, ...]):
        super().__init__()
        self.window = window(net)
        shapes = [tuple(p.shape) for p in parents]
        self.position = shapes.index(POSITION_SHAPE)
        self.image = 1 - self.position
        self.image_shape = shapes[self.image]
        self.out_features = self.window[0] * self.window[1]

    def forward(self, values: list[torch.Tensor]) -> torch.Tensor:
        (h, w), (big_h, big_w) = self.window, self.image_shape
        image, position = values[self.image], values[self.position]
        lead, (image, position) = flat_lead((image.to(position.dtype), 2), (position, 1))
        rows = _axis(position[:, 0], h, big_h)
        cols = _axis(position[:, 1], w, big_w)
        return _sample(image, rows, cols).reshape(lead + (h * w,))


def window_weights(start: torch.Tensor, length: int, size: int) -> torch.Tensor:
    """``(N, size)``: how much of each of an axis's ``size`` pixels a window of ``length`` pixels
    from ``start`` (N,) covers, as a bilinearly placed window of ones does: 1 for pixels
    ``start .. start + length - 1``, falling linearly to 0 over the pixel on either side
    (``clamp(min(t + 1, length - t), 0, 1)`` at ``t = pixel - start``)."""
    t = torch.arange(size, dtype=start.dtype, device=start.device) - start[:, None]
    return torch.minimum(t + 1.0, length - t).clamp(0.0, 1.0)


class Erase(nn.Module):
    """``r | x, w = erase(h, w)``: the image ``x`` with the ``h x w`` window whose top-left pixel
    is at ``w`` blanked: each pixel times 1 minus the window's cover of it (:func:`window_weights`
    along each axis, so a fractional position blanks its edge in part and the value is
    differentiable in the position).  With an erase node among its parents (``r[k-1]`` in a
    plate) it blanks that node's image instead, where it is present: slot 0, without it, blanks
    ``x``; without its position (``w[k-1]`` of slot 0) it blanks nothing.  No parameters."""

    def __init__(self, net: Net, parents: tuple[ParentInput, ...]):
        super().__init__()
        self.window = window(net)
        self.position = next(i for i, p in enumerate(parents) if tuple(p.shape) == POSITION_SHAPE)
        self.chain = next((i for i, p in enumerate(parents) if p.node == "erase"), None)
        self.image = next(i for i, p in enumerate(parents) if i != self.position and p.node is None)
        self.image_shape = tuple(parents[self.image].shape)
        self.out_features = math.prod(self.image_shape)

    def forward(self, values: list[torch.Tensor]) -> torch.Tensor:
        (h, w), (big_h, big_w) = self.window, self.image_shape
        image, position = values[self.image], values[self.position]
        if self.chain is not None and values[self.chain] is not None:
            image = values[self.chain]
        if position is None:
            return image
        lead, (flat,) = flat_lead((position, 1))
        cover = window_weights(flat[:, 0], h, big_h)[:, :, None] * window_weights(flat[:, 1], w, big_w)[:, None, :]
        image = image.to(position.dtype)
        return image * (1.0 - cover.reshape(lead + self.image_shape))


class Paste(nn.Module):
    """``x | p[*], w[*] ~ Family(paste(h, w))``: one head parameter of the canvas's shape [H, W],
    a learnt canvas (initialised at 0) plus each patch ``p_i`` (``h * w`` numbers) placed with its
    top-left pixel at its position ``w_i`` (patches and positions paired in order, bilinear in
    fractional positions).  A patch of zeros adds nothing."""

    def __init__(self, net: Net, parents: tuple[ParentInput, ...], head: dict[str, tuple[int, ...]]):
        super().__init__()
        (self.name, shape), = head.items()
        self.window, self.canvas = window(net), tuple(shape)
        positions = [i for i, p in enumerate(parents) if tuple(p.shape) == POSITION_SHAPE]
        patches = [i for i in range(len(parents)) if i not in positions]
        self.pairs = list(zip(patches, positions))
        self.flat = [len(parents[i].shape) == 1 for i in patches]  # h * w numbers, else an [h, w] variable
        self.bias = nn.Parameter(torch.zeros(self.canvas))
        self.out_features = math.prod(self.canvas)

    def forward(self, values: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        (h, w), (big_h, big_w) = self.window, self.canvas
        out = self.bias
        for (patch_at, position_at), flat in zip(self.pairs, self.flat):
            patch, position = values[patch_at], values[position_at]
            if flat:
                patch = patch.reshape(patch.shape[:-1] + (h, w))
            lead, (patch, position) = flat_lead((patch, 2), (position, 1))
            # canvas pixel (r, c) reads the patch at (r - row, c - column), in the patch's coordinates
            rows = _axis(-position[:, 0], big_h, h)
            cols = _axis(-position[:, 1], big_w, w)
            out = out + _sample(patch, rows, cols).reshape(lead + self.canvas)
        return {self.name: out}
