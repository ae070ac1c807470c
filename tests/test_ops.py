"""Registry-driven op tests: every op, every sample, three checks each.

For each (op, sample): the shape rule agrees with the NumPy implementation;
the generated code (emission template) computes the same forward value as the
implementation; and the VJP rule, through the whole pipeline (reverse mode,
passes, codegen), matches central finite differences in float64.
"""

from __future__ import annotations

import dataclasses

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


def _float_locals(fn, **kw):
    """Call ``fn`` and collect the floating values of its frame's locals as it
    returns (every statement's value, each named by the generated code)."""
    import sys

    seen = {}

    def tracer(frame, event, arg):
        if frame.f_code is fn.__code__:
            if event == "return":
                for k, v in frame.f_locals.items():
                    if isinstance(v, (np.ndarray, np.floating)) and np.asarray(v).dtype.kind == "f":
                        seen[k] = np.asarray(v).dtype
            return tracer
        return None

    old = sys.gettrace()
    sys.settrace(tracer)
    try:
        res = fn(**kw)
    finally:
        sys.settrace(old)
    return res, seen


@pytest.mark.parametrize("weighted", [True, False], ids=["sum(op*r)", "mean(op)"])
@pytest.mark.parametrize("o3", [False, True], ids=["default", "O3"])
@pytest.mark.parametrize("op,i", CASES)
def test_op_in_float32_stays_float32(op, i, o3, weighted, monkeypatch):
    """Compiled at float32, every value the forward pass and the gradient
    compute is float32 (no Python-float constant table, no float64 helper
    array upcasts it), and the value agrees with the float64 implementation
    to float32 precision (rtol 2e-4 of the output's scale). At -O3 every
    value goes through a float32 workspace buffer (out= would cast a float64
    result silently: the tie test of max's gradient then fails). With the loss
    mean(op) the gradient arriving is a constant (0.5 * (y > 0) is float64
    unless the constant is a float32 scalar)."""
    from bpc.compiler import workspace
    from bpc.compiler.codegen import CodegenOptions

    monkeypatch.setattr(workspace, "BUFFER_MIN", 1)
    sample = op.samples[i]
    if op.name == "cast":  # (inserted by the graph with the compile dtype)
        sample = dataclasses.replace(sample, attrs={"dtype": "f32"})
    rng = np.random.default_rng(1000 + i)
    arrays = sample_arrays(op, sample, rng)
    p = one_op_graph(op, sample, dtype="f32", weighted=weighted)
    g = p.graph
    expected = np.asarray(op.impl(*arrays, **op.normalize_attrs(dict(sample.attrs), None)))
    feeds = {f"a{k}": (a.astype(np.float32) if a.dtype.kind == "f" else a) for k, a in enumerate(arrays)}
    feeds["r"] = rng.standard_normal(g.shape("out")).astype(np.float32)
    g.set_result("outputs.out", "out")
    j = joint(p.but(entries=(forward_entry(g),)))
    module = load_source(generate(j.but(graph=optimize(j.graph)), CodegenOptions(workspace=o3)), f"op32_{op.name}")
    with np.errstate(all="ignore"):
        (_, outs), fwd_locals = _float_locals(module.forward, **feeds)
        (loss, grads), grad_locals = _float_locals(module.value_and_grad, **feeds)
    wide = {k: str(d) for k, d in {**fwd_locals, **grad_locals}.items() if d != np.float32}
    assert not wide, f"{op.name}: float locals not float32: {wide}"
    if np.asarray(outs["out"]).dtype.kind == "f":  # (comparisons give bools, count an int)
        assert outs["out"].dtype == np.float32
        scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
        np.testing.assert_allclose(outs["out"], expected, rtol=2e-4, atol=2e-4 * scale)
    assert np.asarray(loss).dtype == np.float32
    for name, gr in grads.items():
        assert np.asarray(gr).dtype == np.float32, name
