"""The named training configurations: data, not copies of the loop.

A variant fixes the loss, the optimiser and its settings, how many critic
steps precede each generator step, and the Lipschitz device (weight clipping,
gradient penalty, spectral norm). Everything a variant sets can be overridden
by an option (``--lr-g``, ``--n-critic``, ``--loss``...); the resolved
configuration, not the variant name alone, is what a checkpoint records.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Optional

from ..errors import GandiagError, UnknownNameError

LOSSES = ("ns", "minimax", "wasserstein", "ls", "hinge")


@dataclass(frozen=True)
class Variant:
    name: str
    description: str
    loss: str  # one of LOSSES
    optimizer: str = "adam"  # adam | rmsprop
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple = (0.5, 0.999)
    n_critic: int = 1
    weight_clip: Optional[float] = None  # WGAN: clamp D weights to ±c after each step
    gp_weight: float = 0.0  # WGAN-GP: λ of the gradient penalty on interpolates
    spectral_norm: bool = False
    conditional: bool = False
    images_only: bool = False
    reference: str = ""
    sequences_only: bool = False
    arch: Optional[str] = None  # sequences: "tcn" | "rnn" (None: --arch, else tcn)
    auto_conditional: bool = False  # conditional whenever the data has class labels (--unconditional: never)

    def to_json(self) -> dict:
        d = asdict(self)
        d["betas"] = list(self.betas)
        return d


VARIANTS = {v.name: v for v in [
    Variant("gan", "non-saturating GAN (Goodfellow et al. 2014); --loss minimax for the original objective; "
            "MLPs for points, DCGAN-style nets for images", "ns",
            reference="Goodfellow et al., Generative Adversarial Nets, 2014"),
    Variant("dcgan", "DCGAN: conv nets with batch norm in G, Adam(2e-4, β1=0.5), non-saturating loss (images only)",
            "ns", images_only=True, reference="Radford et al., DCGAN, 2016"),
    Variant("cgan", "class-conditional GAN: labels (one-hot) into G and D, non-saturating loss; on a 2D "
            "mixture the classes are its modes", "ns", conditional=True, reference="Mirza & Osindero, 2014"),
    Variant("wgan", "Wasserstein GAN: critic weights clipped to ±0.01, RMSprop 5e-5, 5 critic steps", "wasserstein",
            optimizer="rmsprop", lr_g=5e-5, lr_d=5e-5, n_critic=5, weight_clip=0.01, reference="Arjovsky et al., 2017"),
    Variant("wgan-gp", "WGAN with gradient penalty λ=10 on interpolates, 5 critic steps, Adam(1e-4, β=(0.5, 0.9))",
            "wasserstein", lr_g=1e-4, lr_d=1e-4, betas=(0.5, 0.9), n_critic=5, gp_weight=10.0,
            reference="Gulrajani et al., Improved Training of Wasserstein GANs, 2017"),
    Variant("lsgan", "least-squares GAN (targets a=0, b=c=1)", "ls", reference="Mao et al., LSGAN, 2017"),
    Variant("hinge-sn", "hinge loss with spectral normalisation in D (SN-GAN setting B: Adam(2e-4, β=(0.5, 0.999)), "
            "1 critic step)", "hinge", spectral_norm=True, reference="Miyato et al., SN-GAN, 2018"),
    Variant("tcn-gan", "sequences: causal dilated TCN generator and discriminator (per-step noise), non-saturating "
            "loss, conditional on class labels when the data has them", "ns", sequences_only=True, arch="tcn",
            auto_conditional=True, reference="Bai et al., TCN, 2018; Wiese et al., Quant GANs, 2020"),
    Variant("rnn-gan", "sequences: LSTM or GRU generator and discriminator (--cell), noise and labels at every step, "
            "non-saturating loss, conditional on class labels when the data has them", "ns", sequences_only=True,
            arch="rnn", auto_conditional=True,
            reference="Mogren, C-RNN-GAN, 2016; Esteban et al., RCGAN, 2017"),
]}
# Translators between the two domains of a bundled pair (digits-inverted, ...): a loop of their own
# (gandiag.training.cyclegan), not the one of VARIANTS, which trains a generator of latents.
TRANSLATION_VARIANTS = {v.name: v for v in [
    Variant("cyclegan", "CycleGAN: translators A->B and B->A with a discriminator each, least-squares loss, cycle "
            "L1 (weight 10), identity L1 by pair (--identity-weight), history pools of 50, "
            "Adam(2e-4, β=(0.5, 0.999)) (points 1e-3); trains on a bundled pair of domains (digits-inverted, "
            "digits-thick, ring8-rotated)", "ls",
            reference="Zhu et al., Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial "
                      "Networks, 2017"),
]}
ARCHS = ("tcn", "rnn")  # sequence network families (--arch)
CELLS = ("lstm", "gru")  # recurrent cells of rnn nets (--cell)


@dataclass
class Options:
    """Everything besides the variant: data size, tricks, schedule, bookkeeping. None = variant/data default."""

    steps: Optional[int] = None  # generator updates
    seed: int = 0
    batch_size: Optional[int] = None  # discriminator decisions per step (groups); samples = batch_size * pack
    pack: int = 1
    latent_dim: Optional[int] = None
    width: Optional[int] = None
    depth: int = 3  # MLP hidden layers
    d_input_scale: Optional[float] = None  # points: D's input multiplier (default: mixture mode std -> 0.1)
    loss: Optional[str] = None
    lr_g: Optional[float] = None
    lr_d: Optional[float] = None
    n_critic: Optional[int] = None
    label_smoothing: float = 0.0  # one-sided: real target 1-s (ns, minimax, ls)
    instance_noise: float = 0.0  # std of Gaussian noise on D inputs, annealed linearly to 0
    lr_schedule: Optional[str] = None  # constant | step | cosine (default: cosine for points, constant for images)
    lr_step_every: Optional[int] = None  # step schedule: halve every this many steps (default steps//3)
    lr_step_gamma: float = 0.5
    grad_clip: float = 0.0  # max global gradient norm for G and D (0 = off)
    ema: Optional[float] = None  # decay of the EMA of G's weights (0 = off; default: 0.999 for points, off for images)
    log_every: int = 50
    eval_every: Optional[int] = None  # default: steps // 10
    eval_samples: Optional[int] = None  # default: 2500 points / 1000 images
    ckpt_every: int = 500
    exclude_classes: list = field(default_factory=list)  # drop these labels from the training data
    device: str = "cpu"
    threads: int = 1  # torch CPU threads; small nets train fastest on one, and a shared CPU stays usable
    # Sequences, and overrides of what a variant fixes (None = the variant's / the data's default):
    arch: Optional[str] = None  # tcn | rnn: the sequence networks (tcn-gan/rnn-gan fix it; other variants: tcn)
    cell: Optional[str] = None  # lstm | gru (rnn nets; default lstm)
    noise_dim: Optional[int] = None  # sequences: noise values per step (latent_dim is then the global code's size)
    spectral_norm: Optional[bool] = None  # --sn/--no-sn: spectral norm on every D layer
    conditional: Optional[bool] = None  # --conditional/--unconditional: class labels into G and D

    def to_json(self) -> dict:
        return asdict(self)


SCHEDULES = ("constant", "step", "cosine")


def get_variant(name: str) -> Variant:
    if name not in VARIANTS:
        raise UnknownNameError("training variant", name, [*VARIANTS, *TRANSLATION_VARIANTS])
    return VARIANTS[name]


def check_data(variant: str, data: str) -> None:
    """A translation variant trains on a bundled pair of domains, and every other variant on anything else:
    the pair's name alone is no real-data source a GAN of latents could sample (its sides are)."""
    from ..data import domains

    parsed = domains.parse(data)
    pairs = ", ".join(domains.PAIRS)
    if variant in TRANSLATION_VARIANTS and (parsed is None or parsed[1] is not None):
        side = f": pass the pair's name, {parsed[0].name}, not one side" if parsed else ""
        raise GandiagError(f"{variant} trains translators on a bundled pair of domains ({pairs}); "
                           f"--data {data!r} is not one{side}")
    if variant not in TRANSLATION_VARIANTS and parsed is not None and parsed[1] is None:
        raise GandiagError(f"--data {data!r} is a pair of domains for translation: train it with `gandiag train "
                           f"cyclegan`; {variant} can train on one side, --data {data}:a or {data}:b")


MAX_PACK = 64  # PacGAN packs 2-4 samples; far beyond that D's input is no longer a sample of anything


def check_numbers_and_device(o) -> None:
    """Every number of an options dataclass finite (a NaN learning rate is bad input, not a crash deep in the
    optimiser), and its device one this machine has."""
    import dataclasses
    import math

    from ..options import check_device

    for f in dataclasses.fields(o):
        v = getattr(o, f.name)
        if isinstance(v, float) and not math.isfinite(v):
            raise GandiagError(f"--{f.name.replace('_', '-')} must be a finite number, got {v}")
    check_device(o.device)


def check_options(o: Options) -> None:
    check_numbers_and_device(o)
    for name in ("lr_g", "lr_d"):
        if getattr(o, name) is not None and getattr(o, name) <= 0:
            raise GandiagError(f"--{name.replace('_', '-')} must be positive, got {getattr(o, name)}")
    for name in ("instance_noise", "grad_clip"):
        if getattr(o, name) < 0:
            raise GandiagError(f"--{name.replace('_', '-')} must not be negative, got {getattr(o, name)}")
    if not 1 <= o.pack <= MAX_PACK:
        raise GandiagError(f"--pack must be between 1 and {MAX_PACK}, got {o.pack}")
    if o.loss is not None and o.loss not in LOSSES:
        raise GandiagError(f"--loss {o.loss!r} is not one of {', '.join(LOSSES)}")
    if o.lr_schedule is not None and o.lr_schedule not in SCHEDULES:
        raise GandiagError(f"--lr-schedule {o.lr_schedule!r} is not one of {', '.join(SCHEDULES)}")
    if not 0 <= o.label_smoothing < 1:
        raise GandiagError(f"--label-smoothing must be in [0, 1), got {o.label_smoothing}")
    if o.ema is not None and not 0 <= o.ema < 1:
        raise GandiagError(f"--ema must be a decay in [0, 1), got {o.ema}")
    for name in ("log_every", "ckpt_every", "threads"):
        if getattr(o, name) < 1:
            raise GandiagError(f"--{name.replace('_', '-')} must be positive, got {getattr(o, name)}")
    if o.batch_size is not None and o.batch_size < 1:
        raise GandiagError(f"--batch-size must be positive, got {o.batch_size}")
    if o.steps is not None and o.steps < 1:
        raise GandiagError(f"--steps must be positive, got {o.steps}")
    if o.arch is not None and o.arch not in ARCHS:
        raise GandiagError(f"--arch {o.arch!r} is not one of {', '.join(ARCHS)}")
    if o.cell is not None and o.cell not in CELLS:
        raise GandiagError(f"--cell {o.cell!r} is not one of {', '.join(CELLS)}")
    if o.noise_dim is not None and o.noise_dim < 1:
        raise GandiagError(f"--noise-dim must be positive, got {o.noise_dim}")
