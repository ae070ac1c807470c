"""Random networks from the op registry, and the differential check they go through.

Shared by ``tests/test_differential.py`` (driven by hypothesis) and
``benchmarks/fuzz_differential.py`` (driven by a plain ``random.Random``).

Generation
----------
``generate(rng)`` builds one random spec (a JSON-ready dict) from ``rng``, any
``random.Random``; hypothesis' ``st.randoms()`` hands out one whose draws it
controls, so the same generator serves both. Which ops exist, and how each is
called, comes from the op registry (``bpc.compiler.ops.registry``):

* the builder of an op follows from its registry entry: category
  ``comparison``, ``linalg``, variadic (``arity`` None), ops with integer
  label operands (``Sample.integer``), else by arity (unary, binary, ternary);
* attribute values are drawn per ``Attr.kind`` (``axis``, ``shape``, ``dims``,
  ``index``, ``perm``, ``choice``, ...) or taken from the op's ``samples``
  (required ones), and always validated with the op's own shape rule;
* ``OpDef.domain`` says which operands must stay above a bound (log, sqrt,
  div's denominator, ...); such operands are wrapped (``exp(v)``,
  ``v ** 2 + 0.8``, ``sigmoid(v) + c``) when their values would leave it;
* which operands receive a gradient is asked of autodiff itself, on a one-op
  graph per op (``grad_operands``), so ``wrt`` lists only names a gradient
  reaches (fewer rejected networks).

Every value is evaluated while it is generated, with the ops' reference
``impl``: the generator knows the numbers, keeps operands in their domains and
magnitudes below ``BOUND`` (no overflow, no NaN), and never needs the compiler.

Networks mix: scalar ``[]``, size-1 ``[1]``/``[1, 1]``, broadcasting
(``[3]``, ``[2, 3]``, ``[1, 3]``, ``[2, 1]``) and matmul-compatible shapes;
literal constants (``x * 2.0``, ``maximum(x, 0.0)``, ``2 - x``); one value on
both sides (``x - x``, ``maximum(p, p)``) and exact ties built differently
(``maximum(v, v * 1.0)``); fan-out into ``+`` chains (``c = r + x + t`` with
``r``, ``t`` computed from ``x``); spec values that are integers (``[1, -2, 3]``)
or exactly 0 or 1; ``where`` with comparison conditions and comparisons used
as float masks; reductions with and without ``keepdims``, over no, one or
several axes; expression strings and the op-node form; ``wrt`` lists that
name params, inputs, intermediates and the loss itself; extra ``outputs``.

The check
---------
``check_spec(spec)`` compiles the spec at every optimization level (no passes,
each pass alone, all passes) and, for each generated module, checks:

* ``run_error``: loading it, ``init_params``, ``example_inputs``,
  ``value_and_grad`` and ``forward`` run without an exception;
  ``numpy_warning``: without a NumPy warning; ``mutated_input``: without
  changing their arguments;
* ``grad_type``: ``grads`` has exactly the ``WRT`` keys, and each gradient is a
  floating NumPy array (``np.ndarray`` or ``np.floating``, dtype kind ``f``)
  of the param/input/intermediate's shape; a bool, int or Python-float
  gradient fails. ``value_type``: the loss is floating with the loss's shape
  and ``init_params``/``example_inputs`` give float64 arrays;
* ``shared_result``: every array an entry point returns is writable and
  shares memory with no argument and no other result (``out=`` arrays
  excepted: they are written and returned); ``dead_code``: every local a
  generated function assigns is read (no unused variables);
* ``mode_mismatch`` (one more module, with forward mode, hvp and, given
  outputs, vjp): jvp's d_loss against ``<grads, t>``; hvp's gradients against
  the interpreter's; the adjoint test ``<u, J t> == <u J, t>`` between jvp's
  d_outputs and vjp for random ``t`` and ``u``;
* ``workspace_alias`` (-O3): a later call (other values of every float param
  and input) leaves earlier results unchanged, and ``out=`` arrays receive the
  gradients;
* ``f32_type``: compiled at float32 (default level and -O3), every float the
  module returns is float32;
* ``interp_mismatch``: loss (from ``value_and_grad`` and ``forward``), outputs
  and gradients equal the reference interpreter's on the module's own
  (optimized) IR, within ``1e-9 * max(1, |reference|)`` (codegen bugs);
  ``pass_mismatch``: the interpreter on the optimized IR equals the
  interpreter on the unoptimized joint IR (bugs in a pass);
* ``fd_mismatch``: every gradient matches central finite differences of the
  float64 interpreter on the forward IR (params/inputs perturbed directly,
  intermediates pinned with the interpreter's overrides);
  ``rule_mismatch``: the interpreter's own gradient (the joint IR before
  any pass) matches them too (bugs in VJP rules or autodiff, not codegen).

Finite differences: step ``h = 1e-6 * max(1, |x|)``, central differences at
``h`` and ``2h`` combined by Richardson extrapolation, ``(4 D(h) - D(2h)) / 3``
with ``D(h) = (f(x+h) - f(x-h)) / 2h``: the truncation error falls from
``h^2 f(3)/6`` to ``O(h^4)``, which matters for fast-oscillating composites
(``sin(pow(...))`` with a slope of 5,000 had a plain central difference off by
1e-5 relative; bpc was exact, by complex step). An element passes when
``|a - n| <= FD_RTOL * max(|a|, |n|) + FD_ATOL * scale`` with ``FD_RTOL = 1e-5``,
``FD_ATOL = 1e-7`` and ``scale = max(1, largest |value| in the forward pass)``
(rounding in the loss sets the noise floor of a difference quotient).
Kinks and ties cannot be checked by differences, and AD's subgradient there
need not match them even when the composite is smooth (``relu(x) - relu(-x)``
at 0). An element is skipped when (1) a perturbation of it moves an op that
sits on its kink (``kink_watchers``: a unary op at one of its registry
``kinks``, operands of ``maximum``/``minimum``/comparisons that tie and move
apart, tied extremes of ``max``/``min`` that move apart, a ``where`` condition
at 0), or (2) ``f`` is visibly not smooth around it: one-sided differences at
``h`` and ``2h`` give ``J = 2 d(h) - d(2h)`` with
``d(s) = (f(x+s) - 2 f(x) + f(x-s)) / s``, which cancels the curvature term, so
a smooth point gives ``J ~ 0`` and a kink or a flipped comparison gives
``J ~ jump``. Ties that persist under perturbation are smooth and checked:
``maximum(p, p)``, ``maximum(v, v * 1.0)``, a max over broadcast copies.
``stop_gradient`` values (also inside decompositions) are held fixed while
perturbing, as the derivative treats them.

A spec the compiler rejects with a ``BpcError`` at every level is
``rejected`` (fine); rejected at some levels only, or any other exception
while compiling, is a ``compile_error``.
"""

from __future__ import annotations

import ast
import copy
import functools
import json
import math
import random
import re
import traceback
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from bpc.compiler.errors import BpcError
from bpc.compiler.ops.registry import REQUIRED, Attr, OpDef, all_ops, public_ops

# ------------------------------------------------------------------ constants

# Leaf shapes: scalar, size-1, broadcasting partners.
SHAPES: list[tuple[int, ...]] = [(), (1,), (3,), (2, 3), (1, 3), (2, 1), (1, 1)]
# Right operands of matmul for a left operand whose last axis is k.
MATMUL_COLS = (1, 2, 3)
BOUND = 1e3  # largest |value| the generator lets a network compute
MAX_SIZE = 24  # largest number of elements of one value
LITERALS: list[float | int] = [0.0, 1.0, 2.0, 0.5, -1.0, 3, 2, 1, -0.5, 0]
FLOAT_ATTR_VALUES = [0.5, 2.0, -1.0, 3.0, 0.2, 1.5]

# Ops that spec expressions write with an operator rather than a call.
INFIX: dict[str, type[ast.operator]] = {
    "add": ast.Add,
    "sub": ast.Sub,
    "mul": ast.Mult,
    "div": ast.Div,
    "matmul": ast.MatMult,
}
COMPARE: dict[str, type[ast.cmpop]] = {
    "gt": ast.Gt,
    "ge": ast.GtE,
    "lt": ast.Lt,
    "le": ast.LtE,
    "eq": ast.Eq,
}

# Public differentiable ops the generator does not build, with the reason.
# (Empty: every public op with a vjp or a decomposition is generated.)
EXCLUDED: dict[str, str] = {}

# Finite-difference tolerances (see the module docstring).
FD_STEP = 1e-6
FD_RTOL = 1e-5
FD_ATOL = 1e-7
# Generated code vs the reference interpreter (same float64 math up to
# reassociation by the passes).
INTERP_TOL = 1e-9

OPS: dict[str, OpDef] = all_ops()


def differentiable_public_ops() -> set[str]:
    """Public ops that carry a derivative: a vjp rule or a decomposition."""
    return {n for n in public_ops() if OPS[n].vjp is not None or OPS[n].decompose is not None}


# ------------------------------------------------------------------ registry-derived facts


def _restricted_low(op: OpDef) -> float | None:
    """The lower bound an operand of ``op`` must respect, or None.

    ``OpDef.domain`` is the range the op's tests draw from; it is a real
    restriction (log, sqrt, log1p, pow_const, pow, div) when it is not
    symmetric around 0 (symmetric ones, like sigmoid's (-4, 4), are just
    sampling ranges).
    """
    lo, hi = op.domain
    if op.category == "elementwise" and lo != -hi:
        return lo
    return None


def operand_low(op: OpDef, i: int, attrs: dict[str, Any]) -> float | None:
    """The lower bound for operand ``i`` of ``op`` with ``attrs`` (None: any value)."""
    lo = _restricted_low(op)
    if lo is None:
        return None
    # The registry states one domain for all operands; two are looser:
    # div's numerator can be anything (only the denominator must avoid 0),
    # and x ** p with an integer p is defined for every x.
    if op.name == "div" and i == 0:
        return None
    if op.name == "pow_const" and float(attrs.get("exponent", 0.5)).is_integer():
        return None
    return lo


def label_operands(op: OpDef) -> frozenset[int]:
    """Operands that hold integer class labels (``Sample.integer``)."""
    return frozenset(i for s in op.samples for i in s.integer)


@functools.lru_cache(maxsize=None)
def grad_operands(name: str) -> frozenset[int]:
    """Operands of op ``name`` that a gradient reaches, asked of autodiff.

    Built on a one-op graph from the op's first sample (as the registry tests
    do); an operand whose gradient comes out zero (with a note) gets none
    (comparisons, stop_gradient, one_hot, where's condition). If the probe
    itself fails, every non-label operand is assumed to get one.
    """
    op = OPS[name]
    labels = label_operands(op)
    if not op.samples:
        return frozenset(range(op.arity or 2)) - labels
    sample = op.samples[0]
    out = set()
    for i in range(len(sample.shapes)):
        if i in labels:
            continue
        try:
            from bpc.compiler.autodiff import differentiate

            from .helpers import one_op_graph

            p = one_op_graph(op, sample)
            if not differentiate(p.but(wrt=(f"a{i}",))).notes:  # a note: zero gradient
                out.add(i)
        except BpcError:
            pass
        except Exception:  # the probe is only a hint: assume a gradient flows
            out.add(i)
    return frozenset(out)


def builder_kind(op: OpDef) -> str | None:
    """How the generator builds ``op``, from its registry entry (None: never)."""
    if not op.public or (op.vjp is None and op.decompose is None) or op.arity == 0:
        return None
    if op.name in EXCLUDED:
        return None
    if op.category == "comparison":
        return "compare"
    if op.category == "linalg" and op.arity == 2:
        return "matmul"
    if op.arity is None:
        return "join"
    if label_operands(op) or op.category == "loss":
        return "sampled"  # operand shapes follow the op's samples (labels, targets)
    return {1: "unary", 2: "binary", 3: "ternary"}.get(op.arity)


def generated_ops() -> set[str]:
    """Every op name the generator can build."""
    return {n for n, op in OPS.items() if builder_kind(op) is not None}


# ------------------------------------------------------------------ values


@dataclass(frozen=True)
class Val:
    """A value the generator can use as an operand."""

    expr: ast.expr  # how an expression refers to it: a Name, a literal, or inline
    shape: tuple[int, ...]
    value: np.ndarray  # float64, at the spec's point
    flow: frozenset[str]  # spec names whose gradient it carries (d val / d name != 0 structurally)
    name: str | None = None  # spec name; None for inline expressions and literals
    labels: bool = False  # integer class labels (never differentiated)
    mask: bool = False  # a comparison's 0/1 result (or a reshaping of one): bool in generated code
    # (op, operands, attrs as given) for values built by an op, to emit op-node form
    origin: tuple[str, tuple["Val", ...], dict[str, Any]] | None = None

    @property
    def size(self) -> int:
        return math.prod(self.shape)


def _literal_expr(v: float | int) -> ast.expr:
    """A number as source: negative ones as unary minus (as a person writes them)."""
    if v < 0:
        return ast.UnaryOp(ast.USub(), ast.Constant(-v))
    return ast.Constant(v)


def _attr_expr(v: Any) -> ast.expr:
    if isinstance(v, tuple):
        return ast.Tuple([_attr_expr(x) for x in v], ast.Load())
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return _literal_expr(v)
    return ast.Constant(v)


def _attr_json(v: Any) -> Any:
    if isinstance(v, tuple):
        return [_attr_json(x) for x in v]
    return v


def _index_expr(index: tuple) -> ast.expr:
    """A static index as subscript source: ints and start:stop slices."""
    items: list[ast.expr] = []
    for it in index:
        if isinstance(it, int):
            items.append(_literal_expr(it))
        else:
            lo, hi = it
            items.append(
                ast.Slice(
                    None if lo is None else _literal_expr(lo),
                    None if hi is None else _literal_expr(hi),
                )
            )
    return items[0] if len(items) == 1 else ast.Tuple(items, ast.Load())


def _broadcasts(*shapes: tuple[int, ...]) -> tuple[int, ...] | None:
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        return None


# ------------------------------------------------------------------ the generator


@dataclass
class Network:
    """A generated spec and the op names its nodes use."""

    spec: dict[str, Any]

    @property
    def ops(self) -> set[str]:
        return ops_in_spec(self.spec)

    @property
    def text(self) -> str:
        return json.dumps(self.spec)


class NetGen:
    """Builds one network from ``rng`` (see the module docstring)."""

    def __init__(self, rng: random.Random, max_nodes: int = 7):
        self.rng = rng
        self.max_nodes = max_nodes
        self.params: list[dict[str, Any]] = []
        self.inputs: list[dict[str, Any]] = []
        self.nodes: list[Any] = []
        self.vals: list[Val] = []  # named values, oldest first
        self.uses: dict[str, int] = {}
        self.reads: dict[str, set[str]] = {}  # named value -> names its expression reads
        self.n_names = 0
        self.kinds: dict[str, str] = {n: k for n in sorted(generated_ops()) if (k := builder_kind(OPS[n]))}

    # ---- randomness helpers

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def pick(self, items: Sequence[Any]) -> Any:
        return items[self.rng.randrange(len(items))]

    def pick_val(self, ok: Callable[[Val], bool] = lambda v: True, fresh: float = 0.15) -> Val | None:
        """An existing named value (recent ones likelier), or None."""
        cands = [v for v in self.vals if ok(v) and not v.labels]
        if not cands or self.chance(fresh * (1.0 if len(cands) > 1 else 0.5)):
            return None
        # Weight by recency: deeper graphs, and fan-out from older values too.
        k = len(cands)
        r = self.rng.random() * k * (k + 1) / 2
        acc = 0.0
        for i, v in enumerate(cands):
            acc += i + 1
            if r < acc:
                return v
        return cands[-1]

    def fresh_name(self, prefix: str) -> str:
        self.n_names += 1
        return f"{prefix}{self.n_names}"

    # ---- leaves

    def _numbers(self, n: int, low: float | None) -> list[float | int]:
        """``n`` spec numbers: floats, integers, or exact 0/1 (all >= ``low``+margin)."""
        mode = self.rng.random()
        if low is not None:
            base = low + 0.1
            if mode < 0.6:
                return [round(self.rng.uniform(base, base + 2.0), 3) for _ in range(n)]
            if mode < 0.85:
                lo_int = math.ceil(base)
                return [self.rng.randint(lo_int, lo_int + 3) for _ in range(n)]
            v = 1 if base <= 1 else math.ceil(base)
            return [v] * n
        if mode < 0.55:
            return [round(self.rng.uniform(-2.0, 2.0), 3) for _ in range(n)]
        if mode < 0.8:
            return [self.rng.randint(-2, 3) for _ in range(n)]
        if mode < 0.92:
            v = self.pick([0, 1, 0.0, 1.0])
            return [v] * n
        return [round(self.rng.uniform(-2.0, 2.0), 2)] * n

    def _json_value(self, numbers: list[float | int], shape: tuple[int, ...]) -> Any:
        """Spec form of a value: a number (filled), a flat list, or nested lists."""
        if not shape:
            return numbers[0]
        if len(set(numbers)) == 1 and self.chance(0.5):
            return numbers[0]
        if len(shape) > 1 and self.chance(0.25):
            return list(numbers)  # flat, reshaped in C order
        return np.array(numbers, dtype=object).reshape(shape).tolist()

    def leaf(
        self,
        shape: tuple[int, ...],
        low: float | None = None,
        labels: int | None = None,
        role: str | None = None,
    ) -> Val:
        """A new param or input of ``shape`` with a spec value.

        ``low``: values above it; ``labels``: integer class labels in [0, labels).
        """
        n = math.prod(shape)
        if labels is not None:
            numbers: list[float | int] = [self.rng.randrange(labels) for _ in range(n)]
            role = "input"
        else:
            numbers = self._numbers(n, low)
            role = role or ("param" if self.chance(0.7) else "input")
        name = self.fresh_name("p" if role == "param" else "x")
        decl: dict[str, Any] = {"name": name, "shape": list(shape), "value": self._json_value(numbers, shape)}
        if labels is not None and self.chance(0.3):
            decl["classes"] = labels
        (self.params if role == "param" else self.inputs).append(decl)
        value = np.array([float(x) for x in numbers], dtype=np.float64).reshape(shape)
        flow = frozenset() if labels is not None else frozenset([name])
        v = Val(ast.Name(name, ast.Load()), shape, value, flow, name, labels=labels is not None)
        self.vals.append(v)
        return v

    def operand(self, shape: tuple[int, ...], low: float | None = None) -> Val:
        """A value of exactly ``shape``: an existing one, or a new leaf."""
        v = self.pick_val(lambda v: v.shape == shape)
        if v is None:
            return self.leaf(shape, low)
        return self.in_domain(v, low)

    def any_val(self, ok: Callable[[Val], bool] = lambda v: True) -> Val:
        v = self.pick_val(ok)
        if v is not None:
            return v
        for _ in range(20):
            shape = self.pick(SHAPES)
            probe = Val(ast.Name("_", ast.Load()), shape, np.zeros(shape), frozenset())
            if ok(probe):
                return self.leaf(shape)
        return self.leaf(self.pick(SHAPES))

    def literal(self, low: float | None = None) -> Val:
        choices = [c for c in LITERALS if low is None or c >= low + 0.1]
        c = self.pick(choices or [1.0])
        return Val(_literal_expr(c), (), np.float64(c) * np.ones(()), frozenset())

    # ---- applying ops

    def apply(self, op_name: str, args: Sequence[Val], attrs: dict[str, Any] | None = None) -> Val | None:
        """``op(args, attrs)`` as an inline value; None when shapes, domain or size do not fit."""
        op = OPS[op_name]
        attrs = dict(attrs or {})
        try:
            norm = op.normalize_attrs(attrs, None)
            shape = tuple(op.infer_shape([a.shape for a in args], norm, None))
        except BpcError:
            return None
        if not all(isinstance(d, int) for d in shape) or math.prod(shape) > MAX_SIZE:
            return None
        try:
            with (
                warnings.catch_warnings(),
                np.errstate(over="raise", divide="raise", invalid="raise", under="ignore"),
            ):
                warnings.simplefilter("error")
                value = np.asarray(op.impl(*(a.value for a in args), **norm), dtype=np.float64)
        except (ArithmeticError, ValueError, TypeError, IndexError, Warning):
            return None
        if (
            value.shape != shape
            or not np.all(np.isfinite(value))
            or np.max(np.abs(value), initial=0.0) > BOUND
        ):
            return None
        flow: frozenset[str] = frozenset()
        for i in grad_operands(op_name) if op.arity is not None else range(len(args)):
            if i < len(args):
                flow |= args[i].flow
        moves_only = op.category == "shape" or op_name == "stop_gradient"  # ops that keep a mask a mask
        mask = op.category == "comparison" or (moves_only and all(a.mask for a in args))
        expr = self._expr(op_name, args, attrs)
        return Val(expr, shape, value, flow, origin=(op_name, tuple(args), attrs), mask=mask)

    def _expr(self, op_name: str, args: Sequence[Val], attrs: dict[str, Any]) -> ast.expr:
        """Source for an op application, in one of the forms the grammar allows."""
        xs = [a.expr for a in args]
        call_form = self.chance(0.2)
        if op_name in INFIX and not call_form:
            return ast.BinOp(xs[0], INFIX[op_name](), xs[1])
        if op_name in COMPARE and not call_form:
            return ast.Compare(xs[0], [COMPARE[op_name]()], [xs[1]])
        if op_name == "neg" and not call_form:
            return ast.UnaryOp(ast.USub(), xs[0])
        if op_name == "pow_const" and not call_form and attrs.get("exponent") != 2.0:
            p = attrs["exponent"]
            return ast.BinOp(
                xs[0], ast.Pow(), _literal_expr(int(p) if p.is_integer() and self.chance(0.5) else p)
            )
        if op_name == "square" and self.chance(0.3):
            return ast.BinOp(xs[0], ast.Pow(), ast.Constant(self.pick([2, 2.0])))
        if op_name == "transpose" and attrs.get("axes") is None and not call_form:
            return ast.Attribute(xs[0], "T", ast.Load())
        if op_name == "slice":
            return ast.Subscript(xs[0], _index_expr(attrs["index"]), ast.Load())
        kws = [ast.keyword(k, _attr_expr(v)) for k, v in attrs.items()]
        return ast.Call(ast.Name(op_name, ast.Load()), xs, kws)

    def bind(self, v: Val, name: str | None = None) -> Val:
        """Give an inline value a spec name: an expression string or an op node."""
        name = name or self.fresh_name("v")
        for n in _expr_names(v.expr):
            self.uses[n] = self.uses.get(n, 0) + 1
        if v.origin is not None and all(a.name for a in v.origin[1]) and self.chance(0.3):
            op_name, args, attrs = v.origin
            node: Any = {"name": name, "op": op_name, "inputs": [a.name for a in args]}
            if attrs or self.chance(0.3):
                node["attrs"] = {k: _attr_json(x) for k, x in attrs.items()}
        else:
            stmt = ast.Assign([ast.Name(name, ast.Store())], v.expr, lineno=1)
            node = ast.unparse(ast.fix_missing_locations(stmt))
        self.nodes.append(node)
        self.reads[name] = _expr_names(v.expr)
        named = Val(
            ast.Name(name, ast.Load()), v.shape, v.value, v.flow | {name}, name, origin=v.origin, mask=v.mask
        )
        self.vals.append(named)
        return named

    def in_domain(self, v: Val, low: float | None) -> Val:
        """``v`` if all its values are >= ``low`` + margin, else a wrapping of it that is."""
        if low is None or np.min(v.value, initial=np.inf) >= low + 0.05:
            return v
        margin = max(low, 0.0) + self.pick([0.5, 0.8, 1.0])
        options: list[Callable[[], Val | None]] = [
            lambda: self.apply("exp", [v]),
            lambda: self.apply("add", [self.apply("square", [v]) or v, self.literal_value(margin)]),
            lambda: self.apply("add", [self.apply("sigmoid", [v]) or v, self.literal_value(margin)]),
        ]
        self.rng.shuffle(options)
        for make in options:
            w = make()
            if w is not None and np.min(w.value, initial=np.inf) >= low + 0.05:
                return w
        return self.leaf(v.shape, low)

    def literal_value(self, c: float) -> Val:
        c = round(c, 3)
        return Val(_literal_expr(c), (), np.float64(c) * np.ones(()), frozenset())

    # ---- attributes

    def attr_value(self, op: OpDef, a: Attr, shapes: list[tuple[int, ...]]) -> Any:
        """A value for attribute ``a`` by its kind, for operands of ``shapes``."""
        from_samples = [s.attrs[a.name] for s in op.samples if a.name in s.attrs]
        if a.default is REQUIRED and from_samples and a.kind in ("float", "int") and self.chance(0.8):
            return self.pick(from_samples)
        nd = len(shapes[0]) if shapes else 0
        k = a.kind
        if k == "float":
            return self.pick(
                from_samples + FLOAT_ATTR_VALUES + ([a.default] if a.default is not REQUIRED else [])
            )
        if k == "int":
            if a.name == "axis":
                return self.rng.randint(-nd - 1, nd)
            return self.pick(from_samples or [a.default if a.default is not REQUIRED else 1])
        if k == "bool":
            return self.chance(0.5)
        if k == "choice":
            return self.pick(list(a.choices))
        if k == "axis":
            r = self.rng.random()
            if r < 0.35 or nd == 0:
                return None if nd > 0 or self.chance(0.8) else ()
            if r < 0.8:
                return self.rng.randint(-nd, nd - 1)
            axes = sorted(self.rng.sample(range(nd), self.rng.randint(0, nd)))
            return tuple(x - nd if self.chance(0.3) else x for x in axes)
        if k == "perm":
            if nd < 2 or self.chance(0.4):
                return None
            perm = list(range(nd))
            self.rng.shuffle(perm)
            return tuple(perm)
        if k == "shape":  # broadcast target: grow size-1 axes, maybe add a leading one
            out = [self.pick([1, 2, 3]) if d == 1 else d for d in shapes[0]]
            if self.chance(0.4) or not out:
                out = [self.pick([2, 3])] + out
            return tuple(out)
        if k == "dims":  # reshape: same number of elements
            n = math.prod(shapes[0])
            cands = [
                s for s in SHAPES + [(3, 2), (6,), (1, 6), (6, 1), (1, 2, 3), (3, 1, 1)] if math.prod(s) == n
            ]
            cands += [(n,), (1, n), (n, 1)]
            return tuple(self.pick(cands))
        if k == "index":
            if nd == 0:
                return (0,)
            out = []
            for d in shapes[0][: self.rng.randint(1, nd)]:
                if self.chance(0.4):
                    i = self.rng.randrange(d)
                    out.append(i - d if self.chance(0.3) else i)
                else:
                    s = self.rng.randrange(d)
                    t = self.rng.randint(s + 1, d)
                    lo = None if s == 0 and self.chance(0.5) else s
                    hi = None if t == d and self.chance(0.5) else (t - d if t < d and self.chance(0.3) else t)
                    out.append((lo, hi))
            return tuple(out)
        raise ValueError(f"attribute kind {k!r} of op {op.name} is not generated")

    def attrs_for(self, op: OpDef, shapes: list[tuple[int, ...]]) -> dict[str, Any]:
        """Attributes: required ones always, optional ones sometimes (else the default)."""
        out = {}
        for a in op.attrs:
            if a.default is REQUIRED or self.chance(0.6):
                out[a.name] = self.attr_value(op, a, shapes)
        return out

    # ---- builders, one per kind of op

    def build(self, op_name: str) -> Val | None:
        kind = self.kinds[op_name]
        for _ in range(6):
            v = getattr(self, f"_build_{kind}")(OPS[op_name])
            if v is not None:
                return v
        return None

    def _build_unary(self, op: OpDef) -> Val | None:
        x = self.any_val()
        attrs = self.attrs_for(op, [x.shape])
        if self.chance(0.2):  # nest: an inline elementwise op as the operand
            inner = self.apply(self.pick(self.unary_elementwise()), [x])
            x = inner or x
        x = self.in_domain(x, operand_low(op, 0, attrs))
        return self.apply(op.name, [x], attrs)

    def unary_elementwise(self) -> list[str]:
        return sorted(
            n
            for n, k in self.kinds.items()
            if k == "unary"
            and OPS[n].category == "elementwise"
            and not OPS[n].attrs
            and _restricted_low(OPS[n]) is None
        )

    def second_operand(self, op: OpDef, a: Val, attrs: dict[str, Any], i: int = 1) -> tuple[Val, bool]:
        """A partner for ``a`` in an elementwise op; (value, whether it goes on the left)."""
        low = operand_low(op, i, attrs)
        r = self.rng.random()
        if r < 0.15:  # the same value on both sides
            return self.in_domain(a, low), False
        if r < 0.22:  # an exact tie, computed differently: same values, same function
            tie_op, unit = self.pick([("mul", 1.0), ("add", 0.0), ("sub", 0.0), ("div", 1.0)])
            tie = self.apply(tie_op, [a, self.literal_value(unit)])
            if tie is not None and np.array_equal(tie.value, a.value):
                return self.in_domain(tie, low), self.chance(0.5)
        if r < 0.42:  # a literal, on either side (never a left operand that must stay in a domain)
            left = self.chance(0.3) and operand_low(op, 0, attrs) is None
            return self.literal(operand_low(op, 0 if left else i, attrs)), left
        shapes = [s for s in SHAPES + [a.shape] if _broadcasts(a.shape, s) is not None]
        b = self.pick_val(lambda v: _broadcasts(a.shape, v.shape) is not None)
        if b is None:
            b = self.leaf(self.pick(shapes), low)
        return self.in_domain(b, low), False

    def _build_binary(self, op: OpDef) -> Val | None:
        a = self.any_val()
        attrs = self.attrs_for(op, [a.shape])
        b, swap = self.second_operand(op, a, attrs)
        a = self.in_domain(a, operand_low(op, 0, attrs))
        return self.apply(op.name, [b, a] if swap else [a, b], attrs)

    def _build_compare(self, op: OpDef) -> Val | None:
        return self._build_binary(op)

    def condition(self) -> Val:
        """A condition for where: usually a comparison, sometimes a mask or any value."""
        r = self.rng.random()
        if r < 0.7:
            cmp_op = self.pick(sorted(n for n, k in self.kinds.items() if k == "compare"))
            c = self._build_compare(OPS[cmp_op])
            if c is not None:
                return c
        if r < 0.85:
            m = self.pick_val(lambda v: v.origin is not None and self.kinds.get(v.origin[0]) == "compare")
            if m is not None:
                return m
        return self.any_val()

    def _build_ternary(self, op: OpDef) -> Val | None:
        # Operands that get no gradient (where's condition) are conditions.
        grads = grad_operands(op.name)
        args: list[Val] = []
        for i in range(op.arity or 3):
            if i not in grads:
                args.append(self.condition())
            elif self.chance(0.25):
                args.append(self.literal())
            else:
                base = next((x for x in args if x.shape), None)
                v = self.pick_val(lambda v: base is None or _broadcasts(base.shape, v.shape) is not None)
                args.append(
                    v or self.leaf(base.shape if base is not None and self.chance(0.5) else self.pick(SHAPES))
                )
        if self.chance(0.15) and len(args) == 3:
            args[2] = args[1]  # both branches the same value
        attrs = self.attrs_for(op, [a.shape for a in args])
        return self.apply(op.name, args, attrs)

    def _build_matmul(self, op: OpDef) -> Val | None:
        a = self.any_val(lambda v: len(v.shape) >= 1)
        k = a.shape[-1]
        r = self.rng.random()
        if r < 0.1 and (len(a.shape) == 1 or a.shape[0] == k):
            args = [a, a]  # x @ x (a dot product, or a square matrix squared)
        elif r < 0.25 and len(a.shape) == 2:
            args = [self.operand((a.shape[0],)), a]  # vector @ matrix
        elif r < 0.5:
            args = [a, self.operand((k,))]  # matrix @ vector, or a dot product
        else:
            args = [a, self.operand((k, self.pick(list(MATMUL_COLS))))]
        return self.apply(op.name, args, self.attrs_for(op, [x.shape for x in args]))

    def _build_join(self, op: OpDef) -> Val | None:
        a = self.any_val(lambda v: len(v.shape) >= 1)
        attrs = self.attrs_for(op, [a.shape])
        n = self.rng.randint(max(op.min_arity, 1), 3)
        args = [a]
        for _ in range(n - 1):
            if self.chance(0.25):
                args.append(a)  # the same value twice
                continue
            # Same shape (stack), or the same but along one axis (concat).
            shape = list(a.shape)
            if self.chance(0.5):
                ax = self.rng.randrange(len(shape))
                shape[ax] = self.pick([1, 2, 3])
            args.append(self.operand(tuple(shape)))
        return self.apply(op.name, args, attrs)

    def _build_sampled(self, op: OpDef) -> Val | None:
        """Ops with label or target operands: shapes from the op's samples."""
        sample = self.pick(list(op.samples))
        attrs = self.attrs_for(op, list(sample.shapes))
        labels = label_operands(op)
        first = self.pick_val(lambda v: len(v.shape) >= 1) if 0 not in labels else None
        shapes = list(sample.shapes)
        if first is not None and self.chance(0.7):
            # Try the sample's shape relations on an existing value: same shape,
            # or the class axis dropped (integer labels).
            s0 = first.shape
            rel = [s0 if s == shapes[0] else s0[:-1] if s == shapes[0][:-1] else None for s in shapes]
            if all(r is not None for r in rel):
                shapes = [tuple(r) for r in rel]  # type: ignore[arg-type]
        n_classes = attrs.get("num_classes") or (shapes[0][-1] if shapes[0] else 2)
        args: list[Val] = []
        for i, s in enumerate(shapes):
            if i in labels:
                args.append(self.leaf(tuple(s), labels=int(n_classes)))
            elif i == 0 and first is not None and first.shape == tuple(s):
                args.append(first)
            else:
                args.append(self.operand(tuple(s)))
        return self.apply(op.name, args, attrs)

    # ---- composite patterns

    def fanout_chain(self) -> Val | None:
        """``c = r + x + t`` where ``r``, ``t`` are computed from ``x`` (fan-out into +)."""
        x = self.any_val()
        terms: list[Val] = [x]
        for _ in range(self.rng.randint(1, 3)):
            u = self.apply(self.pick(self.unary_elementwise()), [x])
            if u is not None:
                terms.append(self.bind(u) if self.chance(0.7) else u)
        self.rng.shuffle(terms)
        acc = terms[0]
        for t in terms[1:]:
            nxt = self.apply("sub" if self.chance(0.2) else "add", [acc, t])
            acc = nxt or acc
        return acc

    def plus_chain(self) -> Val | None:
        """``v = a + b - c + d`` of broadcast-compatible values."""
        acc = self.any_val()
        for _ in range(self.rng.randint(2, 3)):
            b = self.pick_val(lambda v: _broadcasts(acc.shape, v.shape) is not None) or self.literal()
            acc = self.apply("sub" if self.chance(0.3) else "add", [acc, b]) or acc
        return acc

    def step(self) -> None:
        r = self.rng.random()
        if r < 0.08:
            v = self.fanout_chain()
        elif r < 0.13:
            v = self.plus_chain()
        elif r < 0.16:
            src = self.any_val()  # an alias: y = x
            v = Val(src.expr, src.shape, src.value, src.flow, origin=None, mask=src.mask)
        else:
            v = self.build(self.pick(sorted(self.kinds)))
        if v is not None and v.name is None:
            self.bind(v)

    # ---- the loss and what to differentiate

    def finish(self) -> dict[str, Any]:
        nodes = [v for v in self.vals if v.origin is not None or v.name not in self.leaf_names()]
        sinks = [v for v in nodes if self.uses.get(v.name or "", 0) == 0]
        terms = sinks[-3:] if sinks else []
        while not terms or (self.chance(0.3) and len(terms) < 4):
            v = self.pick_val(fresh=0.0) or self.any_val()
            terms.append(v)
        reductions = sorted(
            n for n, k in self.kinds.items() if k == "unary" and OPS[n].category == "reduction"
        )
        parts: list[Val] = []
        for t in terms:
            if t.size == 1 and self.chance(0.6):
                parts.append(t)
                continue
            red = self.pick(reductions)
            attrs: dict[str, Any] = {}
            if self.chance(0.3):
                attrs["axis"] = None
            if self.chance(0.3):
                attrs["keepdims"] = self.chance(0.5)
            p = self.apply(red, [t], attrs) or self.apply("sum", [t])
            if p is not None:
                parts.append(p)
        loss = parts[0]
        for p in parts[1:]:
            loss = self.apply("sub" if self.chance(0.2) else "add", [loss, p]) or loss
        if loss.name is None or self.chance(0.3):
            if loss.name is not None:  # an alias of a one-element value
                loss = Val(loss.expr, loss.shape, loss.value, loss.flow)
            loss = self.bind(loss, name="loss")
        spec: dict[str, Any] = {}
        if self.inputs:
            spec["inputs"] = self.inputs
        if self.params:
            spec["params"] = self.params
        spec["nodes"] = self.nodes
        spec["loss"] = loss.name
        # Masks (comparison results) in wrt are rarer: they test that the compiler
        # either differentiates through them consistently or rejects them.
        masks = {v.name for v in self.vals if v.mask}
        cands = sorted(n for n in loss.flow - {loss.name} if n not in masks or self.chance(0.25))
        # The default wrt is every param the loss depends on; mostly avoid
        # defaults that no gradient reaches (the compiler rejects those).
        params = {d["name"] for d in self.params}
        default_ok = bool(params & loss.flow) and (
            self.chance(0.2) or not self.depends(loss, params - loss.flow)
        )
        if cands and (not default_ok or self.chance(0.6)):
            wrt = self.rng.sample(cands, self.rng.randint(1, min(4, len(cands))))
            if self.chance(0.1):
                wrt.append(loss.name)
            self.rng.shuffle(wrt)
            spec["wrt"] = wrt
        named = [v.name for v in self.vals if v.origin is not None and v.name != loss.name]
        if named and self.chance(0.15):
            spec["outputs"] = sorted(set(self.rng.sample(named, min(len(named), self.rng.randint(1, 2)))))
        return spec

    def depends(self, v: Val, names: set[str]) -> bool:
        """Whether ``v``'s expression reads any of ``names``, directly or through named values."""
        seen: set[str] = set()
        todo = list(_expr_names(v.expr))
        while todo:
            n = todo.pop()
            if n in names:
                return True
            if n not in seen:
                seen.add(n)
                todo.extend(self.reads.get(n, ()))
        return False

    def leaf_names(self) -> set[str]:
        return {d["name"] for d in self.params + self.inputs}

    def generate(self) -> Network:
        for _ in range(self.rng.randint(1, 3)):
            self.leaf(self.pick(SHAPES))
        for _ in range(self.rng.randint(1, self.max_nodes)):
            self.step()
        return Network(self.finish())


def generate(rng: random.Random, max_nodes: int = 7) -> Network:
    """One random network (see the module docstring)."""
    return NetGen(rng, max_nodes).generate()


def network_from_seed(seed: int | str, max_nodes: int = 7) -> Network:
    return generate(random.Random(seed), max_nodes)


# ------------------------------------------------------------------ what a spec uses

_BINOP_NAMES = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div", ast.MatMult: "matmul"}
_CMP_NAMES = {ast.Gt: "gt", ast.GtE: "ge", ast.Lt: "lt", ast.LtE: "le", ast.Eq: "eq"}


def _number(node: ast.AST) -> float | None:
    if (
        isinstance(node, ast.Constant)
        and isinstance(node.value, (int, float))
        and not isinstance(node.value, bool)
    ):
        return float(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _number(node.operand)
        return None if v is None else (-v if isinstance(node.op, ast.USub) else v)
    return None


def ops_in_spec(spec: dict[str, Any]) -> set[str]:
    """Names of the ops a spec's nodes apply, as the expression grammar lowers them."""
    out: set[str] = set()
    for node in spec.get("nodes", []):
        if isinstance(node, dict):
            out.add(node["op"])
            continue
        for n in ast.walk(ast.parse(node).body[0].value):  # type: ignore[attr-defined]
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name):
                out.add(n.func.id)
            elif isinstance(n, ast.BinOp):
                if isinstance(n.op, ast.Pow):
                    out.add("square" if _number(n.right) == 2.0 else "pow_const")
                else:
                    out.add(_BINOP_NAMES[type(n.op)])
            elif isinstance(n, ast.Compare):
                out.add(_CMP_NAMES[type(n.ops[0])])
            elif isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.USub) and _number(n) is None:
                out.add("neg")
            elif isinstance(n, ast.Attribute):
                out.add("transpose")
            elif isinstance(n, ast.Subscript):
                out.add("slice")
    return out


def features(spec: dict[str, Any]) -> set[str]:
    """Coarse features of a spec (to assert the generator's reach)."""
    f: set[str] = set()
    leaves = spec.get("params", []) + spec.get("inputs", [])
    names = {d["name"] for d in leaves}
    for d in leaves:
        f.add(f"shape:{tuple(d['shape'])}")
        vals = np.array(d["value"], dtype=object).reshape(-1).tolist()
        if all(isinstance(v, int) for v in vals):
            f.add("integer values")
        if all(v in (0, 1) for v in vals) and len(set(vals)) == 1:
            f.add("filled with 0 or 1")
    for node in spec["nodes"]:
        if isinstance(node, dict):
            f.add("op-node form")
            if len(node["inputs"]) == 2 and node["inputs"][0] == node["inputs"][1]:
                f.add("same value on both sides")
            if node.get("attrs", {}).get("keepdims") is True:
                f.add("keepdims")
            continue
        f.add("expression form")
        tree = ast.parse(node).body[0]
        for n in ast.walk(tree.value):  # type: ignore[attr-defined]
            args: list[ast.expr] = []
            if isinstance(n, ast.BinOp):
                args = [n.left, n.right]
            elif isinstance(n, ast.Call):
                args = list(n.args)
                for kw in n.keywords:
                    if kw.arg == "keepdims" and getattr(kw.value, "value", None) is True:
                        f.add("keepdims")
                    if kw.arg == "axis" and isinstance(kw.value, ast.Tuple):
                        f.add("axis tuple")
                if (
                    isinstance(n.func, ast.Name)
                    and n.func.id == "where"
                    and isinstance(n.args[0], ast.Compare)
                ):
                    f.add("where with comparison")
            if any(_number(a) is not None for a in args):
                f.add("literal operand")
            if len(args) == 2 and ast.dump(args[0]) == ast.dump(args[1]):
                f.add("same value on both sides")
            if isinstance(n, ast.BinOp) and isinstance(n.left, ast.BinOp):
                if isinstance(n.op, (ast.Add, ast.Sub)) and isinstance(n.left.op, (ast.Add, ast.Sub)):
                    f.add("chain of +")
    wrt = spec.get("wrt")
    if wrt is None:
        f.add("default wrt")
    else:
        for w in wrt:
            if w == spec["loss"]:
                f.add("wrt loss")
            elif w in names:
                f.add("wrt " + ("param" if any(d["name"] == w for d in spec.get("params", [])) else "input"))
            else:
                f.add("wrt intermediate")
    if spec.get("outputs"):
        f.add("outputs")
    return f


# ------------------------------------------------------------------ the check


def levels() -> list[tuple[str, set[str] | None]]:
    """Optimization levels: no passes, each pass alone, all passes (the default),
    and -O3 (all passes, values in reused buffers: see compile_level)."""
    from bpc.compiler.passes import PASS_NAMES

    return [("none", set())] + [(p, {p}) for p in PASS_NAMES] + [("all", None), (O3, None)]


O3 = "O3"


def compile_level(text: str, level: str, passes: set[str] | None, **kw: Any) -> Any:
    """Compile ``text`` at one level. ``O3`` buffers every value it can, whatever
    its size (the default threshold, 64 elements, would leave the generator's
    small arrays alone and the buffer code untested)."""
    from bpc.compiler import workspace
    from bpc.compiler.options import CompileOptions
    from bpc.compiler.pipeline import compile_text

    if level != O3:
        return compile_text(text, options=CompileOptions(passes=passes, **kw)) if kw else compile_text(text, passes=passes)
    saved = workspace.BUFFER_MIN
    workspace.BUFFER_MIN = 1
    try:
        return compile_text(text, options=CompileOptions(opt_level=3, **kw))
    finally:
        workspace.BUFFER_MIN = saved


FAILURE_KINDS = (
    "compile_error",
    "run_error",
    "numpy_warning",
    "mutated_input",
    "grad_type",
    "value_type",
    "interp_mismatch",
    "pass_mismatch",
    "fd_mismatch",
    "rule_mismatch",
    "oracle_error",
    "mode_mismatch",
    "workspace_alias",
    "shared_result",
    "dead_code",
    "f32_type",
)


@dataclass
class Failure:
    kind: str  # one of FAILURE_KINDS
    level: str  # optimization level, or "-" when it does not depend on one
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "level": self.level, "detail": self.detail}


@dataclass
class Outcome:
    """What ``check_spec`` found for one spec."""

    status: str = "ok"  # "ok", "rejected" (BpcError at every level), "failed"
    failures: list[Failure] = field(default_factory=list)
    rejection: str = ""
    fd_checked: int = 0  # elements compared with finite differences
    fd_skipped: int = 0  # elements skipped: f is not smooth there (kinks, ties, flips)

    @property
    def kinds(self) -> set[str]:
        return {f.kind for f in self.failures}

    def fail(self, kind: str, level: str, detail: str) -> None:
        self.failures.append(Failure(kind, level, detail))
        self.status = "failed"


def _short(x: Any) -> str:
    """A value for a message: dtype and type included, numbers abbreviated."""
    if isinstance(x, np.ndarray):
        body = np.array2string(x, precision=6, threshold=12, separator=", ", max_line_width=10**6)
        body = body.replace("\n", "")
        return f"{body} ({x.dtype}, shape {x.shape})"
    if isinstance(x, np.generic):
        return f"{x!r}"
    return f"{x!r} ({type(x).__name__})"


def _exc(e: BaseException, source: str | None = None) -> str:
    """An exception in one line, with the generated line that raised it when known."""
    msg = f"{type(e).__name__}: {e}".splitlines()[0][:300]
    frames = [fr for fr in traceback.extract_tb(e.__traceback__) if fr.filename.startswith("<bpc")]
    if not frames:
        return msg
    fr = frames[-1]
    lines = source.splitlines() if source else []
    line = lines[fr.lineno - 1].strip() if fr.lineno and fr.lineno <= len(lines) else (fr.line or "")
    return f"{msg} [line {fr.lineno}: {line}]"


def is_float_array(x: Any) -> bool:
    """A floating NumPy array or NumPy floating scalar (not bool, int or Python float)."""
    return isinstance(x, (np.ndarray, np.floating)) and np.asarray(x).dtype.kind == "f"


def _max_diff(a: Any, b: np.ndarray) -> float:
    try:
        a = np.asarray(a, dtype=np.float64)
        if a.shape != np.shape(b):
            a = np.broadcast_to(a, np.shape(b))
        d = np.abs(a - b)
    except (TypeError, ValueError):
        return math.inf
    if d.size == 0:
        return 0.0
    return float(np.max(d)) if np.all(np.isfinite(d)) else math.inf


def _close(a: Any, b: np.ndarray, tol: float = INTERP_TOL) -> bool:
    return _max_diff(a, b) <= tol * max(1.0, float(np.max(np.abs(b), initial=0.0)))


@dataclass
class FDResult:
    numeric: np.ndarray  # central differences; NaN where not smooth or not sampled
    skipped: int  # elements where f is not smooth


Aux = dict[str, np.ndarray]  # values of watched nodes at a perturbed point


def finite_differences(
    f: Callable[[np.ndarray], float | tuple[float, Aux]],
    x0: np.ndarray,
    scale: float,
    max_elements: int | None = None,
    seed: int = 0,
    crossed: Callable[[Aux], bool] | None = None,
) -> FDResult:
    """Central differences of ``f`` at ``x0``, NaN where ``f`` has a kink nearby.

    ``scale`` is the magnitude of the forward pass (for the noise floor). An
    element is skipped when ``f`` is not smooth around it: when ``crossed`` says
    a perturbed point moved an op that sits at its kink (then ``f`` returns
    ``(loss, watched values)``), or when one-sided differences show a jump in
    slope (see the module docstring).
    """
    x = np.array(x0, dtype=np.float64, order="C")  # C order: ``flat`` is a view
    flat = x.reshape(-1)
    out = np.full(flat.size, np.nan)
    idx = np.arange(flat.size)
    if max_elements is not None and flat.size > max_elements:
        idx = np.sort(np.random.default_rng(seed).choice(flat.size, max_elements, replace=False))

    def call(at: np.ndarray) -> tuple[float, bool]:
        r = f(at)
        if crossed is None:
            return float(r), False  # type: ignore[arg-type]
        val, aux = r  # type: ignore[misc]
        return float(val), crossed(aux)

    f0, _ = call(x)
    skipped = 0
    for i in idx:
        old = flat[i]
        h = FD_STEP * max(1.0, abs(old))
        vals = {}
        kink = False
        for k in (-2, -1, 1, 2):
            flat[i] = old + k * h
            vals[k], moved = call(x)
            kink = kink or moved
        flat[i] = old
        central = (vals[1] - vals[-1]) / (2.0 * h)
        wide = (vals[2] - vals[-2]) / (4.0 * h)
        d1 = (vals[1] - 2.0 * f0 + vals[-1]) / h
        d2 = (vals[2] - 2.0 * f0 + vals[-2]) / (2.0 * h)
        jump = abs(2.0 * d1 - d2)
        if kink or not math.isfinite(central) or jump > FD_RTOL * abs(central) + FD_ATOL * scale:
            skipped += 1
            continue
        out[i] = (4.0 * central - wide) / 3.0  # Richardson: O(h^4) truncation
    return FDResult(out.reshape(x.shape), skipped)


# How far (relative) from a kink a value counts as sitting on it.
KINK_DELTA = 1e-4
# Binary ops that pick one operand elementwise: non-differentiable where the
# operands tie (the registry declares kinks only at fixed points).
TIE_OPS = {"maximum", "minimum"}
# Reductions that pick elements: non-differentiable where the extreme ties.
EXTREME_OPS = {"max", "min"}


def _near(a: np.ndarray, b: np.ndarray | float, delta: float = KINK_DELTA) -> np.ndarray:
    return np.abs(a - b) <= delta * np.maximum(1.0, np.maximum(np.abs(a), np.abs(b)))


# Within this (relative) of a kink or a tie, two correct implementations that
# round differently (the interpreter's sigmoid and the emitted one) may sit
# on opposite sides, and AD's subgradient differs with the side: gradients
# are then not compared with the interpreter's (loss and differences still are).
ROUNDING_DELTA = 1e-9


def kink_watchers(fwd: Any, values: Aux, delta: float = KINK_DELTA) -> tuple[set[str], list[Callable[[Aux], bool]]]:
    """Where the forward pass sits on a kink, and how to see a perturbation move it.

    Returns the nodes to watch and predicates ``moved(values at a perturbed
    point)``: a unary op at one of its registry ``kinks`` whose operand moved
    there; ``maximum``/``minimum``/comparisons whose tied operands moved apart;
    ``max``/``min`` whose tied extremes moved apart; ``where`` whose condition
    moved at 0. Ties that persist (``maximum(p, p)``, broadcast copies) do not
    count: there the function is smooth. Ops whose only users are
    stop_gradient (the max in softmax's shift) are pinned and do not count.
    AD uses one subgradient at a kink, so even a smooth composite
    (``relu(x) - relu(-x)`` at 0) is not comparable with differences there.
    """
    from bpc.compiler.ops.registry import norm_axes

    watch: set[str] = set()
    preds: list[Callable[[Aux], bool]] = []
    for n in fwd.nx.nodes:
        op = fwd.op(n)
        opdef = OPS.get(op)
        if opdef is None or op in ("input", "param", "const"):
            continue
        users = [u for u, _ in fwd.users(n)]
        if users and all(fwd.op(u) == "stop_gradient" for u in users):
            continue
        args = list(fwd.args(n))
        xs = [values[a] for a in args]
        if opdef.kinks and len(args) == 1:
            mask = np.zeros(np.shape(xs[0]), bool)
            for k in opdef.kinks:
                mask |= _near(xs[0], k, delta)
            if mask.any():
                watch.add(args[0])
                preds.append(lambda v, a=args[0], m=mask, x=xs[0]: bool(np.any(m & (v[a] != x))))
        elif (op in TIE_OPS or opdef.category == "comparison") and len(args) == 2:
            diff = np.asarray(xs[0] - xs[1])
            mask = _near(xs[0] + 0 * xs[1], xs[1] + 0 * xs[0], delta)
            if mask.any():
                watch.update(args)
                preds.append(lambda v, a=args, m=mask, d=diff: bool(np.any(m & ((v[a[0]] - v[a[1]]) != d))))
        elif op == "where":
            mask = _near(xs[0], 0.0, delta)
            if mask.any():
                watch.add(args[0])
                preds.append(lambda v, a=args[0], m=mask, x=xs[0]: bool(np.any(m & (v[a] != x))))
        elif op in EXTREME_OPS:
            x = np.asarray(xs[0])
            axes = norm_axes(fwd.attrs(n).get("axis"), x.ndim)
            ext = (np.max if op == "max" else np.min)(x, axis=axes, keepdims=True)
            tied = _near(x, ext, delta)
            mask = tied & (np.sum(tied, axis=axes, keepdims=True) >= 2)
            if mask.any():
                watch.add(args[0])

                def apart(v: Aux, a: str = args[0], m: np.ndarray = mask, ax: tuple = axes) -> bool:
                    hi = np.max(np.where(m, v[a], -np.inf), axis=ax)
                    lo = np.min(np.where(m, v[a], np.inf), axis=ax)
                    return bool(np.any(np.isfinite(hi) & (hi != lo)))

                preds.append(apart)
    return watch, preds


def loss_of(
    fwd: Any,
    arrays: dict[str, np.ndarray],
    at: str,
    pinned: dict[str, np.ndarray],
    watch: Iterable[str] = (),
) -> Callable[[np.ndarray], tuple[float, Aux]]:
    """The loss as a function of one param, input or intermediate ``at`` (float64
    interpreter), with the ``pinned`` values held fixed; also returns the values
    of the ``watch`` nodes."""
    from bpc.runtime import interpreter

    roots = [fwd.loss] + sorted(set(watch) - {fwd.loss})

    def f(x: np.ndarray) -> tuple[float, Aux]:
        if at in arrays:
            env, over = {**arrays, at: x}, pinned
        else:
            env, over = arrays, {**pinned, at: x}
        vals = interpreter.evaluate(fwd, env, roots, overrides=over)
        return float(np.sum(vals[fwd.loss])), vals

    return f


def fd_compare(analytic: Any, numeric: np.ndarray, scale: float) -> str | None:
    """None when ``analytic`` matches ``numeric`` (NaN elements ignored), else a message."""
    try:
        a = np.broadcast_to(np.asarray(analytic, dtype=np.float64), numeric.shape)
    except (TypeError, ValueError):
        return f"got {_short(analytic)}, cannot compare with shape {numeric.shape}"
    known = ~np.isnan(numeric)
    if not known.any():
        return None
    err = np.abs(a - numeric)
    tol = FD_RTOL * np.maximum(np.abs(a), np.abs(numeric)) + FD_ATOL * scale
    bad = known & ~(err <= tol)
    if not bad.any():
        return None
    return f"got {_short(np.asarray(analytic))}, finite differences {_short(numeric)}"


def _spec_arrays(module: Any, out: Outcome, level: str, labels: set[str]) -> dict[str, Any] | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            params = module.init_params()
            inputs = module.example_inputs()
    except Exception as e:  # noqa: BLE001 - any crash of generated code is a finding
        out.fail("run_error", level, f"init_params/example_inputs: {_exc(e)}")
        return None
    arrays = {**params, **inputs}
    for k, v in arrays.items():
        want = np.int64 if k in labels else np.float64  # class labels are integers
        if not (isinstance(v, np.ndarray) and v.dtype == want):
            out.fail(
                "value_type", level, f"init_params/example_inputs['{k}'] is {_short(v)}, not a {want.__name__} array"
            )
    return arrays


def _run(
    fn: Callable[..., Any],
    arrays: dict[str, Any],
    out: Outcome,
    level: str,
    what: str,
    source: str | None = None,
) -> tuple[bool, Any]:
    """Call generated code: exceptions, NumPy warnings and mutated arguments are failures."""
    before = {k: np.array(v, copy=True) for k, v in arrays.items()}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = fn(**arrays)
        except Exception as e:  # noqa: BLE001
            out.fail("run_error", level, f"{what}: {_exc(e, source)}")
            return False, None
    for w in caught:
        out.fail("numpy_warning", level, f"{what}: {w.category.__name__}: {w.message}")
    for k, v in before.items():
        if not np.array_equal(np.asarray(arrays[k]), v, equal_nan=True):
            out.fail("mutated_input", level, f"{what} changed its argument '{k}'")
            arrays[k] = v
    return True, result


def check_spec(
    spec: dict[str, Any] | str,
    only_levels: Iterable[str] | None = None,
    fd: bool = True,
    max_fd_elements: int | None = 32,
    wrap_module: Callable[[Any], Any] | None = None,
    modes: bool = True,
) -> Outcome:
    """Compile ``spec`` at every optimization level and check each module (see above).

    ``only_levels``: check only these levels (the oracle always comes from
    level "none"); ``fd``: compare with finite differences (at most
    ``max_fd_elements`` per tensor); ``wrap_module``: applied to every loaded
    module (tests tamper with modules to show that the check fails).
    """
    from bpc.compiler.pipeline import compile_text
    from bpc.runtime import interpreter
    from bpc.runtime.loader import load_source

    text = spec if isinstance(spec, str) else json.dumps(spec)
    try:
        int_arrays = integer_arrays(json.loads(text))
    except (ValueError, TypeError, KeyError, AttributeError):  # malformed: the compiler will say
        int_arrays = {}
    out = Outcome()
    wanted = set(only_levels) if only_levels is not None else None
    compiled: dict[str, Any] = {}
    rejected: dict[str, str] = {}
    for level, passes in levels():
        if wanted is not None and level not in wanted and level != "none":
            continue
        try:
            compiled[level] = compile_level(text, level, passes)
        except BpcError as e:
            rejected[level] = str(e)
        except Exception as e:  # noqa: BLE001 - an internal compiler error
            out.fail("compile_error", level, _exc(e))
    if not compiled:
        if rejected and not out.failures:
            out.status = "rejected"
            out.rejection = next(iter(rejected.values()))
        return out
    for level, msg in rejected.items():
        out.fail("compile_error", level, f"rejected only at this level: {msg}")
    base = next(iter(compiled.values()))
    fwd, joint = base.forward.graph, base.joint.graph
    wrt = list(base.joint.wrt)

    # The arrays a user passes: the module's own init_params/example_inputs.
    try:
        module0 = load_source(base.source, "diff")
    except Exception as e:  # noqa: BLE001
        out.fail("run_error", "none", f"load: {_exc(e)}")
        return out
    labels = {d["name"] for d in spec.get("inputs", []) if d.get("classes") is not None}
    arrays = _spec_arrays(module0, out, "none", labels)
    if arrays is None:
        return out
    arrays64 = {k: np.array(v, dtype=np.float64) for k, v in arrays.items()}

    # The oracle: the float64 interpreter on the forward and joint graphs.
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            values = interpreter.evaluate(fwd, arrays64, list(fwd.nx.nodes))
            ref_loss, ref_grads = interpreter.value_and_grad(joint, arrays64)
    except Exception as e:  # noqa: BLE001
        out.fail("oracle_error", "-", f"interpreter: {_exc(e)}")
        return out
    scale = max([1.0] + [float(np.max(np.abs(v), initial=0.0)) for v in values.values()])

    numeric: dict[str, np.ndarray] = {}
    # Values the derivative treats as constants (stop_gradient, also inside
    # decompositions such as logsumexp's shift): pinned while perturbing.
    pinned = {n: values[n] for n in fwd.nx.nodes if fwd.op(n) == "stop_gradient"}
    watch, watchers = kink_watchers(fwd, values)
    on_tie = bool(kink_watchers(fwd, values, ROUNDING_DELTA)[0])

    def crossed(vals: Aux) -> bool:
        return any(moved(vals) for moved in watchers)

    if fd:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            for w in wrt:
                x0 = arrays64[w] if w in arrays64 else values[w]
                f = loss_of(fwd, arrays64, w, pinned, watch)
                r = finite_differences(f, x0, scale, max_fd_elements, crossed=crossed)
                numeric[w] = r.numeric
                out.fd_skipped += r.skipped
                out.fd_checked += int(np.sum(~np.isnan(r.numeric)))
                msg = fd_compare(ref_grads[w], r.numeric, scale)
                if msg:
                    out.fail("rule_mismatch", "-", f"d {fwd.loss}/d {w} (interpreter, joint IR): {msg}")

    for level, c in compiled.items():
        if wanted is not None and level not in wanted:
            continue
        check_module(c, level, arrays, ref_loss, ref_grads, numeric, scale, out, wrap_module, int_arrays, on_tie)
    if modes and wanted is None and all(w in arrays64 for w in wrt):
        check_modes(text, arrays, ref_grads, out)
    if wanted is None:
        check_float32(text, arrays, out)
    return out


def check_float32(text: str, arrays: dict[str, Any], out: Outcome) -> None:
    """``f32_type``: compiled at float32 (default level and -O3), forward and
    value_and_grad run on float32 arrays and every float they return is
    float32 (NumPy makes float64 of a Python float with a bool mask, or of an
    int64 array with a float32 one). Values are not compared: float32 on
    random networks is checked by the examples' float64 twins."""
    from bpc.runtime.loader import load_source

    f32 = {k: (np.asarray(v, np.float32) if np.asarray(v).dtype.kind == "f" else v) for k, v in arrays.items()}
    for level in ("all", O3):
        name = f"f32 {level}"
        try:
            c = compile_level(text, level, None, dtype="float32")
            m = load_source(c.source, f"f32_{level}")
        except BpcError:
            return  # (rejected at float64 too, or a float32-only limit)
        except Exception as e:  # noqa: BLE001
            out.fail("compile_error", name, _exc(e))
            continue
        for fn in ("forward", "value_and_grad"):
            try:
                with warnings.catch_warnings(), np.errstate(all="ignore"):
                    warnings.simplefilter("ignore")
                    res = getattr(m, fn)(**f32)
            except Exception as e:  # noqa: BLE001
                out.fail("run_error", name, f"{fn}: {_exc(e, c.source)}")
                continue
            wide = [_short(x) for x in _leaves(res) if is_float_array(x) and np.asarray(x).dtype != np.float32]
            if wide:
                out.fail("f32_type", name, f"{fn} returned {wide[0]}")


def check_modes(text: str, arrays: dict[str, Any], ref_grads: dict[str, np.ndarray], out: Outcome) -> None:
    """Forward mode and second order on the same network (``mode_mismatch``),
    at the default level and at -O3: ``jvp``'s d_loss against ``<grads, t>``
    for random tangents (the dot-product test: no step size, so kinks do not
    matter: both modes use the same subgradients), ``hvp``'s loss and
    gradients against ``value_and_grad``'s, with finite float arrays of the
    wrt shapes, and the adjoint test between ``jvp``'s d_outputs and ``vjp``.
    At -O3, another call with other values must leave what the first returned
    unchanged (``workspace_alias``) and the hvp must equal the default level's."""
    first = None
    for level in ("modes", "modes O3"):
        got = _check_modes_at(level, text, arrays, ref_grads, out)
        if got is None:
            return
        if first is None:
            first = got
        elif not all(_close(got["hvp"][w], first["hvp"][w]) for w in first["hvp"]):
            out.fail("mode_mismatch", level, "hvp differs from the default level's")


def _check_modes_at(level: str, text: str, arrays: dict[str, Any], ref_grads: dict[str, np.ndarray], out: Outcome) -> dict | None:
    from bpc.compiler.options import CompileOptions
    from bpc.compiler.pipeline import compile_text
    from bpc.runtime.loader import load_source

    has_outputs = bool(json.loads(text).get("outputs"))
    functions = ("forward", "value_and_grad", "jvp", "hvp") + (("vjp",) if has_outputs else ())
    try:
        if level == "modes":
            c = compile_text(text, options=CompileOptions(functions=functions))
        else:
            c = compile_level(text, O3, None, functions=functions)
        m = load_source(c.source, level.replace(" ", "_"))
    except BpcError as e:
        out.fail("compile_error", level, f"with jvp and hvp: {_exc(e)}")
        return None
    except Exception as e:  # noqa: BLE001
        out.fail("compile_error", level, _exc(e))
        return None
    rng = np.random.default_rng(11)
    wrt = list(m.WRT)
    t = {w: rng.standard_normal(np.shape(arrays[w])) for w in wrt}
    u: dict[str, Any] = {}

    def call(arrays: dict[str, Any], t: dict[str, Any], u: dict[str, Any] | None) -> tuple:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            jvp_res = m.jvp(**arrays, tangents=t)
            hvp_res = m.hvp(**arrays, vectors=t)
            if u is None:
                u = {k: rng.standard_normal(np.shape(v)) for k, v in jvp_res[2].items()} if has_outputs else {}
            vjp_res = m.vjp(**arrays, cotangents=u) if has_outputs else None
        return jvp_res, hvp_res, vjp_res, u

    try:
        jvp_res, hvp_res, vjp_res, u = call(arrays, t, None)
    except Exception as e:  # noqa: BLE001
        out.fail("run_error", level, f"jvp/hvp/vjp: {_exc(e, c.source)}")
        return None
    d_loss = float(np.sum(jvp_res[1]))
    _, grads, hv = hvp_res
    check_own_memory(jvp_res, [arrays, t], out, level, "jvp")
    check_own_memory(hvp_res, [arrays, t], out, level, "hvp")
    unused = unused_locals(c.source)
    if unused:
        out.fail("dead_code", level, unused)
    if has_outputs:
        check_own_memory(vjp_res, [arrays, u], out, level, "vjp")
        # the adjoint test: <u, J t> == <u J, t>, J the outputs' Jacobian
        lhs = float(sum(np.sum(u[k] * np.asarray(jvp_res[2][k], np.float64)) for k in u))
        rhs = float(sum(np.sum(np.asarray(vjp_res[1][w], np.float64) * t[w]) for w in wrt))
        size = float(sum(np.sum(np.abs(u[k] * np.asarray(jvp_res[2][k], np.float64))) for k in u))
        if not (abs(lhs - rhs) <= 1e-8 * max(1.0, size)) and math.isfinite(lhs):
            out.fail("mode_mismatch", level, f"<u, jvp d_outputs> {lhs!r}, <vjp, t> {rhs!r}")
    terms = [np.asarray(ref_grads[w], dtype=np.float64) * t[w] for w in wrt]
    dot = float(sum(np.sum(x) for x in terms))
    size = float(sum(np.sum(np.abs(x)) for x in terms))
    if not (abs(d_loss - dot) <= 1e-8 * max(1.0, size)) and math.isfinite(dot):
        out.fail("mode_mismatch", level, f"jvp d_loss {d_loss!r}, <grads, t> {dot!r}")
    for w in wrt:
        if not _close(grads[w], ref_grads[w]):
            out.fail("mode_mismatch", level, f"hvp's gradient of {w} differs from the interpreter's")
        h = np.asarray(hv[w])
        if h.shape != np.shape(arrays[w]) or h.dtype != np.float64:
            out.fail("mode_mismatch", level, f"hvp[{w}] is {_short(hv[w])}, expected float64 of shape {np.shape(arrays[w])}")
    if level != "modes":  # -O3: a later call must not change what this one returned
        kept = _copy_tree((jvp_res, hvp_res, vjp_res))
        other = {k: (np.asarray(v) * 0.5 + 0.25 if np.asarray(v).dtype.kind == "f" else v) for k, v in arrays.items()}
        try:
            call(other, {w: x * -2.0 for w, x in t.items()}, {k: x * 3.0 for k, x in u.items()})
        except Exception:  # noqa: BLE001 - other values may leave a domain; only what is left behind matters
            pass
        if not _same_tree((jvp_res, hvp_res, vjp_res), kept):
            out.fail("workspace_alias", level, "a later call changed what jvp, hvp or vjp returned")
    return {"hvp": hv}


def unused_locals(source: str) -> str:
    """``dead_code``: the functions of a generated module that assign a local
    they never read (docs/generated.md: no unused variables), or ''."""
    bad = []
    for fn in [n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef)]:
        stored = {n.id for n in ast.walk(fn) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        loaded = {n.id for n in ast.walk(fn) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        if stored - loaded:
            bad.append(f"{fn.name}: {', '.join(sorted(stored - loaded))}")
    return "; ".join(bad)


def _leaves(x: Any) -> list[Any]:
    if isinstance(x, dict):
        return [v for k in x for v in _leaves(x[k])]
    if isinstance(x, (tuple, list)):
        return [v for item in x for v in _leaves(item)]
    return [x]


def check_own_memory(res: Any, args: list[Any], out: Outcome, level: str, what: str, owned: list[Any] = ()) -> None:
    """``shared_result``: every array a call returns is writable and its own
    (docs/generated.md): it shares no memory with an argument or with another
    returned array. ``owned``: arrays the caller passed to be written and
    returned (``out=``), exempt from the argument rule but not from sharing
    with the other results."""
    arrays = [a for a in _leaves(res) if isinstance(a, np.ndarray)]
    inputs = [a for a in _leaves(args) if isinstance(a, np.ndarray) and not any(a is o for o in owned)]
    for i, a in enumerate(arrays):
        if not a.flags.writeable:
            out.fail("shared_result", level, f"{what} returned a read-only array {_short(a)}")
        if any(np.shares_memory(a, x) for x in inputs):
            out.fail("shared_result", level, f"{what} returned an array that shares memory with an argument")
        if any(np.shares_memory(a, b) for b in arrays[:i]):
            out.fail("shared_result", level, f"{what} returned two results that share memory")


def check_workspace(m: Any, arrays: dict[str, Any], own_grads: dict[str, Any], out: Outcome, source: str, on_tie: bool) -> None:
    """-O3 (``workspace_alias``): what one call returns is not changed by the
    next call (no result lives in the reused buffers), and ``out=`` arrays
    receive the gradients and come back as the grads dict."""
    level = O3
    ok, first = _run(m.value_and_grad, dict(arrays), out, level, "value_and_grad", source)
    if not ok:
        return
    loss, grads = first
    kept = (np.array(loss, copy=True), {w: np.array(g, copy=True) for w, g in grads.items()})
    f_ok, f_first = _run(m.forward, dict(arrays), out, level, "forward", source)
    f_kept = _copy_tree(f_first) if f_ok else None
    # every float param and input changed (labels kept): a result left in a
    # reused buffer changes with them, whatever it depends on
    other = {k: (np.asarray(v) * 0.5 + 0.25 if np.asarray(v).dtype.kind == "f" else v) for k, v in arrays.items()}
    for fn in (m.value_and_grad, m.forward):  # other values (maybe off a domain: quietly)
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            try:
                fn(**other)
            except Exception:  # noqa: BLE001 - only what it leaves behind matters here
                pass
    if not np.array_equal(loss, kept[0], equal_nan=True) or any(
        not np.array_equal(grads[w], kept[1][w], equal_nan=True) for w in grads
    ):
        out.fail("workspace_alias", level, "a later call changed what value_and_grad returned")
    if f_ok and not _same_tree(f_first, f_kept):
        out.fail("workspace_alias", level, "a later call changed what forward returned")
    bufs = {w: np.full(np.shape(g), np.nan) for w, g in grads.items()}
    ok, res = _run(lambda **a: m.value_and_grad(**a, out=bufs), dict(arrays), out, level, "value_and_grad(out=)", source)
    if not ok:
        return
    if res[1] is not bufs:
        out.fail("workspace_alias", level, "value_and_grad(out=...) did not return the out dict as grads")
        return
    check_own_memory(res, arrays, out, level, "value_and_grad(out=)", owned=list(bufs.values()))
    for w, g in bufs.items():
        if not _close(g, own_grads[w]) and not on_tie:
            out.fail("workspace_alias", level, f"out[{w!r}] holds {_short(g)}, interpreter {_short(own_grads[w])}")


def _copy_tree(x: Any) -> Any:
    if x is None:
        return None
    if isinstance(x, tuple):
        return tuple(_copy_tree(v) for v in x)
    if isinstance(x, dict):
        return {k: _copy_tree(v) for k, v in x.items()}
    return np.array(x, copy=True)


def _same_tree(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    if isinstance(a, tuple):
        return len(a) == len(b) and all(_same_tree(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return set(a) == set(b) and all(_same_tree(a[k], b[k]) for k in a)
    return np.array_equal(np.asarray(a), b, equal_nan=True)


def integer_arrays(spec: dict[str, Any]) -> dict[str, np.ndarray]:
    """Params/inputs whose spec values are all integers, as a user would pass them:
    ``np.array`` of the JSON numbers (int64), filled or reshaped to the declared shape."""
    out = {}
    for d in spec.get("params", []) + spec.get("inputs", []):
        if "value" not in d or not all(isinstance(x, int) for x in d["shape"]):
            continue
        v = np.array(d["value"])
        if v.dtype.kind not in "iu":
            continue
        shape = tuple(d["shape"])
        out[d["name"]] = np.array(np.broadcast_to(v, shape)) if v.ndim == 0 else v.reshape(shape)
    return out


def check_module(
    c: Any,
    level: str,
    arrays: dict[str, Any],
    ref_loss: np.ndarray,
    ref_grads: dict[str, np.ndarray],
    numeric: dict[str, np.ndarray],
    scale: float,
    out: Outcome,
    wrap_module: Callable[[Any], Any] | None = None,
    int_arrays: dict[str, np.ndarray] | None = None,
    on_tie: bool = False,
) -> None:
    """Check the module of one compiled level against the oracle's results.

    ``int_arrays``: integer-valued params/inputs; ``value_and_grad`` is called
    once more with them in place of the float arrays, and must give the same
    float gradients.
    """
    from bpc.runtime import interpreter
    from bpc.runtime.loader import load_source

    fwd = c.forward.graph
    unused = unused_locals(c.source)
    if unused:
        out.fail("dead_code", level, unused)
    try:
        m = load_source(c.source, f"diff_{level}")
        m = wrap_module(m) if wrap_module is not None else m
    except Exception as e:  # noqa: BLE001
        out.fail("run_error", level, f"load: {_exc(e)}")
        return
    try:  # the interpreter on this level's own IR: isolates codegen from passes
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            own_loss, own_grads = interpreter.value_and_grad(
                c.optimized.graph, {k: np.asarray(v, np.float64) for k, v in arrays.items()}
            )
    except Exception as e:  # noqa: BLE001
        out.fail("oracle_error", level, f"interpreter on the optimized IR: {_exc(e)}")
        own_loss, own_grads = ref_loss, ref_grads
    if not _close(own_loss, ref_loss):
        out.fail(
            "pass_mismatch",
            level,
            f"loss of the optimized IR {_short(own_loss)}, joint IR {_short(ref_loss)}",
        )
    for w, ref in ref_grads.items():
        if w in own_grads and not _close(own_grads[w], ref):
            out.fail(
                "pass_mismatch",
                level,
                f"d {fwd.loss}/d {w}: optimized IR {_short(own_grads[w])}, joint IR {_short(ref)}",
            )

    variants = [("", dict(arrays))]
    if int_arrays:
        variants.append((" (integer arrays)", {**arrays, **int_arrays}))
    for label, args in variants:
        ok, res = _run(m.value_and_grad, args, out, level, "value_and_grad" + label, c.source)
        if not ok:
            continue
        try:
            loss, grads = res
        except (TypeError, ValueError):
            out.fail("value_type", level, f"value_and_grad{label} returned {_short(res)}")
            continue
        check_own_memory(res, args, out, level, "value_and_grad" + label)
        loss_shape = tuple(fwd.shape(fwd.loss))
        if not (is_float_array(loss) or isinstance(loss, float)) or np.shape(loss) != loss_shape:
            out.fail(
                "value_type", level, f"loss{label} is {_short(loss)}, expected floating of shape {loss_shape}"
            )
        if not _close(loss, own_loss):
            out.fail(
                "interp_mismatch",
                level,
                f"value_and_grad{label} loss {_short(loss)}, interpreter {_short(own_loss)}",
            )
        wrt = list(c.joint.wrt)
        if (
            not isinstance(grads, dict)
            or set(grads) != set(wrt)
            or tuple(getattr(m, "WRT", wrt)) != tuple(wrt)
        ):
            keys = sorted(grads) if isinstance(grads, dict) else grads
            out.fail("grad_type", level, f"grads{label} keys {keys!r}, WRT {wrt}")
            continue
        for w in wrt:
            g = grads[w]
            shape = tuple(fwd.shape(w))
            what = f"d {fwd.loss}/d {w}{label}"
            if not is_float_array(g) or np.shape(g) != shape:
                out.fail(
                    "grad_type", level, f"{what} is {_short(g)}, expected a float array of shape {shape}"
                )
            if not _close(g, own_grads[w]) and not on_tie:  # (see ROUNDING_DELTA)
                out.fail(
                    "interp_mismatch", level, f"{what}: got {_short(g)}, interpreter {_short(own_grads[w])}"
                )
            if w in numeric:
                msg = fd_compare(g, numeric[w], scale)
                if msg:
                    out.fail("fd_mismatch", level, f"{what}: {msg}")

    if level == O3:
        check_workspace(m, arrays, own_grads, out, c.source, on_tie)
    ok, res = _run(m.forward, dict(arrays), out, level, "forward", c.source)
    if not ok:
        return
    check_own_memory(res, arrays, out, level, "forward")
    f_loss, outputs = res if isinstance(res, tuple) else (res, {})
    if not _close(f_loss, ref_loss):
        out.fail("interp_mismatch", level, f"forward loss {_short(f_loss)}, interpreter {_short(ref_loss)}")
    if fwd.outputs:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            ref_out = interpreter.evaluate(
                fwd, {k: np.asarray(v, np.float64) for k, v in arrays.items()}, list(fwd.outputs)
            )
        for name, ref in ref_out.items():
            got = outputs.get(name) if isinstance(outputs, dict) else None
            if got is None or not _close(got, ref):
                out.fail(
                    "interp_mismatch",
                    level,
                    f"forward output '{name}' {_short(got)}, interpreter {_short(ref)}",
                )


# ------------------------------------------------------------------ shrinking


def _expr_names(tree: ast.AST) -> set[str]:
    """Names an expression reads (not the ops it calls)."""
    called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and id(n) not in called}


def _node_name_refs(node: Any) -> tuple[str, set[str]]:
    if isinstance(node, dict):
        return node["name"], set(node["inputs"])
    stmt = ast.parse(node).body[0]
    return stmt.targets[0].id, _expr_names(stmt.value)  # type: ignore[attr-defined]


def prune(spec: dict[str, Any]) -> dict[str, Any]:
    """Drop nodes, params and inputs the loss and outputs do not need."""
    spec = copy.deepcopy(spec)
    try:
        refs = dict(_node_name_refs(n) for n in spec["nodes"])
    except (SyntaxError, KeyError, AttributeError, IndexError):
        return spec
    need: set[str] = set()
    todo = [spec["loss"]] + list(spec.get("outputs", []))
    while todo:
        n = todo.pop()
        if n in need:
            continue
        need.add(n)
        todo.extend(refs.get(n, ()))
    spec["nodes"] = [n for n in spec["nodes"] if _node_name_refs(n)[0] in need]
    for key in ("params", "inputs"):
        if key in spec:
            spec[key] = [d for d in spec[key] if d["name"] in need]
            if not spec[key]:
                del spec[key]
    if "wrt" in spec:
        spec["wrt"] = [w for w in spec["wrt"] if w in need]
        if not spec["wrt"]:
            del spec["wrt"]
    return spec


def _children(e: ast.AST) -> list[ast.expr]:
    if isinstance(e, ast.BinOp):
        return [e.left, e.right]
    if isinstance(e, ast.UnaryOp):
        return [e.operand]
    if isinstance(e, ast.Compare):
        return [e.left, e.comparators[0]]
    if isinstance(e, ast.Call):
        return list(e.args)
    if isinstance(e, (ast.Subscript, ast.Attribute)):
        return [e.value]
    return []


def _expr_reductions(text: str) -> Iterator[str]:
    """Smaller versions of one expression node: a subexpression replaced by a child,
    or a call's keyword dropped."""
    stmt = ast.parse(text).body[0]
    subs = [n for n in ast.walk(stmt.value) if _children(n) or (isinstance(n, ast.Call) and n.keywords)]  # type: ignore[attr-defined]
    for k, sub in enumerate(subs):
        options: list[Any] = list(_children(sub))
        if isinstance(sub, ast.Call):
            options += [("drop", i) for i in range(len(sub.keywords))]
        for opt in options:
            new = copy.deepcopy(stmt)
            target = [n for n in ast.walk(new.value) if _children(n) or (isinstance(n, ast.Call) and n.keywords)][k]  # type: ignore[attr-defined]
            if isinstance(opt, tuple):
                del target.keywords[opt[1]]  # type: ignore[attr-defined]
            else:
                repl = [n for n in _children(target)][_children(sub).index(opt)]
                parent_fix = _replace(new, target, repl)
                if not parent_fix:
                    continue
            yield ast.unparse(new)


def _replace(root: ast.AST, old: ast.AST, new: ast.AST) -> bool:
    for parent in ast.walk(root):
        for fname, value in ast.iter_fields(parent):
            if value is old:
                setattr(parent, fname, new)
                return True
            if isinstance(value, list):
                for i, item in enumerate(value):
                    if item is old:
                        value[i] = new
                        return True
    return False


def _alias(node: Any) -> tuple[str, str] | None:
    """(name, source) when a node is a plain alias ``name = source``."""
    if isinstance(node, str):
        stmt = ast.parse(node).body[0]
        if isinstance(stmt.value, ast.Name):  # type: ignore[attr-defined]
            return stmt.targets[0].id, stmt.value.id  # type: ignore[attr-defined]
    return None


def _rename(node: Any, old: str, new: str) -> Any:
    if isinstance(node, dict):
        return {**node, "inputs": [new if x == old else x for x in node["inputs"]]}
    stmt = ast.parse(node).body[0]
    for n in ast.walk(stmt.value):  # type: ignore[attr-defined]
        if isinstance(n, ast.Name) and n.id == old:
            n.id = new
    return ast.unparse(stmt)


def _inline_alias(spec: dict[str, Any], i: int, name: str, src: str) -> dict[str, Any]:
    """The spec without alias node ``i`` (``name = src``): users read ``src``."""
    s = copy.deepcopy(spec)
    del s["nodes"][i]
    s["nodes"] = [_rename(n, name, src) for n in s["nodes"]]
    for key in ("wrt", "outputs"):
        if key in s:
            s[key] = list(dict.fromkeys(src if w == name else w for w in s[key]))
    if s["loss"] == name:
        s["loss"] = src
    return s


def _candidates(spec: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Smaller specs, roughly biggest cuts first."""
    for key in ("outputs", "wrt"):
        if key in spec:
            s = copy.deepcopy(spec)
            del s[key]
            yield s
    for i in range(len(spec.get("wrt", []))):
        if len(spec["wrt"]) > 1:
            s = copy.deepcopy(spec)
            del s["wrt"][i]
            yield s
    for i, node in enumerate(spec["nodes"]):
        alias = _alias(node)
        if alias is not None:
            yield _inline_alias(spec, i, *alias)
    for i in reversed(range(len(spec["nodes"]))):
        node = spec["nodes"][i]
        if isinstance(node, dict):
            for inp in dict.fromkeys(node["inputs"]):  # the node becomes an alias of an input
                s = copy.deepcopy(spec)
                s["nodes"][i] = f"{node['name']} = {inp}"
                yield s
            if node.get("attrs"):
                s = copy.deepcopy(spec)
                del s["nodes"][i]["attrs"]
                yield s
            continue
        for text in _expr_reductions(node):
            s = copy.deepcopy(spec)
            s["nodes"][i] = text
            yield s
    for key in ("params", "inputs"):
        for i, d in enumerate(spec.get(key, [])):
            flat = np.array(d.get("value", 0), dtype=object).reshape(-1).tolist()
            for v in dict.fromkeys([flat[0], 1, 0.5]):
                if d.get("value") != v:
                    s = copy.deepcopy(spec)
                    s[key][i]["value"] = v
                    s[key][i].pop("classes", None) if "classes" not in d else None
                    yield s


def shrink(
    spec: dict[str, Any], still_fails: Callable[[dict[str, Any]], bool], budget: int = 200
) -> dict[str, Any]:
    """Greedy minimization: keep taking the first smaller spec that still fails."""
    best = prune(spec)
    if not still_fails(best):
        best = spec
    tries = 0
    improved = True
    while improved and tries < budget:
        improved = False
        for cand in _candidates(best):
            cand = prune(cand)
            if cand == best:
                continue
            tries += 1
            if tries > budget:
                break
            try:
                failing = still_fails(cand)
            except Exception:  # noqa: BLE001 - a broken candidate is just not smaller
                failing = False
            if failing:
                best = cand
                improved = True
                break
    return best


def signature(f: Failure) -> str:
    """A failure class: the kind and the detail with names, numbers and array
    contents blanked (so one bug in two networks has one signature)."""
    d = re.sub(r"\[[^\]]*\]", "[..]", f.detail)  # array contents, generated-code lines
    d = re.sub(r"\bd \w+/d \w+", "d N/d N", d)
    d = re.sub(r"\b([pxv]\d+|loss)\b", "N", d)  # generated names
    d = re.sub(r"-?\d+(\.\d*)?(e-?\d+)?", "#", d)
    return f"{f.kind}: {d[:200]}"


def failure_predicate(outcome: Outcome, sig: str | None = None) -> Callable[[dict[str, Any]], bool]:
    """'Still fails the same way': shows failure signature ``sig`` (default: the
    first failure's), at the levels the original failed at."""
    sig = sig or signature(outcome.failures[0])
    lvls = {f.level for f in outcome.failures if signature(f) == sig and f.level != "-"}
    fd = sig.startswith(("fd_mismatch", "rule_mismatch"))

    def still_fails(s: dict[str, Any]) -> bool:
        o = check_spec(s, only_levels=lvls or None, fd=fd)
        return any(signature(f) == sig for f in o.failures)

    return still_fails


def report(spec: dict[str, Any], outcome: Outcome, limit: int = 12) -> str:
    """A failure report: the spec (one line of JSON) and what went wrong."""
    lines = [json.dumps(spec)]
    for f in outcome.failures[:limit]:
        lines.append(f"  [{f.kind} @ {f.level}] {f.detail}")
    if len(outcome.failures) > limit:
        lines.append(f"  ... {len(outcome.failures) - limit} more")
    return "\n".join(lines)
