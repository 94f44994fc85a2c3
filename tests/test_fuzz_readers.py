"""Property-based tests over every reader of untrusted input.

The contract (gandiag/errors.py): given any bytes, a reader either works or
raises :class:`~gandiag.errors.GandiagError`, which the CLI turns into one
line on stderr and exit 2. Any other exception is a bug (exit 3). A reader
leaves nothing behind: no ``.*.tmp`` from gandiag/atomic.py, no partial
output. Readers covered: checkpoint bytes per loader (gandiag, torch.export,
TorchScript, ONNX, SavedModel), ``.npz`` samples, image folders, results
JSON, gate TOML, ``log.jsonl``, and the real-feature cache.

Runs are bounded (``max_examples`` per test) and derandomised in CI through
the "ci" hypothesis profile of conftest.py (``CI=true``); the "dev" profile
(the default elsewhere) draws new examples each run, and
``GANDIAG_FUZZ_SCALE=20`` multiplies every example count for a deeper local
run. A failure prints its example and ``@reproduce_failure``. Properties are
paired with hand-picked edge cases (parametrized tests), so each known bad
input has its own test id. Loaders and evaluations run under a memory cap
(fuzz_support.memory_cap), so a file that makes gandiag allocate gigabytes
fails fast and is reported instead of swapping the machine.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import shutil
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import require_extra

require_extra("hypothesis")  # the test extra installs it; missing, this module fails in CI and is skipped elsewhere

from fuzz_support import (JSON_VALUES, apply_mutations, assert_errors_are_gandiag, call_reader, dumps,  # noqa: E402
                          json_paths, make_zip, memory_cap, mutations, nothing_left_behind, npy_bytes, run_cli, scratch,
                          set_path, to_toml, toml_values, unsound_tensors, zip_members)
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures" / "models"
RING_CKPT = FIXTURES / "ring8_gan_pack4" / "checkpoint.pt"
LR1_DIR = FIXTURES / "ring8_gan_lr1"
EVAL = dict(num_samples=20, diagnostics=False, use_cache=False, device="cpu", batch_size=16)


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


# ============================================================================ 1. checkpoints

TORCH_SUFFIXES = [".pt", ".pth", ".pt2", ".ckpt", ".bin"]


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


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """torch.export (.pt2) and TorchScript files of the ring8 generator, written by gandiag export."""
    from gandiag.export import export_checkpoint

    d = tmp_path_factory.mktemp("exports")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = {"export": export_checkpoint(RING_CKPT, "export", d / "g.pt2"),
               "torchscript": export_checkpoint(RING_CKPT, "torchscript", d / "g.pt")}
    return {k: Blob(Path(v).read_bytes()) for k, v in out.items()}


def test_harness_round_trips_genuine_files(tmp_path, ring_ckpt_bytes, exports):
    """The unmutated files, and zips rebuilt member by member, load and evaluate: failures below are the readers'."""
    for name, data in [("c.pt", ring_ckpt_bytes), ("g.pt2", exports["export"]), ("g.pt", exports["torchscript"])]:
        p = tmp_path / f"rebuilt-{name}"
        p.write_bytes(make_zip(zip_members(data)))
        res = load_and_evaluate(p)
        assert res is not None, f"{name}, its zip rebuilt member by member, should load and evaluate"


@fuzz(40)
@given(ops=mutations(), suffix=st.sampled_from(TORCH_SUFFIXES), region=st.sampled_from(["all", "head", "tail"]))
def test_checkpoint_bytes_mutated(tmp_path, ring_ckpt_bytes, ops, suffix, region):
    """Byte flips, truncation, insertion, deletion anywhere in a genuine gandiag checkpoint."""
    n = len(ring_ckpt_bytes)
    window = {"all": None, "head": (0, 6000), "tail": (n - 4000, n)}[region]  # data.pkl / central directory
    data = apply_mutations(ring_ckpt_bytes, ops, window)
    with scratch(tmp_path) as d:
        p = d / f"checkpoint{suffix}"
        p.write_bytes(data)
        with nothing_left_behind(d):
            load_and_evaluate(p)


def _pickle_member(members: dict) -> str:
    return next(n for n in members if n.endswith("data.pkl"))


@fuzz(30)
@given(data=st.data(), action=st.sampled_from(["random", "mutate", "drop", "empty", "add"]))
def test_checkpoint_zip_members_mutated(tmp_path, ring_ckpt_bytes, data, action):
    """One member of the checkpoint's zip replaced by random or mutated bytes, dropped, emptied, or one added."""
    members = zip_members(ring_ckpt_bytes)
    names = list(members)
    name = data.draw(st.sampled_from([_pickle_member(members)] + names), label="member")
    if action == "random":
        members[name] = data.draw(st.binary(max_size=300), label="content")
    elif action == "mutate":
        members[name] = apply_mutations(members[name], data.draw(mutations(), label="ops"))
    elif action == "drop":
        del members[name]
    elif action == "empty":
        members[name] = b""
    else:  # names that route a file to another loader (TorchScript, torch.export) or nowhere
        extra = data.draw(st.sampled_from(["archive/constants.pkl", "archive/code/__torch__/x.py",
                                           "archive/models/model.json", "archive/serialized_exported_program.json",
                                           "archive/data/999", "archive/extra/gandiag/contract.json"]), label="added")
        members[extra] = data.draw(st.one_of(st.binary(max_size=100), JSON_VALUES.map(lambda v: dumps(v).encode())),
                                   label="added content")
    with scratch(tmp_path) as d:
        p = d / "checkpoint.pt"
        p.write_bytes(make_zip(members))
        with nothing_left_behind(d):
            load_and_evaluate(p)


def _torch_values():
    """Values a weights_only torch.load reads back: what a checkpoint can hold."""
    dtypes = st.sampled_from([torch.float32, torch.float64, torch.float16, torch.int64, torch.uint8, torch.bool,
                              torch.complex64])
    shapes = st.lists(st.integers(0, 5), max_size=3)

    def tensor(args):
        dtype, shape, fill = args
        t = torch.full(shape, fill) if dtype.is_floating_point or dtype.is_complex else torch.zeros(shape)
        return t.to(dtype)

    tensors = st.tuples(dtypes, shapes, st.sampled_from([0.0, 1.0, -1e30, float("nan"), float("inf")])).map(tensor)
    scalars = st.one_of(st.none(), st.booleans(), st.integers(-(1 << 70), 1 << 70), st.sampled_from([0, -1, 1, 10 ** 6]),
                        st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
                        st.sampled_from(["mlp-generator", "dcgan-generator", "mlp-discriminator", "ring8", "digits",
                                         "images", "points", "NHWC", "uint8", "uniform", "gandiag.checkpoint"]),
                        tensors)
    return st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                         st.dictionaries(st.text(max_size=6), inner, max_size=3)),
                        max_leaves=8)


@pytest.fixture(scope="module")
def ring_ckpt_obj():
    return torch.load(RING_CKPT, map_location="cpu", weights_only=True)


def _structure_paths(obj, prefix=()):
    out = [prefix] if prefix else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _structure_paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _structure_paths(v, prefix + (i,))
    return out


def _mutate_checkpoint(ckpt, data, sections=None):
    import copy

    ckpt = copy.deepcopy(ckpt)
    paths = [p for p in _structure_paths(ckpt) if sections is None or p[0] in sections]
    for _ in range(data.draw(st.integers(1, 3), label="edits")):
        paths = [p for p in _structure_paths(ckpt) if sections is None or p[0] in sections] or paths
        path = data.draw(st.sampled_from(paths), label="path")
        try:
            if data.draw(st.booleans(), label="delete"):
                set_path(ckpt, path, None, delete=True)
            else:
                set_path(ckpt, path, data.draw(_torch_values(), label="value"))
        except (KeyError, IndexError, TypeError):  # an earlier edit removed the parent
            pass
    return ckpt


@fuzz(30, shrink=False)
@given(data=st.data())
def test_checkpoint_structure_mutated(tmp_path, ring_ckpt_obj, data):
    """A genuine checkpoint dict with fields deleted or replaced by other weights_only values (wrong types,
    shapes, NaN, huge numbers), saved again and loaded; when it loads, it is evaluated."""
    sections = ("format_version", "generator", "ema_generator", "contract", "data", "config")
    ckpt = _mutate_checkpoint(ring_ckpt_obj, data, sections)
    with scratch(tmp_path) as d:
        p = d / "checkpoint.pt"
        torch.save(ckpt, p)
        with nothing_left_behind(d):
            load_and_evaluate(p)


@fuzz(6, shrink=False)
@given(data=st.data())
def test_checkpoint_structure_mutated_diagnosed(tmp_path, ring_ckpt_obj, data):
    """Mutations of what only the diagnostics read (discriminator, config, data, step): evaluated with diagnostics,
    whose parts may fail only with a GandiagError."""
    ckpt = _mutate_checkpoint(ring_ckpt_obj, data, ("discriminator", "config", "data", "step", "contract"))
    with scratch(tmp_path) as d:
        p = d / "checkpoint.pt"
        torch.save(ckpt, p)
        with nothing_left_behind(d):
            load_and_evaluate(p, diagnostics=True)


def _edit(ckpt, path, value=None, delete=False):
    import copy

    ckpt = copy.deepcopy(ckpt)
    set_path(ckpt, path, value, delete=delete)
    return ckpt


CKPT_EDGES = {  # (path, value) or (path, "DELETE")
    "no generator": (("generator",), "DELETE"),
    "generator is None": (("generator",), None),
    "generator is a string": (("generator",), "mlp-generator"),
    "arch missing": (("generator", "arch"), "DELETE"),
    "arch is a list": (("generator", "arch"), ["mlp-generator"]),
    "kwargs is None": (("generator", "kwargs"), None),
    "kwargs has an unknown name": (("generator", "kwargs", "bogus"), 1),
    "negative width": (("generator", "kwargs", "hidden"), -1),
    "latent_dim None in kwargs": (("generator", "kwargs", "latent_dim"), None),
    "state_dict is None": (("generator", "state_dict"), None),
    "ema_generator is a string": (("ema_generator",), "x"),
    "ema_generator has wrong shapes": (("ema_generator", "net.0.weight"), torch.zeros(3, 3)),
    "contract missing": (("contract",), "DELETE"),
    "contract is None": (("contract",), None),
    "contract detected is None": (("contract", "detected"), None),
    "contract num_classes is None": (("contract", "num_classes"), None),
    "contract sample_shape is an int": (("contract", "sample_shape"), 5),
    "contract latent_dim disagrees with the net": (("contract", "latent_dim"), 3),
    "contract kind images for a points net": (("contract", "kind"), "images"),
    "data is a list": (("data",), []),
    "config is a list": (("config",), []),
    "format_version is a string": (("format_version",), "1"),
    "format_version is 2": (("format_version",), 2),
}
CKPT_DIAGNOSED_EDGES = {
    "discriminator is empty": (("discriminator",), {}),
    "discriminator arch unknown": (("discriminator", "arch"), "nope"),
    "loss unknown": (("config", "resolved", "loss"), "bogus"),
    "pack is a string": (("config", "options", "pack"), "x"),
    "config data missing": (("config", "data"), "DELETE"),
    "batch_size negative": (("config", "resolved", "batch_size"), -5),
    "pack of a million": (("config", "options", "pack"), 10 ** 6),  # a 16 GB batch unless a budget refuses it
}


@pytest.mark.parametrize("name", sorted(CKPT_EDGES))
def test_checkpoint_edge_cases(tmp_path, ring_ckpt_obj, name):
    """Hand-picked checkpoint edits: refused with a CheckpointError, or loaded and evaluated."""
    path, value = CKPT_EDGES[name]
    torch.save(_edit(ring_ckpt_obj, path, value, delete=value == "DELETE"), tmp_path / "checkpoint.pt")
    with nothing_left_behind(tmp_path):
        load_and_evaluate(tmp_path / "checkpoint.pt")


@pytest.mark.parametrize("name", sorted(CKPT_DIAGNOSED_EDGES))
def test_checkpoint_edge_cases_diagnosed(tmp_path, ring_ckpt_obj, name):
    """Edits only the diagnostics read: the run succeeds or says why, and no diagnostic part fails internally."""
    path, value = CKPT_DIAGNOSED_EDGES[name]
    torch.save(_edit(ring_ckpt_obj, path, value, delete=value == "DELETE"), tmp_path / "checkpoint.pt")
    with nothing_left_behind(tmp_path):
        load_and_evaluate(tmp_path / "checkpoint.pt", diagnostics=True)


def _utf8_flagged_zip(name: bytes) -> bytes:
    """A one-member zip whose (central and local) headers say UTF-8 names, with ``name`` as the raw name bytes."""
    data = bytearray(make_zip({"archive/xx.bin": b"x"}).replace(b"archive/xx.bin", name[:14].ljust(14, b"_")))
    for signature, flags_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        i = data.find(signature)
        data[i + flags_at + 1] |= 0x08  # general-purpose bit 11: the name is UTF-8
    return bytes(data)


@pytest.mark.parametrize("suffix", [".pt", ".bin"])
def test_zip_member_name_not_utf8(tmp_path, suffix):
    """A zip that says its member names are UTF-8 when one is not (a flipped byte in a checkpoint does this)."""
    p = tmp_path / f"model{suffix}"
    p.write_bytes(_utf8_flagged_zip(b"archive/\x80.bin"))
    with nothing_left_behind(tmp_path):
        load_and_evaluate(p)


@fuzz(40)
@given(blob=st.one_of(st.binary(max_size=512),
                      st.binary(max_size=256).map(lambda b: b"PK\x03\x04" + b),
                      st.binary(max_size=256).map(lambda b: b"PK\x05\x06" + bytes(18) + b),
                      st.binary(max_size=256).map(lambda b: b"\x80\x02" + b),
                      st.binary(max_size=64).map(lambda b: b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19." + b)),
       suffix=st.sampled_from(TORCH_SUFFIXES + ["", ".dat"]))
def test_random_bytes_as_checkpoint(tmp_path, blob, suffix):
    """Random bytes (some with zip or pickle magic) under every suffix the torch loader claims, or none."""
    with scratch(tmp_path) as d:
        p = d / f"model{suffix}"
        p.write_bytes(blob)
        with nothing_left_behind(d):
            load_and_evaluate(p)


def _mutate_member(name: str, content: bytes, data) -> bytes:
    """JSON members get a structural edit, Python code a line edit, anything else byte edits."""
    if name.endswith(".json"):
        with contextlib.suppress(ValueError):
            doc = json.loads(content)
            paths = json_paths(doc)
            path = data.draw(st.sampled_from(paths), label="json path")
            if path and data.draw(st.booleans(), label="delete"):
                set_path(doc, path, None, delete=True)
            else:
                doc = set_path(doc, path, data.draw(JSON_VALUES, label="json value"))
            return dumps(doc).encode()
    if name.endswith(".py"):
        lines = content.decode("utf-8", "replace").splitlines()
        if lines:
            i = data.draw(st.integers(0, len(lines) - 1), label="line")
            how = data.draw(st.sampled_from(["drop", "dup", "tokens"]), label="line edit")
            if how == "drop":
                del lines[i]
            elif how == "dup":
                lines.insert(i, lines[i])
            else:
                swaps = [("torch.relu", "torch.sigmoid"), ("64", "63"), ("2", "3"), ("8", "9"), ("weight", "bias"),
                         ("(", "(("), ("return", "return 1 +"), ("torch.linear", "torch.matmul")]
                a, b = data.draw(st.sampled_from(swaps), label="swap")
                lines[i] = lines[i].replace(a, b)
            return "\n".join(lines).encode()
    return apply_mutations(content, data.draw(mutations(), label="ops"))


@fuzz(25)
@given(data=st.data(), which=st.sampled_from(["export", "torchscript"]), level=st.sampled_from(["member", "bytes"]))
def test_export_and_torchscript_mutated(tmp_path, exports, data, which, level):
    """Mutations of a genuine torch.export (.pt2) program and a TorchScript archive written by gandiag export:
    a member edited (JSON structurally, code by lines, the rest by bytes) or the file's bytes."""
    blob = exports[which]
    if level == "member":
        members = zip_members(blob)
        name = data.draw(st.sampled_from(sorted(members)), label="member")
        members[name] = _mutate_member(name, members[name], data)
        blob = make_zip(members)
    else:
        blob = apply_mutations(blob, data.draw(mutations(), label="ops"))
    with scratch(tmp_path) as d:
        p = d / ("g.pt2" if which == "export" else "g.pt")
        p.write_bytes(blob)
        with nothing_left_behind(d):
            load_and_evaluate(p)


@pytest.mark.slow
def test_torchscript_with_an_empty_tensor_record_does_not_crash(tmp_path, exports):
    """A TorchScript archive whose last tensor record is empty: `gandiag evaluate` must refuse it (exit 2), not
    die with SIGSEGV when it first calls the network. In a subprocess, since the bug kills the process."""
    import subprocess
    import sys

    members = zip_members(exports["torchscript"])
    last = max((n for n in members if "/data/" in n and n.rsplit("/", 1)[-1].isdigit()),
               key=lambda n: int(n.rsplit("/", 1)[-1]))
    members[last] = b""
    (tmp_path / "g.pt").write_bytes(make_zip(members))
    env_ = dict(os.environ, GANDIAG_OFFLINE="1")
    env_.pop("GANDIAG_DEBUG", None)
    res = subprocess.run([sys.executable, "-m", "gandiag.cli", "evaluate", "g.pt", "--real", "ring8", "-n", "20",
                          "--no-diagnostics", "--no-cache", "--device", "cpu"], cwd=tmp_path, env=env_,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode >= 0, f"gandiag was killed by signal {-res.returncode} on a TorchScript file with an " \
                                f"empty tensor record ({last})"
    assert res.returncode == 2, f"exit {res.returncode}: {res.stderr[-1500:]}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.pt"]


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory):
    require_extra("onnxruntime")
    require_extra("onnxscript")
    from gandiag.export import export_checkpoint

    d = tmp_path_factory.mktemp("onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Blob(Path(export_checkpoint(RING_CKPT, "onnx", d / "g.onnx")).read_bytes())


def _mutate_onnx_model(blob: bytes, data) -> bytes:
    """A structural edit of the ONNX protobuf: input/output shapes and types, nodes, the stored contract."""
    onnx = require_extra("onnx")
    m = onnx.load_from_string(blob)
    what = data.draw(st.sampled_from(["input_dim", "input_type", "output_dim", "drop_node", "contract", "initializer",
                                      "opset", "add_input"]), label="onnx edit")
    if what == "input_dim":
        dims = m.graph.input[0].type.tensor_type.shape.dim
        i = data.draw(st.integers(0, len(dims) - 1), label="dim")
        dims[i].dim_value = data.draw(st.sampled_from([0, 1, 3, 7, 1 << 40]), label="value")
    elif what == "input_type":
        m.graph.input[0].type.tensor_type.elem_type = data.draw(st.sampled_from([2, 6, 7, 8, 9, 10, 11, 16]), label="type")
    elif what == "output_dim":
        out = m.graph.output[0].type.tensor_type.shape
        if data.draw(st.booleans(), label="add dims"):
            for _ in range(data.draw(st.integers(1, 3), label="n dims")):
                out.dim.add().dim_value = data.draw(st.sampled_from([1, 2, 3, 5]), label="new dim")
        elif out.dim:
            out.dim[-1].dim_value = data.draw(st.sampled_from([0, 1, 3, 4]), label="dim value")
    elif what == "drop_node" and m.graph.node:
        del m.graph.node[data.draw(st.integers(0, len(m.graph.node) - 1), label="node")]
    elif what == "contract":
        for p in m.metadata_props:
            if p.key == "gandiag.contract":
                doc = json.loads(p.value)
                path = data.draw(st.sampled_from(json_paths(doc)), label="path")
                p.value = dumps(set_path(doc, path, data.draw(JSON_VALUES, label="value")))
    elif what == "initializer" and m.graph.initializer:
        init = m.graph.initializer[data.draw(st.integers(0, len(m.graph.initializer) - 1), label="init")]
        init.dims[:] = data.draw(st.lists(st.integers(0, 70), max_size=3), label="init dims")
    elif what == "opset":
        m.opset_import[0].version = data.draw(st.sampled_from([1, 7, 99]), label="opset")
    elif what == "add_input":
        vi = m.graph.input.add()
        vi.CopyFrom(m.graph.input[0])
        vi.name = data.draw(st.sampled_from(["labels", "y", "z2", "noise"]), label="name")
        vi.type.tensor_type.elem_type = data.draw(st.sampled_from([1, 7, 8]), label="type")
    return m.SerializeToString()


@fuzz(20)
@given(data=st.data(), level=st.sampled_from(["model", "bytes"]))
def test_onnx_mutated(tmp_path, onnx_file, data, level):
    """A genuine .onnx export with its graph edited (shapes, types, nodes, contract) or its bytes mutated."""
    if level == "model":
        blob = _mutate_onnx_model(onnx_file, data)
    else:
        blob = apply_mutations(onnx_file, data.draw(mutations(), label="ops"))
    with scratch(tmp_path) as d:
        p = d / "g.onnx"
        p.write_bytes(blob)
        with nothing_left_behind(d):
            load_and_evaluate(p)


@pytest.fixture(scope="module")
def savedmodel_dir(tmp_path_factory):
    require_extra("tensorflow")  # ~10 s to import: once per module
    from gandiag.export import export_checkpoint

    d = tmp_path_factory.mktemp("savedmodel")
    return Path(export_checkpoint(RING_CKPT, "savedmodel", d / "sm"))


@pytest.mark.slow
@fuzz(8)
@given(data=st.data(), target=st.sampled_from(["saved_model.pb", "assets.extra/gandiag_contract.json"]))
def test_savedmodel_mutated(tmp_path, savedmodel_dir, data, target):
    """A genuine SavedModel with saved_model.pb's bytes (or its stored contract) mutated."""
    with scratch(tmp_path) as d:
        sm = d / "sm"
        shutil.copytree(savedmodel_dir, sm)
        f = sm / target
        f.write_bytes(_mutate_member(target, f.read_bytes(), data))
        with nothing_left_behind(d):
            load_and_evaluate(sm, cap=False)  # TensorFlow maps large arenas of its own


# ============================================================================ 2. .npz samples

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


def read_samples(p):
    with memory_cap():
        _read_samples(p)


def _read_samples(p):
    from gandiag.data.samples import open_npz, open_samples

    for fn in (open_npz, open_samples):
        s = call_reader(f"{fn.__name__}({p.name})", fn, p if fn is open_npz else str(p))
        if s is None:
            continue
        assert s.kind in ("images", "points")
        assert all(int(x) > 0 for x in s.sample_shape), \
            f"{fn.__name__} accepted samples of shape {tuple(s.sample_shape)}: nothing to evaluate in a sample"
        for b in call_reader("batches", lambda: list(_head(s.batches(8), MAX_BATCHES))) or []:
            assert tuple(b.shape[1:]) == tuple(s.sample_shape)
            assert b.dtype == (torch.uint8 if s.kind == "images" else torch.float32)
        call_reader("content_hash", s.content_hash)


def _head(it, n):
    for i, x in enumerate(it):
        if i >= n:
            return
        yield x


@fuzz(40)
@given(data=st.data())
def test_npz_samples(tmp_path, genuine_npz, data):
    """open_npz / open_samples and every batch, on generated, hand-made, random and mutated .npz files."""
    blob = data.draw(npz_files(genuine_npz), label="npz")
    with scratch(tmp_path) as d:
        p = d / "samples.npz"
        p.write_bytes(blob)
        with nothing_left_behind(d):
            read_samples(p)


NPZ_EDGES = {
    "huge declared shape": make_zip({"images.npy": npy_bytes("{'descr': '<f4', 'fortran_order': False, "
                                                             "'shape': (1000000000000, 2), }")}),
    "huge count of empty samples": make_zip({"x.npy": npy_bytes("{'descr': '<f4', 'fortran_order': False, "
                                                                "'shape': (2147483648, 0), }")}),
    "string images": make_zip({"images.npy": _npy(np.array(list("abcd")).reshape(1, 1, 2, 2))}),
    "bytes images": make_zip({"images.npy": _npy(np.zeros((3, 1, 2, 2), "S2"))}),
    "structured images": make_zip({"images.npy": _npy(np.zeros((3, 1, 2, 2), [("a", "<f4")]))}),
    "datetime images": make_zip({"images.npy": _npy(np.zeros((3, 1, 2, 2), "M8[s]"))}),
    "zero float images": make_zip({"images.npy": _npy(np.zeros((0, 1, 2, 2), np.float32))}),
    "points of dimension 0": make_zip({"x.npy": _npy(np.zeros((30, 0), np.float32))}),
    "images of height 0": make_zip({"images.npy": _npy(np.zeros((30, 1, 0, 4), np.uint8))}),
    "object array": make_zip({"x.npy": npy_bytes("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }",
                                                 b"\x80\x04N.")}),
    "header with an unclosed bracket": make_zip({"x.npy": npy_bytes("{'descr': '<f4', 'fortran_order': False, "
                                                                    "'shape': (")}),
    "not a zip": b"\x93NUMPY garbage",
    "empty file": b"",
}


@pytest.mark.parametrize("name", sorted(NPZ_EDGES))
def test_npz_edge_cases(tmp_path, name):
    """Hand-picked .npz files: the reader refuses (GandiagError) or gives a usable sample set."""
    p = tmp_path / "samples.npz"
    p.write_bytes(NPZ_EDGES[name])
    with nothing_left_behind(tmp_path):
        read_samples(p)


@fuzz(10, shrink=False)
@given(data=st.data(), role=st.sampled_from(["target", "real"]))
def test_npz_samples_cli(tmp_path, genuine_npz, data, role):
    """The same files through `gandiag evaluate` (as the samples, or as --real for a checkpoint): exit 0 or 2."""
    blob = data.draw(npz_files(genuine_npz), label="npz")
    with scratch(tmp_path) as d:
        (d / "s.npz").write_bytes(blob)
        with nothing_left_behind(d, allowed=[d / "out.json", d / "out.artifacts.npz"]):
            if role == "target":
                args = ["evaluate", "s.npz", "--real", "ring8"]
            else:
                args = ["evaluate", str(RING_CKPT), "--real", "s.npz"]
            run_cli(args + ["-n", "20", "--no-diagnostics", "--no-cache", "--device", "cpu", "--json", "out.json"],
                    d, outputs=["out.json", "out.artifacts.npz"], cap=1 << 30)


# ============================================================================ 3. image folders

MODES = ["1", "L", "P", "RGB", "RGBA", "I;16", "I", "F", "CMYK", "LA", "PA", "YCbCr"]
FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF",
           ".webp": "WEBP"}


def _image_bytes(mode: str, size: tuple, suffix: str, seed: int) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(seed)
    im = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    try:
        im = im.convert(mode)
    except ValueError:
        pass
    for candidate in (im, im.convert("RGB")):
        buf = io.BytesIO()
        try:
            candidate.save(buf, FORMATS[suffix])
            return buf.getvalue()
        except (OSError, ValueError, KeyError):
            continue
    raise AssertionError("unreachable: RGB saves in every format")


def _png_with_size(w: int, h: int, payload: bytes) -> bytes:
    """A PNG whose IHDR declares w x h (valid CRCs) followed by a short IDAT."""
    def chunk(tag, body):
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(payload)) + chunk(b"IEND", b"")


@st.composite
def image_folders(draw):
    """{relative path: bytes or None (a folder)}: images of random modes/formats/sizes, some mutated, odd entries."""
    n = draw(st.integers(1, 4))
    same_size = draw(st.booleans())
    size0 = (draw(st.integers(1, 6)), draw(st.integers(1, 6)))
    files = {}
    for i in range(n):
        suffix = draw(st.sampled_from(sorted(FORMATS)))
        size = size0 if same_size else (draw(st.integers(1, 6)), draw(st.integers(1, 6)))
        blob = _image_bytes(draw(st.sampled_from(MODES)), size, suffix, i)
        if draw(st.integers(0, 2)) == 0:
            blob = apply_mutations(blob, draw(mutations()))
        files[f"{i:02d}{suffix.upper() if draw(st.integers(0, 5)) == 0 else suffix}"] = blob
    extras = ["empty", "dir", "nested", "declared", "text", "hidden", "loop", "broken_link", "fifo"]
    for extra in draw(st.lists(st.sampled_from(extras), max_size=2, unique=True)):
        if extra == "empty":
            files["empty.png"] = b""
        elif extra == "dir":
            files["folder.png"] = None
        elif extra == "nested":
            files["sub/deeper/n.png"] = _image_bytes("L", size0, ".png", 99)
        elif extra == "declared":
            w, h = draw(st.sampled_from([(0, 4), (65535, 1), (1, 65535), (2 ** 31 - 1, 1), (40000, 40000),
                                         (3000, 3000)]))
            files["declared.png"] = _png_with_size(w, h, draw(st.binary(max_size=32)))
        elif extra == "text":
            files["notes.txt"] = b"not an image"
        elif extra in ("loop", "broken_link", "fifo"):
            files[{"loop": "loop", "broken_link": "gone.png", "fifo": "pipe.png"}[extra]] = extra
        else:
            files[".hidden.png"] = draw(st.binary(max_size=40))
    return files


def _write_tree(root: Path, files: dict) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for rel, blob in files.items():
        p = root / rel
        if blob is None:
            p.mkdir(parents=True, exist_ok=True)
            continue
        if blob == "loop":
            p.symlink_to(".", target_is_directory=True)  # a folder that contains itself
            continue
        if blob == "broken_link":
            p.symlink_to(root / "does-not-exist.png")
            continue
        if blob == "fifo":  # opening it for reading would block: a reader must not
            os.mkfifo(p)
            continue
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(blob)


@fuzz(40)
@given(files=image_folders())
def test_image_folder(tmp_path, files):
    """open_folder (and open_samples) then every batch, on folders of mutated images of every mode and format."""
    from gandiag.data.samples import open_folder, open_samples

    with scratch(tmp_path) as d:
        root = d / "imgs"
        _write_tree(root, files)
        with nothing_left_behind(d), memory_cap():
            for fn in (open_folder, open_samples):
                s = call_reader(f"{fn.__name__}(folder)", fn, root if fn is open_folder else str(root))
                if s is None:
                    continue
                for b in call_reader("folder batches", lambda: list(_head(s.batches(3), MAX_BATCHES))) or []:
                    assert tuple(b.shape[1:]) == tuple(s.sample_shape) and b.dtype == torch.uint8
                call_reader("content_hash", s.content_hash)


@fuzz(8, shrink=False)
@given(files=image_folders(), role=st.sampled_from(["target", "real"]))
def test_image_folder_cli(tmp_path, files, role):
    """Folders through `gandiag evaluate` (samples against digits, or as --real for a digits checkpoint)."""
    with scratch(tmp_path) as d:
        _write_tree(d / "imgs", files)
        with nothing_left_behind(d, allowed=[d / "out.json", d / "out.artifacts.npz"]):
            if role == "target":
                args = ["evaluate", "imgs", "--real", "digits"]
            else:
                args = ["evaluate", str(FIXTURES / "digits_dcgan" / "checkpoint.pt"), "--real", "imgs"]
            run_cli(args + ["-n", "10", "--features", "digits", "--metrics", "fid", "--no-diagnostics", "--no-cache",
                            "--device", "cpu", "--json", "out.json"], d, outputs=["out.json", "out.artifacts.npz"],
                    cap=1 << 30)


# A TIFF cut inside its first IFD: Pillow warns ("Corrupt EXIF data") before it fails to identify the file.
TRUNCATED_TIFF = (b"II*\x00\x08\x00\x00\x00\x0c\x00\x00\x01\x04\x00\x01\x00\x00\x00\x01\x00\x00\x00\x01\x01\x04"
                  b"\x00\x01\x00\x00\x00\x05\x00\x00\x00\x02\x01\x03\x00\x02\x00\x00\x00\x08\x00\x08\x00\x03\x01"
                  b"\x03\x00\x01\x00\x00\x00\x01\x00\x00\x00\x06\x01\x03\x00\x01\x00\x00\x00\x03\x00\x00\x00\x11\x01")


def test_image_folder_warning_is_not_printed_around_the_error(tmp_path):
    """A folder whose only image makes Pillow warn, then fail: exit 2 with the one error line on stderr,
    not the library's warning and its source line around it."""
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "00.tif").write_bytes(TRUNCATED_TIFF)
    with nothing_left_behind(tmp_path):
        run_cli(["evaluate", "imgs", "--real", "digits", "-n", "10", "--features", "digits", "--no-diagnostics",
                 "--no-cache", "--device", "cpu"], tmp_path, ok=(2,))


# ============================================================================ 4. results JSON

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


def test_good_gates_hold_on_the_genuine_results(tmp_path, genuine_results):
    """The gates the CLI properties use load and pass on the genuine results (so a failure there is the input's)."""
    from gandiag.gates import check_gates, load_gates

    (tmp_path / "gates.toml").write_text(GOOD_GATES)
    outcome = check_gates(genuine_results["results"], load_gates(tmp_path / "gates.toml"))
    assert outcome.passed and len(outcome.cases) == 4, outcome.summary()


@st.composite
def results_documents(draw, genuine: dict):
    """Text of a results file: the genuine one with fields edited, arbitrary JSON, or raw text."""
    kind = draw(st.sampled_from(["edited", "edited", "edited", "schema_json", "json", "text"]))
    if kind == "edited":
        doc = json.loads(json.dumps(genuine))
        for _ in range(draw(st.integers(1, 3))):
            paths = [p for p in json_paths(doc) if p]
            path = draw(st.sampled_from(paths))
            if draw(st.integers(0, 3)) == 0:
                set_path(doc, path, None, delete=True)
            else:
                set_path(doc, path, draw(JSON_VALUES))
        return dumps(doc)
    if kind == "schema_json":
        doc = draw(st.dictionaries(st.sampled_from(["metrics", "generator", "contract", "real", "provenance",
                                                    "diagnostics", "warnings", "gates"]), JSON_VALUES))
        doc.update(schema="gandiag.results", schema_version=draw(st.sampled_from([1, 0, -1, True, 1.0])))
        return dumps(doc)
    if kind == "json":
        return dumps(draw(JSON_VALUES))
    return draw(st.text(max_size=80))


@fuzz(50)
@given(data=st.data())
def test_results_json(tmp_path, genuine_results, data):
    """Results.load then .summary(), on the genuine results with fields edited, arbitrary JSON, and text."""
    from gandiag.results import Results

    text = data.draw(results_documents(genuine_results["json"]), label="results")
    with scratch(tmp_path) as d:
        p = d / "r.json"
        p.write_text(text)
        with nothing_left_behind(d):
            r = call_reader("Results.load", Results.load, p)
            if r is not None:
                call_reader("Results.summary", r.summary)


_R = '{"schema": "gandiag.results", "schema_version": 1, '
RESULTS_EDGES = {
    "100000 open brackets": "[" * 100_000,
    "100000 nested lists": "[" * 100_000 + "]" * 100_000,
    "top-level list": "[]",
    "top-level string": '"gandiag.results"',
    "metrics is a list": _R + '"metrics": []}',
    "metric is a number": _R + '"metrics": {"fid": 3}}',
    "metric value is a string": _R + '"metrics": {"fid": {"value": "x"}}}',
    "metric value missing": _R + '"metrics": {"fid": {"label": "FID"}}}',
    "metric value huge int": _R + '"metrics": {"fid": {"value": ' + "9" * 400 + '}}}',
    "ci95 is a number": _R + '"metrics": {"fid": {"value": 1.0, "ci95": 3}}}',
    "std is a string": _R + '"metrics": {"fid": {"value": 1.0, "std": "x"}}}',
    "generator is null": _R + '"generator": null}',
    "real without source": _R + '"real": {"n": 3}}',
    "provenance is a list": _R + '"provenance": []}',
    "diagnostics is a list": _R + '"diagnostics": []}',
    "diagnostic reasons null": _R + '"diagnostics": {"mode_collapse": {"verdict": "none", "reasons": null}}}',
    "diagnostic hq fraction string": _R + '"diagnostics": {"m": {"verdict": "x", "modes_total": 8, '
                                          '"high_quality_fraction": "x"}}}',
    "warnings is null": _R + '"warnings": null}',
    "schema_version true": '{"schema": "gandiag.results", "schema_version": true}',
    "invalid UTF-8": b"\xff\xfe{".decode("latin1"),
}


@pytest.mark.parametrize("name", sorted(RESULTS_EDGES))
def test_results_json_edge_cases(tmp_path, name):
    """Hand-picked results files: Results.load refuses (GandiagError) or loads, and .summary() works."""
    from gandiag.results import Results

    p = tmp_path / "r.json"
    p.write_bytes(RESULTS_EDGES[name].encode("latin1") if name == "invalid UTF-8" else RESULTS_EDGES[name].encode())
    with nothing_left_behind(tmp_path):
        r = call_reader("Results.load", Results.load, p)
        if r is not None:
            call_reader("Results.summary", r.summary)


def test_results_path_is_a_folder(tmp_path):
    from gandiag.results import Results

    call_reader("Results.load(folder)", Results.load, tmp_path)


@fuzz(6, shrink=False)
@given(data=st.data(), junit=st.booleans())
def test_results_json_cli(tmp_path, genuine_results, data, junit):
    """`gandiag report` (0 or 2) and `gandiag gate` (0, 1 or 2) on the same documents; nothing half-written."""
    text = data.draw(results_documents(genuine_results["json"]), label="results")
    with scratch(tmp_path) as d:
        (d / "r.json").write_text(text)
        (d / "r.artifacts.npz").write_bytes(genuine_results["artifacts"])
        (d / "gates.toml").write_text(GOOD_GATES)
        with nothing_left_behind(d, allowed=[d / "out.html", d / "junit.xml"]):
            run_cli(["report", "r.json", "-o", "out.html"], d, outputs=["out.html"])
            run_cli(["gate", "r.json", "--gate", "gates.toml"] + (["--junit", "junit.xml"] if junit else []), d,
                    ok=(0, 1, 2), outputs=["junit.xml"])


def test_report_under_an_address_space_limit(tmp_path, genuine_results):
    """`gandiag report` on genuine results with 2 GiB of address space to spare (ulimit -v, as in some CI
    sandboxes): a 100 KiB artifacts file must not need a buffer the size of its budget (8 GiB)."""
    (tmp_path / "r.json").write_text(json.dumps(genuine_results["json"]))
    (tmp_path / "r.artifacts.npz").write_bytes(genuine_results["artifacts"])
    with nothing_left_behind(tmp_path, allowed=[tmp_path / "out.html"]):
        run_cli(["report", "r.json", "-o", "out.html"], tmp_path, ok=(0,), outputs=["out.html"], cap=2 << 30)


_ARTIFACTS_PATH = ("provenance", "artifacts", "path")
REPORT_EDGES = {  # (path into the genuine results, new value): fields only `gandiag report` reads
    "artifacts path too long": (_ARTIFACTS_PATH, "a" * 300),
    "artifacts path with a NUL": (_ARTIFACTS_PATH, "a\x00.npz"),
    "artifacts path is the folder": (_ARTIFACTS_PATH, "."),
    "artifacts path outside": (_ARTIFACTS_PATH, "../r.artifacts.npz"),
    "generator is true": (("generator",), True),
    "real is a string": (("real",), "ring8"),
}


@pytest.mark.parametrize("name", sorted(REPORT_EDGES))
def test_report_edge_cases(tmp_path, genuine_results, name):
    """Hand-picked edits of the genuine results: `gandiag report` exits 0 or 2 with one line, never 3."""
    path, value = REPORT_EDGES[name]
    doc = set_path(json.loads(json.dumps(genuine_results["json"])), path, value)
    (tmp_path / "r.json").write_text(json.dumps(doc))
    (tmp_path / "r.artifacts.npz").write_bytes(genuine_results["artifacts"])
    with nothing_left_behind(tmp_path, allowed=[tmp_path / "out.html"]):
        run_cli(["report", "r.json", "-o", "out.html"], tmp_path, outputs=["out.html"])


def test_results_deep_nesting_cli(tmp_path):
    """100,000 levels of '[' in a results file: one line and exit 2 from report and gate, not a RecursionError."""
    (tmp_path / "r.json").write_text("[" * 100_000)
    (tmp_path / "gates.toml").write_text(GOOD_GATES)
    with nothing_left_behind(tmp_path):
        run_cli(["report", "r.json", "-o", "out.html"], tmp_path, ok=(2,), outputs=["out.html"])
        run_cli(["gate", "r.json", "--gate", "gates.toml"], tmp_path, ok=(2,))


# ============================================================================ 5. gate TOML

METRIC_NAMES = ["fid", "kid", "is", "precision", "recall", "density", "coverage"]
GATE_KEYS = ["min", "max", "max_increase", "max_decrease", "max_increase_abs", "max_decrease_abs", "allow", "deny"]
BASELINES = ["missing.json", "folder", "gates.toml", "binary.json", "deep.json", "list.json", "good.json", "", "\x00",
             "a" * 300, "/nonexistent/dir/r.json", ".", "..", "good.json/x", "r\nx.json"]


@st.composite
def gate_documents(draw):
    kind = draw(st.sampled_from(["structured", "structured", "structured", "text", "tomlish"]))
    if kind == "text":
        return draw(st.text(max_size=120))
    if kind == "tomlish":
        return draw(st.sampled_from(["[gates]\nfid = { max = 1e999 }", "[gates]\nfid = { max = nan }",
                                     "[gates]\n[gates.fid]\n[gates.fid.max]", "[[gates]]\nfid = 1",
                                     "baseline = 1\n[gates]\nfid={max=1}", "[gates]\nfid = { min = 2, max = 1 }",
                                     "[gates]\nmode_collapse = { allow = [] }",
                                     "[gates]\nmode_collapse.modes_captured = { min = {} }",
                                     "\ufeff[gates]\nfid = { max = 1 }", "[gates]\r\nfid = { max = 1 }\r\n"]))
    gates = {}
    for _ in range(draw(st.integers(0, 4))):
        name = draw(st.one_of(st.sampled_from(METRIC_NAMES + ["mode_collapse", "gradient_health", "baseline",
                                                              "mode_collapse.modes_captured"]),
                              st.text(max_size=6)))
        if draw(st.booleans()):
            spec = {draw(st.sampled_from(GATE_KEYS)): draw(st.one_of(
                st.floats(allow_nan=True, allow_infinity=True), st.integers(-(1 << 63), (1 << 63) - 1),
                st.booleans(), st.lists(st.sampled_from(["none", "partial", "severe", "healthy", ""]), max_size=3),
                toml_values())) for _ in range(draw(st.integers(0, 3)))}
        else:
            spec = draw(toml_values())
        gates[name] = spec
    doc = {}
    if draw(st.integers(0, 5)):
        doc["gates"] = gates
    else:
        doc["gates"] = draw(toml_values())
    if draw(st.booleans()):
        doc["baseline"] = draw(st.one_of(st.sampled_from(BASELINES), toml_values()))
    if draw(st.integers(0, 5)) == 0:
        doc[draw(st.text(min_size=1, max_size=5))] = draw(toml_values())
    with contextlib.suppress(Exception):
        return to_toml(doc)
    return ""


def _baseline_files(d: Path, genuine_json: dict) -> None:
    (d / "folder").mkdir()
    (d / "binary.json").write_bytes(b"\xff\xfe\x00garbage")
    (d / "deep.json").write_text("[" * 100_000)
    (d / "list.json").write_text("[]")
    (d / "good.json").write_text(json.dumps(genuine_json))


@fuzz(50)
@given(text=gate_documents())
def test_gate_toml(tmp_path, genuine_results, text):
    """load_gates on random text, random TOML documents (wrong types, odd baselines); when it loads, check_gates."""
    from gandiag.gates import check_gates, load_gates

    with scratch(tmp_path) as d:
        _baseline_files(d, genuine_results["json"])
        p = d / "gates.toml"
        p.write_bytes(text.encode("utf-8", "surrogatepass"))
        with nothing_left_behind(d, allowed=[d / "junit.xml"]):
            gates = call_reader("load_gates", load_gates, p)
            if gates is not None:
                outcome = check_gates(genuine_results["results"], gates, junit_path=d / "junit.xml")
                assert isinstance(outcome.passed, bool)
                outcome.summary()


_BL = '\n[gates]\nfid = { max_increase = 0.1 }\n'
GATE_EDGES = {
    "100000 open brackets": "a = " + "[" * 100_000,
    "100000 nested arrays": "gates = " + "[" * 100_000 + "]" * 100_000,
    "100000 nested inline tables": "[gates]\nfid = " + "{a = " * 100_000 + "1" + "}" * 100_000,
    "baseline with a NUL": 'baseline = "\\u0000"' + _BL,
    "baseline is a folder": 'baseline = "folder"' + _BL,
    "baseline name too long": 'baseline = "' + "a" * 300 + '"' + _BL,
    "baseline is a JSON list": 'baseline = "list.json"' + _BL,
    "baseline nested 100000 deep": 'baseline = "deep.json"' + _BL,
    "baseline not UTF-8": 'baseline = "binary.json"' + _BL,
    "baseline is the gates file": 'baseline = "gates.toml"' + _BL,
    "baseline under a file": 'baseline = "good.json/x"' + _BL,
    "min above max": "[gates]\nfid = { min = 2, max = 1 }",
    "gate is a string": '[gates]\nfid = "40"',
    "gate limit is a table": "[gates]\nfid = { max = {} }",
    "diagnostic number is not a table": "[gates]\nmode_collapse = { modes_captured = 8 }",
    "empty allow list": "[gates]\nmode_collapse = { allow = [] }",
    "array of tables": "[[gates]]\nfid = 1",
    "BOM": "\ufeff[gates]\nfid = { max = 1 }",
}


@pytest.mark.parametrize("name", sorted(GATE_EDGES))
def test_gate_toml_edge_cases(tmp_path, genuine_results, name):
    """Hand-picked gates files: load_gates refuses (GandiagError) or loads and can be checked."""
    from gandiag.gates import check_gates, load_gates

    _baseline_files(tmp_path, genuine_results["json"])
    p = tmp_path / "gates.toml"
    p.write_text(GATE_EDGES[name])
    with nothing_left_behind(tmp_path, allowed=[tmp_path / "junit.xml"]):
        gates = call_reader("load_gates", load_gates, p)
        if gates is not None:
            check_gates(genuine_results["results"], gates, junit_path=tmp_path / "junit.xml").summary()


def test_gates_path_is_a_folder(tmp_path):
    from gandiag.gates import load_gates

    call_reader("load_gates(folder)", load_gates, tmp_path)


@fuzz(12, shrink=False)
@given(text=gate_documents())
def test_gate_toml_cli(tmp_path, genuine_results, text):
    """`gandiag gate` with the fuzzed gates file: exit 0, 1 or 2; JUnit XML only when the gates were checked."""
    with scratch(tmp_path) as d:
        _baseline_files(d, genuine_results["json"])
        (d / "gates.toml").write_bytes(text.encode("utf-8", "surrogatepass"))
        with nothing_left_behind(d, allowed=[d / "junit.xml"]):
            run_cli(["gate", "good.json", "--gate", "gates.toml", "--junit", "junit.xml"], d, ok=(0, 1, 2),
                    outputs=["junit.xml"])


# ============================================================================ 6. log.jsonl

LOG_FIELDS = ["step", "time", "d_loss", "g_loss", "grad_norm_total", "grad_norm", "sigma_max", "event", "non_finite",
              "eval", "lr_g", "lr_d"]


@st.composite
def log_lines(draw, genuine_lines: list):
    kind = draw(st.sampled_from(["genuine", "genuine", "fields", "json", "text", "special"]))
    if kind == "genuine":
        return draw(st.sampled_from(genuine_lines))
    if kind == "fields":
        rec = json.loads(draw(st.sampled_from(genuine_lines))) if draw(st.booleans()) else {}
        for _ in range(draw(st.integers(1, 3))):
            key = draw(st.sampled_from(LOG_FIELDS))
            value = draw(st.one_of(JSON_VALUES, st.dictionaries(st.sampled_from(["G", "D", "net.0.weight"]),
                                                                JSON_VALUES, max_size=3),
                                   st.sampled_from(["diverged", 10 ** 400, -(10 ** 400), float("nan"), float("inf"),
                                                    "NaN", [], {}])))
            rec[key] = value
        if draw(st.integers(0, 4)) == 0 and rec:
            del rec[draw(st.sampled_from(sorted(rec)))]
        return dumps(rec)
    if kind == "json":
        return dumps(draw(JSON_VALUES))
    if kind == "text":
        return draw(st.text(st.characters(blacklist_characters="\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029",
                                          blacklist_categories=("Cs",)), max_size=40))
    return draw(st.sampled_from(["NaN", "Infinity", "{", '{"step": NaN}', '{"step": 1e999, "d_loss": 1}',
                                 '{"step": "5", "d_loss": 1.0}', '{"event": "diverged"}',
                                 '{"step": 1, "d_loss": 1' + "0" * 500 + "}", "\x00", '"just a string"']))


@pytest.fixture(scope="module")
def genuine_log_lines():
    return Lines(ln for ln in (LR1_DIR / "log.jsonl").read_text().splitlines() if ln.strip())


def _log_text(data, genuine_lines) -> str:
    lines = data.draw(st.lists(log_lines(genuine_lines), min_size=0, max_size=8), label="lines")
    sep = data.draw(st.sampled_from(["\n", "\r\n"]), label="newline")
    return sep.join(lines) + data.draw(st.sampled_from(["", sep]), label="end")


@fuzz(50)
@given(data=st.data())
def test_training_log_reader(tmp_path, genuine_log_lines, data):
    """read_log (gandiag.training.trainlog) then analyse_log for each loss, on fuzzed log.jsonl."""
    from gandiag.diagnostics.training_log import analyse_log
    from gandiag.training.trainlog import read_log

    text = _log_text(data, genuine_log_lines)
    with scratch(tmp_path) as d:
        p = d / "log.jsonl"
        p.write_bytes(text.encode("utf-8", "surrogatepass"))
        with nothing_left_behind(d):
            records = call_reader("read_log", read_log, p)
            if records is not None:
                for loss in ("ns", "minimax", "ls", "hinge", "wasserstein", None):
                    out = call_reader(f"analyse_log(loss={loss})", analyse_log, records, loss)
                    if out is not None:
                        json.dumps(out, allow_nan=True)  # goes into the results JSON


LOG_EDGES = {
    "100000 open brackets": "[" * 100_000,
    "a number": "5",
    "NaN": "NaN",
    "a list": "[1, 2]",
    "invalid JSON": "{",
    "step is a string": '{"step": "5", "d_loss": 1.0}',
    "step is null": '{"step": null, "d_loss": 1.0}',
    "no step": '{"d_loss": 1.0}',
    "diverged without step": '{"event": "diverged"}',
    "d_loss huge int": '{"step": 1, "d_loss": 1' + "0" * 400 + "}",
    "d_loss a string": '{"step": 1, "d_loss": "x"}',
    "d_loss a list": '{"step": 1, "d_loss": [1]}',
    "non_finite an int": '{"step": 1, "non_finite": 5}',
    "grad_norm_total G a string": '{"step": 1, "grad_norm_total": {"G": "x", "D": 1}}',
    "sigma_max G a list": '{"step": 1, "sigma_max": {"G": [1]}}\n{"step": 2, "sigma_max": {"G": [2]}}',
    "sigma_max values strings": '{"step": 1, "sigma_max": {"G": {"a": "1"}}}\n{"step": 2, "sigma_max": {"G": {"a": "2"}}}',
    "not UTF-8": "\udcff{}",
}


@pytest.mark.parametrize("name", sorted(LOG_EDGES))
def test_training_log_edge_cases(tmp_path, name):
    """Hand-picked log.jsonl lines: read_log + analyse_log work or raise a GandiagError."""
    from gandiag.diagnostics.training_log import analyse_log
    from gandiag.training.trainlog import read_log

    p = tmp_path / "log.jsonl"
    p.write_bytes(LOG_EDGES[name].encode("utf-8", "surrogateescape"))
    records = call_reader("read_log", read_log, p)
    if records is not None:
        for loss in ("ns", "wasserstein", None):
            call_reader(f"analyse_log(loss={loss})", analyse_log, records, loss)


@pytest.fixture(scope="module")
def lr1_generator():
    from gandiag.generator.loading import LoadOptions, load_generator

    return load_generator(LR1_DIR / "checkpoint.pt", LoadOptions())


@fuzz(20)
@given(data=st.data())
def test_training_log_in_gradient_health(tmp_path, genuine_log_lines, lr1_generator, data):
    """The gradient_health diagnostic on a checkpoint whose log.jsonl is fuzzed: it returns, and its log part
    either works or fails with a GandiagError (not a KeyError or TypeError swallowed into "errors")."""
    import dataclasses

    from gandiag.diagnostics.gradient_health import check

    text = _log_text(data, genuine_log_lines)
    with scratch(tmp_path) as d:
        (d / "log.jsonl").write_bytes(text.encode("utf-8", "surrogatepass"))
        # the log beside "checkpoint.pt" is read; no checkpoint dict, so the (slower) adversarial part is skipped
        gen = dataclasses.replace(lr1_generator, path=str(d / "checkpoint.pt"), checkpoint=None)
        with nothing_left_behind(d):
            out = check(gen, seed=0, device="cpu")
        assert "log" in out or "log" in (out.get("errors") or {}), "the log beside the checkpoint was not read"
        assert_errors_are_gandiag("gradient_health", out.get("errors"))
        json.dumps(out, allow_nan=True)


@fuzz(5, shrink=False)
@given(data=st.data())
def test_training_log_diagnose_cli(tmp_path, genuine_log_lines, data):
    """`gandiag diagnose` on a run folder whose log.jsonl is fuzzed: exit 0, and no diagnostic part failed with
    an internal exception (the JSON's errors)."""
    text = _log_text(data, genuine_log_lines)
    with scratch(tmp_path) as d:
        shutil.copytree(LR1_DIR, d / "run")
        (d / "run" / "log.jsonl").write_bytes(text.encode("utf-8", "surrogatepass"))
        with nothing_left_behind(d, allowed=[d / "out.json", d / "out.artifacts.npz"]):
            run_cli(["diagnose", "run/checkpoint.pt", "-n", "20", "--metrics", "fid", "--device", "cpu", "--no-cache",
                     "--json", "out.json"], d, ok=(0,), outputs=["out.json", "out.artifacts.npz"], cap=1 << 30)
        doc = json.loads((d / "out.json").read_text())
        for name, diag in (doc.get("diagnostics") or {}).items():
            assert_errors_are_gandiag(f"diagnose: {name}", (diag or {}).get("errors"))


@pytest.fixture(scope="module")
def lr1_results_json(tmp_path_factory):
    from gandiag.pipeline import evaluate

    r = evaluate(LR1_DIR / "checkpoint.pt", num_samples=200, metrics=[], diagnostics=False, device="cpu",
                 use_cache=False)
    return Quiet(r.to_json())


@pytest.mark.slow
@fuzz(3, shrink=False)
@given(data=st.data())
def test_training_log_in_report(tmp_path, genuine_log_lines, lr1_results_json, data):
    """`gandiag report` reads log.jsonl beside the checkpoint (training curves, gradient norms): exit 0, and no
    report section fails on the fuzzed log."""
    text = _log_text(data, genuine_log_lines)
    with scratch(tmp_path) as d:
        run = d / "run"
        shutil.copytree(LR1_DIR, run)
        (run / "log.jsonl").write_bytes(text.encode("utf-8", "surrogatepass"))
        doc = json.loads(json.dumps(lr1_results_json))
        doc["generator"]["path"] = str(run / "checkpoint.pt")
        doc["diagnostics"] = {}
        (d / "r.json").write_text(json.dumps(doc, allow_nan=False, default=str))
        with nothing_left_behind(d, allowed=[d / "out.html"]):
            run_cli(["report", "r.json", "-o", "out.html"], d, ok=(0,), outputs=["out.html"])
        html = (d / "out.html").read_text()
        assert "This section failed" not in html, \
            "a report section failed on the fuzzed log.jsonl: " + html[html.index("This section failed"):][:300]


# ============================================================================ 7. the real-feature cache

CACHE_EVAL = dict(feature_extractor="digits", metrics=["fid", "kid", "precision", "recall"], diagnostics=False,
                  device="cpu", kid_subsets=5, kid_subset_size=30, batch_size=128)


@pytest.fixture(scope="module")
def digits_fake(tmp_path_factory):
    """Real data (120 digits, a .npz read by the path source) and 60 'generated' digits (noisy copies), and the
    no-cache numbers. Small, so that recomputing after a damaged entry is cheap."""
    from sklearn.datasets import load_digits

    from gandiag.pipeline import evaluate

    d = tmp_path_factory.mktemp("cachefake")
    imgs = np.rint(load_digits().images[:180] * (255 / 16)).astype(np.uint8)[:, None]
    np.savez(d / "real.npz", images=imgs[:120])
    noisy = imgs[120:].astype(int) + np.random.default_rng(0).integers(-30, 30, imgs[120:].shape)
    np.savez(d / "fake.npz", images=np.clip(noisy, 0, 255).astype(np.uint8))
    ref = evaluate(d / "fake.npz", str(d / "real.npz"), use_cache=False, **CACHE_EVAL)
    return (d / "fake.npz", str(d / "real.npz")), {k: v["value"] for k, v in ref.metrics.items()}


def _values(res) -> dict:
    return {k: v["value"] for k, v in res.metrics.items()}


def _same_numbers(got: dict, want: dict) -> bool:
    return got.keys() == want.keys() and all(
        math.isclose(got[k], want[k], rel_tol=1e-6, abs_tol=1e-9) for k in want)


def _evaluate_capturing(paths):
    """evaluate() with the cache on; (results, the warnings it gave: results.warnings + Python warnings)."""
    from gandiag.pipeline import evaluate

    fake, real = paths
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = evaluate(fake, real, use_cache=True, **CACHE_EVAL)
    # numpy leaks a ResourceWarning on a bad zip, whose text names the (cache) file: not a warning to the user
    return res, list(res.warnings) + [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


def _semantic_cache_edit(arrays: dict, data) -> tuple:
    """An invalid entry of the kinds the cache must catch: NaN, wrong shapes, wrong counts, inconsistent sums.

    Returns (arrays, whether a warning is due when they differ from the original). Edits that leave the
    features and their statistics consistent but different (a deliberate forgery) are not made: only a
    signature could catch those, and the cache is not a security boundary."""
    arrays = dict(arrays)
    feats = sorted(k for k in arrays if k.startswith("features_"))
    key = data.draw(st.sampled_from(sorted(arrays)), label="array")
    how = data.draw(st.sampled_from(["nan", "inf", "drop_rows", "drop_cols", "transpose", "flatten", "sum_off",
                                     "outer_off", "delete", "dtype", "labels", "empty"]), label="edit")
    a = np.array(arrays[key])
    if how == "nan" and a.size and a.dtype.kind == "f":
        a.flat[data.draw(st.integers(0, a.size - 1), label="at")] = np.nan
    elif how == "inf" and a.size and a.dtype.kind == "f":
        a.flat[0] = np.inf
    elif how == "drop_rows" and a.ndim >= 1 and len(a) > 1:
        a = a[: data.draw(st.integers(0, len(a) - 1), label="rows")]
    elif how == "drop_cols" and a.ndim == 2 and a.shape[1] > 1:
        a = a[:, 1:]
    elif how == "transpose" and a.ndim == 2:
        a = a.T.copy()
    elif how == "flatten":
        a = a.reshape(-1)
    elif how == "sum_off" and feats:
        k = data.draw(st.sampled_from([k for k in arrays if k.startswith("sum_")] or [key]), label="sum")
        key, a = k, np.array(arrays[k]) * 1.5 + 1.0
    elif how == "outer_off":
        k = data.draw(st.sampled_from([k for k in arrays if k.startswith("outer_")] or [key]), label="outer")
        key, a = k, np.array(arrays[k]) * 2.0
    elif how == "delete":
        del arrays[key]
        return arrays, key.startswith("features_")  # stats can be recomputed from the features: no warning needed
    elif how == "dtype":
        a = a.astype(data.draw(st.sampled_from(["float16", "int8", "complex64", "bool", "<U2"]), label="dtype"))
    elif how == "labels":
        arrays["labels"] = data.draw(hnp.arrays(np.int64, data.draw(st.integers(0, 5), label="n labels")), label="lab")
        return arrays, True
    elif how == "empty":
        a = a[:0]
    else:
        a = a * 2 + 1 if a.dtype.kind in "fiu" else a
    arrays[key] = a
    return arrays, True


@pytest.fixture(scope="module")
def cache_entry(tmp_path_factory, digits_fake):
    """The genuine cache entry an evaluation writes: (path relative to the cache folder, bytes, arrays)."""
    fake, want = digits_fake
    d = tmp_path_factory.mktemp("cache")
    with env(GANDIAG_CACHE_DIR=d):
        res, _ = _evaluate_capturing(fake)  # writes the entry
        assert _same_numbers(_values(res), want), "a fresh cache entry changed the numbers"
        res, _ = _evaluate_capturing(fake)  # reads it
        assert res.provenance["timings_s"].get("real_features_cached"), "the entry was not used"
        assert _same_numbers(_values(res), want), "a genuine cache hit changed the numbers"
    entries = sorted(d.rglob("*.npz"))
    assert len(entries) == 1, f"expected one cache entry, found {entries}"
    with np.load(entries[0]) as z:
        arrays = {k: z[k] for k in z.files}
    return entries[0].relative_to(d), Blob(entries[0].read_bytes()), arrays


def _check_damaged_entry(base, digits_fake, cache_entry, blob: bytes, warning_due: bool):
    """Put ``blob`` where the entry was, evaluate: the no-cache numbers, and a warning when ``warning_due``."""
    fake, want = digits_fake
    rel, original, _ = cache_entry
    with scratch(base) as d, env(GANDIAG_CACHE_DIR=d / "cache"):
        entry = d / "cache" / rel
        entry.parent.mkdir(parents=True)
        entry.write_bytes(blob)
        with nothing_left_behind(d, allowed=[entry]):
            res, said = _evaluate_capturing(fake)
        assert _same_numbers(_values(res), want), \
            f"a damaged cache entry was trusted: {_values(res)} != no-cache {want}"
        if warning_due and blob != original:
            assert any("cache" in w.lower() for w in said), \
                f"an invalid cache entry was recomputed without a warning (warnings: {said})"


@pytest.mark.slow
@fuzz(8, shrink=False)
@given(data=st.data(), level=st.sampled_from(["semantic", "semantic", "bytes", "random_npz"]))
def test_cache_entry_fuzzed(tmp_path, digits_fake, cache_entry, genuine_npz, data, level):
    """The cache entry of the real features replaced by a damaged one (edited arrays, mutated bytes, another
    .npz): the evaluation gives the no-cache numbers, with a warning when the entry was invalid."""
    _, original, arrays = cache_entry
    if level == "semantic":
        edited, warn_due = _semantic_cache_edit(arrays, data)
        buf = io.BytesIO()
        np.savez(buf, **edited)
        blob, warn_due = buf.getvalue(), warn_due and not _same_arrays(arrays, edited)
    elif level == "bytes":
        blob = apply_mutations(original, data.draw(mutations(), label="ops"))
        warn_due = _unreadable(blob)  # a flip that still reads may or may not be caught; the numbers must hold
    else:
        blob, warn_due = data.draw(npz_files(genuine_npz), label="npz"), True
    _check_damaged_entry(tmp_path, digits_fake, cache_entry, blob, warn_due)


def _npz_of(arrays: dict, **changes) -> bytes:
    arrays = dict(arrays)
    for k, v in changes.items():
        if v is None:
            arrays.pop(k, None)
        else:
            arrays[k] = v
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _with_nan(a):
    a = np.array(a)
    a.flat[0] = np.nan
    return a


CACHE_EDGES = {
    "garbage bytes": lambda a, b: b"garbage",
    "truncated": lambda a, b: b[: len(b) // 2],
    "empty npz": lambda a, b: _npz_of({}),
    "NaN in features_pool": lambda a, b: _npz_of(a, features_pool=_with_nan(a["features_pool"])),
    "NaN in sum_pool": lambda a, b: _npz_of(a, sum_pool=_with_nan(a["sum_pool"])),
    "sum_pool inconsistent": lambda a, b: _npz_of(a, sum_pool=a["sum_pool"] * 1.5 + 1),
    "outer_pool inconsistent": lambda a, b: _npz_of(a, outer_pool=a["outer_pool"] * 2),
    "features_pool one column short": lambda a, b: _npz_of(a, features_pool=a["features_pool"][:, 1:]),
    "features_pool transposed": lambda a, b: _npz_of(a, features_pool=a["features_pool"].T.copy()),
    "features_pool flattened": lambda a, b: _npz_of(a, features_pool=a["features_pool"].reshape(-1)),
    "features_pool half the rows": lambda a, b: _npz_of(a, features_pool=a["features_pool"][::2].copy()),
    "features_logits half the rows": lambda a, b: _npz_of(a, features_logits=a["features_logits"][:20]),
    "features_pool missing": lambda a, b: _npz_of(a, features_pool=None),
    "features_pool as int8": lambda a, b: _npz_of(a, features_pool=a["features_pool"].astype(np.int8)),
    "features_pool as float16": lambda a, b: _npz_of(a, features_pool=a["features_pool"].astype(np.float16)),
    "labels of the wrong length": lambda a, b: _npz_of(a, labels=np.arange(3)),
}


@pytest.mark.parametrize("name", sorted(CACHE_EDGES))
def test_cache_entry_edge_cases(tmp_path, digits_fake, cache_entry, name):
    """Hand-picked damaged entries: the no-cache numbers, and a warning that the entry was ignored."""
    _, original, arrays = cache_entry
    _check_damaged_entry(tmp_path, digits_fake, cache_entry, CACHE_EDGES[name](arrays, original), True)


def _same_arrays(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    for k in a:
        x, y = np.asarray(a[k]), np.asarray(b[k])
        if x.shape != y.shape or x.dtype != y.dtype or not np.array_equal(x, y, equal_nan=x.dtype.kind in "fc"):
            return False
    return True


def _unreadable(blob: bytes) -> bool:
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as z:
            for k in z.files:
                z[k]
        return False
    except Exception:
        return True


@pytest.mark.parametrize("how", ["dir_is_file", "under_a_file", "features_is_file", "entry_is_dir", "proc"])
def test_cache_dir_unusable(tmp_path, digits_fake, cache_entry, how):
    """A cache folder that is a file, sits under a file, or cannot be created: a warning and no cache, the same
    numbers, never a failure."""
    fake, want = digits_fake
    cache = tmp_path / "cache"
    if how == "dir_is_file":
        cache.write_text("not a folder")
    elif how == "under_a_file":
        (tmp_path / "file").write_text("x")
        cache = tmp_path / "file" / "cache"
    elif how == "features_is_file":
        cache.mkdir()
        (cache / "features").write_text("x")
    elif how == "entry_is_dir":
        (cache / cache_entry[0]).mkdir(parents=True)
    else:
        cache = Path("/proc/gandiag-fuzz-cache")  # nobody, root included, can create it
    with env(GANDIAG_CACHE_DIR=cache), nothing_left_behind(tmp_path):
        res, said = _evaluate_capturing(fake)
    assert _same_numbers(_values(res), want)
    assert any("cache" in w.lower() for w in said), f"an unusable cache gave no warning (warnings: {said})"
