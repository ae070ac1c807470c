"""Derivative modes: forward mode (jvp) and Hessian-vector products (hvp)."""

from __future__ import annotations

import numpy as np
import pytest

from bpc.compiler.autodiff import jvp, vjp
from bpc.compiler.ir import Graph
from bpc.compiler.ops.registry import DIFFERENTIABLE, all_ops
from bpc.runtime import interpreter

from .helpers import sample_arrays

CASES = [
    (op, i)
    for _, op in sorted(all_ops().items())
    if op.has(DIFFERENTIABLE)
    for i in range(len(op.samples))
]


@pytest.mark.parametrize("op,i", CASES, ids=[f"{op.name}-{i}" for op, i in CASES])
def test_every_op_jvp_matches_differences_and_its_vjp(op, i):
    """J t against central differences along t (float64, h = 1e-6, rel 1e-6),
    and the dot-product test <u, J t> = <J^T u, t> (no step size: rel 1e-12)."""
    sample = op.samples[i]
    rng = np.random.default_rng(100 + i)
    arrays = sample_arrays(op, sample, rng)
    g = Graph()
    xs = [g.add("input", [], {"shape": s}, name=f"a{k}", named=True) for k, s in enumerate(sample.shapes)]
    out = g.add(op.name, xs, dict(sample.attrs), name="out", named=True)
    diff = [k for k in range(len(xs)) if k not in sample.integer]
    ts = [g.add("input", [], {"shape": sample.shapes[k]}, name=f"t{k}", named=True) for k in diff]
    u = g.add("input", [], {"shape": g.shape(out)}, name="u", named=True)
    size = (len(g), g.nx.number_of_edges())
    gj, (tout,) = jvp(g, [xs[k] for k in diff], ts, [out])
    gv, cts = vjp(g, [out], [u], [xs[k] for k in diff])
    assert (len(g), g.nx.number_of_edges()) == size  # both transforms are pure

    feeds = {f"a{k}": a for k, a in enumerate(arrays)}
    tv = {f"t{k}": rng.standard_normal(sample.shapes[k]) for k in diff}
    uv = rng.standard_normal(g.shape(out))
    env = {**feeds, **tv, "u": uv}
    jt = interpreter.evaluate(gj, env, [tout])[tout] if tout is not None else np.zeros(g.shape(out))

    h = 1e-6
    up = interpreter.evaluate(g, {**feeds, **{f"a{k}": feeds[f"a{k}"] + h * tv[f"t{k}"] for k in diff}}, [out])[out]
    down = interpreter.evaluate(g, {**feeds, **{f"a{k}": feeds[f"a{k}"] - h * tv[f"t{k}"] for k in diff}}, [out])[out]
    fd = (up - down) / (2 * h)
    if op.name == "stop_gradient":  # no derivative by definition
        fd = np.zeros_like(fd)
    assert np.max(np.abs(jt - fd)) <= 1e-6 * max(1.0, float(np.max(np.abs(fd)))), op.name

    vals = interpreter.evaluate(gv, env, [c for c in cts if c is not None])
    lhs = sum(float(np.sum(vals[c] * tv[f"t{k}"])) for c, k in zip(cts, diff) if c is not None)
    rhs = float(np.sum(uv * jt))
    assert abs(lhs - rhs) <= 1e-12 * max(1.0, abs(lhs)), (op.name, lhs, rhs)


def test_every_differentiable_op_is_covered():
    assert {op.name for op, _ in CASES} == {
        n for n, op in all_ops().items() if op.has(DIFFERENTIABLE) and op.samples
    }
    assert not [n for n, op in all_ops().items() if op.has(DIFFERENTIABLE) and not op.samples]
