"""Shared test helpers: build one-op graphs, random data for op samples."""

from __future__ import annotations

import numpy as np

from bpc.compiler.autodiff import differentiate
from bpc.compiler.ir import Graph
from bpc.compiler.ops.registry import OpDef, Sample
from bpc.compiler.program import ModuleInfo, Program, forward_entry


def sample_arrays(op: OpDef, sample: Sample, rng: np.random.Generator) -> list[np.ndarray]:
    dom = sample.domain or op.domain
    arrays = []
    for i, shape in enumerate(sample.shapes):
        lo, hi = dom[i] if isinstance(dom[0], tuple) else dom
        x = rng.uniform(lo, hi, size=shape)
        if i in sample.integer:
            x = np.round(x)
        for k in op.kinks:  # keep finite differences away from kinks
            near = np.abs(x - k) < 0.05
            x = np.where(near, k + 0.05 * np.sign(x - k + 1e-12), x)
        arrays.append(np.asarray(x, dtype=np.float64))
    return arrays


def one_op_graph(op: OpDef, sample: Sample, dtype: str = "f64", weighted: bool = True) -> Program:
    """inputs a0..ak -> op -> loss = sum(op * r), wrt every operand (floats of
    ``dtype``); not ``weighted``: loss = mean(op), a constant gradient arrives."""
    g = Graph(dtype=dtype)
    names = []
    for i, shape in enumerate(sample.shapes):
        names.append(g.add("input", [], {"shape": shape}, name=f"a{i}", named=True))
        g.inputs.append(f"a{i}")
    out = g.add(op.name, names, dict(sample.attrs), name="out", named=True)
    g.add("input", [], {"shape": g.shape(out)}, name="r", named=True)
    g.inputs.append("r")
    if weighted:
        prod = g.add("mul", [out, "r"], name="weighted", named=True)
        g.add("sum", [prod], {"axis": None, "keepdims": False}, name="loss", named=True)
    else:
        g.add("mean", [out], {"axis": None, "keepdims": False}, name="loss", named=True)
    g.set_result("loss", "loss")
    wrt = tuple(n for i, n in enumerate(names) if i not in sample.integer)
    return Program(g, ModuleInfo(name=f"op_{op.name}"), wrt, (forward_entry(g),))


def joint(p: Program) -> Program:
    j = differentiate(p)
    j.graph.verify()
    return j
