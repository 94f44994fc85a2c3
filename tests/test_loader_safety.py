"""No code runs from a generator file unless --trust-checkpoint says so, in every loader.

Each attack is a regression test that builds its hostile file here, mostly by
editing a genuine ``gandiag export``: the load must fail with one line and
exit code 2 (never a traceback, never exit 3), and the payload, which would
create a marker file, must not have run. Genuine files still load with no
flags, and the legitimately pickled variants load with --trust-checkpoint.
docs/security.md ("Loaders: what each checks") is what these tests hold the loaders to.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import pickle
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import gandiag_in_process, require_extra

from gandiag.errors import CheckpointError
from gandiag.export import export_checkpoint
from gandiag.generator.checkpoint import build_network, read_checkpoint, save_checkpoint
from gandiag.generator.loading import LoadOptions, load_generator
from gandiag.safety import sym_expr, torch_graph

FIXTURES = Path(__file__).parent / "fixtures" / "models"
RING = FIXTURES / "ring8_gan_pack4" / "checkpoint.pt"
DIGITS = FIXTURES / "digits_dcgan" / "checkpoint.pt"
TRUSTED = LoadOptions(trust_checkpoint=True)


# -- helpers -----------------------------------------------------------------------------------

def cli(*args):
    """The CLI in-process: (exit code, stderr)."""
    from gandiag.cli import _add_plugin_commands
    from gandiag.cli import cli as group

    _add_plugin_commands()
    res = CliRunner().invoke(group, [str(a) for a in args])
    return res.exit_code, res.stderr


def refused(path, match: str, real: str = "ring8"):
    """``gandiag evaluate path`` exits 2 with one line on stderr containing ``match``."""
    code, err = cli("evaluate", path, "--real", real, "-n", "50", "--no-diagnostics")
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert code == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("gandiag: error:") and match in lines[0], lines[0]
    return lines[0]


class Payload:
    """Unpickling this creates ``marker`` (``open``, pickled as io.open): the stand-in for any code an attacker runs."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def edit_zip(src: Path, dst: Path, *, json_edit=None, replace=None, add=None) -> Path:
    """Copy a PyTorch archive, editing members given relative to its root folder."""
    zin = zipfile.ZipFile(src)
    root = zin.namelist()[0].split("/")[0]
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            rel, data = info.filename[len(root) + 1:], zin.read(info)
            if json_edit and rel in json_edit:
                doc = json.loads(data)
                json_edit[rel](doc)
                data = json.dumps(doc).encode()
            zout.writestr(info.filename, (replace or {}).get(rel, data))
        for rel, data in (add or {}).items():
            zout.writestr(f"{root}/{rel}", data)
    return dst


def saved(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """Genuine exports of the ring8 generator (z: 8 → points) and the digits DCGAN."""
    d = tmp_path_factory.mktemp("exports")
    return {"pt2": export_checkpoint(RING, "export", d / "ring.pt2"),
            "ts": export_checkpoint(RING, "torchscript", d / "ring.pt"),
            "digits_pt2": export_checkpoint(DIGITS, "export", d / "digits.pt2")}


def same_numbers(path, ckpt, **options):
    got, ref = load_generator(path, LoadOptions(**options)), load_generator(ckpt)
    z = torch.randn(5, ref.contract.latent_dim, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        a, b = got.forward(z, None), ref.forward(z, None)
    assert torch.allclose(torch.as_tensor(a), b, atol=1e-5)


# -- torch.export (.pt2) -----------------------------------------------------------------------

def test_genuine_exports_load_with_no_flags_and_give_the_same_numbers(exports):
    same_numbers(exports["pt2"], RING)
    same_numbers(exports["digits_pt2"], DIGITS)
    same_numbers(exports["ts"], RING)
    same_numbers(exports["pt2"], RING, trust_checkpoint=True)


def test_pt2_sample_inputs_payload_the_reported_attack(exports, tmp_path):
    """A genuine export whose sample-inputs pickle was replaced: evaluate exited 0 and ran the payload."""
    marker = tmp_path / "ran"
    bad = edit_zip(exports["pt2"], tmp_path / "bad.pt2",
                   replace={"data/sample_inputs/model.pt": pickle.dumps(Payload(marker))})
    res = gandiag_in_process("evaluate", bad, "--real", "ring8", "-n", "50")  # a payload run here leaves the marker too
    assert res.returncode == 2 and res.stderr.strip().count("\n") == 0, res.stderr
    assert "sample inputs (data/sample_inputs/model.pt)" in res.stderr and "global io.open" in res.stderr
    assert "--trust-checkpoint allows it" in res.stderr
    assert not marker.exists()


@pytest.mark.parametrize("member_payload", ["torch.save", "pickle"])
def test_pt2_pickled_weight_payload(exports, tmp_path, member_payload):
    marker = tmp_path / "ran"
    payload = saved({"w": Payload(marker)}) if member_payload == "torch.save" else pickle.dumps(Payload(marker))

    def mark_pickled(doc):
        doc["config"]["net.0.weight"]["use_pickle"] = True

    bad = edit_zip(exports["pt2"], tmp_path / "bad.pt2", json_edit={"data/weights/model_weights_config.json": mark_pickled},
                   replace={"data/weights/weight_0": payload})
    refused(bad, "weights entry net.0.weight (data/weights/weight_0) hold a pickled Python object (global io.open)")
    assert not marker.exists()


def test_pt2_legitimately_pickled_weight_loads_without_trust(exports, tmp_path):
    """use_pickle with a plain tensor inside (what torch writes for some tensors) is weights-only: fine."""
    ckpt = torch.load(RING, weights_only=True)
    w = (ckpt["ema_generator"] or ckpt["generator"]["state_dict"])["net.0.weight"]  # export uses the EMA weights

    def mark_pickled(doc):
        doc["config"]["net.0.weight"]["use_pickle"] = True

    ok = edit_zip(exports["pt2"], tmp_path / "ok.pt2", json_edit={"data/weights/model_weights_config.json": mark_pickled},
                  replace={"data/weights/weight_0": saved(torch.nn.Parameter(w.clone()))})
    same_numbers(ok, RING)


def test_pt2_weight_pickled_beyond_weights_only_needs_trust_and_then_loads(exports, tmp_path):
    """A plain tensor pickled with protocol 4: harmless, but only a full unpickler reads it, so trust is needed."""
    ckpt = torch.load(RING, weights_only=True)
    w = (ckpt["ema_generator"] or ckpt["generator"]["state_dict"])["net.0.weight"]
    buf = io.BytesIO()
    torch.save(torch.nn.Parameter(w.clone()), buf, pickle_protocol=4)

    def mark_pickled(doc):
        doc["config"]["net.0.weight"]["use_pickle"] = True

    path = edit_zip(exports["pt2"], tmp_path / "p4.pt2", json_edit={"data/weights/model_weights_config.json": mark_pickled},
                    replace={"data/weights/weight_0": buf.getvalue()})
    with pytest.raises(CheckpointError, match="weight_0.*is not plain tensors.*--trust-checkpoint allows it"):
        load_generator(path)
    same_numbers(path, RING, trust_checkpoint=True)


@pytest.mark.parametrize("prefix, match", [("opaque_obj_", "opaque Python object"), ("custom_obj_", "TorchBind object")])
def test_pt2_object_constants(exports, tmp_path, prefix, match):
    marker = tmp_path / "ran"

    def add_constant(doc):
        doc["config"]["evil"] = {"path_name": f"{prefix}0", "is_param": False, "use_pickle": True, "tensor_meta": None}

    bad = edit_zip(exports["pt2"], tmp_path / "bad.pt2",
                   json_edit={"data/constants/model_constants_config.json": add_constant},
                   add={f"data/constants/{prefix}0": pickle.dumps(Payload(marker))})
    refused(bad, f"constant evil is {'an' if prefix == 'opaque_obj_' else 'a'} {match}")
    assert not marker.exists()


def test_pt2_aotinductor_member(exports, tmp_path):
    bad = edit_zip(exports["pt2"], tmp_path / "bad.pt2", add={"data/aotinductor/model/model.so": b"\x7fELF"})
    refused(bad, "AOTInductor package (data/aotinductor/model/model.so)")


def _graph(doc):
    return doc["graph_module"]["graph"]


def _expr_payload(marker):
    def edit(doc):
        text = json.dumps(doc).replace("Symbol('s", f"(__import__('os').system('touch {marker}') and 0) or Symbol('s", 1)
        doc.clear()
        doc.update(json.loads(text))
    return edit


def _guard_payload(marker):
    def edit(doc):
        doc["guards_code"] = [f"__import__('os').system('touch {marker}') == 0"]
    return edit


def _system_node(marker):
    def edit(doc):
        _graph(doc)["nodes"].insert(0, {"target": "torch.os.system", "name": "evil", "outputs": [{"as_none": True}],
                                        "inputs": [{"name": "command", "kind": 1, "arg": {"as_string": f"touch {marker}"}}],
                                        "metadata": {}})
    return edit


def _name_payload(marker):
    def edit(doc):
        text = json.dumps(doc).replace('"z"', json.dumps(f"z=__import__('os').system('touch {marker}')"))
        doc.clear()
        doc.update(json.loads(text))
    return edit


def _file_op(marker):
    def edit(doc):
        node = _graph(doc)["nodes"][0]
        node["target"] = "torch.ops.aten.save.default"
    return edit


@pytest.mark.parametrize("edit, match", [
    (_expr_payload, "a symbolic shape ((__import__('os').system("),
    (_guard_payload, "is guard code, which PyTorch compiles as Python"),
    (_system_node, "the torch.export graph calls node target torch.os.system"),
    (_name_payload, "forward_arg_names z=__import__('os').system("),
    (_file_op, "the torch.export graph calls operator aten::save"),
])
def test_pt2_program_json_payloads(exports, tmp_path, edit, match):
    marker = tmp_path / "ran"
    bad = edit_zip(exports["pt2"], tmp_path / "bad.pt2", json_edit={"models/model.json": edit(marker)})
    refused(bad, match)
    assert not marker.exists()


def test_pt2_old_format_needs_trust(tmp_path):
    path = tmp_path / "old.pt2"
    with zipfile.ZipFile(path, "w") as z:
        for name in ("version", "serialized_exported_program.json", "serialized_state_dict.pt",
                     "serialized_constants.pt", "serialized_example_inputs.pt"):
            z.writestr(name, b"0.1" if name == "version" else b"")
    refused(path, "pre-2.8 format")


def test_exported_program_graph_check_catches_what_the_json_check_would(exports):
    """The post-load check alone: a loaded program whose node calls a Python function is refused."""
    program = torch.export.load(str(exports["pt2"]))
    node = next(n for n in program.graph.nodes if n.op == "call_function")
    node.target = os.system
    with pytest.raises(CheckpointError, match="calls call_function <built-in function system>"):
        torch_graph.check_exported_program("x.pt2", program)


# -- TorchScript -------------------------------------------------------------------------------

HOSTILE_TS = '''
import torch
from typing import Tuple


class Prints(torch.nn.Module):
    def forward(self, z):
        print("owned")
        return z


class Saves(torch.nn.Module):
    def forward(self, z):
        torch.save(z, {marker!r})
        return z


class SetState(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(8))

    def forward(self, z):
        return z * self.w

    @torch.jit.export
    def __getstate__(self) -> Tuple[torch.Tensor, bool]:
        return (self.w, self.training)

    @torch.jit.export
    def __setstate__(self, s: Tuple[torch.Tensor, bool]):
        torch.save(s[0], {marker!r})
        self.w = s[0]
        self.training = s[1]
'''


@pytest.fixture
def hostile_ts(tmp_path, monkeypatch):
    """Scripted modules that print, write a file in forward, and write a file from __setstate__ (load time)."""
    marker = tmp_path / "ran"
    (tmp_path / "hostile_ts.py").write_text(HOSTILE_TS.format(marker=str(marker)))
    monkeypatch.syspath_prepend(str(tmp_path))
    mod = importlib.import_module("hostile_ts")
    paths = {}
    for name in ("Prints", "Saves", "SetState"):
        paths[name] = tmp_path / f"{name}.pt"
        torch.jit.save(torch.jit.script(getattr(mod, name)()), str(paths[name]))
    sys.modules.pop("hostile_ts", None)
    return paths, marker


def test_torchscript_with_print_file_ops_or_setstate_is_refused(hostile_ts):
    paths, marker = hostile_ts
    refused(paths["Prints"], "its TorchScript code (code/__torch__/hostile_ts.py) calls print")
    refused(paths["Saves"], "calls save")
    refused(paths["SetState"], "calls save")
    assert not marker.exists()
    load_generator(paths["SetState"], TRUSTED)  # trusted: torch's behaviour, __setstate__ runs
    assert marker.exists()


def test_torchscript_custom_op_namespace_is_refused(exports, tmp_path):
    names = zipfile.ZipFile(exports["ts"]).namelist()
    # the generator's own code: .../training/nets.py, or .../training/nets/___torch_mangle_N.py when this process
    # traced the class before
    code = next(n.split("/", 1)[1] for n in names if "/nets" in n and n.endswith(".py"))
    text = zipfile.ZipFile(exports["ts"]).read(next(n for n in names if n.endswith(code))).decode()
    text = text.replace("return ", "_x = ops.my_ops.run(z)\n    return ", 1)
    bad = edit_zip(exports["ts"], tmp_path / "bad.pt", replace={code: text.encode()})
    refused(bad, "calls custom operators (ops.my_ops)")


@pytest.mark.parametrize("kind, ok", [("aten::linear", True), ("prim::If", True), ("aten::warn", True),
                                      ("prim::Print", False), ("aten::from_file", False), ("aten::save", False),
                                      ("prim::PythonOp", False), ("c10d::barrier", False), ("torchvision::nms", False)])
def test_torchscript_graph_allow_list(kind, ok):
    assert (torch_graph.script_op_problem(kind) is None) == ok


def test_deny_list_covers_every_file_print_and_rpc_operator():
    """Built from torch._C._jit_get_all_schemas(): every ATen/prim op whose name or arguments suggest files,
    printing, processes or the network is either denied or reviewed here as harmless. A new PyTorch that adds
    such an op fails this test until someone decides."""
    suspect_name = re.compile(r"file|save|load|print|warn|rpc|dist_|socket|open|read|write|url|exec|python|system|"
                              r"getenv|stat|time|sleep|profile|record", re.I)
    suspect_arg = re.compile(r"^(filename|file|path|url|dir|directory)$", re.I)
    reviewed = {
        "aten::_cdist_backward", "aten::_cdist_forward", "aten::_pdist_backward", "aten::_pdist_forward",  # distances
        "aten::miopen_batch_norm", "aten::miopen_batch_norm_backward", "aten::miopen_convolution",  # ROCm kernels
        "aten::miopen_convolution_add_relu", "aten::miopen_convolution_relu", "aten::miopen_convolution_transpose",
        "aten::miopen_ctc_loss", "aten::miopen_depthwise_convolution", "aten::miopen_rnn", "aten::miopen_rnn_backward",
        "aten::_use_miopen_ctc_loss", "aten::batch_norm_gather_stats", "aten::batch_norm_gather_stats_with_counts",
        "aten::batch_norm_stats", "aten::batch_norm_update_stats", "aten::_cudnn_init_dropout_state",
        "aten::_sobol_engine_initialize_state_", "aten::nonzero_static", "aten::record_stream",
        "aten::einsum",  # `path`: the contraction order
        "aten::isprintable", "aten::_get_tracing_state",
        "aten::warn", "aten::_test_warn_in_autograd",  # Python warnings; scripted torch.nn code uses aten::warn; silenced
        "prim::StaticSubgraph", "prim::StaticRuntimeCopyOuts",  # static-runtime internals
    }
    found = set()
    for s in torch._C._jit_get_all_schemas():
        ns, _, name = s.name.partition("::")
        if ns in ("aten", "prims", "prim") and (suspect_name.search(name) or
                                                 any(suspect_arg.match(a.name) for a in s.arguments)):
            found.add(s.name)
    assert found - torch_graph.DENIED_OPS - reviewed == set()
    assert {"aten::from_file", "aten::save", "aten::_print", "prim::Print", "prim::PythonOp"} <= torch_graph.DENIED_OPS


@pytest.mark.parametrize("text, ok", [
    ("Symbol('s68', positive=True, integer=True)", True),
    ("Add(Symbol('s17', positive=True, integer=True), Mul(Integer(2), Symbol('s65', positive=True, integer=True)))", True),
    ("FloorDiv(s0, 2) + Max(s1, 1)", True), ("-int_oo", True), ("Float('1.5', precision=53)", True),
    ("__import__('os').system('x')", False), ("Symbol('s0').__class__", False), ("Symbol(open)", False),
    ("lambda: 1", False), ("Symbol('s0', evaluate=exec)", False), ("Pow(Integer(10), Integer(10000000))", False),
])
def test_sympy_expression_grammar(text, ok):
    assert (sym_expr.check_expr(text) is None) == ok


@pytest.mark.parametrize("text, ok", [
    ("(L['x'].size()[0] // 2) <= L['x'].size()[0]", True), ("L['z'].size()[0] <= 1048576", True),
    ("math.isnan(L['f'])", True), ("L['x'].size()[0] == eval('1')", False), ("L['x'].__class__", False),
])
def test_guard_grammar(text, ok):
    assert (sym_expr.check_guard(text) is None) == ok


# -- ONNX --------------------------------------------------------------------------------------

def _onnx_model(location=None, length=32, domain="", in_subgraph=False):
    """z (N, 4) @ W (4, 2) → tanh; W (or a Constant inside an If branch) optionally stored externally."""
    onnx = require_extra("onnx")
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((4, 2), np.float32), "W")
    if location is not None:
        w.ClearField("raw_data")
        w.data_location = TensorProto.EXTERNAL
        for k, v in (("location", location), ("offset", "0"), ("length", str(length))):
            e = w.external_data.add()
            e.key, e.value = k, v
    nodes, inits = [helper.make_node("MatMul", ["z", "W"], ["h"]), helper.make_node("Tanh", ["h"], ["out"], domain=domain)], [w]
    if in_subgraph:  # W comes from a Constant inside an If's branch
        branch = helper.make_graph([helper.make_node("Constant", [], ["W"], value=w)], "b", [],
                                   [helper.make_tensor_value_info("W", TensorProto.FLOAT, [4, 2])])
        cond = numpy_helper.from_array(np.array(True), "c")
        nodes.insert(0, helper.make_node("If", ["c"], ["W"], then_branch=branch, else_branch=branch))
        inits = [cond]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", 4])],
                          [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 2])], inits)
    opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    model = helper.make_model(g, opset_imports=opsets)
    model.ir_version = 8
    return onnx, model


@pytest.fixture
def onnx_dir(tmp_path):
    require_extra("onnxruntime")
    folder = tmp_path / "model"
    folder.mkdir()
    np.ones((4, 2), np.float32).tofile(tmp_path / "secret.bin")
    np.ones((4, 2), np.float32).tofile(folder / "w.bin")
    (folder / "link.bin").symlink_to(tmp_path / "secret.bin")
    os.mkfifo(folder / "fifo.bin")
    return folder


@pytest.mark.parametrize("location, kw, match", [
    ("ABS", {}, "external data must be a relative path inside the model's folder"),
    ("../secret.bin", {}, "external data must be a relative path inside the model's folder"),
    ("link.bin", {}, "outside the model's folder"),
    ("fifo.bin", {}, "which is a FIFO (named pipe), not a regular file"),
    ("/dev/zero", {}, "must be a relative path"),
    ("w.bin", {"length": 64}, "beyond its 32 bytes"),
    ("../secret.bin", {"in_subgraph": True}, "must be a relative path"),
])
def test_onnx_external_data_must_stay_in_the_model_folder(onnx_dir, location, kw, match):
    location = str(onnx_dir.parent / "secret.bin") if location == "ABS" else location
    onnx, model = _onnx_model(location, **kw)
    path = onnx_dir / "g.onnx"
    onnx.save(model, str(path))
    for options in (LoadOptions(), TRUSTED):  # trust does not lift it: no code runs, but files would be read
        with pytest.raises(CheckpointError, match=re.escape(match)):
            load_generator(path, options)
    if location == "fifo.bin":
        refused(path, match)  # and the CLI does not hang on the FIFO


def test_onnx_external_data_inside_the_folder_loads(onnx_dir):
    onnx, model = _onnx_model("w.bin")
    onnx.save(model, str(onnx_dir / "g.onnx"))
    out = load_generator(onnx_dir / "g.onnx").forward(torch.ones(3, 4), None)
    assert torch.allclose(out, torch.tanh(torch.full((3, 2), 4.0)))


def test_onnx_custom_domain_needs_trust(tmp_path):
    require_extra("onnxruntime")
    onnx, model = _onnx_model(domain="com.evil")
    onnx.save(model, str(tmp_path / "g.onnx"))
    refused(tmp_path / "g.onnx", "calls Tanh from the custom operator domain 'com.evil'")
    with pytest.raises(CheckpointError, match="onnxruntime .* cannot load this model"):  # trusted: onnxruntime decides
        load_generator(tmp_path / "g.onnx", TRUSTED)


# -- TensorFlow SavedModel ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def savedmodels(tmp_path_factory):
    """One TensorFlow import for the module: genuine generators (tf.Module, Keras, gandiag export) and hostile ones."""
    tf = require_extra("tensorflow")
    import keras

    root = tmp_path_factory.mktemp("sm")
    marker = root / "ran"
    out = {"marker": marker, "gandiag": export_checkpoint(RING, "savedmodel", root / "gandiag")}

    def module(name, extra=lambda z: 0.0):
        m = tf.Module()
        m.w = tf.Variable(np.ones((6, 2), np.float32))

        @tf.function(input_signature=[tf.TensorSpec([None, 6], tf.float32, name="z")])
        def serve(z):
            return {"points": tf.tanh(z @ m.w) + extra(z)}

        m.serve = serve
        tf.saved_model.save(m, str(root / name), signatures={"serving_default": serve})
        out[name] = root / name

    module("plain")
    module("ReadFile", lambda z: tf.strings.to_number(tf.strings.substr(tf.io.read_file("/etc/hostname"), 0, 0)))
    module("WriteFile", lambda z: (tf.io.write_file(str(marker), "x"), 0.0)[1])
    module("EagerPyFunc", lambda z: tf.py_function(lambda: 0.0, [], tf.float32))
    module("SaveV2", lambda z: (tf.raw_ops.SaveV2(prefix=str(marker), tensor_names=["a"], shape_and_slices=[""],
                                                  tensors=[z]), 0.0)[1])
    z, labels = keras.Input((6,)), keras.Input((), dtype="int64")
    h = keras.layers.Concatenate()([z, keras.layers.Flatten()(keras.layers.Embedding(10, 4)(labels))])
    h = keras.layers.LeakyReLU()(keras.layers.BatchNormalization()(keras.layers.Dense(4 * 4 * 8)(h)))
    h = keras.layers.Conv2DTranspose(3, 4, 2, padding="same", activation="tanh")(keras.layers.Reshape((4, 4, 8))(h))
    keras.Model([z, labels], keras.layers.Activation("sigmoid")(h)).export(str(root / "keras"), verbose=False)
    out["keras"] = root / "keras"
    return out


@pytest.mark.parametrize("name", ["plain", "keras", "gandiag"])
def test_genuine_savedmodels_load_with_no_flags(savedmodels, name):
    gen = load_generator(savedmodels[name])
    z = torch.randn(3, gen.contract.latent_dim if gen.contract else 6)
    out = gen.forward(z, torch.arange(3) if len(gen.meta["inputs"]) == 2 else None)  # Keras: z and labels
    assert torch.isfinite(out).all()
    if name == "gandiag":
        same_numbers(savedmodels[name], RING)


@pytest.mark.parametrize("op", ["ReadFile", "WriteFile", "EagerPyFunc", "SaveV2"])
def test_savedmodel_with_file_python_or_saver_ops_in_the_signature(savedmodels, op):
    refused(savedmodels[op], f"uses the TensorFlow op {op}, which is not on gandiag's list")
    assert not savedmodels["marker"].exists()


@pytest.mark.slow  # a fresh process that imports TensorFlow: ~6 s
def test_savedmodel_refusal_is_one_line_from_the_real_cli(savedmodels):
    """In a fresh process, where TensorFlow's native start-up logging would otherwise reach stderr too."""
    res = subprocess.run([sys.executable, "-m", "gandiag.cli", "evaluate", str(savedmodels["WriteFile"]),
                          "--real", "ring8", "-n", "50"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 2 and res.stderr.strip().count("\n") == 0, res.stderr
    assert "uses the TensorFlow op WriteFile" in res.stderr and not savedmodels["marker"].exists()


def test_savedmodel_trusted_runs_as_tensorflow_does(savedmodels):
    gen = load_generator(savedmodels["WriteFile"], TRUSTED)
    gen.forward(torch.ones(2, 6), None)
    assert savedmodels["marker"].exists()
    savedmodels["marker"].unlink()


@pytest.mark.parametrize("kind", ["fifo", "link out"])
def test_savedmodel_folder_holds_regular_files_only(savedmodels, tmp_path, kind):
    import shutil

    path = tmp_path / "sm"
    shutil.copytree(savedmodels["plain"], path)
    target = path / "variables" / "variables.data-00000-of-00001"
    target.unlink()
    if kind == "fifo":  # TensorFlow would block on it for ever
        os.mkfifo(target)
    else:
        (tmp_path / "elsewhere").write_bytes(b"x")
        target.symlink_to(tmp_path / "elsewhere")
    for options in (LoadOptions(), TRUSTED):
        with pytest.raises(CheckpointError, match="FIFO|outside the SavedModel folder"):
            load_generator(path, options)


def test_saver_ops_are_allowed_only_where_the_saver_puts_them(savedmodels, tmp_path):
    """Pointing saver_def at the serving node does not make SaveV2 in the serving function acceptable."""
    import shutil

    from tensorflow.core.protobuf import saved_model_pb2

    path = tmp_path / "sm"
    shutil.copytree(savedmodels["SaveV2"], path)
    sm = saved_model_pb2.SavedModel()
    sm.ParseFromString((path / "saved_model.pb").read_bytes())
    mg = sm.meta_graphs[0]
    serving = mg.signature_def["serving_default"].outputs["points"].name.split(":")[0]
    mg.saver_def.restore_op_name = mg.saver_def.save_tensor_name = serving
    (path / "saved_model.pb").write_bytes(sm.SerializeToString())
    # Which saver op is named first depends on the library's order; any of them refuses the file.
    with pytest.raises(CheckpointError, match="uses the TensorFlow op (SaveV2|RestoreV2|MergeV2Checkpoints|"
                                              "ShardedFilename|StringJoin|StaticRegexFullMatch|DisableCopyOnRead)"):
        load_generator(path)


# -- Keras files, garbage, pickles -------------------------------------------------------------

@pytest.mark.parametrize("name, content", [
    ("g.keras", "KERAS_ZIP"), ("g.h5", b"\x89HDF\r\n\x1a\n" + bytes(100)), ("renamed.pt", "KERAS_ZIP")])
def test_keras_files_get_one_clear_line(tmp_path, name, content):
    path = tmp_path / name
    if content == "KERAS_ZIP":
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("metadata.json", "{}")
            z.writestr("config.json", "{}")
            z.writestr("model.weights.h5", b"")
    else:
        path.write_bytes(content)
    line = refused(path, "is a Keras model file; gandiag does not read Keras files")
    assert "model.export(" in line


def test_random_bytes_are_not_called_pickles(tmp_path):
    path = tmp_path / "g.pt"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    line = refused(path, "neither a zip archive nor a pickle that torch.load reads")
    assert "trust" not in line


@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_pickles_name_the_global_they_need(tmp_path, writer):
    marker = tmp_path / "ran"
    path = tmp_path / "g.pt"
    if writer == "torch.save":
        torch.save({"net": Payload(marker)}, path)
    else:
        path.write_bytes(pickle.dumps(Payload(marker), protocol=4))
    refused(path, "pickled Python objects (global io.open")
    assert not marker.exists()


# -- malformed gandiag checkpoints ------------------------------------------------------------

def _mutate(ckpt, change):
    ckpt = dict(ckpt)
    ckpt["generator"] = dict(ckpt["generator"])
    change(ckpt)
    return ckpt


MALFORMED = {
    "unexpected kwargs": (lambda c: c["generator"].update(kwargs={**c["generator"]["kwargs"], "bogus": 1}),
                          "cannot be built from the checkpoint's kwargs (TypeError"),
    "missing generator": (lambda c: c.pop("generator"), "'generator' is missing"),
    "generator not a dict": (lambda c: c.update(generator=[1, 2]), "'generator' is a list, not a dict"),
    "contract not a dict": (lambda c: c.update(contract="z=8"), "'contract' is a str, not a dict"),
    "contract invalid": (lambda c: c.update(contract={**c["contract"], "latent_dim": -3}), "'contract' is invalid"),
    "contract wrong field type": (lambda c: c.update(contract={"latent_dim": 8, "num_classes": "two"}), "'contract' is invalid"),
    "unknown arch": (lambda c: c["generator"].update(arch="no-such-net"), "unknown architecture 'no-such-net'"),
    "state dict entry not a tensor": (lambda c: c.update(ema_generator={**c["ema_generator"], "net.0.weight": "w"}),
                                      "'ema_generator' entry 'net.0.weight' is a str, not a tensor"),
    "format_version not an int": (lambda c: c.update(format_version="1"), "format_version is '1', not a positive integer"),
    "huge network": (lambda c: c["generator"].update(kwargs={**c["generator"]["kwargs"], "hidden": 1 << 24}),
                     "weights do not fit architecture 'mlp-generator'"),
    "data not a dict": (lambda c: c.update(data="ring8"), "'data' is a str, not a dict"),
}


@pytest.fixture(scope="module")
def ring_ckpt():
    return torch.load(RING, weights_only=True)


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_gandiag_checkpoints_are_exit_2(ring_ckpt, tmp_path, case):
    change, match = MALFORMED[case]
    path = tmp_path / "bad.pt"
    save_checkpoint(_mutate(ring_ckpt, change), path)
    with pytest.raises(CheckpointError, match=re.escape(match)):
        load_generator(path)
    if case in ("unexpected kwargs", "missing generator", "huge network"):
        refused(path, match)
    with pytest.raises(CheckpointError):  # what `gandiag export` and `gandiag train --resume` read
        build_network(read_checkpoint(path)["generator"], path)


def _deflated_bomb(path: Path, extra_bytes: int) -> Path:
    """The ring checkpoint with a zero tensor of ``extra_bytes`` added, its members re-deflated: a small file
    whose members declare far more than its size (torch.save itself writes members uncompressed)."""
    ck = torch.load(RING, weights_only=True)
    ck["rng"] = {"bomb": torch.zeros(extra_bytes, dtype=torch.uint8)}
    buf = io.BytesIO()
    torch.save(ck, buf)
    with zipfile.ZipFile(buf) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            out.writestr(info.filename, src.read(info.filename))
    return path


def test_a_deflated_checkpoint_that_unpacks_far_beyond_its_size_is_refused_before_torch_load(tmp_path, monkeypatch):
    """A 0.4 MB file declaring 256 MiB of members: refused by the loader, by read_checkpoint and as digits
    weights before torch.load allocates anything (torch.load is not called on it); the archive budget applies too."""
    bomb = _deflated_bomb(tmp_path / "bomb.pt", 1 << 28)
    assert bomb.stat().st_size < 1 << 20

    def never(*a, **k):
        raise AssertionError("torch.load was called on the bomb")

    monkeypatch.setattr(torch, "load", never)
    for load in (lambda: load_generator(bomb), lambda: read_checkpoint(bomb)):
        with pytest.raises(CheckpointError, match="unpack to 268,"):
            load()
    monkeypatch.undo()
    res = gandiag_in_process("evaluate", FIXTURES / "digits_dcgan" / "checkpoint.pt", "--feature-weights", bomb)
    assert res.returncode == 2 and "unpack to" in res.stderr
    monkeypatch.setenv("GANDIAG_MAX_ARCHIVE_BYTES", "50000")  # the budget, on a 128 kB checkpoint torch.save wrote
    with pytest.raises(Exception, match="GANDIAG_MAX_ARCHIVE_BYTES"):
        load_generator(RING)
    monkeypatch.delenv("GANDIAG_MAX_ARCHIVE_BYTES")
    assert load_generator(RING).format == "gandiag"  # a genuine checkpoint is not a bomb
