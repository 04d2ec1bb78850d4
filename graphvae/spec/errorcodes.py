"""Every diagnostic code, registered once: its name, section, severity and the rule it reports (torch-free).

In the manner of mypy's ``errorcodes.py``: a diagnostic is made from one of the
:class:`ErrorCode` objects below (``error(codes.CYCLE, ...)``), never from a bare string, so
a code that is not registered here cannot be reported.  ``docs/validation.md`` holds the
tables :func:`graphvae.spec.reference.code_tables` generates from this registry, and the
tests check that each code with ``golden=True`` has a spec in ``tests/golden/`` that
triggers it.
"""

from __future__ import annotations

from dataclasses import dataclass

ERROR, WARNING = "error", "warning"

FILES = "Files"
FRONT_END = "Syntax (both languages)"
YAML = "YAML structure"
STRUCTURE = "Names and structure"
FACTORS = "Factors"
OBJECTIVE = "Objective and train blocks"
PLATES = "Plates"
COMPILER = "Compiler"
SECTIONS = (FILES, FRONT_END, YAML, STRUCTURE, PLATES, FACTORS, OBJECTIVE, COMPILER)


@dataclass(frozen=True)
class ErrorCode:
    code: str  # kebab-case, printed in brackets: [undefined-name]
    section: str  # one of SECTIONS
    summary: str  # the rule, as the docs' table states it (Markdown)
    severity: str = ERROR  # ERROR or WARNING
    golden: bool = True  # a spec file can trigger it, so tests/golden/ must hold one that does

    def __str__(self) -> str:
        return self.code


CODES: dict[str, ErrorCode] = {}


def register(code: str, section: str, summary: str, severity: str = ERROR, golden: bool = True) -> ErrorCode:
    if code in CODES:
        raise ValueError(f"diagnostic code {code!r} is registered twice")
    if section not in SECTIONS or severity not in (ERROR, WARNING):
        raise ValueError(f"diagnostic code {code!r}: unknown section {section!r} or severity {severity!r}")
    CODES[code] = ErrorCode(code, section, summary, severity, golden)
    return CODES[code]


# -- files --------------------------------------------------------------------------------------
UNKNOWN_EXTENSION = register("unknown-extension", FILES, "spec files end in `.gvae` (DSL), `.yaml` or `.yml`")
UNREADABLE_FILE = register("unreadable-file", FILES, "missing, a folder, unreadable, or not UTF-8")

# -- both front ends ----------------------------------------------------------------------------
SYNTAX = register("syntax", FRONT_END,
                  "text that does not parse, saying what was expected: `expected '~' or '=' after the parents of "
                  "'z' ..., found 'Normal'`; the DSL reports one error per line, continuing after each until a "
                  "brace is involved; YAML that is not YAML, or holds several documents")
MISSING_MODEL = register("missing-model", FRONT_END, "no `model NAME` line (DSL) or `model:` key (YAML); an empty file")
DUPLICATE_MODEL = register("duplicate-model", FRONT_END, "a second `model` line (DSL)")
DUPLICATE_BLOCK = register("duplicate-block", FRONT_END,
                           "a second block of one kind, e.g. two `encoder` blocks (DSL); write its items in one")
TOO_LARGE = register("too-large", FRONT_END,
                     "a spec file over 128 KB; a YAML document nested too deeply to read, or whose aliases "
                     "expand it by more than 100,000 nodes (a \"billion laughs\")")
NUMBER_RANGE = register("number-out-of-range", FRONT_END,
                        "a number literal too large to use: a whole number beyond 2^63 - 1 (write a large real "
                        "with an exponent, `1e30`), or a decimal beyond about 1.8e308 (`1e999`)")

# -- YAML structure -----------------------------------------------------------------------------
UNKNOWN_KEY = register("unknown-key", YAML, "a key the place does not take (with \"did you mean\"), e.g. `givn`")
WRONG_TYPE = register("wrong-type", YAML,
                      "a value of the wrong kind: a list where a mapping belongs, a name that is not an identifier, "
                      "a number where a whole number belongs")
MISSING_KEY = register("missing-key", YAML,
                       "a required key is absent: a variable's `role` or `domain`; a factor's `dist` or `net`")
DUPLICATE_KEY = register("duplicate-key", YAML, "a key given twice in one mapping")
CONFLICTING_KEYS = register("conflicting-keys", YAML, "a variable gives both `shape` and `classes`")
YAML_TAG = register("yaml-tag", YAML,
                    "a tag that is not a plain value, list or mapping (`!!python/object/apply:...`, `!!binary`, "
                    "`!custom`); nothing is constructed")

# -- names and structure ------------------------------------------------------------------------
UNKNOWN_ROLE = register("unknown-role", STRUCTURE, "roles are observed, supervised and latent")
UNKNOWN_DOMAIN = register("unknown-domain", STRUCTURE,
                          "domains are real, positive, unit, binary, categorical and simplex")
NO_OBSERVED = register("no-observed", STRUCTURE, "a model needs at least one observed variable")
DUPLICATE = register("duplicate", STRUCTURE,
                     "a variable declared twice (also one named as a plate's slot, `y_0` beside `y[k]`); two factors "
                     "for one name in a block; a parent named twice; also settings, estimators, betas, family "
                     "parameters and options given twice")
NAME_CLASH = register("name-clash", STRUCTURE, "a deterministic node has the name of a variable")
UNDEFINED_NAME = register("undefined-name", STRUCTURE,
                          "a stochastic factor for an undeclared variable; a parent that is neither a variable nor a "
                          "deterministic node of the same block; an estimator or beta for an undeclared variable")
CYCLE = register("cycle", STRUCTURE, "q or p has a directed cycle; the message prints it, e.g. `y -> z -> y`")
MISSING_FACTOR = register("missing-factor", STRUCTURE,
                          "a latent or supervised variable needs exactly one factor in q and one in p; an observed "
                          "variable one in p")
OBSERVED_IN_ENCODER = register("observed-in-encoder", STRUCTURE,
                               "observed variables are given, so q has no factor for them")
ENCODER_DEPENDENCY = register("encoder-dependency", STRUCTURE,
                              "q conditions only on observed variables and other q nodes (in any DAG order, so a "
                              "label may be inferred after the style)")
UNUSED = register("unused", STRUCTURE,
                  "a declared variable in no factor (it takes no part in the model and gets no other diagnostics "
                  "about factors); a deterministic node no factor uses", WARNING)

# -- plates -------------------------------------------------------------------------------------
BAD_PLATE_SIZE = register("bad-plate-size", PLATES,
                          "a plate needs a bound, a whole number K >= 1 written as a number: `plate k < 3`; "
                          "`plate k` (unbounded), `plate k < 0` and `plate k < n` are refused")
DUPLICATE_PLATE = register("duplicate-plate", PLATES, "a plate declared twice, or named like a variable")
UNDEFINED_PLATE = register("undefined-plate", PLATES, "a variable declared in a plate (`y[j] : ...`) no `plate j` declares")
NESTED_PLATE = register("nested-plate", PLATES,
                        "a variable in two plates (`y[k, j]`): plates do not nest; declare one plate of K * J slots")
UNINDEXED_SLOT = register("unindexed-slot", PLATES,
                          "a plate variable named without an index (`y` for `y[k]`): write `y[k]`, `y[k-1]`, `y[*]` "
                          "or `y[0]`; also a plate variable's factor not written `y[k]`")
SLOT_OUTSIDE_PLATE = register("slot-outside-plate", PLATES,
                              "the plate index used outside its plate: a factor of a variable outside plate k "
                              "reading `y[k]` (read `y[*]` or `y[0]`), or of another plate")
BAD_INDEX = register("bad-index", PLATES,
                     "an index that is not the plate's (`y[j]` for `y[k]`), a fixed slot out of range (`y[3]` of "
                     "`plate k < 3`), an index on a variable in no plate, a slot before the previous "
                     "(`y[k-2]`: write the chain through `y[k-1]`)")
LATER_SLOT = register("later-slot", PLATES,
                      "a factor of slot k reads a later slot (`z[k+1]`): slots see only earlier ones, so that the "
                      "chain over slots is a DAG")
BAD_COUNT = register("bad-count", PLATES,
                     "a plate's count variable is not declared, is in a plate, is observed, or is not "
                     "`categorical[K+1]` (the values 0..K)")

# -- factors ------------------------------------------------------------------------------------
UNKNOWN_FAMILY = register("unknown-family", FACTORS, "not a registered family (`graphvae.spec.families.FAMILIES`)")
UNKNOWN_PARAMETER = register("unknown-parameter", FACTORS,
                             "a named argument the family lacks (aliases such as `logits` for `probs` count)")
BAD_PARAMETER = register("bad-parameter", FACTORS,
                         "too many positional arguments; `uniform` not alone or for a family without a uniform form "
                         "(Bernoulli, Categorical and Dirichlet have one); a literal that is not a number or breaks "
                         "its torch constraint (`scale > 0`, `probs` in [0, 1]; a scalar `probs` of Categorical only "
                         "when it equals 1/K)")
MISSING_PARAMETER = register("missing-parameter", FACTORS, "a parameter neither given nor produced by a network")
IGNORED_PARENTS = register("ignored-parents", FACTORS, "a factor with parents whose arguments are all literals",
                           WARNING)
UNKNOWN_NETWORK = register("unknown-network", FACTORS, "networks are `mlp` and `linear`")
UNKNOWN_OPTION = register("unknown-option", FACTORS,
                          "an option the network or the estimator does not take: networks take `activation`, "
                          "`batchnorm` and `dropout`, `relax` takes `temperature`, the other estimators none")
BAD_OPTION = register("bad-option", FACTORS,
                      "an option's value breaks its constraint: `activation` is one of relu, softplus, tanh, sigmoid, "
                      "elu, leaky_relu, gelu, silu, identity; `batchnorm` true or false; `dropout` in [0, 1); "
                      "`temperature` a number > 0")
BAD_NETWORK = register("bad-network", FACTORS,
                       "widths are positive integers; `mlp` needs at least one hidden width; a deterministic "
                       "`linear` needs exactly one width, `linear` as a family argument none; a `conv` or `locate` "
                       "reads one image parent (a variable of shape [H, W], a `glimpse` or an `erase`), with positive channel "
                       "counts, an odd `kernel` and, for a conv as a deterministic node, `dense = n`; a `locate` as "
                       "a family argument fills one unconstrained parameter (a loc) of a `real[2]` variable; "
                       "`identity` is a family argument alone, with no widths or options, filling one unconstrained "
                       "parameter (a loc, logits) with its parents' real values, as many numbers as the variable")
BAD_ATTENTION = register("bad-attention", FACTORS,
                         "`glimpse(h, w)` is a deterministic node reading one image (a variable of shape [H, W] "
                         "or an `erase` node) at one position (a `real[2]` variable or a `locate` node); "
                         "`erase(h, w)` is a deterministic node blanking a window of one image variable, or of the "
                         "erase node it goes on from, at one position; `paste(h, w)` is a family's only network, of "
                         "a variable of shape [H, W], pairing patches of h·w values with positions; windows are "
                         "whole numbers >= 2 that fit the image; none takes options")
NONNEGATIVE_PATCH = register("nonnegative-patch", FACTORS,
                             "a `paste`'s patch is an `mlp` or `conv` node ending in relu, softplus or sigmoid, so "
                             "it can only raise the canvas (add ink), never lower it; end the patch in `linear`",
                             WARNING)
NETWORK_NEEDS_PARENT = register("network-needs-parent", FACTORS,
                                "a network (or a deterministic node) needs parents; a root factor takes literals or "
                                "`uniform`")
SUPPORT_MISMATCH = register("support-mismatch", FACTORS, "the family's support does not fit the variable's domain "
                                                         "(see *Supports* below)")
BAD_SHAPE = register("bad-shape", FACTORS,
                     "dimensions are positive integers; categorical and simplex take exactly one, K >= 2")
LARGE_MODEL = register("large-model", FACTORS,
                      "the networks and one training step need more than 4 GB by the estimate (weights four "
                      "times: with gradients and Adam's moments; activations at the spec's batch size, samples "
                      "and enumerated values); the message gives the figures", WARNING)
MODEL_TOO_LARGE = register("model-too-large", FACTORS,
                           "the same estimate exceeds 64 GB: `mlp(100000, 100000)`, `real[100000000]`, "
                           "`samples = 100000` and the like cannot be allocated")
SHAPE_MISMATCH = register("shape-mismatch", FACTORS,
                          "the family's event rank exceeds the variable's number of dimensions (Categorical for a "
                          "scalar `real`)")

# -- objective and train blocks -----------------------------------------------------------------
UNKNOWN_SETTING = register("unknown-setting", OBJECTIVE,
                           "a name that is not a setting of the block (the tables in "
                           "[language.md](language.md#the-objective-block))")
BAD_SETTING = register("bad-setting", OBJECTIVE,
                       "a value of the wrong type or outside its constraint (`lr > 0`, `validation` in [0, 1), "
                       "`optimizer` one of ...); `labelled_only` with `labelled_per_batch = 0`")
UNKNOWN_ESTIMATOR = register("unknown-estimator", OBJECTIVE,
                             "estimators are `enumerate`, `relax(temperature = t)` and `reinforce`")
BAD_ESTIMATOR = register("bad-estimator", OBJECTIVE,
                         "estimators are for discrete (binary, categorical) latent or supervised variables; `relax` "
                         "needs a family with a relaxed form in q (Categorical, Bernoulli)")
MISSING_ESTIMATOR = register("missing-estimator", OBJECTIVE,
                             "a discrete latent or supervised variable without an estimator gets the default", WARNING)
LARGE_ENUMERATION = register("large-enumeration", OBJECTIVE,
                             "the enumerated variables have more than 1024 joint values", WARNING)
BAD_BETA = register("bad-beta", OBJECTIVE, "a KL weight for a variable that is not latent, or a weight < 0")

# -- the compiler -------------------------------------------------------------------------------
COMPILE = register("compile", COMPILER,
                   "a factor validation accepted could not be built (a bug: please report it with the spec); no "
                   "spec file is known to trigger it", golden=False)
