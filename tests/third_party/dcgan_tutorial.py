"""The generator of the PyTorch DCGAN tutorial, written as the tutorial writes it.

https://pytorch.org/tutorials/beginner/dcgan_faces_tutorial.html: sizes are
globals of the script (``nz``, ``ngf``, ``nc``), the constructor takes only
``ngpu``, and the latent goes in as ``(N, nz, 1, 1)``. Nothing here knows
about gandiag; the tests save it the ways users save it and evaluate each file
with only the flags the README promises. ``ngf`` is smaller than the
tutorial's 64 to keep the suite fast; the architecture is otherwise the same.
"""

import torch
import torch.nn as nn

nz = 100  # size of the latent vector
ngf = 8  # generator feature maps (the tutorial uses 64)
nc = 3  # colour channels


class Generator(nn.Module):
    def __init__(self, ngpu):
        super(Generator, self).__init__()
        self.ngpu = ngpu
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False),
            nn.BatchNorm2d(ngf * 8),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 4),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 2),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),
            nn.Tanh(),
        )

    def forward(self, input):
        return self.main(input)


class ConditionalGenerator(nn.Module):
    """A conditional DCGAN as cGAN tutorials write it: an embedding of the label concatenated to the latent map."""

    def __init__(self, n_classes=10):
        super().__init__()
        self.label_emb = nn.Embedding(n_classes, n_classes)
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz + n_classes, ngf * 4, 4, 1, 0, bias=False),
            nn.BatchNorm2d(ngf * 4),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 2),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, nc, 4, 2, 1, bias=False),
            nn.Tanh(),
        )

    def forward(self, noise, labels):
        c = self.label_emb(labels)[:, :, None, None]
        return self.main(torch.cat([noise, c], 1))


class OneHotConditionalGenerator(ConditionalGenerator):
    """The same network taking one-hot float rows, as BigGAN-style and Keras conditional generators do."""

    def forward(self, noise, onehot):
        c = self.label_emb(onehot.argmax(1))[:, :, None, None]
        return self.main(torch.cat([noise, c], 1))
