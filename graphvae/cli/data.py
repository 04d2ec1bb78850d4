"""``graphvae data download mnist|fashion-mnist|kmnist [--dir DIR]``: fetch a dataset's four IDX files
into the folder ``--data NAME`` reads.

The work is :func:`graphvae.data.download.download_dataset`; this module draws its progress: a bar on
stderr when stderr is a terminal, else one plain line per file on stdout (a log file gets no ``\\r``
frames).  ``--mirror URL`` (hidden, repeatable) replaces the mirror list, like ``$GRAPHVAE_MIRROR``.
"""

from __future__ import annotations

import sys
import time

from graphvae.data.download import Event, download_dataset, target_folder
from graphvae.data.idx import size_text

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
    progress = _Progress(tty=_is_tty(sys.stderr))
    try:
        folder = download_dataset(args.name, args.dir, progress=progress, mirrors=tuple(args.mirror or ()))
    finally:
        progress.close()  # a bar cut short by an error or Ctrl-C ends its line first
    found = target_folder(args.name) == folder  # where --data NAME looks without --data-dir
    flags = f"--data {args.name}" + ("" if found else f" --data-dir {folder.parent}")
    print(f"{args.name}: the four IDX files are in {folder}; train with {flags}")
    return 0
