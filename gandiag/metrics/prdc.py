"""Precision/recall (Kynkäänniemi et al. 2019) and density/coverage (Naeem et al. 2020).

Both describe each set by balls around its points: the radius of a point is
the distance to its k-th nearest neighbour in its own set, itself excluded.
Precision: share of generated samples inside the union of real balls (k=3,
``<=``, as the authors' code); recall: share of real samples inside the union
of generated balls. Density counts, per generated sample, how many real balls
(k=5, strict ``<`` as in clovaai/prdc) contain it, over kM; coverage is the
share of real balls that contain at least one generated sample.

Distances are computed in float64 blocks of rows so memory stays O(block·N)
rather than O(N²), which is what lets these run on 50k sets.
"""

from __future__ import annotations

import torch

from . import MetricContext, finite_or_raise

BLOCK = 2048


def _sqdist(a: torch.Tensor, b: torch.Tensor, b_sq: torch.Tensor) -> torch.Tensor:
    d = a @ b.T
    return d.mul_(-2.0).add_(b_sq[None, :]).add_((a * a).sum(1, keepdim=True)).clamp_min_(0)


def kth_nn_radii(x: torch.Tensor, k: int) -> torch.Tensor:
    """Distance of each row to its k-th nearest other row (float64)."""
    if x.shape[0] <= k:
        raise ValueError(f"need more than k={k} samples for nearest-neighbour radii, got {x.shape[0]}")
    x_sq = (x * x).sum(1)
    out = torch.empty(x.shape[0], dtype=torch.float64, device=x.device)
    for i in range(0, x.shape[0], BLOCK):
        d = _sqdist(x[i : i + BLOCK], x, x_sq)
        # k+1 smallest includes the point itself at distance 0.
        out[i : i + BLOCK] = d.topk(k + 1, dim=1, largest=False).values[:, k]
    return out.sqrt()


def _ball_counts(queries: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, strict: bool) -> torch.Tensor:
    """For each query, how many balls (centre, radius) contain it."""
    c_sq = (centres * centres).sum(1)
    r2 = radii * radii
    counts = torch.empty(queries.shape[0], dtype=torch.long, device=queries.device)
    for i in range(0, queries.shape[0], BLOCK):
        d = _sqdist(queries[i : i + BLOCK], centres, c_sq)
        inside = d < r2[None, :] if strict else d <= r2[None, :]
        counts[i : i + BLOCK] = inside.sum(1)
    return counts


def _nearest_dist(queries: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    p_sq = (points * points).sum(1)
    out = torch.empty(queries.shape[0], dtype=torch.float64, device=queries.device)
    for i in range(0, queries.shape[0], BLOCK):
        out[i : i + BLOCK] = _sqdist(queries[i : i + BLOCK], points, p_sq).min(1).values
    return out.sqrt()


def precision_recall(real, fake, k: int = 3, device: str = "cpu") -> dict:
    x = torch.as_tensor(real, device=device).to(torch.float64)
    y = torch.as_tensor(fake, device=device).to(torch.float64)
    precision = (_ball_counts(y, x, kth_nn_radii(x, k), strict=False) > 0).double().mean()
    recall = (_ball_counts(x, y, kth_nn_radii(y, k), strict=False) > 0).double().mean()
    return {"precision": float(precision), "recall": float(recall), "k": k}


def density_coverage(real, fake, k: int = 5, device: str = "cpu") -> dict:
    x = torch.as_tensor(real, device=device).to(torch.float64)
    y = torch.as_tensor(fake, device=device).to(torch.float64)
    radii = kth_nn_radii(x, k)
    density = _ball_counts(y, x, radii, strict=True).double().sum() / (k * y.shape[0])
    coverage = (_nearest_dist(x, y) < radii).double().mean()
    return {"density": float(density), "coverage": float(coverage), "k": k}


class PRDCMetric:
    """One of the four ball-based metrics; the pair computed together shares its distance work."""

    role, needs_real, higher_is_better = "pool", True, True

    def __init__(self, name: str, label: str, fn, k_option: str, description: str):
        self.name, self.label, self.description = name, label, description
        self._fn, self._k_option = fn, k_option

    def compute(self, ctx: MetricContext) -> dict:
        k = getattr(ctx.options, self._k_option)
        key = (self._fn.__name__, k)
        if key not in ctx.shared:
            ctx.shared[key] = self._fn(ctx.real.features(self.role), ctx.fake.features(self.role), k, ctx.options.device)
        r = ctx.shared[key]
        return {"value": finite_or_raise(self.name, r[self.name]), "k": r["k"]}


def builtin_metrics() -> list:
    return [
        PRDCMetric("precision", "Precision", precision_recall, "prc_k",
                   "share of generated samples inside the real manifold (k-NN balls, k=3)"),
        PRDCMetric("recall", "Recall", precision_recall, "prc_k",
                   "share of real samples inside the generated manifold (k-NN balls, k=3)"),
        PRDCMetric("density", "Density", density_coverage, "dc_k",
                   "mean number of real k-NN balls (k=5) containing a generated sample, over k"),
        PRDCMetric("coverage", "Coverage", density_coverage, "dc_k",
                   "share of real k-NN balls (k=5) containing at least one generated sample"),
    ]
