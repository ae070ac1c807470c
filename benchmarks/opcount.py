"""Count the NumPy operations one call of a Python function performs.

``sys.setprofile`` cannot do it (ufuncs and array methods are not
PyCFunctions it reports one by one), so the function is re-compiled from its
source with every expression that can touch NumPy wrapped in a probe:

- a call ``f(...)`` counts 1 when ``f`` is NumPy's (a function or ufunc of
  the ``numpy`` module, ``np.linalg`` etc., or a method bound to an ndarray
  or NumPy scalar: ``a.dot``, ``d.sum``, ``r.reshape``, ``r.item``);
- an operator (``a @ b``, ``-z``, ``h > 0``, ``a + b``) counts 1 when its
  result is an ndarray or NumPy scalar (``2.0 / n`` on Python numbers does
  not count);
- an augmented assignment (``z += b``) counts 1 when its target is an
  ndarray afterwards;
- an attribute that makes a new array (``h.T``) counts 1; ``a.shape`` and
  other non-array attributes do not;
- a subscript of an ndarray (``d[0]``, ``e[rows, idx]``) counts 1; a dict
  or list subscript does not.

What is not counted: Python-level work (argument binding, building the
returned dict, tuple unpacking), and NumPy work done inside a called Python
function that is not NumPy's (only the function given is rewritten; call
``count_ops`` on helpers separately). Each count is one trip through NumPy's
C dispatch: the thing that costs ~0.4-1 µs on tiny arrays.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections import Counter

import numpy as np

_ARRAYS = (np.ndarray, np.generic)


class _Probe:
    def __init__(self):
        self.counts = Counter()

    def call(self, f):
        if isinstance(f, np.ufunc) or _is_numpy_callable(f):
            self.counts["call"] += 1
        return f

    def op(self, value):
        if isinstance(value, _ARRAYS):
            self.counts["operator"] += 1
        return value

    def attr(self, value):
        if isinstance(value, np.ndarray):
            self.counts["attribute"] += 1
        return value

    def sub(self, value):
        if isinstance(value, np.ndarray):
            self.counts["subscript"] += 1
        return value

    def aug(self, value):
        if isinstance(value, _ARRAYS):
            self.counts["in-place operator"] += 1


def _is_numpy_callable(f) -> bool:
    owner = getattr(f, "__self__", None)
    if isinstance(owner, _ARRAYS):
        return True  # a method of an array
    mod = getattr(f, "__module__", None) or ""
    return mod == "numpy" or mod.startswith("numpy.")


class _Rewrite(ast.NodeTransformer):
    P = "__bpc_probe__"

    def _wrap(self, kind, node):
        return ast.copy_location(
            ast.Call(ast.Attribute(ast.Name(self.P, ast.Load()), kind, ast.Load()), [node], []), node
        )

    def visit_Call(self, node):
        self.generic_visit(node)
        node.func = self._wrap("call", node.func)
        return node

    def visit_BinOp(self, node):
        self.generic_visit(node)
        return self._wrap("op", node)

    def visit_UnaryOp(self, node):
        self.generic_visit(node)
        return node if isinstance(node.op, ast.Not) else self._wrap("op", node)

    def visit_Compare(self, node):
        self.generic_visit(node)
        return self._wrap("op", node)

    def visit_Attribute(self, node):
        self.generic_visit(node)
        if isinstance(node.ctx, ast.Load):
            return self._wrap("attr", node)
        return node

    def visit_Subscript(self, node):
        self.generic_visit(node)
        if isinstance(node.ctx, ast.Load):
            return self._wrap("sub", node)
        return node

    def visit_AugAssign(self, node):
        self.generic_visit(node)
        target = ast.parse(ast.unparse(node.target), mode="eval").body  # the same target, loaded
        probe = ast.Expr(self._wrap("aug", target))
        return [node, ast.copy_location(probe, node)]

    def visit_FunctionDef(self, node):
        if getattr(self, "_seen", False):
            return node  # nested functions: not rewritten
        self._seen = True
        node.decorator_list = []
        self.generic_visit(node)
        return node


def counting_version(fn=None, *, source: str | None = None, name: str | None = None, globals_: dict | None = None):
    """Return (probe, rewritten function) for ``fn`` (or ``name`` in ``source``)."""
    if fn is not None:
        source = textwrap.dedent(inspect.getsource(fn))
        name = fn.__name__
        globals_ = fn.__globals__
    tree = ast.parse(source)
    # the last definition of that name at module level: the one Python keeps
    node = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name][-1]
    node = _Rewrite().visit(node)
    mod = ast.fix_missing_locations(ast.Module([node], []))
    probe = _Probe()
    # A new namespace that sees the original globals (np, constants, helpers).
    g = dict(globals_ or {})
    g[_Rewrite.P] = probe
    exec(compile(mod, f"<count {name}>", "exec"), g)  # noqa: S102 - our own rewrite
    return probe, g[name]


def count_ops(fn=None, args=(), kwargs=None, *, source=None, name=None, globals_=None) -> Counter:
    """NumPy operations per call: a Counter by kind, with ``total``."""
    probe, f = counting_version(fn, source=source, name=name, globals_=globals_)
    f(*args, **(kwargs or {}))
    c = Counter(probe.counts)
    c["total"] = sum(probe.counts.values())
    return c
