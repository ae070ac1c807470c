"""A reference interpreter: evaluates the IR directly with each op's ``impl``.

It shares nothing with codegen but the graph, so comparing the two checks the
emission templates; with ``overrides`` it can also pin intermediate values,
which is how finite differences reach gradients of hidden activations.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from ..compiler.ir import Graph
from ..compiler.ops import get_op


# Analytic ops whose reference implementation is written for real numbers
# (branches on the sign): the same functions, written for complex points.
COMPLEX_IMPLS = {
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "softplus": lambda x: np.log1p(np.exp(x)),
}


def _graph(g) -> Graph:
    """A graph, or a program's graph (the interpreter runs either)."""
    return getattr(g, "graph", g)


def evaluate(
    g: Graph,
    arrays: Mapping[str, np.ndarray],
    roots: list[str] | None = None,
    overrides: Mapping[str, np.ndarray] | None = None,
    dtype=np.float64,
) -> dict[str, np.ndarray]:
    """Values of ``roots`` (default: all roots of ``g``) given inputs/params.

    ``dtype=np.complex128`` evaluates a graph of analytic ops at complex
    points (the complex-step check)."""
    g = _graph(g)
    roots = roots if roots is not None else g.roots()
    overrides = overrides or {}
    needed = g.ancestors(roots)
    env: dict[str, np.ndarray] = {}
    for n in g.topo(needed):
        if n in overrides:
            env[n] = np.asarray(overrides[n], dtype=dtype)
            continue
        d = g.data(n)
        if d["op"] in ("input", "param"):
            if n not in arrays:
                raise KeyError(f"missing array '{n}'")
            v = np.asarray(arrays[n], dtype=dtype)
            if len(v.shape) != len(d["shape"]) or any(
                isinstance(e, int) and e != a for a, e in zip(v.shape, d["shape"])
            ):
                raise ValueError(f"'{n}' has shape {v.shape}, expected {d['shape']}")
            env[n] = v
            continue
        op = get_op(d["op"])
        impl = COMPLEX_IMPLS.get(d["op"], op.impl) if dtype is np.complex128 else op.impl
        env[n] = np.asarray(impl(*(env[a] for a in g.args(n)), **d["attrs"]), dtype=dtype)
    return {r: env[r] for r in roots}


def value_and_grad(g: Graph, arrays: Mapping[str, np.ndarray]):
    """(loss, grads) of a joint graph, like the generated function."""
    g = _graph(g)
    vals = evaluate(g, arrays, [g.loss] + list(g.grads.values()))
    return vals[g.loss], {w: vals[n] for w, n in g.grads.items()}


def loss_fn(g: Graph, arrays: Mapping[str, np.ndarray], at: str | None = None, hold_stopped: bool = True):
    """A function ``x -> loss`` of one input/param/intermediate ``at``.

    With ``hold_stopped``, every ``stop_gradient`` value stays at its value
    for ``arrays``: the derivative it defines treats it as a constant, so
    finite differences must too.
    """
    g = _graph(g)
    stopped = [n for n in g.nx.nodes if g.op(n) == "stop_gradient"] if hold_stopped else []
    held = evaluate(g, arrays, stopped) if stopped else {}
    held.pop(at, None)

    def f(x: np.ndarray) -> float:
        if at in g.params or at in g.inputs:
            return float(np.sum(evaluate(g, {**arrays, at: x}, [g.loss], overrides=held)[g.loss]))
        return float(np.sum(evaluate(g, arrays, [g.loss], overrides={**held, at: x})[g.loss]))

    return f
