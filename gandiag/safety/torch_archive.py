"""Checks on PyTorch zip archives (``torch.export`` ``.pt2``, TorchScript) before PyTorch loads them.

Why: ``torch.export.load`` unpickles with ``weights_only=False`` every
weight or constant its payload config marks ``use_pickle`` and the sample
inputs when a weights-only load fails, unpickles "opaque" constants with
plain ``pickle``, loads TorchBind objects, loads AOTInductor shared
libraries from ``data/aotinductor/``, ``eval``s every ``expr_str`` through
``sympy.sympify``, and pastes node names into Python code that FX compiles.
``torch.jit.load`` runs TorchScript ``__setstate__`` methods while loading.
None of that may happen for a file from anywhere, so before PyTorch sees the
file, :func:`check_pt2` and :func:`check_torchscript` read it with PyTorch's
own zip reader (the same parser the loaders use) and refuse what would run
code. :func:`weights_only_backstop` then forces ``weights_only`` for every
``torch.load`` during the load, in case a path was missed.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pickletools
import re
import warnings

import torch

from ..errors import CheckpointError, GandiagError
from .budgets import ARCHIVE_BYTES, ARCHIVE_MEMBERS, TEXT_FILE_BYTES
from .sym_expr import check_expr, check_guard
from .torch_graph import DENIED_OPS, SAFE_NAME, SCRIPT_NAMESPACES, export_target_problem
from .untrusted import shown, untrusted

_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f\u2028\u2029]")  # newlines and tabs are fine in stack traces


def pickled_global(exc: BaseException):
    """The global a weights-only unpickler refused (``mymodule.MyNet``), or None for other failures."""
    m = _GLOBAL.search(str(exc))
    return m.group(1) if m else None


def pickle_global(data: bytes):
    """The first global a plain pickle names, read opcode by opcode without running it; None if none.

    PyTorch's weights-only unpickler stops at protocol 4's FRAME opcode before it
    meets a global, so a ``pickle.dumps``'d object would otherwise look like garbage.
    """
    strings = []
    with warnings.catch_warnings():  # STRING opcodes go through codecs.escape_decode, which can warn
        warnings.simplefilter("ignore")
        try:
            for op, arg, _ in pickletools.genops(io.BytesIO(data[: 1 << 20])):
                if op.name in ("GLOBAL", "INST"):
                    return str(arg).replace(" ", ".")
                if op.name == "STACK_GLOBAL" and len(strings) >= 2:
                    return f"{strings[-2]}.{strings[-1]}"
                if isinstance(arg, str):
                    strings.append(arg)
        except Exception:  # not a pickle, or cut short at 1 MiB: no global before that
            pass
    return None


def first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return shown(lines[0] if lines else type(exc).__name__, 200)


@contextlib.contextmanager
def weights_only_backstop():
    """TORCH_FORCE_WEIGHTS_ONLY_LOAD=1 for the duration: every torch.load is weights-only, whatever it asks."""
    saved = {k: os.environ.get(k) for k in ("TORCH_FORCE_WEIGHTS_ONLY_LOAD", "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")}
    os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = "1"
    os.environ.pop("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", None)  # both set is an error in torch.load
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


MAX_EXPANSION = 4  # uncompressed bytes per byte of file: torch.save stores members uncompressed (ratio ~1)


def check_weights_archive(path, kind: str = "PyTorch") -> None:
    """Before ``torch.load`` of a zip-format file: its members, as PyTorch's own zip reader sizes them,
    within the archive budgets, and no more than ``MAX_EXPANSION`` times the file. ``torch.load`` allocates
    every member's declared size; a deflated 1 MB member declaring 1 GiB (a zip bomb) is refused here."""
    with open(path, "rb") as f:
        ar = Archive(path, f, kind)
        size = os.fstat(f.fileno()).st_size
    total = sum(ar.sizes.values())
    if total > MAX_EXPANSION * size + (1 << 20):
        raise CheckpointError(f"{shown(str(path), 300)}: its archive members unpack to {total:,} bytes from a "
                              f"{size:,}-byte file; torch.save stores tensors uncompressed, so this is no "
                              "checkpoint it wrote (a zip bomb?); refusing to load it")


class Archive:
    """A PyTorch zip archive read with ``torch._C.PyTorchFileReader``; every size checked before reading."""

    def __init__(self, path, fileobj, kind: str):
        self.path = path
        try:
            self.reader = torch._C.PyTorchFileReader(fileobj)
            self.names = list(self.reader.get_all_records())
            ARCHIVE_MEMBERS.check(len(self.names), f"{path}")
            self.sizes = {n: self.reader.get_record_size(n) for n in self.names}
        except GandiagError:
            raise
        except Exception as exc:  # a damaged central directory: names that do not resolve, sizes that cannot be read
            raise CheckpointError(f"{path}: corrupt or truncated {kind} archive ({first_line(exc)})") from None
        ARCHIVE_BYTES.check(sum(self.sizes.values()), f"{path}")
        self.known = set(self.names)

    def read(self, name: str, budget=None) -> bytes:
        if budget is not None:
            budget.check(self.sizes[name], f"{self.path} ({shown(name)})")
        try:
            return self.reader.get_record(name)
        except Exception as exc:
            raise CheckpointError(f"{self.path}: cannot read {shown(name)} ({first_line(exc)})") from None

    def json(self, name: str):
        try:
            return json.loads(self.read(name, TEXT_FILE_BYTES))
        except (ValueError, RecursionError) as exc:
            raise CheckpointError(f"{self.path}: {shown(name)} is not valid JSON ({first_line(exc)})") from None


# -- torch.export (.pt2) ----------------------------------------------------------------------

def check_pt2(path, fileobj) -> None:
    """Refuse a ``.pt2`` whose loading would run code; see the module docstring for what that is."""
    try:
        _check_pt2(path, Archive(path, fileobj, "torch.export"))
    finally:
        fileobj.seek(0)


def _check_pt2(path, ar: "Archive") -> None:
    from torch.export.pt2_archive import constants as C

    native = [n for n in ar.names if n.startswith(C.AOTINDUCTOR_DIR)]
    if native:
        raise untrusted(path, f"it holds an AOTInductor package ({shown(native[0])}), native code that "
                              "PyTorch loads and runs")
    models = [n for n in ar.names if n.startswith(C.MODELS_DIR)]
    if not models:
        raise CheckpointError(f"{path}: no exported program in this torch.export archive")
    for member in models:
        name = member[len(C.MODELS_DIR):-len(".json")]  # as torch's _load_exported_programs names it
        _check_program_json(path, member, ar.json(member))
        _check_pickle(ar, C.SAMPLE_INPUTS_FILENAME_FORMAT.format(name), "its sample inputs")
        for kind, folder, legacy, config in (
                ("weights", C.WEIGHTS_DIR, f"{C.WEIGHTS_DIR}{name}.pt", C.WEIGHTS_CONFIG_FILENAME_FORMAT.format(name)),
                ("constants", C.CONSTANTS_DIR, f"{C.CONSTANTS_DIR}{name}.pt",
                 C.CONSTANTS_CONFIG_FILENAME_FORMAT.format(name))):
            if legacy in ar.known:
                _check_pickle(ar, legacy, f"its {kind}")
            elif config in ar.known:
                _check_payload_config(ar, folder, config, kind, C)


def _check_pickle(ar: Archive, member: str, what: str) -> None:
    """A pickled member must load with ``weights_only=True``: tensors and containers, no Python objects."""
    if member not in ar.known or ar.sizes[member] == 0:
        return
    data = ar.read(member, ARCHIVE_BYTES)
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": the refusal below says it all
            warnings.simplefilter("ignore")
            torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:
        g = pickled_global(exc) or pickle_global(data)
        found = f"a pickled Python object (global {shown(g)}), which runs code when unpickled" if g else \
            "a pickle that is not plain tensors, which PyTorch would unpickle with weights_only=False"
        raise untrusted(ar.path, f"{what} ({shown(member)}) hold {found}") from None


def _check_payload_config(ar: Archive, folder: str, config: str, kind: str, C) -> None:
    entries = ar.json(config)
    entries = entries.get("config") if isinstance(entries, dict) else None
    if not isinstance(entries, dict):
        raise CheckpointError(f"{ar.path}: {config} is not a torch.export payload config")
    for fqn, meta in entries.items():
        if not isinstance(meta, dict) or not isinstance(meta.get("path_name"), str):
            raise CheckpointError(f"{ar.path}: {config}: entry {shown(fqn)} is malformed")
        file = meta["path_name"]
        if kind == "constants" and file.startswith(C.CUSTOM_OBJ_FILENAME_PREFIX):
            raise untrusted(ar.path, f"constant {shown(fqn)} is a TorchBind object, whose C++ __setstate__ "
                                     "runs when loaded")
        if kind == "constants" and file.startswith(C.OPAQUE_OBJ_FILENAME_PREFIX):
            raise untrusted(ar.path, f"constant {shown(fqn)} is an opaque Python object, stored as a plain "
                                     "pickle that runs code when loaded")
        if meta.get("use_pickle"):
            _check_pickle(ar, os.path.join(folder, file), f"its {kind} entry {shown(fqn)}")


_NAME_LISTS = ("forward_arg_names",)
_NAME_DICTS = ("tensor_values", "sym_int_values", "sym_bool_values", "sym_float_values", "custom_obj_values")


def _is_name_key(key) -> bool:
    return key in ("name", "as_name", "fqn") or (isinstance(key, str) and key.endswith("_name"))


def _check_program_json(path, member: str, doc) -> None:
    """Every string of a serialized program that PyTorch evaluates, compiles or resolves, checked.

    - ``expr_str``: sympify-ed → :func:`check_expr`; ``guards_code``: exec-ed → :func:`check_guard`;
    - node ``target``: resolved by getattr under ``torch.``/``_operator``/``math`` → allow-list;
    - names (``name``, ``*_name``, value-table keys...): pasted into FX-generated code → ``[A-Za-z0-9_.]``;
    - TorchBind custom objects: refused; control characters: refused (no line breaks into generated code).
    """
    stack = [(None, doc)]
    while stack:
        key, v = stack.pop()
        if isinstance(v, dict):
            if key in _NAME_DICTS:
                _names(path, member, key, v.keys())
            if key == "custom_obj_values" and v or "as_custom_obj" in v:
                raise untrusted(path, "the torch.export program holds TorchBind custom objects, whose C++ code "
                                      "runs when loaded")
            stack.extend(v.items())
        elif isinstance(v, list):
            if key == "guards_code":
                _strings(path, member, key, v, check_guard, "guard code, which PyTorch compiles as Python")
            stack.extend((key, x) for x in v)
        elif isinstance(v, str):
            _check_string(path, member, key, v)


def _check_string(path, member, key, v: str) -> None:
    if _CONTROL.search(v) or ("\n" in v and key != "stack_trace"):
        raise untrusted(path, f"{shown(member)}: field {shown(key)} holds control characters, "
                              "and PyTorch pastes such fields into generated Python code")
    if _is_name_key(key) or key in _NAME_LISTS:
        _names(path, member, key, [v])
    elif key == "target" and (problem := export_target_problem(v)):
        raise untrusted(path, f"the torch.export graph calls {problem}, which is not an ATen operator "
                              "gandiag allows, and can run code or touch files")
    elif key == "expr_str" and (problem := check_expr(v)):
        raise untrusted(path, f"a symbolic shape ({shown(v, 60)}) is not plain arithmetic ({problem}), and "
                              "PyTorch evaluates it with sympify")


def _strings(path, member, key, values, check, what: str) -> None:
    for v in values:
        if (problem := check(v)):
            raise untrusted(path, f"{shown(member)}: {shown(v, 60)} is {what} and not a size check ({problem})")


def _names(path, member, key, names) -> None:
    for n in names:
        if not isinstance(n, str) or not SAFE_NAME.fullmatch(n):
            raise untrusted(path, f"{shown(member)}: {shown(key)} {shown(n, 60)!s} is not a plain name, and "
                                  "PyTorch pastes names into generated Python code")


# -- TorchScript -------------------------------------------------------------------------------

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NAMESPACE = re.compile(r"\bops\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)")
DENIED_WORDS = frozenset({op.partition("::")[2] for op in DENIED_OPS} | {"print", "classes"})
_SKIP = ("data/", ".data/", "extra/")


def check_torchscript(path, fileobj) -> None:
    """Refuse a TorchScript archive whose code names a denied op, before ``torch.jit.load`` compiles it.

    ``__setstate__`` methods run while the archive loads, so the graphs cannot
    be checked first; their source text (``code/``) is. It is scanned as text,
    string literals and comments included, for the denied op names
    (``save``, ``from_file``, ``print``, ``_print``, ``rpc_*``...), ``classes``
    (TorchBind classes) and ``ops.<namespace>`` outside aten/prim/prims: a word
    in a string gives a false alarm, never a miss.
    """
    try:
        _scan_code(path, Archive(path, fileobj, "TorchScript"))
    finally:
        fileobj.seek(0)


def _scan_code(path, ar: "Archive") -> None:
    for name in ar.names:
        if name.startswith(_SKIP) or name.endswith("pkl"):
            continue
        text = ar.read(name, TEXT_FILE_BYTES).decode("utf-8", errors="replace")
        word = next((w for w in _WORD.findall(text) if w in DENIED_WORDS), None)
        if word:
            raise untrusted(path, f"its TorchScript code ({shown(name)}) calls {shown(word)}, which can print, "
                                  "touch files, call Python or the network, and can run while the file loads")
        ns = next((n for n in _NAMESPACE.findall(text) if n not in SCRIPT_NAMESPACES + ("prims",)), None)
        if ns:
            raise untrusted(path, f"its TorchScript code ({shown(name)}) calls custom operators (ops.{shown(ns)}), "
                                  "native code outside PyTorch's own operators")
