"""Precision/recall (Kynkäänniemi et al. 2019) and density/coverage (Naeem et al. 2020).

Both describe each set by balls around its points: the radius of a point is
the distance to its k-th nearest neighbour in its own set, itself excluded.
Precision: share of generated samples inside the union of real balls (k=3,
``<=``, as the authors' code); recall: share of real samples inside the union
of generated balls. Density counts, per generated sample, how many real balls
(k=5, strict ``<`` as in clovaai/prdc) contain it, over kM; coverage is the
share of real balls that contain at least one generated sample.

**One pass per pair of sets.** All four need three distance matrices, each
computed once, in blocks (memory O(block·N), not O(N²), so 50k sets fit):
real×real for the real radii of both k (one top-k of the larger k; within a
set each block of the upper triangle is computed once and read both ways,
neighbours.py), fake×fake for the generated radii, and one real×fake pass from which every
block answers all four at once (precision and density per generated row,
recall and coverage reduced over the rows per real column).

**Float32 speed, float64 answers.** Each block is computed in float32 with a
proven error bound and only the comparisons within that bound of their
radius are recomputed in float64 from the coordinates (screening.py), so
every ball test and every radius is the float64 one; a pass whose float32
values leave too many comparisons open turns to float64 products. Radii are
the exact k-th squared distances and balls are tested on squared distances
(≤ for precision/recall, < for density/coverage, as the authors' code).
tests/test_knn_screening.py checks the metrics against whole float64
matrices on sets built to defeat the screen, and tests/test_metric_definitions.py
against the definition and clovaai's ``prdc``.
"""

from __future__ import annotations

from typing import Optional

import torch

from . import MetricContext, finite_or_raise
from .neighbours import smallest, smallest_within
from .screening import Screen, rows_per_block, settle

PR = ("precision", "recall")
DC = ("density", "coverage")


def self_radii_squared(x: torch.Tensor, ks, src: Optional[torch.Tensor] = None, shard=None) -> dict:
    """{k: squared distance of each row to its k-th nearest other row} for every k in ``ks``, one pass over x×x.

    With ``src`` (the original index of each row of a bootstrap resample), copies of one original point are
    not each other's neighbours: a duplicate at distance 0 would shrink every radius. With ``shard`` (under
    torchrun) this rank computes its span of rows and the ranks exchange their radii.
    """
    ks = sorted(set(int(k) for k in ks))
    n = x.shape[0]
    if n <= ks[-1]:
        raise ValueError(f"need more than k={ks[-1]} samples for nearest-neighbour radii, got {n}")
    lo, hi = shard.span(n) if shard is not None else (0, n)
    screen = Screen(x, x)
    need = ks[-1] + (1 if src is None else 0)  # without src the smallest is the point itself, at 0
    if shard is None:
        values = smallest_within(screen, need, src)
    else:
        values = smallest(screen, torch.arange(lo, hi, device=x.device), need, src)
    out = {k: values[:, k if src is None else k - 1].contiguous() for k in ks}
    if shard is not None:
        out = {k: shard.gather(v, n) for k, v in out.items()}
    return {k: v.div_(screen.scale2) for k, v in out.items()}


def self_radii(x: torch.Tensor, ks, src: Optional[torch.Tensor] = None, shard=None) -> dict:
    """{k: distance of each row to its k-th nearest other row} (float64); see :func:`self_radii_squared`."""
    return {k: v.sqrt() for k, v in self_radii_squared(x, ks, src, shard).items()}


def kth_nn_radii(x: torch.Tensor, k: int) -> torch.Tensor:
    """Distance of each row to its k-th nearest other row (float64)."""
    return self_radii(x, (k,))[k]


def ball_metrics(x: torch.Tensor, y: torch.Tensor, prc_k: int = 3, dc_k: int = 5, wanted=PR + DC,
                 x_src: Optional[torch.Tensor] = None, y_src: Optional[torch.Tensor] = None, shard=None) -> dict:
    """Precision, recall (k = ``prc_k``), density, coverage (k = ``dc_k``) of fake ``y`` against real ``x``
    (float64 rows), each distance block computed once; only the ``wanted`` ones (and what they need).

    With ``shard`` (a :class:`gandiag.distributed.RowShard` under torchrun) each rank computes its own span of
    rows of every pass: per-row results are gathered, per-column ones reduced (any)."""
    pr, dc = bool(set(wanted) & set(PR)), bool(set(wanted) & set(DC))
    rx2 = self_radii_squared(x, ([prc_k] if pr else []) + ([dc_k] if dc else []), x_src, shard)
    ry2 = self_radii_squared(y, (prc_k,), y_src, shard)[prc_k] if pr else None
    screen = Screen(y, x)  # generated rows × real columns
    nx, ny = x.shape[0], y.shape[0]
    lo, hi = shard.span(ny) if shard is not None else (0, ny)
    flags = lambda n: torch.zeros(n, dtype=torch.bool, device=x.device)  # noqa: E731
    if pr:
        real_ball2, fake_ball2 = rx2[prc_k] * screen.scale2, ry2 * screen.scale2
        in_real, in_fake = flags(hi - lo), flags(nx)
    if dc:
        dc_ball2 = rx2[dc_k] * screen.scale2
        balls, covered = torch.zeros(hi - lo, dtype=torch.long, device=x.device), flags(nx)
    step = rows_per_block(nx)
    for i in range(lo, hi, step):
        j = min(i + step, hi)
        d = screen.block(slice(i, j))
        if pr:  # precision: inside any real ball (<=); recall: a real point inside any generated ball
            sure, r, _ = settle(screen, d, i, real_ball2, "cols", strict=False)
            in_real[i - lo : j - lo] = sure.any(1)
            in_real[i - lo + r] = True
            sure, _, c = settle(screen, d, i, fake_ball2[i:j], "rows", strict=False)
            in_fake |= sure.any(0)
            in_fake[c] = True
        if dc:  # density: how many real balls (strict <) hold each generated point; coverage: balls holding one
            sure, r, c = settle(screen, d, i, dc_ball2, "cols", strict=True)
            balls[i - lo : j - lo] = sure.sum(1)
            balls.index_add_(0, i - lo + r, torch.ones_like(r))
            covered |= sure.any(0)
            covered[c] = True
    if shard is not None:
        if pr:
            in_real, in_fake = shard.gather(in_real.to(torch.uint8), ny).bool(), shard.any(in_fake)
        if dc:
            balls, covered = shard.gather(balls, ny), shard.any(covered)
    out = {}
    if pr:
        out.update(precision=float(in_real.double().mean()), recall=float(in_fake.double().mean()))
    if dc:
        out.update(density=float(balls.double().sum() / (dc_k * ny)), coverage=float(covered.double().mean()))
    return out


def precision_recall(real, fake, k: int = 3, device: str = "cpu") -> dict:
    x = torch.as_tensor(real, device=device).to(torch.float64)
    y = torch.as_tensor(fake, device=device).to(torch.float64)
    return {**ball_metrics(x, y, prc_k=k, wanted=PR), "k": k}


def density_coverage(real, fake, k: int = 5, device: str = "cpu") -> dict:
    x = torch.as_tensor(real, device=device).to(torch.float64)
    y = torch.as_tensor(fake, device=device).to(torch.float64)
    return {**ball_metrics(x, y, dc_k=k, wanted=DC), "k": k}


def all_four(real, fake, prc_k: int, dc_k: int, device: str = "cpu", wanted=PR + DC) -> dict:
    """The ``wanted`` ones of the four from one set of distance passes, shared between ranks under torchrun."""
    from ..distributed import row_shard

    x = torch.as_tensor(real, device=device).to(torch.float64)
    y = torch.as_tensor(fake, device=device).to(torch.float64)
    return ball_metrics(x, y, prc_k=prc_k, dc_k=dc_k, wanted=wanted, shard=row_shard())


class PRDCMetric:
    """One of the four ball-based metrics; whichever of them run share one set of distance passes."""

    role, needs_real, higher_is_better = "pool", True, True

    def __init__(self, name: str, label: str, k_option: str, description: str):
        self.name, self.label, self.description = name, label, description
        self._k_option = k_option

    def compute(self, ctx: MetricContext) -> dict:
        prc_k, dc_k = ctx.options.prc_k, ctx.options.dc_k
        wanted = tuple(n for n in PR + DC if n in ctx.chosen) or PR + DC
        key = ("prdc", prc_k, dc_k, wanted)
        if key not in ctx.shared or self.name not in ctx.shared[key]:
            ctx.shared[key] = all_four(ctx.real.features(self.role), ctx.fake.features(self.role), prc_k, dc_k,
                                       ctx.options.device, wanted if self.name in wanted else (self.name,))
        return {"value": finite_or_raise(self.name, ctx.shared[key][self.name]),
                "k": getattr(ctx.options, self._k_option)}


def builtin_metrics() -> list:
    return [
        PRDCMetric("precision", "Precision", "prc_k",
                   "share of generated samples inside the real manifold (k-NN balls, k=3)"),
        PRDCMetric("recall", "Recall", "prc_k",
                   "share of real samples inside the generated manifold (k-NN balls, k=3)"),
        PRDCMetric("density", "Density", "dc_k",
                   "mean number of real k-NN balls (k=5) containing a generated sample, over k"),
        PRDCMetric("coverage", "Coverage", "dc_k",
                   "share of real k-NN balls (k=5) containing at least one generated sample"),
    ]
