"""Synthetic image data sets with known generative factors (numpy only; no torch).

Two generators, each a pure function of its arguments and a seed (same seed, same arrays, bit for
bit), returning a dict of named arrays ready for :func:`npz_bytes`:

* :func:`make_multi_digits`: canvases holding 0..K digit images, each pasted at a random position,
  overlaps combined with ``max`` (a stand-in for the multi-MNIST of Eslami et al.'s AIR and of
  Siddharth et al. 2017).
* :func:`make_shaded_shapes`: grey images of procedurally generated smooth 3-D surfaces (the
  "identities") under a Lambertian light from a known direction (a stand-in for Yale B faces).

Conventions (also in ``docs/datasets.md``):

* Images are float32 (N, H, W) in [0, 1], row 0 at the top, column 0 at the left.
* A slot that holds no digit has class -1, source index -1 and position NaN.
* ``_factors`` is a string array naming the arrays that hold the known factors.
* Every random draw comes from ``numpy.random.default_rng`` seeded as documented on each function,
  in a fixed order, so that a seed fixes every array; :func:`npz_bytes` writes zip members with a
  fixed time stamp, so the same arrays give the same file bytes.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

import numpy as np

FACTORS_KEY = "_factors"
SOURCE_KEY = "_source"

# -- limits the command line checks flags against ----------------------------------------------

MAX_DIGITS = 100  # digits per canvas
MAX_CANVAS = 1024  # pixels per side
MAX_EXAMPLES = 10_000_000
MAX_IDENTITIES = 100_000
MIN_SIZE = 8  # pixels per side of a shaded-shapes image
MAX_SIZE = 1024

# -- shaded shapes: the documented ranges of every random draw ---------------------------------

AZIMUTH_RANGE = (-70.0, 70.0)  # degrees, drawn uniformly; 0 = from the camera, + = from the image's right
ELEVATION_RANGE = (-40.0, 60.0)  # degrees, drawn uniformly; 0 = level with the camera, + = from above
AMBIENT = 0.05  # share of the albedo every pixel receives whatever the light
BACKGROUND_ALBEDO = 0.5  # of the flat backdrop (height 0) around every shape
SEMI_AXES = ((0.55, 0.8), (0.7, 0.9))  # ranges of the outline ellipse's half width and half height
DOME_HEIGHT = (0.3, 0.5)  # range of the base dome's height (image half-width = 1)
BUMPS = (5, 10)  # range (inclusive) of the number of Gaussian bumps on the dome
BUMP_WIDTH = (0.08, 0.3)  # range of a bump's standard deviation
BUMP_HEIGHT = (-0.1, 0.2)  # range of a bump's amplitude (negative: a dent)
SHAPE_ALBEDO = (0.65, 1.0)  # range of a shape's (uniform) albedo
SHADE_BLOCK = 1024  # images shaded at once


# -- writing -----------------------------------------------------------------------------------

def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """The bytes of an ``.npz`` file (deflate-compressed, as ``np.savez_compressed`` writes) holding
    ``arrays``, in the dict's order, every zip member stamped 1980-01-01 00:00 so that the same
    arrays always give the same bytes.  Readable by ``np.load`` and by graphvae's data loader;
    object arrays are refused (the file must load without pickle)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, array in arrays.items():
            array = np.asarray(array)
            if array.dtype.hasobject:
                raise ValueError(f"array {name!r} holds Python objects; an .npz written here must load without pickle")
            member = io.BytesIO()
            np.lib.format.write_array(member, array, allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, member.getvalue())
    return buffer.getvalue()


def shapes_text(arrays: dict[str, np.ndarray]) -> str:
    """``x (8, 16, 16) float32, count (8,) int64, ...`` for the arrays not starting with ``_``."""
    return ", ".join(f"{k} {tuple(a.shape)} {a.dtype}" for k, a in arrays.items() if not k.startswith("_"))


# -- multi-digit canvases ----------------------------------------------------------------------

@dataclass(frozen=True)
class DigitLayout:
    """Where the digits of N canvases go: per canvas a count and K slots, the first ``count[i]``
    slots present and ordered left to right (by the top-left corner's column, ties by its row, then
    by draw order); absent slots have ``source_index`` -1 and ``corner`` -1."""

    count: np.ndarray  # int64 (N,), each in 0..K
    source_index: np.ndarray  # int64 (N, K): index into the source images, -1 = absent
    corner: np.ndarray  # int64 (N, K, 2): top-left (row, col) of the pasted image, -1 = absent

    @property
    def present(self) -> np.ndarray:
        """bool (N, K): which slots hold a digit."""
        return self.source_index >= 0


def draw_layout(rng: np.random.Generator, n: int, max_digits: int, canvas: int, patch: tuple[int, int],
                n_sources: int) -> DigitLayout:
    """N layouts drawn from ``rng`` in this order: the N counts (uniform over 0..K), then an (N, K)
    array of source indices (uniform over the sources, with replacement), then an (N, K, 2) array of
    top-left corners (row uniform over 0..canvas-patch_h, column over 0..canvas-patch_w, so that
    every digit lies wholly inside the canvas).  Draws for absent slots are made and discarded, so
    that one canvas's draws do not depend on its count."""
    count = rng.integers(0, max_digits + 1, size=n)
    sources = rng.integers(0, n_sources, size=(n, max_digits))
    rows = rng.integers(0, canvas - patch[0] + 1, size=(n, max_digits))
    cols = rng.integers(0, canvas - patch[1] + 1, size=(n, max_digits))
    slot = np.broadcast_to(np.arange(max_digits), (n, max_digits))
    present = slot < count[:, None]
    order = np.lexsort((slot, rows, np.where(present, cols, canvas)), axis=-1)  # last key first
    sources, rows, cols = (np.take_along_axis(a, order, axis=-1) for a in (sources, rows, cols))
    corner = np.stack([rows, cols], axis=-1)
    return DigitLayout(count.astype(np.int64), np.where(present, sources, -1).astype(np.int64),
                       np.where(present[..., None], corner, -1).astype(np.int64))


def composite(images: np.ndarray, layout: DigitLayout, canvas: int) -> np.ndarray:
    """float32 (N, canvas, canvas): every present slot's source image pasted at its corner onto a
    zero canvas, overlapping pixels taking the largest value (so values stay in the sources' range)."""
    n, _ = layout.source_index.shape
    h, w = images.shape[1:]
    out = np.zeros((n, canvas, canvas), np.float32)
    for i, j in zip(*np.nonzero(layout.present)):
        r, c = layout.corner[i, j]
        window = out[i, r:r + h, c:c + w]
        np.maximum(window, images[layout.source_index[i, j]], out=window)
    return out


def make_multi_digits(images: np.ndarray, labels: np.ndarray, n: int, max_digits: int, canvas: int,
                      seed: int, source: str = "") -> dict[str, np.ndarray]:
    """N canvases of ``canvas`` x ``canvas`` pixels holding 0..``max_digits`` of ``images`` (float
    (M, h, w) in [0, 1], classes ``labels`` (M,)), laid out by :func:`draw_layout` with
    ``np.random.default_rng(seed)``.  Arrays:

    ``x`` float32 (N, S, S) in [0, 1]; ``count`` int64 (N,); ``digits`` int64 (N, K), the class in
    each slot, -1 = absent; ``positions`` float32 (N, K, 2), the top-left (row, col) of each digit,
    NaN = absent; ``source_index`` int64 (N, K), the index of each digit's image in ``images``, -1 =
    absent; ``_factors`` ["count", "digits", "positions"]; ``_source`` [``source``] when given."""
    images = np.asarray(images, np.float32)
    labels = np.asarray(labels, np.int64)
    if images.ndim != 3 or len(images) != len(labels) or not len(images):
        raise ValueError(f"need images (M, h, w) and M labels, got shapes {images.shape} and {labels.shape}")
    if canvas < max(images.shape[1:]):
        raise ValueError(f"a {canvas}x{canvas} canvas cannot hold a {images.shape[1]}x{images.shape[2]} image")
    layout = draw_layout(np.random.default_rng(seed), n, max_digits, canvas, images.shape[1:], len(images))
    present = layout.present
    arrays = {
        "x": composite(images, layout, canvas),
        "count": layout.count,
        "digits": np.where(present, labels[np.maximum(layout.source_index, 0)], -1).astype(np.int64),
        "positions": np.where(present[..., None], layout.corner, np.nan).astype(np.float32),
        "source_index": layout.source_index,
        FACTORS_KEY: np.array(["count", "digits", "positions"]),
    }
    if source:
        arrays[SOURCE_KEY] = np.array([source])
    return arrays


# -- shaded shapes -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Surface:
    """One identity: a height field over the image and an albedo per pixel.

    Coordinates: the image spans [-1, 1] in x (left to right, along columns) and in y (bottom to
    top, against rows); height z points towards the camera, which looks straight down -z
    (orthographic).  Outside the shape's outline ellipse the surface is the flat backdrop z = 0."""

    height: np.ndarray  # float64 (S, S)
    albedo: np.ndarray  # float64 (S, S) in [0, 1]

    @property
    def spacing(self) -> float:
        """The distance between neighbouring pixel centres in the coordinates above."""
        return 2.0 / (self.height.shape[0] - 1)


def image_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)``, each float64 (size, size): the coordinates of every pixel centre, x = -1 at
    column 0 to +1 at the last column, y = +1 at row 0 to -1 at the last row."""
    t = np.linspace(-1.0, 1.0, size)
    return np.meshgrid(t, -t)


def identity_surface(seed: int, identity: int, size: int) -> Surface:
    """The surface of ``identity`` under ``seed``, drawn from ``np.random.default_rng([seed,
    identity])`` (so it depends on neither the number of identities nor of examples): an outline
    ellipse with half axes (a, b) in SEMI_AXES; a dome of height in DOME_HEIGHT plus 5-10 Gaussian
    bumps (centres inside the ellipse, widths BUMP_WIDTH, amplitudes BUMP_HEIGHT), all multiplied by
    the envelope (1 - r^2)^2 inside the ellipse (r^2 = (x/a)^2 + (y/b)^2) and 0 outside, so the
    surface meets the backdrop smoothly; a uniform albedo in SHAPE_ALBEDO inside the ellipse and
    BACKGROUND_ALBEDO outside."""
    rng = np.random.default_rng([seed, identity])
    a, b = rng.uniform(*SEMI_AXES[0]), rng.uniform(*SEMI_AXES[1])
    dome = rng.uniform(*DOME_HEIGHT)
    k = int(rng.integers(BUMPS[0], BUMPS[1] + 1))
    radius, angle = np.sqrt(rng.uniform(0, 0.8, k)), rng.uniform(0, 2 * np.pi, k)
    centres = np.stack([a * radius * np.cos(angle), b * radius * np.sin(angle)], axis=-1)
    widths, amplitudes = rng.uniform(*BUMP_WIDTH, k), rng.uniform(*BUMP_HEIGHT, k)
    albedo = rng.uniform(*SHAPE_ALBEDO)
    x, y = image_grid(size)
    r2 = (x / a) ** 2 + (y / b) ** 2
    envelope = np.where(r2 < 1, (1 - r2) ** 2, 0.0)
    bumps = sum(h * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * s ** 2))
                for (cx, cy), s, h in zip(centres, widths, amplitudes))
    return Surface(envelope * (dome + bumps), np.where(r2 < 1, albedo, BACKGROUND_ALBEDO))


def surface_normals(height: np.ndarray, spacing: float) -> np.ndarray:
    """float64 (S, S, 3): the unit normals (x, y, z) of a height field z = h(x, y) sampled on the
    grid of :func:`image_grid`, n = (-dh/dx, -dh/dy, 1) / norm, derivatives by central differences
    (one-sided at the border)."""
    dh_drow, dh_dcol = np.gradient(np.asarray(height, np.float64), spacing)
    normal = np.stack([-dh_dcol, dh_drow, np.ones_like(dh_dcol)], axis=-1)  # dh/dy = -dh/drow: rows run down
    return normal / np.linalg.norm(normal, axis=-1, keepdims=True)


def light_vector(azimuth: np.ndarray, elevation: np.ndarray) -> np.ndarray:
    """float64 (..., 3): the unit vector towards a light at ``azimuth`` and ``elevation`` (degrees):
    (sin az cos el, sin el, cos az cos el).  (0, 0) is the camera's direction (+z); azimuth +90 is
    the image's right (+x), elevation +90 straight above (+y)."""
    az, el = np.radians(np.asarray(azimuth, np.float64)), np.radians(np.asarray(elevation, np.float64))
    return np.stack([np.sin(az) * np.cos(el), np.sin(el), np.cos(az) * np.cos(el)], axis=-1)


def lambert(normals: np.ndarray, albedo: np.ndarray, light: np.ndarray, ambient: float = AMBIENT) -> np.ndarray:
    """The Lambertian image of a surface: albedo * (ambient + (1 - ambient) * max(0, n . l)) per
    pixel, for one light (3,) -> (S, S) or several (L, 3) -> (L, S, S).  Attached shadows only: a
    surface facing away from the light is dark, but nothing casts a shadow on anything else."""
    light = np.asarray(light, np.float64)
    cosine = np.maximum(0.0, np.einsum("hwc,...c->...hw", normals, light))
    return albedo * (ambient + (1 - ambient) * cosine)


def make_shaded_shapes(n: int, identities: int, size: int, seed: int,
                       ambient: float = AMBIENT) -> dict[str, np.ndarray]:
    """N images of ``size`` x ``size`` pixels: each of ``identities`` surfaces
    (:func:`identity_surface`) lit by :func:`lambert`.  ``np.random.default_rng(seed)`` draws, in this
    order, the N identities (uniform over 0..I-1), the N azimuths (uniform over AZIMUTH_RANGE) and
    the N elevations (uniform over ELEVATION_RANGE).  Arrays:

    ``x`` float32 (N, S, S) in [0, 1]; ``identity`` int64 (N,); ``light`` float32 (N, 2), (azimuth,
    elevation) in degrees; ``light_vector`` float32 (N, 3), the unit vector towards the light;
    ``_factors`` ["identity", "light"]."""
    rng = np.random.default_rng(seed)
    identity = rng.integers(0, identities, size=n).astype(np.int64)
    azimuth = rng.uniform(*AZIMUTH_RANGE, size=n)
    elevation = rng.uniform(*ELEVATION_RANGE, size=n)
    lights = light_vector(azimuth, elevation)
    x = np.zeros((n, size, size), np.float32)
    for i in np.unique(identity):
        surface = identity_surface(seed, int(i), size)
        normals = surface_normals(surface.height, surface.spacing)
        rows = np.flatnonzero(identity == i)
        for block in np.array_split(rows, -(-len(rows) // SHADE_BLOCK)):  # bounded float64 temporaries
            x[block] = lambert(normals, surface.albedo, lights[block], ambient)
    return {
        "x": np.clip(x, 0.0, 1.0),
        "identity": identity,
        "light": np.stack([azimuth, elevation], axis=-1).astype(np.float32),
        "light_vector": lights.astype(np.float32),
        FACTORS_KEY: np.array(["identity", "light"]),
    }
