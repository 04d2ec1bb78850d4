"""Issue 11, front end: ``graphvae check`` on hostile specs.  Each case goes through the CLI entry
and checks the exact headline (path:line:col, message, code), the exit code and that the report
stays small and quick: huge numbers, sizes that cannot be allocated, a byte-order mark, files
with thousands of diagnostics or one enormous line, and train settings out of range."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from graphvae.cli.main import main
from graphvae.spec import loader
from graphvae.spec.diagnostics import MAX_LINE_WIDTH, MAX_SHOWN

TINY = """model m
x : observed binary[4]
z : latent   real[2]
encoder {
  z | x ~ Normal(mlp(8))
}
decoder {
  z     ~ Normal(0, 1)
  x | z ~ Bernoulli(mlp(8))
}
"""
TINY_YAML = """model: m
variables:
  x: {role: observed, domain: binary, shape: [4]}
  z: {role: latent, domain: real, shape: [2]}
encoder:
  z: {given: [x], dist: Normal, net: {mlp: [8]}}
decoder:
  z: {dist: Normal, args: [0, 1]}
  x: {given: [z], dist: Bernoulli, net: {mlp: [8]}}
"""
BIG = "1" + "0" * 400  # 401 digits: beyond a float, let alone 2^63
NINES = "9" * 5000  # beyond Python's int-string limit (4300 digits)
TOO_BIG_INT = "is too large: whole numbers are at most 2^63 - 1 (9223372036854775807) [number-out-of-range]"
TOO_BIG_FLOAT = "is too large: numbers are at most about 1.8e308 [number-out-of-range]"
BIG_SHOWN = "1000000000...0000000000 (401 characters)"
NINES_SHOWN = "9999999999...9999999999 (5,000 characters)"


def check(tmp_path, capsys, name: str, text: str, *flags: str) -> tuple[int, list[str], float]:
    """``graphvae check`` of ``text`` written to ``tmp_path/name``: exit code, output lines, seconds."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    start = time.perf_counter()
    code = main(["check", *flags, str(path)])
    seconds = time.perf_counter() - start
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    return code, captured.out.splitlines(), seconds


def headlines(lines: list[str], name: str) -> list[str]:
    return [line.split(f"{name}:", 1)[1] for line in lines if f"{name}:" in line and not line.startswith("    ")]


# -- huge numbers ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name, text, headline", ids=lambda v: v if isinstance(v, str) and len(v) < 30 else "", argvalues=[
    ("alpha.gvae", TINY + f"objective {{\n  alpha = {BIG}\n}}\n",
     f"12:11: error: the whole number {BIG_SHOWN} {TOO_BIG_INT}"),
    ("normal.gvae", TINY.replace("Normal(0, 1)", f"Normal(0, {BIG})"),
     f"8:21: error: the whole number {BIG_SHOWN} {TOO_BIG_INT}"),
    ("shape.gvae", TINY.replace("real[2]", f"real[{NINES}]"),
     f"3:19: error: the whole number {NINES_SHOWN} {TOO_BIG_INT}"),
    ("float.gvae", TINY.replace("Normal(0, 1)", "Normal(0, 1e999)"), f"8:21: error: the number 1e999 {TOO_BIG_FLOAT}"),
    ("width.gvae", TINY.replace("Normal(mlp(8))", "Normal(mlp(100000000000000000000))"),
     f"5:22: error: the whole number 100000000000000000000 {TOO_BIG_INT}"),
    ("option.gvae", TINY.replace("Normal(mlp(8))", "Normal(mlp(8, dropout = 1e999))"),
     f"5:35: error: the number 1e999 {TOO_BIG_FLOAT}"),
    ("classes.gvae", TINY.replace("real[2]", "categorical[99999999999999999999]"),
     f"3:26: error: the whole number 99999999999999999999 {TOO_BIG_INT}"),
    ("beta.gvae", TINY + f"objective {{\n  beta z = {BIG}\n}}\n", f"12:12: error: the whole number {BIG_SHOWN} {TOO_BIG_INT}"),
    ("seed.gvae", TINY + "train {\n  seed = 9223372036854775808\n}\n",
     f"12:10: error: the whole number 9223372036854775808 {TOO_BIG_INT}"),
    ("zeros.gvae", TINY.replace("binary[4]", "binary[" + "0" * 5000 + "4]"), None),  # leading zeros: just 4
    ("alpha.yaml", TINY_YAML + f"objective:\n  alpha: {BIG}\n",
     f"11:10: error: the objective setting 'alpha': the whole number {BIG_SHOWN} {TOO_BIG_INT}"),
    ("normal.yaml", TINY_YAML.replace("args: [0, 1]", f"args: [0, {BIG}]"),
     f"8:31: error: an argument of the decoder factor of 'z': the whole number {BIG_SHOWN} {TOO_BIG_INT}"),
    ("shape.yaml", TINY_YAML.replace("shape: [2]", f"shape: [{NINES}]"),
     f"4:43: error: the shape of variable 'z': the whole number {NINES_SHOWN} {TOO_BIG_INT}"),
    ("float.yaml", TINY_YAML.replace("args: [0, 1]", "args: [0, 1.0e+999]"),
     f"8:31: error: an argument of the decoder factor of 'z': the number 1.0e+999 {TOO_BIG_FLOAT}"),
    ("hex.yaml", TINY_YAML + "train:\n  seed: 0x10000000000000000\n",
     f"11:9: error: the train setting 'seed': the whole number 0x10000000000000000 {TOO_BIG_INT}"),
    ("sexagesimal.yaml", TINY_YAML + "train:\n  seed: " + "1:" * 3000 + "0\n",  # quadratic to convert
     f"11:9: error: the train setting 'seed': the whole number 1:1:1:1:1:...:1:1:1:1:0 (6,001 characters) "
     f"{TOO_BIG_INT}"),
])
def test_huge_numbers_are_positioned_diagnostics(tmp_path, capsys, name, text, headline):
    code, lines, seconds = check(tmp_path, capsys, name, text)
    if headline is None:
        assert code == 0 and lines == ["ok: 1 file checked, no issues"]
        return
    assert code == 1 and headlines(lines, name) == [headline]
    assert lines[-1] == "1 error in 1 of 1 file" and seconds < 5


# -- sizes that cannot be allocated ---------------------------------------------------------------
M2ISH = TINY.replace("binary[4]", "binary[784]").replace("mlp(8)", "mlp(500)")
M3 = """model m
x : observed   binary[4]
z : latent     real[2]
y : supervised categorical[100000000]
encoder {
  y | x    ~ Categorical(mlp(8))
  z | x    ~ Normal(mlp(8))
}
decoder {
  z        ~ Normal(0, 1)
  y        ~ Categorical(uniform)
  x | y, z ~ Bernoulli(mlp(8))
}
objective {
  y = reinforce
}
"""


@pytest.mark.parametrize("name, text, headline", ids=lambda v: v if isinstance(v, str) and len(v) < 30 else "", argvalues=[
    ("mlp.gvae", TINY.replace("Bernoulli(mlp(8))", "Bernoulli(mlp(100000000))"),
     "9:21: error: the model needs about 251 GB to train: 2.8 GB of parameters (700,000,080 weights, held 4 times "
     "with gradients and Adam's moments) and 240 GB of activations per step (200 examples, 1 sample, 1 enumerated "
     "value); more than the 64 GB a spec may ask for; use smaller widths, shapes, samples or batches "
     "[model-too-large]"),
    ("wide.gvae", TINY.replace("Bernoulli(mlp(8))", "Bernoulli(mlp(100000, 100000))"),
     "9:21: error: the model needs about 160 GB to train: 40 GB of parameters (10,000,800,080 weights, held 4 times "
     "with gradients and Adam's moments) and 480 MB of activations per step (200 examples, 1 sample, 1 enumerated "
     "value); more than the 64 GB a spec may ask for; use smaller widths, shapes, samples or batches "
     "[model-too-large]"),
    ("real.gvae", TINY.replace("real[2]", "real[100000000]"),
     "5:18: error: the model needs about 762 GB to train: 10 GB of parameters (2,600,000,084 weights, held 4 times "
     "with gradients and Adam's moments) and 720 GB of activations per step (200 examples, 1 sample, 1 enumerated "
     "value); more than the 64 GB a spec may ask for; use smaller widths, shapes, samples or batches "
     "[model-too-large]"),
    ("classes.gvae", M3,
     "6:26: error: the model needs about 507 GB to train: 6.8 GB of parameters (1,700,000,176 weights, held 4 times "
     "with gradients and Adam's moments) and 480 GB of activations per step (200 examples, 1 sample, 1 enumerated "
     "value); more than the 64 GB a spec may ask for; use smaller widths, shapes, samples or batches "
     "[model-too-large]"),
    ("samples.gvae", M2ISH + "objective {\n  samples = 100000\n}\n", None),
    ("large.gvae", TINY.replace("Bernoulli(mlp(8))", "Bernoulli(mlp(20000, 20000))"),
     "9:21: warning: the model needs about 6.5 GB to train: 1.6 GB of parameters (400,160,080 weights, held 4 "
     "times with gradients and Adam's moments) and 96 MB of activations per step (200 examples, 1 sample, 1 "
     "enumerated value); check that the device has that much memory [large-model]"),
])
def test_sizes_that_cannot_be_allocated_are_refused_with_the_figures(tmp_path, capsys, name, text, headline):
    code, lines, _ = check(tmp_path, capsys, name, text)
    got = headlines(lines, name)
    if headline is None:  # samples = 100000: the activations, pointed at the setting
        assert code == 1 and len(got) == 1 and got[0].startswith("12:3: error: the model needs about ")
        assert "100,000 samples" in got[0] and got[0].endswith("[model-too-large]")
        return
    assert got == [headline]
    assert code == (1 if "error" in headline else 0)


def test_the_memory_estimate_is_torch_free_and_quiet_for_the_shipped_specs():
    from pathlib import Path

    from graphvae.spec.loader import check_file
    from graphvae.spec.validate.memory import estimate

    for path in sorted((Path(__file__).resolve().parents[1] / "specs").glob("*.gvae")):
        spec, diags = check_file(path)
        assert not [d for d in diags if d.code in ("large-model", "model-too-large")]
        assert 0 < estimate(spec).training_bytes < 10**9


# -- a byte-order mark ----------------------------------------------------------------------------
@pytest.mark.parametrize("name, text, expected", ids=lambda v: v if isinstance(v, str) and len(v) < 30 else "", argvalues=[
    ("bom.gvae", "\ufeff" + TINY, 0),
    ("bom.yaml", "\ufeff" + TINY_YAML, 0),
    ("bom_crlf.gvae", "\ufeff" + TINY.replace("\n", "\r\n"), 0),
    ("bom_domain.gvae", "\ufeff" + TINY.replace("binary[4]", "binray[4]"),
     "2:14: error: variable 'x' has unknown domain 'binray'; domains are real, positive, unit, binary, categorical, "
     "simplex; did you mean 'binary'? [unknown-domain]"),
    ("bom_first.gvae", "\ufeffmodell m\n" + TINY[8:], "1:8: error: expected ':' after 'modell', found 'm' [syntax]"),
    ("bom_first.yaml", "\ufeffmodle: m\n" + TINY_YAML[9:],
     "1:1: error: the spec: unknown key 'modle' (expected one of model, plates, variables, encoder, decoder, "
     "objective, train); did you mean 'model'? [unknown-key]"),
    ("bom_inside.gvae", TINY.replace("z : latent", "\ufeffz : latent"),
     "3:1: error: expected a statement ('model NAME', a variable 'NAME : ROLE DOMAIN[...]', a plate 'plate k < K', "
     "or an encoder, decoder, objective or train block), found U+FEFF (zero width no-break space) [syntax]"),
])
def test_a_byte_order_mark_is_accepted_and_columns_stay_right(tmp_path, capsys, name, text, expected):
    code, lines, _ = check(tmp_path, capsys, name, text)
    if expected == 0:
        assert code == 0 and lines == ["ok: 1 file checked, no issues"]
        return
    assert code == 1 and headlines(lines, name)[:1] == [expected]
    source, caret = lines[1], lines[2]
    col = int(expected.split(":")[1])
    assert caret.index("^") - 4 == col - 1 and "\ufeff" not in source[:5]


# -- many diagnostics, long lines, large files ----------------------------------------------------
def _flow_yaml(n: int) -> str:
    return TINY_YAML.replace("shape: [2]", "shape: [" + ", ".join(["a"] * n) + "]")


def _parents(n: int) -> str:
    return TINY.replace("x | z ~", "x | " + ", ".join(f"p{i}" for i in range(n)) + " ~")


def _variables(n: int) -> str:
    return TINY + "".join(f"v{i}:latent real\n" for i in range(n))


@pytest.mark.parametrize("name, text, first, more, total, limit_s", ids=lambda v: v if isinstance(v, str) and len(v) < 30 else "", argvalues=[
    ("flow.yaml", _flow_yaml(10_000),
     "4:43: error: the shape of variable 'z': expected a whole number, found 'a' [wrong-type]",
     "\u2026 and 9,950 more errors [wrong-type] (graphvae check --format json lists them all)",
     "10000 errors in 1 of 1 file", 20),
    ("longline.yaml", _flow_yaml(125_000),  # one line of 375 KB
     "4:43: error: the shape of variable 'z': expected a whole number, found 'a' [wrong-type]",
     "\u2026 and 124,950 more errors [wrong-type] (graphvae check --format json lists them all)",
     "125000 errors in 1 of 1 file", 60),
    ("parents.gvae", _parents(6000),
     "9:7: error: p(x | p0, p1, p2, p3, p4, ... 5,995 more) names parent 'p0', which is neither a declared variable "
     "nor a deterministic node of the decoder [undefined-name]",
     "\u2026 and 5,950 more errors [undefined-name] (graphvae check --format json lists them all)",
     "6000 errors in 1 of 1 file", 20),
    ("variables.gvae", _variables(55_000),  # 1 MB
     "11:1: warning: latent variable 'v0' appears in no factor; it takes no part in the model [unused]",
     "\u2026 and 54,950 more warnings [unused] (graphvae check --format json lists them all)",
     "55000 warnings in 1 of 1 file", 60),
])
def test_thousands_of_diagnostics_print_the_first_and_count_the_rest(tmp_path, capsys, monkeypatch, name, text,
                                                                      first, more, total, limit_s):
    monkeypatch.setattr(loader, "MAX_SPEC_BYTES", 2**20)  # the files, up to 1 MB: linear, not refused
    code, lines, seconds = check(tmp_path, capsys, name, text)
    assert code == (0 if "error" not in total else 1)
    assert headlines(lines, name)[0] == first
    assert lines[-2:] == [more, total]
    assert len(lines) <= 3 * MAX_SHOWN + 2
    assert all(len(line) <= 4 + MAX_LINE_WIDTH + 2 for line in lines if line.startswith("    "))
    assert seconds < limit_s  # linear: seconds, where it took minutes and gigabytes


def test_json_stays_complete(tmp_path, capsys, monkeypatch):
    code, lines, seconds = check(tmp_path, capsys, "flow.yaml", _flow_yaml(10_000), "--format", "json")
    report = json.loads("\n".join(lines))
    assert code == 1 and report["errors"] == 10_000 and len(report["files"][0]["diagnostics"]) == 10_000
    assert seconds < 20


@pytest.mark.parametrize("size, refused", [(128 * 1024, False), (128 * 1024 + 1, True), (10**8, True)])
def test_a_file_over_128_kb_is_refused_unread(tmp_path, capsys, size, refused):
    text = TINY + "#" * (size - len(TINY))
    code, lines, seconds = check(tmp_path, capsys, "huge.gvae", text)
    if not refused:
        assert code == 0 and lines == ["ok: 1 file checked, no issues"]
        return
    assert code == 1 and headlines(lines, "huge.gvae") == [
        "1:1: error: '" + str(tmp_path / "huge.gvae") + "' is larger than 128 KB, the most a spec file may hold "
        "[too-large]"]
    assert seconds < 1


# -- train settings out of range ------------------------------------------------------------------
@pytest.mark.parametrize("flags, message", [
    (["--seed", "36893488147419103233"], "seed must be below 2^63 (a 64-bit integer), got 36893488147419103233"),
    (["--set", "seed=9223372036854775808"], "seed must be below 2^63 (a 64-bit integer), got 9223372036854775808"),
    (["--set", "weight_decay=nan"], "weight_decay must be a finite number, got nan"),
    (["--set", "grad_clip=nan"], "grad_clip must be a finite number, got nan"),
    (["--set", "grad_clip_value=inf"], "grad_clip_value must be a finite number, got inf"),
    (["--lr", "1e999"], "lr must be a finite number, got inf"),
    (["--epochs", "100000000000000000000"], "epochs must be below 2^63 (a 64-bit integer), got 100000000000000000000"),
    (["--set", "validation=nan"], "validation must be a finite number, got nan"),
    (["--set", "eval_samples=99999999999999999999"],
     "eval_samples must be below 2^63 (a 64-bit integer), got 99999999999999999999"),
])
def test_train_settings_out_of_range_are_one_line(tmp_path, capsys, flags, message):
    spec = tmp_path / "tiny.gvae"
    spec.write_text(TINY)
    out = tmp_path / "run"
    assert main(["train", str(spec), "--out", str(out), "--no-progress", *flags]) == 1
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines() == [f"graphvae: error: {message}"]
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("name, text, headline", ids=lambda v: v if isinstance(v, str) and len(v) < 30 else "", argvalues=[
    ("seed.gvae", TINY + "train {\n  seed = -1\n}\n", "12:3: error: train setting seed must be >= 0, found -1 [bad-setting]"),
    ("nan.yaml", TINY_YAML + "train:\n  grad_clip: .nan\n",
     "11:3: error: train setting grad_clip must be a finite number, found nan [bad-setting]"),
    ("inf.yaml", TINY_YAML + "train:\n  weight_decay: .inf\n",
     "11:3: error: train setting weight_decay must be a finite number, found inf [bad-setting]"),
    ("alpha_inf.yaml", TINY_YAML + "objective:\n  alpha: -.inf\n",
     "11:3: error: objective setting alpha must be a finite number, found -inf [bad-setting]"),
])
def test_train_block_numbers_out_of_range(tmp_path, capsys, name, text, headline):
    code, lines, _ = check(tmp_path, capsys, name, text)
    assert code == 1 and headlines(lines, name) == [headline]


SPECS_DIR = Path(__file__).resolve().parents[1] / "specs"
SPECS = sorted(p.name for p in SPECS_DIR.glob("*.gvae"))


@pytest.mark.parametrize("name", SPECS)
def test_the_memory_estimate_counts_the_weights_the_compiler_builds(name):
    """The estimate's weights are exactly the compiled model's parameters, network by network
    kind (mlp, linear, conv, glimpse, paste), for every shipped spec."""
    from graphvae.compile.compiler import compile_spec
    from graphvae.compile.nets import parameter_count
    from graphvae.spec.validate.memory import estimate

    spec = loader.load_spec(SPECS_DIR / name)
    assert estimate(spec).weights == parameter_count(compile_spec(spec))


LOCATE_SPEC = """model locate_weights

plate k < 2 count n

x    : observed   binary[20, 20]
n    : supervised categorical[3]
w[k] : supervised real[2]

encoder {
  n | x               ~ Categorical(conv(4, 8, coords = true))
  w[k] | x, n, w[k-1] ~ Normal(loc = locate(4, 8, dense = 16, batchnorm = true), scale = 1)
  v | x, n            = locate(4, dense = 8, coords = true)
  u | v, x            = mlp(4)
}

decoder {
  n                   ~ Categorical(uniform)
  w[k]                ~ Normal(8, 4)
  x | n, w[*]         ~ Bernoulli(mlp(16))
}

objective {
  n = enumerate
}
"""


ERASE_SPEC = """model erase_weights

plate k < 2 count n

x    : observed   binary[20, 20]
n    : supervised categorical[3]
w[k] : supervised real[2]

encoder {
  n | x                    ~ Categorical(conv(4, 8))
  r[k] | x, r[k-1], w[k-1] = erase(6)
  w[k] | r[k], n           ~ Normal(loc = locate(4, 8, dense = 16), scale = 1)
  u | r[1], n              = mlp(4)
  e | x, w[0]              = erase(5, 7)
  c | e                    = conv(4, dense = 8)
}

decoder {
  n                        ~ Categorical(uniform)
  w[k]                     ~ Normal(8, 4)
  x | n, w[*]              ~ Bernoulli(mlp(16))
}

objective {
  n = enumerate
}
"""


@pytest.mark.parametrize("text", [LOCATE_SPEC, ERASE_SPEC], ids=["locate", "erase"])
def test_the_memory_estimate_counts_the_weights_of_image_networks(tmp_path, text):
    """locate as a plate's shared loc network (with batch norm) and as a node, coords on a conv and a
    locate; an erase, which has no weights, read as the [20, 20] image by a locate and a conv."""
    from graphvae.compile.compiler import compile_spec
    from graphvae.compile.nets import parameter_count
    from graphvae.spec.validate.memory import estimate

    path = tmp_path / "spec.gvae"
    path.write_text(text)
    spec = loader.load_spec(path)
    model = compile_spec(spec)
    assert estimate(spec).weights == parameter_count(model)
    if text is ERASE_SPEC:  # an mlp reads an erase flattened: 400 numbers, and n's one-hot
        assert model.encoder["u"].first.in_features == 20 * 20 + 3
