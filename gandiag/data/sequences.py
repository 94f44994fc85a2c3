"""The ``sequences`` sample kind: float32 (N, T, C) batches of multichannel time series.

A sequence GAN (a TCN or an RNN generator of continuous actions) returns
``T`` steps of ``C`` channels per sample, as ``(N, T, C)`` (``NTC``: an RNN
with ``batch_first``, Keras) or ``(N, C, T)`` (``NCT``: a ``Conv1d`` stack).
Both are common and a shape alone rarely says which (24 steps of 5 channels
and 5 steps of 24 channels are both plausible), so the layout is taken from
the file's contract or ``--layout`` and detected only when exactly one of
the two axes has a single channel. Values are kept as they are: unlike
pixels, a sequence has no range to convert, and metrics compare raw values.

``sines`` is TimeGAN's synthetic benchmark generated as their
``data_loading.sine_data_generation`` does (Yoon et al. 2019,
jsyoon0823/TimeGAN): per sample and channel a frequency and a phase drawn
uniformly from [0, 0.1], ``sin(freq * t + phase)`` for t = 0..23, scaled from
[-1, 1] to [0, 1]; 5 channels, 24 steps, 10,000 samples. The draws use
NumPy's legacy ``RandomState`` in their order (frequency, then phase, channel
by channel), so ``np.random.seed(s)`` before their function gives the same
array as ``sines_data(n, seed=s)``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Optional

import numpy as np
import torch

from ..errors import DataError, GeneratorOutputError
from ..safety import budgets

SINES_N, SINES_STEPS, SINES_CHANNELS = 10_000, 24, 5  # TimeGAN's benchmark
SINES_MAX_FREQUENCY = SINES_MAX_PHASE = 0.1
MAX_STEPS = 1 << 16  # steps per sequence, and channels: budgets on what a file or generator can make us hold


class Sequences:
    name = "sequences"
    description = "multichannel time series (N, T, C) as float32: continuous action or sensor sequences"
    output_ndim = 3
    array_ndims = (3,)
    layouts = ("NTC", "NCT")
    default_n = 2_000
    keep = 2_000  # sequences kept for the sequence diagnostics (duplicates, shapes, temporal health) and the report

    def detect(self, contract, probe: torch.Tensor):
        c = replace(contract, detected=list(contract.detected))
        if c.layout is None:
            c.layout = _detect_layout(probe)
            c.detected.append("layout")
        if c.layout not in self.layouts:
            raise GeneratorOutputError(f"layout {c.layout} is not a sequence layout; use NTC or NCT")
        steps, channels = (probe.shape[1], probe.shape[2]) if c.layout == "NTC" else (probe.shape[2], probe.shape[1])
        _check_size(int(steps), int(channels), "generator sequences")
        c.sample_shape = (int(steps), int(channels))
        return c

    def canonical(self, batch: torch.Tensor, contract) -> torch.Tensor:
        if batch.ndim != 3:
            raise GeneratorOutputError(f"generator returned shape {tuple(batch.shape)}; expected a 3-d batch of "
                                       "sequences")
        seq = batch if contract.layout == "NTC" else batch.transpose(1, 2)
        if tuple(seq.shape[1:]) != tuple(contract.sample_shape):
            raise GeneratorOutputError(f"generator returned sequences of shape {tuple(seq.shape[1:])} (steps, "
                                       f"channels) after the probe batch gave {tuple(contract.sample_shape)}")
        return seq.float().contiguous()

    def from_array(self, arr: np.ndarray, description: str, layout: Optional[str] = None) -> torch.Tensor:
        if arr.dtype.kind not in "fiu":
            raise DataError(f"{description}: sequences must be numbers, not {arr.dtype}")
        if layout not in (None, "NTC", "NCT"):
            raise DataError(f"{description}: layout {layout} is not a sequence layout; use NTC or NCT")
        if layout == "NCT":
            arr = arr.transpose(0, 2, 1)
        _check_size(arr.shape[1], arr.shape[2], description)
        out = np.ascontiguousarray(arr, dtype=np.float32)
        if not np.isfinite(out).all():
            raise DataError(f"{description}: contains NaN or Inf (or values beyond float32)")
        return torch.from_numpy(out)


def _check_size(steps: int, channels: int, description: str) -> None:
    if not (1 <= steps <= MAX_STEPS and 1 <= channels <= MAX_STEPS):
        raise DataError(f"{description}: {steps} steps of {channels} channels is outside 1..{MAX_STEPS} each")
    budgets.FEATURE_DIM.check(steps * channels, f"{description}: {steps} steps x {channels} channels")


def _detect_layout(probe: torch.Tensor) -> str:
    """NTC or NCT only when the shape leaves no doubt: exactly one of the two axes has a single channel."""
    a, b = int(probe.shape[1]), int(probe.shape[2])
    if b == 1 and a > 1:
        return "NTC"
    if a == 1 and b > 1:
        return "NCT"
    raise GeneratorOutputError(f"cannot tell the layout of generator output {tuple(probe.shape)}: (N, steps, "
                               "channels) or (N, channels, steps)? pass --layout NTC or NCT")


def sines_data(n: int = SINES_N, seed: int = 0, steps: int = SINES_STEPS, channels: int = SINES_CHANNELS) -> np.ndarray:
    """TimeGAN's sine benchmark, (n, steps, channels) float64 in [0, 1], exactly as their code draws it."""
    rng = np.random.RandomState(seed)
    t = np.arange(steps)
    out = np.empty((n, steps, channels))
    for i in range(n):
        for k in range(channels):
            freq = rng.uniform(0, SINES_MAX_FREQUENCY)
            phase = rng.uniform(0, SINES_MAX_PHASE)
            out[i, :, k] = np.sin(freq * t + phase)
    return (out + 1) * 0.5
