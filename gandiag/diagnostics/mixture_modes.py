"""Mode-collapse signal for the 2D mixtures (``ring8``, ``grid25``): the PacGAN/VEEGAN protocol.

The numbers are exactly :func:`gandiag.data.mixtures.mixture_mode_stats`
(2,500 samples by default, nearest mode, high quality within 3σ, modes
captured, %HQ, reverse KL of the HQ mode histogram against uniform), so the
trainer's periodic evaluation, the benchmark table and this diagnostic agree.

Reasons raised (thresholds: docs/diagnostics.md):

- a mode with no HQ sample is *missing* → ``partial``; at most half the
  modes captured (``SEVERE_CAPTURED_FRACTION``) → ``severe``;
- a captured mode with fewer than ``STARVED_SHARE`` of its uniform share of
  HQ samples is *starved* → ``partial`` (judged only when the uniform share
  is at least ``MIN_EXPECTED`` samples, so that a handful of HQ points does
  not make noise look like evidence);
- reverse KL above ``REVERSE_KL_PARTIAL`` → ``partial``; above half its
  maximum, log(K)/2 (the HQ mass sits on about √K modes) → ``severe``.

%HQ is reported but never fires a mode-collapse reason: a generator whose
samples are blurry but spread over every mode is of poor quality, not collapsed.

Per mode, ``mode_status`` (``captured`` / ``starved`` / ``missing``) and
``starved_below`` (the HQ count under which a captured mode is starved) carry
the verdict's own call, for readers such as the HTML report.
"""

from __future__ import annotations

import math

import numpy as np

from ..data.mixtures import MIXTURES, mixture_mode_stats
from . import fmt, reason

SIGNAL = "mixture"
SEVERE_CAPTURED_FRACTION = 0.5
STARVED_SHARE = 0.2
MIN_EXPECTED = 10
REVERSE_KL_PARTIAL = 0.25


def applies(ctx) -> bool:
    return ctx.real_source in MIXTURES and ctx.fake_kept is not None and ctx.fake_kept.dim() == 2


def compute(ctx) -> dict:
    return analyse(ctx.fake_kept.numpy(), ctx.real_source)


def analyse(points: np.ndarray, mixture_name: str) -> dict:
    mixture = MIXTURES[mixture_name]
    stats = mixture_mode_stats(points, mixture)
    k, counts = stats["modes_total"], np.asarray(stats["counts"])
    n_hq = int(counts.sum())
    expected = n_hq / k
    starved = [int(i) for i in np.flatnonzero((counts > 0) & (counts < STARVED_SHARE * expected))] \
        if expected >= MIN_EXPECTED else []
    out = {**stats, "mixture": mixture_name, "starved_modes": starved,
           "mode_means": [[round(float(a), 4) for a in m] for m in mixture.means],
           # The verdict's call per mode and the count under which a captured mode is starved (None: not
           # judged, too few HQ samples), so readers show the verdict's numbers instead of re-deriving them.
           "mode_status": ["missing" if c == 0 else "starved" if i in starved else "captured"
                           for i, c in enumerate(counts)],
           "hq_total": n_hq,
           "starved_below": STARVED_SHARE * expected if expected >= MIN_EXPECTED else None}
    out["reasons"] = judge(out)
    return out


def judge(s: dict) -> list:
    k, captured = s["modes_total"], s["modes_captured"]
    reasons = []
    if captured < k:
        level = "severe" if captured <= SEVERE_CAPTURED_FRACTION * k else "partial"
        reasons.append(reason(SIGNAL, level, f"{s['mixture']}: {captured}/{k} modes captured; missing modes "
                              f"{s['missing_modes']} (no sample within 3σ)", captured,
                              math.floor(SEVERE_CAPTURED_FRACTION * k) if level == "severe" else k))
    if s["starved_modes"]:
        reasons.append(reason(SIGNAL, "partial", f"{s['mixture']}: starved modes {s['starved_modes']} get under "
                              f"{STARVED_SHARE:.0%} of their uniform share of high-quality samples",
                              len(s["starved_modes"]), STARVED_SHARE))
    rkl = s["reverse_kl"]
    if rkl is not None:
        severe_at = math.log(k) / 2
        if rkl > severe_at:
            reasons.append(reason(SIGNAL, "severe", f"reverse KL of the mode histogram {fmt(rkl)} > log(K)/2 = "
                                  f"{fmt(severe_at)}", rkl, severe_at))
        elif rkl > REVERSE_KL_PARTIAL:
            reasons.append(reason(SIGNAL, "partial", f"reverse KL of the mode histogram {fmt(rkl)} > "
                                  f"{REVERSE_KL_PARTIAL}", rkl, REVERSE_KL_PARTIAL))
    return reasons
