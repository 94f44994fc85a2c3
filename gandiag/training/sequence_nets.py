"""Sequence networks of the reference trainer: causal TCNs and recurrent nets over (N, T, C) sequences.

Generators return sequences ``(N, T, C)`` (layout ``NTC``, the ``sequences``
sample kind's canonical batch); discriminators take them and return one raw
score per packed group, like the image and point nets (:mod:`.nets`).

**The latent** is flat, ``latent_dim = global_dim + steps · noise_dim``: the
first ``global_dim`` values are a sequence-level code, repeated at every step,
and the rest are ``noise_dim`` values of fresh noise per step, step ``t`` at
``z[:, global_dim + t·noise_dim : global_dim + (t+1)·noise_dim]``. Per-step
noise (C-RNN-GAN, RCGAN) is what makes a causal generator's outputs vary over
time: a TCN fed only a code repeated over time sees the same input window at
every step once its receptive field is past the zero padding, so everything
after the first few steps would be the same value. Per-step noise also keeps
the generator usable online, one step at a time, with the output at step t a
function of the code and the noise up to t only. The global code carries what
holds for the whole sequence (a sine's frequency, an activity's style), which a
causal net could otherwise only read from the first steps' noise.

**Conditioning**: class labels enter as one-hot vectors concatenated to every
step's input (G and D). A one-hot vector into the first (linear or 1×1)
layer is a learned label embedding, added at each step.

**Output activation** (``output``): ``sigmoid`` for data in [0, 1] (TimeGAN's
min-max scaled sines), ``tanh`` for [-1, 1], ``linear`` for standardised or
unbounded data; the trainer picks it from the training data's range. For
unbounded data (raw accelerometer values in the tens) the trainer also passes
the data's per-channel mean and std (``data_mean``, ``data_std``): the linear
generator works in standard units and returns ``x·std + mean``, the
discriminator standardises its input first, so neither has to learn the scale.

**Packing** (PacGAN): a discriminator with ``pack = m`` stacks m sequences'
channels at each step, (B·m, T, C) → (B, T, m·C) (:func:`.nets.pack_groups`).

No batch norm anywhere: batch statistics over (N, T) would let a step's output
depend on later steps (and on other samples) in training mode, and would mix
samples under a gradient penalty.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .nets import _one_hot, _sn, pack_groups

OUTPUTS = ("sigmoid", "tanh", "linear")
CELLS = ("lstm", "gru")


def tcn_levels(steps: int, kernel_size: int = 3) -> int:
    """Residual blocks (dilations 1, 2, 4, ...) for a receptive field of at least ``steps``.

    A block holds two causal convolutions of dilation d, so L blocks see
    1 + 2(k−1)(2^L − 1) steps back.
    """
    levels = 1
    while 1 + 2 * (kernel_size - 1) * (2**levels - 1) < steps:
        levels += 1
    return levels


def receptive_field(levels: int, kernel_size: int = 3) -> int:
    return 1 + 2 * (kernel_size - 1) * (2**levels - 1)


def _activation(x: torch.Tensor, output: str) -> torch.Tensor:
    if output == "sigmoid":
        return torch.sigmoid(x)
    if output == "tanh":
        return torch.tanh(x)
    return x


def _check_common(latent_dim: int, steps: int, channels: int, noise_dim: int, output: str) -> int:
    for name, v in (("steps", steps), ("channels", channels), ("noise_dim", noise_dim)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    if output not in OUTPUTS:
        raise ValueError(f"output activation {output!r} is not one of {', '.join(OUTPUTS)}")
    global_dim = latent_dim - steps * noise_dim
    if global_dim < 0:
        raise ValueError(f"latent_dim {latent_dim} is smaller than steps x noise_dim = {steps * noise_dim}")
    return global_dim


def _step_inputs(z: torch.Tensor, labels, steps: int, noise_dim: int, global_dim: int, num_classes: int):
    """Flat latents (N, global + T·noise) and labels → per-step inputs (N, T, noise + global + classes)."""
    z = z.reshape(z.shape[0], -1)
    n = z.shape[0]
    parts = [z[:, global_dim:].reshape(n, steps, noise_dim)]
    per_seq = [z[:, :global_dim]] if global_dim else []
    y = _one_hot(labels, num_classes, z)
    if y is not None:
        per_seq.append(y)
    if per_seq:
        parts.append(torch.cat(per_seq, 1)[:, None, :].expand(-1, steps, -1))
    return torch.cat(parts, 2)


class _Scale(nn.Module):
    """Per-channel ``x·std + mean`` (``inverse=False``) or ``(x − mean)/std`` on (N, T, C); identity without stats.
    The statistics are constructor arguments (checkpoint kwargs), not weights: non-persistent buffers."""

    def __init__(self, mean: Optional[list], std: Optional[list], channels: int, inverse: bool):
        super().__init__()
        self.on, self.inverse = mean is not None, inverse
        if self.on:
            if std is None or len(mean) != channels or len(std) != channels or min(std) <= 0:
                raise ValueError(f"data_mean and data_std must be {channels} values each, std positive")
            self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32), persistent=False)
            self.register_buffer("std", torch.tensor(std, dtype=torch.float32), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.on:
            return x
        return (x - self.mean) / self.std if self.inverse else x * self.std + self.mean


def _with_labels(x: torch.Tensor, labels, num_classes: int) -> torch.Tensor:
    """(N, T, C) sequences with one-hot labels appended to every step's channels."""
    y = _one_hot(labels, num_classes, x)
    if y is None:
        return x
    return torch.cat([x, y[:, None, :].expand(-1, x.shape[1], -1)], 2)


class CausalConv1d(nn.Module):
    """Conv1d over (N, C, T) whose output at step t sees inputs at steps ≤ t only (left zero padding)."""

    def __init__(self, cin: int, cout: int, kernel_size: int, dilation: int = 1, spectral_norm: bool = False):
        super().__init__()
        self.left = (kernel_size - 1) * dilation
        self.conv = _sn(nn.Conv1d(cin, cout, kernel_size, dilation=dilation), spectral_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (self.left, 0)))


class TemporalBlock(nn.Module):
    """Bai et al. (2018)'s residual block: two causal dilated convolutions, then x + f(x)."""

    def __init__(self, width: int, kernel_size: int, dilation: int, slope: float, spectral_norm: bool = False):
        super().__init__()
        self.conv1 = CausalConv1d(width, width, kernel_size, dilation, spectral_norm)
        self.conv2 = CausalConv1d(width, width, kernel_size, dilation, spectral_norm)
        self.slope = slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.conv1(x), self.slope)
        h = self.conv2(h)
        return F.leaky_relu(x + h, self.slope)


class TCNGenerator(nn.Module):
    """Per-step noise (+ a global code, + one-hot labels) → 1×1 conv → residual causal blocks, dilations
    1, 2, 4, ... (enough for a receptive field ≥ ``steps``) → 1×1 conv to ``channels`` → ``output``."""

    def __init__(self, latent_dim: int = 112, steps: int = 24, channels: int = 5, noise_dim: int = 4, width: int = 64,
                 kernel_size: int = 3, levels: Optional[int] = None, num_classes: int = 0, output: str = "linear",
                 data_mean: Optional[list] = None, data_std: Optional[list] = None):
        super().__init__()
        self.scale = _Scale(data_mean, data_std, channels, inverse=False)
        self.global_dim = _check_common(latent_dim, steps, channels, noise_dim, output)
        self.latent_dim, self.steps, self.channels, self.noise_dim = latent_dim, steps, channels, noise_dim
        self.num_classes, self.output = num_classes, output
        self.levels = levels or tcn_levels(steps, kernel_size)
        self.inp = nn.Conv1d(noise_dim + self.global_dim + num_classes, width, 1)
        self.blocks = nn.Sequential(*[TemporalBlock(width, kernel_size, 2**i, 0.0) for i in range(self.levels)])
        self.out = nn.Conv1d(width, channels, 1)

    def forward(self, z: torch.Tensor, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        x = _step_inputs(z, labels, self.steps, self.noise_dim, self.global_dim, self.num_classes)
        h = self.blocks(F.relu(self.inp(x.transpose(1, 2))))
        return self.scale(_activation(self.out(h).transpose(1, 2), self.output))


class TCNDiscriminator(nn.Module):
    """(Packed) sequences, one-hot labels at every step → 1×1 conv → residual causal blocks (LeakyReLU 0.2) →
    the mean over time and the last step's features (which see the whole sequence) → a linear score."""

    def __init__(self, steps: int = 24, channels: int = 5, width: int = 64, kernel_size: int = 3,
                 levels: Optional[int] = None, pack: int = 1, num_classes: int = 0, spectral_norm: bool = False,
                 data_mean: Optional[list] = None, data_std: Optional[list] = None):
        super().__init__()
        self.standardise = _Scale(data_mean, data_std, channels, inverse=True)
        self.steps, self.pack, self.num_classes = steps, pack, num_classes
        self.levels = levels or tcn_levels(steps, kernel_size)
        self.inp = _sn(nn.Conv1d(pack * (channels + num_classes), width, 1), spectral_norm)
        self.blocks = nn.Sequential(*[TemporalBlock(width, kernel_size, 2**i, 0.2, spectral_norm)
                                      for i in range(self.levels)])
        self.score = _sn(nn.Linear(2 * width, 1), spectral_norm)

    def forward(self, x: torch.Tensor, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        x = pack_groups(_with_labels(self.standardise(x), labels, self.num_classes), self.pack)
        h = self.blocks(F.leaky_relu(self.inp(x.transpose(1, 2)), 0.2))
        return self.score(torch.cat([h.mean(2), h[:, :, -1]], 1)).squeeze(1)


def _rnn(cell: str, cin: int, width: int, layers: int) -> nn.Module:
    if cell not in CELLS:
        raise ValueError(f"cell {cell!r} is not one of {', '.join(CELLS)}")
    return (nn.LSTM if cell == "lstm" else nn.GRU)(cin, width, num_layers=layers, batch_first=True)


def _sn_rnn(rnn: nn.Module, on: bool) -> nn.Module:
    """Spectral norm on every input-to-hidden and hidden-to-hidden matrix of a (multi-layer) LSTM/GRU."""
    if on:
        for layer in range(rnn.num_layers):
            for kind in ("ih", "hh"):
                nn.utils.spectral_norm(rnn, name=f"weight_{kind}_l{layer}")
    return rnn


def _run_rnn(rnn: nn.Module, x: torch.Tensor) -> torch.Tensor:
    # cuDNN's RNN has no double backward (WGAN-GP) and no backward in eval mode: use the native kernels there.
    with torch.backends.cudnn.flags(enabled=not x.is_cuda):
        return rnn(x)[0]


class RNNGenerator(nn.Module):
    """C-RNN-GAN / RCGAN style: per-step noise (+ a global code, + one-hot labels) → LSTM or GRU (``cell``) →
    a linear map per step to ``channels`` → ``output``."""

    def __init__(self, latent_dim: int = 128, steps: int = 24, channels: int = 5, noise_dim: int = 4, width: int = 64,
                 layers: int = 2, cell: str = "lstm", num_classes: int = 0, output: str = "linear",
                 data_mean: Optional[list] = None, data_std: Optional[list] = None):
        super().__init__()
        self.scale = _Scale(data_mean, data_std, channels, inverse=False)
        self.global_dim = _check_common(latent_dim, steps, channels, noise_dim, output)
        self.latent_dim, self.steps, self.channels, self.noise_dim = latent_dim, steps, channels, noise_dim
        self.num_classes, self.output, self.cell = num_classes, output, cell
        self.rnn = _rnn(cell, noise_dim + self.global_dim + num_classes, width, layers)
        self.out = nn.Linear(width, channels)

    def forward(self, z: torch.Tensor, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        x = _step_inputs(z, labels, self.steps, self.noise_dim, self.global_dim, self.num_classes)
        return self.scale(_activation(self.out(_run_rnn(self.rnn, x)), self.output))


class RNNDiscriminator(nn.Module):
    """(Packed) sequences with one-hot labels at every step → LSTM or GRU → a score per step (RCGAN, C-RNN-GAN),
    averaged over time into one score per group."""

    def __init__(self, steps: int = 24, channels: int = 5, width: int = 64, layers: int = 2, cell: str = "lstm",
                 pack: int = 1, num_classes: int = 0, spectral_norm: bool = False,
                 data_mean: Optional[list] = None, data_std: Optional[list] = None):
        super().__init__()
        self.standardise = _Scale(data_mean, data_std, channels, inverse=True)
        self.steps, self.pack, self.num_classes, self.cell = steps, pack, num_classes, cell
        self.rnn = _sn_rnn(_rnn(cell, pack * (channels + num_classes), width, layers), spectral_norm)
        self.score = _sn(nn.Linear(width, 1), spectral_norm)

    def forward(self, x: torch.Tensor, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        x = pack_groups(_with_labels(self.standardise(x), labels, self.num_classes), self.pack)
        return self.score(_run_rnn(self.rnn, x)).mean(1).squeeze(1)


SEQUENCE_ARCHITECTURES = {
    "tcn-generator": TCNGenerator,
    "tcn-discriminator": TCNDiscriminator,
    "rnn-generator": RNNGenerator,
    "rnn-discriminator": RNNDiscriminator,
}
