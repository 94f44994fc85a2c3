"""Fréchet distance between two Gaussians fitted to feature sets (FID).

FID = ‖μ₁−μ₂‖² + Tr Σ₁ + Tr Σ₂ − 2 Tr (Σ₁Σ₂)^½.

The trace of the matrix square root is where implementations differ and
break (complex results, NaN, negative FID; REFERENCES.md). We never take a
non-symmetric square root: with Σ₁ = A Aᵀ the eigenvalues of Σ₁Σ₂ are those of
the symmetric PSD matrix Aᵀ Σ₂ A, so Tr (Σ₁Σ₂)^½ = Σ √λᵢ(Aᵀ Σ₂ A), computed by
``eigvalsh`` in float64, tiny negative eigenvalues (rounding) clamped to 0.
A is a Cholesky factor when Σ₁ is positive definite (cheap), else Σ₁'s
eigen-square-root. When N is below the feature dimension the covariances have
rank < N and, given the centred features X₁, X₂, the same trace is the sum of
singular values of X₁X₂ᵀ/√((n₁−1)(n₂−1)), an N×N problem instead of d×d.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from ..features.stats import FeatureStats, one_cpu_thread
from . import MetricContext, finite_or_raise


def _lapack_threads(device: str):
    """One CPU thread for eigen/singular-value solvers (MKL's threaded dsyevd/gesdd): :func:`one_cpu_thread`."""
    return one_cpu_thread() if str(device).startswith("cpu") else contextlib.nullcontext()


def _sqrt_factor(sigma: torch.Tensor) -> torch.Tensor:
    L, info = torch.linalg.cholesky_ex(sigma)
    if int(info) == 0:
        return L
    with _lapack_threads(sigma.device.type):
        w, V = torch.linalg.eigh(sigma)
    return V * w.clamp_min(0).sqrt()


def trace_sqrt_product(sigma1, sigma2, device: str = "cpu") -> float:
    """Tr((Σ₁Σ₂)^½) for symmetric PSD Σ₁, Σ₂, in float64 on ``device``."""
    s1 = torch.as_tensor(sigma1, dtype=torch.float64, device=device)
    s2 = torch.as_tensor(sigma2, dtype=torch.float64, device=device)
    A = _sqrt_factor(s1)
    M = A.T @ s2 @ A
    with _lapack_threads(device):
        lam = torch.linalg.eigvalsh((M + M.T) / 2)
    # Eigenvalues below the rounding level of the largest one are zeros of a
    # rank-deficient product; their square roots (~1e-8·√λmax each) would add up.
    noise = lam.abs().max() * lam.shape[0] * torch.finfo(torch.float64).eps
    return float(torch.where(lam > noise, lam, torch.zeros_like(lam)).sqrt().sum())


def trace_sqrt_product_lowrank(x1, x2, device: str = "cpu") -> float:
    """The same trace from the features themselves, when N < d."""
    a = torch.as_tensor(x1, device=device).to(torch.float64)
    b = torch.as_tensor(x2, device=device).to(torch.float64)
    a = a - a.mean(0)
    b = b - b.mean(0)
    p = a @ b.T
    with _lapack_threads(device):
        s = torch.linalg.svdvals(p)
    return float(s.sum() / np.sqrt((a.shape[0] - 1) * (b.shape[0] - 1)))


def frechet_distance(stats1: FeatureStats, stats2: FeatureStats, x1=None, x2=None, device: str = "cpu") -> dict:
    mu1, mu2 = stats1.mean, stats2.mean
    s1, s2 = stats1.cov, stats2.cov
    diff = mu1 - mu2
    d = stats1.dim
    if x1 is not None and x2 is not None and min(len(x1), len(x2)) < d:
        tr_sqrt, method = trace_sqrt_product_lowrank(x1, x2, device), "svd-lowrank"
    else:
        tr_sqrt, method = trace_sqrt_product(s1, s2, device), "cholesky-eigvalsh"
    fid = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_sqrt)
    fid = finite_or_raise("FID", fid)
    # Rounding can push a distance between (near-)identical sets a hair below 0.
    return {"value": max(fid, 0.0), "mean_term": float(diff @ diff), "trace_sqrt": tr_sqrt, "sqrt_method": method}


class FID:
    name, label, role = "fid", "FID", "pool"
    needs_real, higher_is_better = True, False
    real_statistics_suffice = True  # runs against published statistics (--real stats.npz)
    description = "Fréchet distance between Gaussian fits of real and generated features"

    def compute(self, ctx: MetricContext) -> dict:
        fake, real = ctx.fake, ctx.real
        d = fake.dim(self.role)
        n = fake.n if real is None else min(fake.n, real.n)
        if n <= d:
            ctx.warnings.append(
                f"FID: {n} samples do not exceed the {d}-d features; the covariance is "
                "rank-deficient and FID is strongly biased (use ≥10,000 samples for numbers you publish)"
            )
        if real is None:  # published statistics: their mean and covariance, no features (Cholesky/eigvalsh path)
            return frechet_distance(ctx.real_statistics.stats(self.role), fake.stats(self.role),
                                    device=ctx.options.device)
        return frechet_distance(
            real.stats(self.role), fake.stats(self.role), real.features(self.role), fake.features(self.role),
            ctx.options.device,
        )
