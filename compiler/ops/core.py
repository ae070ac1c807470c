"""Op declarations: one ``defop`` per op, everything about it in one place."""

from __future__ import annotations

import math

import numpy as np

from ..errors import ShapeError
from .registry import (
    ADD,
    ATOM,
    CMP,
    MUL,
    POW,
    UNARY,
    Attr,
    Expr,
    Sample,
    broadcast,
    call,
    defop,
    infix,
    method,
    norm_axes,
    num,
    pyval,
    sum_to_axes,
    wrap,
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
    emit=None,
    vjp=None,
    attrs=[Attr("shape", "shape")],
    category="source",
    public=False,
    doc="A value passed to the generated functions (data).",
)
defop(
    "param",
    arity=0,
    shape=lambda shape: shape,
    impl=None,
    emit=None,
    vjp=None,
    attrs=[Attr("shape", "shape")],
    category="source",
    public=False,
    doc="A trainable parameter passed to the generated functions.",
)


def _const_emit(e):
    v, shape = e.attrs["value"], e.shape
    if shape == ():
        return num(v)
    fn = {0.0: "np.zeros", 1.0: "np.ones"}.get(v)
    if fn:
        return call(fn, pyval(shape))
    return call("np.full", pyval(shape), num(v))


defop(
    "const",
    arity=0,
    shape=lambda value, shape: shape,
    impl=lambda value, shape: np.full(shape, value),
    emit=_const_emit,
    vjp=None,
    attrs=[Attr("value", "float"), Attr("shape", "shape", ())],
    category="source",
    public=False,
    doc="A constant filled with one value (a Python float when its shape is []).",
)

# ------------------------------------------------------------------ unary


def _unary(name, impl, emit, vjp, derivative, doc, domain=(-2.0, 2.0), **kw):
    defop(
        name,
        arity=1,
        shape=same,
        impl=impl,
        emit=emit,
        vjp=vjp,
        derivative=derivative,
        doc=doc,
        domain=domain,
        samples=kw.pop("samples", unary_samples()),
        **kw,
    )


_unary(
    "neg",
    impl=np.negative,
    emit=lambda e: Expr(f"-{wrap(e[0], POW)}", UNARY),
    vjp=lambda g, out, x: [-g],
    derivative="dx = -g",
    doc="Negation, -x.",
)
_unary(
    "exp",
    impl=np.exp,
    emit=lambda e: call("np.exp", e[0]),
    vjp=lambda g, out, x: [g * out],
    derivative="dx = g * y  (reuses y = exp(x))",
    doc="Exponential.",
)
_unary(
    "log",
    impl=np.log,
    emit=lambda e: call("np.log", e[0]),
    vjp=lambda g, out, x: [g / x],
    derivative="dx = g / x",
    doc="Natural logarithm (x > 0).",
    domain=(0.3, 3.0),
)
_unary(
    "square",
    impl=np.square,
    emit=lambda e: Expr(f"{wrap(e[0], POW + 1)} ** 2", POW),
    vjp=lambda g, out, x: [g * (2.0 * x)],
    derivative="dx = g * 2 * x",
    doc="x squared.",
)


def _pow_const_emit(e):
    p = e.attrs["exponent"]
    ptext = str(int(p)) if float(p).is_integer() and abs(p) < 1e6 else repr(p)
    pe = Expr(ptext, UNARY if p < 0 else ATOM)
    return Expr(f"{wrap(e[0], POW + 1)} ** {wrap(pe, UNARY)}", POW)


_unary(
    "pow_const",
    impl=lambda x, exponent: np.power(x, exponent),
    emit=_pow_const_emit,
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
    impl=_sigmoid_impl,
    # exp(-log(1 + exp(-x))), with logaddexp: no overflow, exact in both tails.
    emit=lambda e: call("np.exp", Expr(f"-{call('np.logaddexp', '0.0', Expr(f'-{wrap(e[0], POW)}', UNARY)).text}", UNARY)),
    vjp=lambda g, out, x: [g * (out * (1.0 - out))],
    derivative="dx = g * y * (1 - y)  (reuses y = sigmoid(x))",
    doc="Logistic sigmoid 1 / (1 + exp(-x)), computed without overflow.",
    domain=(-4.0, 4.0),
)
_unary(
    "tanh",
    impl=np.tanh,
    emit=lambda e: call("np.tanh", e[0]),
    vjp=lambda g, out, x: [g * (1.0 - out * out)],
    derivative="dx = g * (1 - y**2)  (reuses y = tanh(x))",
    doc="Hyperbolic tangent.",
)
_unary(
    "relu",
    impl=lambda x: np.where(x > 0, x, 0.0),
    emit=lambda e: call("np.maximum", e[0], "0.0"),
    vjp=lambda g, out, x: [g * out.apply("step")],
    derivative="dx = g * (y > 0)  (subgradient 0 at x = 0)",
    doc="Rectified linear unit max(x, 0).",
    kinks=(0.0,),
)
_unary(
    "step",
    impl=lambda x: (np.asarray(x) > 0).astype(np.float64),
    emit=lambda e: Expr(f"{wrap(e[0], CMP + 1)} > 0", CMP),
    vjp=lambda g, out, x: [None],
    derivative="no gradient (piecewise constant)",
    doc="1 where x > 0, else 0: the derivative of relu.",
    kinks=(0.0,),
    public=False,
)

# ------------------------------------------------------------------ binary


def _binary(name, impl, emit, vjp, derivative, doc, domain=(-2.0, 2.0), **kw):
    defop(
        name,
        arity=2,
        shape=lambda a, b: broadcast(a, b),
        impl=impl,
        emit=emit,
        vjp=vjp,
        derivative=derivative,
        doc=doc,
        domain=domain,
        samples=kw.pop("samples", binary_samples()),
        **kw,
    )


_binary(
    "add",
    impl=np.add,
    emit=lambda e: infix(e[0], "+", e[1], ADD),
    vjp=lambda g, out, a, b: [g, g],
    derivative="da = g, db = g  (summed over broadcast axes)",
    doc="a + b with NumPy broadcasting.",
)
_binary(
    "sub",
    impl=np.subtract,
    emit=lambda e: infix(e[0], "-", e[1], ADD),
    vjp=lambda g, out, a, b: [g, -g],
    derivative="da = g, db = -g",
    doc="a - b with NumPy broadcasting.",
)
_binary(
    "mul",
    impl=np.multiply,
    emit=lambda e: infix(e[0], "*", e[1], MUL),
    vjp=lambda g, out, a, b: [g * b, g * a],
    derivative="da = g * b, db = g * a",
    doc="a * b elementwise with NumPy broadcasting.",
)
_binary(
    "div",
    impl=np.divide,
    emit=lambda e: infix(e[0], "/", e[1], MUL),
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


defop(
    "matmul",
    arity=2,
    shape=_matmul_shape,
    impl=np.matmul,
    emit=lambda e: infix(e[0], "@", e[1], MUL),
    vjp=_matmul_vjp,
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


def _transpose_emit(e):
    axes = e.attrs["axes"]
    if axes is None or (len(axes) == 2 and axes == (1, 0)):
        return method(e[0], ".T")
    return call("np.transpose", e[0], pyval(axes))


def _transpose_vjp(g, out, x, axes):
    if axes is None:
        return [g.T]
    inv = tuple(sorted(range(len(axes)), key=lambda i: axes[i]))
    return [g.apply("transpose", axes=inv)]


defop(
    "transpose",
    arity=1,
    shape=_transpose_shape,
    impl=lambda x, axes: np.transpose(x, axes),
    emit=_transpose_emit,
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
    if math.prod(x) != math.prod(shape):
        raise ShapeError(f"cannot reshape {list(x)} into {list(shape)}")
    return shape


defop(
    "reshape",
    arity=1,
    shape=_reshape_shape,
    impl=lambda x, shape: np.reshape(x, shape),
    emit=lambda e: (
        method(e[0], f".reshape({pyval(e.attrs['shape'])})")
        if e[0].shape
        else call("np.reshape", e[0], pyval(e.attrs["shape"]))
    ),
    vjp=lambda g, out, x, shape: [g.reshape(x.shape)],
    attrs=[Attr("shape", "shape")],
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
    arity=1,
    shape=_broadcast_to_shape,
    impl=lambda x, shape: np.broadcast_to(x, shape).copy(),
    emit=lambda e: call("np.broadcast_to", e[0], pyval(e.attrs["shape"])),
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
    return np.sum(x, axis=lead + kept, keepdims=True).reshape(shape)


def _sum_to_emit(e):
    src, dst = e[0].shape, e.shape
    lead, kept = sum_to_axes(src, dst)
    if math.prod(src[i] for i in lead + kept) == 1:
        return method(e[0], f".reshape({pyval(dst)})")  # only size-1 axes
    if not kept:
        return call("np.sum", e[0], axis=pyval(lead) if len(lead) > 1 else lead[0])
    if not lead:
        return call("np.sum", e[0], axis=pyval(kept) if len(kept) > 1 else kept[0], keepdims="True")
    s = call("np.sum", e[0], axis=pyval(lead + kept), keepdims="True")
    return method(s, f".reshape({pyval(dst)})")


defop(
    "sum_to",
    arity=1,
    shape=_sum_to_shape,
    impl=_sum_to_impl,
    emit=_sum_to_emit,
    vjp=lambda g, out, x, shape: [g.broadcast_to(x.shape)],
    attrs=[Attr("shape", "shape")],
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


def _reduce_emit(fn):
    def emit(e):
        axis, keepdims = e.attrs["axis"], e.attrs["keepdims"]
        kw = {}
        if axis is not None:
            kw["axis"] = pyval(axis)
        if keepdims:
            kw["keepdims"] = "True"
        return call(fn, e[0], **kw)

    return emit


def _expand_back(g, x, axis, keepdims):
    """Give a reduction's cotangent back the reduced axes (as size 1)."""
    axes = norm_axes(axis, x.ndim)
    kept = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
    return g.reshape(kept)


def _sum_vjp(g, out, x, axis, keepdims):
    return [_expand_back(g, x, axis, keepdims).broadcast_to(x.shape)]


def _mean_vjp(g, out, x, axis, keepdims):
    n = math.prod(x.shape[i] for i in norm_axes(axis, x.ndim))
    return [(_expand_back(g, x, axis, keepdims) * (1.0 / n)).broadcast_to(x.shape)]


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
    arity=1,
    shape=_reduce_shape,
    impl=lambda x, axis, keepdims: np.sum(x, axis=axis, keepdims=keepdims),
    emit=_reduce_emit("np.sum"),
    vjp=_sum_vjp,
    attrs=REDUCE_ATTRS,
    derivative="dx = broadcast g back over the summed axes",
    doc="Sum over axes.",
    category="reduction",
    samples=REDUCE_SAMPLES,
)
defop(
    "mean",
    arity=1,
    shape=_reduce_shape,
    impl=lambda x, axis, keepdims: np.mean(x, axis=axis, keepdims=keepdims),
    emit=_reduce_emit("np.mean"),
    vjp=_mean_vjp,
    attrs=REDUCE_ATTRS,
    derivative="dx = g / n broadcast back over the n averaged elements",
    doc="Mean over axes.",
    category="reduction",
    samples=REDUCE_SAMPLES,
)

defop(
    "identity",
    arity=1,
    shape=same,
    impl=lambda x: np.array(x, copy=True),
    emit=lambda e: e[0],
    vjp=lambda g, out, x: [g],
    derivative="dx = g",
    doc="The same value under another name (an alias: y = x).",
    samples=unary_samples(),
    public=False,
)
