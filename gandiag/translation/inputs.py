"""A translator's inputs: samples of its input domain, fed in order and in the range it takes.

A latent generator's inputs are drawn (:mod:`gandiag.generator.sampling`); a
translator's are read: the samples of ``--inputs`` (a folder, an array file
or a bundled side such as ``digits-inverted:a``), or the side of the bundled
pair its checkpoint names. Sample ``i`` is always input ``i``, so one seed or
another, one batch size or another, the same inputs give the same outputs.
"""

from __future__ import annotations

from typing import Optional

import torch

from ..errors import DataError, GandiagError
from ..generator.contract import GeneratorContract

LOAD_BATCH = 1024  # rows per read when a folder of inputs is brought into memory


class TranslatorInputs:
    """The first ``n`` samples of the input domain, canonical (uint8 NCHW images, float points) and in memory."""

    def __init__(self, samples, spec: str, n: Optional[int] = None):
        data = getattr(samples, "data", None)
        if not isinstance(data, torch.Tensor):  # an image folder, read lazily: bring what is used into memory
            parts, seen = [], 0
            for b in samples.batches(LOAD_BATCH):
                parts.append(b)
                seen += b.shape[0]
                if n is not None and seen >= n:
                    break
            data = torch.cat(parts)
        self.data = data[:n] if n is not None else data
        labels = getattr(samples, "labels", None)
        self.labels = None if labels is None else labels[: self.data.shape[0]]
        self.kind, self.spec, self.samples = samples.kind, spec, samples
        self.description = getattr(samples, "description", spec)

    @property
    def n(self) -> int:
        return int(self.data.shape[0])

    @property
    def sample_shape(self) -> tuple:
        return tuple(self.data.shape[1:])

    def canonical(self, start: int, stop: int) -> torch.Tensor:
        return self.data[start:stop]

    def batch(self, contract: GeneratorContract, start: int, stop: int) -> torch.Tensor:
        """Inputs ``start..stop-1`` as the translator takes them: its layout and input range."""
        return to_generator_input(self.data[start:stop], contract)


def to_generator_input(x: torch.Tensor, contract: GeneratorContract) -> torch.Tensor:
    """Canonical samples (uint8 NCHW images, float points) -> the translator's input layout and range."""
    if contract.takes != "images":
        return x.float()
    if contract.layout == "NHWC":
        x = x.permute(0, 2, 3, 1)
    rng = contract.input_range
    if rng == "uint8":
        return x.float()
    if rng == "0,1":
        return x.float() / 255.0
    if rng == "-1,1":
        return x.float() / 127.5 - 1.0
    raise GandiagError("the translator's input range is not known: pass --input-range [-1,1], [0,1] or uint8")


def input_shape(inputs: TranslatorInputs, layout: Optional[str]) -> tuple:
    """One input's shape as a translator of this layout takes it."""
    shape = inputs.sample_shape
    if inputs.kind == "images" and layout == "NHWC":
        return (shape[1], shape[2], shape[0])
    return tuple(shape)


def complete_contract(contract: GeneratorContract, inputs: TranslatorInputs, how: str) -> GeneratorContract:
    """The translator's contract with its input kind and shape from the inputs where the file did not say them.

    ``how``: where the inputs were named ("flag" for --inputs, "file" for a checkpoint's pair). A shape the
    file states and the inputs contradict is bad input, said in one line.
    """
    from dataclasses import replace

    if contract.is_translator and contract.takes != inputs.kind:
        raise DataError(f"the translator takes {contract.takes} but its inputs {inputs.spec!r} hold {inputs.kind}")
    shape = input_shape(inputs, contract.layout)
    decided = dict(contract.decided)
    # A shape the file or a flag states must match; one read off a module's first layer was a guess at a latent
    # (a Conv2d(3, ...) reads as a (3, 1, 1) map), which the inputs now replace.
    if contract.decided.get("latent_shape") in ("file", "flag") and contract.latent_shape \
            and tuple(contract.latent_shape) != shape:
        raise DataError(f"the translator takes inputs shaped {tuple(contract.latent_shape)}, but {inputs.spec!r} "
                        f"holds {inputs.kind} shaped {shape}")
    decided.setdefault("takes", how)
    decided["latent_shape"] = decided.get("latent_shape") or "inputs"
    import math

    return replace(contract, takes=inputs.kind, latent_shape=shape, latent_dim=math.prod(shape),
                   decided=decided).validate()


def synthetic_inputs(contract: GeneratorContract, n: int, seed: int = 0) -> TranslatorInputs:
    """``n`` random inputs of the translator's kind and shape (for export's checks; never for metrics)."""
    from ..data.samples import SampleSet

    g = torch.Generator().manual_seed(seed)
    shape = tuple(contract.latent_shape or (contract.latent_dim,))
    if contract.takes == "images":
        if contract.layout == "NHWC":
            shape = (shape[2], shape[0], shape[1])
        data = torch.randint(0, 256, (n,) + shape, generator=g, dtype=torch.uint8)
    else:
        data = torch.randn((n,) + shape, generator=g)
    return TranslatorInputs(SampleSet(contract.takes, data, None, "random inputs"), "random inputs")
