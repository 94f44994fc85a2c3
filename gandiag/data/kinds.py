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


def for_array(arr: np.ndarray, key: Optional[str], kind: Optional[str], description: str) -> "SampleKind":
    """The kind of an array from a file: ``--kind``, else its ``.npz`` key (``images``, ``points``...), else its
    shape (2-d: points; 3-d and 4-d: images, 3-d read as grey)."""
    kinds = registered()
    name = kind or (key if key in kinds else None)
    if name is None:
        name = "points" if arr.ndim == 2 else "images" if arr.ndim in (3, 4) else None
    if name is None:
        raise DataError(f"{description}: array of shape {arr.shape} is neither images (N,C,H,W / N,H,W,C / N,H,W) "
                        "nor points (N,D); pass --kind")
    k = by_name(name)
    if arr.ndim not in k.array_ndims:
        raise DataError(f"{description}: array of shape {arr.shape} is not {k.name} "
                        f"({' or '.join(str(d) for d in k.array_ndims)}-d)")
    return k


def all_layouts() -> list:
    return sorted({layout for k in registered().values() for layout in k.layouts})
