"""Plates: K copies of a group of variables that share networks, written out into ordinary ones (torch-free).

A spec as written may declare ``plate k < 3 count n`` and variables ``y[k] : ...``.  Factors
name slots by index: ``y[k]`` is the factor's own slot, ``z[k-1]`` the slot before (absent for
slot 0, whose shared network reads zeros there), ``y[*]`` every slot (concatenated, in slot
order) and ``y[0]`` one fixed slot.  :func:`expand` checks these (codes in the *Plates* section
of :mod:`graphvae.spec.errorcodes`) and writes the spec out:

* each plate variable ``y`` becomes ``y_0 .. y_{K-1}``, each with ``Variable.slot`` set;
* each factor ``y[k] | ...`` becomes K factors ``y_i``, all with ``Factor.shared == "y[k]"``
  (the compiler builds that network once), ``Factor.slot`` and ``Factor.absent`` (the parent
  positions a slot lacks);
* ``y[*]`` and ``y[0]`` parents of factors outside the plate are written out the same way;
* an estimator or KL weight for ``y`` holds for every copy.

The expanded spec keeps ``plates`` and holds the written one in ``Spec.written`` (``fmt``,
``render`` and the LaTeX writer print that form); everything downstream (the graphs,
validation, estimators, the compiler and the objective) sees ordinary variables.  Slot k of a
plate with a count variable n is present iff k < n: the compiler masks an absent slot's terms.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from graphvae.spec import errorcodes as codes
from graphvae.spec.diagnostics import Diagnostic, did_you_mean, error
from graphvae.spec.ir import Factor, Objective, Plate, Slot, Spec

__all__ = ["Ref", "parse_ref", "slot_name", "needs_expansion", "expand", "count_masks", "fold_repeats"]

_REF = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:\[(.*)\])?", re.S)
_RELATIVE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:([+-])(.+))?", re.S)


@dataclass(frozen=True)
class Ref:
    """A name as a factor writes it: ``kind`` is ``name`` (``x``), ``relative`` (``z[k-1]``:
    ``index`` k, ``offset`` -1), ``fixed`` (``y[0]``: ``slot`` 0) or ``all`` (``y[*]``)."""

    base: str
    kind: str = "name"
    index: str | None = None
    offset: int | float = 0
    slot: int | None = None


def parse_ref(text: str) -> Ref:
    m = _REF.fullmatch(text)
    if m is None or m.group(2) is None:
        return Ref(text)
    base, inner = m.group(1), m.group(2).strip()
    if inner == "*":
        return Ref(base, "all")
    if re.fullmatch(r"[+-]?\d+", inner):
        return Ref(base, "fixed", slot=int(inner))
    r = _RELATIVE.fullmatch(inner)
    if r is None:
        return Ref(base, "relative", index=inner, offset=0.5)  # unreadable: reported as a bad index
    offset: int | float = 0
    if r.group(2):
        try:
            offset = int(r.group(3)) if re.fullmatch(r"\d+", r.group(3)) else float(r.group(3))
        except ValueError:
            offset = 0.5
        offset = -offset if r.group(2) == "-" else offset
    return Ref(base, "relative", index=r.group(1), offset=offset)


def slot_name(base: str, index: int) -> str:
    """The expanded name of slot ``index`` of ``base``: ``y_0``."""
    return f"{base}_{index}"


def needs_expansion(spec: Spec) -> bool:
    """Whether ``spec`` is as written and uses plates (declares one, or indexes a name)."""
    if spec.written is not None:
        return False
    return bool(spec.plates) or any(v.indices for v in spec.variables) or any(
        "[" in name for _, f in spec.factors() for name in (f.name, *f.parents))


def count_masks(spec: Spec) -> dict[str, tuple[str, int]]:
    """``{expanded variable: (count variable, slot)}`` for every copy in a plate with a count:
    the variable is present iff its slot < the count's value."""
    counts = {p.name: p.count for p in spec.plates if p.count}
    return {v.name: (counts[v.slot.plate], v.slot.index) for v in spec.variables
            if v.slot is not None and v.slot.plate in counts}


def _plates(spec: Spec, diags: list[Diagnostic]) -> dict[str, int]:
    """The plates' sizes by name (a plate whose size is bad is left out)."""
    sizes: dict[str, int] = {}
    seen: dict[str, Plate] = {}
    variables = {v.name for v in spec.variables}
    for p in spec.plates:
        if p.name in seen:
            first = seen[p.name].span
            where = f"the first is at line {first.line}" if first else None
            diags.append(error(codes.DUPLICATE_PLATE, f"plate '{p.name}' is declared twice", p.span, where))
            continue
        seen[p.name] = p
        if p.name in variables:
            diags.append(error(codes.DUPLICATE_PLATE, f"plate '{p.name}' has the name of a variable; name the plate's "
                               "index otherwise", p.span))
        if p.size is None:
            diags.append(error(codes.BAD_PLATE_SIZE, f"plate '{p.name}' has no bound: write 'plate {p.name} < K' with "
                               "the number of slots K", p.span))
        elif isinstance(p.size, str):
            diags.append(error(codes.BAD_PLATE_SIZE, f"the bound of plate '{p.name}' is the name '{p.size}'; it must "
                               f"be a whole number: the most slots (a count variable says how many are present: "
                               f"'plate {p.name} < 3 count n')", p.size_span or p.span))
        elif isinstance(p.size, bool) or not isinstance(p.size, int) or p.size < 1:
            diags.append(error(codes.BAD_PLATE_SIZE, f"the bound of plate '{p.name}' must be a whole number >= 1, "
                               f"got {p.size}", p.size_span or p.span))
        else:
            sizes[p.name] = p.size
    return sizes


def _check_counts(spec: Spec, sizes: dict[str, int], diags: list[Diagnostic]) -> None:
    for p in spec.plates:
        if not p.count or p.name not in sizes or spec.plate(p.name) is not p:
            continue
        k = sizes[p.name]
        want = f"categorical[{k + 1}]"
        v = spec.variable(p.count)
        at = p.count_span or p.span
        if v is None:
            hint = did_you_mean(p.count, [x.name for x in spec.variables])
            diags.append(error(codes.BAD_COUNT, f"the count variable '{p.count}' of plate '{p.name}' is not declared; "
                               f"declare '{p.count} : latent {want}' (the counts 0..{k})", at, hint))
        elif v.indices:
            diags.append(error(codes.BAD_COUNT, f"the count variable '{p.count}' of plate '{p.name}' is itself in a "
                               "plate; a count is one variable", at))
        elif v.domain != "categorical" or tuple(v.shape) != (k + 1,):
            shape = f"[{', '.join(map(str, v.shape))}]" if v.shape else ""
            diags.append(error(codes.BAD_COUNT, f"the count variable '{p.count}' of plate '{p.name}' is "
                               f"{v.domain}{shape}; it must be {want} (the counts 0..{k})", at))


class _Expander:
    def __init__(self, spec: Spec, sizes: dict[str, int], diags: list[Diagnostic]):
        self.spec = spec
        self.sizes = sizes
        self.diags = diags
        self.names = {v.name for v in spec.variables}
        self.slot_vars: dict[str, str] = {}  # base variable -> its plate
        for v in spec.variables:
            if not v.indices:
                continue
            if len(v.indices) > 1:
                diags.append(error(codes.NESTED_PLATE, f"'{v.name}' is declared in {len(v.indices)} plates "
                                   f"({', '.join(v.indices)}); plates do not nest: declare one plate of all the "
                                   "slots", v.span))
            elif spec.plate(v.indices[0]) is None:
                hint = did_you_mean(v.indices[0], [p.name for p in spec.plates])
                diags.append(error(codes.UNDEFINED_PLATE, f"'{v.name}[{v.indices[0]}]' is in plate "
                                   f"'{v.indices[0]}', which no 'plate {v.indices[0]} < K' line declares", v.span,
                                   hint))
            elif v.indices[0] in sizes:
                self.slot_vars[v.name] = v.indices[0]
        self.bad_vars = {v.name for v in spec.variables if v.indices and v.name not in self.slot_vars}
        copies = {slot_name(base, i): base for base, plate in self.slot_vars.items() for i in range(sizes[plate])}
        for v in spec.variables:  # a copy's name taken by a declared variable: y_0 beside y[k]
            if not v.indices and v.name in copies:
                owner = spec.variable(copies[v.name])
                line = f" (line {owner.span.line})" if owner.span else ""
                diags.append(error(codes.DUPLICATE, f"'{v.name}' is the name of a slot of the plate variable "
                                   f"'{owner.name}[{owner.indices[0]}]'{line}; rename one of them", v.span))

    def _slots_of(self, base: str, nodes: dict[str, str]) -> str | None:
        return self.slot_vars.get(base) or nodes.get(base)

    def _own(self, f: Factor, nodes: dict[str, str]) -> tuple[str, str | None] | None:
        """The factor's base name and plate (None outside plates); None when it is reported."""
        r = parse_ref(f.name)
        plate = self._slots_of(r.base, nodes)
        if r.base in self.bad_vars:
            return None
        if plate is None:
            if r.kind != "name" and r.base in self.names:
                self.diags.append(error(codes.BAD_INDEX, f"'{r.base}' is in no plate, so its factor takes no index: "
                                        f"write '{r.base}'", f.name_span or f.span))
                return None
            return f.name, None
        if r.kind == "name":
            self.diags.append(error(codes.UNINDEXED_SLOT, f"'{r.base}' is a plate variable; its factor is written "
                                    f"'{r.base}[{plate}]' (one line for every slot)", f.name_span or f.span))
            return None
        if r.kind != "relative" or r.index != plate or r.offset != 0:
            self.diags.append(error(codes.BAD_INDEX, f"the factor of '{r.base}' is written '{r.base}[{plate}]' (one "
                                    f"line for every slot), not '{f.name}'", f.name_span or f.span))
            return None
        return r.base, plate

    def _parents(self, f: Factor, own: str | None, nodes: dict[str, str]):
        """The parents as entries ``(kind, name, span, offset)``; None when one is reported."""
        out, ok = [], True
        spans = f.parent_spans or (None,) * len(f.parents)
        at_f = f"the factor of '{f.name}'"
        for text, span in zip(f.parents, spans):
            span = span or f.span
            r = parse_ref(text)
            plate = self._slots_of(r.base, nodes)
            if r.base in self.bad_vars:
                ok = False
                continue
            if plate is None:
                if r.kind != "name" and (r.base in self.names or r.base in nodes):
                    self.diags.append(error(codes.BAD_INDEX, f"'{r.base}' is in no plate, so it takes no index: "
                                            f"write '{r.base}'", span))
                    ok = False
                out.append(("name", text, span, 0))
                continue
            k = self.sizes[plate]
            if r.kind == "name":
                self.diags.append(error(codes.UNINDEXED_SLOT, f"'{r.base}' is a plate variable ('{r.base}[{plate}]'): "
                                        f"name a slot, '{r.base}[{plate}]', '{r.base}[{plate}-1]', '{r.base}[*]' "
                                        f"(every slot) or '{r.base}[0]'", span))
                ok = False
            elif r.kind == "all":
                out.append(("all", r.base, span, 0))
            elif r.kind == "fixed":
                if not 0 <= r.slot < k:
                    self.diags.append(error(codes.BAD_INDEX, f"'{text}' is out of range: plate '{plate}' has the "
                                            f"slots 0..{k - 1}", span))
                    ok = False
                else:
                    out.append(("fixed", r.base, span, r.slot))
            elif r.index != plate:
                self.diags.append(error(codes.BAD_INDEX, f"'{text}': '{r.base}' is indexed by its plate's index "
                                        f"'{plate}', not '{r.index}'", span,
                                        f"write '{r.base}[{plate}]', '{r.base}[*]' or '{r.base}[0]'"))
                ok = False
            elif own != plate:
                where = "outside plate" if own is None else f"in plate '{own}', not in plate"
                self.diags.append(error(codes.SLOT_OUTSIDE_PLATE, f"'{text}' names the factor's own slot, but {at_f} "
                                        f"is {where} '{plate}'", span,
                                        f"read '{r.base}[*]' (every slot) or '{r.base}[0]' (one)"))
                ok = False
            elif not isinstance(r.offset, int):
                self.diags.append(error(codes.BAD_INDEX, f"'{text}' is no slot: write '{r.base}[{plate}]' or "
                                        f"'{r.base}[{plate}-1]' (the slot before)", span))
                ok = False
            elif r.offset > 0:
                self.diags.append(error(codes.LATER_SLOT, f"'{text}': slot {plate} of '{f.name}' cannot read a later "
                                        f"slot (the slots form a chain from 0 to K-1)", span,
                                        f"read '{r.base}[{plate}-1]', the slot before"))
                ok = False
            else:
                out.append(("relative", r.base, span, r.offset))
        return out if ok else None

    def _written_out(self, entries, slot: int | None):
        names, spans, absent = [], [], []
        for kind, name, span, arg in entries:
            if kind == "name":
                names.append(name)
                spans.append(span)
            elif kind == "all":
                for j in range(self.sizes[self._slots_of(name, self._nodes)]):
                    names.append(slot_name(name, j))
                    spans.append(span)
            elif kind == "fixed":
                names.append(slot_name(name, arg))
                spans.append(span)
            else:
                j = slot + arg
                if j < 0:
                    absent.append((len(names) + len(absent), slot_name(name, 0)))
                else:
                    names.append(slot_name(name, j))
                    spans.append(span)
        return tuple(names), tuple(spans), tuple(absent)

    def block(self, factors: tuple[Factor, ...]) -> tuple[Factor, ...]:
        # deterministic nodes of a plate, `h[k] | x = mlp(64)`: block-local, like any node
        nodes: dict[str, str] = {}
        for f in factors:
            r = parse_ref(f.name)
            if f.deterministic and r.kind == "relative" and r.offset == 0 and r.base not in self.names:
                if r.index in self.sizes:
                    nodes.setdefault(r.base, r.index)
                elif self.spec.plate(r.index) is None:
                    hint = did_you_mean(r.index, [p.name for p in self.spec.plates])
                    self.diags.append(error(codes.UNDEFINED_PLATE, f"the node '{f.name}' is in plate '{r.index}', "
                                            f"which no 'plate {r.index} < K' line declares", f.name_span or f.span,
                                            hint))
        self._nodes = nodes
        out: list[Factor] = []
        for f in factors:
            own = self._own(f, nodes)
            entries = self._parents(f, own[1] if own else None, nodes)
            if own is None or entries is None:
                continue
            base, plate = own
            if plate is None:
                names, spans, _ = self._written_out(entries, None)
                out.append(replace(f, parents=names, parent_spans=spans))
                continue
            for i in range(self.sizes[plate]):
                names, spans, absent = self._written_out(entries, i)
                out.append(replace(f, name=slot_name(base, i), parents=names, parent_spans=spans, shared=f.name,
                                   absent=absent, slot=Slot(base, plate, i)))
        return tuple(out)

    def variables(self):
        out = []
        for v in self.spec.variables:
            plate = self.slot_vars.get(v.name)
            if plate is None:
                if v.name not in self.bad_vars:
                    out.append(v)
                continue
            out += [replace(v, name=slot_name(v.name, i), indices=(), slot=Slot(v.name, plate, i))
                    for i in range(self.sizes[plate])]
        return tuple(out)

    def objective(self) -> Objective:
        def each(items):
            out = []
            for item in items:
                plate = self.slot_vars.get(item.var)
                out += [item] if plate is None else [replace(item, var=slot_name(item.var, i))
                                                     for i in range(self.sizes[plate])]
            return tuple(sorted(out, key=lambda e: e.var))

        obj = self.spec.objective
        return replace(obj, estimators=each(obj.estimators), betas=each(obj.betas))


def expand(spec: Spec) -> tuple[Spec | None, list[Diagnostic]]:
    """The spec with its plates written out, and the plates' diagnostics.  The spec is None when
    there are errors (they would only repeat as errors of the copies); a spec that needs no
    expansion comes back as it is."""
    if not needs_expansion(spec):
        return spec, []
    diags: list[Diagnostic] = []
    sizes = _plates(spec, diags)
    _check_counts(spec, sizes, diags)
    ex = _Expander(spec, sizes, diags)
    encoder, decoder = ex.block(spec.encoder), ex.block(spec.decoder)
    if any(d.is_error for d in diags):
        return None, diags
    return replace(spec, variables=ex.variables(), encoder=encoder, decoder=decoder, objective=ex.objective(),
                   written=spec), diags


def fold_repeats(diags: list[Diagnostic]) -> list[Diagnostic]:
    """The diagnostics of an expanded spec with each mistake of a plate factor reported once: the
    K copies of a factor share its text, so they repeat one diagnostic at one position (slot 0's
    is kept, saying how many copies have it)."""
    groups: dict[tuple, list[Diagnostic]] = {}
    for d in diags:
        groups.setdefault((d.severity, d.code, d.span), []).append(d)
    out = []
    for key, group in groups.items():
        if len(group) == 1 or key[2] is None:
            out.extend(group)
        else:
            first = group[0]
            out.append(replace(first, message=f"{first.message} (in each of its {len(group)} slots)"))
    return out
