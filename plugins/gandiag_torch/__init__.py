"""PyTorch checkpoint loader for gandiag, an ordinary entry-point plugin.

Reads, in order of safety:

- gandiag checkpoints (a dict of tensors, loaded with ``weights_only=True``;
  the architecture is rebuilt by name, no code is unpickled);
- ``torch.export`` programs (``.pt2``) and TorchScript archives, which hold
  graphs rather than Python objects;
- with ``--trust-checkpoint`` only: a whole pickled ``nn.Module``, or a bare
  state dict plus ``--generator-class module:Class``. Unpickling those runs
  arbitrary code, so without the flag they are refused with the reason.

A contract stored by ``gandiag export`` (``gandiag/contract.json`` extra file)
is picked up, so exported generators need no flags.
"""

from __future__ import annotations

import importlib
import json
import pickle
import warnings
import zipfile
from pathlib import Path

import torch

from gandiag.checkpoint import build_network, check_version, is_gandiag_checkpoint
from gandiag.contract import GeneratorContract
from gandiag.errors import CheckpointError
from gandiag.hookspecs import hookimpl
from gandiag.loading import LoadedGenerator, LoadOptions

__version__ = "0.1.0"
CONTRACT_FILE = "gandiag/contract.json"
SUFFIXES = (".pt", ".pth", ".pt2", ".ckpt", ".bin", ".jit", ".torchscript")


def _zip_names(path: Path) -> list:
    try:
        with zipfile.ZipFile(path) as z:
            return z.namelist()
    except (zipfile.BadZipFile, OSError):
        return []


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:240]


def _call(module):
    def forward(z, labels=None):
        return module(z) if labels is None else module(z, labels)

    return forward


class TorchLoader:
    name = "torch"
    description = "PyTorch: gandiag checkpoints, torch.export (.pt2), TorchScript, trusted pickles"

    def sniff(self, path: Path) -> bool:
        if path.is_dir():
            return False
        if path.suffix.lower() in SUFFIXES:
            return True
        with open(path, "rb") as f:
            head = f.read(2)
        return head in (b"PK", b"\x80\x02")

    def load(self, path: Path, options: LoadOptions) -> LoadedGenerator:
        names = _zip_names(path)
        if any(n.endswith("serialized_exported_program.json") or "/models/" in n and n.endswith(".json") for n in names):
            return self._load_export(path, options, names)
        if any(n.endswith("constants.pkl") or "/code/" in n for n in names):
            return self._load_torchscript(path, options)
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            return self._load_untrusted_pickle(path, options, exc)
        except Exception as exc:
            raise CheckpointError(f"{path}: corrupt or truncated PyTorch file ({_first_line(exc)})") from None
        if is_gandiag_checkpoint(obj):
            return self._load_gandiag(path, options, obj)
        if isinstance(obj, dict) and obj and all(torch.is_tensor(v) for v in obj.values()):
            return self._load_state_dict(path, options, obj)
        raise CheckpointError(
            f"{path}: a PyTorch file, but neither a gandiag checkpoint, a state dict, TorchScript nor torch.export"
        )

    # -- formats -----------------------------------------------------------------------------
    def _load_gandiag(self, path, options, ckpt) -> LoadedGenerator:
        check_version(ckpt, path)
        spec = dict(ckpt["generator"])
        ema = ckpt.get("ema_generator")
        used_ema = bool(options.use_ema and ema)
        if used_ema:
            spec["state_dict"] = ema
        net = build_network(spec).to(options.device).eval()
        contract = GeneratorContract.from_json(ckpt["contract"])
        return LoadedGenerator(
            _call(net), contract, "gandiag", str(path), module=net, checkpoint=ckpt,
            real_source=(ckpt.get("data") or {}).get("source"),
            meta={"arch": spec["arch"], "step": ckpt.get("step"), "ema": used_ema, "variant": (ckpt.get("config") or {}).get("variant")},
        )

    def _read_contract(self, extra: str):
        if not extra:
            return None
        try:
            return GeneratorContract.from_json(json.loads(extra))
        except Exception as exc:
            raise CheckpointError(f"stored generator contract is unreadable: {_first_line(exc)}") from None

    def _load_torchscript(self, path, options) -> LoadedGenerator:
        extra = {CONTRACT_FILE: ""}
        try:
            with warnings.catch_warnings():  # deprecated in torch 2.14, still read for existing files
                warnings.simplefilter("ignore", FutureWarning)
                module = torch.jit.load(str(path), map_location=options.device, _extra_files=extra)
        except Exception as exc:
            raise CheckpointError(f"{path}: corrupt TorchScript archive ({_first_line(exc)})") from None
        module.eval()
        return LoadedGenerator(_call(module), self._read_contract(extra[CONTRACT_FILE]), "torchscript", str(path), module=module)

    def _load_export(self, path, options, names) -> LoadedGenerator:
        extra = {CONTRACT_FILE: ""}
        try:
            program = torch.export.load(str(path), extra_files=extra)
        except Exception as exc:
            raise CheckpointError(f"{path}: corrupt torch.export program ({_first_line(exc)})") from None
        module = program.module()
        if options.device != "cpu":
            module = module.to(options.device)
        contract = self._read_contract(extra[CONTRACT_FILE])
        if contract is None:  # the traced input tells the latent size
            z_spec = program.graph_signature.user_inputs
            placeholders = [n for n in program.graph.nodes if n.op == "placeholder" and n.name in z_spec]
            if placeholders and "val" in placeholders[0].meta:
                shape = placeholders[0].meta["val"].shape
                if len(shape) == 2 and isinstance(shape[1], int):
                    contract = GeneratorContract(latent_dim=int(shape[1]), num_classes=0, detected=["latent_dim"])
        return LoadedGenerator(_call(module), contract, "torch.export", str(path), module=None)

    def _load_untrusted_pickle(self, path, options, exc) -> LoadedGenerator:
        if not options.trust_checkpoint:
            raise CheckpointError(
                f"{path} holds pickled Python objects (e.g. a whole nn.Module), which run code when loaded; "
                "if you trust where it came from, pass --trust-checkpoint"
            )
        try:
            obj = torch.load(path, map_location=options.device, weights_only=False)
        except Exception as e:
            raise CheckpointError(f"{path}: cannot unpickle ({_first_line(e)})") from None
        if not isinstance(obj, torch.nn.Module):
            raise CheckpointError(f"{path}: unpickled a {type(obj).__name__}, not a torch.nn.Module")
        obj.eval()
        return LoadedGenerator(_call(obj), _contract_from_attrs(obj), "pickled-module", str(path), module=obj)

    def _load_state_dict(self, path, options, state) -> LoadedGenerator:
        if not options.generator_class:
            raise CheckpointError(
                f"{path} is a bare state dict: name its network with --generator-class module:Class "
                "(importing it runs code, so --trust-checkpoint is needed too)"
            )
        if not options.trust_checkpoint:
            raise CheckpointError(
                f"--generator-class {options.generator_class} imports and runs Python code; pass --trust-checkpoint if you trust it"
            )
        mod_name, _, cls_name = options.generator_class.partition(":")
        try:
            cls = getattr(importlib.import_module(mod_name), cls_name)
            module = cls()
            module.load_state_dict(state)
        except Exception as exc:
            raise CheckpointError(f"cannot build {options.generator_class} from {path}: {_first_line(exc)}") from None
        module.to(options.device).eval()
        return LoadedGenerator(_call(module), _contract_from_attrs(module), "state_dict", str(path), module=module)


def _contract_from_attrs(module):
    """Common attribute names for the latent size on user modules."""
    for attr in ("latent_dim", "z_dim", "nz", "z_size", "noise_dim"):
        v = getattr(module, attr, None)
        if isinstance(v, int) and v > 0:
            return GeneratorContract(latent_dim=v, num_classes=int(getattr(module, "num_classes", 0) or 0), detected=["latent_dim"])
    return None


@hookimpl(trylast=True)
def register_loaders(register):
    register(TorchLoader())
