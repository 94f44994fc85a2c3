"""CMMD (Jayasumana et al. 2024): MMD² with a Gaussian RBF kernel on L2-normalised CLIP embeddings.

As google-research/cmmd's ``distance.py`` computes it:
k(x, y) = exp(-‖x − y‖² / (2σ²)) with σ = 10, ‖x − y‖² expanded as
‖x‖² + ‖y‖² − 2xᵀy, and

    CMMD = 1000 · (mean k(xᵢ, xⱼ) + mean k(yᵢ, yⱼ) − 2 mean k(xᵢ, yⱼ)),

every mean over *all* pairs, the diagonal included: the minimum-variance
(biased, V-statistic) estimator of Gretton et al. 2012's eq. 5, which the
reference chose over the unbiased one (its docstring: "almost identical").
gandiag keeps the reference's estimator so that its numbers are the paper's.
The kernel sums run in float64, a block of rows at a time, so 50,000
embeddings never need an N×N matrix in memory (the reference computes each
N×N matrix whole, in float32).

It reads the ``clip`` role, which only the CLIP extractors give (their
L2-normalised embedding): σ = 10 was chosen for unit vectors, and the
number means nothing on other features.
"""

from __future__ import annotations

import torch

from . import MetricContext, finite_or_raise

SIGMA = 10.0
SCALE = 1000.0
BLOCK_BYTES = 256 << 20  # float64 kernel block held at once


def _kernel_mean(a: torch.Tensor, b: torch.Tensor) -> float:
    """mean over all (i, j) of exp(-γ(‖aᵢ‖² + ‖bⱼ‖² − 2aᵢᵀbⱼ)), γ = 1/(2σ²), in row blocks."""
    gamma = 1.0 / (2.0 * SIGMA ** 2)
    a_sq, b_sq = (a * a).sum(1), (b * b).sum(1)
    rows = max(1, BLOCK_BYTES // (8 * max(1, b.shape[0])))
    total = torch.zeros((), dtype=torch.float64, device=a.device)
    for i in range(0, a.shape[0], rows):
        d2 = torch.addmm(a_sq[i:i + rows, None] + b_sq[None, :], a[i:i + rows], b.T, beta=1.0, alpha=-2.0)
        total += torch.exp(d2.mul_(-gamma)).sum()
    return float(total) / (a.shape[0] * b.shape[0])


def cmmd(fake, real, device: str = "cpu") -> float:
    """The reference's CMMD between two sets of embeddings (rows), in float64."""
    x = torch.as_tensor(fake, device=device).to(torch.float64)
    y = torch.as_tensor(real, device=device).to(torch.float64)
    if x.shape[0] < 1 or y.shape[0] < 1:
        raise ValueError("CMMD needs at least one sample per set")
    return SCALE * (_kernel_mean(x, x) + _kernel_mean(y, y) - 2.0 * _kernel_mean(x, y))


class CMMD:
    name, label, role = "cmmd", "CMMD", "clip"
    needs_real, higher_is_better = True, False
    description = ("MMD² ×1000 with a Gaussian RBF kernel (σ = 10) on L2-normalised CLIP embeddings, the biased "
                   "estimator of google-research/cmmd; CLIP extractors only")

    def compute(self, ctx: MetricContext) -> dict:
        fake, real = ctx.fake.features(self.role), ctx.real.features(self.role)
        value = finite_or_raise("CMMD", cmmd(fake, real, ctx.options.device))
        return {"value": value, "sigma": SIGMA, "scale": SCALE, "estimator": "biased (V-statistic), as the reference"}
