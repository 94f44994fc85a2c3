"""Fuzzed gandiag checkpoints (the torch loader): bytes, zip members, the checkpoint dict's structure.

Contract and settings: tests/fuzz_support.py. Exported files (torch.export, TorchScript, ONNX, SavedModel)
are in test_fuzz_exports.py.
"""

from __future__ import annotations

import pytest
import torch
from conftest import require_extra

require_extra("hypothesis")  # the test extra installs it; missing, this module fails in CI and is skipped elsewhere

from fuzz_support import (JSON_VALUES, _one_thread, _quiet, apply_mutations, dumps, fuzz,  # noqa: E402,F401
                          load_and_evaluate, make_zip, mutations, nothing_left_behind, ring_ckpt_bytes, scratch,
                          set_path, zip_members, RING_CKPT)
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


TORCH_SUFFIXES = [".pt", ".pth", ".pt2", ".ckpt", ".bin"]


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
    "exclude_classes holds a dict": (("config", "options", "exclude_classes"), [{}]),  # found by the dev profile
    "exclude_classes holds a word": (("config", "options", "exclude_classes"), ["seven"]),
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


@pytest.mark.parametrize("suffix", [".pt", ".pkl"])
def test_zip_whose_pickle_fails_its_crc(tmp_path, suffix):
    """A zip whose data.pkl is readable up to its CRC check (found by the byte-flip property in a fresh CI run:
    a loader's sniff read the member, caught the BadZipFile, then used the closed member as the file)."""
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", b"\x80\x02}q\x00." * 10)
    data = bytearray(buf.getvalue())
    data[data.find(b"\x80\x02}q") + 2] = ord("]")
    p = tmp_path / f"model{suffix}"
    p.write_bytes(bytes(data))
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
