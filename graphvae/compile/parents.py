"""How a parent's value enters a node's network: its shape, classes and image layout."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class ParentInput:
    """How one parent enters a network.

    ``shape`` is the parent's full shape (a categorical's includes its K); ``classes``
    is K for a categorical parent (whose value may arrive as indices), else None; ``image`` is
    ``(h, w)`` for a glimpse node (its value, ``h * w`` numbers, is a window a conv reads as an
    image); ``node`` is the network kind of a deterministic node's value, else None."""

    name: str
    shape: tuple[int, ...]
    classes: int | None = None
    image: tuple[int, int] | None = None
    node: str | None = None

    @property
    def image_shape(self) -> tuple[int, int] | None:
        """``(H, W)`` of the image a conv reads of this parent: a real or binary variable of shape
        [H, W], or a glimpse's window; None for any other parent."""
        if self.image is not None:
            return self.image
        return tuple(self.shape) if len(self.shape) == 2 and self.classes is None else None

    @property
    def width(self) -> int:
        return math.prod(self.shape)
