"""The argument parser of ``graphvae``: one sub-parser per command (torch-free)."""

from __future__ import annotations

import argparse

from graphvae.spec.settings import DATASETS, FLAGS, SETTINGS, Anything

TRAIN = SETTINGS["train"]


def _add_check(sub):
    p = sub.add_parser("check", help="validate spec files and report every diagnostic")
    p.add_argument("files", nargs="+", metavar="FILE", help="spec files (.gvae DSL or .yaml)")
    p.add_argument("--format", choices=["text", "json"], default="text", help="diagnostic format")


def _add_fmt(sub):
    p = sub.add_parser("fmt", help="print a spec in canonical layout, or convert DSL <-> YAML")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--to", choices=["dsl", "yaml"], default=None, help="output language (default: the input's)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--check", action="store_true", help="exit 1 if the file is not canonically formatted")
    g.add_argument("--in-place", "-i", action="store_true", help="rewrite the file (atomically)")


def _add_compile(sub):
    p = sub.add_parser("compile", help="compile a spec and print the modules, factorisation and objective")
    p.add_argument("spec", metavar="SPEC")


def _add_setting_flags(p, names, default: str) -> None:
    """A ``--flag`` per train setting: its type, choices and help from the settings table
    (graphvae.spec.settings); ``default`` says where the value comes from without the flag."""
    for name in names:
        row = TRAIN[name]
        kind = {int: int, float: float}.get(row.type)
        choices = list(row.constraint.choices) if row.constraint.closed else None
        says = "" if row.constraint.closed or isinstance(row.constraint, Anything) else f"; {row.constraint.words}"
        help_text = f"{row.help}{says} (default: {default.format(row.default)})".replace("%", "%%")
        optional = {"nargs": "?", "const": "true", "metavar": "true|false"} if row.type is bool else {}
        p.add_argument("--" + name.replace("_", "-"), dest=name, type=kind, choices=choices, default=None,
                       help=help_text, **optional)  # a bool flag alone means true (--compile)


def _add_data_flags(p):
    _add_setting_flags(p, ("data", "data_dir"), "the run's")
    _add_setting_flags(p, ("device",), "auto")


def _add_train(sub):
    p = sub.add_parser("train", help="train a spec; the spec's train block gives defaults, flags override")
    p.add_argument("spec", metavar="SPEC", nargs="?", help="spec file (not needed with --resume)")
    _add_setting_flags(p, FLAGS, "{!r}, unless the spec's train block sets it")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help=f"override any train setting: {', '.join(TRAIN)}")
    p.add_argument("--out", default=None, help="run folder (default: runs/<model>)")
    p.add_argument("--resume", default=None, metavar="RUN", help="continue the run in this folder exactly")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--baseline", action="store_true",
                   help="then train the labelled-only baseline (graphvae baseline) and report the gain")
    p.add_argument("--nproc", type=int, default=None, metavar="N",
                   help="train with N processes on this machine (runs torchrun --standalone --nproc_per_node N "
                        "-m graphvae train ...; one per GPU on CUDA); the batch sizes stay global")
    p.add_argument("--reshard", action="store_true",
                   help="with --resume: continue with another number of processes than the run had (the batches "
                        "are dealt out anew, so not an exact continuation)")


def _add_baseline(sub):
    p = sub.add_parser("baseline", help="train a run's spec on its labelled examples alone and report the gain")
    p.add_argument("run", metavar="RUN")
    p.add_argument("--device", default=None, help="the torch device (default: the run's)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _add_eval(sub):
    p = sub.add_parser("eval", help="test error per supervised variable, ELBO and IWAE-K of a run; "
                       "with --factors, MIG and DCI against known factors")
    p.add_argument("run", metavar="RUN")
    _add_data_flags(p)
    p.add_argument("--samples", "-k", type=int, default=None, help="K of the IWAE bound")
    p.add_argument("--checkpoint", choices=["best", "last"], default="best")
    p.add_argument("--split", choices=["test", "validation"], default="test")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--factors", nargs="?", const="", default=None, metavar="NAMES",
                   help="instead: MIG and DCI of the run's codes (every latent and supervised variable's mean "
                        "or mode) on every example of the .npz file --data, against its arrays NAMES "
                        "(comma-separated; alone: those its _factors array lists); see docs/disentanglement.md")
    p.add_argument("--bins", type=int, default=20, help="with --factors: MIG's histogram bins (default 20)")
    p.add_argument("--probe", choices=["linear", "trees"], default="linear",
                   help="with --factors: DCI's probe, Lasso/logistic or gradient-boosted trees (default linear)")
    p.add_argument("--seed", type=int, default=0, help="with --factors: seed of DCI's split (default 0)")


def _add_sample(sub):
    p = sub.add_parser("sample", help="write PNG grids: generation per class, style transfer, reconstructions, traversals")
    p.add_argument("run", metavar="RUN")
    p.add_argument("--out", required=True, help="folder for the PNG files (with --format npz|csv: the file)")
    _add_data_flags(p)
    p.add_argument("--n", type=int, default=8, help="columns per grid (with --format npz|csv: draws; default 8)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint", choices=["best", "last"], default="best")
    p.add_argument("--format", choices=["png", "npz", "csv"], default="png",
                   help="png: picture grids in the folder --out; npz, csv: --n draws of every variable as "
                        "arrays in the file --out (default: png)")
    p.add_argument("--given", action="append", default=None, metavar="NAME=VALUE",
                   help="with --format npz|csv: clamp a latent or supervised variable, e.g. y=3 or z=0,1.5 "
                        "(repeat for several)")


def _add_array_command(sub, name: str, help_text: str):
    p = sub.add_parser(name, help=help_text)
    p.add_argument("run", metavar="RUN")
    p.add_argument("--data", default=None, metavar="DATA",
                   help="an .npz file with arrays named after the observed variables (every example), or a data "
                        "set (digits, mnist, fashion-mnist, kmnist) (default: the run's data)")
    p.add_argument("--split", choices=["train", "validation", "test"], default=None,
                   help="the run's split of DATA (default: every example of an .npz file, the test split of a data set)")
    p.add_argument("--out", required=True, metavar="FILE", help="output file: .npz or .csv (one column per entry)")
    _add_setting_flags(p, ("data_dir",), "the run's")
    _add_setting_flags(p, ("device",), "auto")
    p.add_argument("--checkpoint", choices=["best", "last"], default="best")
    p.add_argument("--seed", type=int, default=0, help="seed of the latent draws (default: 0)")


def _add_predict(sub):
    _add_array_command(sub, "predict", "write the supervised variables' predictions from q (and class "
                                       "probabilities) for a data file as .npz or .csv")


def _add_encode(sub):
    _add_array_command(sub, "encode", "write q's posterior means and parameters of the latent variables for a "
                                      "data file as .npz or .csv")


def _add_reconstruct(sub):
    _add_array_command(sub, "reconstruct", "write the reconstructions (means of p(x | encoded latents)) of a data "
                                           "file as .npz or .csv")


def _add_plot(sub):
    p = sub.add_parser("plot", help="draw the training curves of a run")
    p.add_argument("run", metavar="RUN")
    p.add_argument("-o", "--out", default=None, help="image file (default: RUN/curves.png)")


def _add_render(sub):
    p = sub.add_parser("render", help="draw the model graph, or print its math as LaTeX")
    p.add_argument("spec", metavar="SPEC", help="spec file or run folder")
    p.add_argument("-o", "--out", default=None, help="output file: .svg .png .pdf .dot")
    p.add_argument("--only", choices=["encoder", "decoder"], default=None)
    p.add_argument("--latex", action="store_true", help="print the factorisation and objective in LaTeX")


def _add_data(sub):
    p = sub.add_parser("data", help="get a data set: graphvae data download mnist|fashion-mnist|kmnist, or make "
                                    "one: graphvae data make multi-mnist|shaded-shapes")
    data = p.add_subparsers(dest="data_command", metavar="ACTION")
    data.required = True
    d = data.add_parser("download", help="fetch and verify a data set's four IDX files from its public mirrors")
    d.add_argument("name", metavar="NAME", choices=[n for n in DATASETS if n != "digits"],
                   help=f"{', '.join(n for n in DATASETS if n != 'digits')} (digits comes with scikit-learn)")
    d.add_argument("--dir", default=None, metavar="DIR",
                   help="put the files in DIR/NAME and train with --data-dir DIR (default: $GRAPHVAE_DATA, "
                        "else ~/.cache/graphvae/data, where --data NAME looks)")
    d.add_argument("--mirror", action="append", default=None, help=argparse.SUPPRESS)  # a base URL, for tests
    m = data.add_parser("make", help="write a synthetic data set with known factors as a deterministic .npz file")
    made = m.add_subparsers(dest="dataset", metavar="NAME")
    made.required = True
    mm = made.add_parser("multi-mnist", help="canvases of 0..K digits at random places (Eslami et al.'s AIR)")
    mm.add_argument("--max-digits", type=int, required=True, metavar="K", help="digits per canvas: 0..K, uniform")
    mm.add_argument("--source", choices=["mnist", "digits"], default="mnist",
                    help="digit images: MNIST 28x28 (--data-dir, $GRAPHVAE_DATA) or scikit-learn's 8x8 digits")
    mm.add_argument("--split", choices=["train", "test"], default="train", help="the source's split (default: train)")
    mm.add_argument("--canvas", type=int, default=None, metavar="S",
                    help="canvas side in pixels (default: 50 for mnist, 16 for digits)")
    mm.add_argument("--data-dir", default=None, metavar="DIR", help="where to look for MNIST first")
    ss = made.add_parser("shaded-shapes", help="Lambert-shaded 3-D shapes under known lights (a Yale B stand-in)")
    ss.add_argument("--identities", type=int, default=38, metavar="I", help="distinct shapes (default: 38)")
    ss.add_argument("--size", type=int, default=32, metavar="S", help="image side in pixels (default: 32)")
    for q, n in ((mm, 10000), (ss, 2432)):
        q.add_argument("--out", required=True, metavar="FILE.npz", help="the .npz file to write")
        q.add_argument("--count", type=int, default=n, metavar="N", help=f"examples (default: {n})")
        q.add_argument("--seed", type=int, default=0, help="fixes every array (default: 0)")
        q.add_argument("--force", action="store_true", help="overwrite FILE.npz if it exists")
        q.add_argument("--preview", default=None, metavar="FILE.png", help="also draw the first examples as a grid")

def build_parser() -> argparse.ArgumentParser:
    from graphvae import __version__

    parser = argparse.ArgumentParser(
        prog="graphvae",
        description="Compile declarative semi-supervised VAE specs to PyTorch, train, evaluate and render them.",
    )
    parser.add_argument("--version", action="version", version=f"graphvae {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for add in (_add_check, _add_fmt, _add_compile, _add_train, _add_baseline, _add_eval, _add_sample,
                _add_predict, _add_encode, _add_reconstruct, _add_plot, _add_render, _add_data):
        add(sub)
    return parser
