"""The ``digits`` feature extractor: a small CNN trained on scikit-learn's 8x8 digits.

Inception features mean little for 8x8 grey digits, so the bundled real source
gets its own network, small enough to ship in the package and to run on a CPU.
Its 64-d penultimate layer is the ``pool`` role (FID, KID, precision/recall)
and its 10 logits the ``logits`` role (IS, class coverage for mode collapse).

Generators rarely emit 8x8 grey images, so :func:`preprocess` brings any size
and grey or RGB to the form the network was trained on; training also feeds it
upscaled round trips, so a generator's 32x32 RGB digit is read like the original.
The weights are made by ``scripts/train_digits_classifier.py``.
"""

from __future__ import annotations

import functools
import zipfile
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import FeatureExtractorError
from ..safety.files import require_input
from ..safety.torch_archive import check_weights_archive
from .extractor import ExtractorSpec, sha256_file

DEFAULT_WEIGHTS = Path(__file__).parent / "weights" / "digits_classifier.pt"
SIZE = 8
EMBED_DIM = 64
NUM_CLASSES = 10
HELDOUT_FRACTION = 0.25
SPLIT_SEED = 0


class DigitsNet(nn.Module):
    """Two conv stages (8x8 -> 4x4 -> 2x2), then a 64-d embedding and 10 logits."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.embed = nn.Linear(64 * 2 * 2, EMBED_DIM)
        self.dropout = nn.Dropout(0.3)  # active in training only
        self.head = nn.Linear(EMBED_DIM, NUM_CLASSES)

    def forward(self, x: torch.Tensor):
        # Centre the [0,1] input around 0: the conv biases then start near where they end.
        h = self.features(x - 0.5).flatten(1)
        emb = F.relu(self.embed(h))
        return emb, self.head(self.dropout(emb))


def preprocess(batch: torch.Tensor) -> torch.Tensor:
    """uint8 NCHW, any size, grey or RGB -> float (N,1,8,8) in [0,1].

    Area pooling when the size is a multiple of 8 undoes a generator's
    upsampling exactly in the common case; other sizes get an antialiased
    bilinear resize so that fine texture is averaged rather than aliased.
    """
    if batch.dim() != 4 or batch.shape[1] not in (1, 3):
        raise FeatureExtractorError(
            f"the digits extractor takes images shaped (N, 1 or 3, H, W), got {tuple(batch.shape)}"
        )
    x = batch.float().div_(255.0).mean(dim=1, keepdim=True)
    h, w = x.shape[-2:]
    if (h, w) == (SIZE, SIZE):
        return x
    if h % SIZE == 0 and w % SIZE == 0:
        return F.interpolate(x, size=(SIZE, SIZE), mode="area")
    return F.interpolate(x, size=(SIZE, SIZE), mode="bilinear", align_corners=False, antialias=True)


def digits_uint8():
    """sklearn's digits exactly as the ``digits`` real source serves them: (uint8 (N,1,8,8), labels)."""
    from ..data.sources import DigitsSource

    s = DigitsSource().load("digits")
    return s.data, np.asarray(s.labels)


def heldout_split():
    """The fixed stratified (train, held-out) index split the shipped weights were judged on."""
    from sklearn.model_selection import train_test_split

    _, labels = digits_uint8()
    idx = np.arange(len(labels))
    train, test = train_test_split(idx, test_size=HELDOUT_FRACTION, stratify=labels, random_state=SPLIT_SEED)
    return np.sort(train), np.sort(test)


class DigitsExtractor:
    name = "digits"
    roles = {"pool": EMBED_DIM, "logits": NUM_CLASSES}
    kinds = ("images",)
    preprocessing = "grey (channel mean), area/bilinear-antialias resize to 8x8, /255"

    def __init__(self, weights_path=None, device: str = "cpu"):
        path = Path(weights_path) if weights_path is not None else DEFAULT_WEIGHTS
        if not path.exists() and weights_path is not None:  # the user's path: a typo, not a missing package file
            raise FeatureExtractorError(f"--feature-weights {path}: no such file (the digits classifier's weights)")
        if not path.exists():
            raise FeatureExtractorError(f"digits classifier weights not found at {path}; "
                                        "run scripts/train_digits_classifier.py to make them")
        require_input(path, "a weights file", error=FeatureExtractorError)
        if zipfile.is_zipfile(path):  # members sized before torch.load allocates them
            check_weights_archive(path, "digits classifier weights")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            net = DigitsNet()
            net.load_state_dict(state)
        except Exception as e:  # unpickling, truncation, wrong keys/shapes: all mean "bad file"
            raise FeatureExtractorError(f"digits classifier weights at {path} are unreadable or "
                                        f"not for this network ({type(e).__name__}); re-run "
                                        "scripts/train_digits_classifier.py") from None
        self.weights_path = str(path)
        self.weights_sha256 = sha256_file(path)
        self.device = torch.device(device)
        self.net = net.to(self.device).eval()

    def __call__(self, batch: torch.Tensor) -> dict:
        with torch.no_grad():
            x = preprocess(batch.to(self.device))
            emb, logits = self.net(x)
        return {"pool": emb.float(), "logits": logits.float()}

    def classify(self, batch: torch.Tensor) -> np.ndarray:
        return self(batch)["logits"].argmax(dim=1).cpu().numpy()


def build(weights_path: Optional[str] = None, device: str = "cpu") -> DigitsExtractor:
    return DigitsExtractor(weights_path, device)


@functools.lru_cache(maxsize=None)
def _default_extractor() -> DigitsExtractor:
    return DigitsExtractor()


def classify(batch_uint8: torch.Tensor, extractor: Optional[DigitsExtractor] = None) -> np.ndarray:
    """Predicted digit per image (int64), with the shipped weights unless told otherwise."""
    return (extractor or _default_extractor()).classify(batch_uint8)


SPEC = ExtractorSpec(
    name="digits",
    description="small CNN trained on scikit-learn's 8x8 digits (64-d pool, 10 logits; any size/grey or RGB)",
    kinds=("images",),
    build=build,
)
