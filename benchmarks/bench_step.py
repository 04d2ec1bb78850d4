"""Training-step throughput of the compiled M2 against a hand-written PyTorch M2, and compile times.

Both models have the architecture of ``specs/m2.gvae`` (q(y|x), q(z|x,y) and p(x|y,z)
each an MLP with one hidden layer of 500 ReLU units; z has 50 dims; x is 784 binary
pixels) and take the same batches (100 examples, 10 of them labelled).  A step is
forward + backward + Adam.  The two are timed in alternation within one run, in
blocks of ``--steps`` steps, and the median steps/s over ``--repeats`` blocks is
reported with the ratio compiled / hand-written (target >= 0.95).

    python benchmarks/bench_step.py [--repeats 7] [--steps 20] [--device cpu|cuda] [--threads N]
    python benchmarks/bench_step.py --spec specs/digits_m2.gvae --batch 64 --labelled 16 --steps 100

The target is for the MNIST-sized M2.  On a model as small as the digits one the
compiled step is slower (Python overhead of the general trace: two labelled-pattern
groups, torch.distributions objects, the logged terms), which the second command shows.

``--peers`` is a side-by-side table of training steps per second of five contenders at the sizes
``digits`` (x 64 binary, hidden 128, z 8) and ``mnist`` (x 784, hidden 500, z 50), y 10 classes,
for B labelled plus B unlabelled examples a step (y enumerated), one Adam step each:

    hand-written                  benchmarks/handwritten_m2.py's M2, eager
    compiled                      graphvae.compile_spec(...) of a spec written here, eager, called as the
                                  trainer calls it (the batch's layout, check_inputs off, terms=True)
    compiled + torch.compile      torch.compile(compiled.loss, fullgraph=True), called the same way
    hand-written + torch.compile  for reference (fullgraph=False: M2.loss branches on the labels)
    Pyro                          benchmarks/pyro_m2.py (TraceEnum_ELBO, y enumerated in the guide)

    python benchmarks/bench_step.py --peers [--sizes digits,mnist] [--batches 16,64,256] [--threads 1]
        [--repeats 7] [--steps N] [--device cpu|cuda] [--compile-mode reduce-overhead] [--no-torch-compile]
    python benchmarks/bench_step.py --peers --quick      # one size, one B, few steps: a smoke test
    python benchmarks/bench_step.py --peers --phases     # also forward / backward / optimiser apart, in ms

Every contender trains its own copy of the same initial weights on the same batches; blocks of
steps alternate between them in one process, the order rotating each repeat, and a cell is the
median steps/s over the blocks with their min-max.  A ratio is the median (min-max) over the
repeats of the ratio of the two contenders' blocks in that repeat, which ran next to each other
(a slow spell of a shared machine slows both).  A contender that cannot run shows a dash and a
footnote saying why.
"""

from __future__ import annotations

import argparse
import glob
import os
import statistics
import sys
import time

import torch
from handwritten_m2 import m2_like  # benchmarks/ is on sys.path when this script runs
from torch.distributions import Distribution

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_batch(batch, labelled, device, gen, x_dim=784):
    x = torch.bernoulli(torch.rand(batch, x_dim, generator=gen)).to(device)
    y = torch.randint(0, 10, (batch,), generator=gen)
    y[labelled:] = -1
    return x, y.to(device)


def time_steps(step, steps, device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return steps / (time.perf_counter() - t0)


def compile_times(pattern: str) -> list[tuple[str, float]]:
    import graphvae

    out = []
    for path in sorted(glob.glob(pattern)):
        t0 = time.perf_counter()
        try:
            graphvae.compile_spec(path)
            out.append((os.path.relpath(path, ROOT), time.perf_counter() - t0))
        except Exception as exc:  # report and keep timing the others
            out.append((f"{os.path.relpath(path, ROOT)} (failed: {type(exc).__name__})", float("nan")))
    return out


# -- --peers: five contenders side by side ---------------------------------------------------------
PEER_SIZES = {"digits": (64, 128, 8), "mnist": (784, 500, 50)}  # name -> (x dims, hidden units, z dims)
PEER_CLASSES = 10
PEER_ALPHA = 0.1
CONTENDERS = ("hand-written", "compiled", "compiled + torch.compile", "hand-written + torch.compile", "Pyro")
RATIOS = (("compiled / hand-written", "compiled", "hand-written", 0.95),
          ("compiled / Pyro", "compiled", "Pyro", 2.0),
          ("compiled+torch.compile / hand-written", "compiled + torch.compile", "hand-written", 1.0))


def peer_spec_text(name: str, x_dim: int, hidden: int, z_dim: int) -> str:
    """An M2 spec of these sizes: binary x under a Bernoulli, mlp(hidden) networks without batch norm."""
    return f"""# written by benchmarks/bench_step.py --peers
model {name}_peer

x : observed   binary[{x_dim}]
y : supervised categorical[{PEER_CLASSES}]
z : latent     real[{z_dim}]

encoder {{
  y | x    ~ Categorical(mlp({hidden}))
  z | x, y ~ Normal(mlp({hidden}))
}}

decoder {{
  z        ~ Normal(0, 1)
  y        ~ Categorical(uniform)
  x | y, z ~ Bernoulli(mlp({hidden}))
}}

objective {{
  alpha   = {PEER_ALPHA}
  samples = 1
  y       = enumerate
}}
"""


def compiled_loss(loss, x, y, layout=None):
    """The compiled model's loss on a benchmark batch, as the trainer computes it: given the batch's
    layout (the runs of labelled and unlabelled rows; the model has ``check_inputs = False``, its
    data checked once) and with the logged terms (``terms=True``), so that nothing in the step
    waits for the host.  ``loss`` is ``compiled.loss`` or what torch.compile made of it; without a
    layout the loss reads the labels on the host to group the rows (the default mode)."""
    if layout is None:
        return loss({"x": x, "y": y})
    return loss({"x": x, "y": y}, terms=True, layout=layout)[0]


def load_pyro():
    """``(pyro_m2 module, None)``, or ``(None, why not)`` when Pyro cannot be imported."""
    try:
        import pyro  # noqa: F401
        import pyro_m2
    except Exception as exc:  # not installed, or broken: the table shows a dash
        return None, f"Pyro not importable ({type(exc).__name__}: {first_line(exc)})"
    return pyro_m2, None


def first_line(exc: BaseException, limit: int = 150) -> str:
    text = (str(exc).strip().splitlines() or [""])[0]
    return text if len(text) <= limit else text[:limit - 3] + "..."


class Contender:
    """One column of the table in one cell: a step to time, or why it has none."""

    def __init__(self, name: str, model=None, loss=None, device=None, why: str | None = None):
        self.name, self.why, self.rates, self.warmup_s = name, why, [], None
        self.phases: list[tuple[float, float, float]] = []  # --phases: per block, seconds per step of each phase
        self.steps, self.checks = 0, True
        if why is None:
            self.opt = torch.optim.Adam(model.parameters(), lr=1e-3)
            self.loss, self.device, self.i, self.batches = loss, device, 0, None
            self.mark_step = False

    def _begin(self):
        """The next batch, with the step's bookkeeping done: gradients cleared, checks set."""
        x, y = self.batches[self.i % len(self.batches)]
        self.i += 1
        if self.mark_step:  # CUDA graphs (reduce-overhead): a new iteration begins
            torch.compiler.cudagraph_mark_step_begin()
        self.opt.zero_grad(set_to_none=True)
        # the same default argument checks of torch.distributions for every step of every contender:
        # making a torch.compile wrapper switches them off process-wide (torch 2.13; pytorch PR 185438)
        Distribution.set_default_validate_args(self.checks)
        return x, y

    def step(self) -> None:
        x, y = self._begin()
        self.loss(x, y).backward()
        self.opt.step()

    def timed_step(self, device) -> tuple[float, float, float]:
        """One step as :meth:`step` takes it, and the seconds of its forward, backward and optimiser
        step (the device synchronised around each on CUDA)."""
        x, y = self._begin()
        sync = torch.cuda.synchronize if device.type == "cuda" else (lambda *a: None)
        sync(device)
        t0 = time.perf_counter()
        loss = self.loss(x, y)
        sync(device)
        t1 = time.perf_counter()
        loss.backward()
        sync(device)
        t2 = time.perf_counter()
        self.opt.step()
        sync(device)
        return t1 - t0, t2 - t1, time.perf_counter() - t2

    def fail(self, why: str) -> None:
        self.why, self.rates = why, []


def build_cell(size: str, batch: int, args, device, spec_dir: str, pyro_m2, pyro_why) -> list[Contender]:
    """The five contenders at one size and B, each with its own copy of the same initial weights."""
    import graphvae

    x_dim, hidden, z_dim = PEER_SIZES[size]
    path = os.path.join(spec_dir, f"{size}_peer.gvae")
    with open(path, "w") as f:
        f.write(peer_spec_text(size, x_dim, hidden, z_dim))

    def fresh_compiled():
        torch.manual_seed(args.seed)
        return graphvae.compile_spec(path).to(device)

    def fresh_hand(spec):
        torch.manual_seed(args.seed)
        return m2_like(spec).to(device)

    compiled = fresh_compiled()
    hand = fresh_hand(compiled.spec)
    same = [tuple(p.shape) for p in compiled.parameters()] == [tuple(p.shape) for p in hand.parameters()] and all(
        torch.equal(a, b) for a, b in zip(compiled.parameters(), hand.parameters()))
    if not same:
        print(f"bench_step: {size}: the compiled and hand-written M2 do not start from equal weights", file=sys.stderr)
    weight = compiled.objective.alpha_for(2 * batch, batch)  # the compiled model's weight of log q(y|x)
    layout = ((("y",), batch), ((), batch))  # make_batch: B labelled rows, then B unlabelled
    compiled.check_inputs = False  # the trainer's setting
    out = [Contender("hand-written", hand, lambda x, y: hand.loss(x, y, weight), device),
           Contender("compiled", compiled, lambda x, y: compiled_loss(compiled.loss, x, y, layout), device)]
    if args.no_torch_compile:
        out += [Contender(n, why="skipped (--no-torch-compile)") for n in CONTENDERS[2:4]]
    else:
        import torch._dynamo as dynamo

        dynamo.reset()  # each cell compiles afresh: no recompile limit, no dynamic shapes carried over
        mode = None if args.compile_mode == "default" else args.compile_mode
        ctc = fresh_compiled()
        ctc.check_inputs = False
        fn_c = torch.compile(ctc.loss, fullgraph=True, mode=mode)
        out.append(Contender(CONTENDERS[2], ctc, lambda x, y: compiled_loss(fn_c, x, y, layout), device))
        htc = fresh_hand(compiled.spec)
        fn_h = torch.compile(htc.loss, fullgraph=False, mode=mode)
        out.append(Contender(CONTENDERS[3], htc, lambda x, y: fn_h(x, y, weight), device))
        for c in out[2:]:
            c.mark_step = args.compile_mode == "reduce-overhead" and device.type == "cuda"
    if pyro_m2 is None:
        out.append(Contender("Pyro", why=pyro_why))
    else:
        pm = pyro_m2.PyroM2.like(fresh_hand(compiled.spec))
        out.append(Contender("Pyro", pm, lambda x, y: pm.loss(x, y, weight), device))
    gen = torch.Generator().manual_seed(args.seed)
    batches = [make_batch(2 * batch, batch, device, gen, x_dim) for _ in range(8)]
    for c in out:
        c.batches, c.checks = batches, args.dist_checks == "on"
    return out


def warm_up(c: Contender, steps: int, device) -> None:
    """Run ``steps`` steps untimed (the torch.compile ones compile here: their seconds are kept)."""
    if c.why is not None:
        return
    t0 = time.perf_counter()
    try:
        time_steps(c.step, steps, device)
    except Exception as exc:  # a graph break under fullgraph, no C++ compiler, ...: a dash
        c.fail(f"failed in warm-up ({type(exc).__name__}: {first_line(exc)})")
        return
    c.warmup_s = time.perf_counter() - t0


def run_cell(cell: list[Contender], args, device) -> None:
    live = [c for c in cell if c.why is None]
    for c in live:  # steps per block: --steps, or enough for about --block-seconds
        if args.steps:
            c.steps = args.steps
        else:
            try:
                rate = time_steps(c.step, 2, device)
            except Exception as exc:
                c.fail(f"failed ({type(exc).__name__}: {first_line(exc)})")
                continue
            c.steps = max(3, min(500, round(rate * args.block_seconds)))
    for r in range(args.repeats):  # interleaved; the order rotates, so each goes first in turn
        live = [c for c in cell if c.why is None]
        k = r % max(1, len(live))
        for c in live[k:] + live[:k]:
            try:
                c.rates.append(time_steps(c.step, c.steps, device))
            except Exception as exc:
                c.fail(f"failed while timed ({type(exc).__name__}: {first_line(exc)})")


def run_phases(cell: list[Contender], args, device) -> None:
    """``--phases``: blocks of steps timed phase by phase (forward, backward, optimiser), interleaved
    as :func:`run_cell`'s; each block's mean seconds per step of each phase go into ``phases``."""
    for r in range(args.repeats):
        live = [c for c in cell if c.why is None]
        k = r % max(1, len(live))
        for c in live[k:] + live[:k]:
            try:
                times = [c.timed_step(device) for _ in range(c.steps)]
            except Exception as exc:
                c.fail(f"failed while timed by phase ({type(exc).__name__}: {first_line(exc)})")
                continue
            c.phases.append(tuple(sum(t[i] for t in times) / len(times) for i in range(3)))


def phases_table(rows: list[tuple[str, int, list[Contender]]]) -> list[str]:
    """Milliseconds per step of each phase, the minimum over the blocks (a shared machine's slow
    spells only add time, so the minimum is the least disturbed), and the compiled step's difference
    from the hand-written one's."""
    lines = ["| size | B | contender | forward | backward | optimiser |", "|---|---|---|---:|---:|---:|"]
    for size, batch, cell in rows:
        best = {}
        for c in cell:
            if c.why is None and c.phases:
                best[c.name] = [1e3 * min(p[i] for p in c.phases) for i in range(3)]
                lines.append(f"| {size} | {batch} | {c.name} | " + " | ".join(f"{v:.3f}" for v in best[c.name]) + " |")
        if "compiled" in best and "hand-written" in best:
            d = [a - b for a, b in zip(best["compiled"], best["hand-written"])]
            lines.append(f"| {size} | {batch} | compiled − hand-written | " + " | ".join(f"{v:+.3f}" for v in d) + " |")
    return lines


def median_of(c: Contender | None) -> float | None:
    return statistics.median(c.rates) if c is not None and c.why is None and c.rates else None


def ratio_of(a: Contender, b: Contender) -> tuple[float, float, float] | None:
    """``a``'s rate over ``b``'s as (median, min, max) of the ratios within each repeat, whose blocks
    ran next to each other (a shared machine's slow minutes slow both), or None where one has none."""
    if median_of(a) is None or median_of(b) is None:
        return None
    if len(a.rates) != len(b.rates):  # not paired (one failed part-way): the medians' ratio
        r = median_of(a) / median_of(b)
        return r, r, r
    pairs = [x / y for x, y in zip(a.rates, b.rates)]
    return statistics.median(pairs), min(pairs), max(pairs)


def peers_table(rows: list[tuple[str, int, list[Contender]]]) -> list[str]:
    """The Markdown table (and its footnotes) of the measured cells."""
    notes: list[str] = []

    def mark(why: str) -> str:
        if why not in notes:
            notes.append(why)
        return f"— [{notes.index(why) + 1}]"

    head = ["size", "B"] + list(CONTENDERS) + [f"{name} (target ≥ {t:g})" for name, _, _, t in RATIOS]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + "|"]
    for size, batch, cell in rows:
        by = {c.name: c for c in cell}
        cols = [size, str(batch)]
        for name in CONTENDERS:
            c = by[name]
            med = median_of(c)
            cols.append(mark(f"{name}: {c.why}") if med is None else
                        f"{med:.1f} ({min(c.rates):.1f}–{max(c.rates):.1f})")
        for _, a, b, target in RATIOS:
            r = ratio_of(by[a], by[b])
            cols.append("—" if r is None else f"{r[0]:.2f} ({r[1]:.2f}–{r[2]:.2f}) {'✓' if r[0] >= target else '✗'}")
        lines.append("| " + " | ".join(cols) + " |")
    lines += [""] + [f"[{i + 1}] {why}" for i, why in enumerate(notes)]
    return lines


def peers(args) -> int:
    import tempfile

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("bench_step: CUDA is not available", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    unknown = [s for s in sizes if s not in PEER_SIZES]
    if unknown or not sizes:
        print(f"bench_step: --sizes takes {', '.join(PEER_SIZES)}; got {args.sizes!r}", file=sys.stderr)
        return 2
    batches = [int(b) for b in args.batches.split(",") if b.strip()]
    sys.path.insert(0, ROOT)
    pyro_m2, pyro_why = load_pyro()
    rows = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as spec_dir:
        for size in sizes:
            for batch in batches:
                print(f"bench_step --peers: {size}, B = {batch} ...", file=sys.stderr, flush=True)
                cell = build_cell(size, batch, args, device, spec_dir, pyro_m2, pyro_why)
                for c in cell:
                    warm_up(c, args.warmup, device)
                run_cell(cell, args, device)
                if args.phases:
                    run_phases(cell, args, device)
                rows.append((size, batch, cell))
    pyro_version = "not installed"
    if pyro_m2 is not None:
        import pyro

        pyro_version = pyro.__version__
    steps = f"{args.steps} steps" if args.steps else f"steps for about {args.block_seconds:g} s"
    print(f"## Training steps per second: compiled M2 beside its peers ({time.perf_counter() - started:.0f} s)")
    print()
    print(f"torch {torch.__version__}, pyro {pyro_version}, device {device}, threads {torch.get_num_threads()}, "
          f"{args.repeats} blocks of {steps} per contender, interleaved (order rotating); "
          f"B labelled + B unlabelled examples a step, y enumerated ({PEER_CLASSES} classes), one Adam step "
          f"(lr 1e-3); a cell is the median steps/s of the blocks (min–max), a ratio the median (min–max) of "
          f"the ratios within each repeat; "
          f"torch.compile mode {args.compile_mode}; torch.distributions default argument checks "
          f"{args.dist_checks} (the hand-written M2 builds its Normals with the default; the compiled and Pyro "
          f"M2 switch them off)")
    warm = []
    for size, batch, cell in rows:
        parts = [f"{c.name} {c.warmup_s:.1f} s" for c in cell if "torch.compile" in c.name and c.why is None]
        if parts:
            warm.append(f"{size} B={batch}: {', '.join(parts)}")
    if warm:
        print(f"torch.compile warm-up ({args.warmup} steps, compiling included): " + "; ".join(warm))
    if not args.no_torch_compile:
        print("compiled + torch.compile: fullgraph=True, given the batch's layout, check_inputs = False; "
              "hand-written + torch.compile: fullgraph=False (M2.loss branches on labelled.any() and indexes "
              "rows by a mask, which fullgraph=True refuses as data-dependent)")
    print()
    for line in peers_table(rows):
        print(line)
    if args.phases:
        print()
        print(f"### Milliseconds per step by phase (--phases: the minimum over {args.repeats} blocks)")
        print()
        for line in phases_table(rows):
            print(line)
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", default=os.path.join(ROOT, "specs", "m2.gvae"),
                    help="an M2-shaped spec; the hand-written model takes its sizes (e.g. specs/digits_m2.gvae)")
    ap.add_argument("--repeats", type=int, default=None, help="timed blocks per contender (7; --peers --quick: 2)")
    ap.add_argument("--steps", type=int, default=None,
                    help="steps per timed block (20; --peers: enough for about --block-seconds; --quick: 3)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed steps first (5; --peers: 3)")
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--labelled", type=int, default=10)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (0: leave as is; --peers: 1)")
    ap.add_argument("--seed", type=int, default=0)
    peer = ap.add_argument_group("--peers: the side-by-side table")
    peer.add_argument("--peers", action="store_true", help="time the five contenders side by side (see above)")
    peer.add_argument("--sizes", default=None, help="comma-separated: digits, mnist (default both; --quick: digits)")
    peer.add_argument("--batches", default=None, help="comma-separated B (default 16,64,256; --quick: 16)")
    peer.add_argument("--block-seconds", type=float, default=0.5, help="target length of a timed block without --steps")
    peer.add_argument("--compile-mode", default="default",
                      help="torch.compile mode: default, reduce-overhead (CUDA graphs on a GPU), max-autotune, ...")
    peer.add_argument("--no-torch-compile", action="store_true", help="skip the two torch.compile contenders")
    peer.add_argument("--dist-checks", choices=("on", "off"), default="on" if Distribution._validate_args else "off",
                      help="torch.distributions' default argument checks during every step (default: the "
                           "process's, on unless python -O)")
    peer.add_argument("--phases", action="store_true",
                      help="also time each contender's forward, backward and optimiser step apart (the minimum "
                           "over blocks: steadier than steps/s on a shared machine)")
    peer.add_argument("--quick", action="store_true", help="one size, one B, few steps (a smoke test)")
    args = ap.parse_args(argv)
    if args.peers:
        quick = args.quick
        args.repeats = args.repeats if args.repeats is not None else (2 if quick else 7)
        args.steps = args.steps if args.steps is not None else (3 if quick else 0)
        args.warmup = args.warmup if args.warmup is not None else 3
        args.threads = args.threads if args.threads is not None else 1
        args.sizes = args.sizes or ("digits" if quick else "digits,mnist")
        args.batches = args.batches or ("16" if quick else "16,64,256")
        return peers(args)
    args.repeats = 7 if args.repeats is None else args.repeats
    args.steps = 20 if args.steps is None else args.steps
    args.warmup = 5 if args.warmup is None else args.warmup
    args.threads = 0 if args.threads is None else args.threads
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("bench_step: CUDA is not available", file=sys.stderr)
        return 2
    sys.path.insert(0, ROOT)
    import graphvae

    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    compiled = graphvae.compile_spec(args.spec).to(device)
    hand = m2_like(compiled.spec).to(device)  # the same hand-written M2 that benchmarks/handwritten_m2.py trains
    opt_c = torch.optim.Adam(compiled.parameters(), lr=1e-3)
    opt_h = torch.optim.Adam(hand.parameters(), lr=1e-3)
    batches = [make_batch(args.batch, args.labelled, device, gen, compiled.spec.observed[0].size) for _ in range(8)]
    i = {"c": 0, "h": 0}

    def step_compiled():
        x, y = batches[i["c"] % len(batches)]
        i["c"] += 1
        opt_c.zero_grad(set_to_none=True)
        compiled.loss({"x": x, "y": y}).backward()
        opt_c.step()

    def step_hand():
        x, y = batches[i["h"] % len(batches)]
        i["h"] += 1
        opt_h.zero_grad(set_to_none=True)
        hand.loss(x, y, compiled.config.alpha).backward()
        opt_h.step()

    time_steps(step_compiled, args.warmup, device)
    time_steps(step_hand, args.warmup, device)
    rates_c, rates_h = [], []
    for r in range(args.repeats):  # interleaved, alternating which goes first
        pair = [(step_compiled, rates_c), (step_hand, rates_h)]
        for step, rates in (pair if r % 2 == 0 else pair[::-1]):
            rates.append(time_steps(step, args.steps, device))
    med_c, med_h = statistics.median(rates_c), statistics.median(rates_h)
    print(f"{os.path.relpath(args.spec, ROOT)}: device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, batch {args.batch} "
          f"({args.labelled} labelled), {args.repeats} repeats x {args.steps} steps")
    print(f"compiled M2     {med_c:8.1f} steps/s   (blocks: {', '.join(f'{r:.1f}' for r in rates_c)})")
    print(f"hand-written M2 {med_h:8.1f} steps/s   (blocks: {', '.join(f'{r:.1f}' for r in rates_h)})")
    target = "  (target >= 0.95)" if os.path.basename(args.spec) == "m2.gvae" else ""
    print(f"ratio compiled / hand-written: {med_c / med_h:.3f}{target}")
    print("compile time per spec (parse + validate + build):")
    for path, seconds in compile_times(os.path.join(ROOT, "specs", "*")):
        print(f"  {path:40s} {seconds * 1000:8.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
