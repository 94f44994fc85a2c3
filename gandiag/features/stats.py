"""Streaming, mergeable feature statistics in float64.

FID needs only the mean and covariance of each feature set. Keeping the count,
the float64 sum and the float64 sum of outer products (instead of every
feature) bounds memory by d², lets batches arrive one at a time, and makes
statistics from several sources (``torchrun`` ranks, cached real data plus
new samples) merge by plain addition, exactly (:meth:`FeatureStats.merge`).
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch


class FeatureStats:
    """Count, float64 sum and float64 sum of outer products of a feature set."""

    def __init__(self, n: int, sum: np.ndarray, outer: np.ndarray):
        self.n = int(n)
        self._sum = np.asarray(sum, dtype=np.float64)
        self._outer = np.asarray(outer, dtype=np.float64)
        self._upper = None  # CPU accumulator: upper triangle only, Fortran order (BLAS dsyrk)
        self._on_device = None  # GPU accumulator: (Σx, Σxxᵀ) float64 tensors where the batches are

    @classmethod
    def empty(cls, dim: int) -> "FeatureStats":
        return cls(0, np.zeros(dim, np.float64), np.zeros((dim, dim), np.float64))

    @classmethod
    def of(cls, features) -> "FeatureStats":
        x = torch.as_tensor(features)
        s = cls.empty(x.shape[1])
        s.update(x)
        return s

    @property
    def dim(self) -> int:
        return int(self._sum.shape[0])

    def _settle(self) -> None:
        """Fold the pending accumulators into the float64 numpy totals."""
        if self._upper is not None:
            up = self._upper
            self._outer = self._outer + np.triu(up) + np.triu(up, 1).T
            self._upper = None
        if self._on_device is not None:
            s, o = self._on_device
            self._sum = self._sum + s.cpu().numpy()
            self._outer = self._outer + o.cpu().numpy()
            self._on_device = None

    @property
    def sum(self) -> np.ndarray:
        """Σ x."""
        self._settle()
        return self._sum

    @property
    def outer(self) -> np.ndarray:
        """Σ x xᵀ (full symmetric matrix)."""
        self._settle()
        return self._outer

    def update(self, batch: torch.Tensor) -> None:
        """Add a (B, d) batch. On the CPU, BLAS dsyrk forms xᵀx at half a matrix
        product's cost (one triangle). On a GPU the sums stay on the device until
        read, so a d×d matrix crosses the bus once per set, not once per batch."""
        x = torch.as_tensor(batch).detach()
        self.n += int(x.shape[0])
        if x.device.type == "cpu":
            from scipy.linalg.blas import dsyrk

            xn = np.ascontiguousarray(x.numpy(), dtype=np.float64)
            self._sum = self._sum + xn.sum(0)
            if self._upper is None:
                self._upper = np.zeros((self.dim, self.dim), np.float64, order="F")
            self._upper = dsyrk(1.0, xn, beta=1.0, c=self._upper, trans=1, lower=0, overwrite_c=1)
            return
        x = x.to(torch.float64)
        if self._on_device is None or self._on_device[0].device != x.device:
            self._settle()
            d = x.shape[1]
            self._on_device = (torch.zeros(d, dtype=torch.float64, device=x.device),
                               torch.zeros(d, d, dtype=torch.float64, device=x.device))
        s, o = self._on_device
        s.add_(x.sum(0))
        o.addmm_(x.T, x)

    def merge(self, other: "FeatureStats") -> "FeatureStats":
        if other.dim != self.dim:
            raise ValueError(f"cannot merge statistics of {self.dim}-d and {other.dim}-d features")
        return FeatureStats(self.n + other.n, self.sum + other.sum, self.outer + other.outer)

    @property
    def mean(self) -> np.ndarray:
        return self.sum / self.n

    @property
    def cov(self) -> np.ndarray:
        """Unbiased covariance (divides by n-1, as np.cov and every FID implementation)."""
        if self.n < 2:
            raise ValueError("covariance needs at least 2 samples")
        mu = self.mean
        c = (self.outer - self.n * np.outer(mu, mu)) / (self.n - 1)
        return (c + c.T) / 2


@contextlib.contextmanager
def one_cpu_thread():
    """torch on one CPU thread for the block, then as it was.

    Many small matrix operations (eigen solvers, pairwise distances, small recurrent nets) gain
    little from a second thread on a few cores and collapse when another process holds one:
    measured on 2 cores, 2048² eigvalsh 0.85 s on 1 thread, 5.8 s on 2 under load; the sequence
    shape search 50x slower on 2."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
