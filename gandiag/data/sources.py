"""Real-data sources: where the reference samples come from.

A source is a plugin object with ``name``, ``description``, ``matches(spec)``
and ``load(spec, n, seed) -> SampleSet``. Bundled sources work offline:
``digits`` (scikit-learn's 1,797 8×8 digits), ``ring8`` and ``grid25``; an
image folder or a ``.npz`` path is taken by the ``path`` source.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from ..errors import DataError
from ..safety.text import clean
from .mixtures import MIXTURES
from .samples import SampleSet, open_samples

MIXTURE_REAL_N = 10_000  # real points drawn from a mixture when no N is asked for
REAL_SEED_OFFSET = 1_000_003  # real mixture points are drawn from seed + offset: never the generator's own draws


class DigitsSource:
    name = "digits"
    description = "scikit-learn's 1,797 handwritten digits, 8x8 grey, labels 0-9 (offline)"
    default_extractor = "digits"
    split = "stratified"  # a fixed held-out fifth (gandiag.data.splits); the trainer trains on the rest

    def matches(self, spec: str) -> bool:
        return spec == self.name

    def load(self, spec: str, n: Optional[int] = None, seed: int = 0) -> SampleSet:
        from sklearn.datasets import load_digits

        d = load_digits()
        # Pixel values are 0..16; scale to the full uint8 range.
        imgs = np.rint(d.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
        return SampleSet("images", torch.from_numpy(imgs), d.target.astype(np.int64), "digits (scikit-learn)", {"source": "digits"})


class MixtureSource:
    default_extractor = "points"
    split = None
    fresh = ("is drawn afresh from its definition (a mixture of Gaussians), at every training step too: there is no "
             "finite training set to copy")

    def __init__(self, name: str):
        self.name = name
        m = MIXTURES[name]
        self.description = f"2D mixture of {m.num_modes} Gaussians (std {m.std}) from the mode-collapse literature"

    def matches(self, spec: str) -> bool:
        return spec == self.name

    def load(self, spec: str, n: Optional[int] = None, seed: int = 0) -> SampleSet:
        n = n or MIXTURE_REAL_N
        pts, labels = MIXTURES[self.name].sample(n, seed + REAL_SEED_OFFSET)
        return SampleSet("points", torch.from_numpy(pts), labels, f"{self.name} ({n} points)", {"source": self.name, "n": n})


class SinesSource:
    """TimeGAN's sine benchmark (gandiag.data.sequences.sines_data): 5 channels x 24 steps in [0, 1]."""

    name = "sines"
    description = "TimeGAN's synthetic sines: 10,000 sequences of 24 steps x 5 channels in [0, 1] (generated)"
    default_extractor = "sines"
    split = None
    fresh = ("is generated from its definition (TimeGAN's sines): the trainer draws its sequences and each evaluation "
             "draws others, so there is no fixed training set to copy")

    def matches(self, spec: str) -> bool:
        return spec == self.name

    def load(self, spec: str, n: Optional[int] = None, seed: int = 0) -> SampleSet:
        from .sequences import SINES_N, sines_data

        n = n or SINES_N
        data = sines_data(n, seed + REAL_SEED_OFFSET).astype(np.float32)
        return SampleSet("sequences", torch.from_numpy(data), None, f"sines ({n} sequences, TimeGAN)",
                         {"source": self.name, "n": n})


class PathSource:
    name = "path"
    description = "an image folder, a .npz of images or points, or FID statistics (mu, sigma)"
    default_extractor = None

    def matches(self, spec: str) -> bool:
        from pathlib import Path

        from ..safety.files import stat_or_none

        p = Path(spec)
        return p.suffix in (".npz", ".npy") or "/" in spec or stat_or_none(p) is not None

    def load(self, spec: str, n: Optional[int] = None, seed: int = 0, recursive: bool = False,
             hint: Optional[str] = None, layout: Optional[str] = None):
        """``hint``: the evaluated samples' kind, for an array that names none; ``layout``: an array's
        (``--real-layout``)."""
        from .reference_stats import is_statistics_file, open_statistics

        if is_statistics_file(spec):  # published FID statistics (mu, sigma), not samples
            return open_statistics(spec)
        s = open_samples(spec, recursive=recursive, layout=layout, hint=hint)  # subfolders only when asked
        s.meta.setdefault("source", spec)
        return s


def resolve_source(spec: str):
    """The source plugin that takes ``spec``: a bundled name first, then a path."""
    from ..plugins import registry

    reg = registry("real source")
    if spec in reg:
        return reg[spec]
    for src in reg.values():
        if src.matches(spec):
            return src
    names, sides = [], {}
    for n in sorted(n for n in reg.names() if n != PathSource.name):
        pair, _, side = n.rpartition(":")
        if pair and side in ("a", "b"):  # a bundled pair's sides, said once: digits-inverted:a|b
            sides.setdefault(pair, []).append(side)
            if len(sides[pair]) == 1:
                names.append(pair)
        else:
            names.append(n)
    named = ", ".join(f"{n}:{'|'.join(sides[n])}" if n in sides else n for n in names)
    raise DataError(f"unknown real data source {spec!r} (and no such file or folder); valid: {named}, an image folder, a .npz or a .npy file")


def bundled_names() -> list:
    """Names of the registered sources that read no path (digits, ring8, grid25, a plugin's)."""
    from ..plugins import registry

    return sorted(n for n in registry("real source").names() if n != PathSource.name)


def bundled_source(spec: str):
    """The source plugin registered under ``spec``, or None when ``spec`` is (or would be read as) a path."""
    from ..plugins import registry

    reg = registry("real source")
    return reg[spec] if spec in reg and spec != PathSource.name else None


def named_by_file(source, where) -> Optional[str]:
    """The real data a file (a checkpoint) names, accepted only when it is a bundled source.

    A file never picks which local files gandiag reads: a path there needs
    ``--real`` on the command line (docs/security.md).
    """
    if not source:
        return None
    if not isinstance(source, str):
        raise DataError(f"{where}: its training data entry is not a name; pass --real")
    if bundled_source(source) is not None:
        return source
    raise DataError(f"{where} names {clean(source)!r} as its training data, a local path; gandiag reads local "
                    f"data only when the command line names it: pass --real {clean(source)} (or a bundled source: "
                    f"{', '.join(bundled_names())})")


def load_real(spec: str, n: Optional[int] = None, seed: int = 0, recursive: bool = False,
              hint: Optional[str] = None, layout: Optional[str] = None):
    """``recursive``: an image folder's subfolders are read too (``--recursive``); ``hint``: the kind a file's
    array is read as when it names none (the evaluated samples'); ``layout``: a file's array layout
    (``--real-layout``; sequences NTC unless it says NCT)."""
    from .reference_stats import ReferenceStats

    source = resolve_source(spec)
    given = {k: v for k, v in (("recursive", recursive), ("hint", hint), ("layout", layout)) if v}
    if layout and source.name != PathSource.name:
        raise DataError(f"--real-layout {layout}: it says how a --real array file stores its samples; "
                        f"{spec!r} is a bundled source, read in its own layout")
    samples = source.load(spec, n, seed, **given) if given and source.name == PathSource.name \
        else source.load(spec, n, seed)
    if isinstance(samples, ReferenceStats):  # checked by their reader; they hold no samples
        return samples
    if samples.n < 2:
        raise DataError(f"real data {spec!r} has {samples.n} sample(s); at least 2 are needed")
    return samples
