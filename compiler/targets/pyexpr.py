"""Python expressions as syntax trees, for emission templates.

Generated code is built from :mod:`ast` nodes and printed by ``ast.unparse``,
which parenthesizes by Python's precedence rules: a missing or misplaced
parenthesis cannot happen, however templates nest. :class:`E` wraps one
expression node; operators and calls on it build bigger trees::

    x = E.name("x", shape=(3,))
    NP.maximum(x, 0.0)            # np.maximum(x, 0.0)
    (x > 0.0) * 2.0               # (x > 0.0) * 2.0
    x.reshape((3, 1))             # x.reshape((3, 1))

Only numbers, tuples of numbers, ``None``/``True``/``False`` and other ``E``
values can become operands: there is no way to put arbitrary text into an
expression. Negative numbers are unary minus of a positive literal (an
``ast.Constant(-2.0)`` would print as ``-2.0 ** 2``), and infinities and NaN
are spelled ``np.inf``/``np.nan``.
"""

from __future__ import annotations

import ast
import math
from typing import Any

_BINOPS = {
    "+": ast.Add,
    "-": ast.Sub,
    "*": ast.Mult,
    "/": ast.Div,
    "@": ast.MatMult,
    "**": ast.Pow,
}
_CMPOPS = {">": ast.Gt, ">=": ast.GtE, "<": ast.Lt, "<=": ast.LtE, "==": ast.Eq, "!=": ast.NotEq}


class E:
    """One expression (an ``ast.expr``) with the static shape of its value."""

    __slots__ = ("node", "shape", "literal")

    def __init__(self, node: ast.expr, shape: tuple = (), literal: bool = False):
        self.node = node
        self.shape = tuple(shape)
        self.literal = literal  # a number: no methods can be called on it

    # ------------------------------------------------------------ leaves

    @staticmethod
    def name(n: str, shape: tuple = ()) -> "E":
        if not n.isidentifier():
            raise AssertionError(f"not an identifier: {n!r}")
        return E(ast.Name(n, ast.Load()), shape)

    @staticmethod
    def lit(v: Any) -> "E":
        return lit(v)

    # ------------------------------------------------------------ operators

    def binop(self, op: str, other: Any) -> "E":
        return E(ast.BinOp(self.node, _BINOPS[op](), lit(other).node))

    def rbinop(self, op: str, other: Any) -> "E":
        return E(ast.BinOp(lit(other).node, _BINOPS[op](), self.node))

    def cmp(self, op: str, other: Any) -> "E":
        return E(ast.Compare(self.node, [_CMPOPS[op]()], [lit(other).node]))

    def __add__(self, o): return self.binop("+", o)
    def __radd__(self, o): return self.rbinop("+", o)
    def __sub__(self, o): return self.binop("-", o)
    def __rsub__(self, o): return self.rbinop("-", o)
    def __mul__(self, o): return self.binop("*", o)
    def __rmul__(self, o): return self.rbinop("*", o)
    def __truediv__(self, o): return self.binop("/", o)
    def __rtruediv__(self, o): return self.rbinop("/", o)
    def __matmul__(self, o): return self.binop("@", o)
    def __pow__(self, o): return self.binop("**", o)
    def __neg__(self): return E(ast.UnaryOp(ast.USub(), self.node))
    def __gt__(self, o): return self.cmp(">", o)
    def __ge__(self, o): return self.cmp(">=", o)
    def __lt__(self, o): return self.cmp("<", o)
    def __le__(self, o): return self.cmp("<=", o)

    # ------------------------------------------------------------ attributes, calls

    def attr(self, name: str) -> "E":
        return E(ast.Attribute(self.node, name, ast.Load()))

    def __getattr__(self, name: str) -> "E":
        if name.startswith("_"):
            raise AttributeError(name)
        return self.attr(name)

    def __call__(self, *args: Any, **kw: Any) -> "E":
        return E(
            ast.Call(
                self.node,
                [lit(a).node for a in args],
                [ast.keyword(k, lit(v).node) for k, v in kw.items()],
            )
        )

    def __getitem__(self, index: Any) -> "E":
        return E(ast.Subscript(self.node, _index(index), ast.Load()))

    # ------------------------------------------------------------ output

    def source(self) -> str:
        return ast.unparse(ast.fix_missing_locations(self.node))

    def __repr__(self) -> str:
        return f"E({self.source()})"


NP = E.name("np")


def lit(v: Any) -> E:
    """An operand: an ``E`` as it is, or a literal for a number/tuple/None/bool."""
    if isinstance(v, E):
        return v
    if v is None or isinstance(v, bool):
        return E(ast.Constant(v), literal=True)
    if isinstance(v, int):
        return E(ast.Constant(v), literal=True) if v >= 0 else -E(ast.Constant(-v))
    if isinstance(v, float):
        if math.isnan(v):
            return NP.nan
        if math.isinf(v):
            return NP.inf if v > 0 else -NP.inf
        if v < 0 or (v == 0.0 and math.copysign(1.0, v) < 0):
            out = -E(ast.Constant(-v))
            out.literal = True
            return out
        return E(ast.Constant(v), literal=True)
    if isinstance(v, tuple):
        return E(ast.Tuple([lit(x).node for x in v], ast.Load()), literal=True)
    if isinstance(v, list):
        return E(ast.List([lit(x).node for x in v], ast.Load()), literal=True)
    raise TypeError(f"cannot emit {type(v).__name__} {v!r} as an operand")


def seq(items: list) -> E:
    """A list display ``[a, b, ...]`` of operands."""
    return E(ast.List([lit(x).node for x in items], ast.Load()))


class Slice:
    """``start:stop`` in an index (either may be None)."""

    __slots__ = ("start", "stop")

    def __init__(self, start: int | None = None, stop: int | None = None):
        self.start, self.stop = start, stop


def _index(index: Any) -> ast.expr:
    if isinstance(index, tuple):
        if len(index) == 1:
            return _index_item(index[0])
        return ast.Tuple([_index_item(i) for i in index], ast.Load())
    return _index_item(index)


def _index_item(item: Any) -> ast.expr:
    if isinstance(item, Slice):
        return ast.Slice(
            None if item.start is None else lit(item.start).node,
            None if item.stop is None else lit(item.stop).node,
        )
    return lit(item).node


def stmt_source(node: ast.stmt) -> str:
    return ast.unparse(ast.fix_missing_locations(node))


def assign(target: str, value: E) -> str:
    """``target = value`` as source."""
    return stmt_source(ast.Assign([E.name(target).node], value.node))


def augassign(target: str, op: str, value: E) -> str:
    """``target += value`` (or another operator) as source."""
    node = ast.AugAssign(ast.Name(target, ast.Store()), _BINOPS[op](), value.node)
    return stmt_source(node)
