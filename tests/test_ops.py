"""Registry-driven op tests: every op, every sample, three checks each.

For each (op, sample): the shape rule agrees with the NumPy implementation;
the generated code (emission template) computes the same forward value as the
implementation; and the VJP rule, through the whole pipeline (reverse mode,
passes, codegen), matches central finite differences in float64.
"""

from __future__ import annotations

import numpy as np
import pytest

from bpc.compiler.codegen import generate
from bpc.compiler.ops import all_ops
from bpc.compiler.passes import optimize
from bpc.runtime import interpreter
from bpc.runtime.gradcheck import compare, numerical_gradient
from bpc.runtime.loader import load_source

from bpc.compiler.program import forward_entry

from .helpers import joint, one_op_graph, sample_arrays

OPS = all_ops()
CASES = [
    pytest.param(op, i, id=f"{name}-{i}")
    for name, op in sorted(OPS.items())
    if op.category != "source"
    for i in range(len(op.samples))
]


def test_every_op_has_samples():
    missing = [n for n, op in OPS.items() if op.category != "source" and not op.samples]
    assert not missing, f"ops without samples: {missing}"


def test_every_public_op_documents_its_derivative():
    missing = [n for n, op in OPS.items() if op.public and not (op.derivative and op.doc)]
    assert not missing


@pytest.mark.parametrize("op,i", CASES)
def test_op(op, i):
    sample = op.samples[i]
    rng = np.random.default_rng(1000 + i)
    arrays = sample_arrays(op, sample, rng)
    p = one_op_graph(op, sample)
    g = p.graph
    expected = np.asarray(op.impl(*arrays, **op.normalize_attrs(dict(sample.attrs), None)))

    # 1. shape rule vs implementation
    assert g.shape("out") == expected.shape

    feeds = {f"a{k}": a for k, a in enumerate(arrays)}
    feeds["r"] = rng.standard_normal(g.shape("out"))
    g.set_result("outputs.out", "out")
    j = joint(p.but(entries=(forward_entry(g),)))
    module = load_source(generate(j.but(graph=optimize(j.graph))), f"op_{op.name}")

    # 2. emitted forward code vs implementation
    _, outs = module.forward(**feeds)
    np.testing.assert_allclose(outs["out"], expected, rtol=1e-13, atol=1e-15)
    assert np.shape(outs["out"]) == expected.shape

    # 3. VJP vs central finite differences (float64)
    loss, grads = module.value_and_grad(**feeds)
    for k in [k for k in range(len(arrays)) if k not in sample.integer]:
        name = f"a{k}"

        def f(x, name=name):
            return float(interpreter.evaluate(g, {**feeds, name: x}, ["loss"])["loss"])

        num = numerical_gradient(f, feeds[name])
        if op.name == "stop_gradient":  # no gradient by definition
            num = np.zeros_like(num)
        assert np.shape(grads[name]) == feeds[name].shape
        res = compare(name, grads[name], num, float(loss))
        assert res.passed, f"{op.name} sample {i} d/d{name}: abs {res.max_abs:.2e} rel {res.max_rel:.2e}"
        # The unoptimized joint graph, evaluated by the interpreter, agrees too.
        _, ig = interpreter.value_and_grad(j, feeds)
        np.testing.assert_allclose(grads[name], ig[name], rtol=1e-12, atol=1e-14)


def test_the_emitted_erf_matches_math_erf():
    """NumPy has no erf: the module's spelling (np.polyval pieces) against math.erf."""
    import math

    import bpc

    x = np.concatenate([np.linspace(-8.0, 8.0, 20001), np.linspace(1.99, 2.01, 2001), [0.0, 1e-300, -1e-8, 40.0, -1e300]])
    spec = {"inputs": [{"name": "x", "shape": [x.size]}], "nodes": ["y = erf(x)", "l = sum(y)"], "loss": "l",
            "outputs": ["y"], "wrt": ["x"]}
    m = bpc.compile(spec)
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # none anywhere on the line (underflow is benign)
        _, out = m.forward(x=x)
    want = np.array([math.erf(v) for v in x])
    assert np.max(np.abs(out["y"] - want)) < 1.5e-15
    np.testing.assert_array_equal(out["y"][-2:], [1.0, -1.0])
    assert np.isnan(m.forward(x=np.full(x.size, np.nan))[1]["y"]).all()
