"""Op declarations: one ``defop`` per op, everything about it in one place."""

from __future__ import annotations

import math

import numpy as np

from ..errors import ShapeError
from .registry import (
    Attr,
    Sample,
    broadcast,
    defop,
    norm_axes,
    shape_text,
    static_size,
    sum_to_axes,
)

# ------------------------------------------------------------------ samples

UNARY_SHAPES = [((3,),), ((2, 3),), ((),), ((1, 1),)]
BINARY_SHAPES = [
    ((2, 3), (2, 3)),
    ((2, 3), (3,)),  # bias over rows
    ((3, 1), (1, 4)),  # outer broadcast
    ((2, 1), ()),  # scalar
    ((1, 1), (1,)),
    ((4,), (2, 1, 4)),
]


def unary_samples(domain=None):
    return [Sample(s, {}, domain) for s in UNARY_SHAPES]


def binary_samples(domain=None):
    return [Sample(s, {}, domain) for s in BINARY_SHAPES]


def same(x, **attrs):
    return x


# ------------------------------------------------------------------ sources

defop(
    "input",
    arity=0,
    shape=lambda shape: shape,
    impl=None,
    vjp=None,
    attrs=[Attr("shape", "dims")],
    category="source",
    public=False,
    doc="A value passed to the generated functions (data).",
)
defop(
    "param",
    arity=0,
    shape=lambda shape: shape,
    impl=None,
    vjp=None,
    attrs=[Attr("shape", "dims")],
    category="source",
    public=False,
    doc="A trainable parameter passed to the generated functions.",
)


defop(
    "const",
    arity=0,
    shape=lambda value, shape: shape,
    impl=lambda value, shape: np.full(shape, value),
    vjp=None,
    attrs=[Attr("value", "float"), Attr("shape", "shape", ())],
    category="source",
    public=False,
    doc="A constant filled with one value (a Python float when its shape is []).",
)

# ------------------------------------------------------------------ unary


def _elementwise(arity: int):
    """A declarer for elementwise ops of one arity (shape rule and samples preset)."""
    shape = same if arity == 1 else (lambda a, b: broadcast(a, b))
    samples = unary_samples if arity == 1 else binary_samples

    def declare(name, impl, vjp, derivative, doc, domain=(-2.0, 2.0), **kw):
        kw.setdefault("samples", samples())
        defop(name, arity=arity, shape=shape, impl=impl, vjp=vjp,
              derivative=derivative, doc=doc, domain=domain, **kw)

    return declare


_unary = _elementwise(1)


_unary(
    "neg",
    traits={"linear", "analytic"},
    impl=np.negative,
    vjp=lambda g, out, x: [-g],
    derivative="dx = -g",
    doc="Negation, -x.",
)
_unary(
    "exp",
    traits={"analytic"},
    impl=np.exp,
    vjp=lambda g, out, x: [g * out],
    derivative="dx = g * y  (reuses y = exp(x))",
    doc="Exponential.",
)
_unary(
    "log",
    traits={"analytic"},
    impl=np.log,
    vjp=lambda g, out, x: [g / x],
    derivative="dx = g / x",
    doc="Natural logarithm (x > 0).",
    domain=(0.3, 3.0),
)
_unary(
    "square",
    traits={"analytic"},
    impl=np.square,
    vjp=lambda g, out, x: [g * (2.0 * x)],
    derivative="dx = g * 2 * x",
    doc="x squared.",
)


_unary(
    "pow_const",
    traits={"analytic"},
    impl=lambda x, exponent: np.power(x, exponent),
    vjp=lambda g, out, x, exponent: [g * (exponent * x ** (exponent - 1.0))],
    derivative="dx = g * p * x ** (p - 1)",
    doc="x ** p for a constant exponent p (x > 0 unless p is an integer).",
    attrs=[Attr("exponent", "float", doc="the constant exponent p")],
    domain=(0.3, 3.0),
    samples=[
        Sample(((3,),), {"exponent": 3.0}),
        Sample(((2, 3),), {"exponent": 0.5}),
        Sample(((2, 2),), {"exponent": -1.5}),
        Sample(((1, 1),), {"exponent": 2.0}),
    ],
)


def _sigmoid_impl(x):
    # Deliberately not the emitted formula: the interpreter is an oracle.
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    ez = np.exp(x[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


_unary(
    "sigmoid",
    traits={"analytic"},
    impl=_sigmoid_impl,
    # exp(-log(1 + exp(-x))), with logaddexp: no overflow, exact in both tails.
    vjp=lambda g, out, x: [g * (out * (1.0 - out))],
    derivative="dx = g * y * (1 - y)  (reuses y = sigmoid(x))",
    doc="Logistic sigmoid 1 / (1 + exp(-x)), computed without overflow.",
    domain=(-4.0, 4.0),
)
_unary(
    "tanh",
    traits={"analytic"},
    impl=np.tanh,
    vjp=lambda g, out, x: [g * (1.0 - out * out)],
    derivative="dx = g * (1 - y**2)  (reuses y = tanh(x))",
    doc="Hyperbolic tangent.",
)
_unary(
    "relu",
    impl=lambda x: np.where(x > 0, x, 0.0),
    vjp=lambda g, out, x: [g * out.apply("step")],
    derivative="dx = g * (y > 0)  (subgradient 0 at x = 0)",
    doc="Rectified linear unit max(x, 0).",
    kinks=(0.0,),
)
_unary(
    "step",
    traits={"constant"},
    dtype="bool",
    impl=lambda x: (np.asarray(x) > 0).astype(np.float64),
    vjp=lambda g, out, x: [None],
    derivative="no gradient (piecewise constant)",
    doc="1 where x > 0, else 0: the derivative of relu.",
    kinks=(0.0,),
    public=False,
)

# ------------------------------------------------------------------ binary


_binary = _elementwise(2)


_binary(
    "add",
    traits={"linear", "analytic"},
    impl=np.add,
    vjp=lambda g, out, a, b: [g, g],
    derivative="da = g, db = g  (summed over broadcast axes)",
    doc="a + b with NumPy broadcasting.",
)
_binary(
    "sub",
    traits={"linear", "analytic"},
    impl=np.subtract,
    vjp=lambda g, out, a, b: [g, -g],
    derivative="da = g, db = -g",
    doc="a - b with NumPy broadcasting.",
)
_binary(
    "mul",
    traits={"analytic"},
    impl=np.multiply,
    vjp=lambda g, out, a, b: [g * b, g * a],
    derivative="da = g * b, db = g * a",
    doc="a * b elementwise with NumPy broadcasting.",
)
_binary(
    "div",
    traits={"analytic"},
    impl=np.divide,
    vjp=lambda g, out, a, b: [g / b, -(g * out) / b],
    derivative="da = g / b, db = -g * y / b  (reuses y = a / b)",
    doc="a / b elementwise with NumPy broadcasting (b != 0).",
    samples=[Sample(s, {}, None) for s in BINARY_SHAPES],
    domain=(0.5, 2.0),
)

# ------------------------------------------------------------------ linear algebra


def _matmul_shape(a, b):
    if len(a) == 0 or len(b) == 0:
        raise ShapeError("matmul needs at least 1-D operands")
    a2 = (1,) + a if len(a) == 1 else a
    b2 = b + (1,) if len(b) == 1 else b
    if a2[-1] != b2[-2]:
        raise ShapeError(f"inner dimensions differ: {list(a)} @ {list(b)}")
    batch = broadcast(a2[:-2], b2[:-2])
    out = batch + (a2[-2], b2[-1])
    if len(a) == 1:
        out = out[:-2] + out[-1:]
    if len(b) == 1:
        out = out[:-1]
    return out


def _mT(v):
    """Swap the last two axes (the matrix transpose of a batch)."""
    if v.ndim == 2:
        return v.T
    perm = tuple(range(v.ndim - 2)) + (v.ndim - 1, v.ndim - 2)
    return v.apply("transpose", axes=perm)


def _matmul_vjp(g, out, a, b):
    if a.ndim == 1 and b.ndim == 1:  # dot product
        return [g * b, g * a]
    if a.ndim == 1:  # (k,) @ (..., k, n) -> (..., n)
        k = a.shape[0]
        g_row = g.reshape(g.shape[:-1] + (1, g.shape[-1]))
        da = (g_row @ _mT(b)).sum_to((1, k)).reshape((k,))
        return [da, a.reshape((k, 1)) @ g_row]
    if b.ndim == 1:  # (..., m, k) @ (k,) -> (..., m)
        k = b.shape[0]
        g_col = g.reshape(g.shape + (1,))
        db = (_mT(a) @ g_col).sum_to((k, 1)).reshape((k,))
        return [g_col @ b.reshape((1, k)), db]
    return [g @ _mT(b), _mT(a) @ g]


def _matmul_jvp(ts, out, a, b):
    ta, tb = ts
    parts = ([ta @ b] if ta is not None else []) + ([a @ tb] if tb is not None else [])
    return parts[0] if len(parts) == 1 else parts[0] + parts[1]


defop(
    "matmul",
    traits={"analytic"},
    arity=2,
    shape=_matmul_shape,
    impl=np.matmul,
    vjp=_matmul_vjp,
    jvp=_matmul_jvp,
    tangent="t = ta @ b + a @ tb (the product rule)",
    derivative="da = g @ b.T, db = a.T @ g",
    doc="Matrix product a @ b with NumPy's rules (vectors, batches).",
    category="linalg",
    samples=[
        Sample(((2, 3), (3, 4))),
        Sample(((1, 3), (3, 1))),
        Sample(((3,), (3, 2))),
        Sample(((2, 3), (3,))),
        Sample(((3,), (3,))),
        Sample(((2, 2, 3), (3, 4))),
        Sample(((2, 1, 2, 3), (3, 3, 2))),
    ],
)


def _transpose_shape(x, axes):
    perm = tuple(reversed(range(len(x)))) if axes is None else axes
    if sorted(perm) != list(range(len(x))):
        raise ShapeError(f"axes {list(perm)} is not a permutation of {len(x)} axes")
    return tuple(x[i] for i in perm)


def _transpose_vjp(g, out, x, axes):
    if axes is None:
        return [g.T]
    inv = tuple(sorted(range(len(axes)), key=lambda i: axes[i]))
    return [g.apply("transpose", axes=inv)]


defop(
    "transpose",
    traits={"linear", "analytic"},
    dtype="same",
    arity=1,
    shape=_transpose_shape,
    impl=lambda x, axes: np.transpose(x, axes),
    vjp=_transpose_vjp,
    attrs=[Attr("axes", "perm", None, "permutation; null reverses the axes")],
    derivative="dx = transpose(g, inverse permutation)",
    doc="Permute axes (x.T when axes is null).",
    category="shape",
    samples=[
        Sample(((2, 3),), {"axes": None}),
        Sample(((2, 3, 4),), {"axes": (1, 2, 0)}),
        Sample(((3,),), {"axes": None}),
    ],
)


def _reshape_shape(x, shape):
    sx = sorted(str(d) for d in x if not isinstance(d, int))
    ss = sorted(str(d) for d in shape if not isinstance(d, int))
    px = math.prod(d for d in x if isinstance(d, int))
    ps = math.prod(d for d in shape if isinstance(d, int))
    if sx != ss or px != ps:
        raise ShapeError(f"cannot reshape {list(x)} into {list(shape)}")
    shape_text(shape)  # at most one symbolic dim
    return shape


defop(
    "reshape",
    traits={"linear", "analytic"},
    dtype="same",
    arity=1,
    shape=_reshape_shape,
    impl=lambda x, shape: np.reshape(x, tuple(-1 if isinstance(d, str) else d for d in shape)),
    vjp=lambda g, out, x, shape: [g.reshape(x.shape)],
    attrs=[Attr("shape", "dims")],
    derivative="dx = reshape(g, x.shape)",
    doc="Same elements, new shape.",
    category="shape",
    samples=[Sample(((2, 3),), {"shape": (3, 2)}), Sample(((6,),), {"shape": (1, 6)})],
)


def _broadcast_to_shape(x, shape):
    if broadcast(x, shape) != tuple(shape):
        raise ShapeError(f"cannot broadcast {list(x)} to {list(shape)}")
    return shape


defop(
    "broadcast_to",
    traits={"linear", "analytic"},
    dtype="same",
    arity=1,
    shape=_broadcast_to_shape,
    impl=lambda x, shape: np.broadcast_to(x, shape).copy(),
    vjp=lambda g, out, x, shape: [g.sum_to(x.shape)],
    attrs=[Attr("shape", "shape")],
    derivative="dx = sum_to(g, x.shape)",
    doc="Repeat x along broadcast axes.",
    category="shape",
    samples=[Sample(((3,),), {"shape": (2, 3)}), Sample(((2, 1),), {"shape": (2, 4)})],
)


def _sum_to_shape(x, shape):
    if broadcast(x, shape) != tuple(x):
        raise ShapeError(f"cannot sum {list(x)} down to {list(shape)}")
    return shape


def _sum_to_impl(x, shape):
    lead, kept = sum_to_axes(x.shape, shape)
    out = np.sum(x, axis=lead + kept, keepdims=True)
    return out.reshape(tuple(-1 if isinstance(d, str) else d for d in shape))


defop(
    "sum_to",
    traits={"linear", "analytic"},
    arity=1,
    shape=_sum_to_shape,
    impl=_sum_to_impl,
    vjp=lambda g, out, x, shape: [g.broadcast_to(x.shape, like=x)],
    attrs=[Attr("shape", "dims")],
    derivative="dx = broadcast_to(g, x.shape)",
    doc="Sum over broadcast axes down to a shape (the adjoint of broadcasting).",
    category="shape",
    public=False,
    samples=[
        Sample(((2, 3),), {"shape": (3,)}),
        Sample(((2, 3),), {"shape": (2, 1)}),
        Sample(((4, 2, 3),), {"shape": (1, 3)}),
        Sample(((1, 3),), {"shape": (3,)}),
    ],
)

# ------------------------------------------------------------------ reductions


def _reduce_shape(x, axis, keepdims):
    axes = norm_axes(axis, len(x))
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(x))
    return tuple(d for i, d in enumerate(x) if i not in axes)


def _expand_back(g, x, axis, keepdims):
    """Give a reduction's cotangent back the reduced axes (as size 1).

    A full reduction's cotangent (shape ()) broadcasts as it is: no reshape.
    """
    if axis is None and not keepdims:
        return g
    axes = norm_axes(axis, x.ndim)
    kept = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
    return g.reshape(kept)


def _sum_vjp(g, out, x, axis, keepdims):
    return [_expand_back(g, x, axis, keepdims).broadcast_to(x.shape, like=x)]


def _mean_vjp(g, out, x, axis, keepdims):
    axes = norm_axes(axis, x.ndim)
    n = static_size(tuple(x.shape[i] for i in axes))
    gk = _expand_back(g, x, axis, keepdims)
    scaled = gk * (1.0 / n) if n is not None else gk / x.apply("count", axis=axes)
    return [scaled.broadcast_to(x.shape, like=x)]


REDUCE_ATTRS = [
    Attr("axis", "axis", None, "axis or axes to reduce; null for all"),
    Attr("keepdims", "bool", False, "keep reduced axes with size 1"),
]
REDUCE_SAMPLES = [
    Sample(((2, 3),), {"axis": None, "keepdims": False}),
    Sample(((2, 3),), {"axis": 0, "keepdims": False}),
    Sample(((2, 3),), {"axis": 1, "keepdims": True}),
    Sample(((2, 3, 4),), {"axis": (0, 2), "keepdims": False}),
    Sample(((1, 1),), {"axis": None, "keepdims": False}),
]

defop(
    "sum",
    traits={"linear", "analytic"},
    arity=1,
    shape=_reduce_shape,
    impl=lambda x, axis, keepdims: np.sum(x, axis=axis, keepdims=keepdims),
    vjp=_sum_vjp,
    attrs=REDUCE_ATTRS,
    derivative="dx = broadcast g back over the summed axes",
    doc="Sum over axes.",
    category="reduction",
    samples=REDUCE_SAMPLES,
)
defop(
    "mean",
    traits={"linear", "analytic"},
    arity=1,
    shape=_reduce_shape,
    impl=lambda x, axis, keepdims: np.mean(x, axis=axis, keepdims=keepdims),
    vjp=_mean_vjp,
    attrs=REDUCE_ATTRS,
    derivative="dx = g / n broadcast back over the n averaged elements",
    doc="Mean over axes.",
    category="reduction",
    samples=REDUCE_SAMPLES,
)

defop(
    "identity",
    traits={"linear", "analytic"},
    dtype="same",
    arity=1,
    shape=same,
    impl=lambda x: np.array(x, copy=True),
    vjp=lambda g, out, x: [g],
    derivative="dx = g",
    doc="The same value under another name (an alias: y = x).",
    samples=unary_samples(),
    public=False,
)

# ------------------------------------------------------------------ more elementwise

_unary(
    "log1p",
    traits={"analytic"},
    impl=np.log1p,
    vjp=lambda g, out, x: [g / (1.0 + x)],
    derivative="dx = g / (1 + x)",
    doc="log(1 + x), accurate for small x (x > -1).",
    domain=(-0.5, 2.0),
)
_unary(
    "sqrt",
    traits={"analytic"},
    impl=np.sqrt,
    vjp=lambda g, out, x: [g * 0.5 / out],
    derivative="dx = g * 0.5 / y  (reuses y = sqrt(x))",
    doc="Square root (x > 0).",
    domain=(0.3, 3.0),
)
_unary(
    "abs",
    impl=np.abs,
    vjp=lambda g, out, x: [g * x.apply("sign")],
    derivative="dx = g * sign(x)  (subgradient 0 at x = 0)",
    doc="Absolute value.",
    kinks=(0.0,),
)
_unary(
    "sign",
    traits={"constant"},
    impl=np.sign,
    vjp=lambda g, out, x: [None],
    derivative="no gradient (piecewise constant)",
    doc="-1, 0 or 1: the derivative of abs.",
    kinks=(0.0,),
    public=False,
)
_unary(
    "sin",
    traits={"analytic"},
    impl=np.sin,
    vjp=lambda g, out, x: [g * x.apply("cos")],
    derivative="dx = g * cos(x)",
    doc="Sine.",
)
_unary(
    "cos",
    traits={"analytic"},
    impl=np.cos,
    vjp=lambda g, out, x: [-(g * x.apply("sin"))],
    derivative="dx = -g * sin(x)",
    doc="Cosine.",
)
_unary(
    "stop_gradient",
    traits={"constant"},
    dtype="same",
    impl=lambda x: np.array(x, copy=True),
    vjp=lambda g, out, x: [None],
    derivative="no gradient (treated as a constant)",
    doc="The same value, but no gradient flows through it.",
)

# ------------------------------------------------------------------ comparisons and where

for _name, _sym, _fn in (
    ("gt", ">", np.greater),
    ("ge", ">=", np.greater_equal),
    ("lt", "<", np.less),
    ("le", "<=", np.less_equal),
    ("eq", "==", np.equal),
):
    _binary(
        _name,
        impl=(lambda fn: lambda a, b: fn(a, b).astype(np.float64))(_fn),
        vjp=lambda g, out, a, b: [None, None],
        derivative="no gradient (a condition)",
        doc=f"a {_sym} b elementwise: 1 where true, 0 where false (in expressions: a {_sym} b).",
        category="comparison",
        traits={"constant"},
        dtype="bool",
        samples=[Sample(s) for s in BINARY_SHAPES[:3]],
        kinks=(),
    )


def _where_vjp(g, out, c, a, b):
    return [None, c.apply("where", g, 0.0), c.apply("where", 0.0, g)]


defop(
    "where",
    dtype="same",
    value_operands=(1, 2),
    arity=3,
    shape=lambda c, a, b: broadcast(c, a, b),
    impl=lambda c, a, b: np.where(c != 0, a, b),
    vjp=_where_vjp,
    derivative="da = where(c, g, 0), db = where(c, 0, g); no gradient to c",
    doc="where(cond, a, b): a where cond is true (nonzero), else b.",
    samples=[
        Sample(((2, 3), (2, 3), (2, 3))),
        Sample(((2, 3), (3,), ())),
        Sample(((3, 1), (1, 4), (3, 4))),
    ],
)


def _cmp_vjp(first):
    def vjp(g, out, a, b):
        # Ties send the gradient to a (documented subgradient convention).
        ca = a.apply("ge" if first else "le", b)
        cb = a.apply("lt" if first else "gt", b)
        return [g * ca, g * cb]

    return vjp


_binary(
    "maximum",
    impl=np.maximum,
    vjp=_cmp_vjp(True),
    derivative="da = g * (a >= b), db = g * (a < b)  (ties go to a)",
    doc="Elementwise maximum.",
)
_binary(
    "minimum",
    impl=np.minimum,
    vjp=_cmp_vjp(False),
    derivative="da = g * (a <= b), db = g * (a > b)  (ties go to a)",
    doc="Elementwise minimum.",
)
_binary(
    "pow",
    traits={"analytic"},
    impl=np.power,
    vjp=lambda g, out, a, b: [g * (b * a.apply("pow", b - 1.0)), g * (out * a.apply("log"))],
    derivative="da = g * b * a ** (b - 1), db = g * y * log(a)",
    doc="a ** b elementwise for a tensor exponent (a > 0).",
    domain=(0.5, 2.0),
)

# ------------------------------------------------------------------ slicing, padding, joining


def resolve_index(shape, index):
    """Normalize a static index against ``shape``: [(kind, start, stop)] per axis."""
    if len(index) > len(shape):
        raise ShapeError(f"too many indices ({len(index)}) for {len(shape)} dimensions")
    out = []
    for d, item in zip(shape, index):
        if not isinstance(d, int):  # a symbolic dim: only a full slice
            if item != (None, None):
                raise ShapeError(f"only ':' can index the symbolic dim '{d}'")
            out.append(("slice", 0, d))
            continue
        if isinstance(item, int):
            i = item + d if item < 0 else item
            if not 0 <= i < d:
                raise ShapeError(f"index {item} is out of range for size {d}")
            out.append(("int", i, i + 1))
        else:
            start, stop = item
            start = 0 if start is None else (start + d if start < 0 else start)
            stop = d if stop is None else (stop + d if stop < 0 else stop)
            start, stop = max(0, min(start, d)), max(0, min(stop, d))
            if stop <= start:
                raise ShapeError(f"empty slice {item[0]}:{item[1]} of size {d}")
            out.append(("slice", start, stop))
    for d in shape[len(index):]:
        out.append(("slice", 0, d))
    return out


def _extent(start, stop):
    return stop if not isinstance(stop, int) else stop - start


def _slice_shape(x, index):
    return tuple(_extent(start, stop) for kind, start, stop in resolve_index(x, index) if kind == "slice")


def _slice_vjp(g, out, x, index):
    r = resolve_index(x.shape, index)
    kept = tuple(1 if kind == "int" else _extent(start, stop) for kind, start, stop in r)
    widths = tuple((start, 0 if d == stop else d - stop) for (kind, start, stop), d in zip(r, x.shape))
    return [g.reshape(kept).apply("pad", widths=widths)]


defop(
    "slice",
    traits={"linear", "analytic"},
    dtype="same",
    arity=1,
    shape=_slice_shape,
    impl=lambda x, index: x[tuple(i if isinstance(i, int) else slice(*i) for i in index)],
    vjp=_slice_vjp,
    attrs=[Attr("index", "index", doc="per axis: an int, or [start, stop] (null = open)")],
    derivative="dx = g placed back at the slice, zeros elsewhere (np.pad)",
    doc="Static slicing x[i, a:b] (step 1); in expressions: x[0:2, 1].",
    category="shape",
    samples=[
        Sample(((4, 3),), {"index": ((1, 3),)}),
        Sample(((4, 3),), {"index": (2,)}),
        Sample(((2, 4, 3),), {"index": ((None, None), -1, (0, 2))}),
    ],
)


def _pad_shape(x, widths):
    if len(widths) != len(x):
        raise ShapeError(f"pad widths for {len(widths)} axes, value has {len(x)}")
    out = []
    for d, (a, b) in zip(x, widths):
        if not isinstance(d, int) and (a, b) != (0, 0):
            raise ShapeError(f"cannot pad the symbolic dim '{d}'")
        out.append(d if (a, b) == (0, 0) else d + a + b)
    return tuple(out)


defop(
    "pad",
    traits={"linear", "analytic"},
    dtype="same",
    arity=1,
    shape=_pad_shape,
    impl=lambda x, widths: np.pad(x, widths),
    vjp=lambda g, out, x, widths: [
        g.apply("slice", index=tuple((a, a + d) for d, (a, b) in zip(x.shape, widths)))
    ],
    attrs=[Attr("widths", "pads", doc="per axis [before, after]")],
    derivative="dx = g[the unpadded part]",
    doc="Pad with zeros.",
    category="shape",
    public=False,
    samples=[Sample(((2, 3),), {"widths": ((1, 0), (0, 2))})],
)


def _join_axis(shapes, axis, new):
    nd = len(shapes[0]) + (1 if new else 0)
    if not -nd <= axis < nd:
        raise ShapeError(f"axis {axis} is out of range for {nd} dimensions")
    return axis % nd


def _concat_shape(*xs, axis):
    if any(len(x) != len(xs[0]) for x in xs):
        raise ShapeError("concat needs operands of the same rank: " + ", ".join(str(list(x)) for x in xs))
    ax = _join_axis(xs, axis, False)
    for x in xs:
        if x[:ax] + x[ax + 1:] != xs[0][:ax] + xs[0][ax + 1:]:
            raise ShapeError("shapes " + ", ".join(str(list(x)) for x in xs) + f" differ off axis {axis}")
    sym = [x[ax] for x in xs if not isinstance(x[ax], int)]
    if sym:  # sizes not known until run time cannot be added up
        raise ShapeError(f"cannot concatenate along symbolic dim '{sym[0]}' (axis {axis})")
    return xs[0][:ax] + (sum(x[ax] for x in xs),) + xs[0][ax + 1:]


def _concat_vjp(g, out, *xs, axis):
    ax = _join_axis([x.shape for x in xs], axis, False)
    cts, at = [], 0
    for x in xs:
        n = x.shape[ax]
        cts.append(g.apply("slice", index=((None, None),) * ax + ((at, at + n),)))
        at += n
    return cts


defop(
    "concat",
    traits={"linear", "analytic"},
    dtype="same",
    arity=None,
    shape=_concat_shape,
    impl=lambda *xs, axis: np.concatenate(xs, axis=axis),
    vjp=_concat_vjp,
    attrs=[Attr("axis", "int", 0)],
    derivative="dx_i = the slice of g that x_i filled",
    doc="Join arrays along an existing axis.",
    category="shape",
    samples=[Sample(((2, 3), (1, 3))), Sample(((2, 3), (2, 1), (2, 2)), {"axis": 1}), Sample(((3,),))],
)


def _stack_shape(*xs, axis):
    if any(x != xs[0] for x in xs):
        raise ShapeError("stack needs operands of one shape: " + ", ".join(str(list(x)) for x in xs))
    ax = _join_axis(xs, axis, True)
    return xs[0][:ax] + (len(xs),) + xs[0][ax:]


def _stack_vjp(g, out, *xs, axis):
    ax = _join_axis([x.shape for x in xs], axis, True)
    return [g.apply("slice", index=((None, None),) * ax + (i,)) for i in range(len(xs))]


defop(
    "stack",
    traits={"linear", "analytic"},
    dtype="same",
    arity=None,
    shape=_stack_shape,
    impl=lambda *xs, axis: np.stack(xs, axis=axis),
    vjp=_stack_vjp,
    attrs=[Attr("axis", "int", 0)],
    derivative="dx_i = g[..., i, ...] along the new axis",
    doc="Join arrays of one shape along a new axis.",
    category="shape",
    samples=[Sample(((2, 3), (2, 3))), Sample(((3,), (3,), (3,)), {"axis": 1})],
)

# ------------------------------------------------------------------ max / min reductions


def _extreme_vjp(g, out, x, axis, keepdims):
    # Ties share the gradient equally (like JAX and PyTorch's amax).
    axes = norm_axes(axis, x.ndim)
    kept = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
    m = out.reshape(kept)
    mask = x.apply("eq", m)
    share = mask / mask.apply("sum", axis=axis, keepdims=True)
    return [g.reshape(kept) * share]


def _extreme_jvp(ts, out, x, axis, keepdims):
    axes = norm_axes(axis, x.ndim)
    kept = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
    mask = x.apply("eq", out.reshape(kept))
    share = mask / mask.apply("sum", axis=axis, keepdims=True)
    return (ts[0] * share).apply("sum", axis=axis, keepdims=keepdims)


for _name, _fn in (("max", np.max), ("min", np.min)):
    defop(
        _name,
        arity=1,
        shape=_reduce_shape,
        impl=(lambda fn: lambda x, axis, keepdims: fn(x, axis=axis, keepdims=keepdims))(_fn),
        vjp=_extreme_vjp,
        jvp=_extreme_jvp,
        tangent="t = mean of tx over the positions of the extreme (ties share)",
        attrs=REDUCE_ATTRS,
        derivative="dx = g where x is the extreme (shared equally among ties), else 0",
        doc=f"{_name.capitalize()} over axes.",
        category="reduction",
        samples=REDUCE_SAMPLES,
    )


# ------------------------------------------------------------------ symbolic-shape helpers

defop(
    "broadcast_like",
    traits={"linear", "analytic"},
    dtype="same",
    value_operands=(0,),
    arity=2,
    shape=lambda x, like: _broadcast_to_shape(x, like),
    impl=lambda x, like: np.broadcast_to(x, np.shape(like)).copy(),
    vjp=lambda g, out, x, like: [g.sum_to(x.shape), None],
    derivative="dx = sum_to(g, x.shape)",
    doc="Broadcast x to the (possibly symbolic) shape of another value.",
    category="shape",
    public=False,
    samples=[Sample(((3,), (2, 3))), Sample(((2, 1), (2, 4)))],
)


defop(
    "count",
    traits={"constant"},
    dtype="i64",
    value_operands=(),
    arity=1,
    shape=lambda x, axis: (),
    impl=lambda x, axis: np.float64(math.prod(np.shape(x)[a] for a in axis)),
    vjp=lambda g, out, x, axis: [None],
    attrs=[Attr("axis", "axis")],
    derivative="no gradient (a size)",
    doc="The number of elements along axes, read at run time (symbolic dims).",
    category="shape",
    public=False,
    samples=[Sample(((2, 3),), {"axis": (0,)}), Sample(((2, 3, 4),), {"axis": (0, 2)})],
)
defop(
    "zeros_like",
    traits={"constant"},
    dtype="same",
    arity=1,
    shape=same,
    impl=np.zeros_like,
    vjp=lambda g, out, x: [None],
    derivative="no gradient",
    doc="Zeros of x's (possibly symbolic) shape.",
    category="shape",
    public=False,
    samples=unary_samples(),
)


def _cast_dtype(dtypes, attrs):
    return attrs["dtype"]


defop(
    "cast",
    traits={"constant"},
    arity=1,
    shape=same,
    impl=lambda x, dtype: np.asarray(x, dtype=np.float64),
    vjp=lambda g, out, x, dtype: [None],
    dtype=_cast_dtype,
    attrs=[Attr("dtype", "choice", "f64", "the float type", ("f64", "f32"))],
    derivative="no gradient (casts only masks and labels, which have none)",
    doc="A bool or integer value as floats: inserted where an op that computes in "
    "floats gets no float operand (mask + mask is a count, not a logical or).",
    category="shape",
    public=False,
    samples=[Sample(((2, 3),), {}, (0.0, 3.0), integer=(0,))],
)
