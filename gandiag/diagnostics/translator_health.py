"""Gradient health of a translator checkpoint: both generators, both discriminators, one fresh batch each.

A CycleGAN checkpoint (``gandiag train cyclegan``) holds G_AB with D_B and
G_BA with D_A. Each pair is checked as :func:`gandiag.diagnostics.gradient_health.adversarial_checks`
checks a latent GAN's (least-squares loss, the variant's): NaN/Inf in the
weights, gradient norms of a fresh batch of the bundled pair's real samples,
D's scores on real and translated samples, spectral norms and the
first-to-last layer ratio; the same thresholds judge them
(:func:`~gandiag.diagnostics.gradient_health.judge_adversarial`), each
reason naming its direction.
"""

from __future__ import annotations

import torch

from ..data import domains
from . import reason

MAX_BATCH = 64  # samples per side in the fresh batch
DIRECTIONS = (("A->B", "generator", "discriminator", "a", "b"),
              ("B->A", "inverse_generator", "inverse_discriminator", "b", "a"))


def applies(ckpt) -> bool:
    return isinstance(ckpt, dict) and ckpt.get("inverse_generator") is not None


def translator_checks(ckpt: dict, seed: int, signal: str) -> dict:
    """Per direction: the adversarial numbers and their reasons (reasons prefixed with the direction)."""
    parsed = domains.parse((ckpt.get("data") or {}).get("source"))
    if not parsed:
        return {"skipped": "not trained on a bundled pair of domains",
                "reasons": [reason(signal, "info", "adversarial checks skipped: the translator was trained on data "
                                   "that is not a bundled pair of domains")]}
    pair = parsed[0]
    g = torch.Generator().manual_seed(int(seed))
    sides = {s: _batch(pair, s, g) for s in domains.SIDES}
    res, reasons = {}, []
    for label, g_key, d_key, src, dst in DIRECTIONS:
        if ckpt.get(g_key) is None or ckpt.get(d_key) is None:
            continue
        part = _one_direction(ckpt[g_key], ckpt[d_key], sides[src], sides[dst])
        res[label] = part
        reasons += [dict(r, message=f"{label}: {r['message']}") for r in part.pop("reasons")]
    res["reasons"] = reasons
    return res


def _batch(pair, side: str, g: torch.Generator) -> torch.Tensor:
    data = pair.side(side).data
    idx = torch.randperm(data.shape[0], generator=g)[:MAX_BATCH]
    x = data[idx]
    return x.float() / 127.5 - 1.0 if pair.kind == "images" else x.float()  # the trainer's [-1, 1]


def _one_direction(g_spec: dict, d_spec: dict, x: torch.Tensor, y: torch.Tensor) -> dict:
    from ..generator.checkpoint import build_network
    from ..training import losses
    from ..training.trainlog import grad_norms, spectral_norms, total_norm
    from .gradient_health import _layer_ratio, _nonfinite_params, judge_adversarial

    G, D = build_network(g_spec).train(), build_network(d_spec).train()
    bad = [f"G.{n}" for n in _nonfinite_params(G)] + [f"D.{n}" for n in _nonfinite_params(D)]
    if bad:
        return {"non_finite_parameters": bad, "reasons": [reason(
            "adversarial", "unhealthy", f"NaN/Inf in weights: {', '.join(bad[:4])}", len(bad), 0)]}
    fake = G(x)
    s_real, s_fake = D(y), D(fake.detach())
    loss_d = losses.d_loss("ls", s_real, s_fake)
    D.zero_grad(set_to_none=True)
    loss_d.backward()
    d_norms = grad_norms(D)
    G.zero_grad(set_to_none=True)
    loss_g = losses.g_loss("ls", D(fake))
    loss_g.backward()
    g_norms = grad_norms(G)
    res = {"loss": "ls", "d_loss": float(loss_d.detach()), "g_loss": float(loss_g.detach()),
           "d_score_real_mean": float(s_real.detach().mean()), "d_score_fake_mean": float(s_fake.detach().mean()),
           "grad_norm_total": {"G": total_norm(g_norms), "D": total_norm(d_norms)},
           "layer_ratio": {"G": _layer_ratio(G, g_norms), "D": _layer_ratio(D, d_norms)},
           "lipschitz": {"mean": None}, "sigma_max": {"G": spectral_norms(G), "D": spectral_norms(D)}}
    res["sigma_max_top"] = {k: max(v.values()) if v else None for k, v in res["sigma_max"].items()}
    res["reasons"] = judge_adversarial(res, 0.0)
    return res
