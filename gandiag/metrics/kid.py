"""Kernel Inception Distance: unbiased MMD² with the cubic polynomial kernel.

k(x, y) = (xᵀy/d + 1)³, averaged over ``kid_subsets`` random subsets of
``kid_subset_size`` drawn without replacement by ``np.random.RandomState(seed)``
— the same draws, in the same order, as torch-fidelity, so the same seed gives
the same subsets. The features' products are computed in their own precision
(float32 from a float32 network, IEEE), the kernel values and every sum in
float64 (torch-fidelity cubes and sums in float32).

**Each kernel value once, when that is cheaper.** ``kid_subsets`` subsets of
m rows cost 3·S·m²·d multiply-adds computed one by one (100 subsets of 1,000
at d = 2,048: 6·10¹¹), yet with a few thousand samples per set they keep
revisiting the same n² pairs. :func:`_subset_sums` instead computes each row
block of the kernel matrices over the whole sets once and sums every subset
at once as diag(Mᵀ K M), M the n×S matrix of which rows each subset drew:
(n₁²/2 + n₂²/2 + n₁n₂)(d + S) multiply-adds (within a set, the upper triangle of
blocks) in memory O(block·n). The cheaper of the two by that count runs
(:func:`_whole_sets_pay`): with 2,000 samples per set and Inception's features
it is 36× fewer; from about 12,000 per set, the subsets.
Both give the same sums up to float64 rounding (tests/test_metric_definitions.py).
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch

from ..features.precision import numerics
from . import MetricContext, finite_or_raise

BLOCK_ELEMENTS = 1 << 24  # kernel entries per row block of the whole-set pass (128 MiB in float64)


def _kernel(a: torch.Tensor, b: torch.Tensor, d: int) -> torch.Tensor:
    """(aᵢᵀbⱼ/d + 1)³ for every pair, float64: the products in the features' own precision (float32 features
    from a float32 network: float64 products would add digits the features never had, at twice the cost;
    IEEE, never TF32), the cube and every sum after them in float64. (NumPy's ``a @ a.T`` is one triangle,
    half the work, but its BLAS threads beside torch's made a 50k-sample KID 1.7x slower here, not faster.)"""
    with numerics("strict", str(a.device)):
        k = a @ b.T
    return k.to(torch.float64).mul_(1.0 / d).add_(1.0).pow_(3)


def _diagonal(x: torch.Tensor, d: int) -> torch.Tensor:
    """k(xᵢ, xᵢ) from the norms (float64), not from an m×m matrix."""
    x = x.to(torch.float64)
    return ((x * x).sum(1) / d + 1.0).pow(3)


def mmd2_unbiased(x: torch.Tensor, y: torch.Tensor, diag_x=None, diag_y=None) -> float:
    """One subset's unbiased MMD²; ``diag_x``/``diag_y``: its rows' k(xᵢ, xᵢ) when already at hand."""
    m, d = x.shape
    diag_x = _diagonal(x, d) if diag_x is None else diag_x
    diag_y = _diagonal(y, d) if diag_y is None else diag_y
    sum_xx = _kernel(x, x, d).sum() - diag_x.sum()
    sum_yy = _kernel(y, y, d).sum() - diag_y.sum()
    return float((sum_xx + sum_yy) / (m * (m - 1)) - 2.0 * _kernel(x, y, d).sum() / (m * m))


def _whole_sets_pay(n1: int, n2: int, d: int, subsets: int, m: int) -> bool:
    """Whether computing the kernel over the whole sets once costs fewer multiply-adds than subset by subset
    (within a set only the upper triangle of blocks is computed: n²/2)."""
    return (n1 * n1 / 2 + n2 * n2 / 2 + n1 * n2) * (d + subsets) < 3 * subsets * m * m * d


def _subset_sums(a: torch.Tensor, b: torch.Tensor, in_a: torch.Tensor, in_b: torch.Tensor) -> torch.Tensor:
    """(S,): for each subset s, Σ k(aᵢ, bⱼ) over the rows i of a and j of b it drew (``in_a[:, s]``,
    ``in_b[:, s]``: 0/1 float64), the kernel computed once per pair, a row block of a at a time."""
    d = a.shape[1]
    out = torch.zeros(in_a.shape[1], dtype=torch.float64, device=a.device)
    step = max(1, BLOCK_ELEMENTS // max(b.shape[0], 1))
    for r in range(0, a.shape[0], step):
        out += (_kernel(a[r:r + step], b, d) @ in_b).mul_(in_a[r:r + step]).sum(0)
    return out


def _subset_sums_within(a: torch.Tensor, in_a: torch.Tensor) -> torch.Tensor:
    """:func:`_subset_sums` of a set with itself from the upper triangle of blocks: k(aᵢ, aⱼ) = k(aⱼ, aᵢ), so an
    off-diagonal block's sum over a subset's rows and columns counts twice (half the kernel evaluations)."""
    d, n = a.shape[1], a.shape[0]
    out = torch.zeros(in_a.shape[1], dtype=torch.float64, device=a.device)
    step = max(1, int(math.isqrt(BLOCK_ELEMENTS)))
    for r in range(0, n, step):
        for c in range(r, n, step):
            part = (_kernel(a[r:r + step], a[c:c + step], d) @ in_a[c:c + step]).mul_(in_a[r:r + step]).sum(0)
            out += part if c == r else 2.0 * part
    return out


def _mmds_whole_sets(x: torch.Tensor, y: torch.Tensor, draws: list, m: int) -> np.ndarray:
    """Each subset's unbiased MMD² from the kernel over the whole sets (see the module docstring)."""
    def drawn(n, which):
        hot = torch.zeros(n, len(draws), dtype=torch.float64, device=x.device)
        for s, pair in enumerate(draws):
            hot[pair[which], s] = 1.0
        return hot

    in_x, in_y = drawn(x.shape[0], 0), drawn(y.shape[0], 1)
    d = x.shape[1]
    diag_x, diag_y = _diagonal(x, d), _diagonal(y, d)
    sum_xx = _subset_sums_within(x, in_x) - diag_x @ in_x
    sum_yy = _subset_sums_within(y, in_y) - diag_y @ in_y
    sum_xy = _subset_sums(x, y, in_x, in_y)
    return ((sum_xx + sum_yy) / (m * (m - 1)) - 2.0 * sum_xy / (m * m)).cpu().numpy()


def _rows(features, device: str) -> torch.Tensor:
    """Features as float32 or float64 rows (half-precision ones widened to float32), as they came otherwise."""
    x = torch.as_tensor(features, device=device)
    return x if x.dtype in (torch.float32, torch.float64) else x.to(torch.float32)


def kid(fake, real, subsets: int, subset_size: int, seed: int, device: str = "cpu",
        whole_sets: Optional[bool] = None) -> dict:
    """Subsets of the generated set are drawn first, as torch-fidelity draws input1 first. ``whole_sets``:
    compute the kernel over the whole sets once (True) or subset by subset (False); None: the cheaper."""
    n1, n2 = len(fake), len(real)
    if min(n1, n2) < 2:
        raise ValueError("KID needs at least 2 samples per set")
    m = min(subset_size, n1, n2)
    rng = np.random.RandomState(seed)
    x_all, y_all = _rows(fake, device), _rows(real, device)
    draws = [(torch.from_numpy(rng.choice(n1, m, replace=False)).to(device),
              torch.from_numpy(rng.choice(n2, m, replace=False)).to(device)) for _ in range(subsets)]
    if whole_sets is None:
        whole_sets = _whole_sets_pay(n1, n2, x_all.shape[1], subsets, m)
    if whole_sets:
        mmds = _mmds_whole_sets(x_all, y_all, draws, m)
    else:
        d = x_all.shape[1]
        diag_x, diag_y = _diagonal(x_all, d), _diagonal(y_all, d)  # once, not once per subset
        mmds = np.array([mmd2_unbiased(x_all[ix], y_all[iy], diag_x[ix], diag_y[iy]) for ix, iy in draws])
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
