"""Training-health trends from a gandiag ``log.jsonl`` (fields: docs/training-log.md).

Read when the checkpoint's folder holds a ``log.jsonl``. The *late window* is
the last ``LATE_FRACTION`` of the logged steps, where a run ends up:

- a ``diverged`` event or non-finite values → ``unhealthy``;
- D loss collapsing to 0: median late D loss below ``D_LOSS_COLLAPSE`` of the
  loss at chance (ns/minimax: log 4; ls: 0.25; hinge: 2) → ``unhealthy``
  (D wins outright, G's signal vanishes; ganhacks' first failure mode);
- D loss blowing up: median late D loss above ``D_LOSS_BLOWUP`` × chance → ``unhealthy``;
- G receiving no gradient: G's global gradient norm exactly 0 on every late
  logging line → ``unhealthy`` (dead units, a generator frozen in place);
- gradient norms: late max global norm of G or D above ``GRAD_WARN`` (ganhacks'
  "over ~100 means trouble") → ``warning``; above ``GRAD_BAD`` → ``unhealthy``;
- oscillation: coefficient of variation of the late D loss (logged means over
  ``--log-every`` steps) above ``OSCILLATION_CV`` → ``warning`` (not for
  Wasserstein critics, whose loss is a difference that hovers around 0);
- rising spectral norms (BigGAN): the largest top singular value of any layer
  grows by more than ``SIGMA_GROWTH`` × from the first logged value to the last
  → ``warning``.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from . import fmt, reason

SIGNAL = "log"
LATE_FRACTION = 0.25
D_LOSS_COLLAPSE = 0.05
D_LOSS_BLOWUP = 10.0
GRAD_WARN = 100.0
GRAD_BAD = 1e4
OSCILLATION_CV = 0.5
SIGMA_GROWTH = 10.0
CHANCE_D_LOSS = {"ns": 2 * math.log(2), "minimax": 2 * math.log(2), "ls": 0.25, "hinge": 2.0}


def analyse_log(records: list, loss: Optional[str]) -> dict:
    """Trends of a log's records; records are checked first (a DataError names a malformed one)."""
    from ..training.trainlog import check_record

    records = [check_record(r, f"log record {i}") for i, r in enumerate(records, 1)]
    steps = [r for r in records if "event" not in r]
    out = {"records": len(records), "last_step": max((r.get("step", 0) for r in records), default=0), "loss": loss}
    reasons = []
    events = [r for r in records if r.get("event") == "diverged"]
    non_finite = sorted({f for r in records for f in r.get("non_finite", [])})
    out["diverged"] = bool(events)
    out["non_finite_fields"] = non_finite
    if events:
        reasons.append(reason(SIGNAL, "unhealthy", f"training diverged at step {events[0]['step']} (a loss became NaN/Inf)",
                              events[0]["step"], None))
    elif non_finite:
        reasons.append(reason(SIGNAL, "unhealthy", f"non-finite values logged: {', '.join(non_finite[:5])}", len(non_finite), 0))
    if not steps:
        out["reasons"] = reasons
        return out
    last = steps[-1]["step"]
    late = [r for r in steps if r["step"] > last * (1 - LATE_FRACTION)] or steps[-1:]
    d_late = np.array([r["d_loss"] for r in late if r.get("d_loss") is not None], dtype=float)
    chance = CHANCE_D_LOSS.get(loss)
    if len(d_late):
        med = float(np.median(d_late))
        out["late_d_loss_median"] = med
        if chance:
            out["late_d_loss_over_chance"] = med / chance
            if med < D_LOSS_COLLAPSE * chance:
                reasons.append(reason(SIGNAL, "unhealthy", f"D loss collapsed to {fmt(med)} (< {D_LOSS_COLLAPSE} × chance "
                                      f"{fmt(chance)}): D wins outright and G's signal vanishes", med, D_LOSS_COLLAPSE * chance))
            elif med > D_LOSS_BLOWUP * chance:
                reasons.append(reason(SIGNAL, "unhealthy", f"D loss blew up to {fmt(med)} (> {D_LOSS_BLOWUP:g} × chance "
                                      f"{fmt(chance)})", med, D_LOSS_BLOWUP * chance))
        if loss != "wasserstein" and len(d_late) >= 4 and abs(d_late.mean()) > 0:
            cv = float(d_late.std() / abs(d_late.mean()))
            out["late_d_loss_cv"] = cv
            if cv > OSCILLATION_CV:
                reasons.append(reason(SIGNAL, "warning", f"D loss oscillates late in training (coefficient of variation "
                                      f"{fmt(cv)} > {OSCILLATION_CV})", cv, OSCILLATION_CV))
    norms = [r["grad_norm_total"] for r in late if isinstance(r.get("grad_norm_total"), dict)]
    if norms:
        for net in ("G", "D"):
            vals = [n.get(net) for n in norms if n.get(net) is not None]
            if not vals:
                continue
            peak = max(vals)
            out[f"late_max_grad_norm_{net}"] = peak
            if net == "G" and all(v == 0 for v in vals):
                reasons.append(reason(SIGNAL, "unhealthy", "G's gradient is exactly 0 on every late logging step: the "
                                      "generator no longer learns (dead units)", 0.0, 0.0))
            elif peak > GRAD_BAD:
                reasons.append(reason(SIGNAL, "unhealthy", f"{net}'s gradient norm reached {fmt(peak)} late in training "
                                      f"(> {GRAD_BAD:g}): exploding", peak, GRAD_BAD))
            elif peak > GRAD_WARN:
                reasons.append(reason(SIGNAL, "warning", f"{net}'s gradient norm reached {fmt(peak)} late in training "
                                      f"(> {GRAD_WARN:g})", peak, GRAD_WARN))
    sig = [r["sigma_max"] for r in steps if isinstance(r.get("sigma_max"), dict)]
    if len(sig) >= 2:
        growth = {}
        for net in ("G", "D"):
            first = [v for v in sig[0].get(net, {}).values() if v is not None]
            final = [v for v in sig[-1].get(net, {}).values() if v is not None]
            if first and final and max(first) > 0:
                growth[net] = max(final) / max(first)
                out[f"sigma_max_{net}"] = [max(first), max(final)]
        out["sigma_growth"] = growth
        for net, g in growth.items():
            if g > SIGMA_GROWTH:
                reasons.append(reason(SIGNAL, "warning", f"{net}'s largest spectral norm grew {fmt(g)}× over training "
                                      f"(> {SIGMA_GROWTH:g}×; BigGAN's collapses were preceded by this)", g, SIGMA_GROWTH))
    out["reasons"] = reasons
    return out
