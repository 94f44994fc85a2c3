"""Running one evaluation over several processes with ``torchrun``.

Sampling is sharded by seed blocks (:func:`gandiag.generator.sampling.shard_ranges`):
rank r of w draws blocks r, r+w, ... Each rank extracts features for its
own samples; the features are then gathered on every rank as tensors and put
back in sample order, so every rank computes exactly the metrics a single
process would (KID's subsets and IS's shuffle depend on that order) and
returns the same Results; FID's float64 sums are each rank's, added up with
one all_reduce; the k-NN metrics' distance passes are divided between the
ranks by rows (:class:`RowShard`); rank 0 alone writes files and prints. No home-made launcher: ``torchrun``
sets RANK/WORLD_SIZE and gandiag joins its process group.
"""

from __future__ import annotations

import atexit
import contextlib
import os

import numpy as np
import torch

from .features.featureset import FeatureSet
from .features.stats import FeatureStats

_OWNED = False  # True when gandiag itself joined the process group (and so must leave it)
_ALONE = False  # True inside alone(): an evaluation of this process only, whatever group it belongs to


@contextlib.contextmanager
def alone():
    """Evaluate in this process only, even inside a process group (DDP training: the monitor's checks run on
    rank 0 while the other ranks train on; a collective would wait for ranks that never join it)."""
    global _ALONE
    was, _ALONE = _ALONE, True
    try:
        yield
    finally:
        _ALONE = was


def setup(device: str) -> tuple[int, int, str]:
    """(rank, world size, device of this rank); joins torchrun's process group if launched by it."""
    global _OWNED
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or not dist.is_available() or _ALONE:
        return 0, 1, device
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        device = f"cuda:{local}"
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
        _OWNED = True
        atexit.register(_destroy)  # every way out (an error included) leaves the group before Python finalizes
    return dist.get_rank(), dist.get_world_size(), device


def rank() -> int:
    """This process's rank (0 when not distributed): only rank 0 writes files and prints."""
    import torch.distributed as dist

    if _ALONE:
        return 0
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else int(os.environ.get("RANK", "0"))


def leave() -> None:
    """Every rank reaches this point, then the group gandiag joined is destroyed on every rank.

    Destroying the group is what matters: it joins gloo's worker threads. A
    process that exits with the group alive can abort at interpreter exit
    ("terminate called without an active exception", SIGABRT): a worker
    thread drops the last reference to a finished collective's work, whose
    tensors need the GIL, after Python has begun finalizing, and Python 3.11
    ends such a thread with ``pthread_exit`` through a C++ destructor. Seen in
    7 of 114 two-rank runs when ranks above 0 returned right after the gather;
    0 of 70 with the group destroyed (core backtrace in the closing note of
    the issue). A group the caller created is left to the caller.
    """
    import torch.distributed as dist

    if _OWNED and dist.is_available() and dist.is_initialized():
        dist.barrier()
    _destroy()


def _destroy() -> None:
    global _OWNED
    import torch.distributed as dist

    if _OWNED and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    _OWNED = False


def _collective_device() -> torch.device:
    """Where tensors must be for the process group's collectives: this rank's GPU under NCCL, else the CPU."""
    import torch.distributed as dist

    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def _gather_rows(x: torch.Tensor, counts: list) -> torch.Tensor:
    """Every rank's rows of ``x`` (``counts[r]`` of them on rank r), in rank order, through preallocated buffers
    of the largest count: one ``all_gather`` of tensors, on the GPU under NCCL."""
    import torch.distributed as dist

    device = _collective_device()
    send = torch.zeros((max(counts), *x.shape[1:]), dtype=x.dtype, device=device)
    send[: x.shape[0]] = x.to(device)
    buffers = [torch.empty_like(send) for _ in counts]
    dist.all_gather(buffers, send)
    return torch.cat([b[:c] for b, c in zip(buffers, counts)]).cpu()


def _reduced_stats(mine: FeatureStats) -> FeatureStats:
    """Σx, Σxxᵀ and n summed over the ranks in float64 (one all_reduce of d + d² + 1 numbers)."""
    import torch.distributed as dist

    device = _collective_device()
    d = mine.dim
    flat = torch.cat([torch.tensor([float(mine.n)], dtype=torch.float64), torch.from_numpy(mine.sum).reshape(-1),
                      torch.from_numpy(mine.outer).reshape(-1)]).to(device)
    dist.all_reduce(flat)
    flat = flat.cpu().numpy()
    return FeatureStats(int(round(flat[0])), flat[1 : 1 + d], flat[1 + d :].reshape(d, d))


def gather_in_sample_order(fs: FeatureSet, kept, all_ranges: list, world: int):
    """All ranks' features (and kept samples) concatenated in global sample order.

    ``all_ranges[r]`` are rank r's sample ranges (:func:`~gandiag.generator.sampling.shard_ranges`), which
    every rank knows, so the order needs no message. Features and labels travel as tensors (one
    ``all_gather`` per role into preallocated buffers); only a few bytes of header (each role's width and
    dtype, from a rank that has rows) and the handful of samples kept for the report go as objects.
    """
    import torch.distributed as dist

    counts = [sum(b - a for a, b in r) for r in all_ranges]
    idx = np.concatenate([np.arange(a, b) for r in all_ranges for a, b in r]) if any(counts) else np.zeros(0, int)
    order = torch.from_numpy(np.argsort(idx, kind="stable"))
    header = {r: (tuple(fs.features(r).shape[1:]), str(fs.features(r).dtype)) for r in fs.roles}
    parts = [None] * world
    dist.all_gather_object(parts, {"roles": header, "labels": fs.labels is not None, "kept": kept})
    roles = next((p["roles"] for p in parts if p["roles"]), {})
    me = dist.get_rank()
    merged = {}
    for role, (shape, dtype) in roles.items():  # the same roles in the same order on every rank
        rows = fs.features(role) if role in fs.roles else torch.zeros((0, *shape), dtype=getattr(torch, dtype[6:]))
        merged[role] = _gather_rows(rows, counts)[order]
    out = FeatureSet()
    for role, rows in merged.items():  # the rows, for KID, the k-NN metrics and the diagnostics
        out._chunks[role] = [rows]
    out.n = int(sum(counts))
    for role in out.streamed:  # FID's float64 sums: each rank's, added up, not recomputed from the rows
        if role in roles:
            mine = fs.stats(role) if role in fs.roles else FeatureStats.empty(roles[role][0][0])
            out._stats[role] = _reduced_stats(mine)
    if any(p["labels"] for p in parts):
        mine = torch.as_tensor(np.asarray(fs.labels if fs.labels is not None else np.zeros(counts[me])), dtype=torch.int64)
        out.labels = _gather_rows(mine, counts)[order].numpy()
    kept_parts = [p["kept"] for p in parts if p["kept"] is not None]
    kept_all = kept
    if kept_parts and len(kept_parts) == world and all(len(k) == c for k, c in zip(kept_parts, counts)):
        kept_all = torch.cat(kept_parts)[order]  # points: every sample is kept
    elif parts[0]["kept"] is not None:
        kept_all = parts[0]["kept"]  # images: the first samples live in rank 0's first block
    return out, kept_all


class RowShard:
    """This rank's contiguous share of the rows of a distance computation, and the collectives that put the
    shares back together (gandiag.metrics.prdc): with one process, the whole range and no messages."""

    def __init__(self, rank: int = 0, world: int = 1):
        self.rank, self.world = rank, world

    def span(self, n: int) -> tuple:
        return n * self.rank // self.world, n * (self.rank + 1) // self.world

    def gather(self, part: torch.Tensor, n: int) -> torch.Tensor:
        """Every rank's rows of a length-``n`` result (each computed its own span), in row order."""
        if self.world == 1:
            return part
        counts = [n * (r + 1) // self.world - n * r // self.world for r in range(self.world)]
        return _gather_rows(part, counts).to(part.device)

    def _reduce(self, t: torch.Tensor, op) -> torch.Tensor:
        if self.world == 1:
            return t
        import torch.distributed as dist

        device = _collective_device()
        buf = (t.to(torch.int32) if t.dtype == torch.bool else t).to(device)
        dist.all_reduce(buf, op=op)
        return buf.to(t.device).to(t.dtype)

    def any(self, mask: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        return self._reduce(mask, dist.ReduceOp.MAX)


def row_shard() -> "RowShard | None":
    """The shard of this process under torchrun, or None when there is one process."""
    import torch.distributed as dist

    if not _ALONE and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return RowShard(dist.get_rank(), dist.get_world_size())
    return None
