"""Checks on an ONNX model before onnxruntime opens it.

Two things in an ``.onnx`` file reach outside it:

- **external data**: a tensor (an initializer, or a tensor attribute in any
  subgraph or function) can say its bytes live in another file, by path,
  offset and length. A hostile model names ``/etc/shadow``, ``../../x``, a
  symlink out of its folder, a FIFO (a read that never ends), ``/dev/zero``,
  or onnxruntime's in-memory marker, and its outputs then carry that data.
  onnxruntime 1.32 refuses absolute paths, ``..`` and symlinks that leave
  the folder, and non-regular files, but gandiag does not rely on one
  version's behaviour: every reference must be a relative path inside the
  model's folder, resolving (through symlinks) inside it, to a regular file
  that holds ``offset + length`` bytes; the total is budgeted.
- **custom operator domains**: a node whose domain is not ONNX's own
  (``""``/``ai.onnx``, ``ai.onnx.ml``) or onnxruntime's (``com.microsoft``), and
  not a function defined in the model itself, runs native code from a custom
  op library. Refused unless trusted.

The model is parsed with ``onnx.load(..., load_external_data=False)``: the
protobuf only, no external file is opened here.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ..errors import CheckpointError
from .budgets import EXTERNAL_DATA_BYTES
from .files import kind_of
from .untrusted import shown, untrusted

STANDARD_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml", "com.microsoft"})
_KEYS = ("location", "offset", "length", "checksum")


def check_onnx_model(path: Path, trust: bool) -> None:
    """Refuse external data outside the model's folder (always) and custom op domains (unless trusted)."""
    try:
        import onnx
    except ImportError:
        raise CheckpointError(f"{path}: checking ONNX models needs the onnx package: pip install 'gandiag[onnx]'") from None
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        reason = shown(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__, 160)
        raise CheckpointError(f"{path}: not a readable ONNX model: truncated or corrupt ({reason})") from None
    graphs = list(_graphs([model.graph]))
    for fn in model.functions:
        graphs.extend(_graphs(_subgraphs(fn.node)))
    folder = path.absolute().parent
    total = 0
    for tensor in _tensors(model, graphs):
        if tensor.data_location == onnx.TensorProto.EXTERNAL or len(tensor.external_data):
            total += _check_external(path, folder, tensor)
            EXTERNAL_DATA_BYTES.check(total, f"{path}: external tensor data")
    if not trust:
        _check_domains(path, model, graphs)


def _subgraphs(nodes):
    for node in nodes:
        for a in node.attribute:
            if a.HasField("g"):
                yield a.g
            yield from a.graphs


def _graphs(roots):
    """Every graph under ``roots``, subgraphs of If/Loop/Scan included (iteratively: no recursion limit)."""
    stack = list(roots)
    while stack:
        g = stack.pop()
        yield g
        stack.extend(_subgraphs(g.node))


def _tensors(model, graphs):
    for g in graphs:
        yield from g.initializer
        for sp in g.sparse_initializer:
            yield from (sp.values, sp.indices)
    nodes = [n for g in graphs for n in g.node] + [n for f in model.functions for n in f.node]
    for node in nodes:
        for a in node.attribute:
            if a.HasField("t"):
                yield a.t
            yield from a.tensors
            for sp in ([a.sparse_tensor] if a.HasField("sparse_tensor") else []) + list(a.sparse_tensors):
                yield from (sp.values, sp.indices)


def _check_external(path: Path, folder: Path, tensor) -> int:
    """The number of bytes ``tensor`` reads from its external file, after checking where that file is."""
    info = {}
    for e in tensor.external_data:
        if e.key in info:
            raise CheckpointError(f"{path}: tensor {shown(tensor.name)} names its external {shown(e.key)} twice")
        info[e.key] = e.value
    loc = info.get("location", "")
    where = f"tensor {shown(tensor.name)} reads external data from {shown(loc)!r}"
    parts = loc.replace("\\", "/").split("/")
    if not loc or "\x00" in loc or os.path.isabs(loc) or loc.startswith(("/", "\\")) or ":" in parts[0] or ".." in parts:
        raise CheckpointError(f"{path}: {where}; external data must be a relative path inside the model's folder")
    target = folder / loc
    try:
        st = os.stat(target)  # follows symlinks; never opens (a FIFO would block)
        real = Path(os.path.realpath(target))
    except OSError as exc:
        raise CheckpointError(f"{path}: {where}, which cannot be read ({exc.strerror or exc})") from None
    if os.path.commonpath([real, os.path.realpath(folder)]) != os.path.realpath(folder):
        raise CheckpointError(f"{path}: {where}, a link to {shown(real)} outside the model's folder")
    if not stat.S_ISREG(st.st_mode):
        raise CheckpointError(f"{path}: {where}, which is {kind_of(st.st_mode)}, not a regular file")
    try:
        offset = int(info.get("offset") or 0)
        length = int(info["length"]) if info.get("length") else st.st_size - offset
    except ValueError:
        raise CheckpointError(f"{path}: {where} with an offset or length that is not an integer") from None
    if offset < 0 or length < 0 or offset + length > st.st_size:
        raise CheckpointError(f"{path}: {where} at bytes {offset}..{offset + length}, beyond its {st.st_size} bytes")
    return length


def _check_domains(path: Path, model, graphs) -> None:
    local = {(f.domain, f.name) for f in model.functions}
    nodes = [n for g in graphs for n in g.node] + [n for f in model.functions for n in f.node]
    for node in nodes:
        if node.domain not in STANDARD_DOMAINS and (node.domain, node.op_type) not in local:
            raise untrusted(path, f"node {shown(node.name or node.op_type)} calls {shown(node.op_type)} from the "
                                  f"custom operator domain {shown(node.domain)!r}, native code from outside onnxruntime")
