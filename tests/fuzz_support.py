"""Helpers for the property-based reader tests (tests/test_fuzz_readers.py).

The contract every reader is held to: given any bytes it either works or
raises :class:`gandiag.errors.GandiagError` (one line on stderr, exit 2 from
the CLI); any other exception is a bug (exit 3). Nothing is left behind: no
``.*.tmp`` from :mod:`gandiag.atomic`, no partial output file.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import math
import os
import shutil
import sys
import warnings
import zipfile
from pathlib import Path
from typing import Callable, Iterable, Optional

import numpy as np
from hypothesis import strategies as st

from gandiag.errors import GandiagError

# ----------------------------------------------------------------------------- the contract


def gandiag_error_names() -> set:
    """Names of GandiagError and every subclass defined so far (diagnostics report errors by type name)."""
    for mod in ("gandiag.gates", "gandiag.safety.budgets"):  # define the subclasses that live elsewhere
        with contextlib.suppress(ImportError):
            __import__(mod)
    names, todo = set(), [GandiagError]
    while todo:
        c = todo.pop()
        names.add(c.__name__)
        todo.extend(c.__subclasses__())
    return names


def call_reader(what: str, fn: Callable, *args, **kwargs):
    """``fn(*args)``: its value, or None when it raised a GandiagError; any other exception propagates, noted."""
    try:
        return fn(*args, **kwargs)
    except GandiagError as exc:
        assert str(exc).strip(), f"{what}: {type(exc).__name__} with an empty message"
        return None
    except Exception as exc:  # the bug this suite is for: keep the original type and traceback
        exc.add_note(f"[fuzz] {what} raised {type(exc).__name__}, not a GandiagError (the CLI reports it as exit 3)")
        raise


def assert_errors_are_gandiag(where: str, errors) -> None:
    """A diagnostic's ``errors`` ({part: "Type: message"}) may hold only GandiagErrors: anything else is a swallowed bug."""
    if not errors:
        return
    allowed = gandiag_error_names()
    bad = {k: v for k, v in errors.items() if str(v).split(":", 1)[0] not in allowed}
    assert not bad, f"{where}: a part failed with an internal exception on bad input: {bad}"


# ----------------------------------------------------------------------------- loaded networks


def unsound_tensors(module) -> list:
    """Parameters/buffers whose storage is missing or shorter than their shape needs.

    torch.jit.load accepts an archive whose tensor data record is short or empty; the first call of the
    network then reads out of bounds and the process dies (SIGSEGV). Checked before calling a loaded network,
    so the suite reports the loader bug instead of crashing.
    """
    bad = []
    for name, t in list(module.named_parameters()) + list(module.named_buffers()):
        if t is None or t.numel() == 0:
            continue
        need = (t.storage_offset() + sum((n - 1) * s for n, s in zip(t.shape, t.stride())) + 1) * t.element_size()
        try:
            storage = t.untyped_storage()
            ok = storage.nbytes() >= need and storage.data_ptr() != 0
        except RuntimeError:  # "Attempted to access the data pointer on an invalid python storage"
            ok = False
        if not ok:
            bad.append(name)
    return bad


# ----------------------------------------------------------------------------- memory


def _vm_size() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


@contextlib.contextmanager
def memory_cap(extra: int = 768 << 20):
    """Let the process map at most ``extra`` more bytes during the block (Linux; elsewhere no cap).

    A fuzzed file that makes a reader allocate gigabytes then fails at once with MemoryError (or torch's
    "can't allocate memory"), which the test reports, instead of swapping a shared CI machine to death.
    """
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        size = _vm_size()
    except (ImportError, OSError, ValueError):
        yield
        return
    if not size:
        yield
        return
    cap = size + extra if hard == resource.RLIM_INFINITY else min(hard, size + extra)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


# ----------------------------------------------------------------------------- files left behind


def listing(*roots) -> set:
    """Every path (files and folders) under the roots, as strings."""
    out = set()
    for root in roots:
        root = Path(root)
        if not root.exists():
            continue
        out.add(str(root))
        for dirpath, dirnames, filenames in os.walk(root):
            for n in dirnames + filenames:
                out.add(os.path.join(dirpath, n))
    return out


@contextlib.contextmanager
def nothing_left_behind(*roots, allowed: Iterable = ()):
    """Nothing may appear under ``roots`` during the block except the ``allowed`` paths."""
    before = listing(*roots)
    yield
    after = listing(*roots)
    allowed = {str(Path(a)) for a in allowed}
    new = sorted(p for p in after - before if p not in allowed)
    assert not new, f"files left behind: {new}"
    tmp = sorted(p for p in after if Path(p).name.endswith(".tmp"))
    assert not tmp, f"temporary files left behind: {tmp}"


_counter = itertools.count()


@contextlib.contextmanager
def scratch(base):
    """A fresh folder per example (hypothesis reuses the test's tmp_path), removed afterwards."""
    d = Path(base) / f"ex{next(_counter)}"
    d.mkdir(parents=True)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


# ----------------------------------------------------------------------------- the CLI in-process

_registered = False


def _cli():
    global _registered
    from gandiag.cli import _add_plugin_commands, cli

    if not _registered:
        if "report" not in cli.commands:
            _add_plugin_commands()
        _registered = True
    return cli


def _warning_to_stderr(message, category, filename, lineno, file=None, line=None):
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def run_cli(args, cwd, ok=(0, 2), outputs: Iterable = (), cap: int = 0):
    """``gandiag ARGS`` in-process with cwd ``cwd``: exit code in ``ok`` (never 3), no traceback,
    exit 2 is one line on stderr, and on failure no output file exists.
    ``cap``: run under :func:`memory_cap` with that many bytes to spare (0: no cap)."""
    from click.testing import CliRunner

    cli = _cli()
    with contextlib.chdir(cwd), warnings.catch_warnings(), memory_cap(cap) if cap else contextlib.nullcontext():
        # As in a real run, a Python warning is printed on stderr (pytest would otherwise record it quietly).
        warnings.simplefilter("always")
        for quiet in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
            warnings.simplefilter("ignore", quiet)  # Python's defaults hide these
        warnings.showwarning = _warning_to_stderr
        res = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=True)
    err = res.stderr
    where = f"gandiag {' '.join(str(a) for a in args)}"
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise AssertionError(f"{where}: uncaught {type(res.exception).__name__}: {res.exception}") from res.exception
    assert "Traceback" not in res.output, f"{where}: traceback in the output:\n{res.output[-3000:]}"
    assert res.exit_code != 3, f"{where}: internal error (exit 3): {err.strip()[-2000:]}"
    assert res.exit_code in ok, f"{where}: exit {res.exit_code} (expected {ok}): {res.output[-2000:]}"
    if res.exit_code == 2:
        lines = [ln for ln in err.splitlines() if ln.strip()]
        if lines and lines[0].startswith("Usage:"):  # click's own usage error (also exit 2)
            assert any(ln.startswith("Error:") for ln in lines), f"{where}: odd usage error:\n{err[-2000:]}"
        else:
            assert len(lines) == 1 and lines[0].startswith("gandiag: error:"), \
                f"{where}: exit 2 must be one line 'gandiag: error: ...' on stderr, got:\n{err[-2000:]}"
    if res.exit_code not in (0, 1):
        for o in outputs:
            assert not Path(cwd, o).exists(), f"{where}: exit {res.exit_code} but {o} was written"
    return res


# ----------------------------------------------------------------------------- byte mutations


@st.composite
def mutations(draw, max_ops: int = 4):
    """A list of edits to apply to some bytes (positions are taken modulo the length)."""
    pos = st.integers(0, 1 << 30)
    op = st.one_of(
        st.tuples(st.just("flip"), pos, st.integers(1, 255)),
        st.tuples(st.just("truncate"), pos, st.just(0)),
        st.tuples(st.just("insert"), pos, st.binary(min_size=1, max_size=16)),
        st.tuples(st.just("delete"), pos, st.integers(1, 64)),
        st.tuples(st.just("overwrite"), pos, st.binary(min_size=1, max_size=16)),
        st.tuples(st.just("zero"), pos, st.integers(1, 256)),
    )
    return draw(st.lists(op, min_size=1, max_size=max_ops))


def apply_mutations(data: bytes, ops, window: Optional[tuple] = None) -> bytes:
    """Apply ``ops``; ``window`` (start, stop) keeps positions inside a region of interest."""
    b = bytearray(data)
    for kind, p, arg in ops:
        lo, hi = window or (0, len(b))
        hi = min(hi, len(b))
        if hi <= lo:
            lo, hi = 0, len(b)
        p = lo + (p % max(1, hi - lo))
        if kind == "flip" and b:
            b[min(p, len(b) - 1)] ^= arg
        elif kind == "truncate":
            del b[p:]
        elif kind == "insert":
            b[p:p] = arg
        elif kind == "delete":
            del b[p:p + arg]
        elif kind == "overwrite":
            b[p:p + len(arg)] = arg
        elif kind == "zero":
            b[p:p + arg] = bytes(len(b[p:p + arg]))
    return bytes(b)


# ----------------------------------------------------------------------------- zip archives


def zip_members(data: bytes) -> dict:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return {i.filename: z.read(i) for i in z.infolist()}


def make_zip(members: dict, compressed: bool = False) -> bytes:
    """A zip of ``members`` (name → bytes), in order; stored (as torch writes) unless ``compressed``."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


# ----------------------------------------------------------------------------- JSON values and paths

JSON_KEYS = st.one_of(st.sampled_from(["", "value", "path", "format", "verdict", "reasons", "std", "ci95", "source",
                                       "step", "message", "level", "label", "error", "modes_total"]),
                      st.text(max_size=6))
JSON_SCALARS = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(1 << 70), max_value=1 << 70),
    st.sampled_from([10 ** 400, -(10 ** 400), 0, -1, 1 << 63, 2 ** 1024]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["nan", "NaN", "inf", "-Infinity", "1e999", "\x1b[2J", "a\nb", "\u2028", "\x00"]),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(JSON_KEYS, inner, max_size=4)),
    max_leaves=16,
)


def json_paths(obj, prefix=()) -> list:
    """Every path (tuple of keys/indexes) into a JSON-like value, the root included."""
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += json_paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += json_paths(v, prefix + (i,))
    return out


def set_path(obj, path: tuple, value, delete: bool = False):
    """``obj`` with the value at ``path`` replaced (or deleted); the root replaced when ``path`` is ()."""
    if not path:
        return value
    parent = obj
    for k in path[:-1]:
        parent = parent[k]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return obj


def dumps(obj) -> str:
    """JSON as Python writes it: NaN/Infinity literals included, huge ints as digits."""
    return json.dumps(obj, allow_nan=True)


# ----------------------------------------------------------------------------- TOML

def toml_key(k: str) -> str:
    if k and all(c.isalnum() or c in "-_" for c in k) and k.isascii():
        return k
    return toml_string(k)


def toml_string(s: str) -> str:
    out = []
    for c in s:
        if c in '"\\':
            out.append("\\" + c)
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return toml_string(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{toml_key(k)} = {toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(type(v))


def to_toml(doc: dict) -> str:
    """A TOML document: scalars and inline values at the top, then one [table] per dict (tomli_w when installed)."""
    try:
        import tomli_w

        return tomli_w.dumps(doc)
    except ImportError:
        pass
    except Exception:  # tomli_w refuses some values (e.g. NaN keys); fall back to ours
        pass
    head = [f"{toml_key(k)} = {toml_value(v)}" for k, v in doc.items() if not isinstance(v, dict)]
    tables = []
    for k, v in doc.items():
        if isinstance(v, dict):
            tables.append(f"[{toml_key(k)}]")
            tables += [f"{toml_key(k2)} = {toml_value(v2)}" for k2, v2 in v.items()]
    return "\n".join(head + tables) + "\n"


def toml_values(max_leaves: int = 6):
    scalars = st.one_of(st.booleans(), st.integers(-(1 << 63), (1 << 63) - 1),
                        st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
                        st.sampled_from(["none", "severe", "partial", "", "\x00", "../x.json"]))
    return st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                         st.dictionaries(st.text(max_size=6), inner, max_size=3)),
                        max_leaves=max_leaves)


# ----------------------------------------------------------------------------- .npy by hand


def npy_bytes(header: str, payload: bytes = b"", version=(1, 0)) -> bytes:
    """A .npy file with a hand-written header dict text (any shape/descr it declares)."""
    h = header.encode("latin1")
    if version[0] == 1:
        pad = (64 - (10 + len(h) + 1) % 64) % 64
        h = h + b" " * pad + b"\n"
        return b"\x93NUMPY" + bytes(version) + len(h).to_bytes(2, "little") + h + payload
    pad = (64 - (12 + len(h) + 1) % 64) % 64
    h = h + b" " * pad + b"\n"
    return b"\x93NUMPY" + bytes(version) + len(h).to_bytes(4, "little") + h + payload


def npz_bytes(arrays: dict, compressed: bool = False) -> bytes:
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    return buf.getvalue()
