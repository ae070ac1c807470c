"""The basic passes: dead code, common subexpressions, constants, algebra."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import ShapeError
from ..ir import BACKWARD, Graph
from ..ops.registry import ELEMENTWISE, broadcast, get_op, is_float, is_static

SOURCES = {"input", "param"}


def dce(g: Graph) -> bool:
    """Remove nodes that no result (loss, output, gradient) depends on.

    Inputs and params stay: they are the generated functions' signature.
    """
    live = g.ancestors(g.roots())
    dead = [n for n in g.nx.nodes if n not in live and g.op(n) not in SOURCES]
    for n in dead:
        g.remove(n)
    return bool(dead)


def _key(g: Graph, n: str) -> tuple:
    d = g.data(n)
    attrs = tuple(sorted((k, _hashable(v)) for k, v in d["attrs"].items()))
    return (d["op"], g.args(n), attrs, d["shape"])


def _hashable(v):
    if isinstance(v, list):
        return tuple(_hashable(x) for x in v)
    return v


def cse(g: Graph) -> bool:
    """Merge nodes that compute the same op on the same operands."""
    seen: dict[tuple, str] = {}
    changed = False
    for n in g.topo():
        if g.op(n) in SOURCES:
            continue
        k = _key(g, n)
        if k in seen:
            keep = seen[k]
            # Keep the user's name when only the duplicate has one.
            g.replace_uses(n, keep)
            if g.data(n)["phase"] == g.data(keep)["phase"]:
                _take_name(g, n, keep)
            g.remove(n)
            g.merged(n, keep)
            changed = True
        else:
            seen[k] = n
    return changed


def _take_name(g: Graph, n: str, keep: str) -> None:
    """``keep`` replaces ``n``: it is printed by ``n``'s name when only ``n`` has one."""
    dn, dk = g.data(n), g.data(keep)
    if dn["named"] and not dk["named"]:
        dk["hint"], dk["named"] = dn["hint"], True


def _scalar_const(g: Graph, n: str) -> float | None:
    d = g.data(n)
    if d["op"] == "const":
        return d["attrs"]["value"]
    return None


def fold_constants(g: Graph) -> bool:
    """Evaluate ops whose operands are all scalar constants."""
    changed = False
    for n in g.topo():
        d = g.data(n)
        args = g.args(n)
        if d["op"] in SOURCES or d["op"] == "const" or not args or not is_static(d["shape"]):
            continue
        if not all(g.op(a) == "const" for a in args) or not is_float(d["dtype"]):
            continue  # (a folded comparison would turn a bool into a float const)
        opdef = get_op(d["op"])
        # Scalars fold through any op; filled arrays only through elementwise
        # ops (a fill of the result's shape stays a fill).
        if not opdef.has(ELEMENTWISE) and (d["shape"] != () or any(g.shape(a) != () for a in args)):
            continue
        vals = [np.float64(g.attrs(a)["value"]) for a in args]
        with np.errstate(all="ignore"):
            v = float(np.asarray(opdef.impl(*vals, **d["attrs"])).reshape(-1)[0])
        if not math.isfinite(v):
            continue
        d["op"], d["attrs"] = "const", {"value": v, "shape": d["shape"]}
        g.set_args(n, [])
        changed = True
    return changed


@dataclass(frozen=True)
class Rewrite:
    """One algebraic identity. ``apply(g, n)`` returns a node that can stand
    for ``n`` (``n`` is then replaced), True when it rewrote ``n`` in place,
    or None when it does not apply."""

    name: str
    ops: frozenset[str]
    apply: Callable[[Graph, str], "str | bool | None"]


def _identity(g: Graph, n: str):
    return g.args(n)[0]


def _same_shape(g: Graph, n: str):
    x = g.args(n)[0]
    return x if g.shape(x) == g.shape(n) else None


def _refill(g: Graph, n: str):
    x = g.args(n)[0]
    if g.op(x) == "const" and is_static(g.shape(n)):
        d = g.data(n)
        d["op"], d["attrs"] = "const", {"value": g.attrs(x)["value"], "shape": d["shape"]}
        g.set_args(n, [])
        return True
    return None


def _double_neg(g: Graph, n: str):
    x = g.args(n)[0]
    return g.args(x)[0] if g.op(x) == "neg" else None


def _one_element(g: Graph, n: str):
    if not _reduces_one_element(g, n):
        return None
    d = g.data(n)
    d["op"], d["attrs"] = "reshape", {"shape": d["shape"]}
    x = g.args(n)[0]
    return x if g.shape(x) == d["shape"] else True


def _double_transpose(g: Graph, n: str):
    x = g.args(n)[0]
    if g.op(x) == "transpose" and g.attrs(n)["axes"] is None and g.attrs(x)["axes"] is None:
        return g.args(x)[0]
    return None


def _unit(g: Graph, n: str):
    """x*1, 1*x, x/1, x+0, 0+x, x-0 -> x (when the result has x's shape)."""
    op, (a, b), shape = g.op(n), g.args(n), g.shape(n)
    ca, cb = _scalar_const(g, a), _scalar_const(g, b)
    if cb == (0.0 if op in ("add", "sub") else 1.0) and g.shape(a) == shape:
        return a
    if ca == (0.0 if op == "add" else 1.0) and op in ("add", "mul") and g.shape(b) == shape:
        return b
    return None


def _neg_one(g: Graph, n: str):
    a, b = g.args(n)
    ca, cb = _scalar_const(g, a), _scalar_const(g, b)
    if -1.0 in (ca, cb):
        x = b if ca == -1.0 else a
        if _same_type(g, x, n):
            d = g.data(n)
            d["op"], d["attrs"] = "neg", {}
            g.set_args(n, [x])
            return True
    return None


def _fills_and_broadcasts(g: Graph, n: str):
    return (_scalarize_fills(g, n) | _drop_broadcasts(g, n)) or None


REWRITES: list[Rewrite] = [
    Rewrite("identity", frozenset({"identity"}), _identity),
    Rewrite("reshape to the same shape", frozenset({"reshape", "broadcast_to", "sum_to", "broadcast_like"}), _same_shape),
    Rewrite("reshape of a fill", frozenset({"reshape", "broadcast_to", "broadcast_like"}), _refill),
    Rewrite("double negation", frozenset({"neg"}), _double_neg),
    Rewrite("reduction of one element", frozenset({"sum", "mean", "max", "min"}), _one_element),
    Rewrite("double transpose", frozenset({"transpose"}), _double_transpose),
    Rewrite("unit operand", frozenset({"add", "sub", "mul", "div"}), _unit),
    Rewrite("times -1", frozenset({"mul"}), _neg_one),
    Rewrite("scalar constants together", frozenset({"mul"}), lambda g, n: _reassociate(g, n) or None),
    Rewrite("fills and broadcasts", frozenset({"add", "sub", "mul", "div"}), _fills_and_broadcasts),
]
_BY_OP: dict[str, list[Rewrite]] = {}
for _r in REWRITES:
    for _op in _r.ops:
        _BY_OP.setdefault(_op, []).append(_r)


def simplify(g: Graph, counts: Counter | None = None) -> bool:
    """Apply the first matching rewrite of :data:`REWRITES` to each node.

    Every rewrite keeps values exact (and dtypes: a float standing for a
    mask becomes a ``cast``). ``counts`` receives how often each applied.
    """
    changed = False
    for n in g.topo():
        if n not in g:
            continue
        for rw in _BY_OP.get(g.op(n), ()):
            out = rw.apply(g, n)
            if out is None:
                continue
            if isinstance(out, str):
                _replace_or_cast(g, n, out)
            changed = True
            if counts is not None:
                counts[rw.name] += 1
            break
    return changed


def _replace_or_cast(g: Graph, n: str, repl: str) -> None:
    d = g.data(n)
    if g.dtype(repl) == d["dtype"]:
        _replace(g, n, repl)
    elif g.shape(repl) == d["shape"] and not is_float(g.dtype(repl)) and is_float(d["dtype"]):
        # 1.0 * mask is a float; the mask alone is a bool: cast instead.
        d["op"], d["attrs"] = "cast", {"dtype": d["dtype"]}
        g.set_args(n, [repl])
    else:  # (cannot happen for the rewrites above; stay exact regardless)
        return


def _same_type(g: Graph, a: str, n: str) -> bool:
    """``a`` can stand for ``n``: same shape and dtype."""
    return g.shape(a) == g.shape(n) and g.dtype(a) == g.dtype(n)


def _scalarize_fills(g: Graph, n: str) -> bool:
    """A filled constant operand whose shape the result already has -> scalar."""
    args = list(g.args(n))
    shape = g.shape(n)
    changed = False
    for i, a in enumerate(args):
        other = args[1 - i]
        if g.op(a) == "const" and g.shape(a) != () and g.shape(other) == shape:
            value = g.attrs(a)["value"]
            with g.context_of(a):
                args[i] = g.add("const", [], {"value": value, "shape": ()}, hint="c")
            changed = True
    if changed:
        g.set_args(n, args)
    return changed


BROADCASTS = {"broadcast_to", "broadcast_like"}
REDUCTIONS = {"sum", "mean", "max", "min"}


def _reduces_one_element(g: Graph, n: str) -> bool:
    x = g.args(n)[0]
    shape = g.shape(x)
    axis = g.attrs(n)["axis"]
    axes = range(len(shape)) if axis is None else ([axis] if isinstance(axis, int) else axis)
    return all(shape[a] == 1 for a in axes)


def _reassociate(g: Graph, n: str) -> bool:
    """c1 * (c2 * x) -> (c1 * c2) * x for scalar constants (one multiply less)."""
    a, b = g.args(n)
    c, other = (a, b) if g.op(a) == "const" else (b, a)
    if g.op(c) != "const" or g.shape(c) != ():
        return False
    if g.op(other) != "mul" or g.nx.out_degree(other) != 1 or g.data(other)["named"]:
        return False
    oa, ob = g.args(other)
    if g.op(oa) == "const" and g.shape(oa) == ():
        inner_c, x = oa, ob
    elif g.op(ob) == "const" and g.shape(ob) == ():
        inner_c, x = ob, oa
    else:
        return False
    if g.shape(x) != g.shape(n):
        return False
    value = g.attrs(c)["value"] * g.attrs(inner_c)["value"]
    with g.context_of(n):
        k = g.add("const", [], {"value": value, "shape": ()}, hint="c")
    g.set_args(n, [k, x])
    return True


def _drop_broadcasts(g: Graph, n: str) -> bool:
    """An explicit broadcast feeding an elementwise op that broadcasts anyway."""
    args = list(g.args(n))
    shape = g.shape(n)
    changed = False
    for i, a in enumerate(args):
        if g.op(a) in BROADCASTS:
            inner = g.args(a)[0]
            try:
                same = broadcast(g.shape(inner), g.shape(args[1 - i])) == shape
            except ShapeError:
                same = False
            if same:
                args[i] = inner
                g.set_args(n, args)
                changed = True
    return changed


def _replace(g: Graph, n: str, repl: str) -> None:
    """Replace ``n`` by ``repl``. An adjoint's readable name (``g_x``) moves
    to ``repl`` when that is an unnamed adjoint temporary."""
    g.replace_uses(n, repl)
    if g.data(n)["phase"] == g.data(repl)["phase"] == BACKWARD:
        _take_name(g, n, repl)
    g.remove(n)
