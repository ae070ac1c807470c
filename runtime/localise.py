"""Node-level localisation: which IR node's derivative rule is wrong.

When a gradient disagrees with finite differences, the whole-network check
says *that* something is wrong, not *where*. :func:`localise` walks the
forward graph in order and checks each node alone: with its operands fixed
at their values in the failing run (from the reference interpreter), it
compares the node's local VJP and JVP (the rules the compiler used) with
central differences of that node's own NumPy implementation along a random
direction. The first node whose rule disagrees is the culprit; it is
reported with its spec location, op and printed name.

Each node is checked along one random direction per operand, in float64:
``<u, J t>`` from the VJP (``sum_i <VJP_i(u), t_i>``) and from the JVP
(``<u, JVP(t)>``) against ``(<u, f(x + h t)> - <u, f(x - h t)>) / 2h``,
Richardson-extrapolated from ``h`` and ``2h`` (``h = 1e-6 * max(1, |x|)``).
A node where the two step sizes disagree (a kink or a tie inside the step)
is not judged: differences cannot speak for a non-smooth point. An analytic
op (see the ``analytic`` trait) is judged by the complex step instead,
``<u, f(x + 1e-30 i t)>.imag / 1e-30``, exact to rounding: its rule must
agree to 1e-10.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from ..compiler.autodiff import jvp, vjp
from ..compiler.ir import Graph
from ..compiler.ops import get_op
from ..compiler.ops.registry import ANALYTIC, DIFFERENTIABLE, SOURCE, is_float
from . import interpreter

STEP = 1e-6
RTOL = 1e-6
CS_STEP, CS_RTOL = 1e-30, 1e-10  # the complex step, for analytic ops


@dataclass
class Culprit:
    node: str  # printed name
    op: str
    source: str | None  # spec location, "nodes[3]"
    rule: str  # "VJP" or "JVP"
    rule_value: float  # <u, J t> by the rule
    numeric: float  # by central differences

    def text(self) -> str:
        where = f"{self.source}: " if self.source else ""
        return (
            f"first node whose local derivative disagrees: {where}{self.node} = {self.op}(...): "
            f"its {self.rule} gives <u, J t> = {self.rule_value:.10g}, "
            f"finite differences {self.numeric:.10g}"
        )

    def as_dict(self) -> dict:
        return {
            "node": self.node,
            "op": self.op,
            "source": self.source,
            "rule": self.rule,
            "rule_value": self.rule_value,
            "numeric": self.numeric,
        }


def check_node(fwd: Graph, n: str, env: Mapping[str, np.ndarray], seed: int = 0) -> tuple[str, float, float] | None:
    """(rule, by the rule, numeric) when node ``n``'s VJP or JVP disagrees
    with central differences at the operand values ``env``; else None."""
    d = fwd.data(n)
    op = get_op(d["op"])
    if op.has(SOURCE) or not op.has(DIFFERENTIABLE):
        return None
    args = fwd.args(n)
    vals = [np.asarray(env[a], dtype=np.float64) for a in args]
    diff = [i for i, a in enumerate(args) if is_float(fwd.dtype(a))]
    if not diff:
        return None
    g = Graph(fwd.float_dtype)
    xs = [
        g.add("input", [], {"shape": tuple(v.shape)}, name=f"a{i}", named=True, dtype=fwd.dtype(a))
        for i, (a, v) in enumerate(zip(args, vals))
    ]
    out = g.add(d["op"], xs, dict(d["attrs"]), name="out", named=True)
    rng = np.random.default_rng(seed)
    u_val = rng.standard_normal(g.shape(out))
    # Directions scaled like the step (h * max(1, |x|) per element).
    t_vals = {i: rng.standard_normal(vals[i].shape) * np.maximum(1.0, np.abs(vals[i])) for i in diff}
    u = g.add("input", [], {"shape": g.shape(out)}, name="u", named=True)
    ts = [g.add("input", [], {"shape": tuple(vals[i].shape)}, name=f"t{i}", named=True) for i in diff]
    feeds = {f"a{i}": v for i, v in enumerate(vals)}
    feeds.update({"u": u_val, **{f"t{i}": t_vals[i] for i in diff}})

    gv, cts = vjp(g, [out], [u], [xs[i] for i in diff])
    got = interpreter.evaluate(gv, feeds, [c for c in cts if c is not None])
    by_vjp = sum(float(np.sum(got[c] * t_vals[i])) for c, i in zip(cts, diff) if c is not None)
    gj, (tout,) = jvp(g, [xs[i] for i in diff], ts, [out])
    by_jvp = float(np.sum(u_val * interpreter.evaluate(gj, feeds, [tout])[tout])) if tout is not None else 0.0

    def f(h: float) -> float:
        moved = {f"a{i}": vals[i] + h * t_vals[i] for i in diff}
        return float(np.sum(u_val * interpreter.evaluate(g, {**feeds, **moved}, [out])[out]))

    tol = RTOL
    if op.name == "stop_gradient":  # its derivative is zero by definition
        numeric = 0.0
    elif op.has(ANALYTIC) and all(is_float(fwd.dtype(a)) for a in args):
        # the complex step: exact to rounding, so the verdict can be strict
        moved = {f"a{i}": vals[i] + 1j * CS_STEP * t_vals[i] for i in diff}
        val = interpreter.evaluate(g, {**feeds, **moved}, [out], dtype=np.complex128)[out]
        numeric = float(np.sum(u_val * val.imag)) / CS_STEP
        tol = CS_RTOL
    else:
        d1 = (f(STEP) - f(-STEP)) / (2 * STEP)
        d2 = (f(2 * STEP) - f(-2 * STEP)) / (4 * STEP)
        if abs(d1 - d2) > 1e-4 * max(1.0, abs(d1), abs(d2)):  # not smooth within the step
            return None
        numeric = (4 * d1 - d2) / 3
    scale = max(1.0, abs(numeric))
    for rule, value in (("VJP", by_vjp), ("JVP", by_jvp)):
        if not np.isfinite(value) or abs(value - numeric) > tol * scale:
            return rule, value, numeric
    return None


def localise(fwd: Graph, arrays: Mapping[str, np.ndarray], seed: int = 0) -> Culprit | None:
    """The first forward node (in evaluation order) whose derivative rule
    disagrees with differences of its own implementation, or None."""
    env = interpreter.evaluate(fwd, arrays, list(fwd.nx.nodes))
    names = fwd.names()
    for n in fwd.topo():
        try:
            bad = check_node(fwd, n, env, seed)
        except (FloatingPointError, ValueError, ZeroDivisionError):
            continue
        if bad is not None:
            rule, value, numeric = bad
            d = fwd.data(n)
            return Culprit(names[n], d["op"], d["source"], rule, value, numeric)
    return None
