"""The generator contract: what goes into a generator and what comes out.

gandiag samples every generator the same way, whatever framework it came
from, so a loader only has to say (or let gandiag detect from a probe batch)
how big the latent is, how it is distributed, whether the generator wants
class labels, and the layout and range of what it returns. The contract used
is written into the results so a number can be reproduced.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Optional

import torch

from ..errors import GandiagError, GeneratorOutputError

LATENT_DISTS = ("normal", "uniform")
LAYOUTS = ("NCHW", "NHWC")
RANGES = ("-1,1", "0,1", "uint8")
KINDS = ("images", "points")


@dataclass
class GeneratorContract:
    latent_dim: int
    latent_dist: str = "normal"
    num_classes: int = 0  # 0: unconditional
    kind: Optional[str] = None  # images | points; None until detected
    layout: Optional[str] = None  # NCHW | NHWC (images only)
    output_range: Optional[str] = None  # -1,1 | 0,1 | uint8 (images only)
    sample_shape: Optional[tuple] = None  # one sample, after layout: (C,H,W) or (D,)
    detected: list = field(default_factory=list)  # which fields were detected from a probe

    def validate(self) -> "GeneratorContract":
        """Every field's type and range checked: a contract may come from an untrusted file."""
        from ..safety import budgets

        if not _is_int(self.latent_dim) or self.latent_dim < 1:
            raise GandiagError(f"latent size must be a positive integer, got {self.latent_dim!r} (--latent-dim)")
        budgets.LATENT_SIZE.check(self.latent_dim, "the generator's latent size")
        if self.latent_dist not in LATENT_DISTS:
            raise GandiagError(f"latent distribution {self.latent_dist!r} is not one of {', '.join(LATENT_DISTS)}")
        if not _is_int(self.num_classes) or self.num_classes < 0:
            raise GandiagError("--num-classes must be 0 (unconditional) or positive")
        budgets.CLASSES.check(self.num_classes, "the generator's number of classes")
        if self.kind is not None and self.kind not in KINDS:
            raise GandiagError(f"sample kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.layout is not None and self.layout not in LAYOUTS:
            raise GandiagError(f"layout {self.layout!r} is not one of {', '.join(LAYOUTS)}")
        if self.output_range is not None and self.output_range not in RANGES:
            raise GandiagError(f"output range {self.output_range!r} is not one of {', '.join(RANGES)}")
        if self.sample_shape is not None and not (
                isinstance(self.sample_shape, (tuple, list)) and 1 <= len(self.sample_shape) <= 4
                and all(_is_int(d) and d >= 1 for d in self.sample_shape)):
            raise GandiagError(f"sample shape {self.sample_shape!r} is not a tuple of positive sizes")
        if not isinstance(self.detected, list) or not all(isinstance(x, str) for x in self.detected):
            raise GandiagError("the contract's 'detected' field must be a list of field names")
        return self

    def merged(self, **overrides) -> "GeneratorContract":
        """This contract with the user's explicit flags on top (None = keep)."""
        given = {k: v for k, v in overrides.items() if v is not None}
        return replace(self, **given).validate()

    def to_json(self) -> dict:
        d = asdict(self)
        d["sample_shape"] = list(self.sample_shape) if self.sample_shape else None
        return d

    @classmethod
    def from_json(cls, d: dict) -> "GeneratorContract":
        if not isinstance(d, dict) or "latent_dim" not in d:
            raise GandiagError(f"a generator contract must be an object with latent_dim, got {type(d).__name__}")
        d = dict(d)
        if isinstance(d.get("sample_shape"), list):
            d["sample_shape"] = tuple(d["sample_shape"])
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known}).validate()


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def parse_range(text: str) -> str:
    """Accept the spellings people type: '[-1,1]', '-1,1', '0..1', 'uint8', '255'."""
    t = text.strip().lower().replace(" ", "").strip("[]()").replace("..", ",")
    aliases = {"-1,1": "-1,1", "0,1": "0,1", "uint8": "uint8", "0,255": "uint8", "255": "uint8"}
    if t not in aliases:
        raise GandiagError(f"output range {text!r} is not one of [-1,1], [0,1], uint8")
    return aliases[t]


def detect(contract: GeneratorContract, probe: torch.Tensor) -> GeneratorContract:
    """Fill the contract's unknown output fields from one probe batch.

    Only unambiguous evidence is used; anything else asks the user for a flag
    rather than guessing, because a wrong range silently shifts every metric.
    """
    c = replace(contract, detected=list(contract.detected))
    if probe.ndim == 2:
        if c.kind not in (None, "points"):
            raise GeneratorOutputError(f"generator returned shape {tuple(probe.shape)}: expected a batch of images")
        if c.kind is None:
            c.detected.append("kind")
        c.kind = "points"
        c.sample_shape = (probe.shape[1],)
        return c
    if probe.ndim != 4:
        raise GeneratorOutputError(
            f"generator returned shape {tuple(probe.shape)}: expected (N,C,H,W), (N,H,W,C) or (N,D) points"
        )
    if c.kind is None:
        c.kind, c.detected = "images", c.detected + ["kind"]
    if c.layout is None:
        chw = probe.shape[1] in (1, 3)
        hwc = probe.shape[3] in (1, 3)
        if chw and not hwc:
            c.layout = "NCHW"
        elif hwc and not chw:
            c.layout = "NHWC"
        else:
            raise GeneratorOutputError(
                f"cannot tell the layout of generator output {tuple(probe.shape)}; pass --layout NCHW or NHWC"
            )
        c.detected.append("layout")
    shape = tuple(probe.shape[1:]) if c.layout == "NCHW" else (probe.shape[3], probe.shape[1], probe.shape[2])
    if shape[0] not in (1, 3):
        raise GeneratorOutputError(
            f"generator output has {shape[0]} channels (shape {tuple(probe.shape)}, layout {c.layout}); "
            "gandiag evaluates grey (1) or RGB (3) images"
        )
    c.sample_shape = shape
    if c.output_range is None:
        c.output_range = _detect_range(probe)
        c.detected.append("output_range")
    return c


def _detect_range(probe: torch.Tensor) -> str:
    if probe.dtype == torch.uint8:
        return "uint8"
    x = probe.detach().float()
    if not torch.isfinite(x).all():
        raise GeneratorOutputError("generator output contains NaN or Inf")
    lo, hi = x.min().item(), x.max().item()
    if lo >= -1.0001 and hi <= 1.0001 and lo < -1e-3:
        return "-1,1"
    if lo >= -1e-6 and hi <= 1.0001:
        return "0,1"
    if lo >= -1e-6 and hi <= 255.0001 and hi > 1.5:
        return "uint8"
    raise GeneratorOutputError(
        f"cannot tell the output range of the generator (probe min {lo:.3g}, max {hi:.3g}); "
        "pass --output-range [-1,1], [0,1] or uint8"
    )


def to_uint8_nchw(batch: torch.Tensor, contract: GeneratorContract) -> torch.Tensor:
    """Generator output → uint8 NCHW, the form every image metric starts from.

    Rounding (not truncation) to the nearest level matches torch-fidelity's
    treatment of generator output ((x+1)*127.5, clamp, round-to-uint8).
    """
    if contract.layout == "NHWC":
        batch = batch.permute(0, 3, 1, 2)
    if contract.output_range == "uint8":
        if batch.dtype == torch.uint8:
            return batch.contiguous()
        x = batch.float()
    elif contract.output_range == "-1,1":
        x = (batch.float() + 1.0) * 127.5
    else:
        x = batch.float() * 255.0
    return x.clamp(0, 255).round().to(torch.uint8).contiguous()
