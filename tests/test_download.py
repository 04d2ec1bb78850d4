"""``graphvae data download``, end to end against an HTTP server on 127.0.0.1 (never the internet).

The server (http.server in a thread) serves a tiny MNIST-format IDX set generated here; the tests
replace the digest table (``download.SOURCES``) by one computed from those files.  It can corrupt a
file, drop the connection part-way through one, ignore Range requests or answer with an error, and
records the Range header of every request.
"""

from __future__ import annotations

import hashlib
import http.server
import os
import shutil
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from graphvae.cli.main import main
from graphvae.data import download, load_dataset
from graphvae.data.download import SOURCES, Remote, Source, download_dataset, is_verified
from graphvae.data.idx import DATA_ENV, IDX_FILES, write_idx
from graphvae.errors import UserError
from graphvae.spec.ir import Spec, Variable

MNIST_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
NAMES = [f"{stem}.gz" for stem in IDX_FILES.values()]
TRAIN_IMAGES = NAMES[0]


@dataclass
class Server:
    """What the test server serves and how it misbehaves; ``requests``: (file name, Range header)."""

    url: str = ""
    files: dict = field(default_factory=dict)
    requests: list = field(default_factory=list)
    corrupt: set = field(default_factory=set)  # names served with one byte changed
    drop_after: dict = field(default_factory=dict)  # name -> bytes sent before the connection drops (once)
    ignore_range: bool = False
    status: int = 0  # answer every request with this error


def _handler(state: Server):
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def do_GET(self):
            name = self.path.rsplit("/", 1)[-1]
            state.requests.append((name, self.headers.get("Range")))
            data = state.files.get(name)
            if state.status or data is None:
                self.send_error(state.status or 404)
                return
            if name in state.corrupt:
                data = data[:-1] + bytes([data[-1] ^ 0xFF])
            start, wanted = 0, self.headers.get("Range")
            if wanted and not state.ignore_range:
                start = int(wanted.split("=")[1].split("-")[0])
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            cut = state.drop_after.pop(name, None)
            if cut is not None:  # part of the body, then the connection goes
                self.wfile.write(body[:cut])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            self.wfile.write(body)

    return Handler


def make_idx_files(folder: Path, n_train=30, n_test=10) -> dict[str, bytes]:
    """A valid four-file MNIST-format set (28x28 images, labels 0..9) as name -> gzip bytes."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for role, name in zip(IDX_FILES, NAMES):
        split, kind = role.split("_")
        n = n_train if split == "train" else n_test
        array = rng.integers(0, 256, (n, 28, 28)) if kind == "images" else np.arange(n) % 10
        write_idx(folder / name, array.astype(np.uint8))
    return {name: (folder / name).read_bytes() for name in NAMES}


@pytest.fixture
def server(tmp_path, monkeypatch):
    """A running server with the generated files, and the mnist digest table pointing at it."""
    state = Server(files=make_idx_files(tmp_path / "served"))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/mnist/"
    files = tuple(Remote(n, len(b), hashlib.sha256(b).hexdigest()) for n, b in state.files.items())
    monkeypatch.setitem(SOURCES, "mnist", Source((state.url,), files))
    monkeypatch.delenv(download.MIRROR_ENV, raising=False)
    monkeypatch.delenv(DATA_ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    yield state
    httpd.shutdown()
    httpd.server_close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once the socket is closed


def cli(capsys, *argv):
    """(exit code, stdout, stderr) of ``graphvae data download ARGV``."""
    code = main(["data", "download", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("graphvae: error: "), err
    assert "Traceback" not in err
    return lines[0]


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in NAMES)


def spec_784() -> Spec:
    return Spec("t", variables=(Variable("x", "observed", "binary", (784,)),
                                Variable("y", "supervised", "categorical", (10,)), Variable("z", "latent", "real", (2,))))


# -- a good download ---------------------------------------------------------------------------

def test_download_into_dir_then_load(server, tmp_path, capsys):
    base = tmp_path / "data"
    code, out, err = cli(capsys, "mnist", "--dir", str(base))
    assert code == 0, err
    folder = base / "mnist"
    assert sorted(p.name for p in folder.iterdir()) == sorted(NAMES)  # no .part left
    for name, data in server.files.items():
        assert (folder / name).read_bytes() == data
    assert out.count("SHA-256 verified") == 4 and "\r" not in out + err  # plain lines, not a terminal
    assert f"--data mnist --data-dir {base}" in out
    assert all(rng is None for _, rng in server.requests)
    ds = load_dataset("mnist", spec_784(), str(base))  # what --data mnist --data-dir BASE reads
    assert ds.n_train == 30 and ds.n_test == 10 and ds.train["x"].shape == (30, 784)


def test_default_folder_is_where_the_loader_looks(server, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "env"))
    code, out, err = cli(capsys, "mnist")
    assert code == 0, err
    assert (tmp_path / "env" / "mnist" / TRAIN_IMAGES).is_file()
    assert out.strip().splitlines()[-1].endswith("train with --data mnist")
    assert load_dataset("mnist", spec_784()).n_train == 30  # no --data-dir needed

    monkeypatch.delenv(DATA_ENV)
    assert download.target_folder("mnist") == tmp_path / "home" / ".cache" / "graphvae" / "data" / "mnist"


def test_mirror_override_and_next_mirror(server, tmp_path, monkeypatch, capsys):
    dead = f"http://127.0.0.1:{_closed_port()}/"
    remote = SOURCES["mnist"]
    monkeypatch.setitem(SOURCES, "mnist", Source((dead,), remote.files))
    monkeypatch.setenv(download.MIRROR_ENV, f"{dead}, {server.url}")  # the first fails, the next serves
    code, out, err = cli(capsys, "mnist", "--dir", str(tmp_path / "a"))
    assert code == 0, err
    assert out.count(server.url) == 4

    monkeypatch.setenv(download.MIRROR_ENV, dead)
    code, out, err = cli(capsys, "mnist", "--dir", str(tmp_path / "b"), "--mirror", server.url)  # the flag wins
    assert code == 0, err


def test_already_present_files_are_skipped(server, tmp_path, capsys):
    base = tmp_path / "data"
    assert cli(capsys, "mnist", "--dir", str(base))[0] == 0
    server.requests.clear()
    code, out, err = cli(capsys, "mnist", "--dir", str(base))
    assert code == 0 and server.requests == []
    assert out.count("already there, verified") == 4


def test_partly_present_fetches_the_rest(server, tmp_path, capsys):
    folder = tmp_path / "data" / "mnist"
    folder.mkdir(parents=True)
    (folder / NAMES[1]).write_bytes(server.files[NAMES[1]])
    code, out, err = cli(capsys, "mnist", "--dir", str(tmp_path / "data"))
    assert code == 0, err
    assert sorted(name for name, _ in server.requests) == sorted(NAMES[:1] + NAMES[2:])


def test_a_different_file_in_the_way_is_not_overwritten(server, tmp_path, capsys):
    folder = tmp_path / "data" / "mnist"
    folder.mkdir(parents=True)
    (folder / TRAIN_IMAGES).write_bytes(b"my own file")
    code, out, err = cli(capsys, "mnist", "--dir", str(tmp_path / "data"))
    line = one_error_line(err)
    assert code == 1 and "not overwritten" in line and TRAIN_IMAGES in line
    assert (folder / TRAIN_IMAGES).read_bytes() == b"my own file" and server.requests == []


# -- failures ----------------------------------------------------------------------------------

def test_corrupted_download_is_refused_and_removed(server, tmp_path, capsys):
    server.corrupt.add(NAMES[2])
    code, out, err = cli(capsys, "mnist", "--dir", str(tmp_path / "data"))
    line = one_error_line(err)
    assert code == 1 and "checksum refused" in line and NAMES[2] in line and "removed" in line
    folder = tmp_path / "data" / "mnist"
    assert not (folder / NAMES[2]).exists() and _leftovers(folder) == []  # no .part, nothing the loader reads
    with pytest.raises(UserError, match="lacks t10k-images"):
        load_dataset("mnist", spec_784(), str(tmp_path / "data"))


def test_interrupted_transfer_resumes_with_range(server, tmp_path, capsys):
    size = len(server.files[TRAIN_IMAGES])
    cut = size // 2
    server.drop_after[TRAIN_IMAGES] = cut
    folder = tmp_path / "data" / "mnist"
    code, out, err = cli(capsys, "mnist", "--dir", str(tmp_path / "data"))
    line = one_error_line(err)
    assert code == 1 and "broke off" in line and "run the command again to resume" in line
    assert not (folder / TRAIN_IMAGES).exists()
    assert (folder / f"{TRAIN_IMAGES}.part").stat().st_size == cut

    server.requests.clear()
    code, out, err = cli(capsys, "mnist", "--dir", str(tmp_path / "data"))
    assert code == 0, err
    assert server.requests[0] == (TRAIN_IMAGES, f"bytes={cut}-")
    assert (folder / TRAIN_IMAGES).read_bytes() == server.files[TRAIN_IMAGES] and _leftovers(folder) == []
    assert "resumed at" in out


def test_ctrl_c_keeps_the_part_for_the_next_run(server, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(download, "CHUNK", 1000)
    real = download._fetch

    def interrupted(url, remote, part, final, report):
        def report_then_stop(event):
            if event.kind == "bytes" and event.done >= 3000:
                raise KeyboardInterrupt
            report(event)
        return real(url, remote, part, final, report_then_stop)

    monkeypatch.setattr(download, "_fetch", interrupted)
    code, out, err = cli(capsys, "mnist", "--dir", str(tmp_path / "data"))
    folder = tmp_path / "data" / "mnist"
    assert code == 130 and err.strip() == "graphvae: interrupted"
    assert not (folder / TRAIN_IMAGES).exists() and (folder / f"{TRAIN_IMAGES}.part").stat().st_size == 3000

    monkeypatch.setattr(download, "_fetch", real)
    server.requests.clear()
    assert cli(capsys, "mnist", "--dir", str(tmp_path / "data"))[0] == 0
    assert server.requests[0] == (TRAIN_IMAGES, "bytes=3000-")
    assert (folder / TRAIN_IMAGES).read_bytes() == server.files[TRAIN_IMAGES]

def test_server_ignoring_range_restarts_from_zero(server, tmp_path, capsys):
    server.ignore_range = True
    folder = tmp_path / "data" / "mnist"
    folder.mkdir(parents=True)
    (folder / f"{TRAIN_IMAGES}.part").write_bytes(b"\x00" * 100)  # wrong bytes: a resume would be refused
    code, out, err = cli(capsys, "mnist", "--dir", str(tmp_path / "data"))
    assert code == 0, err
    assert (TRAIN_IMAGES, "bytes=100-") in server.requests
    assert [r for r in server.requests if r[0] == TRAIN_IMAGES] == [(TRAIN_IMAGES, "bytes=100-")]  # one request
    assert (folder / TRAIN_IMAGES).read_bytes() == server.files[TRAIN_IMAGES] and _leftovers(folder) == []


def test_bad_resumed_part_is_fetched_again_from_zero(server, tmp_path, capsys):
    folder = tmp_path / "data" / "mnist"
    folder.mkdir(parents=True)
    (folder / f"{TRAIN_IMAGES}.part").write_bytes(b"\x00" * 100)  # the server honours the range this time
    code, out, err = cli(capsys, "mnist", "--dir", str(tmp_path / "data"))
    assert code == 0, err
    assert [r for r in server.requests if r[0] == TRAIN_IMAGES] == [(TRAIN_IMAGES, "bytes=100-"), (TRAIN_IMAGES, None)]
    assert (folder / TRAIN_IMAGES).read_bytes() == server.files[TRAIN_IMAGES]


def test_more_than_the_published_size_is_refused(server, tmp_path, capsys):
    server.files[NAMES[1]] += b"more"
    code, out, err = cli(capsys, "mnist", "--dir", str(tmp_path / "data"))
    line = one_error_line(err)
    assert code == 1 and f"the server offers {len(server.files[NAMES[1]])} bytes, the published file has" in line
    assert _leftovers(tmp_path / "data" / "mnist") == [] and not (tmp_path / "data" / "mnist" / NAMES[1]).exists()


def test_a_mirror_that_is_no_url_is_one_line(server, tmp_path, capsys):
    code, out, err = cli(capsys, "mnist", "--dir", str(tmp_path / "data"), "--mirror", "notaurl")
    assert code == 1 and "is not an http:// or https:// URL" in one_error_line(err)

def test_no_server_is_one_line_with_the_manual_way(server, tmp_path, capsys):
    code, out, err = cli(capsys, "mnist", "--dir", str(tmp_path / "data"), "--mirror",
                         f"http://127.0.0.1:{_closed_port()}/mnist/")
    line = one_error_line(err)
    assert code == 1 and "cannot reach any mnist mirror" in line and "no network?" in line
    assert all(name in line for name in NAMES) and str(tmp_path / "data" / "mnist") in line and "--data-dir" in line
    assert _leftovers(tmp_path / "data" / "mnist") == []


def test_server_error_is_one_line(server, tmp_path, capsys):
    server.status = 500
    code, out, err = cli(capsys, "mnist", "--dir", str(tmp_path / "data"))
    line = one_error_line(err)
    assert code == 1 and "HTTP 500" in line and "by hand" in line
    assert _leftovers(tmp_path / "data" / "mnist") == []


def test_unwritable_dir_is_one_line(server, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    code, out, err = cli(capsys, "mnist", "--dir", str(tmp_path / "file"))
    assert code == 1 and "is a file, not a folder" in one_error_line(err)
    assert server.requests == []



@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_read_only_dir_is_one_line(server, tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        code, out, err = cli(capsys, "mnist", "--dir", str(locked))
        assert code == 1 and "cannot create" in one_error_line(err) and server.requests == []
    finally:
        locked.chmod(0o755)

def test_unknown_dataset_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["data", "download", "cifar"])
    assert stop.value.code == 2 and "invalid choice: 'cifar'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        main(["data"])
    assert stop.value.code == 2
    with pytest.raises(UserError, match="unknown dataset"):
        download_dataset("cifar")


def test_progress_bar_only_on_a_terminal(server, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("graphvae.cli.data._is_tty", lambda stream: True)
    code, out, err = cli(capsys, "mnist", "--dir", str(tmp_path / "data"))
    assert code == 0
    assert "\r" in err and "[" in err and "100%" in err
    assert err.endswith("\r")  # each bar is blanked before its file's line
    assert out.count("SHA-256 verified") == 4


# -- the real table ----------------------------------------------------------------------------

def test_published_table():
    for source in SOURCES.values():
        assert [f.name for f in source.files] == NAMES and source.mirrors
        assert all(m.startswith(("http://", "https://")) and m.endswith("/") for m in source.mirrors)
        for f in source.files:
            assert len(f.sha256) == 64 and int(f.sha256, 16) >= 0 and f.size > 0


@pytest.mark.skipif(not MNIST_DIR.is_dir(), reason="no MNIST copy in the shared data folder")
def test_shared_mnist_copy_counts_as_present(tmp_path, monkeypatch, capsys):
    """The shared copies are recompressed: their .gz digests differ from the published ones, but their
    decompressed bytes match the published content digests, so a download finds them present (and
    needs no network)."""
    folder = tmp_path / "mnist"
    folder.mkdir()
    for name in NAMES:
        (folder / name).symlink_to(MNIST_DIR / name)
    assert all(is_verified(folder / f.name, f) for f in SOURCES["mnist"].files)
    code, out, err = cli(capsys, "mnist", "--dir", str(tmp_path), "--mirror", f"http://127.0.0.1:{_closed_port()}/")
    assert code == 0 and out.count("already there, verified") == 4
    shutil.rmtree(folder)


@pytest.mark.skipif(not MNIST_DIR.is_dir(), reason="no MNIST copy in the shared data folder")
def test_a_mirror_serving_a_recompressed_copy(server, tmp_path, monkeypatch, capsys):
    """A local mirror of the shared (recompressed) copies, against the real MNIST table: the .gz digests
    differ, the content digests pass; 11 MB over loopback."""
    monkeypatch.setitem(SOURCES, "mnist", download.MNIST)
    server.files = {name: (MNIST_DIR / name).read_bytes() for name in NAMES}
    code, out, err = cli(capsys, "mnist", "--dir", str(tmp_path), "--mirror", server.url)
    assert code == 0, err
    assert all((tmp_path / "mnist" / name).read_bytes() == server.files[name] for name in NAMES)
    assert out.count("a recompressed copy, its data's SHA-256 verified") == 4 and "9.63 MB from" in out
