"""The networks of the CycleGAN trainer (:mod:`gandiag.training.cyclegan`), rebuilt by name from checkpoints.

- ``resnet-translator``: images to images of the same size, as CycleGAN's
  generator (Zhu et al. 2017; Johnson et al. 2016) scaled down to the bundled
  8×8 digits: a 3×3 conv in, residual blocks (conv, norm, ReLU, conv, norm,
  plus the block's input), a 3×3 conv out and ``tanh``. No down- or
  up-sampling: on 8×8 images a stride-2 stage would leave 2×2 maps and lose
  the strokes. Reflection padding, as CycleGAN's, so borders are not
  darkened by zeros. Input and output in [-1, 1], NCHW.
- ``patch-discriminator``: PatchGAN (Isola et al. 2017): strided 4×4 convs
  and a 3×3 conv to one channel, a real/fake score per overlapping patch
  (on 8×8 images, 2×2 patches of 6×6 pixels each) rather than one per image,
  so D judges local texture and G keeps the global layout from the cycle loss.
- ``mlp-translator``: points to points, ``x + f(x)`` with ``f`` a ReLU MLP:
  starting near the identity, as the identity loss asks on the target domain.
  Its discriminator is the reference trainer's ``mlp-discriminator``
  (:mod:`.nets`) with its ``input_scale``, for the same reason as there.

Constructors take JSON-able keyword arguments only: a gandiag checkpoint
stores ``(arch name, kwargs, state dict)``, never pickled code.
"""

from __future__ import annotations

import torch
from torch import nn

NORMS = ("instance", "none")


def _norm(kind: str, channels: int) -> nn.Module:
    if kind not in NORMS:
        raise ValueError(f"norm {kind!r} is not one of {', '.join(NORMS)}")
    return nn.InstanceNorm2d(channels) if kind == "instance" else nn.Identity()


def _conv3(a: int, b: int) -> nn.Sequential:
    return nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(a, b, 3))


class ResidualBlock(nn.Module):
    def __init__(self, width: int, norm: str):
        super().__init__()
        self.body = nn.Sequential(_conv3(width, width), _norm(norm, width), nn.ReLU(),
                                  _conv3(width, width), _norm(norm, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetTranslator(nn.Module):
    def __init__(self, channels: int = 1, width: int = 32, blocks: int = 3, norm: str = "instance"):
        super().__init__()
        if blocks < 0 or width < 1 or channels < 1:
            raise ValueError(f"resnet-translator: channels, width must be positive and blocks >= 0, got "
                             f"{channels}, {width}, {blocks}")
        self.inp = nn.Sequential(_conv3(channels, width), _norm(norm, width), nn.ReLU())
        self.blocks = nn.Sequential(*[ResidualBlock(width, norm) for _ in range(blocks)])
        self.out = _conv3(width, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.out(self.blocks(self.inp(x))))


class PatchDiscriminator(nn.Module):
    """Scores of shape (N, 1, h, w), one per patch; ``layers`` stride-2 stages (8×8 → 2×2 with 2)."""

    def __init__(self, channels: int = 1, width: int = 32, layers: int = 2, norm: str = "none"):
        super().__init__()
        if layers < 1 or width < 1 or channels < 1:
            raise ValueError(f"patch-discriminator: channels, width and layers must be positive, got "
                             f"{channels}, {width}, {layers}")
        mods, c = [nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2)], width
        for i in range(1, layers):
            nxt = min(width * 2**i, 512)
            mods += [nn.Conv2d(c, nxt, 4, 2, 1), _norm(norm, nxt), nn.LeakyReLU(0.2)]
            c = nxt
        mods.append(nn.Conv2d(c, 1, 3, 1, 1))
        self.net = nn.Sequential(*mods)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class MLPTranslator(nn.Module):
    """(N, dim) → (N, dim): ``x + f(x)``, or ``f(x)`` with ``residual=False``."""

    def __init__(self, dim: int = 2, hidden: int = 128, depth: int = 3, residual: bool = True):
        super().__init__()
        if dim < 1 or hidden < 1 or depth < 1:
            raise ValueError(f"mlp-translator: dim, hidden and depth must be positive, got {dim}, {hidden}, {depth}")
        self.residual = bool(residual)
        layers, d = [], dim
        for _ in range(depth):
            layers += [nn.Linear(d, hidden), nn.ReLU()]
            d = hidden
        layers.append(nn.Linear(d, dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x) if self.residual else self.net(x)


TRANSLATOR_ARCHITECTURES = {
    "resnet-translator": ResnetTranslator,
    "patch-discriminator": PatchDiscriminator,
    "mlp-translator": MLPTranslator,
}
