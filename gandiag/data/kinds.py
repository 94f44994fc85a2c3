"""Kinds of samples: what a batch of generated or real data is, declared in one object per kind.

A kind knows its canonical batch (images: uint8 NCHW; points: float32 (N, D)),
the layouts it accepts (``--layout``), how to read a generator's output into
the canonical batch (:meth:`canonical`) after filling the contract from a probe
(:meth:`detect`), how to read an array from a file (:meth:`from_array`), how
many samples an evaluation draws by default and how many it keeps for reports.
Extractors, metrics and diagnostics declare the kinds they take by name, so a
new kind (sequences, image pairs) is added by registering one of these through
the ``register_sample_kinds`` hook, not by editing if/elif chains.
"""

from __future__ import annotations

from typing import Optional, Protocol

import numpy as np
import torch

from ..errors import DataError, GandiagError, GeneratorOutputError


class SampleKind(Protocol):
    name: str
    description: str
    output_ndim: int  # dimensions of a generator's output batch
    array_ndims: tuple  # dimensions of the arrays read from files
    layouts: tuple  # accepted layouts, the canonical one first
    default_n: int  # samples an evaluation draws when -n is not given
    keep: Optional[int]  # generated samples kept in memory for reports (None: all)

    def detect(self, contract, probe: torch.Tensor):
        """The contract with this kind's fields (layout, range, sample shape) filled from a probe batch."""

    def canonical(self, batch: torch.Tensor, contract) -> torch.Tensor:
        """A generator's output batch as this kind's canonical batch."""

    def from_array(self, arr: np.ndarray, description: str, layout: Optional[str] = None) -> torch.Tensor:
        """An array read from a file as a canonical batch of all its samples."""


class Points:
    name = "points"
    description = "low-dimensional points (N, D) as float32, e.g. the 2D mixtures of the mode-collapse literature"
    output_ndim = 2
    array_ndims = (2,)
    layouts = ("ND",)
    default_n = 2_500  # the PacGAN/VEEGAN protocol's sample count
    keep = None  # every point: the mixture protocol and its plots need them all

    def detect(self, contract, probe):
        from dataclasses import replace

        return replace(contract, sample_shape=(int(probe.shape[1]),))

    def canonical(self, batch, contract):
        if batch.ndim != 2 or tuple(batch.shape[1:]) != tuple(contract.sample_shape):
            raise GeneratorOutputError(f"generator returned shape {tuple(batch.shape)}; "
                                       f"expected (N, {contract.sample_shape[0]})")
        return batch.float()

    def from_array(self, arr, description, layout=None):
        from ..safety import budgets

        budgets.FEATURE_DIM.check(arr.shape[1], f"{description}: points of {arr.shape[1]} dimensions")
        if not np.isfinite(arr).all():
            raise DataError(f"{description}: contains NaN or Inf")
        return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))


def registered() -> dict:
    """Every sample kind by name: the built-ins and the plugins' (``register_sample_kinds``)."""
    from ..plugins import registry

    return dict(registry("sample kind").items)


def by_name(name: str) -> "SampleKind":
    kinds = registered()
    if name not in kinds:
        raise GandiagError(f"unknown sample kind {name!r}; valid: {', '.join(sorted(kinds))}")
    return kinds[name]


def for_output(ndim: int, shape: tuple) -> "SampleKind":
    """The kind of a generator whose output batch has ``ndim`` dimensions."""
    matches = [k for k in registered().values() if k.output_ndim == ndim]
    if len(matches) != 1:
        expected = ", ".join(f"{k.name} ({k.output_ndim}-d)" for k in registered().values())
        raise GeneratorOutputError(f"generator returned shape {shape}: expected {expected}"
                                   + ("" if not matches else "; pass --kind to say which"))
    return matches[0]


def for_array(arr: np.ndarray, key: Optional[str], kind: Optional[str], description: str,
              hint: Optional[str] = None) -> "SampleKind":
    """The kind of an array from a file: ``--kind``, else its ``.npz`` key (``images``, ``points``,
    ``sequences``...), else ``hint`` (the evaluated samples' kind, for a ``--real`` array), else its shape:
    2-d points, 4-d images, and 3-d grey images only when they cannot be anything else (:func:`three_d_kind`)."""
    kinds = registered()
    name = kind or (key if key in kinds else None) or (hint if hint in kinds and arr.ndim in kinds[hint].array_ndims
                                                       else None)
    if name is None:
        name = "points" if arr.ndim == 2 else "images" if arr.ndim == 4 else three_d_kind(arr, description) \
            if arr.ndim == 3 else None
    if name is None:
        raise DataError(f"{description}: array of shape {arr.shape} is neither images (N,C,H,W / N,H,W,C / N,H,W), "
                        "points (N,D) nor sequences (N,T,C); pass --kind")
    k = by_name(name)
    if arr.ndim not in k.array_ndims:
        raise DataError(f"{description}: array of shape {arr.shape} is not {k.name} "
                        f"({' or '.join(str(d) for d in k.array_ndims)}-d)")
    return k


GREY_MIN_SIDE = 8  # a 3-d array read as grey images without --kind: at least 8x8 pixels


def three_d_kind(arr: np.ndarray, description: str) -> str:
    """A 3-d array with no kind named: grey images (N, H, W) or sequences (N, T, C)?

    Never guessed: it is read as grey images only when it is uint8 (the form
    images are saved in; nobody stores sensor sequences as uint8) and both
    trailing axes are at least 8 long. Anything else, floats above all, where
    (N, 24, 5) sines in [0, 1] and (N, 28, 28) images in [0, 1] look alike,
    asks for ``--kind``, saying what the values look like.
    """
    kinds = registered()
    if arr.dtype == np.uint8 and min(arr.shape[1:]) >= GREY_MIN_SIDE:
        return "images"
    lo, hi = (float(arr.min()), float(arr.max())) if arr.size and arr.dtype.kind in "fiu" else (0.0, 0.0)
    seq = "sequences" in kinds
    layout = " (and --layout NCT if it is (N, channels, steps))" if seq else ""
    if lo < 0 or hi > 255:  # no pixel range holds these: not images, but say so rather than assume a kind
        raise DataError(f"{description}: a 3-d array of shape {arr.shape} ({arr.dtype}) with values {lo:g}..{hi:g}, "
                        f"outside pixel ranges, and no kind named: pass --kind {'sequences' if seq else 'KIND'}"
                        f"{layout}")
    names = " or ".join(f"--kind {n}" for n in ("sequences", "images") if n in kinds)
    raise DataError(f"{description}: a 3-d array of shape {arr.shape} ({arr.dtype}) and no kind named could be "
                    f"sequences (N, steps, channels) or grey images (N, H, W): pass {names}{layout}")


def all_layouts() -> list:
    return sorted({layout for k in registered().values() for layout in k.layouts})
