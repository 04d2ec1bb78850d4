"""bench_step.py --peers: the Pyro M2 has the hand-written M2's objective, and the table prints
every contender (a dash and a footnote for one that cannot run)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_step  # noqa: E402
import handwritten_m2  # noqa: E402


def _batch(n_l: int, n_u: int, x_dim: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    x = torch.bernoulli(torch.rand(n_l + n_u, x_dim, generator=gen))
    y = torch.randint(0, 10, (n_l + n_u,), generator=gen)
    y[n_l:] = -1
    return x, y


@pytest.mark.parametrize("n_l, n_u", [(5, 7), (6, 0), (0, 4)])
@pytest.mark.filterwarnings("ignore:TraceEnum_ELBO found no sample sites")  # all labelled: nothing to enumerate
def test_pyro_m2_loss_and_gradients_equal_the_hand_written_with_the_same_noise(n_l, n_u, monkeypatch):
    """Same weights and the same standard-normal draws: the Pyro loss is the hand-written one.

    Pyro's guide draws z for the labelled rows (n_l, Z), then for the unlabelled rows under the
    enumerated y (K, n_u, Z); the hand-written M2 draws (n_l, Z), then (n_u * K, Z) example-major.
    Both compute the same float32 terms and differ only in the order of the sums (per site and
    plate, against per row), a relative difference of a few float32 epsilons (~1e-7) on a loss
    of order 50: rel 1e-5 leaves room for that and nothing else -- a missing term (log p(y) =
    -log 10 a row, the classifier term, the entropy of q(y|x)) moves the loss by > 1e-2."""
    pytest.importorskip("pyro", reason="pyro-ppl is not installed (pip install -e .[bench])")
    import pyro_m2
    import torch.distributions.normal as normal

    k, z_dim, alpha = 10, 8, 0.3
    torch.manual_seed(0)
    hand = handwritten_m2.M2(x_dim=64, y_dim=k, z_dim=z_dim, hidden=(32,))
    model = pyro_m2.PyroM2.like(hand)
    model.validate = True  # Pyro checks the shapes and supports here
    assert [tuple(p.shape) for p in model.parameters()] == [tuple(p.shape) for p in hand.parameters()]
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), hand.parameters()))
    x, y = _batch(n_l, n_u, 64, seed=1)
    eps_l, eps_u = torch.randn(n_l, z_dim), torch.randn(k, n_u, z_dim)

    pyro_queue = [e for e, n in ((eps_l, n_l), (eps_u, n_u)) if n]

    def pyro_noise(shape, dtype, device):
        eps = pyro_queue.pop(0)
        assert tuple(shape) == tuple(eps.shape)
        return eps.clone()

    monkeypatch.setattr(normal, "_standard_normal", pyro_noise)
    loss_p = model.loss(x, y, alpha)
    assert not pyro_queue
    monkeypatch.undo()

    hand_queue = [e for e, n in ((eps_l, n_l), (eps_u.transpose(0, 1).reshape(n_u * k, z_dim), n_u)) if n]
    monkeypatch.setattr(handwritten_m2.torch, "randn_like", lambda t: hand_queue.pop(0).clone())
    loss_h = hand.loss(x, y, alpha)
    assert not hand_queue
    assert float(loss_p.detach()) == pytest.approx(float(loss_h.detach()), rel=1e-5)
    for a, b in zip(torch.autograd.grad(loss_p, list(model.parameters())),
                    torch.autograd.grad(loss_h, list(hand.parameters()))):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_pyro_m2_loss_averages_to_the_hand_written_over_noise_draws():
    """Without the noise trick: over 120 independent draws each, the two mean losses on a fixed batch
    agree within 4 standard errors of their difference (a false alarm ~1 in 16000)."""
    pytest.importorskip("pyro", reason="pyro-ppl is not installed (pip install -e .[bench])")
    import pyro_m2

    torch.manual_seed(3)
    hand = handwritten_m2.M2(x_dim=64, z_dim=8, hidden=(32,))
    model = pyro_m2.PyroM2.like(hand)
    x, y = _batch(6, 10, 64, seed=4)
    draws = 120
    lp = torch.tensor([float(model.loss(x, y, 0.2).detach()) for _ in range(draws)])  # (a differentiable
    lh = torch.tensor([float(hand.loss(x, y, 0.2).detach()) for _ in range(draws)])  # loss: not under no_grad)
    se = math.sqrt(float(lp.var()) / draws + float(lh.var()) / draws)
    assert se > 0
    assert abs(float(lp.mean() - lh.mean())) < 4 * se


@pytest.fixture
def keep_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


QUICK = ["--peers", "--quick", "--no-torch-compile", "--steps", "2", "--repeats", "2", "--warmup", "1"]


def _table(out: str) -> tuple[list[str], list[str], list[str]]:
    lines = out.splitlines()
    head = next(line for line in lines if line.startswith("| size |"))
    rows = [line for line in lines if line.startswith("| digits |")]
    notes = [line for line in lines if line.startswith("[")]
    return [c.strip() for c in head.strip("|").split("|")], rows, notes


def test_peers_quick_prints_every_column_and_row(capsys, keep_threads):
    assert bench_step.main(QUICK) == 0
    out = capsys.readouterr().out
    assert f"torch {torch.__version__}" in out and "device cpu" in out and "threads 1" in out
    head, rows, notes = _table(out)
    assert head[:2] == ["size", "B"] and head[2:7] == list(bench_step.CONTENDERS)
    assert [h.split(" (target")[0] for h in head[7:]] == [r[0] for r in bench_step.RATIOS]
    assert all("target ≥" in h for h in head[7:])
    assert len(rows) == 1 and rows[0].startswith("| digits | 16 |")
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    assert len(cells) == len(head)
    for name in ("hand-written", "compiled"):
        assert float(cells[head.index(name)].split()[0]) > 0  # median (min–max)
    assert float(cells[7].split()[0]) > 0  # compiled / hand-written
    assert cells[9] == "—"  # compiled+torch.compile / hand-written: skipped
    for name in ("compiled + torch.compile", "hand-written + torch.compile"):
        mark = cells[head.index(name)]
        assert mark.startswith("— [")
        number = int(mark.split("[")[1].rstrip("]"))
        assert notes[number - 1] == f"[{number}] {name}: skipped (--no-torch-compile)"
    if cells[head.index("Pyro")].startswith("—"):  # pyro not installed here: the footnote says so
        assert any("Pyro not importable" in note for note in notes)
    else:
        assert float(cells[head.index("Pyro")].split()[0]) > 0 and float(cells[8].split()[0]) > 0


def test_peers_quick_without_pyro_shows_a_dash_and_why(capsys, keep_threads, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyro", None)  # import pyro now raises ImportError
    monkeypatch.delitem(sys.modules, "pyro_m2", raising=False)
    assert bench_step.main(QUICK) == 0
    out = capsys.readouterr().out
    assert "pyro not installed" in out
    head, rows, notes = _table(out)
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    mark = cells[head.index("Pyro")]
    assert mark.startswith("— [") and cells[head.index("compiled / Pyro (target ≥ 2)")] == "—"
    number = int(mark.split("[")[1].rstrip("]"))
    assert notes[number - 1].startswith(f"[{number}] Pyro: Pyro not importable (") and "pyro" in notes[number - 1]
    assert float(cells[head.index("compiled")].split()[0]) > 0  # the rest of the table still prints


def test_peer_spec_compiles_to_the_hand_written_sizes(tmp_path):
    import graphvae

    path = tmp_path / "mnist_peer.gvae"
    path.write_text(bench_step.peer_spec_text("mnist", *bench_step.PEER_SIZES["mnist"]))
    torch.manual_seed(0)
    compiled = graphvae.compile_spec(str(path))
    torch.manual_seed(0)
    hand = handwritten_m2.m2_like(compiled.spec)
    assert [tuple(p.shape) for p in compiled.parameters()] == [tuple(p.shape) for p in hand.parameters()]
    assert tuple(hand.classifier[0].weight.shape) == (500, 784) and hand.z_dim == 50
    assert compiled.config.samples == 1 and compiled.config.alpha == 0.1


def test_default_mode_still_times_compiled_against_hand_written(tmp_path, capsys, keep_threads):
    path = tmp_path / "digits_peer.gvae"
    path.write_text(bench_step.peer_spec_text("digits", *bench_step.PEER_SIZES["digits"]))
    argv = ["--spec", str(path), "--repeats", "1", "--steps", "1", "--warmup", "1", "--batch", "8", "--labelled", "2"]
    assert bench_step.main(argv) == 0
    out = capsys.readouterr().out
    assert "compiled M2" in out and "hand-written M2" in out and "ratio compiled / hand-written" in out


@pytest.mark.parametrize("checks", [True, False])
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated")  # importing torch._dynamo
def test_every_step_runs_with_the_chosen_distribution_checks(checks):
    """Making a torch.compile wrapper switches torch.distributions' default checks off process-wide;
    each contender's step sets them to the benchmark's choice first."""
    from torch.distributions import Distribution

    saved, seen = Distribution._validate_args, []
    net = torch.nn.Linear(2, 1)

    def loss(x, y):
        seen.append(Distribution._validate_args)
        return net(x).sum()

    c = bench_step.Contender("hand-written", net, loss, torch.device("cpu"))
    c.batches, c.checks = [(torch.ones(3, 2), torch.zeros(3, dtype=torch.long))], checks
    try:
        Distribution.set_default_validate_args(not checks)
        c.step()
        torch.compile(lambda t: t + 1)  # the wrapper alone flips the default in torch 2.13
        c.step()
    finally:
        Distribution.set_default_validate_args(saved)
    assert seen == [checks, checks]


def test_peers_phases_prints_each_contenders_phases_and_the_difference(capsys, keep_threads):
    assert bench_step.main(QUICK + ["--phases"]) == 0
    out = capsys.readouterr().out
    section = out.split("### Milliseconds per step by phase")[1].splitlines()
    head = next(line for line in section if line.startswith("| size |"))
    assert [c.strip() for c in head.strip("|").split("|")] == ["size", "B", "contender", "forward", "backward",
                                                              "optimiser"]
    rows = {cells[2]: [float(v) for v in cells[3:]] for cells in
            ([c.strip() for c in line.strip("|").split("|")] for line in section if line.startswith("| digits |"))}
    assert {"hand-written", "compiled", "compiled − hand-written"} <= set(rows)
    assert all(v > 0 for name in ("hand-written", "compiled") for v in rows[name])
    for i in range(3):  # the difference row is the two rows' difference (each printed to 3 decimals)
        assert rows["compiled − hand-written"][i] == pytest.approx(rows["compiled"][i] - rows["hand-written"][i],
                                                                   abs=2e-3)


@pytest.mark.parametrize("a, b, expected", [
    ([10.0, 20.0], [5.0, 20.0], (1.5, 1.0, 2.0)),  # paired: ratios 2 and 1 (the medians' ratio would be 1.2)
    ([9.0, 3.0, 6.0], [3.0, 3.0, 3.0], (2.0, 1.0, 3.0)),
    ([10.0, 20.0], [5.0], (3.0, 3.0, 3.0)),  # one stopped part-way: the medians' ratio, 15 / 5
])
def test_a_ratio_pairs_the_blocks_of_each_repeat(a, b, expected):
    ca, cb = bench_step.Contender("a", why="x"), bench_step.Contender("b", why="x")
    ca.why = cb.why = None
    ca.rates, cb.rates = a, b
    assert bench_step.ratio_of(ca, cb) == pytest.approx(expected)
    cb.why = "failed"
    assert bench_step.ratio_of(ca, cb) is None
