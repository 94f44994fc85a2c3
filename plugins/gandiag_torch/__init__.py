"""PyTorch checkpoint loader for gandiag, an ordinary entry-point plugin.

Reads, in order of safety:

- gandiag checkpoints (a dict of tensors, loaded with ``weights_only=True``;
  the architecture is rebuilt by name, no code is unpickled);
- ``torch.export`` programs (``.pt2``) and TorchScript archives. Both are
  programs and their loaders can run code (pickles, sympy strings, guard
  code, ``__setstate__``), so without ``--trust-checkpoint`` the archive is
  checked first (:mod:`gandiag.safety.torch_archive`) and the loaded graphs
  are checked against an operator allow-list (:mod:`gandiag.safety.torch_graph`)
  before anything runs; docs/security.md says what is refused;
- with ``--trust-checkpoint`` only: a whole pickled ``nn.Module``, or a bare
  state dict plus ``--generator-class module:Class``. Unpickling those runs
  arbitrary code, so without the flag they are refused with the reason.

``.safetensors`` files (tensors only, parsed by :mod:`gandiag.safety.safetensors_file`)
are read as state dicts: they need ``--generator-class`` like a ``.pt`` one.

Other frameworks' files under a torch suffix (Keras, JAX/Flax msgpack,
diffusers weights) are refused with what to do instead
(:mod:`gandiag.generator.foreign`).

A contract stored by ``gandiag export`` (``gandiag/contract.json`` extra file)
is picked up, so exported generators need no flags.
"""

from __future__ import annotations

import pickle
import warnings
import zipfile
from pathlib import Path
from typing import Optional

import torch

from gandiag import (CheckpointError, GandiagError, GeneratorContract, GeneratorOutputError, LoadedGenerator,
                     LoadOptions, hookimpl)
from gandiag.generator.checkpoint import build_network, is_gandiag_checkpoint, validate_checkpoint
from gandiag.generator.contract import STORED_IN_ARCHIVE, read_stored
from gandiag.generator.introspect import module_contract
from gandiag.generator.signature import call_batched
from gandiag.generator.user_code import build_class, check_paths, import_module_of, importable, pickle_finding_main_in
from gandiag.safety.files import require_input
from gandiag.generator.foreign import refuse as refuse_foreign
from gandiag.safety.keras_files import KERAS_SUFFIXES
from gandiag.safety.safetensors_file import looks_like_safetensors, read_safetensors
from gandiag.safety.torch_archive import (check_pt2, check_torchscript, check_weights_archive, pickle_global,
                                          pickled_global, weights_only_backstop)
from gandiag.safety.torch_graph import check_exported_program, check_script_module, check_script_tensors
from gandiag.safety.untrusted import shown, untrusted

__version__ = "0.1.0"
SUFFIXES = (".pt", ".pth", ".pt2", ".ckpt", ".bin", ".jit", ".torchscript")


def _zip_names(path: Path) -> list:
    """Member names when the file is a zip archive; [] otherwise (then it is read as a pickle, or refused)."""
    try:
        with zipfile.ZipFile(path) as z:
            return z.namelist()
    except Exception:  # zipfile raises many types on hostile bytes (BadZipFile, UnicodeDecodeError, ValueError...)
        return []


def _first_line(exc: BaseException) -> str:
    text = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
    if text and text[0].startswith("The following operation failed in the TorchScript interpreter"):
        text = text[-1:]  # the interpreter's traceback ends with the error itself ("RuntimeError: ...")
    return shown(text[0] if text else type(exc).__name__, 240)


def _call(module, path, quiet: bool = False, fixed_batch: Optional[int] = None):
    """``forward(z, labels)``: a failure of the file's network is bad input (exit 2), named with the file.

    ``quiet``: warnings that the file's TorchScript code raises (``aten::warn``) are not shown.
    ``fixed_batch``: the program was traced at this batch size only (``torch.export`` without dynamic shapes,
    its default): it runs in chunks of that size, the last one padded.
    """
    def run(z, labels):
        if not quiet:
            return module(z) if labels is None else module(z, labels)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return module(z) if labels is None else module(z, labels)

    def forward(z, labels=None):
        try:
            return call_batched(run, z, labels, fixed_batch)
        except GandiagError:
            raise
        except Exception as exc:
            raise GeneratorOutputError(f"{path}: the generator failed on a batch of {z.shape[0]}: "
                                       f"{_first_line(exc)}") from None

    return forward


class TorchLoader:
    name = "torch"
    description = "PyTorch: gandiag checkpoints, torch.export (.pt2), TorchScript, trusted pickles"

    def sniff(self, path: Path) -> bool:
        if not path.is_file() or path.suffix.lower() in KERAS_SUFFIXES:  # never open a FIFO or a device
            return False
        if path.suffix.lower() in SUFFIXES:
            return True
        with open(path, "rb") as f:
            head = f.read(10)
        return head[:2] in (b"PK", b"\x80\x02") or looks_like_safetensors(path, head)

    def load(self, path: Path, options: LoadOptions) -> LoadedGenerator:
        require_input(path, "a checkpoint", error=CheckpointError)
        names = _zip_names(path)
        refuse_foreign(path, names)  # Keras, JAX/Flax, diffusers weights under a torch suffix: say what to do
        with open(path, "rb") as f:
            head = f.read(10)
        if not names and looks_like_safetensors(path, head):  # tensors only: a state dict, read without torch.load
            return self._load_state_dict(path, options, lambda: read_safetensors(path), "safetensors")
        if any(n.endswith("serialized_exported_program.json") or "/models/" in n and n.endswith(".json") for n in names):
            return self._load_export(path, options, names)
        if any(n.endswith("constants.pkl") or "/code/" in n for n in names):
            return self._load_torchscript(path, options)
        if names:  # a zip archive: its members' sizes are checked before torch.load allocates them
            check_weights_archive(path)
        try:
            with warnings.catch_warnings():  # "Detected pickle protocol 4...": the refusal says what matters
                warnings.simplefilter("ignore")
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
        validate_checkpoint(ckpt, path)
        spec = dict(ckpt["generator"])
        ema = ckpt.get("ema_generator")
        used_ema = bool(options.use_ema and ema)
        if used_ema:
            spec["state_dict"] = ema
        net = build_network(spec, path, "generator").to(options.device).eval()
        contract = GeneratorContract.from_json(ckpt["contract"])
        return LoadedGenerator(
            _call(net, path), contract, "gandiag", str(path), module=net, checkpoint=ckpt,
            real_source=(ckpt.get("data") or {}).get("source"),
            meta={"arch": spec["arch"], "step": ckpt.get("step"), "ema": used_ema, "variant": (ckpt.get("config") or {}).get("variant")},
            inverse=self._inverse(path, options, ckpt),
            takes_labels=bool(contract.num_classes),  # gandiag's own contract says: --num-classes cannot change it
        )

    @staticmethod
    def _inverse(path, options, ckpt) -> Optional[LoadedGenerator]:
        """A translator checkpoint's other direction (B -> A), built like the generator."""
        if ckpt.get("inverse_generator") is None:
            return None
        spec = ckpt["inverse_generator"]
        net = build_network(spec, path, "inverse_generator").to(options.device).eval()
        return LoadedGenerator(_call(net, f"{path} (inverse generator)"), GeneratorContract.from_json(
            ckpt["inverse_contract"]), "gandiag", str(path), "torch", module=net,
            meta={"arch": spec["arch"], "direction": "b2a"})

    def _load_torchscript(self, path, options) -> LoadedGenerator:
        extra = {STORED_IN_ARCHIVE: ""}
        trusted = options.trust_checkpoint
        with open(path, "rb") as f:  # one open file for the check and the load: nothing swapped in between
            if not trusted:
                check_torchscript(path, f)
            try:
                with warnings.catch_warnings():  # deprecated in torch 2.14, still read for existing files
                    warnings.simplefilter("ignore")
                    module = torch.jit.load(f, map_location=options.device, _extra_files=extra)
            except Exception as exc:
                raise CheckpointError(f"{path}: corrupt TorchScript archive ({_first_line(exc)})") from None
        check_script_tensors(path, module)  # trusted too: a short record would crash the process, not run code
        if not trusted:
            check_script_module(path, module)
        module.eval()
        read, conditional, known = module_contract(module)  # read from the compiled module's layers, nothing run
        return LoadedGenerator(_call(module, path, quiet=not trusted), read_stored(extra[STORED_IN_ARCHIVE], path) or read,
                               "torchscript", str(path), module=module, takes_labels=conditional, known=known)

    def _load_export(self, path, options, names) -> LoadedGenerator:
        extra = {STORED_IN_ARCHIVE: ""}
        if options.trust_checkpoint:
            try:
                program = torch.export.load(str(path), extra_files=extra)
            except Exception as exc:
                raise CheckpointError(f"{path}: corrupt torch.export program ({_first_line(exc)})") from None
        elif "serialized_exported_program.json" in names:
            raise untrusted(path, "it is a torch.export archive of the pre-2.8 format, whose loader unpickles with "
                                  "weights_only=False; re-save it with a current torch.export.save")
        else:
            program, extra[STORED_IN_ARCHIVE] = _load_export_checked(path)
        try:
            module = program.module()
        except Exception as exc:
            raise CheckpointError(f"{path}: corrupt torch.export program ({_first_line(exc)})") from None
        if options.device != "cpu":
            module = module.to(options.device)
        contract = read_stored(extra[STORED_IN_ARCHIVE], path)
        inputs = _traced_inputs(program)
        if contract is None:
            contract = _contract_from_traced(inputs)
        fixed = inputs[0][0][0] if inputs and inputs[0][0] else None  # an int where the batch was not dynamic
        return LoadedGenerator(_call(module, path, fixed_batch=fixed), contract, "torch.export", str(path),
                               module=module, takes_labels=len(inputs) >= 2,
                               meta={"fixed_batch": fixed} if fixed else {})

    def _load_untrusted_pickle(self, path, options, exc) -> LoadedGenerator:
        found = pickled_global(exc) or _head_global(path)
        if not options.trust_checkpoint and found is None:  # not a pickle torch reads: garbage, not a threat
            raise CheckpointError(f"{path}: corrupt or truncated, or not a PyTorch file: neither a zip archive "
                                  "nor a pickle that torch.load reads")
        if not options.trust_checkpoint:
            raise untrusted(path, f"it holds pickled Python objects (global {shown(found)}; a whole nn.Module, "
                                  "say), which run code when unpickled")
        check_paths(options.generator_path)
        extra = {}
        if options.generator_class:  # the module holding the classes a script pickled as __main__.X
            extra["pickle_module"] = pickle_finding_main_in(
                import_module_of(options.generator_class, options.generator_path)[0])
        with importable(options.generator_path):  # a pickle imports its classes: from installed packages, then these
            try:
                obj = torch.load(path, map_location=options.device, weights_only=False, **extra)
            except ImportError as e:
                raise CheckpointError(f"{path}: the pickle needs code that is not importable ({_first_line(e)}); "
                                      "pass --generator-path DIR for the folder holding it") from None
            except AttributeError as e:
                if "__main__" not in str(e):
                    raise CheckpointError(f"{path}: cannot unpickle ({_first_line(e)})") from None
                raise CheckpointError(f"{path}: its network class was defined in the script or notebook that saved "
                                      f"it ({_first_line(e)}); pass --generator-class module:Class for a module "
                                      "defining it (found in --generator-path DIR or the current folder)") from None
            except Exception as e:
                raise CheckpointError(f"{path}: cannot unpickle ({_first_line(e)})") from None
        if not isinstance(obj, torch.nn.Module):
            raise CheckpointError(f"{path}: unpickled a {type(obj).__name__}, not a torch.nn.Module")
        obj.eval()
        return _module_generator(obj, path, "pickled-module")

    def _load_state_dict(self, path, options, state, fmt: str = "state_dict") -> LoadedGenerator:
        """A state dict (``state``, or a function reading it once the flags are checked) into --generator-class."""
        if not options.generator_class:
            what = "a safetensors file (a state dict)" if fmt == "safetensors" else "a bare state dict"
            raise CheckpointError(
                f"{path} is {what}: name its network with --generator-class module:Class "
                "(importing it runs code, so --trust-checkpoint is needed too)"
            )
        if not options.trust_checkpoint:
            raise CheckpointError(
                f"--generator-class {options.generator_class} imports and runs Python code; pass --trust-checkpoint if you trust it"
            )
        module = build_class(options.generator_class, options.generator_kwargs, options.generator_path, True)
        if not isinstance(module, torch.nn.Module):
            raise CheckpointError(f"--generator-class {options.generator_class} built a {type(module).__name__}, "
                                  "not a torch.nn.Module")
        if callable(state):
            state = state()
        try:
            module.load_state_dict(state)
        except Exception as exc:
            raise CheckpointError(f"{path} does not fit --generator-class {options.generator_class} "
                                  f"(with --generator-kwargs {options.generator_kwargs or {}}): {_first_line(exc)}") from None
        module.to(options.device).eval()
        return _module_generator(module, path, fmt)


def _head_global(path, limit: int = 1 << 20):
    """The first global named in the file's first MiB, if it is a plain pickle (``pickle.dump``'d)."""
    with open(path, "rb") as f:
        return pickle_global(f.read(limit))


def _load_export_checked(path):
    """A ``.pt2`` checked before and after loading; returns (program, stored contract text).

    ``load_pt2`` is called rather than ``torch.export.load``, which falls back
    to the pre-2.8 format, read with a second zip parser, when the first load
    fails; such old archives need --trust-checkpoint.
    """
    from torch.export.pt2_archive._package import load_pt2

    with open(path, "rb") as f:  # one open file for the check and the load: nothing swapped in between
        check_pt2(path, f)
        try:
            with weights_only_backstop(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                contents = load_pt2(f)
        except CheckpointError:
            raise
        except Exception as exc:
            raise CheckpointError(f"{path}: corrupt torch.export program ({_first_line(exc)})") from None
    program = contents.exported_programs.get("model")
    if program is None:
        raise CheckpointError(f"{path}: no program named 'model' in this torch.export archive")
    check_exported_program(path, program)
    return program, contents.extra_files.get(STORED_IN_ARCHIVE, "")


def _traced_inputs(program) -> list:
    """(shape, dtype) of each user input of an exported program, as traced (dynamic sizes as None)."""
    names = set(program.graph_signature.user_inputs)
    out = []
    for node in program.graph.nodes:
        if node.op == "placeholder" and node.name in names:
            val = node.meta.get("val")
            shape = getattr(val, "shape", None)
            if shape is None:
                out.append((None, None))
                continue
            out.append((tuple(d if isinstance(d, int) else None for d in shape), getattr(val, "dtype", None)))
    return out


def _contract_from_traced(inputs: list):
    """The latent's traced shape (N, *shape) and, for a second input, the label format: integer indices, or
    one-hot floats whose width is the number of classes."""
    if not inputs or inputs[0][0] is None or len(inputs[0][0]) < 2 or None in inputs[0][0][1:]:
        return None
    shape = inputs[0][0][1:]
    decided = {"latent_dim": "file", "latent_shape": "file"}
    num_classes, label_format = 0, "index"
    if len(inputs) >= 2 and inputs[1][0] is not None:
        (lshape, ldtype) = inputs[1]
        if ldtype is not None and ldtype.is_floating_point and len(lshape) == 2 and lshape[1]:
            num_classes, label_format = lshape[1], "onehot"
            decided.update(num_classes="file", label_format="file")
    return GeneratorContract(latent_dim=int(torch.Size(shape).numel()), latent_shape=shape if len(shape) > 1 else None,
                             num_classes=num_classes, label_format=label_format, detected=["latent_dim"],
                             decided=decided).validate()


def _module_generator(module, path, fmt: str) -> LoadedGenerator:
    """A user's nn.Module as a generator: its contract read from the module (gandiag.generator.introspect)."""
    contract, conditional, known = module_contract(module)
    return LoadedGenerator(_call(module, path), contract, fmt, str(path), module=module, takes_labels=conditional,
                           known=known)


@hookimpl(trylast=True)
def register_loaders(register):
    register(TorchLoader())
