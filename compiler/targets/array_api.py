"""The array-API target: one module for NumPy, CuPy, PyTorch, JAX, Dask arrays.

Every entry point opens with ``xp = array_api_compat.array_namespace(...)`` over
its arguments and spells each op with functions of the Python array API
standard (``xp.matmul`` as ``@``, ``xp.sum(x, axis=...)``, ``xp.where``, ...):
no methods but ``.T``, ``.shape`` and ``.dtype``, no NumPy promotion rules.
Where the standard has no op, or NumPy's spelling leans on NumPy behaviour,
the portable form is (``docs/array-api.md`` lists them):

- ``one_hot``: ``astype(expand_dims(y, -1) == arange(k), float)`` (NumPy:
  ``eye(k)[y]``; integer-array indexing is optional in the standard);
- ``pad``: ``concat`` with zero blocks, axis by axis (the standard has no pad);
- bool or int operands of float arithmetic (``g * (y > 0)``): ``astype`` to
  the float dtype first (the standard leaves mixed-kind promotion undefined);
- Python numbers passed to a function (not an operator): ``asarray`` first;
- ``where`` on a float or int condition: ``c != 0`` first;
- ``transpose`` of other than 2-D: ``permute_dims``; slices name every axis;
- ``erf`` (no polyval in the standard): each polynomial of the NumPy target's
  form summed term by term, ``sum(c * expand_dims(y, -1) ** arange(n), axis=-1)``.

New arrays are made on the device of the arguments (``device=dev``, with
``dev = array_api_compat.device(<first argument>)``, emitted only when used).
"""

from __future__ import annotations

import re
from typing import Callable

from ..ops.registry import get_op, is_float, sum_to_axes
from . import Target
from . import numpy as _np
from .numpy import FLOAT_TYPES, EmitArgs, pow_exponent, reshape_dims
from .pyexpr import E, Slice, lit, seq

XP = E.name("xp")
DEV = E.name("dev")
AAC = E.name("array_api_compat")
INT_TYPES = {"i64": "int64", "bool": "bool"}


def _xp_dtype(dtype: str) -> E:
    return XP.attr(FLOAT_TYPES.get(dtype) or INT_TYPES.get(dtype) or dtype)


def _float(e: EmitArgs) -> str:
    """The float dtype the op computes in."""
    if is_float(e.dtype):
        return e.dtype
    return next((d for d in e.dtypes if is_float(d)), "f64")


def _array(e: EmitArgs, i: int) -> E:
    """Operand ``i`` as an array: a Python number becomes ``xp.asarray``."""
    if e.pynum[i]:
        dt = e.dtypes[i] if is_float(e.dtypes[i]) else _float(e)
        return XP.asarray(e[i], dtype=_xp_dtype(dt), device=DEV)
    return e[i]


def _arrays(fn: Callable[[EmitArgs], E]) -> Callable[[EmitArgs], E]:
    """A rule whose spelling calls functions: every operand an array first."""

    def emit(e: EmitArgs) -> E:
        args = [_array(e, i) for i in range(len(e))]
        return fn(EmitArgs(args, e.attrs, e.shape, e.dtype, e.dtypes, [False] * len(e)))

    return emit


def _const(e: EmitArgs) -> E:
    v, shape = e.attrs["value"], e.shape
    if shape == ():
        return lit(float(v))
    kw = {"dtype": _xp_dtype(e.dtype), "device": DEV}
    if v == 0.0:
        return XP.zeros(shape, **kw)
    if v == 1.0:
        return XP.ones(shape, **kw)
    return XP.full(shape, float(v), **kw)


def _transpose(e: EmitArgs) -> E:
    axes, nd = e.attrs["axes"], len(e[0].shape)
    perm = tuple(range(nd))[::-1] if axes is None else tuple(axes)
    if perm == tuple(range(nd)):
        return e[0]
    if perm == (1, 0):
        return e[0].T
    return XP.permute_dims(e[0], perm)


def _reshape(e: EmitArgs) -> E:
    return XP.reshape(e[0], reshape_dims(e.attrs["shape"]))


def _axis(axes: tuple):
    return axes if len(axes) > 1 else axes[0]


def _sum_to(e: EmitArgs) -> E:
    x = e[0]
    src, dst = x.shape, e.shape
    lead, kept = sum_to_axes(src, dst)
    if all(src[i] == 1 for i in lead + kept):
        return XP.reshape(x, reshape_dims(dst))
    if not kept:
        return XP.sum(x, axis=_axis(lead))
    if not lead:
        return XP.sum(x, axis=_axis(kept), keepdims=True)
    return XP.reshape(XP.sum(x, axis=lead + kept, keepdims=True), reshape_dims(dst))


def _reduction(fn: str) -> Callable[[EmitArgs], E]:
    def emit(e: EmitArgs) -> E:
        axis, keepdims = e.attrs["axis"], e.attrs["keepdims"]
        kw = {}
        if axis is not None:
            kw["axis"] = axis
        if keepdims:
            kw["keepdims"] = True
        return getattr(XP, fn)(e[0], **kw)

    return emit


def _slice(e: EmitArgs) -> E:
    items = [i if isinstance(i, int) else Slice(*i) for i in e.attrs["index"]]
    # The standard wants every axis named (NumPy fills in the rest).
    items += [Slice() for _ in range(len(e[0].shape) - len(items))]
    return e[0][tuple(items)]


def _count(e: EmitArgs) -> E:
    out = None
    for a in e.attrs["axis"]:
        term = e[0].attr("shape")[a]
        out = term if out is None else out * term
    return out


def _cast(e: EmitArgs) -> E:
    return XP.astype(e[0], _xp_dtype(e.attrs["dtype"]))


def _unary(fn: str) -> Callable[[EmitArgs], E]:
    return lambda e: getattr(XP, fn)(e[0])


def _pad(e: EmitArgs) -> E:
    """Zero blocks concatenated on each padded axis (the standard has no pad)."""
    x = e[0]
    src = list(x.shape)
    sizes = [d if isinstance(d, int) else x.attr("shape")[i] for i, d in enumerate(src)]
    out = x
    for axis, (lo, hi) in enumerate(e.attrs["widths"]):
        if not (lo or hi):
            continue
        parts = []
        for width in (lo, hi):
            if width:
                shape = tuple(width if i == axis else s for i, s in enumerate(sizes))
                parts.append(XP.zeros(shape, dtype=x.attr("dtype"), device=DEV))
        parts.insert(1 if lo else 0, out)
        out = XP.concat(seq(parts), axis=axis)
        d = sizes[axis]
        sizes[axis] = d + lo + hi if isinstance(d, int) else d + (lo + hi)
    return out


def _condition(e: EmitArgs) -> E:
    """where's condition as a bool array (NumPy reads any nonzero number as true)."""
    c = e[0] if e.dtypes[0] == "bool" else e[0].cmp("!=", 0)
    return XP.asarray(c, device=DEV) if e.pynum[0] else c


def _poly(coeffs: tuple, y: E, e: EmitArgs) -> E:
    """sum_k c_k y**k with ``y`` written once (the standard has no polyval):
    ``sum(c * expand_dims(y, -1) ** arange(n), axis=-1)``; ``coeffs`` highest first."""
    ft = _xp_dtype(_float(e))
    c = XP.asarray(seq([float(v) for v in reversed(coeffs)]), dtype=ft, device=DEV)
    k = XP.arange(len(coeffs), dtype=ft, device=DEV)
    return XP.sum(c * XP.expand_dims(y, axis=-1) ** k, axis=-1)


def _erf(e: EmitArgs) -> E:
    """The NumPy target's erf (series below |x| = 2, fitted tail beyond), each
    polynomial summed term by term (``_poly``)."""
    x = e[0]
    z = XP.minimum(XP.maximum(XP.abs(x), 2.0), 30.0)
    small = x * _poly(_np.ERF_SERIES, XP.minimum(XP.abs(x), 2.0) ** 2, e)
    tail = XP.sign(x) * (1.0 - XP.exp(-(z**2)) / z * _poly(_np.ERF_TAIL, 1.0 / z**2, e))
    return XP.where(XP.abs(x) < 2.0, small, tail)


def _one_hot(e: EmitArgs) -> E:
    labels = XP.expand_dims(XP.astype(e[0], XP.int64), axis=-1)
    hits = labels.cmp("==", XP.arange(e.attrs["num_classes"], device=DEV))
    return XP.astype(hits, _xp_dtype(e.dtype))


_EMIT: dict[str, Callable[[EmitArgs], E]] = {
    "const": _const,
    "neg": lambda e: -e[0],
    "exp": _unary("exp"),
    "log": _unary("log"),
    "square": lambda e: e[0] ** 2,
    "pow_const": lambda e: e[0] ** pow_exponent(e.attrs["exponent"]),
    # exp(-log(1 + exp(-x))), as the NumPy target: no overflow, exact in both tails.
    "sigmoid": lambda e: XP.exp(-XP.logaddexp(0.0, -e[0])),
    "tanh": _unary("tanh"),
    "relu": lambda e: XP.maximum(e[0], 0.0),
    "step": lambda e: e[0] > 0,
    "add": lambda e: e[0] + e[1],
    "sub": lambda e: e[0] - e[1],
    "mul": lambda e: e[0] * e[1],
    "div": lambda e: e[0] / e[1],
    "matmul": lambda e: e[0] @ e[1],
    "transpose": _transpose,
    "reshape": _reshape,
    "broadcast_to": lambda e: XP.broadcast_to(e[0], e.attrs["shape"]),
    "sum_to": _sum_to,
    "sum": _reduction("sum"),
    "mean": _reduction("mean"),
    "max": _reduction("max"),
    "min": _reduction("min"),
    "identity": lambda e: e[0],
    "stop_gradient": lambda e: e[0],
    "log1p": _unary("log1p"),
    "sqrt": _unary("sqrt"),
    "abs": _unary("abs"),
    "sign": _unary("sign"),
    "sin": _unary("sin"),
    "cos": _unary("cos"),
    "gt": lambda e: e[0] > e[1],
    "ge": lambda e: e[0] >= e[1],
    "lt": lambda e: e[0] < e[1],
    "le": lambda e: e[0] <= e[1],
    "eq": lambda e: e[0].cmp("==", e[1]),
    "where": lambda e: XP.where(_condition(e), e[1], e[2]),
    "maximum": lambda e: XP.maximum(e[0], e[1]),
    "minimum": lambda e: XP.minimum(e[0], e[1]),
    "pow": lambda e: e[0] ** e[1],
    "slice": _slice,
    "pad": _pad,
    "concat": lambda e: XP.concat(seq(list(e)), axis=e.attrs["axis"]),
    "stack": lambda e: XP.stack(seq(list(e)), axis=e.attrs["axis"]),
    "broadcast_like": lambda e: XP.broadcast_to(e[0], e[1].attr("shape")),
    "count": _count,
    "zeros_like": lambda e: XP.zeros_like(e[0]),
    "cast": _cast,
    "leaky_relu": lambda e: XP.where(e[0] > 0.0, e[0], e.attrs["alpha"] * e[0]),
    "elu": lambda e: XP.where(
        e[0] > 0.0, e[0], e.attrs["alpha"] * XP.expm1(XP.minimum(e[0], 0.0))
    ),
    "softplus": lambda e: XP.logaddexp(0.0, e[0]),
    "one_hot": _one_hot,
    "erf": _erf,
}

# Spellings by operators (and .T): Python numbers are fine operands there.
OPERATORS = frozenset(
    {"neg", "square", "pow_const", "step", "add", "sub", "mul", "div", "pow", "gt", "ge", "lt", "le", "eq",
     "identity", "stop_gradient"}
)  # fmt: skip


def _promote(op: str, fn: Callable[[EmitArgs], E]) -> Callable[[EmitArgs], E]:
    """Bool or int value operands of an op that computes in floats (``g * (y > 0)``):
    ``xp.astype`` to the float dtype first; the standard leaves mixed-kind
    promotion undefined, where NumPy makes True 1.0."""
    spec = get_op(op)

    def emit(e: EmitArgs) -> E:
        vals = [i for i in spec.value_args(len(e)) if not e.pynum[i]]
        cast = [i for i in vals if not is_float(e.dtypes[i])]
        if cast and (is_float(e.dtype) or any(is_float(e.dtypes[i]) for i in vals)):
            ft = _float(e)
            args, dtypes = list(e), list(e.dtypes)
            for i in cast:
                args[i], dtypes[i] = XP.astype(args[i], _xp_dtype(ft)), ft
            e = EmitArgs(args, e.attrs, e.shape, e.dtype, dtypes, e.pynum)
        return fn(e)

    return emit


def _arrays_values(fn: Callable[[EmitArgs], E]) -> Callable[[EmitArgs], E]:
    """where(c, a, b): the branches as arrays when both are Python numbers."""

    def emit(e: EmitArgs) -> E:
        return _arrays(fn)(e) if e.pynum[1] and e.pynum[2] else fn(e)

    return emit


def _rule(op: str, fn: Callable[[EmitArgs], E]) -> Callable[[EmitArgs], E]:
    if op in OPERATORS:
        return _promote(op, fn)
    if op == "where":
        return _promote(op, _arrays_values(fn))
    if op in ("const", "cast", "one_hot", "count"):  # no arithmetic on operands
        return fn
    return _promote(op, _arrays(fn))


EMIT = {op: _rule(op, fn) for op, fn in _EMIT.items()}

REUSES_OPERANDS = frozenset({"leaky_relu", "elu", "pad", "erf"})

XP_NAMES = frozenset(
    {
        "abs", "arange", "asarray", "astype", "bool", "broadcast_to", "concat", "cos", "exp",
        "expand_dims", "expm1", "eye", "float32", "float64", "full", "int64", "log", "log1p",
        "logaddexp", "matmul", "max", "maximum", "mean", "min", "minimum", "ones", "permute_dims",
        "reshape", "sign", "sin", "sqrt", "stack", "sum", "tanh", "where", "zeros", "zeros_like",
    }
)  # fmt: skip
AAC_NAMES = frozenset({"array_namespace", "device"})


class ArrayApiTarget(Target):
    def scalar(self, e: E, ftype: str) -> E:
        return XP.asarray(e, dtype=XP.attr(ftype), device=DEV)

    def cast_arg(self, e: E, ftype: str) -> E:
        return XP.asarray(e, dtype=XP.attr(ftype))

    def copy(self, name: str) -> str:
        return f"xp.asarray({name}, copy=True)"

    def prologue(self, args: list[str], body: list[str]) -> list[str]:
        lines = [f"xp = array_api_compat.array_namespace({', '.join(args)})"]
        if any(re.search(r"\bdev\b", line) for line in body):
            lines.append(f"dev = array_api_compat.device({args[0]})")
        return lines

    def eye(self, n: int, ftype: str) -> str:
        return f"xp.eye({n}, dtype=xp.{ftype}, device=dev)"

    def reshape(self, expr: str, shape: str) -> str:
        return f"xp.reshape({expr}, {shape})"

    def stack(self, terms: str, axis: int) -> str:
        return f"xp.stack([{terms}], axis={axis})"


# Class labels checked on entry, in the array API: a label outside [0, classes)
# would index past one_hot's rows or, negative, wrap around; a fraction would be
# truncated. (The NumPy target's version is codegen.LABELS_CHECK.)
LABELS_CHECK = '''def _bpc_labels(y, name, classes):
    """`y` as integer class labels in [0, classes), or a ValueError naming the
    input (indexing would wrap a negative label around silently).
    """
    xp = array_api_compat.array_namespace(y)
    expected = f"{name}: expected integer class labels in [0, {classes}), got"
    if xp.isdtype(y.dtype, "real floating"):
        if not xp.all(xp.isfinite(y) & (y == xp.round(y))):
            raise ValueError(f"{expected} a fraction or a non-finite value")
        y = xp.astype(y, xp.int64)
    if not xp.isdtype(y.dtype, "integral"):
        raise ValueError(f"{expected} {y.dtype} values")
    if xp.any((y < 0) | (y >= classes)):
        raise ValueError(f"{expected} a label outside that range")
    return y'''


ARRAY_API = ArrayApiTarget(
    name="array-api",
    import_line="import array_api_compat\nimport numpy as np",
    namespace="xp",
    emit_table=EMIT,
    reuses_operands=REUSES_OPERANDS,
    imports=(("array_api_compat", None), ("numpy", "np")),
    names={"np": _np.NP_NAMES, "xp": XP_NAMES, "array_api_compat": AAC_NAMES},
    methods=_np.METHODS | {"dtype"},
    reserved=frozenset({"xp", "dev", "array_api_compat"}),
    cast_what="arrays (ints, bools) of one namespace",
    labels_check=LABELS_CHECK,
)
