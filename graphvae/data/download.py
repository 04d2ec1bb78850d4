"""Fetching the IDX files of MNIST, Fashion-MNIST and KMNIST from their public mirrors (standard library only).

``download_dataset(name, base=None)`` puts the four ``.gz`` files of ``name`` into ``<base>/<name>/``,
where ``base`` defaults to the first folder :func:`graphvae.data.idx.data_dirs` searches
(``$GRAPHVAE_DATA``, else ``~/.cache/graphvae/data``), so ``--data NAME`` (with ``--data-dir BASE``
for another ``base``) then finds them.  Per file:

- a file already there with the published SHA-256 is kept (``present``); for MNIST also a copy whose
  *decompressed* bytes have the published digest (a recompressed copy of the same data).  A file there
  with any other content is refused, never overwritten: the user removes it or picks another folder;
- otherwise the bytes go to ``NAME.part`` beside it, resumed with an HTTP ``Range`` request when a
  ``.part`` is already there (a server that answers 200 instead of 206 ignores the range: the file
  restarts from zero), at most the published size; then the SHA-256 is checked and the ``.part`` is
  renamed (``os.replace``, atomic) to the final name (for MNIST a recompressed copy of the published data
  also passes, by its content digest).  A digest that does not match removes the
  ``.part``; the loader never sees a file that was not verified;
- the mirrors of the dataset are tried in order: a refused connection, an HTTP error, a dropped
  transfer or a wrong digest moves on to the next (a dropped transfer keeps its ``.part``, so the next
  mirror, or the next run, resumes it).  When every mirror fails the file's reasons are one
  :class:`~graphvae.errors.UserError` line, which says how to fetch the files by hand when no mirror
  could be reached at all.

``$GRAPHVAE_MIRROR`` (a URL, or several separated by commas) replaces the mirror list; the tests
point it at a server on 127.0.0.1.  Progress goes to a callback (the CLI draws the bar).
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from graphvae.atomic import make_folders
from graphvae.data.idx import IDX_FILES, data_dirs, size_text
from graphvae.errors import UserError

MIRROR_ENV = "GRAPHVAE_MIRROR"
TIMEOUT = 30  # seconds a connection or a read may stall before the mirror counts as failed
CHUNK = 2**16
USER_AGENT = "graphvae-data-download"


@dataclass(frozen=True)
class Remote:
    """One file as the mirrors publish it."""

    name: str  # e.g. "train-images-idx3-ubyte.gz"
    size: int  # bytes
    sha256: str  # of the .gz file as published
    content_sha256: str | None = None  # of its decompressed IDX bytes, when known: a recompressed copy passes


@dataclass(frozen=True)
class Source:
    mirrors: tuple[str, ...]  # base URLs; a file's URL is base + name
    files: tuple[Remote, ...]  # in the order of IDX_FILES


def _files(rows) -> tuple[Remote, ...]:
    return tuple(Remote(f"{stem}.gz", *row) for stem, row in zip(IDX_FILES.values(), rows))


# The published SHA-256 digests of the .gz files, all four in the order of IDX_FILES (train images,
# train labels, test images, test labels), with their sizes in bytes.
#
# MNIST: the digests TensorFlow Datasets and Keras check (as also listed by torchvision-ruby,
# lib/torchvision/datasets/mnist.rb); sizes from http://yann.lecun.com/exdb/mnist/.  The copies in this
# project's shared data folder are recompressed (e.g. 9,630,634 bytes instead of 9,912,422), so their .gz
# digests differ; the digests of their decompressed bytes, computed from those copies, are the widely
# published digests of the uncompressed MNIST files, and are the content digests below.
MNIST = Source(
    mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/",
             "https://storage.googleapis.com/cvdf-datasets/mnist/",
             "http://yann.lecun.com/exdb/mnist/"),
    files=_files([
        (9912422, "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
         "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
        (28881, "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
         "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
        (1648877, "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
         "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
        (4542, "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
         "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
    ]))

# Fashion-MNIST (https://github.com/zalandoresearch/fashion-mnist, whose README publishes the MD5s
# 8d4fb7e6..., 25c81989..., bef4ecab..., bb300cfd... and the sizes): the SHA-256 digests that Keras
# and torchvision-ruby (lib/torchvision/datasets/fashion_mnist.rb) check.
FASHION_MNIST = Source(
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
             "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/"),
    files=_files([
        (26421880, "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"),
        (29515, "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"),
        (4422102, "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"),
        (5148, "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"),
    ]))

# KMNIST (https://github.com/rois-codh/kmnist, files at codh.rois.ac.jp): the SHA-256 digests that
# TensorFlow Datasets' and torchvision-ruby's KMNIST (lib/torchvision/datasets/kmnist.rb) check.
KMNIST = Source(
    mirrors=("https://codh.rois.ac.jp/kmnist/dataset/kmnist/",
             "http://codh.rois.ac.jp/kmnist/dataset/kmnist/"),
    files=_files([
        (18165135, "51467d22d8cc72929e2a028a0428f2086b092bb31cfb79c69cc0a90ce135fde4"),
        (29497, "e38f9ebcd0f3ebcdec7fc8eabdcdaef93bb0df8ea12bee65224341c8183d8e17"),
        (3041136, "edd7a857845ad6bb1d0ba43fe7e794d164fe2dce499a1694695a792adfac43c5"),
        (5120, "20bb9a0ef54c7db3efc55a92eef5582c109615df22683c380526788f98e42a1c"),
    ]))

SOURCES = {"mnist": MNIST, "fashion-mnist": FASHION_MNIST, "kmnist": KMNIST}


@dataclass
class Event:
    """What :func:`download_dataset` reports to its ``progress`` callback.

    ``kind``: ``"present"`` (kept, already verified), ``"start"`` (``url``; ``done`` bytes already
    in the ``.part``), ``"bytes"`` (``done`` of ``total``), ``"retry"`` (``reason``: that mirror
    failed, the next is tried), ``"done"`` (``total`` bytes verified, ``reason`` says how, and in
    place at ``path``)."""

    kind: str
    file: Remote
    path: Path
    done: int = 0
    total: int = 0
    url: str = ""
    reason: str = ""


class _Failed(Exception):
    """One mirror failed for one file; ``offline``: it could not be reached at all."""

    def __init__(self, reason: str, offline: bool = False):
        super().__init__(reason)
        self.offline = offline


def target_folder(name: str, base: str | os.PathLike | None = None) -> Path:
    """Where ``download_dataset(name, base)`` writes: ``<base>/<name>``, ``base`` defaulting to the
    first folder the loader searches without ``--data-dir``."""
    root = Path(base).expanduser() if base else data_dirs(None)[0][0]
    return root / name


def mirrors_for(name: str) -> tuple[str, ...]:
    override = [m.strip() for m in os.environ.get(MIRROR_ENV, "").split(",") if m.strip()]
    return tuple(override) or SOURCES[name].mirrors


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def _content_sha256(path: Path) -> str | None:
    """SHA-256 of a gzip file's decompressed bytes, or None when it is not valid gzip."""
    digest = hashlib.sha256()
    try:
        with gzip.open(path, "rb") as f:
            for block in iter(lambda: f.read(2**20), b""):
                digest.update(block)
    except (OSError, EOFError, zlib.error):
        return None
    return digest.hexdigest()


def is_verified(path: Path, remote: Remote) -> bool:
    """Whether ``path`` holds ``remote``: its published bytes, or (content digest known) its data."""
    if path.stat().st_size == remote.size and sha256_of(path) == remote.sha256:
        return True
    return remote.content_sha256 is not None and _content_sha256(path) == remote.content_sha256


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
        exc = exc.reason if isinstance(exc.reason, BaseException) else Exception(str(exc.reason))
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    if isinstance(exc, TimeoutError):
        return f"no answer for {TIMEOUT} s"
    return str(exc) or type(exc).__name__


def _open(url: str, offset: int):
    """The response for ``url`` from byte ``offset`` on (a Range request when ``offset`` > 0); None when
    the server answers 416 (the range lies past the end of its file)."""
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=TIMEOUT)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and offset:
            return None
        raise _Failed(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except http.client.HTTPException as exc:  # reached, but no valid answer
        raise _Failed(f"{url}: {_reason(exc)}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:  # refused, no route, no name, timed out
        raise _Failed(f"{url}: {_reason(exc)}", offline=True) from None


def _body_start(response, offset: int) -> int:
    """Where the response's body starts in the file: ``offset`` for a 206 answering our range, 0 for a
    200 (the server ignored the range and sends the whole file), -1 for a 206 of some other range."""
    if not offset or response.status != 206:
        return 0
    content_range = response.headers.get("Content-Range", "")  # "bytes START-END/TOTAL"
    try:
        start = int(content_range.split()[1].split("-")[0])
    except (IndexError, ValueError):
        start = -1
    return offset if start == offset else -1


def _response_from(url: str, part: Path):
    """(response, where its body starts) for the rest of ``part``, resuming what it holds."""
    offset = part.stat().st_size if part.exists() else 0
    response = _open(url, offset)
    if response is None:  # 416: the .part is stale
        part.unlink()
        return _open(url, 0), 0
    start = _body_start(response, offset)
    if start < 0:  # a 206 for a range we did not ask for: ask again for the whole file
        response.close()
        return _open(url, 0), 0
    return response, start


def _declared_size(response, start: int) -> int | None:
    """The whole file's size as the server declares it: a 206's ``Content-Range`` total, else
    ``start`` plus ``Content-Length``; None when it says nothing."""
    try:
        if response.status == 206:
            return int(response.headers.get("Content-Range", "").rsplit("/", 1)[1])
        return start + int(response.headers["Content-Length"])
    except (IndexError, KeyError, TypeError, ValueError):
        return None


def _fetch(url: str, remote: Remote, part: Path, final: Path, report: Callable[[Event], None]) -> None:
    """Bring ``part`` to the file's full size from ``url``, resuming what it holds; raises _Failed
    (a broken transfer keeps the ``.part`` to resume; a too-long one removes it).

    The size is the published one; where a content digest is known (a recompressed copy passes) it is
    what the server declares, up to twice the published size."""
    if part.exists() and part.stat().st_size >= remote.size:  # complete (verified next) or too long
        return
    response, start = _response_from(url, part)
    bound = remote.size if remote.content_sha256 is None else 2 * remote.size
    declared = _declared_size(response, start)
    size = remote.size if declared is None or remote.content_sha256 is None else declared
    wrong_size = declared is not None and (declared > bound if remote.content_sha256 else declared != remote.size)
    done, too_long = start, False

    def read(n: int) -> bytes:
        try:
            return response.read(n)
        except (http.client.HTTPException, OSError) as exc:  # reset, timed out, TLS failure ...
            why = "connection closed" if isinstance(exc, http.client.IncompleteRead) else _reason(exc)
            raise _Failed(f"{url}: the transfer broke off after {done} of {size} bytes ({why})") from None

    with response:
        if not wrong_size:
            report(Event("start", remote, final, done=start, total=size, url=url))
            try:
                with open(part, "r+b" if part.exists() else "wb") as out:
                    out.seek(start)
                    out.truncate()
                    while done < size:
                        block = read(min(CHUNK, size - done))
                        if not block:
                            break
                        out.write(block)
                        done += len(block)
                        report(Event("bytes", remote, final, done=done, total=size, url=url))
                    too_long = done == size and declared is None and bool(read(1))
                    out.flush()
                    os.fsync(out.fileno())
            except OSError as exc:  # the disk's side (reading failures are _Failed): a full disk, a read-only folder
                raise UserError(f"cannot write '{part}': {_reason(exc)}") from None
    if wrong_size or too_long:
        part.unlink(missing_ok=True)
        offers = f"the server offers {declared} bytes" if wrong_size else "the server sends more bytes"
        raise _Failed(f"{url}: {offers}, the published file has {remote.size}; not downloaded")
    if done < size and (declared is not None or remote.content_sha256 is None):
        raise _Failed(f"{url}: the transfer broke off after {done} of {size} bytes")


def _download_file(remote: Remote, folder: Path, mirrors: tuple[str, ...], report) -> tuple[list[str], bool]:
    """Download one file into ``folder``: ``([], False)`` when it is in place and verified, else
    (every mirror's reason, whether no mirror could be reached at all)."""
    final, part = folder / remote.name, folder / f"{remote.name}.part"
    reasons, offline = [], True
    for base in mirrors:
        url = base.rstrip("/") + "/" + remote.name
        resumed = part.exists() and part.stat().st_size > 0
        for attempt in ("resume", "afresh") if resumed else ("afresh",):
            try:
                _fetch(url, remote, part, final, report)
            except _Failed as exc:
                reasons.append(str(exc))
                offline = offline and exc.offline
                report(Event("retry", remote, final, url=url, reason=str(exc)))
                break  # the next mirror (a broken transfer's .part is resumed there)
            offline = False
            digest, size = sha256_of(part), part.stat().st_size
            how = "SHA-256 verified" if digest == remote.sha256 else ""
            if not how and remote.content_sha256 and _content_sha256(part) == remote.content_sha256:
                how = "a recompressed copy, its data's SHA-256 verified"
            if how:
                os.replace(part, final)
                report(Event("done", remote, final, done=size, total=size, url=url, reason=how))
                return [], False
            part.unlink()
            if attempt == "resume":  # the bytes kept from before may be what is wrong: once more from zero
                continue
            reasons.append(f"{url}: checksum refused (SHA-256 {digest[:12]}..., published {remote.sha256[:12]}...); "
                           "the download was removed")
            report(Event("retry", remote, final, url=url, reason=reasons[-1]))
    return reasons, offline


def _prepare_folder(folder: Path) -> None:
    make_folders(folder)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"cannot write to '{folder}': Permission denied; pass --dir FOLDER for another place")


def manual_hint(name: str, folder: Path) -> str:
    """How to do it by hand: which files, from where (the first public mirror), into which folder."""
    files = ", ".join(f.name for f in SOURCES[name].files)
    where = SOURCES[name].mirrors[0]
    return (f"download {files} from {where} by hand into {folder} (or into any folder, then pass "
            f"--data-dir FOLDER to train/eval)")


def download_dataset(name: str, base: str | os.PathLike | None = None,
                     progress: Callable[[Event], None] | None = None, mirrors: tuple[str, ...] | None = None) -> Path:
    """Fetch and verify the four IDX files of ``name`` into :func:`target_folder`; returns that folder.
    ``mirrors`` (base URLs) replaces the dataset's mirror list and ``$GRAPHVAE_MIRROR``.

    Raises :class:`UserError` (one line) for an unknown name, an unwritable folder, a file in the way,
    or a file that no mirror delivered with the published digest."""
    if name not in SOURCES:
        raise UserError(f"unknown dataset '{name}'; graphvae data download takes {', '.join(SOURCES)}")
    source, mirrors = SOURCES[name], tuple(mirrors or ()) or mirrors_for(name)
    for url in mirrors:
        if not url.startswith(("http://", "https://")):
            raise UserError(f"mirror '{url}' (--mirror or ${MIRROR_ENV}) is not an http:// or https:// URL")
    report = progress or (lambda event: None)
    folder = target_folder(name, base)
    _prepare_folder(folder)
    todo = []
    for remote in source.files:  # check what is there before fetching anything
        final = folder / remote.name
        if final.is_symlink() or final.exists():
            if not final.is_file():
                raise UserError(f"'{final}' is in the way (not a regular file); remove it or pass --dir FOLDER")
            try:
                verified = is_verified(final, remote)
            except OSError as exc:
                raise UserError(f"cannot read '{final}': {_reason(exc)}") from None
            if not verified:
                raise UserError(f"'{final}' is already there but is not the published {name} file (its SHA-256 "
                                f"differs); not overwritten: remove it to download it again, or pass --dir FOLDER")
            report(Event("present", remote, final, done=remote.size, total=remote.size))
        else:
            todo.append(remote)
    for remote in todo:
        reasons, offline = _download_file(remote, folder, mirrors, report)
        if not reasons:
            continue
        part = folder / f"{remote.name}.part"
        kept = (f"; {size_text(part.stat().st_size)} kept in {part.name}, run the command again to resume"
                if part.exists() and part.stat().st_size else "")
        if offline:
            hosts = ", ".join(dict.fromkeys(r.split("/")[2] if "//" in r else r for r in reasons))
            raise UserError(f"cannot reach any {name} mirror ({hosts}: {reasons[-1].rsplit(': ', 1)[-1]}); "
                            f"no network? {manual_hint(name, folder)}{kept}")
        raise UserError(f"cannot download {remote.name}: {'; '.join(reasons)}{kept}; or "
                        f"{manual_hint(name, folder)}")
    return folder
