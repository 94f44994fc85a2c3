"""gandiag's own checkpoint format, version 1.

A gandiag checkpoint is a ``torch.save``'d dict of tensors, numbers, strings,
lists and dicts only, so ``torch.load(..., weights_only=True)`` reads it and
loading one never runs code. Networks are named, not pickled: ``arch`` names
an architecture registered through the ``register_architectures`` hook and
the keyword arguments that rebuild it; the state dicts fill it.

Keys (``docs/checkpoint-format.md`` is the reference):

- ``format`` = "gandiag.checkpoint", ``format_version`` = 1
- ``generator``: {"arch": name, "kwargs": {...}, "state_dict": {...}}
- ``discriminator``: same shape, or None
- ``ema_generator``: a state dict for the generator arch, or None
- ``contract``: :class:`GeneratorContract` as JSON
- ``data``: {"source": real-source spec, ...}: what it was trained on
- ``config``: the full training configuration (JSON-able)
- ``step``: int; ``optimizers``: {name: optimizer state dict}; ``rng``: {name: uint8 tensor}
- ``created``: ISO time; ``gandiag_version``
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Optional

import torch

from .atomic import write_bytes
from .contract import GeneratorContract
from .errors import CheckpointError

FORMAT = "gandiag.checkpoint"
FORMAT_VERSION = 1


def is_gandiag_checkpoint(obj) -> bool:
    return isinstance(obj, dict) and obj.get("format") == FORMAT


def build_network(spec: dict) -> torch.nn.Module:
    """Rebuild a named architecture and load its weights."""
    from .plugins import registry

    builder = registry("architecture")[spec["arch"]]
    net = builder(**spec.get("kwargs", {}))
    try:
        net.load_state_dict(spec["state_dict"])
    except RuntimeError as exc:
        raise CheckpointError(f"weights do not fit architecture {spec['arch']!r}: {str(exc).splitlines()[0]}") from None
    return net


def net_spec(arch: str, kwargs: dict, module: torch.nn.Module) -> dict:
    return {"arch": arch, "kwargs": dict(kwargs), "state_dict": {k: v.detach().cpu() for k, v in module.state_dict().items()}}


def make_checkpoint(
    *,
    generator: dict,
    contract: GeneratorContract,
    data: dict,
    config: dict,
    step: int,
    discriminator: Optional[dict] = None,
    ema_generator: Optional[dict] = None,
    optimizers: Optional[dict] = None,
    rng: Optional[dict] = None,
) -> dict:
    from datetime import datetime, timezone

    from . import __version__

    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "generator": generator,
        "discriminator": discriminator,
        "ema_generator": ema_generator,
        "contract": contract.to_json(),
        "data": data,
        "config": config,
        "step": int(step),
        "optimizers": optimizers or {},
        "rng": rng or {},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "gandiag_version": __version__,
    }


def save_checkpoint(ckpt: dict, path) -> None:
    """Serialise fully in memory, then write atomically: never a half checkpoint."""
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    write_bytes(Path(path), buf.getvalue())


def read_checkpoint(path) -> dict:
    """Load a gandiag checkpoint with weights_only=True and check its version."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path}: not a readable gandiag checkpoint ({str(exc).splitlines()[0][:200]})") from None
    if not is_gandiag_checkpoint(obj):
        raise CheckpointError(f"{path}: not a gandiag checkpoint")
    check_version(obj, path)
    return obj


def check_version(obj: dict, path) -> None:
    v = obj.get("format_version")
    if not isinstance(v, int) or v > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: gandiag checkpoint format version {v!r} is newer than this gandiag reads ({FORMAT_VERSION}); upgrade gandiag"
        )
