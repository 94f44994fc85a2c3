"""What a PyTorch generator says about its inputs, read from the module without running it.

Generators written with other people's code rarely carry a gandiag contract.
The PyTorch DCGAN tutorial's takes ``(N, 100, 1, 1)``: ``nz`` is a global of
the script, not an attribute, but the first layer, ``ConvTranspose2d(100, ...)``,
says it. So, in order:

- the latent size from a conventional attribute (``nz``, ``z_dim``,
  ``latent_dim``...), else from the first layer that takes the latent
  (``Linear(in_features)``; ``ConvTranspose2d/Conv2d(in_channels)``, whose
  input is a 1x1 map: shape ``(C, 1, 1)``; the 1-d versions likewise);
- a second required argument of ``forward`` means class labels (and then
  only an attribute gives the latent size: the first layer may take the
  labels too); their number
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
# Layers a latent can enter: their spatial rank (the latent is a 1x1 map for convolutions) and which axis of
# their weight is the input size. Read from the weight, not an attribute, because a traced TorchScript module
# keeps its parameters but not ``in_channels``.
_ENTRY_LAYERS = {"Linear": (0, 1), "ConvTranspose2d": (2, 0), "ConvTranspose1d": (1, 0), "Conv2d": (2, 1),
                 "Conv1d": (1, 1)}


def _int_attr(module, names) -> Optional[int]:
    for name in names:
        v = getattr(module, name, None)
        if isinstance(v, int) and not isinstance(v, bool) and v > 0:
            return v
    return None


def layer_type(m) -> str:
    """The layer's class name; for TorchScript modules, the class it was compiled from."""
    return getattr(m, "original_name", None) or type(m).__name__


def first_input_layer(module):
    """(spatial rank, input size) of the first layer, in registration order, that a latent could enter
    (embeddings are for labels), or None."""
    for m in module.modules():
        entry = _ENTRY_LAYERS.get(layer_type(m))
        weight = getattr(m, "weight", None)
        if entry is None or not isinstance(weight, torch.Tensor) or weight.ndim < 2:
            continue
        spatial, axis = entry
        groups = getattr(m, "groups", 1) if axis == 1 and spatial else 1
        return spatial, int(weight.shape[axis]) * (groups if isinstance(groups, int) else 1)
    return None


def latent_shape_of(module, conditional: bool = False) -> Optional[tuple]:
    """One latent's shape as the module takes it, or None when the module does not say.

    A conditional generator's first layer often takes the latent and the
    labels' embedding (or one-hot rows) concatenated, or multiplied: its size
    is not the latent's, so there only an attribute says it.
    """
    size = _int_attr(module, LATENT_ATTRS)
    spatial, layer_size = first_input_layer(module) or (0, None)
    if size is None and not conditional:
        size = layer_size
    if size is None:
        return None
    return (size,) + (1,) * spatial if spatial and layer_size == size else (size,)


def takes_labels(module) -> Optional[bool]:
    """Whether ``forward`` takes class labels: True when it requires a second argument, None when a second
    one is optional (``forward(z, labels=None)``: either way), False when it takes the latent alone."""
    schema = getattr(getattr(module, "forward", None), "schema", None)
    if schema is not None:  # TorchScript: the compiled signature, ``self`` first
        args = [not a.has_default_value() for a in schema.arguments[1:]]
    else:
        try:
            params = list(inspect.signature(module.forward).parameters.values())
        except (TypeError, ValueError):
            return None
        if any(p.kind == p.VAR_POSITIONAL for p in params):
            return None
        args = [p.default is p.empty for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if sum(args) >= 2:
        return True
    return None if len(args) >= 2 else False


def classes_of(module) -> tuple[Optional[int], Optional[str]]:
    """(number of classes, label format) when the module says them."""
    n = _int_attr(module, CLASS_ATTRS)
    embedding = next((m for m in module.modules() if layer_type(m) == "Embedding"
                      and isinstance(getattr(m, "weight", None), torch.Tensor)), None)
    if embedding is not None:
        return n or int(embedding.weight.shape[0]), "index"
    return n, None


def module_contract(module) -> tuple[Optional[GeneratorContract], Optional[bool], dict]:
    """(the contract the module says, whether it takes labels (:func:`takes_labels`), what it says when that is
    not a whole contract).

    The contract is None without a latent size; the third item then holds the
    fields the module did say (its classes), for :class:`LoadedGenerator.known`.
    """
    conditional = takes_labels(module)
    n_classes, label_format = classes_of(module) if conditional is not False else (None, None)
    shape = latent_shape_of(module, bool(conditional or n_classes))  # optional labels and an embedding: maybe
    known = {k: (v, "module") for k, v in (("num_classes", n_classes), ("label_format", label_format)) if v}
    if shape is None:
        return None, conditional, known
    contract = GeneratorContract(latent_dim=int(torch.Size(shape).numel()), latent_shape=shape if len(shape) > 1 else None,
                                 num_classes=n_classes or 0, label_format=label_format or "index",
                                 detected=["latent_dim"],
                                 decided={"latent_dim": "module", "latent_shape": "module",
                                          **{k: how for k, (_, how) in known.items()}})
    return contract.validate(), conditional, {}
