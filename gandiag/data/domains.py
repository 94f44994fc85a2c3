"""Bundled pairs of domains for image-to-image (and point-to-point) translation, with a known truth.

A translator maps samples of domain A to domain B. To check one offline we
need two domains whose correspondence is known exactly, so that paired
metrics (PSNR, SSIM, the distance to the true translation) and label
preservation can be measured even though training is unpaired:

- ``digits-inverted``: scikit-learn's 8x8 digits (A) and the same digits with
  grey levels inverted, 255 - x (B). The truth is exact both ways.
- ``digits-thick``: the digits (A) and the digits with strokes thickened by a
  grey dilation over a plus-shaped neighbourhood (B). A -> B is exact; B -> A
  has no exact inverse (thin strokes are lost), so paired metrics are taken
  in the A -> B direction only.
- ``ring8-rotated``: the ``ring8`` mixture (A) and the same mixture rotated by
  pi/8 (B), so B's modes lie between A's and a translator that does nothing
  lands between modes. The truth is the rotation, both ways; labels are modes.

Each side is a real-data source of its own, ``NAME:a`` and ``NAME:b``
(``--real digits-inverted:b``, ``--inputs digits-inverted:a``); the pair's
name alone is what a translator's checkpoint records as its data. Both sides
hold the same underlying samples; the trainer draws its A and B batches
independently, so it never sees a pair.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import torch

from ..errors import DataError
from .samples import SampleSet

SIDES = ("a", "b")
DIRECTIONS = {"a2b": ("a", "b"), "b2a": ("b", "a")}  # direction -> (input side, output side)


def _digits() -> tuple[torch.Tensor, np.ndarray]:
    from .sources import DigitsSource

    s = DigitsSource().load("digits")
    return s.data, s.labels


def invert(x: torch.Tensor) -> torch.Tensor:
    """uint8 images with grey levels inverted (its own inverse)."""
    return 255 - x


def thicken(x: torch.Tensor) -> torch.Tensor:
    """uint8 NCHW images dilated over a plus-shaped neighbourhood (the pixel and its 4 neighbours)."""
    p = torch.nn.functional.pad(x, (1, 1, 1, 1))
    h, w = x.shape[2], x.shape[3]
    shifted = [p[:, :, 1:h + 1, 1:w + 1], p[:, :, 0:h, 1:w + 1], p[:, :, 2:h + 2, 1:w + 1],
               p[:, :, 1:h + 1, 0:w], p[:, :, 1:h + 1, 2:w + 2]]
    return torch.stack(shifted).amax(0)


RING_ANGLE = np.pi / 8  # half the spacing of ring8's modes: B's modes sit between A's


def rotate(points: torch.Tensor, angle: float = RING_ANGLE) -> torch.Tensor:
    c, s = float(np.cos(angle)), float(np.sin(angle))
    rot = torch.tensor([[c, s], [-s, c]], dtype=points.dtype)  # row vectors: p @ rot rotates by +angle
    return points @ rot


@dataclass(frozen=True)
class DomainPair:
    name: str
    description: str
    kind: str  # the sample kind of both sides
    load_a: Callable  # (n, seed) -> (canonical data, labels)
    a2b: Callable  # canonical A -> canonical B: the true translation
    b2a: Optional[Callable] = None  # canonical B -> canonical A, when exact
    side_names: tuple = ("A", "B")  # what each side holds, for messages and reports
    default_extractor: Optional[str] = None

    def side(self, which: str, n: Optional[int] = None, seed: int = 0) -> SampleSet:
        """One side as a SampleSet (canonical data, the digits' or modes' labels); ``n`` draws points, the digits are all 1,797."""
        if which not in SIDES:
            raise DataError(f"{self.name}: side {which!r} is not 'a' or 'b'")
        data, labels = self.load_a(n, seed)
        if which == "b":
            data = self.a2b(data)
        what = self.side_names[SIDES.index(which)]
        return SampleSet(self.kind, data, labels, f"{self.name}:{which} ({what}, {data.shape[0]} samples)",
                         {"source": f"{self.name}:{which}"})

    def truth(self, direction: str) -> Optional[Callable]:
        """The exact translation in ``direction`` ('a2b' or 'b2a'), or None where there is none."""
        return {"a2b": self.a2b, "b2a": self.b2a}[direction]


def _digits_side(n, seed):
    data, labels = _digits()
    return data, labels


def _ring_side(n, seed):
    from .mixtures import MIXTURES
    from .sources import MIXTURE_REAL_N, REAL_SEED_OFFSET

    pts, labels = MIXTURES["ring8"].sample(n or MIXTURE_REAL_N, seed + REAL_SEED_OFFSET)
    return torch.from_numpy(pts), labels


PAIRS = {p.name: p for p in [
    DomainPair("digits-inverted", "scikit-learn's 8x8 digits <-> the same digits with grey levels inverted",
               "images", _digits_side, invert, invert, ("digits", "inverted digits"), "digits"),
    DomainPair("digits-thick", "scikit-learn's 8x8 digits <-> the same digits with strokes thickened "
               "(grey dilation, plus-shaped); exact truth A -> B only", "images", _digits_side, thicken, None,
               ("digits", "thickened digits"), "digits"),
    DomainPair("ring8-rotated", "the ring8 mixture <-> ring8 rotated by pi/8 (modes between A's)", "points",
               _ring_side, rotate, lambda p: rotate(p, -RING_ANGLE), ("ring8", "ring8 rotated"), "points"),
]}


def parse(spec) -> Optional[tuple]:
    """(DomainPair, side or None) for 'NAME' or 'NAME:a' / 'NAME:b'; None when ``spec`` names no pair."""
    if not isinstance(spec, str):
        return None
    name, _, side = spec.partition(":")
    pair = PAIRS.get(name)
    if pair is None or (side and side not in SIDES):
        return None
    return pair, side or None


class DomainSideSource:
    """One side of a bundled pair as a real-data source: ``NAME:a`` or ``NAME:b``."""

    def __init__(self, pair: DomainPair, side: str):
        self.pair, self.side_name = pair, side
        self.name = f"{pair.name}:{side}"
        self.description = f"{pair.side_names[SIDES.index(side)]}: side {side.upper()} of {pair.name} ({pair.description})"
        self.default_extractor = pair.default_extractor

    def matches(self, spec: str) -> bool:
        return spec == self.name

    def load(self, spec: str, n: Optional[int] = None, seed: int = 0) -> SampleSet:
        return self.pair.side(self.side_name, n, seed)


def sources() -> list:
    return [DomainSideSource(p, s) for p in PAIRS.values() for s in SIDES]
