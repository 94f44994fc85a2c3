"""The ``steganographic_cycle`` diagnostic: does the inverse read the input from a pattern nobody can see?

Chu, Zhmoginov and Sandler (2017), "CycleGAN, a master of steganography":
a CycleGAN can pass the cycle loss by hiding the input in a low-amplitude,
high-frequency signal of its output, which the inverse decodes; the cycle
error is then tiny though the output shows little of the input. An honest
inverse reads the visible content, so a small change of the output makes a
change of the same size in the reconstruction; a decoder of a hidden signal
falls apart when the signal is disturbed.

Needs the inverse direction; on the kept outputs (up to 256), in the
translation measures' units (docs/translation.md):

``perturbation``: the outputs disturbed twice, with uniform integer noise of
at most ``NOISE_LEVELS`` grey levels (points: Gaussian noise of
``NOISE_POINTS`` × the outputs' spread) and, for images of at least 4
pixels a side, a 3×3 binomial blur (a low-pass that keeps the visible
content and removes a high-frequency code). For each, the *amplification*
is mean d(F(y'), F(y)) ÷ mean d(y', y): how much the reconstruction moves
per unit the output moved. An honest inverse (the negation, the rotation)
gives 1. The largest of the two is judged: at least ``AMP_WARN`` →
suspect; at least ``AMP_BAD`` with a small cycle error (``cycle_l1`` under
``CYCLE_SMALL`` × the inputs' mean pairwise distance) → steganographic
(without one, suspect: the inverse is fragile, but does not recover the
inputs well either).

``visibility``: the outputs' mean pairwise distance ÷ the inputs' (how much
of the inputs' variety shows in the outputs), next to the cycle error in
the same units. Outputs that vary less than ``VISIBLE_MIN`` as much as
their inputs while the inverse recovers the inputs to within
``CYCLE_SMALL`` of their spread → suspect: the information came back
through something the outputs barely show.

Verdict: ``none`` / ``suspect`` / ``steganographic``; ``not_applicable``
without an inverse or when inputs and reconstructions differ in shape.
Calibration in docs/translation.md ("Diagnostics").
"""

from __future__ import annotations

import torch

from . import INFO, fmt, reason, run_parts
from .translation import _finish, diversity, flat, not_applicable, pairwise, rowwise, translation_of

STEGO_LEVELS = ("none", "suspect", "steganographic")
NOISE_LEVELS = 3  # grey levels: uniform integer noise in [-3, 3] added to the output images
NOISE_POINTS = 0.01  # points: Gaussian noise of this × the outputs' (or target's) per-coordinate spread
AMP_WARN, AMP_BAD = 3.0, 8.0  # reconstruction change ÷ output change (an honest inverse: about 1)
CYCLE_SMALL = 0.2  # cycle error ÷ the inputs' mean pairwise distance: the inverse recovers the inputs
VISIBLE_MIN = 0.25  # outputs' mean pairwise distance ÷ the inputs'
MIN_SAMPLES = 8
SEED_OFFSET = 5151


class SteganographicCycle:
    name = "steganographic_cycle"
    levels = STEGO_LEVELS
    description = ("steganographic cycle (Chu et al. 2017): a reconstruction that falls apart when the output is "
                   "disturbed by a few grey levels or blurred → none/suspect/steganographic")

    def applies(self, ctx) -> bool:
        return translation_of(ctx) is not None

    def run(self, ctx) -> dict:
        return steganographic_cycle(translation_of(ctx), seed=int(getattr(ctx, "seed", 0) or 0))


def steganographic_cycle(run, seed: int = 0) -> dict:
    """The ``steganographic_cycle`` diagnostic on a TranslationRun; usable from a notebook."""
    name = SteganographicCycle.name
    if run.inverse is None:
        return not_applicable(name, STEGO_LEVELS, "no inverse translator (--inverse, or one in the checkpoint)")
    x, y = run.inputs, run.outputs
    if x is None or y is None or min(len(x), len(y)) < MIN_SAMPLES:
        return not_applicable(name, STEGO_LEVELS, f"fewer than {MIN_SAMPLES} translated samples kept")
    n = min(len(x), len(y))
    x, y = x[:n], y[:n]
    rec = run.reconstructions[:n] if run.reconstructions is not None and len(run.reconstructions) >= n \
        else run.inverse(y)
    if tuple(rec.shape[1:]) != tuple(x.shape[1:]):
        return not_applicable(name, STEGO_LEVELS, f"reconstructions of shape {tuple(rec.shape[1:])} cannot be "
                              f"compared with inputs of shape {tuple(x.shape[1:])}")
    fx = flat(x, run.kind)
    spread = diversity(pairwise(fx, fx, run.kind))
    cycle = float(rowwise(flat(rec, run.kind), fx, run.kind).mean())
    cycle_rel = cycle / spread if spread > 0 else None
    small = cycle_rel is not None and cycle_rel < CYCLE_SMALL
    parts, errors, seconds = run_parts([
        ("perturbation", lambda: perturbation(run, y, rec, small, seed)),
        ("visibility", lambda: visibility(run.kind, x, y, spread, cycle_rel)),
    ])
    suspects = [p for p in parts.values() if any(r["level"] == "suspect" for r in p.get("reasons", []))]
    if small and len(suspects) == len(("perturbation", "visibility")):
        parts["combined"] = {"reasons": [reason("combined", "steganographic", "both signs at once: a reconstruction "
                                                "that falls apart when the output is disturbed, and inputs recovered "
                                                "from outputs that barely show them")]}
    return _finish(STEGO_LEVELS, parts, errors, seconds, n=int(n), cycle_error=cycle, input_spread=spread,
                   cycle_relative=cycle_rel)


def disturbances(kind: str, y: torch.Tensor, scale_from: torch.Tensor, seed: int) -> dict:
    """The outputs disturbed: {"noise": ..., "blur": ...} (blur for images of at least 4 pixels a side)."""
    g = torch.Generator().manual_seed(int(seed) + SEED_OFFSET)
    if kind == "images":
        noise = torch.randint(-NOISE_LEVELS, NOISE_LEVELS + 1, y.shape, generator=g)
        out = {"noise": (y.long() + noise).clamp(0, 255).to(torch.uint8)}
        if y.dim() == 4 and min(y.shape[2], y.shape[3]) >= 4:
            k = torch.tensor([1.0, 2.0, 1.0])
            k = (k[:, None] * k[None, :] / 16).expand(y.shape[1], 1, 3, 3).contiguous()
            padded = torch.nn.functional.pad(y.float(), (1, 1, 1, 1), mode="replicate")
            blurred = torch.nn.functional.conv2d(padded, k, groups=y.shape[1])
            out["blur"] = blurred.round().clamp(0, 255).to(torch.uint8)
        return out
    spread = scale_from.double().std(0)
    spread = torch.where(spread > 0, spread, torch.ones_like(spread) * float(spread.max() or 1.0))
    noise = torch.randn(y.shape, generator=g, dtype=torch.float64) * NOISE_POINTS * spread
    return {"noise": (y.double() + noise).to(y.dtype)}


def perturbation(run, y: torch.Tensor, rec: torch.Tensor, cycle_small: bool, seed: int) -> dict:
    t = run.target_samples
    scale_from = y if float(y.double().std(0).max()) > 0 or t is None else t
    fy, frec = flat(y, run.kind), flat(rec, run.kind)
    out, worst, worst_name = {}, 0.0, None
    for what, y2 in disturbances(run.kind, y, scale_from, seed).items():
        moved = float(rowwise(flat(y2, run.kind), fy, run.kind).mean())
        if moved == 0:
            continue
        rec2 = run.inverse(y2)
        back = float(rowwise(flat(rec2, run.kind), frec, run.kind).mean())
        amp = back / moved
        out[what] = {"output_change": moved, "reconstruction_change": back, "amplification": amp}
        if amp > worst or worst_name is None:
            worst, worst_name = amp, what
    out["amplification"] = worst if worst_name else None
    reasons = []
    if worst_name:
        how = {"noise": f"noise of ±{NOISE_LEVELS} grey levels" if run.kind == "images" else "a little noise",
               "blur": "a 3×3 blur"}[worst_name]
        part = out[worst_name]
        text = (f"{how} moves the outputs by {fmt(part['output_change'])} and their reconstructions by "
                f"{fmt(part['reconstruction_change'])}: {fmt(worst)}× (an inverse that reads the visible content: "
                "about 1)")
        if worst >= AMP_BAD and cycle_small:
            reasons.append(reason("perturbation", "steganographic", text + ", while the cycle error is small: the "
                                  "inverse decodes a hidden signal", worst, AMP_BAD))
        elif worst >= AMP_WARN:
            reasons.append(reason("perturbation", "suspect", text, worst, AMP_WARN))
        else:
            reasons.append(reason("perturbation", INFO, text, worst, AMP_WARN))
    out["reasons"] = reasons
    return out


def visibility(kind: str, x: torch.Tensor, y: torch.Tensor, spread: float, cycle_rel) -> dict:
    fy = flat(y, kind)
    shown = diversity(pairwise(fy, fy, kind))
    ratio = shown / spread if spread > 0 else None
    out = {"output_spread": shown, "visible_ratio": ratio}
    if ratio is None or cycle_rel is None:
        out["reasons"] = [reason("visibility", INFO, "visibility not judged: the inputs are all equal")]
        return out
    if ratio < VISIBLE_MIN and cycle_rel < CYCLE_SMALL:
        out["reasons"] = [reason("visibility", "suspect", f"outputs vary {fmt(ratio)}× as much as their inputs, yet "
                                 f"the inverse recovers the inputs to within {fmt(cycle_rel)} of their spread: the "
                                 "information came back through something the outputs barely show",
                                 ratio, VISIBLE_MIN)]
    else:
        out["reasons"] = [reason("visibility", INFO, f"outputs vary {fmt(ratio)}× as much as their inputs; the "
                                 f"inverse recovers the inputs to within {fmt(cycle_rel)} of their spread",
                                 ratio, VISIBLE_MIN)]
    return out


__all__ = ["SteganographicCycle", "steganographic_cycle", "STEGO_LEVELS"]
