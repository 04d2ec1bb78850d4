"""Run folders, checkpoints, output paths and the CLI under odd input: one line, exit 1 (2 for usage),
never a traceback, and no user file changed.

Checkpoints with an odd structure (loaded as format 2, which has no digest, so that the structure
checks are what refuse them), bit flips (caught by the format 3 digest), run-folder files edited
after training, ``--out`` onto folders, files, devices and unwritable places, Ctrl-C while the
command imports, SIGTERM during training, and allocations too large for the machine.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap

import pytest
import torch
from conftest import tiny_m2

from graphvae.cli import main
from graphvae.errors import UserError
from graphvae.train.checkpoint import CHECKPOINT_FORMAT, load_checkpoint
from graphvae.train.runfolder import RunFolder

torch.set_num_threads(1)

SPEC = tiny_m2(2, objective="alpha = 0.1\n  y     = enumerate", train="""  data       = digits
  epochs     = 1
  batch_size = 300
  labels     = 50
  labelled_per_batch = 20""")
FLAGS = ["--no-progress", "--device", "cpu"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished one-epoch run of the tiny M2 on digits (copied by each test that changes it)."""
    tmp = tmp_path_factory.mktemp("trained")
    spec = tmp / "tiny.gvae"
    spec.write_text(SPEC)
    assert main(["train", str(spec), "--out", str(tmp / "run")] + FLAGS) == 0
    return spec, tmp / "run"


@pytest.fixture
def run(trained, tmp_path):
    shutil.copytree(trained[1], tmp_path / "run")
    return tmp_path / "run"


def _files(folder) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _one_line_error(capsys, code, expected_code=1) -> str:
    captured = capsys.readouterr()
    assert code == expected_code, captured.err
    assert "Traceback" not in captured.err + captured.out
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("graphvae: error: "), captured.err
    return lines[0]


def _write_old(path, state) -> None:
    """Save ``state`` as a format 2 checkpoint (no digest, no recorded files): only structure checks apply."""
    state = dict(state)
    state.pop("digest", None)
    state.pop("files", None)
    if state.get("format") == CHECKPOINT_FORMAT:
        state["format"] = 2
    torch.save(state, path)


def _argv(command: str, run, tmp_path) -> list[str]:
    return {"resume": ["train", "--resume", str(run), "--epochs", "2"] + FLAGS,
            "eval": ["eval", str(run), "-k", "0", "--checkpoint", "last", "--device", "cpu"],
            "sample": ["sample", str(run), "--out", str(tmp_path / "figs"), "--checkpoint", "last", "--device", "cpu"],
            "plot": ["plot", str(run), "-o", str(tmp_path / "curves.png")],
            "baseline": ["baseline", str(run)] + FLAGS}[command]


def _set(key, value):
    def change(state):
        state[key] = value
    return change


def _drop(key):
    def change(state):
        del state[key]
    return change


def _rng_torch(state):
    state["rng"]["torch"] = torch.zeros(10, dtype=torch.uint8)


def _adam_shape(state):
    first = next(iter(state["optimizer"]["state"]))
    state["optimizer"]["state"][first]["exp_avg"] = torch.zeros(3)


def _selection(state):
    state["extra"]["selection"] = {"rule": 1}


def _optimizer(group_key=None, value=None, state_key=None):
    def change(state):
        opt = state["optimizer"]
        if group_key is not None:
            opt["param_groups"][0][group_key] = value
        else:
            first = next(iter(opt["state"]))
            if value == "del":
                del opt["state"][first][state_key]
            else:
                opt["state"][first][state_key] = value
    change.__name__ = f"optimizer_{group_key or state_key}_{str(value)[:10]}"
    return change


def _params_dict(state):
    state["optimizer"]["param_groups"][0]["params"][0] = {}


def _numpy_keys(state):
    state["rng"]["numpy"]["keys"] = torch.zeros(5, dtype=torch.int64)


# -- checkpoints with an odd structure ------------------------------------------------------------
@pytest.mark.parametrize("change, commands, message", [
    (_set("format", "x"), ["resume", "eval", "sample", "baseline"], "'format' must be a whole number, not 'x'"),
    (_set("model", [1, 2]), ["resume", "eval"], "'model' must be a dict of tensors, not a list"),
    (_set("model", {"w": 3}), ["eval"], "'model' must map parameter names to tensors"),
    (_drop("config"), ["resume", "eval", "baseline"], "'config' is missing"),
    (_set("config", [1]), ["eval"], "'config' must be a dict of settings, not a list"),
    (_drop("extra"), ["resume"], "'extra' is missing"),
    (_drop("rng"), ["resume"], "'rng' is missing"),
    (_set("step", "abc"), ["resume", "eval"], "'step' must be a whole number >= 0, not 'abc'"),
    (_set("epoch", -3), ["eval"], "'epoch' must be a whole number >= 0, not '-3'"),
    (_set("spec", 12345), ["resume", "eval", "sample"], "'spec' must be the spec's text, not a int"),
    (_set("spec_suffix", ".exe"), ["eval"], "'spec_suffix' must be .gvae or .yaml"),
    (_set("optimizer", {}), ["resume"], "'optimizer' is not an optimiser state"),
    (_set("optimizer", [1]), ["resume"], "'optimizer' must be a dict, not a list"),
    (_adam_shape, ["resume"], "its optimiser state does not fit the model (exp_avg of parameter"),
    (_optimizer("betas", 0), ["resume"], "its optimiser state does not fit the model (hyperparameter betas is 0)"),
    (_params_dict, ["resume"], "parameter groups must list distinct parameter numbers"),
    (_optimizer(state_key="exp_avg", value="del"), ["resume"], "state holds step, exp_avg_sq, not step, exp_avg"),
    (_optimizer(state_key="exp_avg", value=1.5), ["resume"], "exp_avg of parameter 0 has float, not shape"),
    (_optimizer(state_key="step", value=torch.tensor(-1.0)), ["resume"], "step of parameter 0 is -1.0"),
    (_rng_torch, ["resume"], "'rng.torch' is not a torch RNG state"),
    (_numpy_keys, ["resume"], "'rng.numpy' is not a numpy RNG state"),
    (_selection, ["resume"], "'extra.selection' must hold rule"),
    (_set("scheduler", "x"), ["resume"], "'scheduler' must be a dict or None, not a str"),
], ids=lambda v: v.__name__ if callable(v) else None)
def test_odd_checkpoint_structure_is_one_line(run, tmp_path, capsys, change, commands, message):
    state = load_checkpoint(run / "last.pt")
    change(state)
    _write_old(run / "last.pt", state)
    _write_old(run / "best.pt", state)
    before = _files(run)
    for command in commands:
        line = _one_line_error(capsys, main(_argv(command, run, tmp_path)))
        assert message in line and f"{run / 'last.pt'}: not a valid graphvae checkpoint" in line or \
            message in line, (command, line)
        assert _files(run) == before, command
        assert not (tmp_path / "figs").exists()


# -- run-folder files edited or damaged after training ---------------------------------------------
def _labelled_three(run):
    (run / "labelled.json").write_text('{"count": 3, "indices": [0, 1, 2]}')


def _labelled_deep(run):
    (run / "labelled.json").write_text("[" * 100_000 + "]" * 100_000)


def _labelled_deep_old(run):
    _labelled_deep(run)
    for which in ("last", "best"):
        _write_old(run / f"{which}.pt", load_checkpoint(run / f"{which}.pt"))


def _labelled_missing(run):
    (run / "labelled.json").unlink()


def _metrics_deep(run):
    (run / "metrics.jsonl").write_text("[" * 100_000 + "]" * 100_000 + "\n")


def _metrics_list_row(run):
    (run / "metrics.jsonl").write_text("[1, 2]\n")


def _metrics_epoch_text(run):
    (run / "metrics.jsonl").write_text('{"epoch": "one"}\n')


def _spec_not_utf8(run):
    (run / "spec.gvae").write_bytes(b"\xff\xfe model m\n")


def _bit_flip_in_weights(run):
    """Flip one bit inside a tensor's bytes: the file still loads, with a changed weight."""
    state = load_checkpoint(run / "last.pt")
    data = bytearray((run / "last.pt").read_bytes())
    weights = next(t for t in state["model"].values() if t.numel() >= 16).numpy().tobytes()
    at = data.find(weights)
    assert at > 0
    data[at + 5] ^= 0x10
    (run / "last.pt").write_bytes(bytes(data))
    shutil.copy(run / "last.pt", run / "best.pt")


def _digest_removed(run):
    state = load_checkpoint(run / "last.pt")
    del state["digest"]
    torch.save(state, run / "last.pt")  # format 3 says it has a digest
    shutil.copy(run / "last.pt", run / "best.pt")


@pytest.mark.parametrize("damage, commands, message", [
    (_labelled_three, ["resume", "eval", "baseline"], "labelled.json was changed after training (its sha256 differs"),
    (_labelled_deep, ["resume"], "labelled.json was changed after training"),
    (_labelled_deep_old, ["resume", "eval"], "labelled.json: not a valid file of graphvae's (JSON nested too deeply)"),
    (_labelled_missing, ["eval"], "labelled.json is missing; "),
    (_metrics_deep, ["resume", "plot"], "metrics.jsonl:1: not a metrics row (JSON nested too deeply)"),
    (_metrics_list_row, ["plot"], "metrics.jsonl:1: not a metrics row"),
    (_metrics_epoch_text, ["resume"], "metrics.jsonl:1: not a metrics row"),
    (_spec_not_utf8, ["resume", "eval", "sample", "baseline"], "spec.gvae: not UTF-8 text (byte 0)"),
    (_bit_flip_in_weights, ["eval", "resume"], "corrupt checkpoint (its contents do not match the sha256 digest"),
    (_digest_removed, ["eval"], "corrupt checkpoint (format 3 without its sha256 digest)"),
], ids=lambda v: v.__name__ if callable(v) else None)
def test_damaged_run_folder_is_one_line(run, tmp_path, capsys, damage, commands, message):
    damage(run)
    before = _files(run)
    for command in commands:
        line = _one_line_error(capsys, main(_argv(command, run, tmp_path)))
        assert message in line, (command, line)
        assert _files(run) == before, command


def test_random_bit_flips_never_load_changed_contents(trained, tmp_path):
    """Any single flipped bit either fails to load (one line) or loads the very same contents."""
    good = load_checkpoint(trained[1] / "last.pt")
    data = (trained[1] / "last.pt").read_bytes()
    rng = random.Random(0)
    refused = 0
    for i in range(40):
        damaged = bytearray(data)
        damaged[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        path = tmp_path / f"flip{i}.pt"
        path.write_bytes(bytes(damaged))
        try:
            state = load_checkpoint(path)
        except UserError as exc:
            assert "\n" not in str(exc)
            refused += 1
            continue
        assert state["digest"] == good["digest"]
        assert all(torch.equal(state["model"][k], good["model"][k]) for k in good["model"])
    assert refused >= 30


def test_an_older_checkpoint_without_digest_still_loads(run, capsys):
    state = load_checkpoint(run / "last.pt")
    _write_old(run / "last.pt", state)
    assert load_checkpoint(run / "last.pt")["format"] == 2
    assert main(["eval", str(run), "-k", "0", "--checkpoint", "last"]) == 0


# -- before the first checkpoint, new runs and SIGTERM ---------------------------------------------
def test_resume_before_the_first_checkpoint_says_how_to_start(trained, run, capsys):
    for which in ("last", "best"):
        (run / f"{which}.pt").unlink()
    line = _one_line_error(capsys, main(["train", "--resume", str(run)] + FLAGS))
    assert "no checkpoint yet" in line and f"start it again with 'graphvae train SPEC --out {run}'" in line
    assert main(["train", str(trained[0]), "--out", str(run)] + FLAGS) == 0  # which starts it
    assert (run / "last.pt").is_file()


@pytest.mark.parametrize("setup, allowed", [
    ("missing", True), ("empty", True), ("run", True), ("run, spec edited", False), ("user files", False),
    ("stale temps only", True), ("file", False), ("killed while laid out", True),
])
def test_what_may_take_a_new_run(tmp_path, setup, allowed):
    folder = RunFolder(tmp_path / "out")
    if setup != "missing" and setup != "file":
        folder.path.mkdir()
    if setup.startswith("run"):
        folder.create("model m\n", ".gvae", {})
        if "edited" in setup:
            (folder.path / "spec.gvae").write_text("model other\n")
    elif setup == "user files":
        for name in ("config.json", "metrics.jsonl", "spec.gvae", "spec.sha256", "spec.yaml"):
            (folder.path / name).write_text("mine\n")
    elif setup == "killed while laid out":  # create() stopped after the spec: no spec.sha256 nor config.json
        (folder.path / ".graphvae-creating").write_text("")
        (folder.path / "spec.gvae").write_text("model m\n")
    elif setup == "stale temps only":
        (folder.path / ".spec.gvae.abc.tmp").write_text("half")
    elif setup == "file":
        folder.path.write_text("mine")
    if allowed:
        folder.check_new_run_place()
    else:
        with pytest.raises(UserError):
            folder.check_new_run_place()


def test_train_into_a_folder_of_user_files_is_refused_untouched(trained, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    for name in ("config.json", "metrics.jsonl", "labelled.json", "spec.gvae", "spec.sha256", "spec.yaml"):
        (out / name).write_text(f"my own {name}\n")
    before = _files(out)
    line = _one_line_error(capsys, main(["train", str(trained[0]), "--out", str(out)] + FLAGS))
    assert "is not empty and is not a graphvae run folder" in line and "nothing was written" in line
    assert _files(out) == before


def test_sigterm_saves_like_ctrl_c(tmp_path, monkeypatch, capsys):
    from graphvae.compile.model import CompiledModel

    spec = tmp_path / "tiny.gvae"
    spec.write_text(SPEC)
    calls = {"n": 0}
    original = CompiledModel.loss

    def loss_then_sigterm(self, batch, terms=False, layout=None):
        calls["n"] += 1
        if calls["n"] == 2:
            signal.raise_signal(signal.SIGTERM)
        return original(self, batch, terms=terms, layout=layout)

    monkeypatch.setattr(CompiledModel, "loss", loss_then_sigterm)
    code = main(["train", str(spec), "--out", str(tmp_path / "run")] + FLAGS)
    out = capsys.readouterr()
    assert code == 130 and f"graphvae train --resume {tmp_path / 'run'}" in out.out + out.err
    state = load_checkpoint(tmp_path / "run" / "last.pt")
    assert state["step"] == 2 and state["epoch"] == 0
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handler restored


# -- output paths ---------------------------------------------------------------------------------
def _place(tmp_path, kind: str):
    """An output path of ``kind``; the user's file ``tmp/mine.txt`` stands beside it."""
    (tmp_path / "mine.txt").write_text("mine")
    (tmp_path / "folder.png").mkdir(exist_ok=True)
    (tmp_path / "folder.dot").mkdir(exist_ok=True)
    return {"folder": tmp_path / "folder.png", "under a file": tmp_path / "mine.txt" / "x.png",
            "the file": tmp_path / "mine.txt", "unwritable": "/proc/graphvae-test/x.png", "/dev/full": "/dev/full",
            "new folder": tmp_path / "new" / "sub" / "x.png"}[kind]


@pytest.mark.parametrize("command, kind, message", [
    ("render", "folder", "is a folder; -o names the file to write"),
    ("render", "under a file", "is a file, not a folder"),
    ("render", "unwritable", "cannot create the folder '/proc/graphvae-test'"),
    ("render-dot", "/dev/full", "cannot write '/dev/full': No space left on device"),
    ("render-latex", "/dev/full", "the output must end in .tex"),
    ("render", "new folder", None),
    ("plot", "folder", "is a folder; -o names the file to write"),
    ("plot", "under a file", "is a file, not a folder"),
    ("plot", "unwritable", "cannot create the folder '/proc/graphvae-test'"),
    ("plot", "new folder", None),
    ("sample", "the file", "is a file, not a folder; --out names a folder"),
    ("sample", "under a file", "is a file, not a folder"),
    ("sample", "/dev/full", "is a file, not a folder; --out names a folder"),
    ("sample", "unwritable", "cannot create the folder '/proc/graphvae-test/x.png'"),
    ("train", "the file", "is a file, not a folder; --out names the run folder"),
    ("train", "under a file", "cannot create the run folder"),
    ("train", "unwritable", "cannot create the run folder /proc/graphvae-test/x.png"),
])
def test_output_paths(trained, tmp_path, capsys, command, kind, message):
    spec, run = trained
    out = str(_place(tmp_path, kind))
    if command == "render-dot":  # /dev/full has no suffix: a .dot symlink to it
        os.symlink("/dev/full", tmp_path / "full.dot")
        out = str(tmp_path / "full.dot")
    argv = {"render": ["render", str(spec), "-o", out.replace(".png", ".dot")],
            "render-dot": ["render", str(spec), "-o", out],
            "render-latex": ["render", str(spec), "--latex", "-o", out],
            "plot": ["plot", str(run), "-o", out],
            "sample": ["sample", str(run), "--out", out, "--device", "cpu"],
            "train": ["train", str(spec), "--out", out] + FLAGS}[command]
    before = _files(run)
    code = main(argv)
    if message is None:
        assert code == 0 and os.path.isfile(out.replace(".png", ".dot") if command == "render" else out)
        capsys.readouterr()
    else:
        assert message in _one_line_error(capsys, code)
    assert (tmp_path / "mine.txt").read_text() == "mine" and _files(run) == before


def test_disk_full_keeps_the_previous_checkpoint(run, monkeypatch, capsys):
    import errno

    before = (run / "last.pt").read_bytes()

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    line = _one_line_error(capsys, main(["train", "--resume", str(run), "--epochs", "2"] + FLAGS))
    assert "No space left on device; the previous file is kept" in line
    assert (run / "last.pt").read_bytes() == before
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]


def test_fmt_in_place_writes_through_a_symlink(tmp_path, capsys):
    target = tmp_path / "real.gvae"
    target.write_text(SPEC.replace("x : observed   binary[64]", "x :   observed binary[64]"))
    link = tmp_path / "link.gvae"
    link.symlink_to(target)
    assert main(["fmt", str(target)]) == 0
    canonical = capsys.readouterr().out
    assert canonical != target.read_text()
    assert main(["fmt", "-i", str(link)]) == 0
    assert link.is_symlink() and target.read_text() == canonical


# -- Ctrl-C while importing, allocation failures ----------------------------------------------------
INTERRUPT_IMPORT = textwrap.dedent("""
    import importlib, os, runpy, signal, sys
    real = importlib.import_module

    def interrupted(name, *args):
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C as the command's module imports
        return real(name, *args)

    importlib.import_module = interrupted
    sys.argv = ["graphvae", "check", "missing.gvae"]
    runpy.run_module("graphvae", run_name="__main__")
""")


def test_ctrl_c_while_the_command_imports(tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    # Ctrl-C as a terminal delivers it: SIGINT at its default, even where this suite runs as a shell's
    # background job (which starts with SIGINT ignored, and a child would inherit that)
    done = subprocess.run([sys.executable, "-c", INTERRUPT_IMPORT], capture_output=True, text=True, timeout=60,
                          cwd=tmp_path, env=env, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert done.returncode == 130 and done.stderr == "graphvae: interrupted\n"


def test_ctrl_c_while_parsing(monkeypatch, capsys):
    from graphvae.cli import parser

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(parser, "build_parser", interrupted)
    assert main(["check", "x.gvae"]) == 130
    assert capsys.readouterr().err == "graphvae: interrupted\n"


@pytest.mark.parametrize("error, message", [
    (MemoryError(), "out of memory: MemoryError"),
    (RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: not enough memory: you tried to "
                  "allocate 400000000000 bytes."), "out of memory: an allocation of 372.5 GiB failed"),
    (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB (GPU 0; 79 GiB total)"),
     "out of memory: an allocation of 20.00 GiB failed"),
])
def test_allocation_failures_are_one_line(monkeypatch, capsys, error, message):
    from graphvae.cli import eval as eval_command

    def fail(args):
        raise error

    monkeypatch.setattr(eval_command, "run", fail)
    assert message in _one_line_error(capsys, main(["eval", "RUN"]))


def test_other_runtime_errors_are_not_hidden(monkeypatch):
    from graphvae.cli import eval as eval_command

    def fail(args):
        raise RuntimeError("a bug")

    monkeypatch.setattr(eval_command, "run", fail)
    with pytest.raises(RuntimeError, match="a bug"):
        main(["eval", "RUN"])


@pytest.mark.parametrize("argv, message", [
    (["eval", "{run}", "-k", "100000000"], "-k 100000000 is too large: IWAE draws K samples for each of 250"),
    (["sample", "{run}", "--out", "{tmp}/figs", "--n", "100000"], "--n 100000 is too large: a grid has at most 500"),
    (["sample", "{run}", "--out", "{tmp}/figs", "--n", "0"], "--n must be at least 1 (columns per grid), got 0"),
    (["sample", "{run}", "--out", "{tmp}/figs", "--seed", str(2 ** 65)], "--seed must be below 2^63"),
    (["sample", "{run}", "--out", "{tmp}/figs", "--seed", "-5"], "--seed must be non-negative, got -5"),
])
def test_flags_too_large_for_memory_are_refused_up_front(trained, tmp_path, capsys, argv, message):
    argv = [a.format(run=trained[1], tmp=tmp_path) for a in argv]
    assert message in _one_line_error(capsys, main(argv))
    assert not (tmp_path / "figs").exists()


@pytest.mark.skipif(not os.path.exists("/proc/sys/vm/overcommit_memory")
                    or open("/proc/sys/vm/overcommit_memory").read().strip() != "0",
                    reason="needs Linux's heuristic overcommit, which refuses an allocation beyond all memory at once")
def test_a_real_allocator_failure_is_one_line(monkeypatch, capsys):
    from graphvae.cli import eval as eval_command

    def allocate(args):
        torch.empty(10 ** 13)  # 40 TB: refused at once, nothing touched

    monkeypatch.setattr(eval_command, "run", allocate)
    line = _one_line_error(capsys, main(["eval", "RUN"]))
    assert "out of memory: an allocation of 36.4 TiB failed" in line


@pytest.mark.parametrize("name", ["metrics.jsonl", "labelled.json", "spec.sha256"])
def test_a_folder_in_place_of_a_run_file_is_one_line(run, tmp_path, capsys, name):
    (run / name).unlink()
    (run / name).mkdir()
    command = "plot" if name == "metrics.jsonl" else "eval"
    _one_line_error(capsys, main(_argv(command, run, tmp_path)))


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd", "rmsprop"])
def test_every_optimizer_state_passes_the_checks_on_resume(tmp_path, optimizer):
    """The optimiser-state checks refuse nothing a real run of each optimiser saves."""
    from graphvae.spec.loader import load_spec_file
    from graphvae.train import config as trainconfig
    from graphvae.train.loop import train

    spec = tmp_path / "tiny.gvae"
    spec.write_text(SPEC)
    cfg = trainconfig.resolve(load_spec_file(spec)[0], {"device": "cpu", "optimizer": optimizer, "epochs": 1})
    quiet = dict(progress=False, log=lambda *_: None)
    assert train(spec, cfg, tmp_path / "run", max_steps=2, **quiet).interrupted
    assert not train(None, None, tmp_path / "run", resume=True, **quiet).interrupted


def test_mutated_checkpoints_never_crash_resume(trained, tmp_path, capsys):
    """A few seeded mutations of a real checkpoint (a field deleted, or set to a value of another
    kind, anywhere in it): resuming says one line or runs, never a traceback."""
    import copy

    good = load_checkpoint(trained[1] / "last.pt")

    def paths(obj, prefix=()):
        items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) and len(obj) < 20 \
            else ()
        for key, value in items:
            yield prefix + (key,)
            if not isinstance(value, torch.Tensor):
                yield from paths(value, prefix + (key,))

    where = list(paths(good))
    values = [None, -1, 1.5, float("nan"), "x", [], {}, [1, 2], torch.zeros(3), True, 10 ** 30]
    rng = random.Random(11)
    for trial in range(25):
        state, path = copy.deepcopy(good), rng.choice(where)
        parent = state
        for key in path[:-1]:
            parent = parent[key]
        if isinstance(parent, dict) and rng.random() < 0.3:
            del parent[path[-1]]
        else:
            parent[path[-1]] = rng.choice(values)
        run = tmp_path / f"run{trial}"
        shutil.copytree(trained[1], run)
        _write_old(run / "last.pt", state)
        code = main(["train", "--resume", str(run), "--epochs", "2"] + FLAGS)
        if code != 0:
            _one_line_error(capsys, code)
        capsys.readouterr()


@pytest.mark.parametrize("argv", [["sample", "RUN"], ["plot"], ["render"], ["eval", "RUN", "--checkpoint", "middle"],
                                  ["train", "--resume"], ["eval", "RUN", "-k", "many"]])
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err
    assert info.value.code == 2 and "usage:" in err and "Traceback" not in err


@pytest.mark.parametrize("k, free, refused", [(1, 10 ** 12, False), (1000, 10 ** 6, True), (0, 1, False)])
def test_the_iwae_memory_estimate(trained, k, free, refused):
    from graphvae.cli.eval import check_samples
    from graphvae.spec.loader import load_spec

    spec = load_spec(str(trained[0]))
    if refused:
        with pytest.raises(UserError, match=f"-k {k} is too large"):
            check_samples(k, spec, free=free)
    else:
        check_samples(k, spec, free=free)
