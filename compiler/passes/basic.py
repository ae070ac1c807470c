"""The basic passes: dead code, common subexpressions, constants, algebra."""

from __future__ import annotations

import contextlib
import math
from typing import Iterator

import numpy as np

from ..errors import ShapeError
from ..ir import BACKWARD, Graph
from ..ops.registry import broadcast, get_op, is_float, is_static

SOURCES = {"input", "param"}
ELEMENTWISE_BINARY = {"add", "sub", "mul", "div"}


def dce(g: Graph, inplace: bool = False) -> Graph:
    """Remove nodes that no root (loss, output, gradient) depends on.

    Inputs and params stay: they are the generated functions' signature.
    """
    g = g if inplace else g.copy()
    live = g.ancestors(g.roots())
    for n in list(g.nx.nodes):
        if n not in live and g.op(n) not in SOURCES:
            g.remove(n)
    return g


class _Roots:
    """The graph's ``outputs`` and ``grads`` maps, held aside while a pass rewrites.

    ``Graph.replace_uses`` and ``Graph.rename`` retarget those maps by scanning
    them, which made a pass quadratic on deep networks (two gradients per
    layer). While they are held here the graph's maps are empty, and ``move``
    follows each replacement through an index (node -> the entries naming it)
    in constant time; the maps come back, retargeted, when the pass ends.
    """

    def __init__(self, g: Graph):
        self.g = g
        self.maps = (g.outputs, g.grads)
        self.at: dict[str, list[tuple[int, str]]] = {}
        for i, m in enumerate(self.maps):
            for k, v in m.items():
                self.at.setdefault(v, []).append((i, k))
        g.outputs, g.grads = {}, {}

    def move(self, old: str, new: str) -> None:
        """What ``Graph._retarget(old, new)`` does to the held maps."""
        if old != new and old in self.at:
            self.at.setdefault(new, []).extend(self.at.pop(old))

    def restore(self) -> None:
        maps = tuple(dict(m) for m in self.maps)
        for node, entries in self.at.items():
            for i, k in entries:
                maps[i][k] = node
        self.g.outputs, self.g.grads = maps


@contextlib.contextmanager
def _held_roots(g: Graph) -> Iterator[_Roots]:
    roots = _Roots(g)
    try:
        yield roots
    finally:
        roots.restore()


def _key(g: Graph, n: str) -> tuple:
    d = g.data(n)
    attrs = tuple(sorted((k, _hashable(v)) for k, v in d["attrs"].items()))
    return (d["op"], g.args(n), attrs, d["shape"])


def _hashable(v):
    if isinstance(v, list):
        return tuple(_hashable(x) for x in v)
    return v


def cse(g: Graph, inplace: bool = False) -> Graph:
    """Merge nodes that compute the same op on the same operands."""
    g = g if inplace else g.copy()
    with _held_roots(g) as roots:
        _cse(g, roots)
    return g


def _cse(g: Graph, roots: _Roots) -> None:
    seen: dict[tuple, str] = {}
    for n in g.topo():
        if g.op(n) in SOURCES:
            continue
        k = _key(g, n)
        if k in seen:
            keep = seen[k]
            # Keep the user's name when only the duplicate has one.
            g.replace_uses(n, keep)
            roots.move(n, keep)
            if g.data(n)["named"] and not g.data(keep)["named"] and g.data(n)["phase"] == g.data(keep)["phase"]:
                g.remove(n)
                g.rename(keep, n)
                roots.move(keep, n)
                seen[k] = n
                g.data(n)["named"] = True
            else:
                g.remove(n)
        else:
            seen[k] = n


def _scalar_const(g: Graph, n: str) -> float | None:
    d = g.data(n)
    if d["op"] == "const":
        return d["attrs"]["value"]
    return None


def fold_constants(g: Graph, inplace: bool = False) -> Graph:
    """Evaluate ops whose operands are all scalar constants."""
    g = g if inplace else g.copy()
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
        if d["shape"] != () and opdef.category not in ("elementwise", "comparison"):
            continue
        if any(g.shape(a) != () for a in args) and opdef.category not in ("elementwise", "comparison"):
            continue
        vals = [np.float64(g.attrs(a)["value"]) for a in args]
        with np.errstate(all="ignore"):
            v = float(np.asarray(opdef.impl(*vals, **d["attrs"])).reshape(-1)[0])
        if not math.isfinite(v):
            continue
        d["op"], d["attrs"] = "const", {"value": v, "shape": d["shape"]}
        g.set_args(n, [])
    return g


def simplify(g: Graph, inplace: bool = False) -> Graph:
    """Algebraic identities, each keeping values exact.

    identity(x) -> x; x*1, 1*x, x/1, x+0, 0+x, x-0 -> x (when the result has
    x's shape); -(-x) -> x; (x.T).T -> x; reshape/broadcast/sum_to to the same
    shape -> x; a ones/zeros/full array used where a scalar broadcasts the
    same -> that scalar (no materialized arrays).
    """
    g = g if inplace else g.copy()
    with _held_roots(g) as roots:
        _simplify(g, roots)
    return g


def _simplify(g: Graph, roots: _Roots) -> None:
    for n in g.topo():
        if n not in g:
            continue
        d = g.data(n)
        op, args, shape = d["op"], g.args(n), d["shape"]
        repl = None
        if op == "identity":
            repl = args[0]
        elif op in ("reshape", "broadcast_to", "sum_to", "broadcast_like") and g.shape(args[0]) == shape:
            repl = args[0]
        elif op in ("reshape", "broadcast_to", "broadcast_like") and g.op(args[0]) == "const" and is_static(shape):
            # A filled constant stays a filled constant in any shape.
            d["op"], d["attrs"] = "const", {"value": g.attrs(args[0])["value"], "shape": shape}
            g.set_args(n, [])
        elif op == "neg" and g.op(args[0]) == "neg":
            repl = g.args(args[0])[0]
        elif op in REDUCTIONS and _reduces_one_element(g, n):
            # sum/mean/max/min of one element: just a reshape
            d["op"], d["attrs"] = "reshape", {"shape": shape}
            if g.shape(args[0]) == shape:
                repl = args[0]
        elif op == "transpose" and g.op(args[0]) == "transpose":
            inner = args[0]
            if d["attrs"]["axes"] is None and g.attrs(inner)["axes"] is None:
                repl = g.args(inner)[0]
        elif op in ELEMENTWISE_BINARY:
            a, b = args
            ca, cb = _scalar_const(g, a), _scalar_const(g, b)
            if op == "mul" and cb == 1.0 and g.shape(a) == shape:
                repl = a
            elif op == "mul" and ca == 1.0 and g.shape(b) == shape:
                repl = b
            elif op == "div" and cb == 1.0 and g.shape(a) == shape:
                repl = a
            elif op in ("add", "sub") and cb == 0.0 and g.shape(a) == shape:
                repl = a
            elif op == "add" and ca == 0.0 and g.shape(b) == shape:
                repl = b
            elif op == "mul" and -1.0 in (ca, cb) and _same_type(g, b if ca == -1.0 else a, n):
                d["op"], d["attrs"] = "neg", {}  # -1 * x -> -x
                g.set_args(n, [b if ca == -1.0 else a])
            elif op == "mul" and (ca is not None or cb is not None) and g.shape(a if cb is None else b) == ():
                _reassociate(g, n)
            else:
                _scalarize_fills(g, n)
                _drop_broadcasts(g, n)
        if repl is not None and g.dtype(repl) != d["dtype"]:
            # 1.0 * mask is a float; the mask alone is a bool: cast instead.
            if g.shape(repl) == shape and not is_float(g.dtype(repl)) and is_float(d["dtype"]):
                d["op"], d["attrs"] = "cast", {"dtype": d["dtype"]}
                g.set_args(n, [repl])
            repl = None
        if repl is not None:
            _replace(g, n, repl, roots)


def _same_type(g: Graph, a: str, n: str) -> bool:
    """``a`` can stand for ``n``: same shape and dtype."""
    return g.shape(a) == g.shape(n) and g.dtype(a) == g.dtype(n)


def _scalarize_fills(g: Graph, n: str) -> None:
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


BROADCASTS = {"broadcast_to", "broadcast_like"}
REDUCTIONS = {"sum", "mean", "max", "min"}


def _reduces_one_element(g: Graph, n: str) -> bool:
    x = g.args(n)[0]
    shape = g.shape(x)
    axis = g.attrs(n)["axis"]
    axes = range(len(shape)) if axis is None else ([axis] if isinstance(axis, int) else axis)
    return all(shape[a] == 1 for a in axes)


def _reassociate(g: Graph, n: str) -> None:
    """c1 * (c2 * x) -> (c1 * c2) * x for scalar constants (one multiply less)."""
    a, b = g.args(n)
    c, other = (a, b) if g.op(a) == "const" else (b, a)
    if g.op(other) != "mul" or g.nx.out_degree(other) != 1 or g.data(other)["named"]:
        return
    oa, ob = g.args(other)
    if g.op(oa) == "const" and g.shape(oa) == ():
        inner_c, x = oa, ob
    elif g.op(ob) == "const" and g.shape(ob) == ():
        inner_c, x = ob, oa
    else:
        return
    if g.shape(x) != g.shape(n):
        return
    value = g.attrs(c)["value"] * g.attrs(inner_c)["value"]
    with g.context_of(n):
        k = g.add("const", [], {"value": value, "shape": ()}, hint="c")
    g.set_args(n, [k, x])


def _drop_broadcasts(g: Graph, n: str) -> None:
    """An explicit broadcast feeding an elementwise op that broadcasts anyway."""
    args = list(g.args(n))
    shape = g.shape(n)
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


def _replace(g: Graph, n: str, repl: str, roots: _Roots) -> None:
    """Replace ``n`` by ``repl``. An adjoint's readable name (``g_x``) moves
    to ``repl`` when that is an unnamed adjoint temporary."""
    g.replace_uses(n, repl)
    roots.move(n, repl)
    dn, dr = g.data(n), g.data(repl)
    g.remove(n)
    if dn["named"] and not dr["named"] and dn["phase"] == dr["phase"] == BACKWARD:
        g.rename(repl, n)
        roots.move(repl, n)
        g.data(n)["named"] = True
