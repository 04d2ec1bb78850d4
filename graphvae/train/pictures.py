"""Pictures of a run: ``graphvae plot`` (training curves) and ``graphvae sample`` (PNG grids).

``graphvae sample RUN --out DIR`` writes, for a model with an image-like observed
variable ``x``:

- ``generation.png``: one row per class of the first categorical supervised
  variable ``y``, one column per draw of the other latents (the same draw down a column);
- ``style_transfer.png``: the paper's analogies: the first column shows test
  images; the others decode the latents encoded from them with every class of ``y``;
- ``reconstructions.png``: test images and their reconstructions, in row pairs;
- ``traversals.png``: one row per dimension of a continuous latent ``z``, sweeping it
  from -3 to 3 with the others at 0 (the most used dimensions, by posterior spread);
- ``traversal_<s>_<i>.png`` (``traversal_<s>.png`` for a scalar ``s``), only for a spec with a
  continuous supervised variable ``s`` (the light direction of specs/shaded_shapes.gvae): one per
  value ``i`` of ``s``, sweeping it over the range of its known labels in the test split (in the
  variable's own units) along a row, one row per test image, whose encoded values of every other
  latent and supervised variable (the identity, the style z, the other values of ``s``) stay
  fixed along the row.

Torch is imported lazily: ``graphvae plot`` reads only metrics.jsonl.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from graphvae.errors import UserError
from graphvae.atomic import atomic_write_bytes

TRAVERSAL_RANGE = 3.0


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | os.PathLike) -> None:
    """Save a matplotlib figure as PNG atomically and close it."""
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    atomic_write_bytes(path, buffer.getvalue())


# -- graphvae plot ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Panel:
    """One panel of ``curves.png``: the metrics.jsonl keys drawn on one axis, which share a scale."""

    title: str
    keys: tuple[str, ...]
    percent: bool = False  # the values are fractions, drawn as percentages


_NOT_DRAWN = ("epoch", "step", "val/examples", "epoch_seconds", "examples_per_s", "selected")
_NOT_DRAWN_HEADS = ("train/ess/", "train/n_labelled/")


def curve_panels(rows: list[dict], domains: dict | None = None) -> list[Panel]:
    """The panels of ``curves.png``, each metric beside only those of its scale: the loss; the ELBO
    (train and validation); for each supervised variable its validation error (a percentage, for a
    categorical one) or RMSE (a continuous one; a variable ``domains``, name -> domain, lacks is
    drawn as plain numbers); the reconstruction term; the KL terms; the classifier terms; any other
    train term; the learning rate when it changes; throughput.  Empty panels are left out."""
    keys: list[str] = []
    for row in rows:
        keys += [k for k, v in row.items() if k not in keys and isinstance(v, (int, float)) and not isinstance(v, bool)
                 and k not in _NOT_DRAWN and not k.startswith(_NOT_DRAWN_HEADS)]
    domains = domains or {}
    taken: set[str] = set()

    def pick(test) -> tuple[str, ...]:
        found = tuple(k for k in keys if k not in taken and test(k))
        taken.update(found)
        return found

    panels = [Panel("loss (nats per example)", pick(lambda k: k == "train/loss")),
              Panel("ELBO (nats per example)", pick(lambda k: k in ("train/elbo", "val/elbo")))]
    for key in pick(lambda k: k.startswith("val/error/")):
        name = key.split("/", 2)[2]
        domain = domains.get(name)
        what = "error" if domain == "categorical" else "RMSE" if domain else "error"
        panels.append(Panel(f"validation {what} of {name}", (key,), percent=domain == "categorical"))
    panels += [Panel("reconstruction log-likelihood", pick(lambda k: k == "train/reconstruction")),
               Panel("KL terms", pick(lambda k: k.startswith("train/kl/"))),
               Panel("classifier terms: log q(label | x)", pick(lambda k: k.startswith("train/classifier/"))),
               Panel("other train terms", pick(lambda k: k.startswith("train/")))]
    rates = {r["lr"] for r in rows if isinstance(r.get("lr"), (int, float))}
    panels.append(Panel("learning rate", pick(lambda k: k == "lr") if len(rates) > 1 else ()))
    panels.append(Panel("throughput (steps/s)", pick(lambda k: k == "steps_per_s")))
    panels.append(Panel("other", pick(lambda k: k.startswith("val/"))))
    return [p for p in panels if p.keys]


def plot_curves(rows: list[dict], out: str | os.PathLike, title: str = "", domains: dict | None = None) -> Path:
    """Draw the per-epoch curves of metrics.jsonl rows into a PNG, one panel per scale
    (:func:`curve_panels`; ``domains``, variable -> domain, says which unit each supervised
    variable's validation metric has); returns its path."""
    if not rows:
        raise UserError("no metrics to plot yet (metrics.jsonl is empty: the run has not finished an epoch)")
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    panels = curve_panels(rows, domains)
    cols = 1 if len(panels) == 1 else 2 if len(panels) <= 4 else 3
    nrows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.8 * cols, 3.2 * nrows), squeeze=False)
    for ax, panel in zip(axes.flat, panels):
        for key in panel.keys:
            pts = [(r["epoch"], r[key]) for r in rows if isinstance(r.get(key), (int, float)) and "epoch" in r]
            if pts:
                xs, ys = zip(*pts)
                ax.plot(xs, ys, marker="o" if len(pts) < 30 else None, markersize=3, label=key)
        ax.set_title(panel.title, fontsize=10)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if len(panel.keys) > 1:
            ax.legend(fontsize=7)
        if panel.percent:
            ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{100 * v:.1f}%"))
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out = Path(out)
    save_figure(fig, out)
    return out


# -- graphvae sample ----------------------------------------------------------------------------
def _image_shape(var, data_shape=None) -> tuple[int, ...] | None:
    """(H, W) or (C, H, W) to draw one value of ``var``, or None when it is not image-like."""
    from graphvae.data import infer_image_shape

    if var.domain == "categorical":  # class indices, not grey levels
        return None
    if data_shape and math.prod(data_shape) == var.size:
        return tuple(data_shape)
    return infer_image_shape(tuple(var.shape))


def _as_images(values, shape: tuple[int, ...]):
    """A (N, H, W) or (N, H, W, 3) numpy array in [0, 1] from model output (N, *var.shape)."""
    import numpy as np

    arr = values.detach().float().cpu().numpy().reshape((values.shape[0],) + tuple(shape))
    if len(shape) == 3:
        arr = arr[:, 0] if shape[0] == 1 else np.moveaxis(arr, 1, -1)
    return np.clip(arr, 0.0, 1.0)


def mosaic(images, rows: int, cols: int, pad: int = 1):
    """One array tiling ``rows * cols`` images row-major with ``pad`` pixels of white between them."""
    import numpy as np

    h, w = images.shape[1:3]
    extra = images.shape[3:]
    out = np.ones((rows * (h + pad) + pad, cols * (w + pad) + pad) + extra, dtype=np.float32)
    for i in range(min(len(images), rows * cols)):
        r, c = divmod(i, cols)
        out[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = images[i]
    return out


def image_grid(images, rows: int, cols: int, path, row_labels=None, col_labels=None, title: str = "") -> Path:
    """Draw ``rows * cols`` images (row-major, numpy (N, H, W[, 3]) in [0, 1]) as one PNG."""
    plt = _pyplot()
    h, w = images.shape[1:3]
    cell = max(0.3, min(0.9, 0.032 * max(h, w)))  # inches per image: 28x28 -> 0.9, 8x8 -> 0.3
    fig, ax = plt.subplots(figsize=(cols * cell + 1.2, rows * cell + 0.8))
    ax.imshow(mosaic(images, rows, cols), cmap="gray" if images.ndim == 3 else None, vmin=0, vmax=1,
              interpolation="nearest")
    ax.set_xticks([1 + c * (w + 1) + (w - 1) / 2 for c in range(cols)] if col_labels else [])
    ax.set_yticks([1 + r * (h + 1) + (h - 1) / 2 for r in range(rows)] if row_labels else [])
    if col_labels:
        ax.set_xticklabels([str(c) for c in col_labels], fontsize=7)
        ax.xaxis.tick_top()
    if row_labels:
        ax.set_yticklabels([str(r) for r in row_labels], fontsize=7)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title:
        ax.set_title(title, fontsize=9, pad=14 if col_labels else 6)
    save_figure(fig, path)
    return Path(path)


def _pick_variables(spec):
    """(x, y, z): the first observed variable, categorical supervised variable and continuous latent."""
    x = spec.observed[0] if spec.observed else None
    y = next((v for v in spec.supervised if v.domain == "categorical"), None)
    z = next((v for v in spec.latent if v.domain in ("real", "positive", "unit")), None)
    return x, y, z


@dataclass
class _Grids:
    """What every grid of ``graphvae sample`` draws from: the model, its variables, test images."""

    model: object
    x: object  # the observed variable drawn, and (when the spec has them) the class y and the style z
    y: object
    z: object
    shape: tuple[int, ...]  # (H, W) or (C, H, W) of one image of x
    n: int  # columns per grid
    out: Path
    device: object
    batch: dict  # test examples with their labels ...
    hidden: dict  # ... and with every label hidden from the model
    codes: dict = None  # the posterior means/modes of the hidden batch (model.encode)
    ranges: dict = None  # continuous supervised variable -> (lows, highs) per value, of its known test labels
    source: str = ""  # the checkpoint, for messages

    def decode(self, n: int, given: dict):
        return self.model.sample(n, given=given)[self.x.name]

    def images(self, values):
        import torch

        if values.is_floating_point() and not bool(torch.isfinite(values).all()):
            raise UserError(f"{self.source}: the model gives non-finite values of {self.x.name} (NaN or infinite): "
                            "its weights or batch-norm statistics are not finite, or its computation overflows")
        return _as_images(values, self.shape)


def _generation(g: _Grids) -> Path:
    """One row per class of y, the same draw of the other latents down a column (or n x n samples)."""
    import torch

    x, y, z, n = g.x, g.y, g.z, g.n
    if y is None:
        return image_grid(g.images(g.model.sample(n * n)[x.name]), n, n, g.out / "generation.png",
                          title=f"samples of {x.name}")
    k, prior = y.classes, g.model.sample(n)
    given = {y.name: torch.arange(k, device=g.device).repeat_interleave(n)}
    if z is not None:
        given[z.name] = prior[z.name].repeat(k, *([1] * (prior[z.name].dim() - 1)))
    return image_grid(g.images(g.decode(k * n, given)), k, n, g.out / "generation.png",
                      row_labels=[f"{y.name}={c}" for c in range(k)],
                      title=f"p({x.name} | {y.name}, {z.name if z else '...'}): one row per class")


def _style_transfer(g: _Grids) -> Path | None:
    """The paper's analogies: z encoded from test images (first column), decoded with every class of y."""
    import numpy as np
    import torch

    x, y, z = g.x, g.y, g.z
    if y is None or z is None:
        return None
    rows, k = min(g.n, len(g.batch[x.name])), y.classes
    zs = g.codes[z.name][:rows]
    cells = [g.images(g.batch[x.name][:rows])]
    for c in range(k):
        cells.append(g.images(g.decode(rows, {y.name: torch.full((rows,), c, device=g.device, dtype=torch.long),
                                              z.name: zs})))
    grid = np.stack(cells, axis=1).reshape((rows * (k + 1),) + cells[0].shape[1:])
    return image_grid(grid, rows, k + 1, g.out / "style_transfer.png",
                      col_labels=["test"] + [f"{y.name}={c}" for c in range(k)],
                      title=f"style transfer: {z.name} encoded from test images, decoded with every {y.name}")


def _reconstructions(g: _Grids) -> Path:
    """Row pairs: test images, then their reconstructions."""
    import numpy as np

    x, n = g.x, g.n
    recon = g.model.reconstruct(g.hidden)[x.name]
    m = min(len(g.batch[x.name]), 2 * n)
    half, cols = (m // n, n) if m >= n else (1, m)
    pairs = []
    for r in range(half):
        pairs.append(g.images(g.batch[x.name][r * cols:(r + 1) * cols]))
        pairs.append(g.images(recon[r * cols:(r + 1) * cols]))
    return image_grid(np.concatenate(pairs), 2 * half, cols, g.out / "reconstructions.png",
                      row_labels=["data", "recon."] * half, title=f"{x.name} and its reconstruction")


def _slot_reconstructions(g: _Grids) -> list[Path]:
    """For each plate with a count: test images, then decoded from their codes with only the first
    j slots present (the count clamped to j = 0..K), then with the count the encoder inferred."""
    import numpy as np
    import torch

    written = []
    for plate in g.model.spec.plates:
        if not plate.count or not isinstance(plate.size, int):
            continue
        rows = min(g.n, len(g.batch[g.x.name]))
        codes = {k: v[:rows] for k, v in g.codes.items()}
        cells = [g.images(g.batch[g.x.name][:rows])]
        for j in range(plate.size + 1):
            given = dict(codes, **{plate.count: torch.full((rows,), j, device=g.device, dtype=torch.long)})
            cells.append(g.images(g.decode(rows, given)))
        cells.append(g.images(g.decode(rows, codes)))
        grid = np.stack(cells, axis=1).reshape((rows * len(cells),) + cells[0].shape[1:])
        inferred = [int(c) for c in codes[plate.count].reshape(rows).tolist()]
        written.append(image_grid(
            grid, rows, len(cells), g.out / f"slots_{plate.name}.png",
            row_labels=[f"{plate.count}={c}" for c in inferred],
            col_labels=["test"] + [f"{plate.count}={j}" for j in range(plate.size + 1)] + ["recon."],
            title=f"per-slot reconstructions: only the first {plate.count} slots of plate {plate.name} present "
                  f"(rows: the inferred {plate.count})"))
    return written


def _traversals(g: _Grids) -> Path | None:
    """The most used dimensions of z (by posterior spread), each swept from -3 to 3 with the others at 0."""
    import torch

    y, z, n = g.y, g.z, g.n
    if z is None:
        return None
    code = g.codes[z.name]
    spread = code.reshape(len(code), -1).std(dim=0)
    dims = spread.argsort(descending=True)[: min(8, spread.numel())].tolist()
    steps = torch.linspace(-TRAVERSAL_RANGE, TRAVERSAL_RANGE, n, device=g.device)
    base = torch.zeros((len(dims) * n, code[0].numel()), device=g.device)
    for r, d in enumerate(dims):
        base[r * n:(r + 1) * n, d] = steps
    given, fixed = {z.name: base.reshape((len(dims) * n,) + tuple(code.shape[1:]))}, ""
    if y is not None:
        cls = int(g.codes[y.name][0]) if y.name in g.codes else 0
        given[y.name] = torch.full((len(dims) * n,), cls, device=g.device, dtype=torch.long)
        fixed = f", {y.name}={cls}"
    return image_grid(g.images(g.decode(len(dims) * n, given)), len(dims), n, g.out / "traversals.png",
                      row_labels=[f"{z.name}[{d}]" for d in dims], col_labels=[f"{v:+.1f}" for v in steps.tolist()],
                      title=f"traversals of single {z.name} dimensions (others 0{fixed})")


SWEEP_ROWS = 4  # rows (test images) of a supervised variable's traversal


def sweep_ranges(spec, arrays: dict) -> dict:
    """``{s: (lows, highs)}``: per value of each continuous supervised variable ``s``, the least and
    greatest of its known labels in ``arrays`` (NaN marks a missing one); a variable with no known
    label is left out."""
    import numpy as np

    out = {}
    for v in spec.supervised:
        if v.discrete or v.name not in arrays:
            continue
        a = np.asarray(arrays[v.name], dtype=np.float64).reshape(len(arrays[v.name]), -1)
        known = a[~np.isnan(a).any(axis=1)]
        if len(known):
            out[v.name] = (known.min(axis=0), known.max(axis=0))
    return out


def _supervised_traversals(g: _Grids) -> list[Path]:
    """Per value of each continuous supervised variable: a row per test image, that value swept over
    its data range, every other latent and supervised variable held at the image's encoded value."""
    import torch

    written = []
    rows = min(SWEEP_ROWS, len(g.batch[g.x.name]))
    for v in g.model.spec.supervised:
        if v.discrete or v.name not in g.codes:
            continue
        code = g.codes[v.name][:rows]
        width = code[0].numel()
        if v.name in (g.ranges or {}):
            lows, highs = g.ranges[v.name]
        else:  # no known label: the range of the encoded values
            flat = g.codes[v.name].reshape(len(g.codes[v.name]), -1)
            lows, highs = flat.min(dim=0).values.tolist(), flat.max(dim=0).values.tolist()
        held = ", ".join(n for n in g.codes if n != v.name)
        for i in range(width):
            steps = torch.linspace(float(lows[i]), float(highs[i]), g.n, device=g.device, dtype=code.dtype)
            given = {n: c[:rows].repeat_interleave(g.n, dim=0) for n, c in g.codes.items()}
            values = code.reshape(rows, width).repeat_interleave(g.n, dim=0).clone()
            values[:, i] = steps.repeat(rows)
            given[v.name] = values.reshape((rows * g.n,) + tuple(code.shape[1:]))
            label = v.name if width == 1 else f"{v.name}[{i}]"
            name = f"traversal_{v.name}.png" if width == 1 else f"traversal_{v.name}_{i}.png"
            row_labels = [f"test {r}" for r in range(rows)]
            if g.y is not None and g.y.name in g.codes:
                row_labels = [f"{g.y.name}={int(g.codes[g.y.name][r])}" for r in range(rows)]
            written.append(image_grid(g.images(g.decode(rows * g.n, given)), rows, g.n, g.out / name,
                                      row_labels=row_labels, col_labels=[f"{s:+.3g}" for s in steps.tolist()],
                                      title=f"{label} swept over its test labels' range; {held} held at "
                                            "each test image's encoded value"))
    return written


def sample_pictures(run_path, out_dir, n: int = 8, seed: int = 0, which: str = "best", data: str | None = None,
                    data_dir: str | None = None, device: str | None = None, log=None) -> list[Path]:
    """Write the PNG grids of a trained run into ``out_dir``; returns their paths (``log`` is told each)."""
    import torch

    from graphvae.data import evaluation_arrays, hide_labels, prepare_data, to_batch
    from graphvae.train.runs import load_run

    if n < 1:
        raise UserError(f"--n must be at least 1, got {n}")
    run = load_run(run_path, which, device or "auto")
    spec, cfg, model = run.spec, run.config, run.model
    x, y, z = _pick_variables(spec)
    data_obj = prepare_data(spec, data=data or cfg.data, data_dir=data_dir or cfg.data_dir or None,
                            validation=cfg.validation, labels=cfg.labels, seed=cfg.seed)
    shape = _image_shape(x, data_obj.dataset.image_shape) if x is not None else None
    if shape is None:
        raise UserError(f"the observed variable {x.name if x else '?'} is not image-like "
                        f"(shape {list(x.shape) if x else []}); sample draws images only")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dev = next(model.parameters()).device
    # a seeded choice of test images, the same for every grid
    test = evaluation_arrays(data_obj.test, spec, cfg.binarize)
    pick = torch.randperm(len(test[x.name]), generator=torch.Generator().manual_seed(seed))[: max(2 * n, 16)]
    batch = {k: v.to(dev) for k, v in to_batch(test, pick.sort().values.tolist()).items()}
    grids = _Grids(model, x, y, z, shape, n, out, dev, batch, hide_labels(batch, spec),
                   source=f"{run_path} ({which}.pt)", ranges=sweep_ranges(spec, test))
    torch.manual_seed(seed)
    with torch.no_grad():
        written = [_generation(grids)]
        grids.codes = model.encode(grids.hidden)
        written += [p for p in (_style_transfer(grids), _reconstructions(grids), _traversals(grids)) if p is not None]
        written += _supervised_traversals(grids)
        written += _slot_reconstructions(grids)
    for path in written if log is not None else ():
        log(f"wrote {path}")
    return written
