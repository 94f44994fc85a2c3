"""Snapshots of a live generator, in files that any gandiag command reads without ``--trust-checkpoint``.

A user's generator is their own class: pickling it would make every later
reader run their code. So a snapshot is the generator *traced*: a
``torch.export`` program (``.pt2``, ATen ops only, the contract stored inside:
the same file ``gandiag export --to export`` writes), checked against the
live network before it is written, written atomically (a reader never sees
half a file). A generator that torch.export cannot trace (data-dependent
Python control flow) is snapshotted as its *samples* instead: a ``.npz`` of
a fixed seeded batch, which the sample metrics and diagnostics read but the
generator's own checks (latent sensitivity, the Jacobian) cannot. The
snapshot is taken in eval mode (BatchNorm reads its running statistics, as
any evaluation of the file will) and the network is put back as it was.

The real samples a user passes as a tensor (or a DataLoader) are written once
as ``real.npz`` (and a held-out set as ``held_out.npz``) beside the log (images as uint8 through the generator's own
output range), so the checks, ``gandiag evaluate`` and ``gandiag watch`` all
compare against the same set later.
"""

from __future__ import annotations

import contextlib
import copy
import io
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..atomic import write_bytes
from ..errors import GandiagError
from ..generator.contract import GeneratorContract
from ..generator.loading import LoadedGenerator

REAL_NAME, HELD_OUT_NAME, SETTINGS_NAME = "real.npz", "held_out.npz", "monitor.json"
SAMPLE_SNAPSHOT_N = 2048  # samples in a snapshot of a generator torch.export cannot trace
MAX_REAL = 10_000  # real samples taken from a tensor or DataLoader


@contextlib.contextmanager
def eval_mode(net: torch.nn.Module):
    was = net.training
    net.eval()
    try:
        yield net
    finally:
        net.train(was)


def live_generator(G: torch.nn.Module, where: str, options) -> tuple[LoadedGenerator, GeneratorContract]:
    """The user's network as a loaded generator, with its contract read from the module, the options' fields
    (latent_shape, num_classes, output_range...) on top and the output fields probed in eval mode."""
    from ..generator.introspect import module_contract
    from ..generator.sampling import probe
    from ..inputs import resolve_contract

    contract, conditional, known = module_contract(G)

    def forward(z, labels=None):
        return G(z) if labels is None else G(z, labels)

    gen = LoadedGenerator(forward, contract, "module", where, loader="monitor", module=G, takes_labels=conditional,
                          known=known)
    try:
        with eval_mode(G):
            contract = probe(gen, resolve_contract(gen, options), options.seed, _device_of(G))
    except GandiagError as exc:  # the CLI's flag names are the Monitor's arguments here
        raise GandiagError(str(exc).replace("--latent-shape", "latent_shape=").replace("--latent-dim", "latent_shape=")
                           .replace("--num-classes", "num_classes=").replace("--output-range", "output_range=")
                           .replace("--label-format", "label_format=")) from None
    return gen, contract


def _device_of(net: torch.nn.Module) -> str:
    p = next(net.parameters(), None)
    return str(p.device) if p is not None else "cpu"


def write_snapshot(gen: LoadedGenerator, contract: GeneratorContract, path_stem: Path, seed: int) -> Path:
    """``path_stem``.pt2, or ``path_stem``.npz of samples when torch.export cannot trace the generator (the
    plain network: :func:`plain_module`, as the monitor holds it); the path written."""
    from ..export.exporters import export_network

    G = gen.module
    arch = f"module: {type(G).__name__}"
    try:
        with eval_mode(G):  # a program traced on the GPU would hold CUDA tensors: trace a CPU copy
            net = G if _device_of(G) == "cpu" else copy.deepcopy(G).cpu()
            return export_network(net, arch, contract, "export", path_stem.with_suffix(".pt2"))
    except GandiagError:
        pass  # not traceable: keep its samples instead (said in the trend line by the suffix)
    return write_samples(gen, contract, path_stem.with_suffix(".npz"), seed)


def plain_module(net: torch.nn.Module) -> torch.nn.Module:
    """The network inside the wrappers training adds: ``torch.compile``'s (``_orig_mod``), DDP's and DataParallel's
    (``module``). They share its parameters; torch.export traces the plain network, not the wrapper."""
    while True:
        if isinstance(getattr(net, "_orig_mod", None), torch.nn.Module):
            net = net._orig_mod
        elif isinstance(net, (torch.nn.parallel.DistributedDataParallel, torch.nn.DataParallel)):
            net = net.module
        else:
            return net


def write_samples(gen: LoadedGenerator, contract: GeneratorContract, path: Path, seed: int,
                  n: int = SAMPLE_SNAPSHOT_N) -> Path:
    """``n`` seeded samples, drawn as an evaluation draws them (:func:`gandiag.generator.sampling.sample_batches`:
    the same latents, each kind's canonical form: images as uint8)."""
    from ..generator.sampling import sample_batches

    with eval_mode(gen.module):
        batches = list(sample_batches(gen, contract, n, seed, 256, _device_of(gen.module)))
    arrays = {contract.kind or "samples": torch.cat([b for b, _ in batches]).cpu().numpy()}
    if batches[0][1] is not None:
        arrays["labels"] = torch.cat([labels for _, labels in batches]).cpu().numpy()
    return _write_npz(path, arrays)


def _write_npz(path: Path, arrays: dict) -> Path:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return write_bytes(path, buf.getvalue(), "monitor snapshot")


def real_spec(real, folder: Path, contract: GeneratorContract, name: str = REAL_NAME) -> Optional[str]:
    """What to pass as ``--real``: a spec string as given; a tensor, array or DataLoader saved as ``name``."""
    from ..data.images import to_uint8_nchw

    if real is None or isinstance(real, (str, Path)):
        return None if real is None else str(real)
    if isinstance(real, np.ndarray):
        real = torch.from_numpy(real)
    if not isinstance(real, torch.Tensor):  # a DataLoader or any iterable of batches, (x, y) pairs taken as x
        taken, count = [], 0
        for batch in real:
            x = batch[0] if isinstance(batch, (tuple, list)) else batch
            if not isinstance(x, (torch.Tensor, np.ndarray)):
                raise GandiagError(f"Monitor(real=...): a data loader's batches must be tensors or (x, y) pairs, got "
                                   f"{type(x).__name__}; pass real=the images as one tensor instead")
            taken.append(torch.as_tensor(x)[: MAX_REAL - count])
            count += len(taken[-1])
            if count >= MAX_REAL:
                break
        if not taken:
            raise GandiagError("Monitor(real=...): the data loader gave no batches")
        real = torch.cat(taken)
    real = real.detach().cpu()[:MAX_REAL]
    returned = tuple(contract.sample_shape or ())  # one sample as the generator returns it (before the layout)
    if contract.kind == "images" and contract.layout == "NHWC" and len(returned) == 3:
        returned = (returned[1], returned[2], returned[0])
    if returned and tuple(real.shape[1:]) != returned:
        raise GandiagError(f"Monitor: the real samples have shape {tuple(real.shape[1:])}, the generator's "
                           f"{returned}; pass them as the generator returns them")
    if contract.kind == "images":
        arr = (real if real.dtype == torch.uint8 else to_uint8_nchw(real.float(), contract)).numpy()
    else:
        arr = real.float().numpy()
    return str(_write_npz(Path(folder) / name, {contract.kind or "samples": arr}))


def write_settings(folder: Path, feature_extractor: Optional[str], num_samples: int, seed: int, **said) -> None:
    """How the monitor checks this run, so ``gandiag watch`` on the folder checks it the same way; ``said``: what
    the log's numbers are (D's outputs as logits or probabilities, the loss), for a reader of the log."""
    import json

    from ..atomic import write_text

    write_text(Path(folder) / SETTINGS_NAME, json.dumps({"feature_extractor": feature_extractor,
                                                         "num_samples": num_samples, "seed": seed, **said}) + "\n",
               "monitor settings")


def read_settings(folder: Path) -> dict:
    """The checked settings of a monitored run (names and numbers only: nothing in them names a file)."""
    from ..errors import DataError
    from ..safety.files import read_text_limited
    from ..safety.jsonfile import parse_json

    path = Path(folder) / SETTINGS_NAME
    if not path.is_file():
        return {}
    got = parse_json(read_text_limited(path, "monitor settings", error=DataError), str(path))
    fe, n, seed = (got.get(k) if isinstance(got, dict) else None for k in ("feature_extractor", "num_samples", "seed"))
    ints = all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (n, seed))
    if not (isinstance(fe, (str, type(None))) and ints):
        raise DataError(f"{path}: not a monitor's settings (feature_extractor, num_samples, seed)")
    return {"feature_extractor": [fe] if fe else None, "num_samples": n, "seed": seed}
