"""The settings a training run actually uses: variant defaults, data defaults, then the user's options.

:func:`resolve` turns a variant, the user's options and the data into a
:class:`Resolved`; :func:`build_nets` sizes the networks to the data;
:func:`learning_rate`, :func:`ema_decay` and :func:`make_optimizer` are the
schedule, the EMA warm-up and the optimiser every variant shares.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Optional

import torch

from ..errors import GandiagError
from .data import TrainingData
from .variants import Options, Variant

# Defaults that depend on the data rather than the variant.
POINT_DEFAULTS = {"latent_dim": 8, "width": 128, "batch_size": 64, "steps": 14000, "eval_samples": 2500,
                  "adam_lr": 1e-3, "lr_schedule": "cosine", "ema": 0.999}
IMAGE_DEFAULTS = {"latent_dim": 32, "width": 32, "batch_size": 64, "steps": 1500, "eval_samples": 1000,
                  "adam_lr": None, "lr_schedule": "constant", "ema": 0.0}
# Named per-data configurations on top of POINT_DEFAULTS, keyed by the data source (docs/training.md).
# grid25: its 25 modes only sharpen late in the cosine decay, so it trains twice as long as ring8 with a slower
# EMA; its D sees the grid at scale 0.25 (±1) instead of 0.1/σ = 2, and Adam runs at 2e-3. Chosen by
# benchmarks/sweep_trainer.py (docs/training.md): D input scale 2 / 1 / 0.5 / 0.25 gave 49 / 49 / 53 / 68% HQ over
# 3-10 seeds at lr 1e-3, and 2e-3 with scale 0.25 75% over 4 seeds (85-89% on this machine), 24-25 modes each.
DATA_DEFAULTS = {
    "grid25": {"steps": 30000, "ema": 0.9995, "d_input_scale": 0.25, "adam_lr": 2e-3},
}
# Sequences (sines, motion data, a .npz of (N, T, C)): the TCN/RNN nets of gandiag.training.sequence_nets.
# latent_dim is the size of the global code repeated at every step, noise_dim the noise values per step; the
# generator's latent holds both (latent_dim + steps * noise_dim values). docs/training.md, "Sequence variants".
SEQUENCE_DEFAULTS = {"latent_dim": 16, "noise_dim": 4, "width": 64, "batch_size": 64, "steps": 2000,
                     "eval_samples": 1000, "adam_lr": 1e-3, "lr_schedule": "cosine", "ema": 0.999}
# Named per-data configurations on top of SEQUENCE_DEFAULTS (docs/training.md). basicmotions: 80 sequences of
# 100 steps, where 64-wide nets cost ~0.3 s a step here; 32-wide ones cost about half. Conditional rnn-gan covered
# 2 of the 4 activities after 1000 steps and all 4 after 2000 (seed 0); tcn-gan got all 4 by 1000 steps on seed 0.
SEQUENCE_DATA_DEFAULTS = {
    "basicmotions": {"steps": 2000, "width": 32},
}
RNN_LAYERS = 2  # recurrent layers of the rnn nets
# Output activation from the training data's range: [0, 1] (TimeGAN's min-max scaled sines) → sigmoid,
# [-1, 1] → tanh, anything else (standardised sensor data) → linear; recorded as the contract's output range.
OUTPUT_RANGES = {"sigmoid": "0,1", "tanh": "-1,1", "linear": None}
# On points, variants whose published setting is Adam at 2e-4 (gan, cgan, lsgan, hinge-sn) train at 1e-3
# with a cosine decay instead: the 2D mixtures' 0.01-wide modes are only reached within a CPU budget that way.
# wgan and wgan-gp keep their published learning rates everywhere.


@dataclass
class Resolved:
    """The settings actually used: variant defaults, data defaults, then the user's options."""

    loss: str
    lr_schedule: str
    lr_g: float
    lr_d: float
    n_critic: int
    steps: int
    batch_size: int
    latent_dim: int
    width: int
    eval_every: int
    eval_samples: int
    d_input_scale: float
    ema: float = 0.0
    # sequences only (None otherwise): latent_dim above is the whole latent, global_dim + steps * noise_dim
    arch: Optional[str] = None
    cell: Optional[str] = None
    global_dim: Optional[int] = None
    noise_dim: Optional[int] = None
    output: Optional[str] = None  # sigmoid | tanh | linear


def default_input_scale(data: TrainingData) -> float:
    """Points: scale D's input so that a mixture mode's std becomes 0.1 (1 for images and points of unknown scale)."""
    return 0.1 / data.mixture.std if data.kind == "points" and data.mixture is not None else 1.0


def output_activation(data: TrainingData) -> str:
    """sigmoid for sequences in [0, 1], tanh for [-1, 1], linear otherwise (standardised or unbounded data)."""
    lo, hi = data.value_range
    if lo >= 0.0 and hi <= 1.0:
        return "sigmoid"
    if lo >= -1.0 and hi <= 1.0:
        return "tanh"
    return "linear"


def effective_variant(v: Variant, o: Options, data: TrainingData) -> Variant:
    """The variant with the options that override what it fixes (--sn, --conditional) and, for the sequence
    variants, conditioning on the data's labels when it has some; checkpoints record this one."""
    conditional = v.conditional or (v.auto_conditional and data.num_classes > 0)
    return replace(v, spectral_norm=v.spectral_norm if o.spectral_norm is None else bool(o.spectral_norm),
                   conditional=conditional if o.conditional is None else bool(o.conditional))


def _check_kind(v: Variant, o: Options, data: TrainingData) -> None:
    if v.sequences_only and data.kind != "sequences":
        raise GandiagError(f"variant {v.name!r} trains on sequences ((N, T, C) data such as sines), but "
                           f"{data.spec!r} holds {data.kind}")
    if data.kind != "sequences":
        for name, value in (("arch", o.arch), ("cell", o.cell), ("noise_dim", o.noise_dim)):
            if value is not None:
                raise GandiagError(f"--{name.replace('_', '-')} is for sequence data; {data.spec!r} holds {data.kind}")
    elif v.images_only:
        raise GandiagError(f"variant {v.name!r} is convolutional and trains on images; use tcn-gan or rnn-gan "
                           "for sequences")
    elif v.arch and o.arch and o.arch != v.arch:
        raise GandiagError(f"variant {v.name!r} uses {v.arch} networks; --arch {o.arch} contradicts it")


def resolve(v: Variant, o: Options, data: TrainingData) -> Resolved:
    _check_kind(v, o, data)
    if data.kind == "sequences":
        return _resolve_sequences(v, o, data)
    d = {**POINT_DEFAULTS, **DATA_DEFAULTS.get(data.spec, {})} if data.kind == "points" else IMAGE_DEFAULTS
    steps = o.steps or d["steps"]
    pick = lambda mine, default: default if mine is None else mine  # noqa: E731
    fast = d["adam_lr"] is not None and v.optimizer == "adam" and v.lr_g == v.lr_d == 2e-4
    lr_g, lr_d = (d["adam_lr"], d["adam_lr"]) if fast else (v.lr_g, v.lr_d)
    return Resolved(
        loss=pick(o.loss, v.loss), lr_g=pick(o.lr_g, lr_g), lr_d=pick(o.lr_d, lr_d),
        lr_schedule=pick(o.lr_schedule, d["lr_schedule"]),
        n_critic=pick(o.n_critic, v.n_critic), steps=steps, batch_size=pick(o.batch_size, d["batch_size"]),
        latent_dim=pick(o.latent_dim, d["latent_dim"]), width=pick(o.width, d["width"]),
        eval_every=pick(o.eval_every, max(steps // 10, 1)), eval_samples=pick(o.eval_samples, d["eval_samples"]),
        d_input_scale=pick(o.d_input_scale, d.get("d_input_scale") or default_input_scale(data)),
        ema=pick(o.ema, d["ema"]),
    )


def _resolve_sequences(v: Variant, o: Options, data: TrainingData) -> Resolved:
    d = {**SEQUENCE_DEFAULTS, **SEQUENCE_DATA_DEFAULTS.get(data.spec, {})}
    steps = o.steps or d["steps"]
    pick = lambda mine, default: default if mine is None else mine  # noqa: E731
    fast = v.optimizer == "adam" and v.lr_g == v.lr_d == 2e-4
    lr_g, lr_d = (d["adam_lr"], d["adam_lr"]) if fast else (v.lr_g, v.lr_d)
    global_dim, noise_dim = pick(o.latent_dim, d["latent_dim"]), pick(o.noise_dim, d["noise_dim"])
    if global_dim < 0:
        raise GandiagError(f"--latent-dim (the global code of a sequence generator) must be 0 or more, got {global_dim}")
    arch = v.arch or o.arch or "tcn"
    return Resolved(
        loss=pick(o.loss, v.loss), lr_g=pick(o.lr_g, lr_g), lr_d=pick(o.lr_d, lr_d),
        lr_schedule=pick(o.lr_schedule, d["lr_schedule"]),
        n_critic=pick(o.n_critic, v.n_critic), steps=steps, batch_size=pick(o.batch_size, d["batch_size"]),
        latent_dim=global_dim + data.sample_shape[0] * noise_dim, width=pick(o.width, d["width"]),
        eval_every=pick(o.eval_every, max(steps // 10, 1)), eval_samples=pick(o.eval_samples, d["eval_samples"]),
        d_input_scale=pick(o.d_input_scale, 1.0), ema=pick(o.ema, d["ema"]),
        arch=arch, cell=(o.cell or "lstm") if arch == "rnn" else None, global_dim=global_dim, noise_dim=noise_dim,
        output=output_activation(data),
    )


def build_nets(v: Variant, o: Options, r: Resolved, data: TrainingData):
    """(generator arch, kwargs), (discriminator arch, kwargs) sized to the data."""
    k = data.num_classes if v.conditional else 0
    if v.conditional and not k:
        raise GandiagError(f"variant {v.name!r} is class-conditional but {data.spec!r} has no class labels")
    if data.kind == "sequences":
        return _sequence_nets(v, o, r, data, k)
    if data.kind == "points":
        if v.images_only:
            raise GandiagError(f"variant {v.name!r} is convolutional and trains on images; use 'gan' for 2D points")
        dim = data.sample_shape[0]
        g = ("mlp-generator", {"latent_dim": r.latent_dim, "out_dim": dim, "hidden": r.width, "depth": o.depth, "num_classes": k})
        d = ("mlp-discriminator", {"in_dim": dim, "hidden": r.width, "depth": o.depth, "pack": o.pack, "num_classes": k,
                                   "spectral_norm": v.spectral_norm, "input_scale": r.d_input_scale})
    else:
        c, size = data.sample_shape[0], data.sample_shape[1]
        g = ("dcgan-generator", {"latent_dim": r.latent_dim, "channels": c, "size": size, "width": r.width, "num_classes": k})
        d = ("dcgan-discriminator", {"channels": c, "size": size, "width": r.width, "pack": o.pack, "num_classes": k,
                                     "spectral_norm": v.spectral_norm})
    return g, d


def _sequence_nets(v: Variant, o: Options, r: Resolved, data: TrainingData, k: int):
    """TCN or RNN nets (gandiag.training.sequence_nets) for (N, T, C) data."""
    steps, channels = data.sample_shape
    g = {"latent_dim": r.latent_dim, "steps": steps, "channels": channels, "noise_dim": r.noise_dim,
         "width": r.width, "num_classes": k, "output": r.output}
    d = {"steps": steps, "channels": channels, "width": r.width, "pack": o.pack, "num_classes": k,
         "spectral_norm": v.spectral_norm}
    if r.output == "linear":  # unbounded data: G and D work in standard units (sequence_nets._Scale)
        stats = {"data_mean": data.channel_mean, "data_std": data.channel_std}
        g, d = {**g, **stats}, {**d, **stats}
    if r.arch == "rnn":
        rnn = {"layers": RNN_LAYERS, "cell": r.cell}
        return ("rnn-generator", {**g, **rnn}), ("rnn-discriminator", {**d, **rnn})
    return ("tcn-generator", g), ("tcn-discriminator", d)


def learning_rate(base: float, step: int, r: Resolved, o: Options) -> float:
    if r.lr_schedule == "step":
        every = o.lr_step_every or max(r.steps // 3, 1)
        return base * o.lr_step_gamma ** ((step - 1) // every)
    if r.lr_schedule == "cosine":
        return base * 0.5 * (1 + math.cos(math.pi * (step - 1) / r.steps))
    return base


def ema_decay(target: float, step: int) -> float:
    """EMA decay at a step, warmed up as TensorFlow's ExponentialMovingAverage(num_updates): a short run's
    average is not dominated by the initial weights, and from step ≈ 9/(1-target) on it is the target."""
    return min(target, step / (step + 9))


def make_optimizer(v: Variant, params, lr: float):
    if v.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, foreach=True)
    # foreach: one kernel per op over all tensors instead of one per tensor (Python overhead dominates tiny nets)
    return torch.optim.Adam(params, lr=lr, betas=tuple(v.betas), foreach=True)
