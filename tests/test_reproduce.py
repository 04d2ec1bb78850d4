"""benchmarks/reproduce.py on a tiny table (digits, 2 label counts x 1 seed x 1 epoch), the papers'
specs (check, fmt, compile, their recipes), and the trainer's autocast setting."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import reproduce  # noqa: E402

from graphvae.compile.compiler import compile_spec  # noqa: E402
from graphvae.spec.loader import load_spec_file  # noqa: E402
from graphvae.spec.settings import TrainConfig  # noqa: E402
from graphvae.train import config as trainconfig  # noqa: E402
from graphvae.train.checkpoint import load_checkpoint  # noqa: E402
from graphvae.train.loop import train  # noqa: E402

torch.set_num_threads(1)

TABLE = ["--models", "digits_m2", "--labels", "50,100", "--seeds", "0", "--epochs", "1",
         "--set", "batch_size=300", "--parallel", "2"]
FIELDS = {"model", "labels", "seed", "epochs", "planned_epochs", "test_error_best", "test_error_final",
          "baseline_test_error", "seconds_per_epoch", "device"}


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    out = tmp_path_factory.mktemp("reproduce")
    assert reproduce.main(["--out", str(out), *TABLE]) == 0
    return out


def test_cells_are_run_folders_with_baselines(table):
    for labels in (50, 100):
        run = table / "digits_m2" / f"n{labels}" / "s0"
        for folder in (run, run / "baseline"):
            assert (folder / "best.pt").is_file() and (folder / "last.pt").is_file()
        config = json.loads((run / "config.json").read_text())
        assert (config["labels"], config["epochs"], config["batch_size"], config["device"]) == (labels, 1, 300, "cpu")
    assert (table / "curves.png").stat().st_size > 0


def test_results_json_has_every_field(table):
    cells = json.loads((table / "results.json").read_text())["cells"]
    assert sorted((c["model"], c["labels"], c["seed"]) for c in cells) == [("digits_m2", 50, 0), ("digits_m2", 100, 0)]
    for c in cells:
        assert FIELDS <= set(c)
        assert (c["epochs"], c["planned_epochs"], c["device"]) == (1, 50, "cpu")
        for key in ("test_error_best", "test_error_final", "baseline_test_error"):
            assert 0 <= c[key] <= 100
        assert c["seconds_per_epoch"] > 0


def test_table_rows_and_marks(table):
    text = (table / "table.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| digits_m2 |")]
    assert [r.split("|")[2].strip() for r in rows] == ["50", "100"]
    assert all("(1 of 50 epochs)" in r and " ± " not in r for r in rows)  # one seed: no sd
    assert "capped by --epochs 1: 2 cells" in text


def test_resume_runs_nothing_new(table, capsys):
    before = (table / "digits_m2" / "n50" / "s0" / "last.pt").read_bytes()
    assert reproduce.main(["--out", str(table), *TABLE]) == 0
    out = capsys.readouterr().out
    assert "nothing to run" in out and "start " not in out
    assert (table / "digits_m2" / "n50" / "s0" / "last.pt").read_bytes() == before


def test_budget_zero_starts_nothing_and_says_so(table, capsys):
    args = ["--out", str(table), *TABLE]
    args[args.index("--seeds") + 1] = "0,1"
    assert reproduce.main([*args, "--budget", "0"]) == 0
    out = capsys.readouterr().out
    assert "start " not in out
    assert "not started, --budget 0.0 h spent: 2 cells (digits_m2 labels=50 seed=1, digits_m2 labels=100 seed=1)" in out
    assert "(1 of 50 epochs; 1 of 2 seeds)" in out
    assert not (table / "digits_m2" / "n50" / "s1").exists()


def test_summary_only_prints(table, capsys):
    assert reproduce.main(["--out", str(table), *TABLE, "--seeds", "0,1", "--summary"]) == 0
    out = capsys.readouterr().out
    assert "start " not in out and "| digits_m2 | 100 |" in out
    assert not (table / "digits_m2" / "n100" / "s1").exists()


def test_a_larger_cap_resumes_a_cell_and_results_keep_the_others(table, capsys):
    run = table / "digits_m2" / "n50" / "s0"
    args = ["--out", str(table), *TABLE]
    args[args.index("--labels") + 1], args[args.index("--epochs") + 1] = "50", "2"
    assert reproduce.main(args) == 0
    out = capsys.readouterr().out
    assert "train --resume" in out and "(2 of 50 epochs)" in out
    for folder in (run, run / "baseline"):
        assert [json.loads(line)["epoch"] for line in (folder / "metrics.jsonl").read_text().splitlines()] == [1, 2]
    cells = json.loads((table / "results.json").read_text())["cells"]
    assert [(c["labels"], c["epochs"]) for c in cells] == [(50, 2), (100, 1)]
    at = cells[0]["test_error_at"]
    assert set(at) == {"1", "2"} and at["2"] == cells[0]["test_error_final"]


def test_papers_figures_and_the_adgm_log():
    assert reproduce.PAPERS["kingma_m2"][1] == {100: 11.97, 600: 4.94, 1000: 3.60, 3000: 3.92}
    assert reproduce.PAPERS["siddharth_mnist"][1] == {100: 9.71, 600: 3.84, 1000: 2.88, 3000: 1.57}
    assert reproduce.PAPERS["adgm"][1] == {100: 0.96} and reproduce.PAPERS["sdgm"][1] == {100: 1.32}
    assert reproduce.ADGM_LOG == {10: 17.3, 50: 14.6}


def test_adgm_beside_the_public_log_at_the_epochs_reached(tmp_path):
    run = tmp_path / "adgm" / "n100" / "s0"
    run.mkdir(parents=True)
    rows = [{"epoch": e, "val/error/y": 0.5 - 0.02 * e} for e in range(1, 13)]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cell = {"model": "adgm", "labels": 100, "seed": 0, "run": run, "spec": ROOT / "specs" / "adgm.gvae"}
    lines = reproduce.adgm_log_lines([cell], {"adgm/n100/s0": {"test_error_at": {"10": 21.5, "12": 20.0}}})
    assert "10 samples; this spec: 1" in lines[0]
    assert [line.split("|")[1:5] for line in lines if line.startswith("| 10 ")] == [[" 10 ", " 17.3 % ",
                                                                                    " 30.00 % (1 seeds) ", " 21.50 % "]]
    assert not any(line.startswith("| 50 ") for line in lines)  # epoch 50 not reached: no row
    assert reproduce.adgm_log_lines([{**cell, "model": "sdgm"}], {}) == []


# -- the papers' specs -------------------------------------------------------------------------------
PAPER_SPECS = ["kingma_m2.gvae", "mnist_m2.gvae", "siddharth_mnist.gvae", "adgm.gvae", "adgm.yaml", "sdgm.gvae"]


def test_every_spec_checks_and_the_papers_specs_are_formatted():
    specs = sorted(str(p) for p in (ROOT / "specs").iterdir() if p.suffix in (".gvae", ".yaml"))
    check = subprocess.run([sys.executable, "-m", "graphvae", "check", *specs], capture_output=True, text=True,
                           check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    for name in PAPER_SPECS:
        fmt = subprocess.run([sys.executable, "-m", "graphvae", "fmt", "--check", str(ROOT / "specs" / name)],
                             capture_output=True, text=True, check=False)
        assert fmt.returncode == 0, name + fmt.stdout + fmt.stderr


@pytest.mark.parametrize("name", PAPER_SPECS)
def test_papers_specs_compile_and_carry_their_recipe(name):
    spec, text, _ = load_spec_file(ROOT / "specs" / name)
    compile_spec(spec)
    cfg = trainconfig.from_spec(spec)
    assert (cfg.data, cfg.labels, cfg.batch_size) == ("mnist", 100, 100)
    assert text.lstrip().startswith("#")  # the header that cites the sources
    if name.startswith(("adgm", "sdgm")):
        assert (cfg.lr, cfg.schedule, cfg.lr_decay, cfg.lr_decay_epochs) == (3e-4, "decay", 0.75, 200)
        assert cfg.grad_clip > 0
        assert {v.name: tuple(v.shape) for v in spec.variables if v.name in ("a", "z")} == {"a": (100,), "z": (100,)}
        assert "batchnorm" in text
    if name == "adgm.yaml":
        gvae = load_spec_file(ROOT / "specs" / "adgm.gvae")[0]
        assert trainconfig.to_dict(trainconfig.from_spec(gvae)) == trainconfig.to_dict(cfg)


# -- autocast --------------------------------------------------------------------------------------
def _tiny_run(tmp_path, name, **changes):
    spec = ROOT / "specs" / "digits_m2.gvae"
    base = trainconfig.from_spec(load_spec_file(spec)[0])
    cfg = trainconfig.check_config(TrainConfig(**{**trainconfig.to_dict(base), "epochs": 1, "batch_size": 200,
                                                  **changes}))
    result = train(spec, cfg, tmp_path / name, progress=False, log=lambda *a: None)
    return result, load_checkpoint(tmp_path / name / "last.pt")


def _timeless(rows):
    return [{k: v for k, v in r.items() if not k.endswith(("seconds", "_per_s"))} for r in rows]


def test_autocast_none_is_the_old_step_and_bf16_trains(tmp_path):
    default, state = _tiny_run(tmp_path, "default")
    none, state_none = _tiny_run(tmp_path, "none", autocast="none")
    assert _timeless(default.metrics) == _timeless(none.metrics)
    assert all(torch.equal(state["model"][k], state_none["model"][k]) for k in state["model"])
    bf16, state_bf16 = _tiny_run(tmp_path, "bf16", autocast="bf16")
    assert json.loads((tmp_path / "bf16" / "config.json").read_text())["autocast"] == "bf16"
    assert bf16.step == default.step > 0
    row = bf16.metrics[-1]
    assert all(torch.isfinite(torch.tensor(float(v))) for k, v in row.items() if k.startswith(("train/", "val/")))
    assert not all(torch.equal(state["model"][k], state_bf16["model"][k]) for k in state["model"])  # bf16 did compute
