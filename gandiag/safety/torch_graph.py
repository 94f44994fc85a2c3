"""Which operators a PyTorch graph may call before gandiag runs it.

A ``torch.export`` program and a TorchScript module are programs: a node can
call any registered operator, including ones that read or write files
(``aten::from_file``, ``aten::save``), print (``aten::_print``,
``prim::Print``), call Python (``prim::PythonOp``) or the network
(``prim::rpc_*``, the ``c10d`` namespace), and, in a ``torch.export`` graph,
any Python callable reachable as ``torch.<attr>...`` (``torch.os.system``).
A generator needs tensor arithmetic only. So every node is checked against
an allow-list: ATen and prims operators (TorchScript: ``aten::`` and
``prim::``) except :data:`DENIED_OPS`, a few Python functions on sizes, and
a few control-flow higher-order operators. The deny-list comes from
enumerating ``torch._C._jit_get_all_schemas()`` (see the test that keeps it
complete): the operators with a file name argument, that print, or that
reach other processes.
"""

from __future__ import annotations

import math
import operator
import re

import torch

from .untrusted import shown, untrusted

DENIED_OPS = frozenset({
    "aten::from_file", "aten::save",  # take a file name
    "aten::_print", "prim::Print",  # print
    "aten::dist_backward", "prim::rpc_async", "prim::rpc_sync", "prim::rpc_remote",  # distributed autograd / RPC
    "prim::PythonOp", "prim::IgnoredPythonOp",  # call back into Python
    "prim::AddStatValue", "prim::TimePoint",  # runtime statistics and clocks, nothing a generator needs
    "prim::profile", "prim::profile_ivalue",  # the profiling executor's callbacks
})
EXPORT_NAMESPACES = ("aten", "prims")
SCRIPT_NAMESPACES = ("aten", "prim")
# Higher-order operators that only call subgraphs of the same program (which are checked too).
HIGHER_ORDER_OPS = frozenset({"cond", "while_loop", "map_impl", "scan", "invoke_subgraph",
                              "wrap_with_set_grad_enabled", "wrap_with_autocast"})
# Python functions a torch.export graph calls on sizes (the serializer's _SYM_OPS) and on tuples.
PYTHON_FUNCTIONS = {
    f"_operator.{n}": getattr(operator, n)
    for n in ("getitem", "add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "neg", "pos", "eq", "ne",
              "lt", "le", "gt", "ge", "and_", "or_", "lshift", "rshift")
}
PYTHON_FUNCTIONS.update({f"math.{n}": getattr(math, n) for n in ("trunc", "ceil", "floor", "sqrt")})
PYTHON_FUNCTIONS.update({f"torch.{n}": getattr(torch, n) for n in
                         ("sym_int", "sym_float", "sym_max", "sym_min", "sym_not", "sym_ite", "sym_sqrt")
                         if hasattr(torch, n)})
_ALLOWED_CALLABLES = set(PYTHON_FUNCTIONS.values())
_EXPORT_TARGET = re.compile(r"torch\.ops\.([A-Za-z0-9_]+)\.([A-Za-z0-9_]+)\.([A-Za-z0-9_]+)")
SAFE_NAME = re.compile(r"[A-Za-z0-9_.]*")  # what FX may paste into the Python code it generates

EXPLAIN = "which can run code or touch files"


def export_target_problem(target: str):
    """None when a serialized node target (``torch.ops.aten.relu.default``) is allowed, else why not."""
    if target in PYTHON_FUNCTIONS:
        return None
    if target.startswith("torch.ops.higher_order."):
        hop = target[len("torch.ops.higher_order."):]
        return None if hop in HIGHER_ORDER_OPS else f"higher-order operator {shown(hop)}"
    m = _EXPORT_TARGET.fullmatch(target)
    if m and m.group(1) in EXPORT_NAMESPACES:
        op = f"{m.group(1)}::{m.group(2)}"
        return f"operator {op}" if op in DENIED_OPS else None
    return f"node target {shown(target)}"


def _callable_allowed(t) -> bool:
    if isinstance(t, torch._ops.OpOverload):
        return t.namespace in EXPORT_NAMESPACES and t._schema.name not in DENIED_OPS
    if isinstance(t, torch._ops.HigherOrderOperator):
        return t.name() in HIGHER_ORDER_OPS
    try:
        return t in _ALLOWED_CALLABLES
    except TypeError:  # unhashable
        return False


def check_exported_program(path, program) -> None:
    """Refuse a loaded ``ExportedProgram`` whose graphs call anything outside the allow-list.

    Runs before ``program.module()``, which is where graph code and guards start to run.
    """
    from .sym_expr import check_guard

    for owner, gm in program.graph_module.named_modules():
        if not isinstance(gm, torch.fx.GraphModule):
            continue
        for node in gm.graph.nodes:
            if node.op in ("placeholder", "output"):
                continue
            if node.op == "get_attr" and isinstance(node.target, str) and SAFE_NAME.fullmatch(node.target):
                continue
            if node.op == "call_function" and _callable_allowed(node.target):
                continue
            raise untrusted(path, f"the torch.export graph calls {shown(node.op)} {shown(node.target)}, {EXPLAIN}")
    for guard in getattr(program, "_guards_code", None) or []:
        if (problem := check_guard(guard)):
            raise untrusted(path, f"the torch.export program has a guard that is not a size check ({problem}), "
                                  "and guards are compiled as Python code")
    for node in program.graph.nodes:
        if node.op == "placeholder" and isinstance(node.meta.get("val"), str):
            raise untrusted(path, f"the torch.export program takes a string input ({shown(node.name)}), "
                                  "which PyTorch pastes into generated Python code")


def script_methods(module):
    """(qualified name, inlined graph) of every method of every submodule of a ScriptModule."""
    for prefix, sub in module.named_modules():
        c = getattr(sub, "_c", None)
        if c is None:
            continue
        for name in c._method_names():
            graph = c._get_method(name).graph.copy()
            torch._C._jit_pass_inline(graph)
            yield (f"{prefix}.{name}" if prefix else name), graph


def _script_nodes(block):
    for node in block.nodes():
        yield node
        for b in node.blocks():
            yield from _script_nodes(b)


def script_op_problem(kind: str):
    """None when a TorchScript node kind (``aten::linear``) is allowed, else why not."""
    ns = kind.partition("::")[0]
    if ns not in SCRIPT_NAMESPACES:
        return f"operator {shown(kind)} (namespace {shown(ns)})"
    return f"operator {kind}" if kind in DENIED_OPS else None


def check_script_module(path, module) -> None:
    """Refuse a loaded TorchScript module any of whose methods calls an op outside the allow-list."""
    for qualname, graph in script_methods(module):
        for node in _script_nodes(graph):
            if (problem := script_op_problem(node.kind())):
                raise untrusted(path, f"TorchScript method {shown(qualname)} calls {problem}, {EXPLAIN}")


def out_of_bounds(t: torch.Tensor) -> bool:
    """True when a tensor's view reaches past its storage: a damaged archive whose record is shorter than the
    tensor's shape. PyTorch's TorchScript loader does not check this, and the first read of such a tensor
    is an out-of-bounds read (a crash, or memory that is not the file's)."""
    if t.numel() == 0 or t.layout != torch.strided:
        return False
    storage = t.untyped_storage()
    try:
        if storage.data_ptr() == 0:  # an empty record: a storage that claims bytes and holds none
            return True
    except RuntimeError:  # "invalid python storage": the same, as PyTorch sees it
        return True
    extent = t.storage_offset() + sum((size - 1) * stride for size, stride in zip(t.shape, t.stride())) + 1
    return extent * t.element_size() > storage.nbytes()


def check_script_tensors(path, module) -> None:
    """Refuse (trusted or not) a loaded TorchScript module whose weights or constants overrun their storage."""
    from ..errors import CheckpointError

    tensors = list(module.state_dict().items())
    for qualname, graph in script_methods(module):
        for node in _script_nodes(graph):
            if node.kind() == "prim::Constant" and node.hasAttribute("value") and node.kindOf("value") == "t":
                tensors.append((f"a constant of {qualname}", node.t("value")))
    for name, t in tensors:
        if out_of_bounds(t):
            raise CheckpointError(f"{path}: corrupt TorchScript archive: tensor {shown(name)} of shape "
                                  f"{tuple(t.shape)} needs more bytes than its record holds")
