"""Published ViT weights read offline: where they are found, and their tensors read without running code.

The DINOv2 and CLIP extractors use networks of several hundred MB whose
weights gandiag never downloads. A weights file is found, in order, at
``--feature-weights PATH`` or in the caches the upstream tools fill (the
torch hub checkpoints folder, the Hugging Face hub cache, open_clip's
``~/.cache/clip``); none there is one line saying which file to put where.

A weights file is untrusted input like any other: safetensors go through
gandiag's own reader, PyTorch zip archives are sized against the archive
budgets before ``torch.load(weights_only=True)`` reads them, and a
TorchScript archive (OpenAI's CLIP ``.pt``) is read only after
:func:`gandiag.safety.torch_archive.check_torchscript` found no code that
could act while it loads, the rule the TorchScript loader follows without
``--trust-checkpoint``. Nothing is unpickled as objects, nothing is run.
"""

from __future__ import annotations

import importlib
import os
import pickle
import warnings
import zipfile
from pathlib import Path
from typing import Iterable, Optional

import torch

from ..errors import FeatureExtractorError, GandiagError
from ..safety.files import open_regular, require_input
from ..safety.torch_archive import check_weights_archive, first_line, pickle_global, pickled_global
from ..safety.untrusted import shown

INSTALL = "pip install 'gandiag[modern]'"
WRAPPER_KEYS = ("state_dict", "model", "module")  # training checkpoints that hold the weights one level down


def require_library(module: str, extractor: str):
    """The model library an extractor is built on, or one line naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise FeatureExtractorError(f"the {extractor} feature extractor needs {module.split('.')[0]}, which is not "
                                    f"installed: {INSTALL}") from None


def hf_cached(repo_id: str, filenames: Iterable[str]) -> list:
    """Files of a Hugging Face hub repository already in the local cache (never the network)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return []
    found = []
    for name in filenames:
        p = try_to_load_from_cache(repo_id, name)
        if isinstance(p, str):
            found.append(Path(p))
    return found


def find_weights(explicit: Optional[str], cached: list, extractor: str, where_to_put: str) -> Path:
    """``--feature-weights PATH`` if given, else the first cache file that exists; never a download."""
    if explicit:
        p = Path(explicit).expanduser()
        require_input(p, f"a {extractor} weights file", error=FeatureExtractorError)
        return p
    for p in cached:
        if Path(p).is_file():
            return Path(p)
    raise FeatureExtractorError(f"{extractor} weights not found (gandiag never downloads them): {where_to_put}, "
                                "or pass --feature-weights PATH")


def read_state_dict(path: Path, extractor: str) -> dict:
    """The tensors of a weights file by name: safetensors, a PyTorch state dict, or a TorchScript archive."""
    from ..safety.safetensors_file import looks_like_safetensors, read_safetensors

    with open_regular(path, f"a {extractor} weights file", error=FeatureExtractorError) as f:
        head = f.read(10)
    try:
        if looks_like_safetensors(path, head):
            state = read_safetensors(path)
        elif head[:2] == b"PK":
            state = _read_torch_zip(path)
        else:
            state = _torch_load(path)
    except FeatureExtractorError:
        raise
    except GandiagError as exc:  # the safety readers' refusals, said as this extractor's
        raise FeatureExtractorError(f"{extractor} weights: {exc}") from None
    return _tensors_only(_unwrap(state), path)


def _read_torch_zip(path: Path) -> dict:
    """A PyTorch zip archive: sized first; TorchScript checked for code, then read for its weights only."""
    from ..safety.torch_archive import Archive

    with open_regular(path, "a weights file", error=FeatureExtractorError) as f:
        names = Archive(path, f, "PyTorch").names  # member count and uncompressed size within the budgets
        f.seek(0)
        if any(n.endswith("constants.pkl") or "/code/" in n for n in names):
            return _torchscript_weights(path, f)
    return _torch_load(path)


def _torch_load(path: Path) -> dict:
    if zipfile.is_zipfile(path):  # members sized before torch.load allocates them
        check_weights_archive(path, "weights")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = pickled_global(exc) or _first_global(path)
        if found is None:  # not a pickle torch reads at all: garbage, not a threat
            raise FeatureExtractorError(f"{shown(str(path), 300)}: not a weights file (neither safetensors, a "
                                        "PyTorch zip archive nor a pickle torch reads)") from None
        raise FeatureExtractorError(f"{shown(str(path), 300)}: holds pickled Python objects (global "
                                    f"{shown(found)}), not only tensors; save the network's state_dict() or a "
                                    ".safetensors file and pass that") from None
    except Exception as exc:
        raise FeatureExtractorError(f"{shown(str(path), 300)}: corrupt, truncated or not a weights file "
                                    f"({first_line(exc)})") from None


def _first_global(path: Path):
    """The first global a legacy (non-zip) pickle names, read without running it, or None."""
    with open_regular(path, "a weights file", error=FeatureExtractorError) as f:
        return pickle_global(f.read(1 << 20))


def _torchscript_weights(path: Path, f) -> dict:
    """The state dict of a TorchScript archive (OpenAI's CLIP ``.pt``), read as the TorchScript loader reads one."""
    from ..errors import CheckpointError
    from ..safety.torch_archive import check_torchscript
    from ..safety.torch_graph import check_script_tensors

    try:
        check_torchscript(path, f)
    except CheckpointError as exc:
        raise FeatureExtractorError(f"{exc}".split("; --trust-checkpoint")[0] + "; a TorchScript weights file must "
                                    "hold nothing but the network: pass its state dict (.safetensors or .pt) "
                                    "instead") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module = torch.jit.load(f, map_location="cpu")
    except Exception as exc:
        raise FeatureExtractorError(f"{shown(str(path), 300)}: corrupt TorchScript archive "
                                    f"({first_line(exc)})") from None
    try:
        check_script_tensors(path, module)
    except CheckpointError as exc:
        raise FeatureExtractorError(str(exc)) from None
    return dict(module.state_dict())


def _unwrap(state):
    """A training checkpoint's weights (``{"state_dict": {...}}``), with DataParallel's ``module.`` prefix dropped."""
    for key in WRAPPER_KEYS:
        if isinstance(state, dict) and isinstance(state.get(key), dict) and not torch.is_tensor(state.get(key)):
            state = state[key]
            break
    if isinstance(state, dict) and state and all(isinstance(k, str) and k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def _tensors_only(state, path: Path) -> dict:
    if not isinstance(state, dict) or not state:
        raise FeatureExtractorError(f"{shown(str(path), 300)}: not a state dict (found {type(state).__name__})")
    bad = next((k for k, v in state.items() if not isinstance(k, str) or not torch.is_tensor(v)), None)
    if bad is not None:
        raise FeatureExtractorError(f"{shown(str(path), 300)}: not a state dict ({shown(str(bad))} is not a "
                                    "named tensor)")
    return state


def empty_network(build) -> torch.nn.Module:
    """``build()`` with uninitialised memory: its random initialisation (seconds for a ViT-L) would be overwritten
    by the file's weights anyway. A network with buffers is built normally: a buffer is not in every file."""
    with torch.device("meta"):
        net = build()
    if any(True for _ in net.buffers()):
        return build()
    return net.to_empty(device="cpu")


def load_strict(net: torch.nn.Module, state: dict, path: Path, extractor: str, *, assign: bool = False) -> None:
    """Every weight of the network from the file, and nothing else: wrong keys or shapes are one line.

    ``assign`` puts the file's tensors in place of the network's (how a network built on the meta device,
    with no memory behind it, takes weights)."""
    expected = net.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or wrong:
        what = "; ".join(part for part in (
            f"{len(missing)} missing (first {shown(missing[0])})" if missing else "",
            f"{len(unexpected)} unexpected (first {shown(unexpected[0])})" if unexpected else "",
            f"{len(wrong)} of another shape (first {shown(wrong[0])}: {tuple(state[wrong[0]].shape)} in the file, "
            f"{tuple(expected[wrong[0]].shape)} expected)" if wrong else "") if part)
        raise FeatureExtractorError(f"{shown(str(path), 300)} does not hold {extractor} weights: {what}")
    if any(not v.is_floating_point() for v in state.values() if v.dtype != torch.bool):
        kinds = sorted({str(v.dtype) for v in state.values() if not v.is_floating_point()})
        raise FeatureExtractorError(f"{shown(str(path), 300)}: {extractor} weights must be floating point, found "
                                    f"{', '.join(kinds)}")
    if any(v.device.type != "meta" and not torch.isfinite(v).all() for v in state.values()):
        raise FeatureExtractorError(f"{shown(str(path), 300)}: {extractor} weights hold NaN or Inf")
    net.load_state_dict(state, strict=True, assign=assign)


def hub_checkpoint(filename: str) -> Path:
    """Where ``torch.hub`` keeps a downloaded checkpoint (``$TORCH_HOME/hub/checkpoints``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


def openai_clip_cache(filename: str) -> Path:
    """Where open_clip (and OpenAI's ``clip``) keep the OpenAI ``.pt`` archives."""
    return Path(os.path.expanduser("~/.cache/clip")) / filename
