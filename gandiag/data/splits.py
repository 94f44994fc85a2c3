"""Fixed train / held-out splits of the bundled finite datasets: the one home of the rule.

Memorisation can only be told apart from generalisation with data the
generator never saw: a copy of a training image sits much closer to the
training set than a new real image does. So every bundled source that is a
fixed, finite dataset holds out the same rows forever, and the reference
trainer (``gandiag train``) trains on the rest only.

The rule: within each class (or over all rows when there are no labels) the
rows are ordered by a hash of their index, and the first
``HELD_OUT_FRACTION`` of each class (rounded) are held out. Hashing the index
rather than drawing a permutation fixes the split by the rows alone: no seed,
no random generator whose stream could change between library versions; and
stratifying keeps every class on both sides in its own proportion. ``digits``: 1,797 rows, 359 held out (35-37 per
digit). ``basicmotions`` (80) and ``gunpoint`` (200) use the same rule, not the
archive's own train/test split, which holds out 50% and 75% (too much to train
on; docs/diagnostics.md).

Sources drawn fresh from a definition (``ring8``, ``grid25``, ``sines``) have
no split: there is no finite training set to copy, each draw is new. A source
says which it is with ``split``: ``"stratified"`` (this rule) or ``None``
(``fresh`` says why, for the memorisation verdict's reason).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Optional

import numpy as np

HELD_OUT_FRACTION = 0.2
SPLIT_RULE = "stratified-hash-v1"  # recorded in checkpoints: which rule chose the rows trained on
_SALT = b"gandiag-split-v1:"


@dataclass(frozen=True)
class Split:
    """Row indices of a dataset's two sides, sorted; ``rule`` names how they were chosen."""

    train: np.ndarray
    held_out: np.ndarray
    rule: str = SPLIT_RULE

    def to_json(self) -> dict:
        return {"rule": self.rule, "held_out_fraction": HELD_OUT_FRACTION, "n_train": int(len(self.train)),
                "n_held_out": int(len(self.held_out))}


def _row_keys(n: int) -> np.ndarray:
    """A fixed pseudo-random key per row index (the first 8 bytes of a salted blake2b)."""
    return np.array([int.from_bytes(hashlib.blake2b(_SALT + str(i).encode(), digest_size=8).digest(), "big")
                     for i in range(n)], dtype=np.uint64)


def stratified_split(n: int, labels: Optional[np.ndarray] = None, fraction: float = HELD_OUT_FRACTION) -> Split:
    """The rule above for ``n`` rows with optional integer ``labels`` (one per row)."""
    keys = _row_keys(n)
    groups = np.zeros(n, dtype=np.int64) if labels is None else np.asarray(labels)
    if len(groups) != n:
        raise ValueError(f"{len(groups)} labels for {n} rows")
    held = np.zeros(n, dtype=bool)
    for g in np.unique(groups):
        rows = np.flatnonzero(groups == g)
        take = int(round(fraction * len(rows)))
        held[rows[np.argsort(keys[rows], kind="stable")[:take]]] = True
    return Split(np.flatnonzero(~held), np.flatnonzero(held))


def split_of(source, samples) -> Optional[Split]:
    """The split of a bundled source's samples (as that source loads them), or None when it has none."""
    if getattr(source, "split", None) != "stratified":
        return None
    labels = getattr(samples, "labels", None)
    return stratified_split(int(samples.n), None if labels is None else np.asarray(labels))


def source_split(spec: Optional[str], samples) -> Optional[Split]:
    """The split of ``spec`` when it names a bundled source that has one; None for paths and fresh sources."""
    from .sources import bundled_source

    source = bundled_source(spec) if spec else None
    return None if source is None else split_of(source, samples)


def why_no_split(spec: Optional[str]) -> str:
    """A sentence on why ``spec`` has no held-out rows, for a ``not_applicable`` reason."""
    from .sources import bundled_source

    source = bundled_source(spec) if spec else None
    if source is not None and getattr(source, "fresh", None):
        return f"{spec} {source.fresh}"
    if source is not None:
        return f"{spec} is a bundled source without a fixed train/held-out split"
    return "the training set is not known"
