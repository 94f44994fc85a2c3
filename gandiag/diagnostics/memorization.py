"""The ``memorization`` diagnostic: does the generator copy its training samples?

A generator that returns its training images (exactly, or with a small
jitter) scores a fine FID and looks diverse; what gives it away is that its
samples sit far closer to the training set than new real samples do. So
the verdict needs two real sets: the training set and a held-out one the
generator never saw (:func:`training_set`):

- a bundled finite source (``digits``, ``basicmotions``, ``gunpoint``) has a
  fixed split (:mod:`gandiag.data.splits`): its rows are all in the
  evaluation's real set, so the training and held-out features are rows of
  the real features already extracted (no extra pass);
- ``--train-data PATH`` names the user's training set (extracted once, on
  the run's first extractor); the held-out set is then ``--real``;
- otherwise the verdict is ``not_applicable``, saying why (sources drawn
  fresh, such as ``ring8``, have no training set to copy).

Evidence, on the first extractor's ``pool`` features
(:mod:`.data_copying` has the arithmetic): ``copies`` (the share of samples
closer to a training sample than all but 5% of held-out samples are, beside
that 5%; the nearest-neighbour distance ratio; authenticity, Alaa et al. 2022;
the closest generated/training pairs) and ``c_t`` (Meehan et al. 2020's
data-copying test). Verdict ``none`` / ``partial`` / ``severe`` from the
excess copy share and C_T (thresholds below; docs/diagnostics.md says why).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from . import INFO, MODE_LEVELS, NOT_APPLICABLE, data_copying, fmt, judged, reason, run_parts

COPY_QUANTILE = 0.05  # τ: this quantile of held-out distances to the training set; held-out copy share ≈ 5%
COPY_EXCESS_PARTIAL = 0.10  # generated copy share above the held-out one by this much → partial
COPY_EXCESS_SEVERE = 0.50  # ... by this much (most samples are copies) → severe
C_T_PARTIAL = -3.0  # Meehan's C_T below this (3 standard errors of a cell's z) → partial
C_T_MIN_COVERAGE = 0.5  # ... when its cells hold at least half the held-out samples (not one region of a collapse)
HELD_OUT_PER_CELL = 20  # C_T: k = held-out rows / 20 cells (2 to 50), so each cell's U test has held-out rows
MAX_CELLS = 50  # Meehan et al.'s MNIST partition
MIN_CELL_FAKE = 20  # C_T: a cell counts with more than 20 generated samples (the authors' τ = 20 / m)
MIN_ROWS = 20  # training and held-out rows needed to judge anything
KEEP_PAIRS = 8


@dataclass
class TrainingSet:
    """The training and held-out features a run judges copying against, and where they came from."""

    train: torch.Tensor
    held_out: torch.Tensor
    source: str  # said in the results: "digits split (...)" or "--train-data PATH"
    train_rows: Optional[np.ndarray] = None  # a bundled split: the training rows' indices in the real set
    note: Optional[str] = None  # an info reason (a checkpoint trained before the split)


def training_set(ctx) -> tuple[Optional[TrainingSet], str]:
    """(the training set of this evaluation, "") or (None, why there is none)."""
    from ..data.splits import source_split, why_no_split

    if ctx.real is None or "pool" not in ctx.real.roles:
        what = "FID statistics only" if getattr(ctx, "real_statistics", None) is not None else "no real samples"
        return None, f"the held-out set is --real, and this run has {what}"
    train = getattr(ctx, "train", None)
    if train is not None:
        return TrainingSet(train.features("pool"), ctx.real.features("pool"),
                           f"--train-data {ctx.train_spec} (held out: --real {ctx.real_spec})"), ""
    split = source_split(ctx.real_spec, ctx.real_samples)
    if split is None:
        return None, (f"{why_no_split(ctx.real_spec)}; pass --train-data with the generator's training set "
                      "(--real is then the held-out set)")
    real = ctx.real.features("pool")
    if len(real) != len(split.train) + len(split.held_out):
        return None, f"the real set has {len(real)} rows, not the {ctx.real_spec} rows its split divides"
    return TrainingSet(real[split.train], real[split.held_out], f"{ctx.real_spec} split ({split.rule})",
                       split.train, _trained_before_split(ctx)), ""


def _trained_before_split(ctx) -> Optional[str]:
    """A note when a gandiag checkpoint of this source records no split: it saw the held-out rows too."""
    ckpt = getattr(ctx.generator, "checkpoint", None) if ctx.generator is not None else None
    data = ckpt.get("data") if isinstance(ckpt, dict) else None
    if not isinstance(data, dict) or data.get("source") != ctx.real_spec or "split" in data:
        return None
    return (f"this checkpoint records no split: it was trained on all of {ctx.real_spec}, held-out rows included, "
            "so copies of those rows count as new samples here")


def judged_against(ctx) -> tuple[Optional[TrainingSet], str, Optional[data_copying.Distances]]:
    """(the training set, "", every set's nearest training sample) or (None, why not, None), computed once per
    evaluation: the verdict and the duplicates signals of mode_collapse all read them (``ctx.shared``)."""
    shared = getattr(ctx, "shared", None)
    if shared is not None and "memorization" in shared:
        return shared["memorization"]
    ts, why = training_set(ctx)
    if ts is not None and min(len(ts.train), len(ts.held_out)) < MIN_ROWS:
        ts, why = None, (f"{len(ts.train)} training and {len(ts.held_out)} held-out samples; at least {MIN_ROWS} of "
                         "each are needed")
    found = (ts, why, data_copying.distances(ts.train, ts.held_out, ctx.fake.features("pool")) if ts else None)
    if shared is not None:
        shared["memorization"] = found
    return found


def copied_training_rows(ctx, n: int) -> Optional[np.ndarray]:
    """For each of the first ``n`` generated samples: the index of the training sample it copies (within τ), or
    -1; None without a training set. The duplicates signals read it, so that copies of one training sample are
    memorisation's."""
    _, _, d = judged_against(ctx)
    if d is None:
        return None
    (dist, index), (held_dist, _) = d.fake, d.held_out
    return np.where(dist[:n] < data_copying.copy_threshold(held_dist, COPY_QUANTILE), index[:n], -1)


def cells_for(n_held_out: int) -> int:
    return int(min(MAX_CELLS, max(2, n_held_out // HELD_OUT_PER_CELL)))


def judge_copies(s: dict) -> list:
    excess = s["copy_share"] - s["held_out_copy_share"]
    text = (f"{100 * s['copy_share']:.1f}% of generated samples are closer to a training sample than 95% of held-out "
            f"samples are ({100 * s['held_out_copy_share']:.1f}% of held-out ones), copies of "
            f"{s['copied_training_samples']} training samples; median distance to the training set "
            f"{fmt(s['distance_ratio'])}× the held-out one; {100 * s['inauthentic_share']:.0f}% inauthentic "
            f"(held out: {100 * s['held_out_inauthentic_share']:.0f}%)")
    if excess > COPY_EXCESS_SEVERE:
        return [reason("copies", "severe", text, excess, COPY_EXCESS_SEVERE)]
    if excess > COPY_EXCESS_PARTIAL:
        return [reason("copies", "partial", text, excess, COPY_EXCESS_PARTIAL)]
    return [reason("copies", INFO, text, excess, None)]


def _c_t_reading(value: float) -> str:
    """What this C_T says, not a legend of the scale: it is a z-score, far below 0 when samples copy."""
    if value < 0:
        return "below 0: generated samples lie nearer the training set than held-out samples do"
    return "at or above 0: generated samples lie no nearer the training set than held-out samples do"


def judge_c_t(s: dict) -> list:
    value = s["c_t"]
    if value is None:
        return [reason("c_t", INFO, f"C_T not computed: no training cell holds more than {s['min_cell']} generated "
                                    "samples and a held-out one")]
    text = (f"C_T = {fmt(value)} over {s['cells_judged']}/{s['cells']} training cells "
            f"({100 * s['held_out_share_judged']:.0f}% of held-out samples; {_c_t_reading(value)})")
    if s["held_out_share_judged"] < C_T_MIN_COVERAGE:
        return [reason("c_t", INFO, text + f"; not judged: its cells hold under {100 * C_T_MIN_COVERAGE:.0f}% of the "
                       "held-out samples (a generator drawing one region is mode collapse's to judge)", value, None)]
    if value < C_T_PARTIAL:
        return [reason("c_t", "partial", text, value, C_T_PARTIAL)]
    return [reason("c_t", INFO, text, value, None)]


class Memorization:
    name = "memorization"
    levels = MODE_LEVELS  # none / partial / severe, best first
    description = ("memorisation: copies of training samples, against a held-out set (nearest-neighbour distances, "
                   "authenticity, Meehan's C_T) → none/partial/severe")

    def applies(self, ctx) -> bool:
        if getattr(ctx, "translation", None) is not None:  # a translator's outputs follow its inputs
            return False
        return "pool" in ctx.fake.roles

    def run(self, ctx) -> dict:
        ts, why, near = judged_against(ctx)
        if ts is None:
            return {"verdict": NOT_APPLICABLE, "reasons": [reason("training_set", INFO, f"not judged: {why}")]}
        fake = ctx.fake.features("pool")
        parts, errors, seconds = run_parts((
            ("copies", lambda: self.copies(ts, near)),
            ("c_t", lambda: self.c_t(ts, fake, ctx.seed)),
        ))
        out = judged(MODE_LEVELS, parts, errors, seconds, training_set=ts.source)
        if ts.note:
            out["reasons"].append(reason("training_set", INFO, ts.note))
        return out

    @staticmethod
    def copies(ts: TrainingSet, near: data_copying.Distances) -> dict:
        s = data_copying.analyse(near, COPY_QUANTILE, KEEP_PAIRS)
        if ts.train_rows is not None:  # the real set's own row numbers, so the report finds the image
            for p in s["closest_pairs"]:
                p["real_row"] = int(ts.train_rows[p["train"]])
        s["reasons"] = judge_copies(s)
        return s

    @staticmethod
    def c_t(ts: TrainingSet, fake: torch.Tensor, seed: int) -> dict:
        s = data_copying.c_t(ts.train, ts.held_out, fake, cells_for(len(ts.held_out)), MIN_CELL_FAKE, seed)
        s["reasons"] = judge_c_t(s)
        return s
