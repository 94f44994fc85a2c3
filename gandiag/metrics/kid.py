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


def _poly(a: torch.Tensor, b: torch.Tensor, d: int) -> torch.Tensor:
    k = a @ b.T  # in place from here: three m×m temporaries less per subset
    return k.div_(d).add_(1.0).pow_(3)


def mmd2_unbiased(x: torch.Tensor, y: torch.Tensor) -> float:
    m, d = x.shape
    kxx, kyy, kxy = _poly(x, x, d), _poly(y, y, d), _poly(x, y, d)
    sum_xx = kxx.sum() - kxx.diagonal().sum()
    sum_yy = kyy.sum() - kyy.diagonal().sum()
    return float((sum_xx + sum_yy) / (m * (m - 1)) - 2.0 * kxy.sum() / (m * m))


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
            ctx.warnings.append(f"KID: subset size lowered from {o.kid_subset_size} to {n}, the smaller set's size")
        return kid(ctx.fake.features(self.role), ctx.real.features(self.role), o.kid_subsets, o.kid_subset_size, o.seed, o.device)
