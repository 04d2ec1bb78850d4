"""``graphvae data download mnist|fashion-mnist|kmnist [--dir DIR]``: fetch a dataset's four IDX files
into the folder ``--data NAME`` reads.

The work is :func:`graphvae.data.download.download_dataset`; this module draws its progress: a bar on
stderr when stderr is a terminal, else one plain line per file on stdout (a log file gets no ``\\r``
frames).  ``--mirror URL`` (hidden, repeatable) replaces the mirror list, like ``$GRAPHVAE_MIRROR``.

``graphvae data make multi-mnist|shaded-shapes --out FILE.npz ...`` writes a synthetic data set with
known factors (:mod:`graphvae.data.synthetic`; ``docs/datasets.md``): every flag is checked before
anything is read or written (a bad one is a one-line error), an existing file is kept unless
``--force``, and the file is written atomically, its folders created when missing.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from graphvae.atomic import atomic_write_bytes
from graphvae.cli.outputs import output_file
from graphvae.data import synthetic
from graphvae.data.download import Event, download_dataset, target_folder
from graphvae.data.idx import check_data_size, size_text
from graphvae.errors import UserError

DEFAULT_CANVAS = {"mnist": 50, "digits": 16}
PREVIEW_GRID = (4, 8)  # rows, columns of --preview

BAR_WIDTH = 24
REDRAW_S = 0.1  # the bar is redrawn at most this often


class _Progress:
    """Turns download events into a bar (``tty``) or plain lines."""

    def __init__(self, tty: bool):
        self.tty = tty
        self.drawn = 0.0
        self.resumed_at = 0
        self.width = 0  # of the bar line on screen, to blank it

    def _line(self, text: str) -> None:
        if self.tty and self.width:
            sys.stderr.write("\r" + " " * self.width + "\r")
            sys.stderr.flush()
            self.width = 0
        print(text, flush=True)

    def _bar(self, event: Event) -> None:
        share = event.done / event.total if event.total else 1.0
        filled = int(share * BAR_WIDTH)
        text = (f"{event.file.name}  [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {share:4.0%}  "
                f"{size_text(event.done)} of {size_text(event.total)}")
        sys.stderr.write("\r" + text.ljust(self.width))
        sys.stderr.flush()
        self.width = max(self.width, len(text))

    def __call__(self, event: Event) -> None:
        if event.kind == "present":
            self._line(f"{event.file.name}: already there, verified")
        elif event.kind == "start":
            self.resumed_at = event.done
            if self.tty:
                self._bar(event)
        elif event.kind == "bytes" and self.tty:
            now = time.monotonic()
            if now - self.drawn >= REDRAW_S or event.done == event.total:
                self.drawn = now
                self._bar(event)
        elif event.kind == "done":
            resumed = f", resumed at {size_text(self.resumed_at)}" if self.resumed_at else ""
            self._line(f"{event.file.name}: {size_text(event.total)} from {event.url}{resumed}, {event.reason}")
        # "retry" events are not shown: when no mirror succeeds, the error line gives every reason

    def close(self) -> None:
        if self.tty and self.width:
            sys.stderr.write("\n")
            sys.stderr.flush()
            self.width = 0


def _is_tty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def run(args) -> int:
    if args.data_command == "make":
        return make(args)
    progress = _Progress(tty=_is_tty(sys.stderr))
    try:
        folder = download_dataset(args.name, args.dir, progress=progress, mirrors=tuple(args.mirror or ()))
    finally:
        progress.close()  # a bar cut short by an error or Ctrl-C ends its line first
    found = target_folder(args.name) == folder  # where --data NAME looks without --data-dir
    flags = f"--data {args.name}" + ("" if found else f" --data-dir {folder.parent}")
    print(f"{args.name}: the four IDX files are in {folder}; train with {flags}")
    return 0


# -- graphvae data make ------------------------------------------------------------------------

def _check_range(flag: str, value: int, low: int, high: int, why: str = "") -> None:
    """A one-line UserError unless ``low <= value <= high``."""
    if not low <= value <= high:
        raise UserError(f"{flag} {value}: must be {low}..{high:,}" + (f" ({why})" if why else ""))


def _check_output(out: str, force: bool, flag: str = "--out", suffix: str = ".npz") -> Path:
    """``out`` as a path to write, refused when it is a folder, lacks ``suffix`` or exists (unless
    ``force``); nothing is created yet."""
    path = Path(out)
    if path.is_dir() or out.endswith(("/", "\\")):
        raise UserError(f"{flag} '{out}' is a folder; name the {suffix} file to write")
    if path.suffix.lower() != suffix:
        raise UserError(f"{flag} '{out}' must end in {suffix}")
    if path.exists() and not force:
        raise UserError(f"{out} exists; pass --force to overwrite it")
    return path


def _digit_source(source: str, split: str, data_dir: str | None):
    """``(images float32 (M, h, w) in [0, 1], labels int64 (M,))`` of the source's split."""
    if source == "digits":
        from graphvae.data.datasets import _read_digits

        raw = _read_digits()
        return raw.train if split == "train" else raw.test
    from graphvae.data.idx import read_idx_dataset

    try:
        train, test, _ = read_idx_dataset("mnist", data_dir)
    except UserError as exc:
        if "data not found" not in str(exc):
            raise
        raise UserError(f"{exc}; graphvae data download mnist fetches them (or use --source digits)") from None
    return train if split == "train" else test


def _check_common(args) -> Path:
    _check_range("--count", args.count, 1, synthetic.MAX_EXAMPLES)
    _check_range("--seed", args.seed, 0, 2**63 - 1)
    path = _check_output(args.out, args.force)
    if args.preview is not None:
        _check_output(args.preview, args.force, "--preview", ".png")
    return path


def _multi_mnist(args) -> tuple[dict, tuple[str, Path]]:
    canvas = DEFAULT_CANVAS[args.source] if args.canvas is None else args.canvas
    patch = 28 if args.source == "mnist" else 8
    _check_range("--max-digits", args.max_digits, 1, synthetic.MAX_DIGITS)
    _check_range("--canvas", canvas, patch, synthetic.MAX_CANVAS, f"a {args.source} digit is {patch}x{patch}")
    path = _check_common(args)
    check_data_size(f"--count {args.count} canvases of {canvas}x{canvas}", args.count * canvas * canvas * 4)
    images, labels = _digit_source(args.source, args.split, args.data_dir)
    arrays = synthetic.make_multi_digits(images, labels, args.count, args.max_digits, canvas, args.seed,
                                         f"{args.source}/{args.split}")
    return arrays, (f"0..{args.max_digits} digits of {args.source} {args.split} on {canvas}x{canvas} canvases", path)


def _shaded_shapes(args) -> tuple[dict, tuple[str, Path]]:
    _check_range("--identities", args.identities, 1, synthetic.MAX_IDENTITIES)
    _check_range("--size", args.size, synthetic.MIN_SIZE, synthetic.MAX_SIZE)
    path = _check_common(args)
    check_data_size(f"--count {args.count} images of {args.size}x{args.size}", args.count * args.size ** 2 * 4)
    arrays = synthetic.make_shaded_shapes(args.count, args.identities, args.size, args.seed)
    return arrays, (f"{args.identities} identities, {args.size}x{args.size}", path)


def _preview(x, path: str, title: str) -> None:
    from graphvae.train.pictures import image_grid

    rows, cols = PREVIEW_GRID
    rows = min(rows, -(-len(x) // cols))
    image_grid(x[:rows * cols], rows, min(cols, len(x)), output_file(path, "--preview"), title=title)


def make(args) -> int:
    """``graphvae data make NAME``: check the flags, build the arrays, write them; one summary line."""
    build = {"multi-mnist": _multi_mnist, "shaded-shapes": _shaded_shapes}[args.dataset]
    arrays, (what, path) = build(args)
    data = synthetic.npz_bytes(arrays)
    atomic_write_bytes(output_file(path, "--out"), data)
    extra = ""
    if args.preview is not None:
        _preview(arrays["x"], args.preview, f"{args.dataset}, seed {args.seed}")
        extra = f"; preview {args.preview}"
    print(f"wrote {path} ({size_text(len(data))}): {args.dataset}, {args.count} examples, {what}, seed {args.seed}: "
          f"{synthetic.shapes_text(arrays)}{extra}")
    return 0
