"""``--compute-precision``: the numerics of the feature networks, chosen, applied and recorded.

- ``strict``: IEEE float32 everywhere: convolutions and matrix products
  with full fp32 accumulation on the CPU (oneDNN) and the GPU (cuDNN,
  cuBLAS). The published protocols' numbers (TF-1 Inception in fp32) and
  torch-fidelity's on a CPU are this mode's.
- ``tf32``: convolutions and matrix products in TensorFloat-32 (10-bit
  mantissa products, fp32 accumulation) on NVIDIA GPUs from Ampere on. A
  CPU has no TF32: there the run is strict, and recorded so.
- ``bf16``: the feature network under ``torch.autocast`` to bfloat16 (8-bit
  mantissa), features cast back to float32 before any statistic (which
  stay float64). On this project's CPU (AMD EPYC, AVX-512 BF16) compiled
  Inception runs 29 images/s against 15.6 in fp32, with features 1.5% away
  from strict (relative L2); the FID deviations measured on the bundled data
  and the suite's images are in the README ("Speed").

Default: strict on a CPU. On a GPU, when the flag is not given, gandiag
leaves torch's own defaults (in torch 2.14: cuDNN convolutions in TF32,
matrix products in fp32), which is how torch-fidelity runs on the same
machine, and records them. Only the feature networks are affected: a
generator runs as its file says. ``provenance.compute.precision`` records
the mode, and a baseline comparison refuses runs of different modes
(docs/gates.md).
"""

from __future__ import annotations

import contextlib
from typing import Optional

import torch

MODES = ("strict", "tf32", "bf16")


def resolve(mode: Optional[str], device: str, warn=None) -> str:
    """The mode that will run (recorded as ``provenance.compute.precision``)."""
    kind = torch.device(device).type
    if mode is None:
        if kind == "cuda":
            return (f"torch default (matmul {torch.backends.cuda.matmul.fp32_precision}, "
                    f"cudnn conv {torch.backends.cudnn.conv.fp32_precision})")
        return "strict"
    if mode == "tf32" and kind != "cuda":
        if warn is not None:
            warn(f"--compute-precision tf32 is a GPU mode; on {kind} the features are computed in strict fp32")
        return "strict"
    return mode


def _backends(kind: str) -> list:
    """The fp32-precision switches that matter on a device: (object, attribute)."""
    if kind == "cuda":
        return [(torch.backends.cudnn.conv, "fp32_precision"), (torch.backends.cuda.matmul, "fp32_precision")]
    return [(torch.backends.mkldnn.conv, "fp32_precision"), (torch.backends.mkldnn.matmul, "fp32_precision")]


@contextlib.contextmanager
def numerics(mode: str, device: str):
    """Run the enclosed feature network in ``mode`` (as :func:`resolve` returned it), restoring torch after."""
    kind = torch.device(device).type
    switches = _backends(kind)
    saved = [getattr(obj, attr) for obj, attr in switches]
    value = {"strict": "ieee", "tf32": "tf32"}.get(mode)
    try:
        if value is not None:
            for obj, attr in switches:
                setattr(obj, attr, value)
        if mode == "bf16":
            with torch.autocast(kind, dtype=torch.bfloat16):
                yield
        else:
            yield
    finally:
        for (obj, attr), v in zip(switches, saved):
            setattr(obj, attr, v)


class WithNumerics:
    """An extractor whose calls run in one precision mode; features come back as float32."""

    def __init__(self, extractor, mode: str, device: str):
        self.inner, self.mode, self.device = extractor, mode, device
        # real features cached in one mode are not another's: a reduced-precision mode gets its own entries
        self.cache_variant = None if mode == "strict" else mode

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def __call__(self, batch: torch.Tensor) -> dict:
        with numerics(self.mode, self.device):
            feats = self.inner(batch)
        return {k: v.float() for k, v in feats.items()}


def apply(extractors: list, mode: Optional[str], device: str, warn) -> tuple:
    """(extractors wrapped for the mode, the mode recorded); torch defaults on a GPU leave them unwrapped."""
    resolved = resolve(mode, device, warn)
    if mode is None and torch.device(device).type == "cuda":
        return extractors, resolved
    return [WithNumerics(e, resolved, device) for e in extractors], resolved
