"""Helpers for the property-based reader tests, tests/test_fuzz_*.py (one module per reader).

The contract every reader is held to: given any bytes it either works or
raises :class:`gandiag.errors.GandiagError` (one line on stderr, exit 2 from
the CLI); any other exception is a bug (exit 3). Nothing is left behind: no
``.*.tmp`` from :mod:`gandiag.atomic`, no partial output file.

Readers covered: checkpoint bytes per loader (gandiag: test_fuzz_checkpoints;
torch.export, TorchScript, ONNX, SavedModel: test_fuzz_exports), ``.npz``
samples (test_fuzz_npz), image folders (test_fuzz_images), results JSON
(test_fuzz_results), gate TOML (test_fuzz_gates), ``log.jsonl``
(test_fuzz_logs), and the real-feature cache (test_fuzz_cache).

Runs are bounded (``max_examples`` per test, :func:`fuzz`) and derandomised in
CI through the "ci" hypothesis profile of conftest.py (``CI=true``); the "dev"
profile (the default elsewhere) draws new examples each run, and
``GANDIAG_FUZZ_SCALE=20`` multiplies every example count for a deeper local
run. A failure prints its example and ``@reproduce_failure``. Properties are
paired with hand-picked edge cases (parametrized tests), so each known bad
input has its own test id. Loaders and evaluations run under a memory cap
(:func:`memory_cap`), so a file that makes gandiag allocate gigabytes fails
fast and is reported instead of swapping the machine.

Each test module imports the autouse fixtures ``_quiet`` and ``_one_thread``
from here (a fixture imported into a module applies to that module), and the
shared fixtures it uses (``ring_ckpt_bytes``, ``ring_points``, ``genuine_npz``,
``genuine_results``): module-scoped, as they were in the single module.
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
import pytest
import torch
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from gandiag.errors import GandiagError

FIXTURES = Path(__file__).parent / "fixtures" / "models"
RING_CKPT = FIXTURES / "ring8_gan_pack4" / "checkpoint.pt"
LR1_DIR = FIXTURES / "ring8_gan_lr1"
EVAL = dict(num_samples=20, diagnostics=False, use_cache=False, device="cpu", batch_size=16)


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
        lines = [ln for ln in err.splitlines() if ln.strip()]  # click's usage errors too (gandiag.cli.GandiagGroup)
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


# ----------------------------------------------------------------------------- settings and autouse fixtures

FUZZ_SCALE = float(os.environ.get("GANDIAG_FUZZ_SCALE", "1"))  # e.g. 20 for a deeper local run; CI keeps 1


def fuzz(n: int, shrink: bool = True):
    """Settings for one property: ``n`` examples (fixed, so CI runs the same work every time).

    ``shrink=False`` where an example is costly (a whole command, an evaluation): shrinking would re-run it
    hundreds of times. Their inputs are small by construction (a few edits, printed with the failure), and
    the edge-case tests and library-level properties of the same reader give minimal inputs."""
    extra = {} if shrink else {"phases": [p for p in settings.default.phases if p != Phase.shrink]}
    return settings(max_examples=max(1, int(n * FUZZ_SCALE)), suppress_health_check=list(HealthCheck), **extra)


class Blob(bytes):
    """Bytes that print as their size: hypothesis prints fixtures with a failing example."""

    def __repr__(self):
        return f"<{len(self)} bytes>"


class Quiet(dict):
    """A fixture dict that prints as its keys (the genuine results JSON is 60 kB)."""

    def __repr__(self):
        return f"<{', '.join(self)}>"


class Lines(list):
    def __repr__(self):
        return f"<{len(self)} lines>"


@pytest.fixture(autouse=True)
def _quiet(monkeypatch):
    import logging

    monkeypatch.delenv("GANDIAG_DEBUG", raising=False)  # exit 3 must stay one line here
    logger = logging.getLogger("torch.export")  # logs every corrupt archive with a traceback
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One compute thread: the models here are tiny, and on a shared CI machine torch's and BLAS's worker
    threads spin-waiting for a core make this module twice as slow. Restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with contextlib.ExitStack() as stack:
        with contextlib.suppress(ImportError):
            from threadpoolctl import threadpool_limits

            stack.enter_context(threadpool_limits(limits=1))
        yield
    torch.set_num_threads(threads)


@contextlib.contextmanager
def env(**values):
    old = {k: os.environ.get(k) for k in values}
    os.environ.update({k: str(v) for k, v in values.items()})
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# ----------------------------------------------------------------------------- loading and evaluating a file

def load_and_evaluate(path, real="ring8", diagnostics=False, cap=True):
    """The loader on ``path``; when it loads, one short evaluation (which calls the generator).

    Under a memory cap (``cap``): a file that makes gandiag allocate gigabytes fails fast, and is reported."""
    from gandiag.generator.loading import LoadOptions, load_generator
    from gandiag.pipeline import evaluate

    with memory_cap() if cap else contextlib.nullcontext():
        loaded = call_reader(f"load_generator({Path(path).name})", load_generator, path, LoadOptions())
        if loaded is None:
            return None
        if isinstance(loaded.module, torch.nn.Module):
            bad = unsound_tensors(loaded.module)
            assert not bad, (f"load_generator accepted {Path(path).name} ({loaded.format}) whose tensors {bad} have no "
                             "valid storage: calling the generator reads out of bounds and kills the process (SIGSEGV)")
        opts = dict(EVAL, diagnostics=diagnostics)
        res = call_reader(f"evaluate({Path(path).name})", evaluate, path, real, **opts)
    if res is not None and diagnostics:
        for name, d in res.diagnostics.items():
            assert_errors_are_gandiag(f"diagnostic {name}", d.get("errors") if isinstance(d, dict) else None)
    return res


@pytest.fixture(scope="module")
def ring_ckpt_bytes():
    return Blob(RING_CKPT.read_bytes())


# ----------------------------------------------------------------------------- .npz files (samples and cache entries)

NPZ_DTYPES = ["bool", "int8", "uint8", "int16", "uint16", "int32", "int64", "uint64", "float16", "float32", "float64",
              ">f8", "complex64", "complex128", "<U3", "S2", "M8[s]", "m8[ms]"]
STRUCTURED = [np.dtype([("a", "<f4"), ("b", "<i2")]), np.dtype([("x", "<f8", (2,))]), np.dtype("V3")]
NPZ_KEYS = st.one_of(st.sampled_from(["images", "samples", "x", "arr_0", "labels", "points", "y"]),
                     st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00/"),
                             min_size=1, max_size=8))


@st.composite
def npz_arrays(draw):
    shape = tuple(draw(st.lists(st.integers(0, 6), max_size=5)))
    if draw(st.integers(0, 4)) == 0:  # structured and void dtypes from raw bytes
        dtype = draw(st.sampled_from(STRUCTURED))
        n = int(np.prod(shape)) * dtype.itemsize
        return np.frombuffer(draw(st.binary(min_size=n, max_size=n)), dtype=dtype).reshape(shape)
    return draw(hnp.arrays(np.dtype(draw(st.sampled_from(NPZ_DTYPES))), shape))


def _npy(arr) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=False)
    return buf.getvalue()


HEADER_DESCRS = ["<f4", "<f8", "|u1", "|b1", ">i4", "<c8", "|O", "<U0", "|V0", "[('a', '<f4')]", "'<f4'", "zz", "<M8[s]"]
HEADER_SHAPES = ["(1000000000000, 2)", "(4, 1, 8, 8)", "(2147483648, 0)", "(0, 1099511627776)", "(-1, 2)", "(3,)",
                 "()", "(1, 1, 1, 1, 1, 1, 1, 1)", "[2, 2]", "(2.5, 2)", "'x'", "(1 << 70, 2)"]


@st.composite
def hand_npy(draw):
    """A .npy with a hand-written header: huge, negative or odd shapes, odd dtypes, little or no data."""
    descr = draw(st.sampled_from(HEADER_DESCRS))
    shape = draw(st.sampled_from(HEADER_SHAPES))
    fortran = draw(st.sampled_from(["False", "True", "0", "'no'"]))
    header = draw(st.one_of(
        st.just(f"{{'descr': {descr if descr.startswith(('[', chr(39))) else repr(descr)}, "
                f"'fortran_order': {fortran}, 'shape': {shape}, }}"),
        st.text(st.characters(max_codepoint=255), max_size=40)))
    payload = draw(st.binary(max_size=64))
    return npy_bytes(header, payload, draw(st.sampled_from([(1, 0), (2, 0), (3, 0), (9, 9)])))


@st.composite
def npz_files(draw, genuine: bytes):
    kind = draw(st.sampled_from(["arrays", "hand", "random", "zip_garbage", "genuine_mutated", "genuine_member"]))
    if kind == "arrays":
        arrays = draw(st.dictionaries(NPZ_KEYS, npz_arrays(), min_size=0, max_size=3))
        return make_zip({f"{k}.npy": _npy(a) for k, a in arrays.items()}, compressed=draw(st.booleans()))
    if kind == "hand":
        key = draw(NPZ_KEYS)
        members = {f"{key}.npy": draw(hand_npy())}
        if draw(st.booleans()):
            members["labels.npy"] = draw(hand_npy())
        return make_zip(members)
    if kind == "random":
        return draw(st.one_of(st.binary(max_size=300), st.binary(max_size=200).map(lambda b: b"PK\x03\x04" + b)))
    if kind == "zip_garbage":
        names = draw(st.lists(st.one_of(NPZ_KEYS.map(lambda k: k + ".npy"), NPZ_KEYS), min_size=1, max_size=3,
                              unique=True))
        return make_zip({n: draw(st.binary(max_size=120)) for n in names}, compressed=draw(st.booleans()))
    if kind == "genuine_member":
        members = zip_members(genuine)
        name = draw(st.sampled_from(sorted(members)))
        members[name] = apply_mutations(members[name], draw(mutations()), window=(0, 128))  # the header
        return make_zip(members)
    return apply_mutations(genuine, draw(mutations()))


@pytest.fixture(scope="module")
def ring_points():
    from gandiag.data.mixtures import MIXTURES

    pts, _ = MIXTURES["ring8"].sample(64, 3)
    return pts.astype(np.float32)


@pytest.fixture(scope="module")
def genuine_npz(ring_points):
    buf = io.BytesIO()
    np.savez(buf, points=ring_points)
    return Blob(buf.getvalue())


MAX_BATCHES = 64  # a set may declare billions of (empty) samples; reading its head is enough here


def _head(it, n):
    for i, x in enumerate(it):
        if i >= n:
            return
        yield x


# ----------------------------------------------------------------------------- results JSON (results and gates)

@pytest.fixture(scope="module")
def genuine_results(tmp_path_factory, ring_points):
    """A results JSON (with diagnostics, bootstrap intervals and its artifacts file) from a real evaluation."""
    from gandiag.data.mixtures import MIXTURES
    from gandiag.pipeline import evaluate
    from gandiag.report.artifacts import save_artifacts

    d = tmp_path_factory.mktemp("results")
    pts, _ = MIXTURES["ring8"].sample(300, 5)
    np.savez(d / "fake.npz", points=pts)
    r = evaluate(d / "fake.npz", "ring8", device="cpu", use_cache=False, bootstrap=5, kid_subsets=10,
                 kid_subset_size=100)
    save_artifacts(r, d / "r.json")
    r.save(d / "r.json")
    return Quiet(json=json.loads((d / "r.json").read_text()), artifacts=Blob((d / "r.artifacts.npz").read_bytes()),
                 results=r)


GOOD_GATES = """
[gates]
fid = { max = 1000.0 }
recall = { min = 0.0 }
mode_collapse = { allow = ["none", "partial", "severe"], modes_captured = { min = 0 } }
"""
