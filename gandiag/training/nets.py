"""The networks of gandiag's reference trainer, rebuilt by name from checkpoints.

Two families, sized to the data:

- **MLP** for points (the 2D mixtures, or any ``(N, D)`` data): a ReLU
  generator and a LeakyReLU discriminator. The discriminator multiplies its
  input by ``input_scale`` first: Adam moves a weight by about the learning
  rate per step, so telling apart points 0.01 apart (ring8's std) with
  unit-scale inputs needs first-layer weights near 100, i.e. tens of
  thousands of steps; scaling the input puts that resolution in reach.
- **DCGAN-style conv nets** for square images of 8×8 up to 64×64, grey or
  RGB: the generator projects the latent to a 4×4 map and doubles it with
  strided transposed convolutions (batch norm + ReLU), ending in a 3×3 conv
  and ``tanh``; the discriminator halves the image with strided convolutions
  (LeakyReLU, no batch norm, so it also suits gradient penalties) down to 4×4
  and a linear score.

Every constructor takes JSON-able keyword arguments only, because a gandiag
checkpoint stores ``(arch name, kwargs, state dict)`` rather than pickled code.

Conventions: ``G(z)`` or, when ``num_classes > 0``, ``G(z, labels)`` with
``labels`` a LongTensor; images come out NCHW in [-1, 1], points as (N, D).
``D(x[, labels])`` returns raw scores (no sigmoid), one per *group*: with
``pack = m`` (PacGAN) the discriminator judges m samples at once, its input of
``B·m`` samples reshaped to ``(B, m·C, H, W)`` or ``(B, m·D)``. Class labels
enter both networks as one-hot vectors (concatenated to the latent for G; to
the point, or as constant planes to the image, for D).
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn


def _sn(module: nn.Module, on: bool) -> nn.Module:
    return nn.utils.spectral_norm(module) if on else module


def _one_hot(labels: Optional[torch.Tensor], num_classes: int, like: torch.Tensor) -> Optional[torch.Tensor]:
    if not num_classes:
        return None
    if labels is None:
        raise ValueError(f"this network is class-conditional ({num_classes} classes): pass labels")
    return F.one_hot(labels.long(), num_classes).to(like.dtype)


def pack_groups(x: torch.Tensor, pack: int) -> torch.Tensor:
    """(B·m, ...) samples → (B, m·...) groups: channels stacked for images and, at every step, for sequences
    (N, T, C); features for points."""
    if pack == 1:
        return x
    if x.shape[0] % pack:
        raise ValueError(f"batch of {x.shape[0]} samples does not split into groups of {pack} (--pack)")
    b = x.shape[0] // pack
    if x.dim() == 4:
        return x.reshape(b, pack * x.shape[1], x.shape[2], x.shape[3])
    if x.dim() == 3:  # sequences (N, T, C): a group's m sequences side by side, step by step
        return x.reshape(b, pack, x.shape[1], x.shape[2]).transpose(1, 2).reshape(b, x.shape[1], pack * x.shape[2])
    return x.reshape(b, pack * x.shape[1])


class MLPGenerator(nn.Module):
    def __init__(self, latent_dim: int = 2, out_dim: int = 2, hidden: int = 128, depth: int = 3, num_classes: int = 0):
        super().__init__()
        self.latent_dim, self.num_classes = latent_dim, num_classes
        layers, d = [], latent_dim + num_classes
        for _ in range(depth):
            layers += [nn.Linear(d, hidden), nn.ReLU()]
            d = hidden
        layers.append(nn.Linear(d, out_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        y = _one_hot(labels, self.num_classes, z)
        return self.net(z if y is None else torch.cat([z, y], 1))


class MLPDiscriminator(nn.Module):
    def __init__(self, in_dim: int = 2, hidden: int = 128, depth: int = 3, pack: int = 1, num_classes: int = 0,
                 spectral_norm: bool = False, input_scale: float = 1.0):
        super().__init__()
        self.pack, self.num_classes, self.input_scale = pack, num_classes, float(input_scale)
        layers, d = [], pack * (in_dim + num_classes)
        for _ in range(depth):
            layers += [_sn(nn.Linear(d, hidden), spectral_norm), nn.LeakyReLU(0.2)]
            d = hidden
        layers.append(_sn(nn.Linear(d, 1), spectral_norm))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        x = x * self.input_scale
        y = _one_hot(labels, self.num_classes, x)
        if y is not None:
            x = torch.cat([x, y], 1)
        return self.net(pack_groups(x, self.pack)).squeeze(1)


def _check_size(size: int) -> int:
    n = int(round(math.log2(size))) if size > 0 else -1
    if size not in (8, 16, 32, 64) or 2**n != size:
        raise ValueError(f"DCGAN nets take square images of 8, 16, 32 or 64 pixels, not {size}")
    return n - 2  # number of ×2 stages between 4×4 and size×size


class DCGANGenerator(nn.Module):
    def __init__(self, latent_dim: int = 64, channels: int = 1, size: int = 8, width: int = 64, num_classes: int = 0):
        super().__init__()
        self.latent_dim, self.num_classes = latent_dim, num_classes
        stages = _check_size(size)
        ch = [min(width * 2**i, 512) for i in range(stages, -1, -1)]  # widths from 4×4 up to size×size
        self.start = ch[0]
        self.project = nn.Sequential(nn.Linear(latent_dim + num_classes, ch[0] * 16), nn.BatchNorm1d(ch[0] * 16), nn.ReLU())
        ups = []
        for a, b in zip(ch[:-1], ch[1:]):
            ups += [nn.ConvTranspose2d(a, b, 4, 2, 1, bias=False), nn.BatchNorm2d(b), nn.ReLU()]
        self.up = nn.Sequential(*ups)
        self.to_image = nn.Conv2d(ch[-1], channels, 3, 1, 1)

    def forward(self, z: torch.Tensor, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        y = _one_hot(labels, self.num_classes, z)
        h = self.project(z if y is None else torch.cat([z, y], 1)).view(-1, self.start, 4, 4)
        return torch.tanh(self.to_image(self.up(h)))


class DCGANDiscriminator(nn.Module):
    def __init__(self, channels: int = 1, size: int = 8, width: int = 64, pack: int = 1, num_classes: int = 0,
                 spectral_norm: bool = False):
        super().__init__()
        self.pack, self.num_classes = pack, num_classes
        stages = _check_size(size)
        ch = [min(width * 2**i, 512) for i in range(stages + 1)]  # widths from size×size down to 4×4
        layers = [_sn(nn.Conv2d(pack * (channels + num_classes), ch[0], 3, 1, 1), spectral_norm), nn.LeakyReLU(0.2)]
        for a, b in zip(ch[:-1], ch[1:]):
            layers += [_sn(nn.Conv2d(a, b, 4, 2, 1), spectral_norm), nn.LeakyReLU(0.2)]
        self.features = nn.Sequential(*layers)
        self.score = _sn(nn.Linear(ch[-1] * 16, 1), spectral_norm)

    def forward(self, x: torch.Tensor, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        y = _one_hot(labels, self.num_classes, x)
        if y is not None:
            x = torch.cat([x, y[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])], 1)
        h = self.features(pack_groups(x, self.pack))
        return self.score(h.flatten(1)).squeeze(1)


ARCHITECTURES = {
    "mlp-generator": MLPGenerator,
    "mlp-discriminator": MLPDiscriminator,
    "dcgan-generator": DCGANGenerator,
    "dcgan-discriminator": DCGANDiscriminator,
}
