"""Each row's nearest squared distances, screened in float32 and settled exactly (screening.Screen).

The k-NN radii need, for each point, its k smallest distances to its own set. A row's candidates are
its ``need + 2`` smallest screened values; their exact values are computed from the coordinates, and the
row is settled when its last candidate, less the error bound, is no smaller than the ``need``-th exact
value (no entry left out can be smaller; exact ties are equal values), or that value is 0.

Within one set d(i, j) = d(j, i), so :func:`smallest_within` computes each square block of the upper
triangle once and reads it both ways, keeping every row's candidates as it goes: half the products of
a pass over whole rows. The rows it cannot settle (near-ties closer than float32 can see) go to
:func:`smallest`, which works on whole rows: it widens their candidates in float32 while they are few,
then screens them with float64 products up to every column, and when they are many the screen turns
to float64 for the rest of its passes (:meth:`Screen.crowded`).
"""

from __future__ import annotations

import math
from typing import Optional

import torch

from .screening import BLOCK, CROWDED_ROWS, Screen, rows_per_block


def smallest_within(screen: Screen, need: int, src: Optional[torch.Tensor] = None, widest: int = 64) -> torch.Tensor:
    """(n, need): each row's ``need`` smallest squared distances to the rows of its own set (``screen.a`` is
    ``screen.b``), exact, scaled, ascending. ``src``: rows with equal ``src`` are not each other's neighbours
    (a bootstrap resample's copies); without it each row's own 0 is among its values."""
    n, device = screen.a.shape[0], screen.a.device
    width = min(n, need + 2)
    values = torch.full((n, width), math.inf, dtype=screen.dtype, device=device)
    index = torch.zeros((n, width), dtype=torch.long, device=device)
    for i in range(0, n, BLOCK):
        for j in range(i, n, BLOCK):
            d = screen.block(slice(i, i + BLOCK), cols=slice(j, j + BLOCK))
            if src is not None:
                d.masked_fill_(src[i:i + BLOCK, None] == src[None, j:j + BLOCK], math.inf)
            _keep(values, index, i, d, j, dim=1)
            if j != i:
                _keep(values, index, j, d, i, dim=0)
    out = torch.empty(n, need, dtype=torch.float64, device=device)
    rows = torch.arange(n, device=device)
    left = _settle(screen, values, index, rows, need, out, screen.dtype)
    if left.numel() > CROWDED_ROWS * n:
        screen.crowded()
    if left.numel():
        out[left] = smallest(screen, left, need, src, widest, turn=False)
    return out


def _keep(values, index, r0: int, d: torch.Tensor, c0: int, dim: int) -> None:
    """Merge block ``d``'s smallest entries along ``dim`` into the candidates of rows r0.. (columns c0..)."""
    k = min(values.shape[1], d.shape[dim])
    v, i = d.topk(k, dim=dim, largest=False)
    if dim == 0:
        v, i = v.T, i.T
    rows = slice(r0, r0 + v.shape[0])
    merged_v, merged_i = torch.cat([values[rows], v], 1), torch.cat([index[rows], i + c0], 1)
    best, pos = merged_v.topk(values.shape[1], dim=1, largest=False)
    values[rows], index[rows] = best, merged_i.gather(1, pos)


def smallest(screen: Screen, rows: torch.Tensor, need: int, src: Optional[torch.Tensor] = None,
             widest: int = 64, turn: bool = True) -> torch.Tensor:
    """(len(rows), need): the ``need`` smallest squared distances of the given rows of a to every row of b,
    exact, scaled, ascending, one block of whole rows at a time; ``src`` as in :func:`smallest_within`.
    ``turn``: when a block leaves many rows to float64, the rest of the pass starts in float64 (not for the
    last few rows of a pass, which :func:`smallest_within` hands over)."""
    out = torch.empty(rows.numel(), need, dtype=torch.float64, device=screen.a.device)
    step = rows_per_block(screen.b.shape[0])
    for s in range(0, rows.numel(), step):
        block = rows[s:s + step]
        todo = torch.arange(block.numel(), device=rows.device)
        dtype = screen.dtype
        while todo.numel():  # at most twice: the screen's dtype, then float64 up to every column
            d = screen.block(block[todo], dtype)
            if src is not None:
                d.masked_fill_(src[block[todo], None] == src[None, :], math.inf)
            values, index = d.topk(min(d.shape[1], need + 2), dim=1, largest=False)
            part = torch.empty(todo.numel(), need, dtype=torch.float64, device=d.device)
            left = _settle(screen, values, index, block[todo], need, part, dtype, d, widest, CROWDED_ROWS * step)
            settled = torch.ones(todo.numel(), dtype=torch.bool, device=d.device)
            settled[left] = False
            out[s + todo[settled]] = part[settled]
            todo = todo[~settled]
            if turn and todo.numel() > CROWDED_ROWS * step:
                screen.crowded()
            dtype = torch.float64
    return out


def _settle(screen, values, index, rows, need, out, dtype, d=None, widest: int = 0, few: float = 0) -> torch.Tensor:
    """Fill ``out`` (one row per entry of ``rows``) from the candidates (``values``, ``index``: sorted screened
    values and their columns) where the bound allows; the positions left. With ``d`` (the rows' whole
    screened rows) unsettled rows widen their candidates fourfold: in float64 until every row settles, in
    float32 up to ``widest`` while they are no more than ``few``, since each widening recomputes them exactly."""
    slack = screen.row_slack(rows, dtype)
    n = screen.b.shape[0]
    pos = torch.arange(rows.numel(), device=values.device)
    while True:
        width = values.shape[1]
        exact = screen.exact(rows[pos].repeat_interleave(width), index.reshape(-1)).view(-1, width)
        exact = exact.masked_fill_(values.isinf(), math.inf).sort(dim=1).values
        kth = exact[:, need - 1]
        done = (kth <= 0) | (values[:, -1].double() - slack[pos] >= kth) | (width == n)
        out[pos[done]] = exact[done, :need]
        pos = pos[~done]
        if d is None or pos.numel() == 0 or width == n:
            return pos
        if dtype != torch.float64 and (width >= widest or pos.numel() > few):
            return pos
        values, index = d[pos].topk(min(n, width * 4), dim=1, largest=False)
