"""GAN losses on raw discriminator scores, and the WGAN-GP gradient penalty.

``ns``: non-saturating (D: −log σ(r) − log(1−σ(f)); G: −log σ(f)).
``minimax``: the original objective (same D; G minimises log(1−σ(f))).
``wasserstein``: critic E f − E r; G −E f.
``ls``: least squares, D ½(r−1)² + ½f², G ½(f−1)².
``hinge``: D relu(1−r) + relu(1+f); G −E f.
One-sided label smoothing (Salimans et al. 2016) moves the real target to
1−s for the losses with targets (ns, minimax, ls).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import nets


def d_loss(loss: str, real: torch.Tensor, fake: torch.Tensor, smoothing: float = 0.0) -> torch.Tensor:
    target = 1.0 - smoothing
    if loss in ("ns", "minimax"):
        return (F.binary_cross_entropy_with_logits(real, torch.full_like(real, target))
                + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
    if loss == "wasserstein":
        return fake.mean() - real.mean()
    if loss == "ls":
        return 0.5 * ((real - target) ** 2).mean() + 0.5 * (fake**2).mean()
    if loss == "hinge":
        return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()
    raise ValueError(loss)


def g_loss(loss: str, fake: torch.Tensor) -> torch.Tensor:
    if loss == "ns":
        return F.softplus(-fake).mean()
    if loss == "minimax":
        return -F.softplus(fake).mean()  # log(1 - σ(f)) = -softplus(f)
    if loss in ("wasserstein", "hinge"):
        return -fake.mean()
    if loss == "ls":
        return 0.5 * ((fake - 1.0) ** 2).mean()
    raise ValueError(loss)


def uses_probabilities(loss: str) -> bool:
    """Whether σ(score) reads as D's probability that a sample is real."""
    return loss in ("ns", "minimax")


def interpolate_grad_norms(D, real: torch.Tensor, fake: torch.Tensor, labels, pack: int, gen: torch.Generator,
                           create_graph: bool = False) -> torch.Tensor:
    """‖∇D(x̂)‖ on x̂ = εx + (1−ε)x̃, ε ~ U[0,1] per sample, one norm per packed group (D's whole input).

    ε is drawn on the CPU from ``gen`` (the trainer's generator) and moved to
    the batch's device, like every other draw of a training step.
    """
    eps = torch.rand((real.shape[0],) + (1,) * (real.dim() - 1), generator=gen).to(real.device)
    x_hat = (eps * real + (1 - eps) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x_hat, labels).sum(), x_hat, create_graph=create_graph)
    return nets.pack_groups(grad, pack).flatten(1).norm(dim=1)


def gradient_penalty(D, real: torch.Tensor, fake: torch.Tensor, labels, pack: int, gen: torch.Generator):
    """λ-free WGAN-GP penalty E(‖∇D(x̂)‖−1)² on interpolates (:func:`interpolate_grad_norms`).

    Returns (penalty, mean gradient norm) so the log can show the norm sitting near 1.
    """
    norms = interpolate_grad_norms(D, real, fake, labels, pack, gen, create_graph=True)
    return ((norms - 1.0) ** 2).mean(), norms.mean().detach()
