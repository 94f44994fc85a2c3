"""Export a gandiag checkpoint's generator to the formats teams ship.

``export_checkpoint(ckpt, to, out)`` with ``to`` one of:

- ``onnx``: ``torch.onnx.export`` (the torch.export-based exporter, which
  needs onnxscript), dynamic batch axis;
- ``savedmodel``: a TensorFlow SavedModel rebuilt natively from the weights
  (:mod:`gandiag.export.tensorflow`), images NHWC; gandiag's image and point
  networks only (sequence generators are refused: onnx, export or torchscript);
- ``export``: a ``torch.export`` program (``.pt2``), dynamic batch;
- ``torchscript``: a traced TorchScript archive (deprecated by PyTorch, kept
  for runtimes that still need it).

Each export stores the generator contract (latent size and distribution,
classes, output kind, layout and range) in the file, so the loaders need no
flags: ONNX ``metadata_props["gandiag.contract"]``, the ``gandiag/contract.json``
extra file of TorchScript and ``.pt2`` archives, and
``assets.extra/gandiag_contract.json`` in a SavedModel. Every export is run
once against the PyTorch generator before it is written, and refused if the
outputs differ. Files are written atomically; a SavedModel directory appears
whole or not at all.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from ..atomic import write_bytes
from ..errors import GandiagError
from ..generator.contract import STORED_IN_ARCHIVE, STORED_IN_ONNX, STORED_IN_SAVEDMODEL, GeneratorContract, stored_text
from ..generator.sampling import generator_inputs
from ..translation.inputs import complete_contract, synthetic_inputs, to_generator_input

TARGETS = ("onnx", "savedmodel", "export", "torchscript")
SUFFIX = {"onnx": ".onnx", "savedmodel": "", "export": ".pt2", "torchscript": ".pt"}
TOLERANCE = 1e-4  # max abs difference from PyTorch on the check batch (outputs are O(1))


def _missing(package: str, extra: str, target: str) -> GandiagError:
    return GandiagError(f"--to {target} needs {package}: pip install 'gandiag[{extra}]'")


def export_checkpoint(ckpt_path, to: str, out_path, *, use_ema: bool = True, overwrite: bool = False,
                      options=None, direction: str = "a2b") -> Path:
    """Write the generator in ``ckpt_path`` as ``to``; returns ``out_path``.

    Any file gandiag loads as a PyTorch generator can be exported: a gandiag
    checkpoint, and (with ``options.trust_checkpoint``) a pickled module, a
    state dict with ``--generator-class``, a ``.pt2`` program or TorchScript.
    ``options`` (an :class:`~gandiag.options.EvalOptions`) carries the flags
    that open it and complete its contract (``--latent-shape``,
    ``--num-classes``...); the contract is completed by a probe batch, as for
    an evaluation, and stored in the export, latent shape included. Graph
    formats (ONNX, SavedModel) are not converted; ``savedmodel`` is written
    only for gandiag's own architectures, which it rebuilds in TensorFlow.
    A translator's checkpoint holds two directions: ``direction`` "b2a" exports its inverse (G_BA).
    """
    from ..options import EvalOptions

    if to not in TARGETS:
        raise GandiagError(f"unknown export target {to!r}; valid: {', '.join(TARGETS)}")
    out = Path(out_path)
    if os.path.lexists(out) and not overwrite:
        raise GandiagError(f"{out} already exists; choose another -o or pass --force")
    _check_output(out, to, Path(ckpt_path))
    opts = (options or EvalOptions()).with_overrides(use_ema=use_ema, device="cpu")
    net, arch, contract = _source(Path(ckpt_path), opts, to, direction)
    return export_network(net, arch, contract, to, out)


def export_network(net: torch.nn.Module, arch: str, contract: GeneratorContract, to: str, out: Path) -> Path:
    """Write ``net`` (in eval mode, its contract complete) as ``to`` at ``out``, checked against PyTorch first.

    The one writer behind :func:`export_checkpoint` and the training monitor's snapshots.
    """
    if contract.is_translator:
        args = (to_generator_input(synthetic_inputs(contract, 3).data, contract),)
    else:
        z = torch.randn(3, contract.latent_dim, generator=torch.Generator().manual_seed(0))
        labels = torch.arange(3) % contract.num_classes if contract.num_classes else None
        args = tuple(a for a in generator_inputs(z, labels, contract) if a is not None)
    try:
        with torch.no_grad():
            expected = net(*args)
    except Exception as exc:  # the file's network, not gandiag: bad input
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:240]
        raise GandiagError(f"--to {to}: the generator ({arch}) fails on an example batch of {args[0].shape[0]}: "
                           f"{type(exc).__name__}: {first}") from None
    expected = expected[0] if isinstance(expected, (tuple, list)) else expected
    writer = {"onnx": _onnx, "savedmodel": _savedmodel, "export": _torch_export, "torchscript": _torchscript}[to]
    try:
        writer(net, arch, contract, args, expected, Path(out))
    except GandiagError:
        raise
    except Exception as exc:  # an exporter's failure on a network it cannot trace: say which, write nothing
        first = re.sub(r"\x1b\[[0-9;]*m", "", (str(exc).strip().splitlines() or [type(exc).__name__])[0])[:240]
        raise GandiagError(f"--to {to}: torch cannot export this generator ({arch}): {type(exc).__name__}: "
                           f"{first}") from None
    return Path(out)


def _source(path: Path, opts, to: str, direction: str = "a2b"):
    """(network, architecture name, completed contract) of the generator to export."""
    from ..generator.loading import LoadOptions, load_generator
    from ..generator.sampling import probe
    from ..inputs import resolve_contract

    gen = load_generator(path, LoadOptions.from_options(opts))
    if not isinstance(gen.module, torch.nn.Module):
        raise GandiagError(f"{path} is a {gen.format} graph, not a PyTorch generator: gandiag exports PyTorch "
                           "generators (gandiag checkpoints, .pt2, TorchScript, trusted pickles and state dicts)")
    if (gen.meta or {}).get("fixed_batch"):  # its graph holds that batch size: any export of it would too
        raise GandiagError(f"{path} was traced at a batch size of {gen.meta['fixed_batch']} only (torch.export "
                           "without dynamic_shapes): gandiag evaluates it as it is, in chunks of that size; to "
                           "export it, export the original nn.Module, or re-export with a dynamic batch axis "
                           "(dynamic_shapes={0: torch.export.Dim.DYNAMIC} for each input)")
    if "truncation_psi" in (gen.meta or {}):  # its call carries truncation and noise arguments a graph would drop
        raise GandiagError(f"{path}: StyleGAN and BigGAN generators are not exported (their truncation and noise "
                           "inputs are not part of a plain generator's call); evaluate the pickle itself")
    if direction == "b2a":
        if gen.inverse is None:
            raise GandiagError(f"--direction b2a: {path} holds no inverse generator (only a translator's gandiag "
                               "checkpoint does)")
        gen = gen.inverse
    elif direction != "a2b":
        raise GandiagError(f"--direction {direction!r}: a2b or b2a")
    contract = resolve_contract(gen, opts)
    if contract.is_translator:
        if to == "savedmodel":
            raise GandiagError("--to savedmodel: gandiag rebuilds only its latent generators in TensorFlow; export "
                               "a translator --to onnx, --to export or --to torchscript")
        contract = complete_contract(contract, synthetic_inputs(contract, PROBE_INPUTS), "file")
        contract = probe(gen, contract, opts.seed, "cpu", inputs=synthetic_inputs(contract, PROBE_INPUTS))
    else:
        contract = probe(gen, contract, opts.seed, "cpu")
    arch = (gen.meta or {}).get("arch") or f"{gen.format}: {type(gen.module).__name__}"
    if to == "savedmodel" and contract.kind == "sequences":
        raise GandiagError(f"--to savedmodel rebuilds only gandiag's image and point networks in TensorFlow, not "
                           f"sequence generators ({arch}); export it --to onnx, --to export or --to torchscript")
    if to == "savedmodel" and gen.format != "gandiag":
        raise GandiagError(f"--to savedmodel rebuilds gandiag's own architectures in TensorFlow; {path} "
                           f"({gen.format}) can be exported --to onnx or --to export")
    if isinstance(gen.module, torch.jit.ScriptModule) and to in ("onnx", "export"):
        raise GandiagError(f"--to {to}: {path} is TorchScript, which torch.export cannot trace; export the "
                           "original nn.Module (a trusted pickle or state dict) instead")
    with contextlib.suppress(NotImplementedError):  # a .pt2 program's module is fixed in eval mode already
        gen.module.eval()
    return gen.module, arch, contract


PROBE_INPUTS = 64  # random inputs of a translator's input shape: its output range is read from them


def _check_output(out: Path, to: str, source: Path) -> None:
    """Refused before any work: a special file, a folder where a file goes (and the reverse), the checkpoint
    being exported, and for a SavedModel any existing folder that is not a SavedModel (``-o .`` with
    ``--force`` once emptied the working folder) or that holds the checkpoint."""
    from ..atomic import refuse_inputs, resolve_output

    if to != "savedmodel":
        refuse_inputs(resolve_output(out, "-o/--output"), "-o/--output", [(source, "the checkpoint")])
        return
    if os.path.islink(out) or (os.path.lexists(out) and not out.is_dir()):
        raise GandiagError(f"-o {out}: a SavedModel is a folder; {out} exists and is not one (nothing is replaced)")
    if not out.exists():
        resolve_output(out, "-o/--output")  # the folder it will be created in
        return
    folder, cwd = out.resolve(), Path.cwd().resolve()
    if not (folder / "saved_model.pb").is_file():
        raise GandiagError(f"-o {out}: {folder} is a folder but not a SavedModel (no saved_model.pb); --force "
                           "replaces only an earlier SavedModel, never other folders (nothing is replaced)")
    if folder == cwd or folder in cwd.parents or folder in source.resolve().parents:
        raise GandiagError(f"-o {out}: {folder} holds the working folder or the checkpoint; write the SavedModel "
                           "elsewhere (nothing is replaced)")


def _names(contract: GeneratorContract):
    inputs = ["x" if contract.is_translator else "z"] + (["labels"] if contract.num_classes else [])
    return inputs, (contract.kind if contract.kind in ("points", "sequences") else "images")


def _check(target: str, got, expected: torch.Tensor) -> None:
    got = got.detach().cpu() if torch.is_tensor(got) else torch.as_tensor(np.asarray(got))
    if got.shape != expected.shape:
        raise GandiagError(f"--to {target}: the exported generator returns shape {tuple(got.shape)}, "
                           f"PyTorch {tuple(expected.shape)}; nothing written")
    diff = (got.float() - expected.float()).abs().max().item()
    if not diff <= TOLERANCE:
        raise GandiagError(f"--to {target}: the exported generator differs from PyTorch by {diff:.3g}; nothing written")


def _check_another_batch(target: str, run, net, args) -> None:
    """A traced graph keeps the example's batch size wherever the code reads it: check a batch of another size."""
    more = tuple(torch.cat([a, a[:1]]) for a in args)
    with torch.no_grad():
        want = net(*more)
    try:
        got = run(*more)
    except Exception as exc:
        raise GandiagError(f"--to {target}: the exported generator fixes the batch size of the check batch "
                           f"({type(exc).__name__}); nothing written") from None
    _check(target, got, want[0] if isinstance(want, (tuple, list)) else want)


def _dynamic_shapes(args) -> tuple:
    """The batch axis of every input dynamic (positional, so the network's argument names do not matter).

    ``Dim.DYNAMIC`` lets torch.export infer the batch range (a ``.pt2`` being
    re-exported may already bound it) and fails, rather than specialising, when
    the network fixes the batch size.
    """
    return tuple({0: torch.export.Dim.DYNAMIC} for _ in args)


def _onnx(net, arch, contract, args, expected, out: Path) -> None:
    try:
        import onnx
        import onnxruntime as ort
        import onnxscript  # noqa: F401  (torch.onnx's exporter needs it)
    except ImportError as exc:
        raise _missing(exc.name or "onnx", "onnx", "onnx") from None
    inputs, output = _names(contract)
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tmp_file = Path(tmp) / "g.onnx"
        torch.onnx.export(net, args, str(tmp_file), input_names=inputs, output_names=[output], dynamo=True,
                          dynamic_shapes=_dynamic_shapes(args), external_data=False, verbose=False,
                          report=False)
        model = onnx.load(str(tmp_file))
    model.doc_string = f"gandiag generator ({arch})"
    entry = model.metadata_props.add()
    entry.key, entry.value = STORED_IN_ONNX, stored_text(contract)
    data = model.SerializeToString()
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    feed = {name: a.numpy() for name, a in zip(inputs, args)}
    _check("onnx", sess.run([output], feed)[0], expected)
    _check_another_batch("onnx", lambda *a: sess.run([output], {n: x.numpy() for n, x in zip(inputs, a)})[0], net, args)
    write_bytes(out, data)


def _torch_export(net, arch, contract, args, expected, out: Path) -> None:
    inputs, _ = _names(contract)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.export.export(net, args, dynamic_shapes=_dynamic_shapes(args))
    _check("export", program.module()(*args), expected)
    _check_another_batch("export", program.module(), net, args)
    buf = io.BytesIO()
    torch.export.save(program, buf, extra_files={STORED_IN_ARCHIVE: stored_text(contract)})
    write_bytes(out, buf.getvalue())


def _torchscript(net, arch, contract, args, expected, out: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(net, args, check_trace=False)
    # A traced graph keeps the example's batch size only where the code reads it; check another size.
    _check("torchscript", traced(*args), expected)
    _check_another_batch("torchscript", traced, net, args)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(traced, buf, _extra_files={STORED_IN_ARCHIVE: stored_text(contract)})
    write_bytes(out, buf.getvalue())


def _savedmodel(net, arch, contract, args, expected, out: Path) -> None:
    from .tensorflow import build_tf_module, import_tensorflow

    try:
        tf = import_tensorflow()
    except ImportError:
        raise _missing("tensorflow", "tensorflow", "savedmodel") from None

    module = build_tf_module(arch, net)
    tf_args = [tf.constant(a.numpy()) for a in args]
    got = module.serve(*tf_args)
    _, output = _names(contract)
    got = got[output].numpy()
    if got.ndim == 4:
        got = got.transpose(0, 3, 1, 2)  # compare in PyTorch's layout
    _check("savedmodel", got, expected)
    layout = "NHWC" if contract.kind == "images" else contract.layout
    parent = out.absolute().parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=parent))
    try:
        tf.saved_model.save(module, str(tmp), signatures={"serving_default": module.serve})
        (tmp / "assets.extra").mkdir(exist_ok=True)
        (tmp / STORED_IN_SAVEDMODEL).write_text(stored_text(contract, layout=layout))
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp's 0700 would hide the export from other users
        _replace_folder(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _replace_folder(new: Path, out: Path) -> None:
    """Put the folder ``new`` at ``out``: an earlier ``out`` is moved aside first and restored if the move
    fails, so a failed export leaves the earlier SavedModel as it was, never nothing."""
    if not (out.is_dir() and not out.is_symlink()):
        os.replace(new, out)
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.absolute().parent))
    os.rmdir(aside)
    os.replace(out, aside)
    try:
        os.replace(new, out)
    except BaseException:
        os.replace(aside, out)
        raise
    shutil.rmtree(aside, ignore_errors=True)
