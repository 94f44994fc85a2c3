"""Kernel Inception Distance: unbiased MMD² with the cubic polynomial kernel.

k(x, y) = (xᵀy/d + 1)³, averaged over ``kid_subsets`` random subsets of
``kid_subset_size`` drawn without replacement by ``np.random.RandomState(seed)``
— the same draws, in the same order, as torch-fidelity, so the same seed gives
the same subsets. Kernels and sums are float64 (torch-fidelity sums in the
features' float32).
"""

from __future__ import annotations

import numpy as np
import torch

from . import MetricContext, finite_or_raise


def _poly_sum(a: torch.Tensor, b: torch.Tensor, d: int) -> torch.Tensor:
    """Σᵢⱼ (aᵢᵀbⱼ/d + 1)³ with the affine part fused into the matrix product (one m×m pass less)."""
    k = torch.addmm(torch.ones((), dtype=a.dtype, device=a.device), a, b.T, beta=1.0, alpha=1.0 / d)
    return k.pow_(3).sum()


def mmd2_unbiased(x: torch.Tensor, y: torch.Tensor) -> float:
    m, d = x.shape
    # The kernel's diagonal k(xᵢ, xᵢ) comes from the norms, not from the m×m matrix.
    diag_x = ((x * x).sum(1) / d + 1.0).pow(3).sum()
    diag_y = ((y * y).sum(1) / d + 1.0).pow(3).sum()
    sum_xx = _poly_sum(x, x, d) - diag_x
    sum_yy = _poly_sum(y, y, d) - diag_y
    return float((sum_xx + sum_yy) / (m * (m - 1)) - 2.0 * _poly_sum(x, y, d) / (m * m))


def kid(fake, real, subsets: int, subset_size: int, seed: int, device: str = "cpu") -> dict:
    """Subsets of the generated set are drawn first, as torch-fidelity draws input1 first."""
    n1, n2 = len(fake), len(real)
    if min(n1, n2) < 2:
        raise ValueError("KID needs at least 2 samples per set")
    m = min(subset_size, n1, n2)
    rng = np.random.RandomState(seed)
    x_all = torch.as_tensor(fake, device=device).to(torch.float64)
    y_all = torch.as_tensor(real, device=device).to(torch.float64)
    mmds = np.empty(subsets)
    for i in range(subsets):
        ix = torch.from_numpy(rng.choice(n1, m, replace=False)).to(device)
        iy = torch.from_numpy(rng.choice(n2, m, replace=False)).to(device)
        mmds[i] = mmd2_unbiased(x_all[ix], y_all[iy])
    value = finite_or_raise("KID", float(np.mean(mmds)))
    return {"value": value, "std": float(np.std(mmds)), "subsets": subsets, "subset_size": m}


class KID:
    name, label, role = "kid", "KID", "pool"
    needs_real, higher_is_better = True, False
    description = "unbiased MMD² with a cubic polynomial kernel, mean ± std over subsets"

    def compute(self, ctx: MetricContext) -> dict:
        o = ctx.options
        n = min(ctx.fake.n, ctx.real.n)
        if n < o.kid_subset_size:
            same = ctx.fake.n == ctx.real.n  # every subset is then both whole sets: the spread over subsets is 0
            ctx.warnings.append(f"KID: subset size lowered from {o.kid_subset_size} to {n}, the smaller set's size"
                                + ("; every subset is then the whole of both sets, so its ± is 0 and says nothing "
                                   "of the uncertainty (lower --kid-subset-size, or use --bootstrap)" if same else ""))
        return kid(ctx.fake.features(self.role), ctx.real.features(self.role), o.kid_subsets, o.kid_subset_size, o.seed, o.device)
