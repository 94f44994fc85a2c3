"""Inception-v3 features through torch-fidelity's TF-1.x-compatible port.

Using the very network torch-fidelity uses (including its TF-compatible
bilinear resize to 299×299) is what makes our FID/KID/IS equal the published
protocol's numbers to float precision. The weights come, in order, from
``--feature-weights PATH``, ``$GANDIAG_INCEPTION_WEIGHTS``, or the torch hub
cache (where torch-fidelity keeps them); only if none exists is a download
tried, and with ``GANDIAG_OFFLINE=1`` (or no network) gandiag stops with one
line naming the file and where to put it.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Optional

import torch

from ..errors import FeatureExtractorError, GandiagError
from ..safety.budgets import ARCHIVE_BYTES
from ..safety.files import read_bytes_limited, require_input
from ..safety.torch_archive import check_weights_archive
from .extractor import ExtractorSpec, to_rgb

WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/" + WEIGHTS_FILE
ENV_WEIGHTS = "GANDIAG_INCEPTION_WEIGHTS"


def hub_weights_path() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_FILE


def resolve_weights(weights_path: Optional[str]) -> Path:
    for candidate in (weights_path, os.environ.get(ENV_WEIGHTS)):
        if candidate:
            p = Path(candidate).expanduser()
            require_input(p, "an Inception weights file", error=FeatureExtractorError)
            return p
    hub = hub_weights_path()
    if hub.is_file():
        return hub
    if os.environ.get("GANDIAG_OFFLINE", "").strip() not in ("", "0"):
        raise FeatureExtractorError(_missing_message(hub))
    try:
        torch.hub.download_url_to_file(WEIGHTS_URL, str(hub), progress=True)
    except Exception:
        raise FeatureExtractorError(_missing_message(hub)) from None
    return hub


def _missing_message(hub: Path) -> str:
    return (
        f"Inception-v3 weights not found and cannot be downloaded: put {WEIGHTS_FILE} "
        f"(from {WEIGHTS_URL}) at {hub}, or pass --feature-weights PATH, or set {ENV_WEIGHTS}"
    )


class InceptionExtractor:
    name = "inception-v3"
    roles = {"pool": 2048, "logits": 1008}
    kinds = ("images",)
    preprocessing = "uint8 RGB (grey repeated), TF-1.x-compatible bilinear resize to 299x299 (torch-fidelity)"

    def __init__(self, weights_path: Optional[str] = None, device: str = "cpu"):
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

        path = resolve_weights(weights_path)
        data = read_bytes_limited(path, "Inception weights", ARCHIVE_BYTES, error=FeatureExtractorError)
        # torch-fidelity loads the file it is given with weights_only=False: it gets a private copy of the bytes
        # checked here, so nothing swapped in at `path` after the check is ever unpickled
        with tempfile.TemporaryDirectory(prefix="gandiag-inception-") as private:
            copy = Path(private) / WEIGHTS_FILE
            copy.write_bytes(data)
            try:  # refuse files that would run code, and archives that unpack far beyond their size
                if zipfile.is_zipfile(copy):
                    check_weights_archive(copy, "Inception weights")
                torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
            except GandiagError as exc:
                raise FeatureExtractorError(str(exc).replace(str(copy), str(path))) from None
            except Exception as exc:
                raise FeatureExtractorError(f"cannot read Inception weights {path}: "
                                            f"{str(exc).splitlines()[0][:200]}") from None
            try:
                self.net = FeatureExtractorInceptionV3(self.name, ["2048", "logits_unbiased"],
                                                       feature_extractor_weights_path=str(copy))
            except RuntimeError as exc:
                raise FeatureExtractorError(f"{path} does not hold Inception-v3 weights: "
                                            f"{str(exc).splitlines()[0][:200]}") from None
        self.device = device
        self.net.to(device).eval()
        self.weights_path = str(path)
        self.weights_sha256 = hashlib.sha256(data).hexdigest()  # of the bytes the network was built from
        self.compiled_call = None

    def compile(self, warn) -> None:
        """Run through ``torch.compile`` from now on (gandiag.features.compiled: when, and what it measured)."""
        from .compiled import CompiledCall

        self.compiled_call = CompiledCall(self.net, self.device, warn)

    @torch.no_grad()
    def __call__(self, batch: torch.Tensor) -> dict:
        x = to_rgb(batch.to(self.device, non_blocking=True))  # pinned batches copy while the GPU works
        pool, logits = (self.compiled_call or self.net)(x)
        return {"pool": pool, "logits": logits}


INCEPTION = ExtractorSpec(
    "inception-v3",
    "Inception-v3 pool3 (2048-d) and 1008-way logits, torch-fidelity's TF-compatible port",
    ("images",),
    lambda weights_path=None, device="cpu": InceptionExtractor(weights_path, device),
)
