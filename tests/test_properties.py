"""Property tests: random well-formed graphs from registered ops.

For each random network (built as expression strings, so the parser is
exercised too): generated code equals the reference interpreter, and its
gradients match central finite differences.
"""

from __future__ import annotations

import json

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from bpc.compiler.errors import BpcError
from bpc.compiler.ops import get_op
from bpc.compiler.pipeline import compile_text
from bpc.runtime import interpreter
from bpc.runtime.check import check_compiled, example_arrays
from bpc.runtime.loader import load_source

SHAPES = [(2, 3), (3,), (3, 2), (1, 3), (2, 1), ()]
UNARY = ["tanh", "sigmoid", "sin", "cos", "softplus", "square", "neg", "gelu"]
BINARY = {"add": "+", "sub": "-", "mul": "*", "matmul": "@"}
REDUCE = ["sum", "mean", "logsumexp"]


@st.composite
def networks(draw):
    n_params = draw(st.integers(1, 3))
    shapes = {f"p{i}": draw(st.sampled_from(SHAPES)) for i in range(n_params)}
    nodes = []
    for k in range(draw(st.integers(1, 6))):
        names = sorted(shapes)
        kind = draw(st.sampled_from(["unary", "binary", "binary", "reduce", "transpose"]))
        a = draw(st.sampled_from(names))
        out = f"v{k}"
        text = None
        if kind == "binary":
            b = draw(st.sampled_from(names))
            op = draw(st.sampled_from(sorted(BINARY)))
            try:
                shape = get_op(op).infer_shape([shapes[a], shapes[b]], {}, None)
                text = f"{out} = {a} {BINARY[op]} {b}"
            except BpcError:
                kind = "unary"
        if kind == "reduce":
            op = draw(st.sampled_from(REDUCE))
            nd = len(shapes[a])
            axis = draw(st.sampled_from([None] + list(range(-nd, nd))))
            keep = draw(st.booleans())
            attrs = {"axis": axis, "keepdims": keep}
            shape = get_op(op).infer_shape([shapes[a]], get_op(op).normalize_attrs(attrs, None), None)
            text = f"{out} = {op}({a}, axis={axis}, keepdims={keep})"
        elif kind == "transpose":
            shape = tuple(reversed(shapes[a]))
            text = f"{out} = {a}.T"
        elif text is None:
            op = draw(st.sampled_from(UNARY))
            shape = shapes[a]
            text = f"{out} = {op}({a})"
        nodes.append(text)
        shapes[out] = tuple(shape)
    last = f"v{len(nodes) - 1}"
    extra = " + ".join(f"sum(tanh(p{i}))" for i in range(n_params))
    nodes.append(f"loss = sum({last} * {last}) + {extra}")
    params = [{"name": f"p{i}", "shape": list(shapes[f"p{i}"]), "init": {"kind": "normal", "std": 1.0}} for i in range(n_params)]
    return {"params": params, "nodes": nodes, "loss": "loss"}


@given(networks(), st.integers(0, 3))
def test_random_networks_codegen_matches_interpreter_and_finite_differences(spec, seed):
    text = json.dumps(spec)
    c = compile_text(text)
    result = check_compiled(c, seed=seed)
    for t in result.tensors:
        assert t.passed, (spec, t)
    assert result.interpreter_max_diff <= 1e-9, spec
    # The fast formatter's output is exactly what black makes of it.
    import black

    assert black.format_str(c.source, mode=black.Mode()) == c.source
    # -O0 code computes the same gradients as optimized code.
    c0 = compile_text(text, passes=set())
    m, m0 = load_source(c.source), load_source(c0.source)
    arrays = example_arrays(m, seed)
    (l1, g1), (l0, g0) = m.value_and_grad(**arrays), m0.value_and_grad(**arrays)
    np.testing.assert_allclose(l1, l0, rtol=1e-12)
    for w in g1:
        np.testing.assert_allclose(g1[w], g0[w], rtol=1e-10, atol=1e-12)
    _, ig = interpreter.value_and_grad(c.optimized, arrays)
    for w in g1:
        np.testing.assert_allclose(g1[w], ig[w], rtol=1e-10, atol=1e-12)
