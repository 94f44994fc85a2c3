"""The generator contract: what goes into a generator and what comes out.

gandiag samples every generator the same way, whatever framework it came
from, so a loader only has to say (or let gandiag detect from a probe batch)
how big the latent is, how it is distributed, whether the generator wants
class labels, and the layout and range of what it returns. The contract used
is written into the results so a number can be reproduced.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Optional

import torch

from ..errors import CheckpointError, GandiagError, GeneratorOutputError

LATENT_DISTS = ("normal", "uniform")
RANGES = ("-1,1", "0,1", "uint8")


LABEL_FORMATS = ("index", "onehot")
DECIDABLE = ("latent_dim", "latent_shape", "latent_dist", "num_classes", "label_format", "kind", "layout",
             "output_range", "takes", "input_range")  # the fields whose origin the contract records


@dataclass
class GeneratorContract:
    """What goes into a generator and what comes out; every field says how it was decided (``decided``)."""

    latent_dim: int  # values per latent: the product of latent_shape
    latent_dist: str = "normal"
    num_classes: int = 0  # 0: unconditional
    kind: Optional[str] = None  # images | points; None until detected
    layout: Optional[str] = None  # NCHW | NHWC (images only)
    output_range: Optional[str] = None  # -1,1 | 0,1 | uint8 (images only)
    sample_shape: Optional[tuple] = None  # one sample, after layout: (C,H,W) or (D,)
    detected: list = field(default_factory=list)  # which fields were detected from a probe
    latent_shape: Optional[tuple] = None  # one latent's shape, e.g. (100, 1, 1); None: (latent_dim,)
    label_format: str = "index"  # how classes go in: integer indices, or one-hot float rows
    decided: dict = field(default_factory=dict)  # field -> how it was decided: "file", "flag", "probe", "default"
    # What goes in: "latent" (drawn from latent_dist), or a sample kind ("images", "points"): a translator, fed
    # samples of its input domain (--inputs); latent_shape is then one input's shape as the generator takes it.
    takes: str = "latent"
    input_range: Optional[str] = None  # a translator of images: the range its inputs are scaled to

    @property
    def is_translator(self) -> bool:
        return self.takes != "latent"

    @property
    def shape(self) -> tuple:
        """One latent's shape as the generator takes it."""
        return tuple(self.latent_shape) if self.latent_shape else (self.latent_dim,)

    def validate(self) -> "GeneratorContract":
        """Every field's type and range checked: a contract may come from an untrusted file."""
        from ..safety import budgets

        if not _is_int(self.latent_dim) or self.latent_dim < 1:
            raise GandiagError(f"latent size must be a positive integer, got {self.latent_dim!r} (--latent-dim)")
        self._validate_input()
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
        self._validate_latent_shape()
        if self.label_format not in LABEL_FORMATS:
            raise GandiagError(f"label format {self.label_format!r} is not one of {', '.join(LABEL_FORMATS)}")
        if not isinstance(self.decided, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                         for k, v in self.decided.items()):
            raise GandiagError("the contract's 'decided' field must map field names to how they were decided")
        return self

    def _validate_input(self) -> None:
        """A latent's size, or a translator's input kind, shape and range."""
        from ..safety import budgets

        if not isinstance(self.takes, str):
            raise GandiagError(f"the contract's 'takes' is {type(self.takes).__name__}, not 'latent' or a sample kind")
        if not self.is_translator:
            if image_like(self.latent_shape):  # an image's worth of values: a translator's input, until told
                budgets.IMAGE_PIXELS.check(self.latent_dim, "the generator's input values per sample")
            else:
                budgets.LATENT_SIZE.check(self.latent_dim, "the generator's latent size")
            return
        _check_kind_and_layout(self.takes, None)
        if self.input_range is not None and self.input_range not in RANGES:
            raise GandiagError(f"input range {self.input_range!r} is not one of {', '.join(RANGES)}")
        if self.takes == "images":
            budgets.IMAGE_PIXELS.check(self.latent_dim, "the translator's input values per image")

    def _validate_latent_shape(self) -> None:
        if self.latent_shape is None:
            return
        shape = self.latent_shape
        if not (isinstance(shape, (tuple, list)) and 1 <= len(shape) <= 4 and all(_is_int(d) and d >= 1 for d in shape)):
            raise GandiagError(f"latent shape {shape!r} is not a tuple of positive sizes (--latent-shape)")
        if math.prod(shape) != self.latent_dim:
            raise GandiagError(f"latent shape {tuple(shape)} holds {math.prod(shape)} values, not the latent size "
                               f"{self.latent_dim}; pass one of --latent-shape or --latent-dim")

    def merged(self, **overrides) -> "GeneratorContract":
        """This contract with the user's explicit flags on top (None = keep); each given field is decided by flag."""
        given = {k: v for k, v in overrides.items() if v is not None}
        if given.get("latent_shape") is not None and "latent_dim" not in given:
            given["latent_dim"] = math.prod(given["latent_shape"])
        decided = {**self.decided, **{k: "flag" for k in given}}
        return replace(self, **given, decided=decided).validate()

    def to_json(self) -> dict:
        d = asdict(self)
        d["sample_shape"] = list(self.sample_shape) if self.sample_shape else None
        d["latent_shape"] = list(self.latent_shape) if self.latent_shape else None
        return d

    @classmethod
    def from_json(cls, d: dict) -> "GeneratorContract":
        if not isinstance(d, dict) or "latent_dim" not in d:
            raise GandiagError(f"a generator contract must be an object with latent_dim, got {type(d).__name__}")
        d = dict(d)
        for key in ("sample_shape", "latent_shape"):
            if isinstance(d.get(key), list):
                d[key] = tuple(d[key])
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known}).validate()


# Where ``gandiag export`` stores the contract in each format, and where the loaders read it (one home for both).
STORED_IN_ONNX = "gandiag.contract"  # ONNX metadata_props key
STORED_IN_ARCHIVE = "gandiag/contract.json"  # TorchScript / torch.export extra file
STORED_IN_SAVEDMODEL = "assets.extra/gandiag_contract.json"  # a file in the SavedModel folder


def stored_text(contract: "GeneratorContract", **changes) -> str:
    """The contract as ``gandiag export`` stores it: JSON, nothing marked as detected."""
    import json

    return json.dumps(replace(contract, detected=[], decided={}, **changes).to_json(), sort_keys=True)


def read_stored(text, where) -> Optional["GeneratorContract"]:
    """A stored contract (None for an empty one); one that does not parse or validate is bad input."""
    import json

    if not text:
        return None
    try:
        contract = GeneratorContract.from_json(json.loads(text))
        return replace(contract, decided={f: "file" for f in DECIDABLE if getattr(contract, f) is not None})
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


IMAGE_MIN_SIDE = 8  # an input of at least 8x8 with 1 or 3 channels looks like an image, not a latent


def image_like(shape) -> bool:
    """Whether one input of this shape looks like an image, (C, H, W) or (H, W, C) with 1 or 3 channels."""
    if not isinstance(shape, (tuple, list)) or len(shape) != 3:
        return False
    if shape[0] in (1, 3) and min(shape[1], shape[2]) >= IMAGE_MIN_SIDE:
        return True
    return shape[2] in (1, 3) and min(shape[0], shape[1]) >= IMAGE_MIN_SIDE


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
    c = kind.detect(c, probe)
    return replace(c, decided={**{f: "probe" for f in c.detected}, **c.decided})
