"""Which TensorFlow ops a SavedModel may hold before gandiag loads it.

A SavedModel is a program: ``saved_model.pb`` holds graphs whose ops can read
and write files (``ReadFile``, ``WriteFile``, ``MatchingFiles``, dataset and
reader ops, ``ImmutableConst``, ``InitializeTableFromTextFile``), run Python
(``PyFunc``, ``EagerPyFunc``), print (``PrintV2``, ``Debug*``, summary
writers) or talk to other processes (``Rpc``, collectives, ``_Send``).
``tf.saved_model.load`` runs some functions while it loads (resource
initialisers, restore functions) and the serving signature runs the rest.

So, before TensorFlow reads the model, :func:`check_savedmodel` parses
``saved_model.pb`` itself and collects every op type of every meta graph and
of every function in its library, and refuses any op outside
:data:`ALLOWED_OPS`, the ops generators built with ``tf.Module``, Keras
(``Dense``, ``Conv2DTranspose``, ``BatchNormalization``, ``LeakyReLU``,
``Reshape``, ``Embedding``...) and ``gandiag export`` use: math, nn, array,
variable handling, calls and control flow.

The checkpoint ops that ``tf.saved_model.save`` always writes (``SaveV2``,
``RestoreV2``, ``MergeV2Checkpoints``...) live in the
``__inference__traced_save_*``/``__inference__traced_restore_*`` functions,
called only from the top-level nodes that ``saver_def`` names. They are
allowed (:data:`SAVER_OPS`) in functions reachable from those nodes only, and
never in one also reachable from a signature, another top-level node or the
object graph (whose functions ``tf.saved_model.load`` may call).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ..errors import CheckpointError
from .budgets import ARCHIVE_BYTES, ARCHIVE_MEMBERS
from .files import kind_of, read_bytes_limited
from .untrusted import shown, untrusted

ALLOWED_OPS = frozenset({
    # graph plumbing, calls and control flow
    "Const", "Identity", "IdentityN", "NoOp", "Placeholder", "PlaceholderWithDefault", "StopGradient",
    "PreventGradient", "EnsureShape", "CheckNumerics", "Assert", "StatefulPartitionedCall", "PartitionedCall",
    "If", "StatelessIf", "While", "StatelessWhile", "Case", "StatelessCase",
    "Switch", "Merge", "Enter", "Exit", "NextIteration", "LoopCond",
    # variables
    "VarHandleOp", "ReadVariableOp", "AssignVariableOp", "VarIsInitializedOp", "ResourceGather",
    "AssignAddVariableOp", "AssignSubVariableOp", "VariableV2", "Assign", "DestroyResourceOp",
    # arithmetic and comparisons
    "Add", "AddV2", "AddN", "Sub", "Mul", "MulNoNan", "Div", "DivNoNan", "RealDiv", "FloorDiv", "FloorMod",
    "TruncateDiv", "Neg", "Abs", "Sign", "Square", "Sqrt", "Rsqrt", "Exp", "Expm1", "Log", "Log1p", "Pow",
    "Reciprocal", "Sin", "Cos", "Atan2", "Erf", "Maximum", "Minimum", "ClipByValue", "SquaredDifference",
    "Round", "Floor", "Ceil", "Cumsum", "Sum", "Mean", "Prod", "Max", "Min", "ArgMax", "ArgMin", "All", "Any",
    "MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3", "Einsum",
    "Less", "LessEqual", "Greater", "GreaterEqual", "Equal", "NotEqual", "LogicalAnd", "LogicalOr", "LogicalNot",
    "Select", "SelectV2", "IsNan", "IsFinite", "IsInf",
    # neural-network ops
    "Relu", "Relu6", "LeakyRelu", "Elu", "Selu", "Softplus", "Softsign", "Sigmoid", "Tanh", "Softmax", "LogSoftmax",
    "BiasAdd", "Conv2D", "Conv2DBackpropInput", "Conv3D", "Conv3DBackpropInputV2", "DepthwiseConv2dNative",
    "MaxPool", "AvgPool", "FusedBatchNorm", "FusedBatchNormV3", "ResizeBilinear", "ResizeNearestNeighbor",
    "ResizeBicubic", "DepthToSpace", "SpaceToDepth",
    # arrays and shapes
    "Reshape", "Transpose", "ConcatV2", "Concat", "Pack", "Unpack", "Split", "SplitV", "Slice", "StridedSlice",
    "Squeeze", "ExpandDims", "Tile", "GatherV2", "Gather", "GatherNd", "OneHot", "Pad", "PadV2", "MirrorPad",
    "BroadcastTo", "BroadcastArgs", "Reverse", "ReverseV2", "Where", "Cast", "Shape", "ShapeN", "Size", "Rank",
    "Fill", "ZerosLike", "OnesLike", "Range",
    # random numbers (a generator may draw its own noise)
    "RandomStandardNormal", "RandomUniform", "RandomUniformInt", "TruncatedNormal", "StatelessRandomNormalV2",
    "StatelessRandomUniformV2", "StatelessRandomGetKeyCounter", "StatelessRandomGetKeyCounterAlg",
    # TensorLists: accumulators of tf.while_loop
    "TensorListReserve", "TensorListSetItem", "TensorListGetItem", "TensorListStack", "TensorListFromTensor",
    "TensorListLength", "TensorListElementShape", "EmptyTensorList", "TensorListPushBack", "TensorListPopBack",
})
# Only in functions that the saver_def's top-level save/restore nodes alone reach.
SAVER_OPS = frozenset({"SaveV2", "RestoreV2", "MergeV2Checkpoints", "ShardedFilename", "StringJoin",
                       "StaticRegexFullMatch", "DisableCopyOnRead"})


def check_savedmodel(path: Path) -> None:
    """Refuse a SavedModel any of whose graphs uses an op outside the allow-list (see the module docstring)."""
    from google.protobuf import message, text_format
    from tensorflow.core.protobuf import saved_model_pb2

    sm = saved_model_pb2.SavedModel()
    pb, pbtxt = path / "saved_model.pb", path / "saved_model.pbtxt"
    try:
        if pb.is_file():
            sm.ParseFromString(read_bytes_limited(pb, "saved_model.pb", ARCHIVE_BYTES, error=CheckpointError))
        else:
            text_format.Parse(read_bytes_limited(pbtxt, "saved_model.pbtxt", ARCHIVE_BYTES,
                                                 error=CheckpointError).decode("utf-8", "replace"), sm)
    except (message.DecodeError, text_format.ParseError, RecursionError) as exc:
        raise CheckpointError(f"{path}: saved_model.pb is not a readable SavedModel ({shown(exc, 160)})") from None
    for mg in sm.meta_graphs:
        _check_meta_graph(path, mg)


def check_folder(path: Path) -> None:
    """Everything under a SavedModel folder is a regular file or a folder inside it, within the budgets.

    TensorFlow opens ``variables/*`` and ``assets/*`` by name: a FIFO there
    blocks the load forever, a device never ends, a symlink reads elsewhere.
    """
    root = os.path.realpath(path)
    count = total = 0
    for folder, dirs, files in os.walk(path):
        for name in dirs + files:
            p = os.path.join(folder, name)
            try:
                st, real = os.stat(p), os.path.realpath(p)  # follows links, never opens
            except OSError as exc:
                raise CheckpointError(f"{shown(p)}: cannot be read ({exc.strerror or exc})") from None
            if os.path.commonpath([root, real]) != root:
                raise CheckpointError(f"{shown(p)} is a link to {shown(real)}, outside the SavedModel folder {shown(path)}")
            if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
                raise CheckpointError(f"{shown(p)} is {kind_of(st.st_mode)}; a SavedModel holds regular files only")
            count, total = count + 1, total + (st.st_size if stat.S_ISREG(st.st_mode) else 0)
    ARCHIVE_MEMBERS.check(count, f"{path}: files")
    ARCHIVE_BYTES.check(total, f"{path}")


def _callees(node, library) -> list:
    """Functions a node calls: its op when that names a library function, and func-valued attributes."""
    out = [node.op] if node.op in library else []
    for a in node.attr.values():
        if a.HasField("func"):
            out.append(a.func.name)
        out.extend(f.name for f in a.list.func)
    return out


def _closure(roots, library) -> set:
    seen, stack = set(), list(roots)
    while stack:
        f = stack.pop()
        if f in seen or f not in library:
            continue
        seen.add(f)
        for n in library[f].node_def:
            stack.extend(_callees(n, library))
    return seen


def _check_meta_graph(path: Path, mg) -> None:
    library = {f.signature.name: f for f in mg.graph_def.library.function}
    saver_nodes = {t.split(":")[0].lstrip("^") for t in (mg.saver_def.save_tensor_name, mg.saver_def.restore_op_name) if t}
    signature_nodes = {t.name.split(":")[0] for s in mg.signature_def.values()
                       for t in list(s.inputs.values()) + list(s.outputs.values())}
    program_roots, saver_roots = [], []
    for node in mg.graph_def.node:
        is_saver = node.name in saver_nodes and node.name not in signature_nodes
        (saver_roots if is_saver else program_roots).extend(_callees(node, library))
        if node.op not in ALLOWED_OPS and node.op not in library:
            raise _refusal(path, node.op, "the top-level graph")
    for obj in mg.object_graph_def.nodes:
        kind = obj.WhichOneof("kind")
        if kind == "function":
            program_roots.extend(obj.function.concrete_functions)
        elif kind == "bare_concrete_function":
            program_roots.append(obj.bare_concrete_function.concrete_function_name)
    program_roots.extend(mg.object_graph_def.concrete_functions.keys())
    saver_only = _closure(saver_roots, library) - _closure(program_roots, library)
    for name, fn in library.items():
        allowed = ALLOWED_OPS | SAVER_OPS if name in saver_only else ALLOWED_OPS
        for n in fn.node_def:
            if n.op not in allowed and n.op not in library:
                raise _refusal(path, n.op, f"function {shown(name)}")


def _refusal(path: Path, op: str, where: str) -> CheckpointError:
    return untrusted(path, f"{where} uses the TensorFlow op {shown(op)}, which is not on gandiag's list of ops a "
                           "generator needs (ops outside it can read or write files, run Python or use the network)")
