"""What one ``Monitor.step`` call adds to the log: the user's numbers, read the way gandiag's trainer writes them.

Users hand over what their loop already has: losses as tensors or floats,
and D's outputs on the real and the generated batch, either per sample (a
tensor) or as a mean. D's outputs come as *logits* (a D ending in a linear
layer, trained with ``BCEWithLogitsLoss`` or a Wasserstein/hinge loss) or as
*probabilities* (the DCGAN tutorial's D ends in ``nn.Sigmoid``). They are
recorded under the trainer's names (docs/training-log.md): logits as
``d_real``/``d_fake`` (with σ of them as ``d_real_prob``/``d_fake_prob`` under
the ``ns``/``minimax`` losses, where σ is D's probability of "real"),
probabilities as ``d_real_prob``/``d_fake_prob`` only. With per-sample
outputs, ``d_accuracy`` is D's accuracy at the 0.5 threshold, the mean of the
real batch's and the generated batch's: 0.5 is a D at chance, 1.0 a D that
wins outright.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Optional

import torch

from ..errors import GandiagError

D_OUTPUTS = ("logits", "probabilities")
LOSSES = ("ns", "minimax", "ls", "hinge", "wasserstein")  # as gandiag's trainer names them (docs/training.md)
KNOWN = ("d_loss", "g_loss", "d_real", "d_fake", "gp", "gp_grad_norm")


def d_outputs_of(D: Optional[torch.nn.Module], said: Optional[str]) -> str:
    """What D returns: as said, else "probabilities" for a D whose last layer is ``nn.Sigmoid``, else "logits"."""
    if said is not None:
        if said not in D_OUTPUTS:
            raise GandiagError(f"d_outputs={said!r}: one of {', '.join(D_OUTPUTS)}")
        return said
    last = None
    for m in (D.modules() if D is not None else ()):
        if not list(m.children()):
            last = m
    return "probabilities" if isinstance(last, torch.nn.Sigmoid) else "logits"


def _number(name: str, v) -> float:
    if isinstance(v, torch.Tensor):
        if v.numel() != 1:
            raise GandiagError(f"Monitor.step({name}=...): one number or a scalar tensor, got shape {tuple(v.shape)}")
        return float(v.detach())
    if isinstance(v, Real) and not isinstance(v, bool):
        return float(v)
    raise GandiagError(f"Monitor.step({name}=...): a number or a tensor, got {type(v).__name__}")


def _scores(v) -> torch.Tensor:
    return (v.detach().float().reshape(-1) if isinstance(v, torch.Tensor) else torch.tensor([float(v)]))


def step_values(values: dict, d_outputs: str, loss: str) -> dict:
    """The meter's values for one step (means are taken over the steps between log lines)."""
    out = {k: _number(k, v) for k, v in values.items() if k not in ("d_real", "d_fake") and v is not None}
    real, fake = values.get("d_real"), values.get("d_fake")
    if real is None or fake is None:
        return out
    s_real, s_fake = _scores(real), _scores(fake)
    if d_outputs == "probabilities":
        out["d_real_prob"], out["d_fake_prob"] = float(s_real.mean()), float(s_fake.mean())
        threshold = 0.5
    else:
        out["d_real"], out["d_fake"] = float(s_real.mean()), float(s_fake.mean())
        if loss in ("ns", "minimax"):
            out["d_real_prob"] = float(torch.sigmoid(s_real).mean())
            out["d_fake_prob"] = float(torch.sigmoid(s_fake).mean())
        if loss == "wasserstein":
            out["wasserstein"] = out["d_real"] - out["d_fake"]
        threshold = 0.0
    per_sample = isinstance(real, torch.Tensor) and real.numel() > 1 and isinstance(fake, torch.Tensor) and fake.numel() > 1
    if per_sample and loss != "wasserstein":  # a critic's score has no decision threshold
        out["d_accuracy"] = 0.5 * (float((s_real > threshold).float().mean()) + float((s_fake <= threshold).float().mean()))
    return out


def learning_rates(optimizers: dict) -> dict:
    """``lr_g``/``lr_d`` from the first parameter group of each network's optimiser."""
    return {f"lr_{role.lower()}": float(opt.param_groups[0]["lr"]) for role, opt in optimizers.items()
            if opt.param_groups and isinstance(opt.param_groups[0].get("lr"), (int, float, torch.Tensor))}


def non_finite_losses(values: dict) -> list:
    return [k for k in ("d_loss", "g_loss") if k in values and not math.isfinite(values[k])]
