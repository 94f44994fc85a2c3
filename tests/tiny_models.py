"""Small generators for loader and CLI tests (not trained: the loaders and the
pipeline are under test here; trained models come from tests/fixtures)."""

import torch
from torch import nn


class TinyImageGenerator(nn.Module):
    """z (N, 16) → (N, 1, 8, 8) in [-1, 1], like a digits GAN."""

    latent_dim = 16

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(16, 64)

    def forward(self, z):
        return torch.tanh(self.fc(z)).view(-1, 1, 8, 8)


class TinyNHWCGenerator(TinyImageGenerator):
    """Same, but NHWC RGB in [0, 1], like a TensorFlow generator."""

    def forward(self, z):
        x = (torch.tanh(self.fc(z)).view(-1, 8, 8, 1) + 1) / 2
        return x.expand(-1, 8, 8, 3)


class NaNGenerator(TinyImageGenerator):
    def forward(self, z):
        return torch.tanh(self.fc(z)).view(-1, 1, 8, 8) * float("nan")


class WrongShapeGenerator(TinyImageGenerator):
    def forward(self, z):
        return self.fc(z).view(-1, 4, 4, 4)


class PointsGenerator(nn.Module):
    latent_dim = 2

    def forward(self, z):
        angle = torch.atan2(z[:, 1], z[:, 0])
        k = torch.round(angle / (2 * torch.pi / 8))
        a = k * 2 * torch.pi / 8
        return torch.stack([torch.cos(a), torch.sin(a)], 1) + 0.01 * z
