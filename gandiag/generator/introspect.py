"""What a PyTorch generator says about its inputs, read from the module without running it.

Generators written with other people's code rarely carry a gandiag contract.
The PyTorch DCGAN tutorial's takes ``(N, 100, 1, 1)``: ``nz`` is a global of
the script, not an attribute, but the first layer, ``ConvTranspose2d(100, ...)``,
says it. So, in order:

- the latent size from a conventional attribute (``nz``, ``z_dim``,
  ``latent_dim``...), else from the first layer that takes the latent
  (``Linear(in_features)``; ``ConvTranspose2d/Conv2d(in_channels)``, whose
  input is a 1x1 map: shape ``(C, 1, 1)``; the 1-d versions likewise);
- a second required argument of ``forward`` means class labels; their number
  from an attribute (``num_classes``, ``n_classes``, ``c_dim``...) or the
  first ``nn.Embedding`` (which also says they are indices).

Each field found is marked ``decided = "module"`` in the contract, so the
results say where a number came from; a flag overrides any of them.
"""

from __future__ import annotations

import inspect
from typing import Optional

import torch

from .contract import GeneratorContract

LATENT_ATTRS = ("latent_dim", "z_dim", "nz", "z_size", "noise_dim", "latent_size", "dim_z", "nz_dim")
CLASS_ATTRS = ("num_classes", "n_classes", "c_dim", "n_class", "num_class", "nclasses")
_SPATIAL = {torch.nn.ConvTranspose2d: 2, torch.nn.Conv2d: 2, torch.nn.ConvTranspose1d: 1, torch.nn.Conv1d: 1}


def _int_attr(module, names) -> Optional[int]:
    for name in names:
        v = getattr(module, name, None)
        if isinstance(v, int) and not isinstance(v, bool) and v > 0:
            return v
    return None


def first_input_layer(module: torch.nn.Module):
    """The first layer, in registration order, that a latent could enter (embeddings are for labels)."""
    for m in module.modules():
        if isinstance(m, (torch.nn.Linear, *_SPATIAL)):
            return m
    return None


def latent_shape_of(module: torch.nn.Module) -> Optional[tuple]:
    """One latent's shape as the module takes it, or None when the module does not say."""
    size = _int_attr(module, LATENT_ATTRS)
    layer = first_input_layer(module)
    spatial = next((n for cls, n in _SPATIAL.items() if isinstance(layer, cls)), 0)
    layer_size = layer.in_features if isinstance(layer, torch.nn.Linear) else getattr(layer, "in_channels", None)
    if size is None:
        size = layer_size
    if size is None:
        return None
    return (size,) + (1,) * spatial if spatial and layer_size == size else (size,)


def takes_labels(module: torch.nn.Module) -> bool:
    """Whether ``forward`` requires a second argument (the class labels of a conditional generator)."""
    try:
        params = list(inspect.signature(module.forward).parameters.values())
    except (TypeError, ValueError):
        return False
    required = [p for p in params if p.default is p.empty
                and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(required) >= 2


def classes_of(module: torch.nn.Module) -> tuple[Optional[int], Optional[str]]:
    """(number of classes, label format) when the module says them."""
    n = _int_attr(module, CLASS_ATTRS)
    embedding = next((m for m in module.modules() if isinstance(m, torch.nn.Embedding)), None)
    if embedding is not None:
        return n or embedding.num_embeddings, "index"
    return n, None


def module_contract(module: torch.nn.Module) -> tuple[Optional[GeneratorContract], bool]:
    """(the contract the module says, whether it takes labels); the contract is None without a latent size."""
    shape = latent_shape_of(module)
    conditional = takes_labels(module)
    if shape is None:
        return None, conditional
    n_classes, label_format = classes_of(module) if conditional else (None, None)
    decided = {"latent_dim": "module", "latent_shape": "module"}
    if n_classes:
        decided["num_classes"] = "module"
    if label_format:
        decided["label_format"] = "module"
    contract = GeneratorContract(latent_dim=int(torch.Size(shape).numel()), latent_shape=shape if len(shape) > 1 else None,
                                 num_classes=n_classes or 0, label_format=label_format or "index",
                                 detected=["latent_dim"], decided=decided)
    return contract.validate(), conditional
