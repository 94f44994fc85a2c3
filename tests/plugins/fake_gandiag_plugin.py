"""A third-party plugin, installed in tests through a real entry point.

It adds a loader for ``.ring`` files (a text file naming a ring radius) and a
metric, the two things a third party most often adds.
"""

import torch

from gandiag import GeneratorContract, LoadedGenerator, hookimpl


class RingFileLoader:
    name = "ringfile"
    description = "test plugin: .ring text files"

    def sniff(self, path):
        return path.suffix == ".ring"

    def load(self, path, options):
        radius = float(path.read_text())

        def forward(z, labels=None):
            angle = torch.round(torch.atan2(z[:, 1], z[:, 0]) / (torch.pi / 4)) * (torch.pi / 4)
            return radius * torch.stack([torch.cos(angle), torch.sin(angle)], 1) + 0.01 * z

        return LoadedGenerator(forward, GeneratorContract(latent_dim=2), "ring-text", str(path), real_source="ring8")


class MeanNorm:
    name, label, role = "mean_norm", "Mean norm", "pool"
    needs_real, higher_is_better = False, False
    description = "test plugin: mean L2 norm of generated features"

    def compute(self, ctx):
        return {"value": float(ctx.fake.features("pool").norm(dim=1).mean())}


@hookimpl
def register_loaders(register):
    register(RingFileLoader())


@hookimpl
def register_metrics(register):
    register(MeanNorm())
