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

from ..errors import CheckpointError, GandiagError, GeneratorOutputError

LATENT_DISTS = ("normal", "uniform")
RANGES = ("-1,1", "0,1", "uint8")


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
        if self.kind is not None or self.layout is not None:
            _check_kind_and_layout(self.kind, self.layout)
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


# Where ``gandiag export`` stores the contract in each format, and where the loaders read it (one home for both).
STORED_IN_ONNX = "gandiag.contract"  # ONNX metadata_props key
STORED_IN_ARCHIVE = "gandiag/contract.json"  # TorchScript / torch.export extra file
STORED_IN_SAVEDMODEL = "assets.extra/gandiag_contract.json"  # a file in the SavedModel folder


def stored_text(contract: "GeneratorContract", **changes) -> str:
    """The contract as ``gandiag export`` stores it: JSON, nothing marked as detected."""
    import json

    return json.dumps(replace(contract, detected=[], **changes).to_json(), sort_keys=True)


def read_stored(text, where) -> Optional["GeneratorContract"]:
    """A stored contract (None for an empty one); one that does not parse or validate is bad input."""
    import json

    if not text:
        return None
    try:
        return GeneratorContract.from_json(json.loads(text))
    except (ValueError, TypeError, RecursionError, GandiagError) as exc:
        raise CheckpointError(f"{where}: stored generator contract is unreadable: {str(exc).splitlines()[0][:200]}") \
            from None


def _check_kind_and_layout(kind: Optional[str], layout: Optional[str]) -> None:
    from ..data import kinds

    known = kinds.registered()
    if kind is not None and kind not in known:
        raise GandiagError(f"sample kind {kind!r} is not one of {', '.join(sorted(known))}")
    layouts = known[kind].layouts if kind is not None else kinds.all_layouts()
    if layout is not None and layout not in layouts:
        raise GandiagError(f"layout {layout!r} is not one of {', '.join(layouts)}"
                           + (f" (the layouts of {kind})" if kind else ""))


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
    """Fill the contract's unknown output fields from one probe batch, through the output's sample kind.

    Only unambiguous evidence is used; anything else asks the user for a flag
    rather than guessing, because a wrong range silently shifts every metric.
    """
    from ..data import kinds

    c = replace(contract, detected=list(contract.detected))
    kind = kinds.by_name(c.kind) if c.kind else kinds.for_output(probe.ndim, tuple(probe.shape))
    if probe.ndim != kind.output_ndim:
        raise GeneratorOutputError(f"generator returned shape {tuple(probe.shape)}: expected a {kind.output_ndim}-d "
                                   f"batch of {kind.name}")
    if c.kind is None:
        c.kind = kind.name
        c.detected.append("kind")
    return kind.detect(c, probe)
