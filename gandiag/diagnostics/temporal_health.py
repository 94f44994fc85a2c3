"""The ``temporal_health`` diagnostic: do generated sequences move in time as the real ones do?

For kind ``sequences`` only, on the kept generated sequences (up to 2,000) and
up to 2,000 real ones, raw values, each channel on its own. Four parts
(docs/diagnostics.md has the calibration):

``frozen``: a generated sequence is *frozen* when every channel's standard
deviation over time is below ``FROZEN_TOLERANCE`` of the real data's typical
one (the channel's median over real sequences); ``frozen_fraction`` is the
share of such sequences, next to the real data's own (``real_frozen_fraction``).
Above the real share by ``FROZEN_WARN`` → warning, by ``FROZEN_BAD`` → unhealthy.

``variation``: the *roughness* of a channel, mean |x_{t+1} − x_t| ÷ its std over
time (scale-free: 2/√π ≈ 1.13 for white noise, small for smooth signals),
averaged over sequences, generated ÷ real per channel (``roughness_ratio``,
the worst channel judged, in log distance from 1): outside [1/``ROUGH_WARN``,
``ROUGH_WARN``] → warning, outside [1/``ROUGH_BAD``, ``ROUGH_BAD``] → unhealthy.
And the mean |first difference| itself, generated ÷ real per channel
(``diff_ratio``): a channel that moves less than ``DIFF_WARN`` of the real
amount per step → warning, less than ``DIFF_BAD`` → unhealthy (sequences that
barely move, smooth as they may be; more movement than real is left to
roughness and magnitude).

``autocorrelation``: the mean autocorrelation function per channel (lags 1..L,
L = min(T/2, ``MAX_LAG``); each sequence centred on its own mean), real and
generated (``acf_real``, ``acf_fake``: the report's curves), and
``acf_distance``, the mean |ACF_gen − ACF_real| over channels and lags (the
worst channel in ``acf_distance_max``). Above ``ACF_WARN`` → warning, above
``ACF_BAD`` → unhealthy.

``magnitude``: exploding values. Per channel, the real centre (median) and
half-range (largest |x − centre| among real values); ``range_ratio`` is the
99th percentile of the generated |x − centre| ÷ the real half-range (worst
channel), ``max_ratio`` the same for the largest value, ``beyond_fraction`` the
share of generated values beyond ``RANGE_BAD`` half-ranges. ``range_ratio`` above
``RANGE_WARN`` → warning, above ``RANGE_BAD`` → unhealthy; NaN/Inf → unhealthy.

Verdict: ``healthy`` / ``warning`` / ``unhealthy`` (the gradient-health scale),
the worst level among the reasons; ``error`` when a part could not run and
``not_applicable`` without real sequences to compare with (gates fail on both).
"""

from __future__ import annotations

import math
import numpy as np
import torch

from . import HEALTH_LEVELS, INFO, NOT_APPLICABLE, fmt, judged, reason, run_parts
from .sequence_modes import generated, is_sequences, real

NAME = "temporal_health"
FROZEN_TOLERANCE = 0.01  # of the real channel's median std over time
FROZEN_WARN, FROZEN_BAD = 0.1, 0.5  # frozen share above the real one
ROUGH_WARN, ROUGH_BAD = 2.0, 4.0  # roughness ratio (either way)
DIFF_WARN, DIFF_BAD = 0.5, 0.1  # mean |first difference|, generated ÷ real: too little movement
MAX_LAG = 20
ACF_WARN, ACF_BAD = 0.1, 0.3  # mean |ACF_gen − ACF_real|
RANGE_WARN, RANGE_BAD = 2.0, 10.0  # 99th-percentile |x − real centre| in real half-ranges
MIN_SEQUENCES = 20


class TemporalHealth:
    name = NAME
    levels = HEALTH_LEVELS  # its verdict words, best first, worst last (readers tone verdicts by them)
    description = ("temporal health of sequences: frozen outputs, roughness and autocorrelation against the real "
                   "data, exploding values → healthy/warning/unhealthy")

    def applies(self, ctx) -> bool:
        return is_sequences(ctx) and ctx.fake_kept is not None and ctx.fake_kept.dim() == 3

    def run(self, ctx) -> dict:
        g, r = generated(ctx), real(ctx)
        if r is None or len(r) < 2 or r.shape[1:] != g.shape[1:]:
            why = ("no real sequences to compare with" if r is None or len(r) < 2 else
                   f"real sequences of shape {tuple(r.shape[1:])} vs generated {tuple(g.shape[1:])}")
            return {"verdict": NOT_APPLICABLE, "levels": list(HEALTH_LEVELS),
                    "reasons": [reason(NAME, INFO, f"temporal health not judged: {why}")]}
        return check(r, g)


def check(real_x: torch.Tensor, fake_x: torch.Tensor) -> dict:
    """The diagnostic on real and generated sequences (N, T, C); usable from a notebook."""
    r = np.asarray(real_x, dtype=np.float64)
    g = np.asarray(fake_x, dtype=np.float64)
    finite = np.isfinite(g).all(axis=(1, 2))
    parts, errors, seconds = run_parts([
        ("frozen", lambda: frozen(r, g[finite])),
        ("variation", lambda: variation(r, g[finite])),
        ("autocorrelation", lambda: autocorrelation(r, g[finite])),
        ("magnitude", lambda: magnitude(r, g, finite)),
    ])
    return judged(HEALTH_LEVELS, parts, errors, seconds, n_fake=int(len(g)), n_real=int(len(r)),
                  steps=int(g.shape[1]), channels=int(g.shape[2]))


def _temporal_std(x: np.ndarray) -> np.ndarray:
    return x.std(axis=1) if x.shape[1] > 1 else np.zeros((len(x), x.shape[2]))


def frozen(r: np.ndarray, g: np.ndarray) -> dict:
    ref = np.median(_temporal_std(r), axis=0)  # per channel
    judged = ref > 0
    if not judged.any() or not len(g):
        return {"judged_channels": 0, "reasons": []}
    tol = FROZEN_TOLERANCE * ref[judged]
    fz = (_temporal_std(g)[:, judged] < tol).all(axis=1)
    rz = (_temporal_std(r)[:, judged] < tol).all(axis=1)
    out = {"frozen_fraction": float(fz.mean()), "real_frozen_fraction": float(rz.mean()),
           "tolerance": FROZEN_TOLERANCE, "judged_channels": int(judged.sum())}
    excess = out["frozen_fraction"] - out["real_frozen_fraction"]
    text = (f"{out['frozen_fraction']:.0%} of generated sequences are frozen (every channel's variation over time "
            f"under {FROZEN_TOLERANCE:.0%} of the real data's typical one; real: {out['real_frozen_fraction']:.0%})")
    if excess > FROZEN_BAD:
        out["reasons"] = [reason("frozen", "unhealthy", text, excess, FROZEN_BAD)]
    elif excess > FROZEN_WARN:
        out["reasons"] = [reason("frozen", "warning", text, excess, FROZEN_WARN)]
    else:
        out["reasons"] = []
    return out


def _roughness(x: np.ndarray) -> np.ndarray:
    """Per channel: mean over sequences of mean|Δx| ÷ std over time (sequences whose channel is flat left out)."""
    if x.shape[1] < 2:
        return np.full(x.shape[2], np.nan)
    sd = x.std(axis=1)
    d = np.abs(np.diff(x, axis=1)).mean(axis=1)
    scale = np.abs(x).max() or 1.0
    ok = sd > 1e-12 * scale
    with np.errstate(invalid="ignore", divide="ignore"):
        q = np.where(ok, d / np.where(ok, sd, 1.0), np.nan)
    out = np.full(x.shape[2], np.nan)
    for c in range(x.shape[2]):
        if ok[:, c].any():
            out[c] = np.nanmean(q[:, c])
    return out


def variation(r: np.ndarray, g: np.ndarray) -> dict:
    if r.shape[1] < 2 or not len(g):
        return {"reasons": []}
    rr, gr = _roughness(r), _roughness(g)
    dr = np.abs(np.diff(r, axis=1)).mean(axis=(0, 1))
    dg = np.abs(np.diff(g, axis=1)).mean(axis=(0, 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = gr / rr
        diff_ratio = np.where(dr > 0, dg / np.where(dr > 0, dr, 1.0), np.nan)
    judged = np.isfinite(ratio) & (ratio > 0)
    out = {"roughness_real": _list(rr), "roughness_fake": _list(gr), "roughness_ratio": _list(ratio),
           "diff_ratio": _list(diff_ratio), "reasons": []}
    movement = np.isfinite(diff_ratio)
    if movement.any():
        low_c = int(np.flatnonzero(movement)[np.argmin(diff_ratio[movement])])
        low = float(diff_ratio[low_c])
        out["min_diff_ratio"] = low
        text = (f"channel {low_c} moves {fmt(low)}× as much per step as the real data (mean |Δx| {fmt(dg[low_c])} vs "
                f"{fmt(dr[low_c])}): too little temporal variation")
        if low < DIFF_BAD:
            out["reasons"].append(reason("variation", "unhealthy", text, low, DIFF_BAD))
        elif low < DIFF_WARN:
            out["reasons"].append(reason("variation", "warning", text, low, DIFF_WARN))
    if not judged.any():
        out["worst_roughness_ratio"] = None
        return out
    worst_c = int(np.flatnonzero(judged)[np.argmax(np.abs(np.log(ratio[judged])))])
    worst = float(ratio[worst_c])
    out["worst_roughness_ratio"], out["worst_channel"] = worst, worst_c
    how = "rougher (noisier step to step)" if worst > 1 else "smoother (less step-to-step variation)"
    text = (f"channel {worst_c} is {fmt(max(worst, 1 / worst))}× {how} than the real data (mean |Δx| ÷ std over "
            f"time {fmt(gr[worst_c])} vs {fmt(rr[worst_c])})")
    dist = max(worst, 1 / worst)
    if dist > ROUGH_BAD:
        out["reasons"].append(reason("variation", "unhealthy", text, worst, ROUGH_BAD if worst > 1 else 1 / ROUGH_BAD))
    elif dist > ROUGH_WARN:
        out["reasons"].append(reason("variation", "warning", text, worst, ROUGH_WARN if worst > 1 else 1 / ROUGH_WARN))
    return out


def acf(x: np.ndarray, max_lag: int) -> np.ndarray:
    """Mean autocorrelation per channel, lags 0..max_lag: (max_lag + 1, C); flat sequences left out (NaN if all)."""
    xc = x - x.mean(axis=1, keepdims=True)
    den = (xc * xc).sum(axis=1)  # (N, C)
    scale = np.abs(x).max() or 1.0
    ok = den > 1e-20 * scale * scale * x.shape[1]
    out = np.full((max_lag + 1, x.shape[2]), np.nan)
    for k in range(max_lag + 1):
        num = (xc[:, k:] * xc[:, :x.shape[1] - k]).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            v = np.where(ok, num / np.where(ok, den, 1.0), np.nan)
        for c in range(x.shape[2]):
            if ok[:, c].any():
                out[k, c] = np.nanmean(v[:, c])
    return out


def autocorrelation(r: np.ndarray, g: np.ndarray) -> dict:
    lag = int(min(MAX_LAG, r.shape[1] // 2))
    if lag < 1 or not len(g):
        return {"reasons": []}
    ar, ag = acf(r, lag), acf(g, lag)
    gap = np.abs(ag[1:] - ar[1:])  # (lags, C)
    per_channel = np.array([np.nanmean(gap[:, c]) if np.isfinite(gap[:, c]).any() else np.nan
                            for c in range(gap.shape[1])])
    out = {"max_lag": lag, "acf_real": _rows(ar.T), "acf_fake": _rows(ag.T),
           "acf_distance_per_channel": _list(per_channel)}
    if not np.isfinite(per_channel).any():
        out.update(acf_distance=None, acf_distance_max=None, reasons=[])
        return out
    d, worst_c = float(np.nanmean(per_channel)), int(np.nanargmax(per_channel))
    out.update(acf_distance=d, acf_distance_max=float(per_channel[worst_c]), worst_channel=worst_c)
    text = (f"autocorrelation differs from the real data's by {fmt(d)} on average over lags 1–{lag} (worst channel "
            f"{worst_c}: {fmt(per_channel[worst_c])}; lag 1: {fmt(ag[1, worst_c])} generated vs "
            f"{fmt(ar[1, worst_c])} real)")
    if d > ACF_BAD:
        out["reasons"] = [reason("autocorrelation", "unhealthy", text, d, ACF_BAD)]
    elif d > ACF_WARN:
        out["reasons"] = [reason("autocorrelation", "warning", text, d, ACF_WARN)]
    else:
        out["reasons"] = []
    return out


def magnitude(r: np.ndarray, g: np.ndarray, finite: np.ndarray) -> dict:
    bad = int((~np.isfinite(g)).sum())
    out = {"non_finite_values": bad}
    reasons = []
    if bad:
        reasons.append(reason("magnitude", "unhealthy", f"{bad} generated values are NaN/Inf "
                              f"({int((~finite).sum())} sequences)", bad, 0))
    g = g[finite]
    centre = np.median(r.reshape(-1, r.shape[2]), axis=0)
    half = np.abs(r - centre).max(axis=(0, 1))
    judged = half > 0
    if not len(g) or not judged.any():
        out["reasons"] = reasons
        return out
    dev = np.abs(g - centre)[:, :, judged] / half[judged]
    q99 = np.quantile(dev.reshape(-1, dev.shape[2]), 0.99, axis=0)
    worst_c = int(np.flatnonzero(judged)[np.argmax(q99)])
    out.update(real_centre=_list(centre), real_half_range=_list(half), range_ratio=float(q99.max()),
               range_ratio_per_channel=_list(q99), max_ratio=float(dev.max()), worst_channel=worst_c,
               beyond_fraction=float((dev > RANGE_BAD).mean()))
    text = (f"generated values reach {fmt(out['range_ratio'])}× the real half-range from the real centre (99th "
            f"percentile, channel {worst_c}; largest {fmt(out['max_ratio'])}×; "
            f"{out['beyond_fraction']:.1%} of values beyond {RANGE_BAD:g}×)")
    if out["range_ratio"] > RANGE_BAD:
        reasons.append(reason("magnitude", "unhealthy", text, out["range_ratio"], RANGE_BAD))
    elif out["range_ratio"] > RANGE_WARN:
        reasons.append(reason("magnitude", "warning", text, out["range_ratio"], RANGE_WARN))
    out["reasons"] = reasons
    return out


def _list(a) -> list:
    return [None if not math.isfinite(float(v)) else round(float(v), 6) for v in np.asarray(a).ravel()]


def _rows(a) -> list:
    return [_list(row) for row in np.asarray(a)]

