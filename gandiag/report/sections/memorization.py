"""The memorisation section: generated images beside the training images they sit closest to.

With a ``memorization`` verdict (docs/diagnostics.md) the section shows it,
its numbers, its closest generated/training pairs over every sample, and,
as pictures, the kept generated images nearest a training image beside
that image, each called a copy or not by the verdict's own threshold τ.
Without a verdict that judged the run (no diagnostics, or no training set),
it falls back to each kept image's nearest *real* image, flagged by the
report's own rule of thumb and said to be one.
"""

from __future__ import annotations

import math

import numpy as np

from .. import figures
from ..severity import verdict_tone
from .common import Section, badge, find_signal, fmt, scalars, verdict_block

JUDGED = ("none", "partial", "severe")


class NearestReal(Section):
    name, title, order = "memorisation", "Memorisation: generated samples beside their nearest training sample", 70
    kinds = ("images", "points")  # pairs of images; sequences have their own sections
    COPY_RATIO = 0.1  # the rule of thumb used only when no verdict judged the run

    def render(self, view):
        owner, d = find_signal(view, "memorization")
        if d is None:
            owner, d = find_signal(view, "memorisation")  # a plugin's spelling
        parts = []
        if d:
            if "verdict" in d:
                parts.append(verdict_block(view, "memorisation", owner, d))
            parts.append(view.render("{{ kv_table(rows) }}", rows=scalars(d.get("copies") or d, skip=("closest_pairs",))))
            parts.append(self.closest(view, d))
        a = view.artifacts
        judged = isinstance(d, dict) and d.get("verdict") in JUDGED
        if judged and "memo_train_samples" in a and "fake_samples" in a:
            parts.append(self.training_pairs(view, a, verdict_tone(owner, d)))
        elif not judged and "nn_real_samples" in a and "fake_samples" in a:
            parts.append(self.neighbours(view, a))
        elif not d:
            return view.empty("No nearest-neighbour data: " + (view.artifacts_note or "needs image samples and real data") + ".")
        return "".join(parts)

    def closest(self, view, d: dict) -> str:
        """The verdict's closest generated/training pairs over every sample (indices the seed reproduces)."""
        pairs = [p for p in ((d.get("copies") or {}).get("closest_pairs") or []) if isinstance(p, dict)]
        if not pairs:
            return ""
        rows = [(fmt(p.get("fake")), fmt(p.get("real_row", p.get("train"))), fmt(p.get("distance"))) for p in pairs]
        return view.render("{{ table(['generated sample', 'training sample', 'distance'], rows) }}{{ note(n) }}",
                           rows=rows, n="The verdict's closest pairs over all generated samples; a training sample "
                           "is its row in the real data (a bundled split) or in --train-data.")

    def training_pairs(self, view, a, verdict_t: str) -> str:
        idx = a["memo_fake_index"].astype(int)
        dist = a["memo_distance"].astype(float)
        tau = float(a["memo_copy_threshold"])
        uri = figures.pair_rows(a["fake_samples"][idx], a["memo_train_samples"])
        calls = [badge("copy", verdict_t if verdict_t in ("warn", "bad") else "warn") if x < tau else badge("new", "good")
                 for x in dist]
        return view.render("""
{{ figure(uri, cap, 'closest training pairs', 'fig grid') }}
{{ table(["generated", "distance to nearest training sample", "the verdict's call (τ = " ~ tau ~ ")"], rows) }}""",
                           uri=uri, tau=fmt(tau), cap=(
                               "Top row: the kept generated samples nearest a training sample; bottom row: that training "
                               "sample. A copy is closer than τ, the distance within which only 5% of held-out real "
                               "samples lie."),
                           rows=[(int(i), fmt(x), c) for i, x, c in zip(idx, dist, calls)])

    def neighbours(self, view, a) -> str:
        idx = a["nn_fake_index"].astype(int)
        dist = a["nn_distance"].astype(float)
        scale = float(a.get("nn_real_scale", np.nan))
        ratio = dist / scale if math.isfinite(scale) and scale > 0 else np.full_like(dist, np.nan)
        copies = int(np.sum(ratio < self.COPY_RATIO))
        uri = figures.pair_rows(a["fake_samples"][idx], a["nn_real_samples"])
        return view.render("""
{{ figure(uri, cap, 'nearest real neighbours', 'fig grid') }}
<p>{{ copies }} of {{ n }} generated samples lie closer to a real sample than {{ r }}× the typical distance between
neighbouring real samples ({{ scale }}): {% if copies %}<strong>possible copies of training data</strong>{% else %}no sign of copying{% endif %}
(the report's own rule of thumb, not a diagnostic's verdict: no memorization verdict judged this run).</p>
{{ table(["generated", "distance to nearest real", "÷ real NN distance"], rows) }}""",
                           uri=uri, cap="Top row: generated samples; bottom row: the nearest real sample in feature space.",
                           copies=copies, n=len(idx), r=self.COPY_RATIO, scale=fmt(scale),
                           rows=[(int(i), fmt(x), fmt(q, 3)) for i, x, q in zip(idx, dist, ratio)])
