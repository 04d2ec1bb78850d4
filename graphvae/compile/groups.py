"""A batch's rows grouped by labelled pattern: which supervised variables each row labels.

:class:`graphvae.compile.model.CompiledModel` runs q and p once per group (gather, run, sum), so
that a labelled M2 example is never enumerated over y.  A group is ``(labelled names, rows)``
where ``rows`` is None (the whole batch), a ``slice`` (contiguous rows) or an index tensor.
:func:`pattern_groups` reads the labels; :func:`layout_groups` takes the groups from a layout the
caller knows (``graphvae.data.Batch.layout``) without looking at them, so the training step never
waits for the device; :func:`check_layout` checks a layout against the labels.
"""

from __future__ import annotations

import torch

from graphvae.compile.batch_check import CheckedBatch
from graphvae.errors import UserError


def pattern_groups(cb: CheckedBatch) -> list[tuple[frozenset[str], torch.Tensor | None]]:
    """``[(labelled names, index tensor or None for all)]`` over the batch's labelled patterns, in
    the order of their pattern code (bit i set where the i-th supervised variable is labelled)."""
    names = [n for n in cb.labelled]
    if not names:
        return [(frozenset(), None)]
    code = torch.zeros(cb.size, dtype=torch.long, device=cb.labelled[names[0]].device)
    for i, n in enumerate(names):
        code = code + (cb.labelled[n].long() << i)
    present = torch.unique(code).tolist()
    out = []
    for c in present:
        labelled = frozenset(n for i, n in enumerate(names) if c >> i & 1)
        idx = None if len(present) == 1 else torch.nonzero(code == c).squeeze(1)
        out.append((labelled, idx))
    return out


def layout_groups(batch, layout, supervised: frozenset[str], cache: dict) -> list:
    """:func:`pattern_groups` from ``layout`` (runs ``((labelled names, count), ...)`` of rows in row
    order), with no look at the labels: no host synchronisation.  ``supervised``: the model's
    supervised variables; ``cache``: the caller's, where groups made only of slices are kept per
    (layout, supervised names in the batch, batch size).  Groups come in the order
    :func:`pattern_groups` gives them, each as a ``slice`` of the batch when its rows are
    contiguous, else an index tensor."""
    names = [n for n in batch if n in supervised]
    size = next(iter(batch.values())).shape[0]
    key = (tuple(layout), tuple(names), size)
    cached = cache.get(key) if isinstance(size, int) else None
    if cached is not None:
        return cached
    rows: dict[frozenset, list[tuple[int, int]]] = {}
    start = 0
    for labelled, count in layout:
        labelled = frozenset(labelled)
        if not labelled <= set(names) or count < 0:
            raise UserError(f"layout run {sorted(labelled)} x {count}: a run names supervised variables of the "
                            f"batch ({', '.join(names) or 'none'}) and a count >= 0")
        if count:
            rows.setdefault(labelled, []).append((start, count))
        start += count
    if start != size:
        raise UserError(f"the layout covers {start} rows but the batch has {size}")
    code = {lab: sum(1 << i for i, n in enumerate(names) if n in lab) for lab in rows}
    out = []
    for labelled in sorted(rows, key=code.__getitem__):
        runs = rows[labelled]
        if len(rows) == 1:
            idx = None
        elif len(runs) == 1:
            idx = slice(runs[0][0], runs[0][0] + runs[0][1])
        else:
            device = next(iter(batch.values())).device
            idx = torch.cat([torch.arange(a, a + n, device=device) for a, n in runs])
        out.append((labelled, idx))
    if isinstance(size, int) and all(not torch.is_tensor(i) for _, i in out):  # worked out once per layout
        cache[key] = out
    return out


def check_layout(cb: CheckedBatch, groups) -> None:
    """A layout must say which rows carry which labels truly (checked against the labels)."""
    for labelled, idx in groups:
        for y, mask in cb.labelled.items():
            rows = mask if idx is None else mask[idx]
            if bool(rows.all()) != (y in labelled) or (y not in labelled and bool(rows.any())):
                raise UserError(f"the layout says '{y}' is {'' if y in labelled else 'not '}labelled in rows "
                                "where the batch says otherwise")


def group_size(cb: CheckedBatch, idx) -> int:
    """The number of rows of a group (``idx`` as :func:`pattern_groups` or :func:`layout_groups` give it)."""
    if idx is None:
        return cb.size
    return idx.stop - idx.start if isinstance(idx, slice) else len(idx)


def group_values(cb: CheckedBatch, keep: frozenset[str], idx) -> dict[str, torch.Tensor]:
    """The group's rows of the batch's variables named in ``keep`` (its observed and labelled ones)."""
    if isinstance(idx, slice):
        return {k: v[idx] for k, v in cb.values.items() if k in keep}
    return {k: (v if idx is None else v.index_select(0, idx)) for k, v in cb.values.items() if k in keep}
