"""The ``images`` sample kind: uint8 NCHW batches of grey or RGB images.

Keeping images as uint8 until an extractor needs them makes a 50k-image set
4x smaller than float and is the quantisation every reference implementation
applies. A generator's layout (NCHW or NHWC) and output range ([-1, 1],
[0, 1] or uint8) are read from the file's contract or detected from a probe
batch, only where the evidence is unambiguous: a wrong range silently shifts
every metric, so anything else asks for ``--layout`` or ``--output-range``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from ..errors import AmbiguousOutput, DataError, GeneratorOutputError, NonFiniteOutput
from ..safety import budgets

CHANNELS = (1, 3)  # grey or RGB


class Images:
    name = "images"
    description = "grey or RGB images, kept as uint8 NCHW"
    output_ndim = 4
    array_ndims = (3, 4)  # (N, H, W) grey, or (N, C, H, W) / (N, H, W, C)
    layouts = ("NCHW", "NHWC")
    default_n = 10_000
    keep = 64  # the report's sample grid

    def detect(self, contract, probe: torch.Tensor):
        c = replace(contract, detected=list(contract.detected))
        if c.layout is None:
            c.layout = _detect_layout(probe)
            c.detected.append("layout")
        if c.layout not in self.layouts:
            raise GeneratorOutputError(f"layout {c.layout} is not an image layout; use {' or '.join(self.layouts)}")
        shape = tuple(probe.shape[1:]) if c.layout == "NCHW" else (probe.shape[3], probe.shape[1], probe.shape[2])
        if shape[0] not in CHANNELS:
            raise GeneratorOutputError(f"generator output has {shape[0]} channels (shape {tuple(probe.shape)}, layout "
                                       f"{c.layout}); gandiag evaluates grey (1) or RGB (3) images")
        budgets.IMAGE_PIXELS.check(shape[1] * shape[2], f"generator images of {shape[2]}x{shape[1]}")
        c.sample_shape = shape
        if c.output_range is None:
            c.output_range = detect_range(probe)
            c.detected.append("output_range")
        return c

    def canonical(self, batch: torch.Tensor, contract) -> torch.Tensor:
        if batch.ndim != 4:
            raise GeneratorOutputError(f"generator returned shape {tuple(batch.shape)}; expected a 4-d image batch")
        imgs = to_uint8_nchw(batch, contract)
        if tuple(imgs.shape[1:]) != tuple(contract.sample_shape):
            raise GeneratorOutputError(f"generator returned images of shape {tuple(imgs.shape[1:])} after the probe "
                                       f"batch gave {tuple(contract.sample_shape)}")
        return imgs

    def from_array(self, arr: np.ndarray, description: str, layout=None) -> torch.Tensor:
        if arr.ndim == 3:  # N,H,W grey
            arr = arr[:, None]
        if layout == "NHWC" or (layout is None and arr.shape[1] not in CHANNELS and arr.shape[3] in CHANNELS):
            arr = arr.transpose(0, 3, 1, 2)
        if arr.shape[1] not in CHANNELS:
            raise DataError(f"{description}: images of shape {arr.shape[1:]} have neither 1 nor 3 channels")
        budgets.IMAGE_PIXELS.check(arr.shape[2] * arr.shape[3], f"{description}: images of {arr.shape[3]}x{arr.shape[2]}")
        return torch.from_numpy(np.ascontiguousarray(_as_uint8(arr, description)))


def _detect_layout(probe: torch.Tensor) -> str:
    chw, hwc = probe.shape[1] in CHANNELS, probe.shape[3] in CHANNELS
    if chw and not hwc:
        return "NCHW"
    if hwc and not chw:
        return "NHWC"
    raise GeneratorOutputError(f"cannot tell the layout of generator output {tuple(probe.shape)}; "
                               "pass --layout NCHW or NHWC")


def _as_uint8(arr: np.ndarray, description: str) -> np.ndarray:
    """uint8 as it is; floats in [0, 1] scaled to 0..255, or already in 0..255, rounded."""
    if arr.dtype == np.uint8:
        return arr
    if not np.isfinite(arr).all():
        raise DataError(f"{description}: contains NaN or Inf")
    lo, hi = float(arr.min()), float(arr.max())
    if lo < -1e-6 or hi > 255.0001:
        raise DataError(f"{description}: pixel values span {lo:g}..{hi:g}; expected uint8 or 0..255 (or 0..1 floats)")
    scale = 255.0 if hi <= 1.0 else 1.0
    work = arr.astype(np.float64 if arr.dtype == np.float64 else np.float32)
    return np.clip(np.rint(work * scale), 0, 255).astype(np.uint8)


RANGE_TOLERANCE = 1e-4  # float error allowed beyond a range's ends (a tanh or sigmoid output stays inside)
NEGATIVE_EVIDENCE = -1e-3  # a value below this cannot come from a [0, 1] generator (sigmoid, clamp)
ENDS_REACHED = 0.02  # a [0, 1] generator shows values this close to both 0 and 1 (backgrounds, saturation)


def detect_range(probe: torch.Tensor) -> str:
    """The output range a probe batch shows: [-1, 1], [0, 1] or uint8.

    Values in [0, 1] alone do not prove a [0, 1] generator: a tanh generator
    whose probe sits in [0.46, 0.52] would be read 1.5x too bright. So [0, 1]
    is called only when the probe reaches both ends and never goes negative;
    anything less is :class:`AmbiguousOutput`, on which the caller probes more
    samples and, still unsure, asks for ``--output-range``.
    """
    if probe.dtype == torch.uint8:
        return "uint8"
    x = probe.detach().float()
    if not torch.isfinite(x).all():
        raise NonFiniteOutput("generator output contains NaN or Inf")
    lo, hi = x.min().item(), x.max().item()
    if lo >= -1 - RANGE_TOLERANCE and hi <= 1 + RANGE_TOLERANCE and lo < NEGATIVE_EVIDENCE:
        return "-1,1"
    if lo >= -RANGE_TOLERANCE and hi <= 1 + RANGE_TOLERANCE:
        if lo <= ENDS_REACHED and hi >= 1 - ENDS_REACHED:
            return "0,1"
        raise AmbiguousOutput(f"cannot tell whether the generator's output range is [-1,1] or [0,1] (values in "
                              f"[{lo:.3g}, {hi:.3g}] over {len(x)} samples); pass --output-range")
    if lo >= -RANGE_TOLERANCE and 1.5 < hi <= 255 + RANGE_TOLERANCE:
        return "uint8"
    raise GeneratorOutputError(f"cannot tell the output range of the generator (probe min {lo:.3g}, max {hi:.3g}); "
                               "pass --output-range [-1,1], [0,1] or uint8")


def to_uint8_nchw(batch: torch.Tensor, contract) -> torch.Tensor:
    """Generator output → uint8 NCHW, the form every image metric starts from.

    Rounding (not truncation) to the nearest level matches torch-fidelity's
    treatment of generator output ((x+1)*127.5, clamp, round-to-uint8).
    """
    if contract.layout == "NHWC":
        batch = batch.permute(0, 3, 1, 2)
    if contract.output_range == "uint8":
        if batch.dtype == torch.uint8:
            return batch.contiguous()
        x = batch.float()
    elif contract.output_range == "-1,1":
        x = (batch.float() + 1.0) * 127.5
    else:
        x = batch.float() * 255.0
    return x.clamp(0, 255).round().to(torch.uint8).contiguous()
