"""``-O3``: intermediates in reused buffers, gradients into the caller's arrays.

At the default level every statement allocates its result, as a person writes
NumPy. At ``-O3`` (``CompileOptions(opt_level=3)``) codegen writes the same
statements with ``out=``:

* an intermediate of at least ``BUFFER_MIN`` elements (static shape, float) is
  computed into a **workspace** array, made on an entry point's first call and
  reused by every later call of the same sizes (``_bpc_workspace``; a symbolic
  dim is read off the arguments, ``x.shape[0]``), so a training loop stops
  allocating (and, in a fresh process, page-faulting) per step;
* a buffer is reused as soon as the value in it is dead: an elementwise op
  writes over an operand that dies there (``h1 = np.tanh(z1, out=z1)``), and a
  freed buffer of the same shape serves the next value (linear scan over the
  statement order, lowest free index first: deterministic);
* ``value_and_grad`` takes ``out=``, a dict of caller-owned gradient arrays, and
  writes each gradient into its array (``h2.T.dot(g, out=out["w3"])``);
  without it the arrays are made fresh on each call (``_bpc_out``).

What never goes into a buffer: params and inputs (never written), values
returned to the caller and everything they may be a view of (a returned array is
never a workspace array, so one call cannot change what an earlier one
returned), and small values (below ``BUFFER_MIN``
elements the ``out=`` keyword costs more than the allocation it saves).

Aliasing rules for callers (also in ``docs/performance.md``): the workspace is
shared by all calls of one entry point of one module, so two threads must not
call the same entry point of the same module at once; the arrays in ``out`` must
be distinct and must not overlap each other or any argument of the same call
(they are written while the arguments are still read): ``_bpc_out`` checks the
rest (a dict, every key a plain ndarray of its shape and dtype, C order,
writable) on every call.
"""

from __future__ import annotations

import ast
import json

import numpy as np

from .ops.registry import sum_to_axes
from .targets.numpy import FLOAT_TYPES
from .targets.pyexpr import E
from .verify import WORKSPACE_DICT  # noqa: F401 (codegen writes it; the whitelist allows it)

# Values smaller than this stay ordinary allocations (elements).
BUFFER_MIN = 64

# Python operators and their ufuncs.
_BINOP_UFUNC = {ast.Add: "add", ast.Sub: "subtract", ast.Mult: "multiply", ast.Div: "divide", ast.MatMult: "matmul"}
# np.* functions that take out= (ufuncs), and array methods that do.
OUT_FUNCTIONS = frozenset(
    {
        "add", "subtract", "multiply", "divide", "negative", "square", "power", "matmul",
        "exp", "log", "tanh", "log1p", "expm1", "sqrt", "abs", "sign", "sin", "cos",
        "maximum", "minimum", "logaddexp",
    }
)  # fmt: skip
OUT_METHODS = frozenset({"sum", "mean", "max", "min"})

# Ops computed elementwise into a buffer of their own shape: the buffer may be
# one of their operands (NumPy's ufuncs read each element before writing it).
ELEMENTWISE = frozenset(
    {
        "add", "sub", "mul", "div", "neg", "exp", "log", "tanh", "square", "pow_const", "relu",
        "maximum", "minimum", "log1p", "sqrt", "abs", "sign", "sin", "cos", "sigmoid",
    }
)  # fmt: skip
# Ops that may be written with out= (their emission's outermost call or operator).
OUT_OPS = ELEMENTWISE | {"matmul", "sum", "mean", "max", "min", "sum_to"}


def with_out(e: E, out: E) -> E | None:
    """``e`` computed into ``out`` with one NumPy call, or None when the outermost
    operation of ``e`` has no ``out=`` form (a reshape, an indexing, a where).
    ``out`` is C-contiguous, of the compile dtype and ``e``'s shape (a workspace
    array, or a caller's array ``_bpc_out`` has checked): ``a.dot(b, out=...)``
    accepts nothing else."""
    node = e.node
    kw = [ast.keyword("out", out.node)]
    if isinstance(node, ast.BinOp):
        op = type(node.op)
        if op is ast.Pow:
            if isinstance(node.right, ast.Constant) and node.right.value == 2:
                fn, args = "square", [node.left]
            else:
                fn, args = "power", [node.left, node.right]
        elif op in _BINOP_UFUNC:
            fn, args = _BINOP_UFUNC[op], [node.left, node.right]
        else:
            return None
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        fn, args = "negative", [node.operand]
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and not any(k.arg == "out" for k in node.keywords):
        f = node.func
        if isinstance(f.value, ast.Name) and f.value.id == "np":
            if f.attr not in OUT_FUNCTIONS or node.keywords:
                return None
            fn, args = f.attr, list(node.args)
        elif f.attr in OUT_METHODS:
            return E(ast.Call(f, list(node.args), list(node.keywords) + kw), e.shape)
        elif f.attr == "dot" and len(node.args) == 1 and not node.keywords:
            return E(ast.Call(f, list(node.args), kw), e.shape)
        else:
            return None
    else:
        return None
    call = ast.Call(ast.Attribute(ast.Name("np", ast.Load()), fn, ast.Load()), args, kw)
    return E(call, e.shape)


def row_sum(e: E) -> E | None:
    """The operand ``x`` of ``e`` when ``e`` is ``x.sum(axis=0)``, else None."""
    node = e.node
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "sum"):
        return None
    kw = node.keywords
    if node.args or len(kw) != 1 or kw[0].arg != "axis" or not isinstance(kw[0].value, ast.Constant):
        return None
    return E(node.func.value) if kw[0].value.value == 0 else None


def slot_item(i: int) -> E:
    return E(ast.Subscript(ast.Name(WORKSPACE_VAR, ast.Load()), ast.Constant(i), ast.Load()))


def out_item(key: str) -> E:
    return E(ast.Subscript(ast.Name("out", ast.Load()), ast.Constant(str(key)), ast.Load()))


WORKSPACE_VAR = "_bpc_ws"
# Names an -O3 entry point uses for itself (a spec's value may not have them).
RESERVED = frozenset({"out"})


def dim_sources(g, names: dict[str, str]) -> dict[str, str]:
    """Each symbolic dim as an argument's size (``x.shape[0]`` for ``"batch"``):
    the first param or input declared with it."""
    out: dict[str, str] = {}
    for a in g.params + g.inputs:
        for k, d in enumerate(g.shape(a)):
            if isinstance(d, str) and d not in out:
                out[d] = f"{names[a]}.shape[{k}]"
    return out


def shapes_literal(shapes, dims: dict[str, str]) -> str:
    return _tuple_of([_tuple(s, dims) for s in shapes])


def keyed_shapes_literal(items, dims: dict[str, str]) -> str:
    return _tuple_of([f"({json.dumps(k)}, {_tuple(s, dims)})" for k, s in items])


def int_tuple(xs: list[int]) -> str:
    return _tuple_of([str(int(x)) for x in xs])


def _tuple_of(items: list[str]) -> str:
    return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"


def _tuple(shape, dims: dict[str, str]) -> str:
    """A shape as a tuple expression: sizes, and symbolic dims read off the arguments."""
    return _tuple_of([dims[d] if isinstance(d, str) else str(int(d)) for d in shape])


WORKSPACE_TEMPLATE = '''def _bpc_workspace(entry, shapes, ones=()):
    """The scratch arrays of `entry` (bpc -O3): made on its first call, reused
    by every later one of the same sizes; those numbered in `ones` hold ones
    (row sums as products). Nothing returned to the caller lives in them, but
    two threads calling one entry point at once would share them.
    """
    ws = _BPC_WORKSPACE.get(entry)
    if ws is None or ws[0] != shapes:
        arrays = [np.empty(s, dtype=np.float64) for s in shapes]
        for i in ones:
            arrays[i].fill(1.0)
        ws = _BPC_WORKSPACE[entry] = (shapes, arrays)
    return ws[1]'''

OUT_TEMPLATE = '''def _bpc_out(out, shapes):
    """The arrays value_and_grad writes the gradients into: new ones, or the
    caller's `out`: a dict of writable C-contiguous float64 arrays (ndarray,
    not a subclass), one per name in WRT, of the name's shape (checked);
    distinct, and overlapping no argument of the call (not checked).
    """
    if out is None:
        return {k: np.empty(s, dtype=np.float64) for k, s in shapes}
    if not isinstance(out, dict):
        raise ValueError(f"out: expected a dict of arrays, got {type(out).__name__}")
    f = np.dtype(np.float64)
    for k, s in shapes:
        a = out.get(k)
        ok = type(a) is np.ndarray and a.shape == s
        ok = ok and (a.dtype is f or a.dtype == f)
        ok = ok and a.flags.c_contiguous and a.flags.writeable
        if not ok:
            raise ValueError(
                f"out[{k!r}]: expected a writable C-contiguous float64 array of shape {s}"
            )
    return out'''


def workspace_templates(dtype: str = "f64") -> dict[str, str]:
    ftype = FLOAT_TYPES[dtype]
    return {
        "_bpc_workspace": WORKSPACE_TEMPLATE.replace("float64", ftype),
        "_bpc_out": OUT_TEMPLATE.replace("float64", ftype),
    }


def buffer_candidates(em) -> set[str]:
    """The values of ``em``'s function that may live in the workspace."""
    from .codegen import BROADCASTS, SOURCES, VIEW_OPS

    g = em.g
    # What the caller gets back, and everything it may be a view of.
    escaping: set[str] = set()
    stack = [r for r in em.roots if r not in em.out_keys]
    while stack:
        n = stack.pop()
        if n in escaping:
            continue
        escaping.add(n)
        if g.op(n) in VIEW_OPS | BROADCASTS:
            stack += g.args(n)
    out = set()
    for n in em.order:
        d = g.data(n)
        if d["op"] in SOURCES or n in escaping or n in em.out_keys or d["op"] not in OUT_OPS:
            continue
        shape = d["shape"]
        if d["dtype"] != g.float_dtype or len(shape) == 0 or not all(x in em.dims for x in shape if isinstance(x, str)):
            continue
        # a symbolic dim counts at its example size (DIMS), else as large
        size = int(np.prod([x if isinstance(x, int) else em.info.dims.get(x, 1 << 20) for x in shape]))
        if size < BUFFER_MIN:
            continue
        if d["op"] == "sum_to":  # one reduction (no reshape, which would be a view)
            src = g.shape(g.args(n)[0])
            lead, kept = sum_to_axes(src, shape)
            if (lead and kept) or all(src[i] == 1 for i in lead + kept):
                continue
        out.add(n)
    return out
