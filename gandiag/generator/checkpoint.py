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
- translators (``contract.takes`` not "latent"), optional: ``inverse_generator`` (B -> A, same shape as
  ``generator``), ``inverse_contract`` (its contract), ``inverse_discriminator`` (D_A; ``discriminator`` is
  D_B). ``data.source`` then names a bundled pair of domains (``digits-inverted``).
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Optional

import torch

from ..atomic import write_bytes
from ..errors import CheckpointError
from ..safety.torch_archive import check_weights_archive
from ..safety.untrusted import shown
from .contract import GeneratorContract

FORMAT = "gandiag.checkpoint"
FORMAT_VERSION = 1


def is_gandiag_checkpoint(obj) -> bool:
    return isinstance(obj, dict) and obj.get("format") == FORMAT


def build_network(spec: dict, where="checkpoint", key: str = "network") -> torch.nn.Module:
    """Rebuild a named architecture and load its weights; any failure is a CheckpointError.

    ``spec`` comes from a file, so an unknown name, keyword arguments the
    builder rejects, or weights of the wrong shapes are bad input (exit 2),
    not a bug. The network is first built on the ``meta`` device (no memory)
    and its parameter shapes compared with the state dict's, so kwargs that
    ask for a network far bigger than the file cannot allocate it.
    """
    from ..plugins import registry

    check_net_spec(spec, where, key)
    arch, kwargs, state = spec["arch"], spec.get("kwargs") or {}, spec["state_dict"]
    builders = registry("architecture")
    if arch not in builders:
        raise CheckpointError(f"{where}: unknown architecture {shown(arch)!r}; known: {', '.join(sorted(builders.names()))} "
                              "(a plugin may provide it)")
    with torch.device("meta"):
        shapes = {k: tuple(v.shape) for k, v in _build(builders[arch], arch, kwargs, where).state_dict().items()}
    given = {k: tuple(v.shape) for k, v in state.items()}
    if shapes != given:
        raise CheckpointError(f"{where}: weights do not fit architecture {shown(arch)!r}: {_shape_diff(shapes, given)}")
    net = _build(builders[arch], arch, kwargs, where)
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(f"{where}: weights do not fit architecture {shown(arch)!r}: {_reason(exc)}") from None
    return net


def _build(builder, arch: str, kwargs: dict, where) -> torch.nn.Module:
    try:
        net = builder(**kwargs)
    except Exception as exc:  # TypeError for unknown kwargs, ValueError/RuntimeError for impossible sizes
        raise CheckpointError(f"{where}: architecture {shown(arch)!r} cannot be built from the checkpoint's kwargs "
                              f"({type(exc).__name__}: {_reason(exc)})") from None
    if not isinstance(net, torch.nn.Module):
        raise CheckpointError(f"{where}: architecture {shown(arch)!r} did not build a torch.nn.Module")
    return net


def _shape_diff(want: dict, got: dict) -> str:
    missing, extra = sorted(set(want) - set(got)), sorted(set(got) - set(want))
    if missing:
        return f"missing {shown(missing[0])}" + (f" and {len(missing) - 1} more" if len(missing) > 1 else "")
    if extra:
        return f"unexpected {shown(extra[0])}" + (f" and {len(extra) - 1} more" if len(extra) > 1 else "")
    k = next(k for k in sorted(want) if want[k] != got[k])
    return f"{shown(k)} has shape {list(got[k])}, the architecture wants {list(want[k])}"


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
    inverse: Optional[dict] = None,
) -> dict:
    """``inverse``: a translator's other direction, {"generator": spec, "contract": GeneratorContract,
    "discriminator": spec or None}."""
    from datetime import datetime, timezone

    from .. import __version__

    extra = {}
    if inverse is not None:
        extra = {"inverse_generator": inverse["generator"], "inverse_contract": inverse["contract"].to_json(),
                 "inverse_discriminator": inverse.get("discriminator")}
    return {
        **extra,
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
    """Load a gandiag checkpoint with weights_only=True and check its structure (:func:`validate_checkpoint`)."""
    import pickle

    from .foreign import refuse

    refuse(path)  # a Keras, JAX or diffusers file: say so, not "file in archive is not in a subdirectory"
    if zipfile.is_zipfile(path):
        check_weights_archive(path, "gandiag checkpoint")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:  # not torch's "you have two options..." text: what it means here
        raise CheckpointError(_pickled_objects(path, exc)) from None
    except Exception as exc:
        raise CheckpointError(f"{path}: not a readable gandiag checkpoint ({_reason(exc)})") from None
    if not is_gandiag_checkpoint(obj):
        raise CheckpointError(f"{path}: not a gandiag checkpoint")
    return validate_checkpoint(obj, path)


def _pickled_objects(path, exc) -> str:
    """One line for a file that torch's weights-only reader refused: which global it holds, and the way out."""
    from ..safety.torch_archive import pickle_global, pickled_global

    found = pickled_global(exc)
    if found is None:
        try:
            with open(path, "rb") as f:
                found = pickle_global(f.read(1 << 20))
        except OSError:
            found = None
    what = f"global {shown(found)}" if found else "not a gandiag checkpoint's plain tensors"
    return (f"{shown(str(path), 300)}: not a gandiag checkpoint: it holds pickled Python objects ({what}), which run "
            "code when unpickled; gandiag train --resume reads gandiag checkpoints only (gandiag evaluate and export "
            "read such a file with --trust-checkpoint, if you trust where it came from)")


def check_version(obj: dict, path) -> None:
    v = obj.get("format_version")
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        raise CheckpointError(f"{path}: format_version is {shown(repr(v), 40)}, not a positive integer")
    if v > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: gandiag checkpoint format version {v!r} is newer than this gandiag reads ({FORMAT_VERSION}); upgrade gandiag"
        )


def validate_checkpoint(obj, path) -> dict:
    """Check the structure of a gandiag checkpoint; every problem is one CheckpointError naming the key.

    The one place that decides what a well-formed checkpoint is, for the
    loader, ``gandiag export`` and the trainer's ``--resume``: after it,
    code may index ``ckpt["generator"]["state_dict"]`` and friends without
    meeting a wrong type. Networks are not built here (:func:`build_network`).
    """
    if not is_gandiag_checkpoint(obj):
        raise CheckpointError(f"{path}: not a gandiag checkpoint")
    check_version(obj, path)
    check_net_spec(obj.get("generator"), path, "generator")
    if obj.get("discriminator") is not None:
        check_net_spec(obj["discriminator"], path, "discriminator")
    if obj.get("ema_generator") is not None:
        _state_dict(obj["ema_generator"], path, "ema_generator")
    _check_contract(obj.get("contract"), path, "contract")
    if obj.get("inverse_generator") is not None:
        check_net_spec(obj["inverse_generator"], path, "inverse_generator")
        _check_contract(obj.get("inverse_contract"), path, "inverse_contract")
    if obj.get("inverse_discriminator") is not None:
        check_net_spec(obj["inverse_discriminator"], path, "inverse_discriminator")
    for key, types, what in (("data", (dict, type(None)), "a dict"), ("config", (dict, type(None)), "a dict"),
                             ("optimizers", (dict, type(None)), "a dict"), ("rng", (dict, type(None)), "a dict")):
        if not isinstance(obj.get(key), types):
            raise CheckpointError(f"{path}: {key!r} is {_kind(obj.get(key))}, not {what}")
    source = (obj.get("data") or {}).get("source")
    if source is not None and not isinstance(source, str):
        raise CheckpointError(f"{path}: 'data.source' is {_kind(source)}, not a string")
    step = obj.get("step")
    if step is not None and (not isinstance(step, int) or isinstance(step, bool) or step < 0):
        raise CheckpointError(f"{path}: 'step' is {shown(repr(step), 40)}, not a non-negative integer")
    for keys, types in _CONFIG_FIELDS:
        _check_field(obj.get("config") or {}, keys, types, path)
    return obj


def _check_contract(contract, path, key: str) -> None:
    if not isinstance(contract, dict):
        raise CheckpointError(f"{path}: {key!r} is {_kind(contract)}, not a dict")
    try:
        GeneratorContract.from_json(contract)
    except Exception as exc:  # TypeError for wrong fields, GandiagError for invalid values
        raise CheckpointError(f"{path}: {key!r} is invalid: {_reason(exc)}") from None


_INT, _NUM = (int,), (int, float)
# The training configuration fields that gandiag itself reads back (--resume, gradient-health, the loader's
# meta), with the types they must have when present; None is always allowed.
_CONFIG_FIELDS = (
    (("variant_name",), (str,)), (("data",), (str,)), (("eval_extractor",), (str,)),
    (("variant",), (dict,)), (("options",), (dict,)), (("resolved",), (dict,)), (("architectures",), (dict,)),
    (("variant", "loss"), (str,)), (("variant", "conditional"), (bool, int)), (("variant", "gp_weight"), _NUM),
    (("options", "pack"), _INT), (("options", "steps"), _INT), (("options", "exclude_classes"), (list,)),
    (("resolved", "loss"), (str,)), (("resolved", "steps"), _INT), (("resolved", "batch_size"), _INT),
    (("resolved", "latent_dim"), _INT),
)


def _check_field(config: dict, keys: tuple, types: tuple, path) -> None:
    v = config
    for k in keys:
        if not isinstance(v, dict):
            return  # the parent's own entry reports it
        v = v.get(k)
    name = "config." + ".".join(keys)
    bad_bool = isinstance(v, bool) and bool not in types
    if v is not None and (not isinstance(v, types) or bad_bool):
        raise CheckpointError(f"{path}: {name!r} is {_kind(v)}, not "
                              f"{' or '.join(t.__name__ for t in types if t is not int or bool not in types)}")
    if types is _INT and v is not None and v < (0 if keys[-1] == "steps" else 1):
        raise CheckpointError(f"{path}: {name!r} is {v}, not a positive integer")
    limit = _config_limit(keys[-1])
    if types is _INT and v is not None and limit is not None and v > limit:
        raise CheckpointError(f"{path}: {name!r} is {v:,}, above the {limit:,} gandiag accepts")
    if keys[-1] == "loss" and v is not None:
        from ..training.variants import LOSSES

        if v not in LOSSES:
            raise CheckpointError(f"{path}: {name!r} is {shown(repr(v), 40)}, not one of {', '.join(LOSSES)}")


def _config_limit(field: str):
    """Upper bounds of the config numbers that size what the diagnostics allocate (pack, batch, latent)."""
    from ..safety import budgets
    from ..training.variants import MAX_PACK

    return {"pack": MAX_PACK, "batch_size": budgets.BATCH_SIZE.value,
            "latent_dim": budgets.LATENT_SIZE.value}.get(field)


def check_net_spec(spec, path, key: str) -> None:
    """``{"arch": str, "kwargs": {str: JSON value}, "state_dict": {str: Tensor}}``."""
    if not isinstance(spec, dict):
        raise CheckpointError(f"{path}: {key!r} is {_kind(spec)}, not a dict with arch, kwargs and state_dict")
    if not isinstance(spec.get("arch"), str) or not spec["arch"]:
        raise CheckpointError(f"{path}: '{key}.arch' is {_kind(spec.get('arch'))}, not an architecture name")
    kwargs = spec.get("kwargs", {})
    if kwargs is not None and (not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs)):
        raise CheckpointError(f"{path}: '{key}.kwargs' is {_kind(kwargs)}, not a dict of keyword arguments")
    _state_dict(spec.get("state_dict"), path, f"{key}.state_dict")


def _state_dict(sd, path, key: str) -> None:
    if not isinstance(sd, dict):
        raise CheckpointError(f"{path}: {key!r} is {_kind(sd)}, not a dict of tensors")
    for k, v in sd.items():
        if not isinstance(k, str) or not torch.is_tensor(v):
            raise CheckpointError(f"{path}: {key!r} entry {shown(repr(k), 60)} is {_kind(v)}, not a tensor")


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return shown(text.splitlines()[0] if text else type(exc).__name__, 200)


def _kind(v) -> str:
    name = type(v).__name__
    return "missing" if v is None else f"{'an' if name[0] in 'aeiou' else 'a'} {name}"
