"""The NumPy target: how each op is spelled in a generated NumPy module.

Ops declare rules (shape, dtype, derivatives); this table declares spellings.
Each entry takes an :class:`EmitArgs` (the operands as :class:`E` syntax trees,
with the op's ``attrs`` and the result ``shape``) and returns an ``E``. Every
non-composite op of the registry has an entry (a test checks it).
"""

from __future__ import annotations

import math
from typing import Callable

from ..ops.registry import sum_to_axes
from .pyexpr import NP, E, Slice, lit, seq


class EmitArgs(list):
    """Operands of an emitted op (``E`` each) with ``attrs`` and out ``shape``."""

    def __init__(self, args, attrs: dict, shape: tuple, dtype: str = "f64", dtypes=None, pynum=None):
        super().__init__(args)
        self.attrs = attrs
        self.shape = shape
        self.dtype = dtype
        # per operand: its IR dtype, and whether it is a Python number (not an array)
        self.dtypes = list(dtypes) if dtypes is not None else [dtype] * len(args)
        self.pynum = list(pynum) if pynum is not None else [a.literal for a in args]


FLOAT_TYPES = {"f64": "float64", "f32": "float32"}


def reshape_dims(shape: tuple) -> tuple:
    """A shape for ``reshape``: one symbolic dim becomes -1."""
    return tuple(-1 if not isinstance(d, int) else d for d in shape)


def pow_exponent(p: float):
    """An exponent as written: 2 rather than 2.0 for integral exponents."""
    return int(p) if float(p).is_integer() and abs(p) < 1e6 else p


def reduce(fn: str, x: E, **kw) -> E:
    """``x.sum(...)`` (a method: less overhead than ``np.sum``), or
    ``np.sum(x, ...)`` when x is a literal number."""
    if x.literal:
        return getattr(NP, fn)(x, **kw)
    return getattr(x, fn)(**kw)


def _dtype_kw(e: EmitArgs) -> dict:
    """``dtype=np.float32`` for array constructors in float32 (float64 is NumPy's default)."""
    return {"dtype": NP.float32} if e.dtype == "f32" else {}


def _const(e: EmitArgs) -> E:
    v, shape = e.attrs["value"], e.shape
    if shape == ():
        return lit(float(v))  # a Python float: weak, takes the other operand's dtype
    if v == 0.0:
        return NP.zeros(shape, **_dtype_kw(e))
    if v == 1.0:
        return NP.ones(shape, **_dtype_kw(e))
    return NP.full(shape, float(v), **_dtype_kw(e))


def _pow_const(e: EmitArgs) -> E:
    return e[0] ** pow_exponent(e.attrs["exponent"])


def _transpose(e: EmitArgs) -> E:
    axes = e.attrs["axes"]
    if e[0].literal:  # a number has no .T
        return NP.transpose(e[0]) if axes is None else NP.transpose(e[0], tuple(axes))
    if axes is None or tuple(axes) == (1, 0):
        return e[0].T
    return NP.transpose(e[0], tuple(axes))


def _reshape(e: EmitArgs) -> E:
    dims = reshape_dims(e.attrs["shape"])
    return e[0].reshape(dims) if e[0].shape and not e[0].literal else NP.reshape(e[0], dims)


def _axis(axes: tuple):
    return axes if len(axes) > 1 else axes[0]


def _sum_to(e: EmitArgs) -> E:
    x = e[0]
    src, dst = x.shape, e.shape
    lead, kept = sum_to_axes(src, dst)
    if all(src[i] == 1 for i in lead + kept):  # only size-1 axes
        return NP.reshape(x, reshape_dims(dst)) if x.literal else x.reshape(reshape_dims(dst))
    if not kept:
        return reduce("sum", x, axis=_axis(lead))
    if not lead:
        return reduce("sum", x, axis=_axis(kept), keepdims=True)
    return reduce("sum", x, axis=lead + kept, keepdims=True).reshape(reshape_dims(dst))


def _reduction(fn: str) -> Callable[[EmitArgs], E]:
    def emit(e: EmitArgs) -> E:
        axis, keepdims = e.attrs["axis"], e.attrs["keepdims"]
        kw = {}
        if axis is not None:
            kw["axis"] = axis
        if keepdims:
            kw["keepdims"] = True
        return reduce(fn, e[0], **kw)

    return emit


def _slice(e: EmitArgs) -> E:
    items = tuple(i if isinstance(i, int) else Slice(*i) for i in e.attrs["index"])
    return e[0][items]


def _count(e: EmitArgs) -> E:
    out = None
    for a in e.attrs["axis"]:
        term = e[0].attr("shape")[a]
        out = term if out is None else out * term
    return out


def _cast(e: EmitArgs) -> E:
    return e[0].astype(NP.attr(FLOAT_TYPES.get(e.attrs["dtype"], e.attrs["dtype"])))


# erf(x) = x * S(x**2) for |x| < 2, S the Maclaurin series (33 terms: error
# below 1e-15); beyond, erf(x) = sign(x) * (1 - exp(-z**2) / z * L(1 / z**2))
# with z = |x| clipped to [2, 30] (no overflow; erfc(30) is 0 in float64) and L
# a degree-18 least-squares fit of z * exp(z**2) * erfc(z) / sqrt(pi) in 1/z**2
# (Chebyshev nodes on [1/26**2, 1/4], math.erfc as reference). Max error on
# [-8, 8] against math.erf: 8e-16 (tests/test_ops.py checks it).
ERF_SERIES = tuple(
    2.0 / math.sqrt(math.pi) * (-1) ** k / (math.factorial(k) * (2 * k + 1)) for k in range(32, -1, -1)
)
ERF_TAIL = (
    32966297.923110936, -81928737.4377653, 94726798.68149583, -67781494.51640758,
    33713021.1889426, -12429162.480865037, 3546006.035656187, -810668.4717676378,
    153819.91731370837, -25286.96497355335, 3814.9530087063135, -568.6951265128214,
    90.77870722241616, -16.641053499184096, 3.702161940962955, -1.0578518924832463,
    0.4231421648969681, -0.28209479170109153, 0.5641895835476721,
)  # fmt: skip


def _erf(e: EmitArgs) -> E:
    x = e[0]
    z = NP.minimum(NP.maximum(NP.abs(x), 2.0), 30.0)
    small = x * NP.polyval(seq(list(ERF_SERIES)), NP.minimum(NP.abs(x), 2.0) ** 2)
    tail = NP.sign(x) * (1.0 - NP.exp(-(z**2)) / z * NP.polyval(seq(list(ERF_TAIL)), 1.0 / z**2))
    out = NP.where(NP.abs(x) < 2.0, small, tail)
    # polyval of a list of Python floats computes in float64 whatever x is:
    # a float32 module casts the result back to its own dtype.
    return out.astype(NP.float32) if e.dtype == "f32" else out


def _matmul(e: EmitArgs) -> E:
    """``a.dot(b)`` for operands of at most two axes (the same product as
    ``a @ b`` there, at about half the call overhead: ``matmul`` is a generalized
    ufunc); ``a @ b`` when either has more (``dot`` does not broadcast stacks)."""
    a, b = e
    if len(a.shape) <= 2 and len(b.shape) <= 2 and not a.literal:
        return a.dot(b)
    return a @ b


def _unary_np(fn: str) -> Callable[[EmitArgs], E]:
    return lambda e: getattr(NP, fn)(e[0])


EMIT: dict[str, Callable[[EmitArgs], E]] = {
    "const": _const,
    "neg": lambda e: -e[0],
    "exp": _unary_np("exp"),
    "log": _unary_np("log"),
    "square": lambda e: e[0] ** 2,
    "pow_const": _pow_const,
    # exp(-log(1 + exp(-x))) with logaddexp: no overflow, exact in both tails.
    "sigmoid": lambda e: NP.exp(-NP.logaddexp(0.0, -e[0])),
    "tanh": _unary_np("tanh"),
    "relu": lambda e: NP.maximum(e[0], 0.0),
    "step": lambda e: e[0] > 0,
    "add": lambda e: e[0] + e[1],
    "sub": lambda e: e[0] - e[1],
    "mul": lambda e: e[0] * e[1],
    "div": lambda e: e[0] / e[1],
    "matmul": _matmul,
    "transpose": _transpose,
    "reshape": _reshape,
    "broadcast_to": lambda e: NP.broadcast_to(e[0], e.attrs["shape"]),
    "sum_to": _sum_to,
    "sum": _reduction("sum"),
    "mean": _reduction("mean"),
    "max": _reduction("max"),
    "min": _reduction("min"),
    "identity": lambda e: e[0],
    "stop_gradient": lambda e: e[0],
    "log1p": _unary_np("log1p"),
    "sqrt": _unary_np("sqrt"),
    "abs": _unary_np("abs"),
    "sign": _unary_np("sign"),
    "sin": _unary_np("sin"),
    "cos": _unary_np("cos"),
    "gt": lambda e: e[0] > e[1],
    "ge": lambda e: e[0] >= e[1],
    "lt": lambda e: e[0] < e[1],
    "le": lambda e: e[0] <= e[1],
    "eq": lambda e: e[0].cmp("==", e[1]),
    "where": lambda e: NP.where(e[0], e[1], e[2]),
    "maximum": lambda e: NP.maximum(e[0], e[1]),
    "minimum": lambda e: NP.minimum(e[0], e[1]),
    "pow": lambda e: e[0] ** e[1],
    "slice": _slice,
    "pad": lambda e: NP.pad(e[0], e.attrs["widths"]),
    "concat": lambda e: NP.concatenate(seq(list(e)), axis=e.attrs["axis"]),
    "stack": lambda e: NP.stack(seq(list(e)), axis=e.attrs["axis"]),
    "broadcast_like": lambda e: NP.broadcast_to(e[0], e[1].attr("shape")),
    "count": _count,
    "zeros_like": lambda e: NP.zeros_like(e[0]),
    "cast": _cast,
    "leaky_relu": lambda e: NP.where(e[0] > 0.0, e[0], e.attrs["alpha"] * e[0]),
    "elu": lambda e: NP.where(
        e[0] > 0.0, e[0], e.attrs["alpha"] * NP.expm1(NP.minimum(e[0], 0.0))
    ),
    "softplus": lambda e: NP.logaddexp(0.0, e[0]),
    "erf": _erf,
    "one_hot": lambda e: NP.eye(e.attrs["num_classes"], **_dtype_kw(e))[e[0].astype(NP.intp)],
}

# Spellings that repeat an operand: codegen names such operands first, so the
# repeated text is a variable, not a recomputed expression.
REUSES_OPERANDS = frozenset({"leaky_relu", "elu", "erf"})

# What a generated NumPy module may call: ``np.<name>`` for these names, and
# methods or attributes of values with these names (checked on every module
# before it is written; see compiler/verify.py).
NP_NAMES = frozenset(
    {
        "abs", "array", "arange", "fromstring", "polyval", "broadcast_to", "concatenate", "cos", "eye", "exp",
        "expm1", "float32", "float64", "full", "inf", "intp", "log", "log1p",
        "logaddexp", "maximum", "minimum", "nan", "ones", "pad", "random", "reshape",
        "sign", "sin", "sqrt", "stack", "tanh", "transpose", "where", "zeros",
        "zeros_like", "asarray", "sum", "mean", "max", "min", "empty", "sort",
        # -O3 (compiler/workspace.py): ufuncs written with out=, and copyto
        "add", "subtract", "multiply", "divide", "negative", "square", "power", "matmul",
        "expm1", "copyto",
    }
)
METHODS = frozenset(
    {
        "T", "astype", "reshape", "sum", "mean", "max", "min", "shape", "copy", "dot",
        "default_rng", "normal", "uniform", "integers", "standard_normal", "choice",
    }
)
