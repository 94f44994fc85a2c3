"""Latent sensitivity: does the output move when z moves?

A generator that ignores its latent is collapsed whatever the other signals
say. This is the one signal that runs the generator again (through
``ctx.generator.forward``, so it works for every framework), on a small fresh
batch seeded from the evaluation seed. Distances are taken in output space:
images as uint8 NCHW scaled to [0, 1] (so every output range compares), points
as they are, sequences as their raw (N, T, C) values in the canonical layout.

- ``spread``: mean distance between the outputs of ``N_PAIRS`` independent
  latent pairs; ``spread_ratio`` = spread / (mean distance between random pairs
  of real samples). Below ``SPREAD_SEVERE`` → ``severe`` (the outputs are
  nearly one sample); below ``SPREAD_PARTIAL`` → ``partial``.
- ``response``: mean output distance when each latent coordinate moves by
  ``EPSILON`` standard deviations (z + ε·n, n ~ N(0, I)), divided by ``spread``;
  a smooth generator that uses z answers with a fraction of its spread
  (ε/√2 of the distance between independent latents ≈ 0.18 if it were linear).
- ``dead_fraction``: share of latents whose output moves by less than
  ``DEAD_TOLERANCE`` of the real data's scale under that move. Above
  ``DEAD_PARTIAL`` → ``partial`` (most of the latent space maps to fixed outputs).
  The scale is the smaller of the real spread and the real data's median
  nearest-neighbour distance: on tight mixtures (ring8's modes are 0.01 wide on a
  unit circle) a sharp, healthy generator moves a nudged latent only within its
  mode, far less than 1% of the global spread, and must not read as dead.
"""

from __future__ import annotations

import numpy as np
import torch

from ..data.images import to_uint8_nchw
from ..generator.sampling import draw_latents, run_generator
from . import fmt, reason
from .duplicates import nearest_neighbour_distances

SIGNAL = "latent"
N_PAIRS = 128
EPSILON = 0.25
SPREAD_SEVERE = 0.1
SPREAD_PARTIAL = 0.35
DEAD_TOLERANCE = 0.01
DEAD_PARTIAL = 0.5
SEED_OFFSET = 7_919


def applies(ctx) -> bool:
    return ctx.generator is not None and ctx.contract is not None


def output_space(out, contract) -> torch.Tensor:
    """Generator output → float64 (N, D) in the space distances are taken in."""
    out = out[0] if isinstance(out, (tuple, list)) else out
    out = torch.as_tensor(out).detach().cpu()
    if contract.kind == "sequences":  # (N, T, C) whatever the generator's layout, values as they are
        from ..data.kinds import by_name

        return by_name("sequences").canonical(out, contract).double().reshape(len(out), -1)
    if contract.kind == "points" or out.dim() == 2:
        return out.double().reshape(len(out), -1)
    return to_uint8_nchw(out, contract).double().div(255.0).reshape(len(out), -1)


def real_output_space(real_samples, n: int, kind: str):
    if real_samples is None:
        return None
    batch = next(iter(real_samples.batches(n)))
    x = batch.double().reshape(len(batch), -1)
    return x if kind in ("points", "sequences") else x / 255.0


def compute(ctx) -> dict:
    c = ctx.contract
    g = torch.Generator().manual_seed(int(ctx.seed) + SEED_OFFSET)
    z1, z2 = draw_latents(c, N_PAIRS, g), draw_latents(c, N_PAIRS, g)
    noise = torch.randn(N_PAIRS, c.latent_dim, generator=g)
    labels = torch.arange(N_PAIRS) % c.num_classes if c.num_classes else None

    def run(z):
        return output_space(run_generator(ctx.generator, z, labels, ctx.device, c), c)

    real = real_output_space(ctx.real_samples, 2 * N_PAIRS, c.kind)
    return analyse(run(z1), run(z2), run(z1 + EPSILON * noise), real, seed=ctx.seed)


def analyse(out1: torch.Tensor, out2: torch.Tensor, out_moved: torch.Tensor, real=None, seed: int = 0) -> dict:
    finite = torch.isfinite(out1).all(1) & torch.isfinite(out2).all(1) & torch.isfinite(out_moved).all(1)
    spread = float((out1 - out2).norm(dim=1)[finite].mean()) if finite.any() else float("nan")
    moved = (out_moved - out1).norm(dim=1)[finite]
    real_spread = real_local = None
    if real is not None and len(real) >= 4:
        rng = np.random.default_rng(seed)
        perm = torch.from_numpy(rng.permutation(len(real)))
        h = len(real) // 2
        real_spread = float((real[perm[:h]] - real[perm[h:2 * h]]).norm(dim=1).mean())
        real_local = float(nearest_neighbour_distances(real).median())
    scale = real_spread if real_spread else spread
    if real_local:
        scale = min(scale, real_local)
    out = {
        "n": int(len(out1)),
        "epsilon": EPSILON,
        "spread": spread,
        "real_spread": real_spread,
        "real_nearest_neighbour": real_local,
        "dead_tolerance": DEAD_TOLERANCE * scale if scale else None,
        "spread_ratio": spread / real_spread if real_spread else None,
        "response": float(moved.mean() / spread) if spread > 0 and len(moved) else None,
        "dead_fraction": float((moved < DEAD_TOLERANCE * scale).double().mean()) if scale and len(moved) else
        (1.0 if len(moved) else None),
        "non_finite_outputs": int((~finite).sum()),
    }
    out["reasons"] = judge(out)
    return out


def judge(s: dict) -> list:
    reasons = []
    ratio = s["spread_ratio"]
    if ratio is not None:
        if ratio < SPREAD_SEVERE:
            reasons.append(reason(SIGNAL, "severe", f"outputs of independent latents are {fmt(ratio)}× as far apart as "
                                  f"real samples (< {SPREAD_SEVERE}): the generator barely depends on z", ratio, SPREAD_SEVERE))
        elif ratio < SPREAD_PARTIAL:
            reasons.append(reason(SIGNAL, "partial", f"outputs of independent latents are only {fmt(ratio)}× as far apart "
                                  f"as real samples (< {SPREAD_PARTIAL})", ratio, SPREAD_PARTIAL))
    elif s["spread"] == 0:
        reasons.append(reason(SIGNAL, "severe", "every latent gives the same output: the generator ignores z", 0.0, 0.0))
    dead = s["dead_fraction"]
    if dead is not None and dead > DEAD_PARTIAL and not any(r["level"] == "severe" for r in reasons):
        reasons.append(reason(SIGNAL, "partial", f"{dead:.0%} of latents barely move the output when z moves by "
                              f"{EPSILON}σ (> {DEAD_PARTIAL:.0%})", dead, DEAD_PARTIAL))
    return reasons
