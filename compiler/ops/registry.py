"""The op registry: each op is declared once, with everything about it.

An :class:`OpDef` holds, side by side:

* ``shape``: the static shape rule ``shape(*in_shapes, **attrs) -> shape``;
* ``impl``: a NumPy implementation used by the reference interpreter;
* ``dtype``: the result's element type: ``"float"`` (the compile dtype; an op
  whose value operands are all bool/int gets one cast first, so ``mask +
  mask`` is a sum, not a logical or), ``"bool"`` (comparisons), ``"i64"``, or
  ``"same"`` (shape ops keep their operand's type);
* ``vjp``: the derivative rule ``vjp(g, out, *args, **attrs) -> [ct, ...]``,
  written with :class:`V` handles, so that it builds ordinary IR nodes (and the
  adjoint graph can be optimized, printed and differentiated again). A ``None``
  cotangent means "no gradient flows to this operand". Cotangents may have any
  shape that broadcasts with the operand's: the reverse-mode pass reduces
  broadcast axes (``sum_to``) itself;
* ``samples``: inputs for the registry-driven tests (shapes, attrs, domain);
* ``derivative``: the rule in words, for ``bpc ops`` and the docs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..errors import ShapeError, SpecError

REQUIRED = object()

# Element types of IR values. FLOAT is a placeholder in dtype rules for "the
# compile dtype" (f64 or f32); bool comes from comparisons, i64 from labels.
FLOAT, BOOL, INT = "float", "bool", "i64"
DTYPES = ("f64", "f32", "bool", "i64")


def is_float(dtype: str) -> bool:
    return dtype in ("f64", "f32")


def promote(dtypes: list[str]) -> str:
    """NumPy's promotion among our dtypes: any float wins, then int, then bool."""
    for d in ("f64", "f32", "i64"):
        if d in dtypes:
            return d
    return BOOL


def pyval(v: Any) -> str:
    """A Python literal for an attribute value (ints, floats, tuples)."""
    if isinstance(v, tuple):
        inner = ", ".join(pyval(x) for x in v)
        return f"({inner},)" if len(v) == 1 else f"({inner})"
    return repr(v)


@dataclass(frozen=True)
class Attr:
    name: str
    kind: str  # "float", "int", "bool", "axis", "shape", "perm", "choice", "index"
    default: Any = REQUIRED
    doc: str = ""
    choices: tuple = ()
    min: float | None = None  # range of "int" and "float" attributes (inclusive)
    max: float | None = None


def _check_index(v: Any, bad) -> tuple:
    """A static index: per axis an int, or [start, stop] (null for open ends)."""
    if not isinstance(v, (list, tuple)) or not v:
        raise bad("a list with one int or [start, stop] per axis")
    out = []
    for item in v:
        if isinstance(item, (int, np.integer)) and not isinstance(item, bool):
            out.append(int(item))
        elif (
            isinstance(item, (list, tuple))
            and len(item) == 2
            and all(x is None or (isinstance(x, int) and not isinstance(x, bool)) for x in item)
        ):
            out.append((item[0], item[1]))
        else:
            raise bad("a list with one int or [start, stop] per axis")
    return tuple(out)


@dataclass(frozen=True)
class Sample:
    """One test case for an op: operand shapes, attrs, and the value domain."""

    shapes: tuple[tuple[int, ...], ...]
    attrs: dict = field(default_factory=dict)
    # One (low, high) for all operands, or one per operand.
    domain: tuple | None = None
    integer: tuple[int, ...] = ()  # operands that hold integer labels (no gradient)


@dataclass(frozen=True)
class OpDef:
    name: str
    arity: int | None
    shape: Callable[..., tuple[int, ...]]
    impl: Callable[..., np.ndarray]
    vjp: Callable[..., list] | None
    attrs: tuple[Attr, ...] = ()
    samples: tuple[Sample, ...] = ()
    domain: tuple[float, float] = (-2.0, 2.0)
    kinks: tuple[float, ...] = ()  # points where the derivative jumps
    derivative: str = ""
    # Forward mode: ``jvp(tangents, out, *args, **attrs) -> tangent of out``
    # (``tangents[i]`` is None where operand i has none). Most ops need none
    # of their own: see compiler.autodiff.tangent_rule for the derived ones.
    jvp: Callable[..., Any] | None = None
    tangent: str = ""  # the forward-mode rule in words, where ``jvp`` is given
    doc: str = ""
    public: bool = True  # usable from specs (internal ops serve rules only)
    category: str = "elementwise"  # the group it is listed under in the docs
    # What passes and transforms ask of an op (see TRAITS); declared traits
    # plus those that follow from the category and the rules (defop).
    traits: frozenset[str] = frozenset()
    # "float", "bool", "i64", "same" (see the module docstring), or a function
    # (operand dtypes, attrs) -> dtype.
    dtype: str | Callable[..., str] = FLOAT
    # Operands whose dtype decides the result (where's condition does not).
    value_operands: tuple[int, ...] | None = None
    # A composite op is defined by a decomposition into other ops (built with V
    # handles); it needs no emit and no vjp of its own. ``impl`` stays as an
    # independent reference for the tests.
    decompose: Callable[..., "V"] | None = None
    min_arity: int = 1  # for variadic ops (arity None)

    def has(self, trait: str) -> bool:
        return trait in self.traits

    def normalize_attrs(self, attrs: dict, where: str | None) -> dict:
        out = {}
        known = {a.name: a for a in self.attrs}
        for k in attrs:
            if k not in known:
                expected = ", ".join(known) or "none"
                raise SpecError(
                    f"op '{self.name}' has no attribute '{k}' (attributes: {expected})",
                    where,
                )
        for a in self.attrs:
            if a.name in attrs:
                out[a.name] = _check_attr(self.name, a, attrs[a.name], where)
            elif a.default is REQUIRED:
                raise SpecError(f"op '{self.name}' needs attribute '{a.name}'", where)
            else:
                out[a.name] = a.default
        return out

    def infer_shape(self, shapes: list, attrs: dict, where: str | None):
        if self.arity is not None and len(shapes) != self.arity:
            raise SpecError(
                f"op '{self.name}' takes {self.arity} input"
                f"{'s' if self.arity != 1 else ''}, got {len(shapes)}",
                where,
            )
        if self.arity is None and len(shapes) < self.min_arity:
            raise SpecError(
                f"op '{self.name}' takes at least {self.min_arity} inputs, got {len(shapes)}", where
            )
        try:
            return tuple(self.shape(*shapes, **attrs))
        except ShapeError as e:
            raise ShapeError(f"{self.name}: {e.message}", where) from None

    def value_args(self, n: int) -> tuple[int, ...]:
        return tuple(range(n)) if self.value_operands is None else self.value_operands

    def infer_dtype(self, dtypes: list[str], attrs: dict, float_dtype: str) -> str:
        """The result dtype, given operand dtypes that already obey ``needs_cast``."""
        if callable(self.dtype):
            return self.dtype(dtypes, attrs)
        if self.dtype in (BOOL, INT):
            return self.dtype
        if self.dtype == "same":
            vals = [dtypes[i] for i in self.value_args(len(dtypes))]
            return promote(vals) if vals else float_dtype
        return float_dtype

    def needs_cast(self, dtypes: list[str]) -> int | None:
        """The operand to cast to float so that a float op computes in floats:
        the first value operand when none of them is a float, else None."""
        if self.dtype != FLOAT:
            return None
        vals = self.value_args(len(dtypes))
        if not vals or any(is_float(dtypes[i]) for i in vals):
            return None
        return vals[0]


def _check_attr(op: str, a: Attr, v: Any, where: str | None) -> Any:
    def bad(expected: str):
        return SpecError(f"attribute '{a.name}' of op '{op}': expected {expected}", where)

    def is_int(x: Any) -> bool:
        return isinstance(x, (int, np.integer)) and not isinstance(x, bool)

    def in_range(x: Any, what: str) -> Any:
        if a.min is not None and x < a.min:
            raise bad(f"{what} >= {a.min:g}")
        if a.max is not None and x > a.max:
            raise bad(f"{what} <= {a.max:g}")
        return x

    if a.kind == "float":
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise bad("a number")
        if (isinstance(v, int) and abs(v) > 1e308) or not math.isfinite(v):
            raise bad("a finite number")
        return in_range(float(v), "a number")
    if a.kind == "int":
        if not is_int(v):
            raise bad("an integer")
        return in_range(int(v), "an integer")
    if a.kind == "bool":
        if not isinstance(v, bool):
            raise bad("true or false")
        return v
    if a.kind == "axis":
        if v is None:
            return None
        if is_int(v):
            return int(v)
        if isinstance(v, (list, tuple)) and all(is_int(x) for x in v):
            return tuple(int(x) for x in v)
        raise bad("null, an integer or a list of integers")
    if a.kind == "choice":
        if v not in a.choices:
            raise bad(" or ".join(repr(c) for c in a.choices))
        return v
    if a.kind == "index":
        return _check_index(v, bad)
    if a.kind == "pads":
        if isinstance(v, (list, tuple)) and all(
            isinstance(p, (list, tuple)) and len(p) == 2 and all(is_int(x) and x >= 0 for x in p)
            for p in v
        ):
            return tuple((int(p[0]), int(p[1])) for p in v)
        raise bad("a list of [before, after] pairs of non-negative ints")
    if a.kind == "dims":  # a value's declared shape: sizes or symbolic names
        if isinstance(v, (list, tuple)) and all(
            (is_int(x) and x >= 1) or (isinstance(x, str) and x.isidentifier()) for x in v
        ):
            return tuple(int(x) if is_int(x) else x for x in v)
        raise bad("a list of positive sizes or dim names")
    if a.kind in ("shape", "perm"):
        if v is None and a.kind == "perm":
            return None
        if isinstance(v, (list, tuple)) and all(is_int(x) for x in v):
            if a.kind == "shape" and any(x < 1 for x in v):
                raise bad("positive sizes")
            return tuple(int(x) for x in v)
        raise bad("a list of integers")
    raise AssertionError(a.kind)


# ------------------------------------------------------------------ shapes


def is_static(shape: tuple) -> bool:
    """True when every dimension is a number (no symbolic dims such as 'batch')."""
    return all(isinstance(d, int) for d in shape)


def shape_text(shape: tuple) -> str:
    """A shape as a Python literal for reshape: one symbolic dim becomes -1."""
    sym = [d for d in shape if not isinstance(d, int)]
    if len(sym) > 1:
        raise ShapeError(f"cannot reshape to {list(shape)}: more than one symbolic dimension")
    return pyval(tuple(-1 if not isinstance(d, int) else d for d in shape))


def static_size(shape: tuple) -> int | None:
    return math.prod(shape) if is_static(shape) else None


def broadcast(*shapes: tuple) -> tuple:
    """NumPy broadcasting of shapes (ShapeError when they do not fit).

    A symbolic dim (a name such as 'batch') matches itself and 1 only.
    """
    ndim = max((len(s) for s in shapes), default=0)
    out = []
    for i in range(ndim):
        dims = {s[len(s) - ndim + i] for s in shapes if len(s) - ndim + i >= 0}
        dims.discard(1)
        if len(dims) > 1:
            raise ShapeError(
                "shapes " + " and ".join(str(list(s)) for s in shapes)
                + " are not broadcastable"
            )
        out.append(dims.pop() if dims else 1)
    return tuple(out)


def norm_axes(axis: Any, ndim: int) -> tuple[int, ...]:
    """Normalize an ``axis`` attribute against ``ndim`` (None -> all axes)."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    out = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise ShapeError(f"axis {a} is out of range for {ndim} dimensions")
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ShapeError(f"repeated axis in {list(axes)}")
    return tuple(sorted(out))


def sum_to_axes(src: tuple[int, ...], dst: tuple[int, ...]) -> tuple[tuple, tuple]:
    """Axes to reduce so that ``src`` becomes ``dst``: (leading, kept)."""
    lead = len(src) - len(dst)
    leading = tuple(range(lead))
    kept = tuple(lead + i for i, d in enumerate(dst) if d == 1 and src[lead + i] != 1)
    return leading, kept


# ------------------------------------------------------------------ handles


class V:
    """A value handle used in derivative rules; arithmetic builds IR nodes."""

    __slots__ = ("graph", "name")

    def __init__(self, graph: Any, name: str):
        self.graph = graph
        self.name = name

    @property
    def shape(self) -> tuple[int, ...]:
        return self.graph.shape(self.name)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def apply(self, op: str, *others: Any, **attrs: Any) -> "V":
        args = [self] + [lift(self.graph, o) for o in others]
        return V(self.graph, self.graph.add(op, [a.name for a in args], attrs))

    def _r(self, op: str, other: Any) -> "V":
        return lift(self.graph, other).apply(op, self)

    def __add__(self, o): return self.apply("add", o)
    def __radd__(self, o): return self._r("add", o)
    def __sub__(self, o): return self.apply("sub", o)
    def __rsub__(self, o): return self._r("sub", o)
    def __mul__(self, o): return self.apply("mul", o)
    def __rmul__(self, o): return self._r("mul", o)
    def __truediv__(self, o): return self.apply("div", o)
    def __rtruediv__(self, o): return self._r("div", o)
    def __matmul__(self, o): return self.apply("matmul", o)
    def __rmatmul__(self, o): return self._r("matmul", o)
    def __neg__(self): return self.apply("neg")

    def __pow__(self, p: float):
        return self.apply("pow_const", exponent=float(p))

    @property
    def T(self) -> "V":
        return self.apply("transpose", axes=None)

    def reshape(self, shape: tuple[int, ...]) -> "V":
        return self if tuple(shape) == self.shape else self.apply("reshape", shape=shape)

    def broadcast_to(self, shape: tuple, like: "V | None" = None) -> "V":
        """Broadcast to ``shape``; a symbolic shape needs a value ``like`` of that shape."""
        if tuple(shape) == self.shape:
            return self
        if is_static(shape):
            return self.apply("broadcast_to", shape=shape)
        if like is None or like.shape != tuple(shape):
            raise ShapeError(f"cannot broadcast to symbolic shape {list(shape)}")
        return self.apply("broadcast_like", like)

    def sum_to(self, shape: tuple[int, ...]) -> "V":
        return self if tuple(shape) == self.shape else self.apply("sum_to", shape=shape)


def lift(graph: Any, x: Any) -> V:
    if isinstance(x, V):
        return x
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return V(graph, graph.add("const", [], {"value": float(x), "shape": ()}))
    raise TypeError(f"cannot use {x!r} in a derivative rule")


# ------------------------------------------------------------------ registry

_OPS: dict[str, OpDef] = {}


# Traits: what passes and transforms may assume about an op.
ELEMENTWISE = "elementwise"  # result[i] depends on operand[i] only (broadcasting)
SOURCE = "source"  # no operands: a function argument or a constant
LINEAR = "linear"  # linear in its float operands jointly (no products of them)
CONSTANT = "constant"  # piecewise constant: derivative zero almost everywhere
DIFFERENTIABLE = "differentiable"  # has a derivative rule that can be nonzero
REDUCTION = "reduction"  # combines elements along axes
# analytic: a power series around every real point, real on reals, so the
# complex step f(x + ih).imag / h is its derivative (sources count too)
ANALYTIC = "analytic"
TRAITS = frozenset({ELEMENTWISE, SOURCE, LINEAR, CONSTANT, DIFFERENTIABLE, REDUCTION, ANALYTIC})
_CATEGORY_TRAITS = {
    "elementwise": {ELEMENTWISE},
    "comparison": {ELEMENTWISE},
    "source": {SOURCE, ANALYTIC},
    "reduction": {REDUCTION},
}


def defop(name: str, **kw: Any) -> OpDef:
    """Declare an op (once). Returns its definition."""
    if name in _OPS:
        raise AssertionError(f"op {name} declared twice")
    traits = set(kw.get("traits", ())) | _CATEGORY_TRAITS.get(kw.get("category", "elementwise"), set())
    if (kw.get("vjp") is not None or kw.get("decompose") is not None) and CONSTANT not in traits:
        traits.add(DIFFERENTIABLE)
    if not traits <= TRAITS:
        raise AssertionError(f"op {name}: unknown traits {sorted(traits - TRAITS)}")
    kw["traits"] = frozenset(traits)
    kw.setdefault("attrs", ())
    kw["attrs"] = tuple(kw["attrs"])
    kw["samples"] = tuple(kw.get("samples", ()))
    op = OpDef(name=name, **kw)
    _OPS[name] = op
    return op


def get_op(name: str) -> OpDef:
    try:
        return _OPS[name]
    except KeyError:
        raise SpecError(f"unknown op '{name}'{_suggest(name)}") from None


def _suggest(name: str) -> str:
    import difflib

    close = difflib.get_close_matches(name, public_ops(), n=3)
    return f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""


def all_ops() -> dict[str, OpDef]:
    return dict(_OPS)


def public_ops() -> list[str]:
    return sorted(n for n, o in _OPS.items() if o.public)
