"""Squared distances screened in float32 and settled in float64, so each decision is the float64 one.

The k-NN metrics only ever ask whether a distance lies below a radius, or
which distances are a row's k smallest. Almost every such question is far
from its answer's edge, so float32 arithmetic (twice float64's speed on a
CPU, 2–64× on GPUs) settles it, provided each float32 value comes with a
proven bound on its error: an entry further than the bound from its
threshold is decided in float32; the few inside that band are recomputed
from the coordinate differences in float64 (:meth:`Screen.exact`, the
definition every decision follows). Rows whose float32 band is crowded (a
set whose points differ by less than float32 can see) are screened again by
float64 products with float64's bound before any pair is recomputed, and the
rest of that pass runs in float64: points whose distances all sit within
float32's error of each other's radii (independent Gaussian noise in 2,048
dimensions is such a set) cost what plain float64 costs, plus one block.

**The bound.** Both sets are centred on one point and scaled by a power of
two (exact) so that no row's norm exceeds 1; cast to ``dtype`` with unit
roundoff u. For rows a, b with (centred, scaled) norms α, β, the computed
``|a|² + |b|² − 2a·b`` (:func:`squared_distances`) differs from the exact
squared distance of the float64 rows by at most γ(α + β)² + τ, where

- rounding the inputs to ``dtype`` moves |a − b|² by ≤ (2u + u²)(α + β)²;
- each of the three dot products of length D errs by ≤ γ_D = Du/(1 − Du)
  times the product of the norms, in any summation order, with or without
  FMA (Higham, *Accuracy and Stability of Numerical Algorithms*, §3.1), and
  the two additions by ≤ u of their operands;
- so γ = γ_{D+6} covers the sum of these, plus (D + 8)·2⁻⁵² for the float64
  recomputation and the centring, and τ = 16(D + 1)·2⁻¹⁴⁹ the underflow of
  components below float32's normal range.

The products run in IEEE arithmetic (``numerics("strict")``: no TF32, no
bf16) while screening, whatever the rest of the run chose. Clamping at 0
only moves a value toward the truth.
"""

from __future__ import annotations

import math

import torch

from ..features.precision import numerics

BLOCK = 2048  # rows per distance block ...
BLOCK_ELEMENTS = 1 << 26  # ... and at most this many entries (256 MiB in float32) in one
EXACT_ELEMENTS = 1 << 19  # float64 coordinates gathered at once by an exact recomputation (4 MiB, cache-sized)
# A pair recomputed exactly costs ~200 entries of a float32 product; past these shares of a block's entries
# (threshold bands) or rows (unsettled k-th neighbours) the screen gives up on float32 for the rest of the pass.
CROWDED_ENTRIES = 1 / 2048
CROWDED_ROWS = 1 / 16


def rows_per_block(n_cols: int) -> int:
    return max(1, min(BLOCK, BLOCK_ELEMENTS // max(n_cols, 1)))


def squared_distances(a: torch.Tensor, b: torch.Tensor, b_sq: torch.Tensor) -> torch.Tensor:
    """|a_i − b_j|² as |a_i|² + |b_j|² − 2a_i·b_j, in the rows' dtype, clamped at 0 (one matrix product)."""
    d = a @ b.T
    return d.mul_(-2.0).add_(b_sq[None, :]).add_((a * a).sum(1, keepdim=True)).clamp_min_(0)


def below(v: torch.Tensor, dtype) -> torch.Tensor:
    """The largest ``dtype`` values ≤ v (float64), so comparisons in ``dtype`` stay on the safe side."""
    f = v.to(dtype)
    return torch.where(f.double() > v, torch.nextafter(f, torch.full_like(f, -math.inf)), f)


def above(v: torch.Tensor, dtype) -> torch.Tensor:
    """The smallest ``dtype`` values ≥ v."""
    f = v.to(dtype)
    return torch.where(f.double() < v, torch.nextafter(f, torch.full_like(f, math.inf)), f)


class Screen:
    """Rows of ``a`` against rows of ``b`` (float64; ``b`` may be ``a``), prepared once for screening.

    Every value it returns, exact or bounded, is in *scaled* units: the squared distance times
    ``scale2`` (a power of two), so thresholds in the sets' own units are multiplied by it first.
    """

    def __init__(self, a: torch.Tensor, b: torch.Tensor, dtype=torch.float32):
        self.a, self.b, self.dtype, self.same = a, b, dtype, b is a
        self.centre = (a.sum(0) + (0 if self.same else b.sum(0))) / (a.shape[0] + (0 if self.same else b.shape[0]))
        a_c = a - self.centre
        b_c = a_c if self.same else b - self.centre
        a_norm, b_norm = a_c.norm(dim=1), (None if self.same else b_c.norm(dim=1))
        top = float(a_norm.max()) if self.same else max(float(a_norm.max()), float(b_norm.max()))
        if not math.isfinite(top):  # a NaN or an infinity anywhere reaches the centre, so every norm
            raise ValueError("features hold NaN or infinite values (or values too large to square); "
                             "nearest-neighbour distances are undefined")
        self.scale = 2.0 ** -math.frexp(top)[1] if top > 0 else 1.0  # largest norm now in [0.5, 1)
        self.scale2 = self.scale * self.scale
        self.a_norm = a_norm * self.scale
        self.b_norm = self.a_norm if self.same else b_norm * self.scale
        self.b_top = float(self.b_norm.max())
        self._low = {}  # dtype -> (a rows, b rows, |b|²) in that dtype, centred and scaled
        self._low[dtype] = self._cast(a_c, b_c, dtype)
        n_dims = a.shape[1]
        self._gamma = {d: self._gamma_of(d, n_dims) for d in (dtype, torch.float64)}
        self.floor = 16 * (n_dims + 1) * 2.0 ** -149

    def crowded(self) -> None:
        """Screen the rest of this pass with float64 products: float32 leaves too many entries undecided."""
        if self.dtype != torch.float64:
            self._low.pop(self.dtype)
            self.dtype = torch.float64

    def _cast(self, a_c, b_c, dtype) -> tuple:
        a_low = (a_c * self.scale).to(dtype)
        b_low = a_low if self.same else (b_c * self.scale).to(dtype)
        return a_low, b_low, (b_low * b_low).sum(1)

    @staticmethod
    def _gamma_of(dtype, n_dims: int) -> float:
        u = torch.finfo(dtype).eps / 2
        n = n_dims + 6
        return n * u / (1 - n * u) + (n_dims + 8) * 2.0 ** -52

    def _in(self, dtype) -> tuple:
        if dtype not in self._low:
            a_c = self.a - self.centre
            self._low[dtype] = self._cast(a_c, a_c if self.same else self.b - self.centre, dtype)
        return self._low[dtype]

    def block(self, rows, dtype=None, cols=slice(None)) -> torch.Tensor:
        """Squared distances of the ``rows`` of a (a slice or index tensor) to the ``cols`` of b, in ``dtype``."""
        a_low, b_low, b_sq = self._in(dtype or self.dtype)
        with numerics("strict", str(a_low.device)):
            return squared_distances(a_low[rows], b_low[cols], b_sq[cols])

    def row_slack(self, rows, dtype=None) -> torch.Tensor:
        """Per row of a block: the bound on any of its entries' error (for thresholds that vary by row)."""
        return self._gamma[dtype or self.dtype] * (self.a_norm[rows] + self.b_top) ** 2 + self.floor

    def col_slack(self, rows, dtype=None) -> torch.Tensor:
        """Per column of a block of ``rows``: the bound on any of its entries' error."""
        return self._gamma[dtype or self.dtype] * (float(self.a_norm[rows].max()) + self.b_norm) ** 2 + self.floor

    def exact(self, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """Σ(a_r − b_c)² in float64 from the coordinates, for each pair (rows[i], cols[i]), scaled."""
        out = torch.empty(rows.shape[0], dtype=torch.float64, device=self.a.device)
        step = max(1, EXACT_ELEMENTS // max(self.a.shape[1], 1))
        for s in range(0, rows.shape[0], step):
            diff = self.a[rows[s:s + step]] - self.b[cols[s:s + step]]
            out[s:s + step] = (diff * diff).sum(1)
        return out.mul_(self.scale2)


def settle(screen: Screen, d: torch.Tensor, lo: int, thr: torch.Tensor, along: str, strict: bool) -> tuple:
    """Which entries of the block ``d`` (rows lo.. of a × every row of b) lie below their threshold.

    ``thr``: scaled squared thresholds, one per column of b (``along="cols"``) or per row of the block
    (``"rows"``); ``strict``: ``<`` rather than ``≤``. Returns (sure, rows, cols): the bool matrix of
    entries below by more than the bound, and the block rows and columns of the entries within the
    bound that the exact recomputation put below. When the band holds more than ``CROWDED_ENTRIES``
    of the block, its rows are screened again with float64 products first, and the screen turns to
    float64 for the rest of the pass.
    """
    dtype = d.dtype
    sure, band = _bands(screen, d, slice(lo, lo + d.shape[0]), thr, along, dtype)
    r, c = band.nonzero(as_tuple=True)
    if dtype != torch.float64 and r.numel() > CROWDED_ENTRIES * band.numel():
        crowded = torch.unique(r)
        d64 = screen.block(lo + crowded, torch.float64)
        sure[crowded], band[crowded] = _bands(screen, d64, lo + crowded,
                                              thr if along == "cols" else thr[crowded], along, torch.float64)
        r, c = band.nonzero(as_tuple=True)
        screen.crowded()
    exact = screen.exact(lo + r, c)
    limit = thr[c] if along == "cols" else thr[r]
    below_it = exact < limit if strict else exact <= limit
    return sure, r[below_it], c[below_it]


def _bands(screen, d, rows, thr, along, dtype) -> tuple:
    """(entries below thr by more than the bound, entries within the bound) of ``d`` computed in ``dtype``."""
    if along == "cols":
        slack, shape = screen.col_slack(rows, dtype), (1, -1)
    else:
        slack, shape = screen.row_slack(rows, dtype), (-1, 1)
    low, high = below(thr - slack, dtype).view(shape), above(thr + slack, dtype).view(shape)
    sure = d < low
    return sure, (d <= high).logical_xor_(sure)
