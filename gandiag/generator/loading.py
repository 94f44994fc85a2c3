"""Checkpoint loading through loader plugins.

Every loader gets a cheap ``sniff(path)`` and the first that says yes (in
plugin order: third-party before built-in) loads the file. What comes back is
a :class:`LoadedGenerator`: a plain callable ``forward(z, labels) -> output``
on the chosen device plus what the file says about the generator contract.
gandiag never needs to know which framework made the generator.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import torch

from ..errors import CheckpointError
from .contract import GeneratorContract


@dataclass
class LoadOptions:
    """What a loader may use besides the file: the command line's say on how to open it."""

    device: str = "cpu"
    trust_checkpoint: bool = False
    generator_class: Optional[str] = None  # "module:Class" for bare state dicts (needs trust)
    use_ema: bool = True  # gandiag checkpoints: evaluate the EMA generator when present
    generator_path: tuple = ()  # folders to import --generator-class (or a pickle's packages) from (needs trust)
    generator_kwargs: Optional[dict] = None  # constructor keyword arguments for --generator-class
    truncation_psi: Optional[float] = None  # StyleGAN / BigGAN-style truncation, for loaders that take it

    @classmethod
    def from_options(cls, opts) -> "LoadOptions":
        """The loader's share of an evaluation's :class:`~gandiag.options.EvalOptions`."""
        return cls(opts.device, opts.trust_checkpoint, opts.generator_class, opts.use_ema,
                   tuple(opts.generator_path or ()), opts.generator_kwargs, opts.truncation_psi)


@dataclass
class LoadedGenerator:
    forward: Callable[[torch.Tensor, Optional[torch.Tensor]], Any]
    contract: Optional[GeneratorContract]  # what the file says; None or partial when it says nothing
    format: str
    path: str
    loader: str = ""
    module: Optional[torch.nn.Module] = None  # for gradient diagnostics (torch formats only)
    checkpoint: Optional[dict] = None  # the whole gandiag checkpoint, when it is one
    real_source: Optional[str] = None  # the data it was trained on, when known
    meta: dict = field(default_factory=dict)
    takes_labels: Optional[bool] = None  # True: requires class labels (how many may be unknown); False: takes none
    known: dict = field(default_factory=dict)  # without a contract: the fields the file did say, {name: (value, how)}
    inverse: Optional["LoadedGenerator"] = None  # a translator's other direction (B -> A), when the file holds it


def _check_file(path: Path) -> None:
    """A regular file (or a folder: SavedModels), never a FIFO or a device: loaders open what passes."""
    import stat

    from ..safety.files import require_input

    st = require_input(path, "a checkpoint", folder_ok=True, error=CheckpointError)
    if stat.S_ISREG(st.st_mode) and st.st_size == 0:
        raise CheckpointError(f"{path}: file is empty")


def load_generator(path, options: Optional[LoadOptions] = None) -> LoadedGenerator:
    from ..plugins import registry

    from .native_libs import keep_triton_out_after_tensorflow

    path = Path(path)
    options = options or LoadOptions()
    _check_file(path)
    keep_triton_out_after_tensorflow()  # a notebook that imported TensorFlow first: loading triton would crash it
    loaders = registry("loader").values()
    for loader in loaders:
        if loader.sniff(path):
            loaded = loader.load(path, options)
            loaded.loader = loaded.loader or loader.name
            return loaded
    from .foreign import refuse

    refuse(path)  # another framework's file (Keras, JAX/Flax, diffusers...): say what to do with it
    tried = ", ".join(f"{l.name} ({l.description})" for l in loaders) or "none installed"
    raise CheckpointError(f"{path}: no loader can read this file; tried: {tried}")
