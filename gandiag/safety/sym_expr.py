"""Shape expressions in torch.export programs, checked before Python evaluates them.

A ``.pt2`` program carries two kinds of text that PyTorch turns into running
Python: every ``expr_str`` (a symbolic size such as
``Mul(Integer(2), Symbol('s0', positive=True, integer=True))``) goes to
``sympy.sympify``, which ``eval``s it while ``torch.export.load`` runs, and
every ``guards_code`` line (``L['z'].size()[0] <= 1048576``) is compiled with
``exec`` into a guard function when ``program.module()`` is called. A
hostile file puts ``__import__('os').system(...)`` there.

Both are meant to be arithmetic on shape symbols, so they are parsed with
:mod:`ast` (parsing evaluates nothing) and accepted only when every node of
the tree is in a small grammar: integers, symbol names, arithmetic and
comparison operators, and calls of the sympy and ``torch.utils._sympy``
function names that PyTorch itself writes. No attribute access (except
``.size()``/``.stride()`` on inputs in guards and a few ``math`` functions),
no names starting with an underscore, no strings except a symbol's name.
"""

from __future__ import annotations

import ast
import builtins
import re
from typing import Optional

MAX_CHARS = 20_000  # one expression; PyTorch's are a few hundred characters

# What sympy.srepr writes for sizes, relations and booleans.
_SYMPY = {
    "Symbol", "Dummy", "Integer", "Rational", "Float", "Add", "Mul", "Pow", "Mod", "Max", "Min", "Abs",
    "floor", "ceiling", "sqrt", "Eq", "Ne", "Lt", "Le", "Gt", "Ge", "Equality", "Unequality", "StrictLessThan",
    "LessThan", "StrictGreaterThan", "GreaterThan", "And", "Or", "Not", "Piecewise", "ExprCondPair",
    "BooleanTrue", "BooleanFalse", "Half", "One", "Zero", "NegativeOne", "IntInfinity", "NegativeIntInfinity",
}
# torch/_export/serde/serialize.py: the deserializer's ``sympy_functions`` (torch.utils._sympy.functions).
_TORCH_SYMPY = {
    "FloorDiv", "ModularIndexing", "Where", "PythonMod", "CleanDiv", "CeilToInt", "FloorToInt", "CeilDiv",
    "LShift", "RShift", "PowByNatural", "FloatPow", "FloatTrueDiv", "IntTrueDiv", "IsNonOverlappingAndDenseIndicator",
    "TruncToFloat", "TruncToInt", "RoundToInt", "RoundDecimal", "ToFloat", "Identity", "TrueDiv",
    "OpaqueUnaryFn_sqrt", "cast_symbool_to_symint_guardless",
}
FUNCTIONS = frozenset(_SYMPY | _TORCH_SYMPY)
CONSTANTS = frozenset({"oo", "zoo", "nan", "int_oo", "true", "false", "inf", "pi", "E"})
_ASSUMPTIONS = {"integer", "positive", "nonnegative", "negative", "nonpositive", "real", "finite", "infinite",
                "zero", "nonzero", "even", "odd", "rational", "commutative", "extended_real", "precision"}
_SYMBOL = re.compile(r"[A-Za-z][A-Za-z0-9]*")  # s0, s68, u0, zuf0 ...; no underscores, no dunders
_STR_ARG = re.compile(r"[A-Za-z0-9.+\-]{1,64}")  # Symbol('s0'), Float('1.5', precision=53)
_MATH = {"floor", "ceil", "trunc", "sqrt", "isnan", "inf", "log2"}
_SIZE_METHODS = {"size", "stride", "storage_offset", "dim", "numel"}

_BUILTINS = frozenset(dir(builtins))  # sympify's namespace holds Python's builtin functions
_MAX_INT = 1 << 64
_MAX_EXPONENT = 64  # Pow(Integer(10), Integer(10**9)) is exact arithmetic sympy would try to finish

_OPS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.LShift, ast.RShift,
        ast.USub, ast.UAdd, ast.Not, ast.And, ast.Or, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE)


def check_expr(text) -> Optional[str]:
    """None when ``text`` is a plain sympy size expression; otherwise what is wrong with it."""
    return _check(text, guard=False)


def check_guard(text) -> Optional[str]:
    """None when ``text`` is a guard on input sizes; otherwise what is wrong with it."""
    return _check(text, guard=True)


def _check(text, guard: bool) -> Optional[str]:
    if not isinstance(text, str):
        return "not a string"
    if len(text) > MAX_CHARS:
        return f"{len(text):,} characters long"
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return "not an expression"
    try:
        return _node(tree.body, guard)
    except RecursionError:
        return "nested too deeply"


def _node(n: ast.AST, guard: bool) -> Optional[str]:
    """The first disallowed construct under ``n``, or None."""
    if isinstance(n, ast.Constant):
        ok = isinstance(n.value, (int, float, bool)) or n.value is None
        if isinstance(n.value, int) and abs(n.value) > _MAX_INT:
            return "integer too large"
        return None if ok else f"constant {n.value!r}"
    if isinstance(n, ast.Name):
        if n.id in FUNCTIONS or n.id in CONSTANTS or (_SYMBOL.fullmatch(n.id) and n.id not in _BUILTINS):
            return None
        return f"name {n.id!r}"
    if isinstance(n, (ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare)):
        ops = [n.op] if hasattr(n, "op") else list(n.ops)
        bad = next((o for o in ops if not isinstance(o, _OPS)), None)
        if bad is not None:
            return f"operator {type(bad).__name__}"
        if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Pow) and _big_exponent(n.right):
            return "exponent too large"
        kids = {ast.BinOp: lambda: [n.left, n.right], ast.UnaryOp: lambda: [n.operand],
                ast.BoolOp: lambda: n.values, ast.Compare: lambda: [n.left, *n.comparators]}[type(n)]()
        return _first(kids, guard)
    if isinstance(n, ast.Call):
        return _call(n, guard)
    if guard and isinstance(n, ast.Subscript):
        return _subscript(n, guard)
    if guard and isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "math":
        return None if n.attr in _MATH else f"math.{n.attr}"
    return f"{type(n).__name__} expression"


def _first(nodes, guard: bool) -> Optional[str]:
    for k in nodes:
        problem = _node(k, guard)
        if problem:
            return problem
    return None


def _call(n: ast.Call, guard: bool) -> Optional[str]:
    f = n.func
    if isinstance(f, ast.Name) and f.id in FUNCTIONS:
        if "Pow" in f.id and len(n.args) == 2 and _big_exponent(n.args[1]):
            return "exponent too large"
        for i, a in enumerate(n.args):
            if isinstance(a, ast.Constant) and isinstance(a.value, str):
                if i != 0 or f.id not in ("Symbol", "Dummy", "Float") or not _STR_ARG.fullmatch(a.value):
                    return f"string argument of {f.id}"
            elif (problem := _node(a, guard)):
                return problem
        for kw in n.keywords:
            if kw.arg not in _ASSUMPTIONS or not isinstance(kw.value, ast.Constant) or \
                    not isinstance(kw.value.value, (bool, int)):
                return f"keyword argument {kw.arg!r} of {f.id}"
        return None
    if guard and isinstance(f, ast.Attribute) and f.attr in _SIZE_METHODS and not n.args and not n.keywords:
        return _node(f.value, guard) if not isinstance(f.value, ast.Name) else _input_name(f.value)
    if guard and isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id == "math" \
            and f.attr in _MATH and not n.keywords:
        return _first(n.args, guard)
    return "call of " + (f.id if isinstance(f, ast.Name) else type(f).__name__)


def _big_exponent(e: ast.AST) -> bool:
    """A literal exponent (``7`` or ``Integer(7)``) above the limit."""
    if isinstance(e, ast.Call) and isinstance(e.func, ast.Name) and e.func.id == "Integer" and len(e.args) == 1:
        e = e.args[0]
    return isinstance(e, ast.Constant) and isinstance(e.value, int) and abs(e.value) > _MAX_EXPONENT


def _subscript(n: ast.Subscript, guard: bool) -> Optional[str]:
    """``L['z']``, ``L['z'].size()[0]``: indexing by integer or string constants only."""
    idx = n.slice
    if not (isinstance(idx, ast.Constant) and isinstance(idx.value, (int, str))):
        return "computed index"
    if isinstance(idx.value, str) and len(idx.value) > 200:
        return "long index"
    if isinstance(n.value, ast.Name):
        return _input_name(n.value)
    if isinstance(n.value, (ast.Subscript, ast.Call)):
        return _node(n.value, guard)
    return f"indexing of {type(n.value).__name__}"


def _input_name(n: ast.Name) -> Optional[str]:
    return None if n.id in ("L", "args") else f"name {n.id!r}"
