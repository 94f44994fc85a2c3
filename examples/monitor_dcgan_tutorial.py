"""A training loop written the way the PyTorch DCGAN tutorial writes it, on the 8x8 digits, with gandiag's Monitor added.

Run it: ``python examples/monitor_dcgan_tutorial.py --out runs/tutorial`` (``--broken lr`` or
``--broken d_overpowers`` to watch the monitor stop a broken run). The three lines
that gandiag adds to the tutorial's loop are marked ``# gandiag``.

The tutorial (pytorch.org/tutorials/beginner/dcgan_faces_tutorial.html): G takes
(N, nz, 1, 1) latents through ConvTranspose2d/BatchNorm/ReLU to Tanh; D goes
Conv2d/BatchNorm/LeakyReLU to a Sigmoid; BCELoss; Adam(lr, betas=(0.5, 0.999));
D's update is two backward passes (real, then fake.detach()) after
``netD.zero_grad()``; G's update backpropagates through D without zeroing D's
gradients first. The networks here are the tutorial's shrunk to 8x8 images;
the loop body is the tutorial's, line for line, plus ``mon.step``.

``broken``: "lr" trains both networks at lr 0.05 (a learning rate far too high),
"d_overpowers" gives D a 10x learning rate and five updates per G update while
G's is 1e-5 (D wins outright and G's signal vanishes).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

NZ = 16
HELD_OUT_FROM = 1438  # of the 1,797 digits: the rest is the held-out set the memorisation check compares with


class Generator(nn.Module):
    def __init__(self, nz=NZ, ngf=32):
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 2, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),  # 4x4
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),  # 8x8
            nn.Conv2d(ngf, 1, 3, 1, 1, bias=False), nn.Tanh())

    def forward(self, x):
        return self.main(x)


class Discriminator(nn.Module):
    def __init__(self, ndf=32):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(1, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),  # 4x4
            nn.Conv2d(ndf, ndf * 2, 3, 1, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 2, 1, 4, 1, 0, bias=False), nn.Sigmoid())

    def forward(self, x):
        return self.main(x)


def weights_init(m):
    if "Conv" in type(m).__name__:
        nn.init.normal_(m.weight.data, 0.0, 0.02)
    elif "BatchNorm" in type(m).__name__:
        nn.init.normal_(m.weight.data, 1.0, 0.02)
        nn.init.constant_(m.bias.data, 0)


def digits_tensor() -> torch.Tensor:
    from sklearn.datasets import load_digits

    imgs = load_digits().images.astype(np.float32) / 16.0
    return torch.from_numpy(imgs * 2 - 1)[:, None]


def train(out, steps=600, broken=None, seed=0, **monitor_kwargs):
    """Train; return (the Monitor, steps done). ``monitor_kwargs`` go to gandiag.Monitor."""
    import gandiag  # gandiag

    torch.manual_seed(seed)
    data = digits_tensor()
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))
    data, held_out = data[order[:HELD_OUT_FROM]], data[order[HELD_OUT_FROM:]]  # trained on 80%, 20% never seen
    loader = torch.utils.data.DataLoader(data, batch_size=64, shuffle=True, drop_last=True)
    netG, netD = Generator(), Discriminator()
    netG.apply(weights_init)
    netD.apply(weights_init)
    lr_g, lr_d, d_steps = {None: (2e-4, 2e-4, 1), "lr": (0.05, 0.05, 1), "d_overpowers": (1e-5, 2e-3, 5)}[broken]
    criterion = nn.BCELoss()
    optimizerD = torch.optim.Adam(netD.parameters(), lr=lr_d, betas=(0.5, 0.999))
    optimizerG = torch.optim.Adam(netG.parameters(), lr=lr_g, betas=(0.5, 0.999))
    real_label, fake_label = 1.0, 0.0
    done = 0
    with gandiag.Monitor(netG, netD, out=out, real=data, held_out=held_out, optimizers=(optimizerG, optimizerD),  # gandiag
                         **monitor_kwargs) as mon:
        while done < steps:
            for real_cpu in loader:
                for _ in range(d_steps):
                    netD.zero_grad()
                    b_size = real_cpu.size(0)
                    label = torch.full((b_size,), real_label, dtype=torch.float)
                    output_real = netD(real_cpu).view(-1)
                    errD_real = criterion(output_real, label)
                    errD_real.backward()
                    noise = torch.randn(b_size, NZ, 1, 1)
                    fake = netG(noise)
                    label.fill_(fake_label)
                    output_fake = netD(fake.detach()).view(-1)
                    errD_fake = criterion(output_fake, label)
                    errD_fake.backward()
                    errD = errD_real + errD_fake
                    optimizerD.step()
                netG.zero_grad()
                label.fill_(real_label)
                output = netD(fake).view(-1)
                errG = criterion(output, label)
                errG.backward()
                optimizerG.step()
                done += 1
                mon.step(d_loss=errD, g_loss=errG, d_real=output_real, d_fake=output_fake)  # gandiag
                if done >= steps:
                    break
    return mon, done


def main(argv=None):
    import argparse

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/tutorial")
    p.add_argument("--steps", type=int, default=1200)
    p.add_argument("--broken", choices=["lr", "d_overpowers"], default=None)
    p.add_argument("--check-every", type=int, default=400)
    p.add_argument("--overwrite", action="store_true")
    a = p.parse_args(argv)
    mon, done = train(a.out, steps=a.steps, broken=a.broken, overwrite=a.overwrite, check_every=a.check_every,
                      warmup=a.check_every, stop_on="severe", feature_extractor="digits", check_samples=1000)
    stopped = f"stopped at step {done} by: {mon.stop_requested.line()}" if mon.stop_requested else f"{done} steps"
    print(f"{stopped}; log {a.out}/log.jsonl, report {a.out}/report.html, trend {a.out}/trend.html")


if __name__ == "__main__":
    main()
