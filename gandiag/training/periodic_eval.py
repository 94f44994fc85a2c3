"""Evaluation during training, through the same pieces as ``gandiag evaluate``.

- 2D mixtures: the PacGAN/VEEGAN protocol (:func:`gandiag.data.mixtures.mixture_mode_stats`)
  on 2,500 generated points: modes captured, %HQ, reverse KL.
- Images: FID between the training data and generated images on the data
  source's own feature extractor (``digits`` → the bundled digits CNN), the
  real features extracted once per run and kept in memory; with a classifier
  extractor, also how many classes the generated images cover, counted as the
  ``mode_collapse`` verdict counts them (:func:`gandiag.diagnostics.classifier_modes.analyse`:
  confident predictions, each class's share against the real data's), so the
  trainer's line and ``gandiag evaluate`` say the same of one checkpoint.
- Sequences: the Fréchet distance between real and generated sequences on a
  feature extractor that takes sequences (``--eval-extractor``, else the data
  source's own, else ``sequence-stats``, else the first registered); with no
  such extractor the evaluation is skipped and the log says why.

Sampling uses its own seeded generator and the generator network in eval
mode, so evaluating never changes the training trajectory (a resumed run and
an uninterrupted one stay identical).
"""

from __future__ import annotations

from typing import Optional

import torch

from ..data.images import to_uint8_nchw
from ..errors import GandiagError
from ..data.mixtures import mixture_mode_stats
from ..diagnostics.classifier_modes import analyse as analyse_classes
from ..features.featureset import FeatureSet
from ..generator.contract import GeneratorContract
from ..metrics.fid import frechet_distance

EVAL_SEED_STRIDE = 1_000_003  # a prime: the evaluation at step t draws from seed*stride + t, never a training draw
EVAL_BATCH = 500  # generated samples per forward pass during the periodic evaluation
SEQUENCE_REAL_MAX = 10_000  # real sequences whose features the periodic evaluation keeps


def sample_generator(G, n: int, latent_dim: int, num_classes: int, seed: int, device="cpu", batch: int = EVAL_BATCH):
    """n samples from G (eval mode, no grad), labels cycling over the classes when conditional."""
    gen = torch.Generator().manual_seed(seed)
    was_training = G.training
    G.eval()
    out = []
    with torch.no_grad():
        for i in range(0, n, batch):
            b = min(batch, n - i)
            z = torch.randn(b, latent_dim, generator=gen).to(device)
            if num_classes:
                out.append(G(z, (torch.arange(i, i + b) % num_classes).to(device)))
            else:
                out.append(G(z))
    G.train(was_training)
    return torch.cat(out).cpu()


SEQUENCE_FALLBACK_EXTRACTOR = "sequence-stats"  # model-free: takes any sequences


def resolve_sequence_extractor(data, name: Optional[str], device: str):
    """(extractor, None) for sequences during training, or (None, why there is none): the named one, else the
    source's default, else the model-free ``sequence-stats``, else the first that takes sequences."""
    from ..features.extraction import source_default
    from ..plugins import registry

    reg = registry("feature extractor")
    takes = [n for n, spec in reg.items.items() if "sequences" in spec.kinds]
    if name is None:
        name = source_default(data.spec, "sequences") or (
            SEQUENCE_FALLBACK_EXTRACTOR if SEQUENCE_FALLBACK_EXTRACTOR in takes else next(iter(takes), None))
    if name is None:
        return None, "no feature extractor takes sequences"
    if name not in reg or "sequences" not in reg[name].kinds:
        return None, f"feature extractor {name!r} does not take sequences"
    try:
        return reg[name].build(None, device), None
    except (GandiagError, OSError) as exc:
        return None, f"feature extractor {name!r} is unavailable ({str(exc).splitlines()[0][:160]})"


def resolve_extractor(data, name: Optional[str], device: str):
    """The feature extractor for images during training: the named one, else the real source's default, else None.

    Unlike an evaluation, training never falls back to Inception: its weights may not be on the machine, and a
    run on the user's own images simply logs no FID.
    """
    if data.kind == "sequences":
        return resolve_sequence_extractor(data, name, device)[0]
    if data.kind != "images":
        return None
    from ..features.extraction import source_default
    from ..plugins import registry

    name = name or source_default(data.spec, "images")
    return registry("feature extractor")[name].build(None, device) if name else None


class PeriodicEval:
    def __init__(self, data, contract: GeneratorContract, n: int, extractor_name: Optional[str] = None,
                 device: str = "cpu"):
        self.data, self.contract, self.n, self.device = data, contract, n, device
        self.skipped = None  # why a sequence run logs no evaluation
        self.real = None
        if data.kind == "sequences":
            self.extractor, self.skipped = resolve_sequence_extractor(data, extractor_name, device)
            if self.extractor is not None:
                try:  # an extractor trained on one shape of data refuses another: skip, never stop training
                    self.real = self._features(data.x[:SEQUENCE_REAL_MAX].cpu())
                except GandiagError as exc:
                    self.extractor, self.skipped = None, f"{self.extractor.name}: {str(exc).splitlines()[0][:200]}"
            return
        self.extractor = resolve_extractor(data, extractor_name, device)
        if self.extractor is not None:
            self.real = self._features(data.real_uint8)

    @property
    def active(self) -> bool:
        return self.data.mixture is not None or self.extractor is not None

    def _features(self, uint8_images: torch.Tensor) -> FeatureSet:
        fs = FeatureSet()
        for i in range(0, len(uint8_images), EVAL_BATCH):
            fs.add(self.extractor(uint8_images[i : i + EVAL_BATCH].to(self.device)))
        return fs

    def __call__(self, G, step: int, seed: int) -> dict:
        if self.skipped:
            return {"skipped": self.skipped}
        if not self.active:
            return {}
        x = sample_generator(G, self.n, self.contract.latent_dim, self.contract.num_classes,
                             seed * EVAL_SEED_STRIDE + step, self.device)
        if not torch.isfinite(x).all():
            return {"non_finite": True}
        if self.data.mixture is not None:
            s = mixture_mode_stats(x.numpy(), self.data.mixture)
            return {k: s[k] for k in ("modes_captured", "modes_total", "high_quality_fraction", "reverse_kl", "counts")}
        sequences = self.data.kind == "sequences"  # generated (N, T, C) as they are: the trainer's nets are NTC
        fake = self._features(x if sequences else to_uint8_nchw(x, self.contract))
        fid = frechet_distance(self.real.stats("pool"), fake.stats("pool"),
                               self.real.features("pool"), fake.features("pool"))
        if sequences:  # a Fréchet distance on sequence features, not Inception's FID
            out = {"fd": fid["value"], "fd_extractor": self.extractor.name, "fd_n_fake": fake.n, "fd_n_real": self.real.n}
        else:
            out = {"fid": fid["value"], "fid_extractor": self.extractor.name, "fid_n_fake": fake.n,
                   "fid_n_real": self.real.n}
        if "logits" in fake.roles and "logits" in self.real.roles:  # classes as the mode_collapse verdict counts them
            classes = analyse_classes(fake.features("logits").numpy(), self.real.features("logits").numpy())
            out.update(class_counts=classes["counts"], classes_covered=classes["classes_covered"],
                       classes_total=classes["classes_total"], missing_classes=classes["missing_classes"])
        return out


def describe(result: dict) -> str:
    """One line for stderr."""
    if not result:
        return ""
    if result.get("non_finite"):
        return "generator output is NaN/Inf"
    if result.get("skipped"):
        return f"evaluation skipped: {result['skipped']}"
    if "modes_captured" in result:
        rkl = result["reverse_kl"]
        return (f"modes {result['modes_captured']}/{result['modes_total']}, "
                f"high quality {100 * result['high_quality_fraction']:.1f}%, "
                f"reverse KL {'n/a' if rkl is None else f'{rkl:.3f}'}")
    s = (f"FD [{result['fd_extractor']}] {result['fd']:.4g}" if "fd" in result
         else f"FID({result['fid_extractor']}) {result['fid']:.2f}")
    if "classes_covered" in result:
        s += f", classes covered {result['classes_covered']}/{result.get('classes_total', len(result['class_counts']))}"
    return s
