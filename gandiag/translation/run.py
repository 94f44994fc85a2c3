"""One direction of a translator, as a run of the pipeline sees it: what went in, what came out, what came back.

The evaluation pipeline fills a :class:`TranslationRun` during its one
sampling pass (inputs -> translator -> canonical outputs, which the feature
extractors read as any generated samples); the translation metrics
(:mod:`.measures`), the translation diagnostics and the report read it. All
samples here are canonical: uint8 NCHW images, float32 (N, D) points.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
import torch

KEEP = 256  # inputs, outputs and reconstructions kept for the diagnostics and the report grids
# The translation measures' keys in results.metrics (gates accept them like the registered metrics' names).
MEASURE_NAMES = ("cycle_l1", "identity_l1", "paired_l1", "psnr", "ssim", "change_l1", "label_preservation")


@dataclass
class TranslationRun:
    direction: str  # "a2b" (the file's generator) or "b2a" (its inverse)
    kind: str  # "images" | "points": the sample kind of inputs and outputs
    input_spec: str  # where the inputs came from (--inputs, or the pair's side)
    target_spec: Optional[str]  # the target domain's real data (--real, or the pair's other side)
    n: int  # inputs translated
    forward: Callable[[torch.Tensor], torch.Tensor]  # canonical inputs -> canonical outputs (this direction)
    inverse: Optional[Callable[[torch.Tensor], torch.Tensor]] = None  # canonical outputs -> canonical inputs
    truth: Optional[Callable[[torch.Tensor], torch.Tensor]] = None  # the exact translation (bundled pairs)
    inputs: Optional[torch.Tensor] = None  # the first KEEP inputs
    outputs: Optional[torch.Tensor] = None  # their translations
    reconstructions: Optional[torch.Tensor] = None  # inverse(outputs), when there is an inverse
    input_labels: Optional[np.ndarray] = None  # labels of all n inputs, when the input domain has them
    target_samples: Optional[torch.Tensor] = None  # the first KEEP samples of the target domain's real data
    target_labels: Optional[np.ndarray] = None  # labels of the target domain's real data, all of it
    paired: bool = False  # the real data's sample i is input i's true translation (--paired, or a bundled truth)
    measures: dict = field(default_factory=dict)  # the results.metrics entries of this direction (measures.py)

    @property
    def suffix(self) -> Optional[str]:
        """The direction as results keys carry it: None for a2b (plain keys), 'b2a' for the inverse."""
        return None if self.direction == "a2b" else self.direction
