"""Feature networks for the bundled sequence sources: small TCNs shipped in the package, like ``digits``.

One network per source, each trained on that source's shape of data by
``scripts/train_sequence_features.py`` (weights in ``features/weights/``,
sha256 in the results, ``--feature-weights`` to use another file):

- ``sines`` (24 steps x 5 channels, TimeGAN's benchmark). Sines have no
  labels, so the network learns what makes a sine sequence what it is: it
  regresses every channel's frequency and phase (the two numbers each channel
  is drawn from, scaled to [0, 1]). Its 32-d penultimate layer is ``pool``.
- ``motion`` (100 steps x 6 channels, BasicMotions' accelerometer and
  gyroscope): classifies the 4 activities (badminton, running, standing,
  walking); its 16-d penultimate layer is ``pool`` (BasicMotions has 80
  sequences, so the embedding is kept small for FD), its 4 logits ``logits``
  (class coverage; :func:`classify` for the diagnostics).

Held-out numbers are in docs/sequences.md and printed by the training
script. A network trained on one shape is never applied to another: the
extractor checks (steps, channels) and refuses in one line naming
``sequence-stats``, which takes any sequences. Both give the ``series`` role
(the sequences themselves) for the sequence metrics, and label FID as FD.

The TCN: causal dilated ``Conv1d`` layers (kernel 3, dilations 1, 2, 4...
until the receptive field covers the sequence), each with a residual
connection and ReLU; the last layer's mean over time and its last step go to
a linear embedding (ReLU), then the head. Inputs are standardised per
channel with the training data's mean and std, stored with the weights.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import FeatureExtractorError
from ..safety.files import require_input
from .extractor import ExtractorSpec, sha256_file
from .sequence_stats import SEQUENCE_LABELS, check_sequences, sequences_to_series

WEIGHTS_DIR = Path(__file__).parent / "weights"


@dataclass(frozen=True)
class NetConfig:
    name: str
    steps: int
    channels: int
    hidden: int
    dilations: tuple
    embed: int
    outputs: int
    classes: tuple  # class names when the head classifies, else ()
    weights_file: str
    what: str  # the data, for messages
    dropout: float = 0.0  # before the head, in training only

    @property
    def default_weights(self) -> Path:
        return WEIGHTS_DIR / self.weights_file


SINES = NetConfig("sines", 24, 5, 32, (1, 2, 4, 8), 32, 10, (), "sines_tcn.pt",
                  "TimeGAN's sines (24 steps x 5 channels)", dropout=0.0)
MOTION = NetConfig("motion", 100, 6, 32, (1, 2, 4, 8, 16, 32), 16, 4,
                   ("badminton", "running", "standing", "walking"), "motion_tcn.pt",
                   "BasicMotions (100 steps x 6 channels: accelerometer and gyroscope)", dropout=0.2)
CONFIGS = {c.name: c for c in (SINES, MOTION)}


class CausalConv(nn.Module):
    def __init__(self, cin: int, cout: int, dilation: int, kernel: int = 3):
        super().__init__()
        self.pad = (kernel - 1) * dilation
        self.conv = nn.Conv1d(cin, cout, kernel, dilation=dilation)

    def forward(self, x):
        return self.conv(F.pad(x, (self.pad, 0)))


class SequenceTCN(nn.Module):
    """(B, T, C) → (embedding (B, embed), head output (B, outputs))."""

    def __init__(self, cfg: NetConfig):
        super().__init__()
        self.register_buffer("mean", torch.zeros(cfg.channels))
        self.register_buffer("std", torch.ones(cfg.channels))
        self.inp = nn.Conv1d(cfg.channels, cfg.hidden, 1)
        self.layers = nn.ModuleList(CausalConv(cfg.hidden, cfg.hidden, d) for d in cfg.dilations)
        self.embed = nn.Linear(2 * cfg.hidden, cfg.embed)
        self.dropout = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.embed, cfg.outputs)

    def forward(self, x: torch.Tensor):
        x = ((x - self.mean) / self.std).transpose(1, 2)  # (B, C, T)
        h = self.inp(x)
        for layer in self.layers:
            h = h + F.relu(layer(h))
        pooled = torch.cat([h.mean(2), h[:, :, -1]], dim=1)
        emb = F.relu(self.embed(pooled))
        return emb, self.head(self.dropout(emb))


def load_net(cfg: NetConfig, weights_path=None) -> tuple:
    """(network in eval mode, path, sha256) from the shipped weights or ``weights_path``."""
    path = Path(weights_path) if weights_path is not None else cfg.default_weights
    if not path.exists():
        raise FeatureExtractorError(f"{cfg.name} feature network weights not found at {path}; run "
                                    f"scripts/train_sequence_features.py --which {cfg.name} to make them")
    require_input(path, "a weights file", error=FeatureExtractorError)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        net = SequenceTCN(cfg)
        net.load_state_dict({k: v.float() for k, v in state.items()})
    except Exception as e:  # unpickling, truncation, wrong keys/shapes: all mean "bad file"
        raise FeatureExtractorError(f"{cfg.name} feature network weights at {path} are unreadable or not for "
                                    f"this network ({type(e).__name__}); re-run "
                                    "scripts/train_sequence_features.py") from None
    return net.eval(), str(path), sha256_file(path)


class SequenceNetExtractor:
    kinds = ("sequences",)
    metric_labels = SEQUENCE_LABELS

    def __init__(self, cfg: NetConfig, weights_path=None, device: str = "cpu"):
        self.cfg = cfg
        self.name = cfg.name
        self.roles = {"pool": cfg.embed, "series": None, **({"logits": len(cfg.classes)} if cfg.classes else {})}
        self.preprocessing = (f"(N, {cfg.steps}, {cfg.channels}) sequences only, standardised per channel with "
                              "the training data's mean and std")
        net, self.weights_path, self.weights_sha256 = load_net(cfg, weights_path)
        self.device = torch.device(device)
        self.net = net.to(self.device)

    def check_shape(self, batch: torch.Tensor) -> None:
        check_sequences(batch, self.name)
        steps, channels = int(batch.shape[1]), int(batch.shape[2])
        if (steps, channels) != (self.cfg.steps, self.cfg.channels):
            other = [c.name for c in CONFIGS.values() if (c.steps, c.channels) == (steps, channels)]
            raise FeatureExtractorError(
                f"the {self.name} feature network was trained on {self.cfg.what}; these sequences are {steps} "
                f"steps x {channels} channels: use --feature-extractor "
                + (f"{other[0]} or " if other else "") + "sequence-stats (any sequences)")

    def __call__(self, batch: torch.Tensor) -> dict:
        self.check_shape(batch)
        with torch.no_grad():
            x = batch.to(self.device, torch.float32)
            emb, out = self.net(x)
        feats = {"pool": emb.float(), "series": sequences_to_series(x)}
        if self.cfg.classes:
            feats["logits"] = out.float()
        return feats

    def predict(self, batch: torch.Tensor) -> torch.Tensor:
        """The head's output: logits (motion) or the regressed parameters (sines: frequency then phase per
        channel, in units of 0.1)."""
        self.check_shape(batch)
        with torch.no_grad():
            return self.net(batch.to(self.device, torch.float32))[1].cpu()

    def classify(self, batch: torch.Tensor) -> np.ndarray:
        if not self.cfg.classes:
            raise FeatureExtractorError(f"the {self.name} feature network does not classify")
        return self.predict(batch).argmax(dim=1).numpy()


@functools.lru_cache(maxsize=None)
def _default_extractor(name: str) -> SequenceNetExtractor:
    return SequenceNetExtractor(CONFIGS[name])


def classify(batch: torch.Tensor, extractor: Optional[SequenceNetExtractor] = None) -> np.ndarray:
    """Predicted activity per BasicMotions sequence (int64 index into ``MOTION.classes``: badminton, running,
    standing, walking — the ``basicmotions`` source's label order), with the shipped weights unless told otherwise."""
    return (extractor or _default_extractor("motion")).classify(batch)


def _spec(cfg: NetConfig, description: str) -> ExtractorSpec:
    return ExtractorSpec(cfg.name, description, ("sequences",),
                         lambda weights_path=None, device="cpu": SequenceNetExtractor(cfg, weights_path, device),
                         metric_labels=SEQUENCE_LABELS)


SINES_SPEC = _spec(SINES, "small TCN trained on TimeGAN's sines to regress each channel's frequency and phase "
                          "(32-d pool; 24 steps x 5 channels only)")
MOTION_SPEC = _spec(MOTION, "small TCN trained on BasicMotions' 4 activities (16-d pool, 4 logits; 100 steps x "
                            "6 channels only)")
