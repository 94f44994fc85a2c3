"""What CycleGAN trains on: both sides of a bundled pair in unpaired, seeded batches, and the history pool of
translations its discriminators are shown (:mod:`gandiag.training.cyclegan`)."""

from __future__ import annotations

import torch

from ..data import domains
from ..translation.measures import Measures

class PairData:
    """Both sides of a bundled pair as floats (images in [-1, 1]), served in unpaired, seeded batches.

    Side ``s``'s batch at step ``t`` is a slice of the permutation of its
    epoch, drawn from (seed, side, epoch): the same step always gets the same
    batch, so a resumed run sees what an uninterrupted one would.
    """

    def __init__(self, name: str, seed: int = 0, device: str = "cpu"):
        self.pair, self.name, self.seed = domains.PAIRS[name], name, seed
        self.kind, self.device = self.pair.kind, torch.device(device)
        sides = {s: self.pair.side(s, None, seed + i) for i, s in enumerate(domains.SIDES)}  # points: other draws
        self.x = {s: self._floats(v.data).to(self.device) for s, v in sides.items()}
        self.shape = tuple(self.x["a"].shape[1:])
        self._perms: dict = {}

    def _floats(self, x: torch.Tensor) -> torch.Tensor:
        return x.float() / 127.5 - 1.0 if self.kind == "images" else x.float()

    def _canonical(self, x: torch.Tensor) -> torch.Tensor:
        return ((x.clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8) if self.kind == "images" else x

    def _perm(self, side: str, epoch: int) -> torch.Tensor:
        key = (side, epoch)
        if key not in self._perms:
            self._perms = {k: v for k, v in self._perms.items() if k[0] != side or k[1] >= epoch - 1}
            g = torch.Generator().manual_seed((self.seed * 1_000_003 + epoch) * 2 + domains.SIDES.index(side))
            self._perms[key] = torch.randperm(self.x[side].shape[0], generator=g)
        return self._perms[key]

    def batch(self, side: str, step: int, n: int) -> torch.Tensor:
        size = self.x[side].shape[0]
        pos = torch.arange((step - 1) * n, step * n)
        idx = torch.stack([self._perm(side, int(p) // size)[int(p) % size] for p in pos])
        return self.x[side][idx.to(self.device)]

    def eval_inputs(self, direction: str, n: int) -> tuple:
        """(the first n inputs of a direction as floats, their true translations as floats or None)."""
        src = domains.DIRECTIONS[direction][0]
        x = self.x[src][:n]
        truth = self.pair.truth(direction)
        return x, None if truth is None else self._floats(truth(self._canonical(x.cpu()))).to(self.device)

    def distance(self, y: torch.Tensor, truth: torch.Tensor) -> float:
        """Mean distance as ``gandiag evaluate`` measures it (:meth:`gandiag.translation.measures.Measures.distance`),
        on the canonical samples (8-bit images)."""
        per_sample = Measures(self.kind).distance(self._canonical(y.cpu()), self._canonical(truth.cpu()))
        return float(per_sample.mean())

    def checkpoint_data(self) -> dict:
        return {"source": self.name, "kind": self.kind, "sample_shape": list(self.shape),
                "n": {s: int(x.shape[0]) for s, x in self.x.items()}}


class HistoryPool:
    """The last translations D saw (Shrivastava et al. 2017): once full, each new one is, with probability ½,
    swapped for a stored one, which D is shown instead."""

    def __init__(self, size: int):
        self.size, self.items = size, []

    def query(self, fakes: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        if self.size == 0:
            return fakes
        out = []
        for x in fakes.split(1):
            if len(self.items) < self.size:
                self.items.append(x)
                out.append(x)
            elif float(torch.rand(1, generator=gen)) < 0.5:
                i = int(torch.randint(0, self.size, (1,), generator=gen))
                out.append(self.items[i])
                self.items[i] = x
            else:
                out.append(x)
        return torch.cat(out)

    def state(self) -> torch.Tensor:
        return torch.cat(self.items).cpu() if self.items else torch.zeros(0)

    def load(self, t: torch.Tensor) -> None:
        if not torch.is_tensor(t) or t.shape[0] > self.size:
            raise ValueError("history pool does not fit the run's pool size")
        self.items = list(t.split(1)) if t.numel() else []
