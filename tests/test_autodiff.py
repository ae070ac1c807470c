"""Reverse mode: fan-out, broadcasting, intermediate wrt, higher order."""

from __future__ import annotations

import json

import numpy as np

from bpc.compiler.autodiff import vjp
from bpc.compiler.pipeline import compile_text
from bpc.runtime import interpreter
from bpc.runtime.check import check_compiled
from bpc.runtime.gradcheck import compare, numerical_gradient
from bpc.runtime.loader import load_source


def spec(**kw):
    base = {"inputs": [], "params": [], "nodes": []}
    base.update(kw)
    return json.dumps(base)


def test_fan_out_accumulates():
    # loss = sum(x * x + exp(x)): d/dx = 2x + exp(x), x used three times.
    c = compile_text(spec(params=[{"name": "x", "shape": [3]}], nodes=["loss = sum(x * x + exp(x))"], loss="loss"))
    m = load_source(c.source)
    x = np.array([0.1, -0.5, 2.0])
    _, g = m.value_and_grad(x=x)
    np.testing.assert_allclose(g["x"], 2 * x + np.exp(x), rtol=1e-14)


def test_broadcast_bias_is_summed_over_batch():
    c = compile_text(
        spec(
            inputs=[{"name": "X", "shape": [5, 3]}],
            params=[{"name": "W", "shape": [3, 2]}, {"name": "b", "shape": [2]}, {"name": "c", "shape": [5, 1]}],
            nodes=["loss = sum(tanh(X @ W + b + c))"],
            loss="loss",
        )
    )
    result = check_compiled(c, seed=4)
    assert result.passed, result.as_dict()
    m = load_source(c.source)
    arrays = {**m.init_params(), **m.example_inputs(seed=1)}
    _, g = m.value_and_grad(**arrays)
    t = 1 - np.tanh(arrays["X"] @ arrays["W"] + arrays["b"] + arrays["c"]) ** 2
    np.testing.assert_allclose(g["b"], t.sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(g["c"], t.sum(axis=1, keepdims=True), rtol=1e-12)


def test_only_what_the_loss_needs_is_differentiated():
    c = compile_text(
        spec(
            params=[{"name": "a", "shape": [2]}, {"name": "b", "shape": [2]}],
            nodes=["u = exp(b)", "loss = sum(a * 3.0)"],
            loss="loss",
            outputs=["u"],
            wrt=["a"],
        )
    )
    assert not any(c.joint.graph.data(n)["origin"] == "u" for n in c.joint.graph.nx.nodes)
    src = c.source.split("def value_and_grad")[1]
    assert "np.exp" not in src  # u is not needed for the gradient


def test_intermediate_wrt_matches_finite_differences():
    c = compile_text(
        spec(
            inputs=[{"name": "x", "shape": [2, 1]}],
            params=[{"name": "W", "shape": [2, 2]}],
            nodes=["h = tanh(W @ x)", "loss = sum(h * h * h)"],
            loss="loss",
            wrt=["W", "h", "x"],
        )
    )
    assert check_compiled(c, seed=2).passed


def test_second_order_by_differentiating_the_adjoint():
    """The adjoint is ordinary IR: vjp of g_x with cotangent v is H v."""
    c = compile_text(spec(params=[{"name": "x", "shape": [3]}], nodes=["loss = sum(sigmoid(x) * x)"], loss="loss"))
    j = c.joint.graph.copy()
    gx = j.grads["x"]
    v = np.array([0.3, -1.0, 2.0])
    vname = j.add("input", [], {"shape": (3,)}, name="v", named=True)
    j.inputs.append(vname)
    before = (len(j), j.nx.number_of_edges())
    jj, (hv_node,) = vjp(j, [gx], [vname], ["x"])
    assert (len(j), j.nx.number_of_edges()) == before  # a pure transform
    x = np.array([0.5, -0.2, 1.5])
    hv = interpreter.evaluate(jj, {"x": x, "v": v}, [hv_node])[hv_node]

    def grad_dot_v(xx):
        return float(np.sum(interpreter.evaluate(c.joint.graph, {"x": xx}, [gx])[gx] * v))

    num = numerical_gradient(grad_dot_v, x)
    assert compare("Hv", hv, num).passed


def test_vjp_takes_the_seed_as_an_argument():
    """vjp(g, [loss], [s], wrt) is s times the gradient: the seed is an input, not a constant."""
    c = compile_text(spec(params=[{"name": "x", "shape": [3]}], nodes=["loss = sum(exp(x) * x)"], loss="loss"))
    g = c.forward.graph.copy()
    s = g.add("input", [], {"shape": ()}, name="s", named=True)
    g.inputs.append(s)
    gg, (gx,) = vjp(g, [g.loss], [s], ["x"])
    x = np.array([0.5, -0.2, 1.5])
    got = interpreter.evaluate(gg, {"x": x, "s": np.float64(-2.5)}, [gx])[gx]
    np.testing.assert_allclose(got, -2.5 * (np.exp(x) * x + np.exp(x)), rtol=1e-13)
    # and nothing reaches a value the output does not depend on
    u = g.add("param", [], {"shape": (3,)}, name="u", named=True)
    g.params.append(u)
    _, grads = vjp(g, [g.loss], [s], ["x", "u"])
    assert grads[1] is None


def test_a_wrt_value_without_a_gradient_gets_zeros_and_a_note(tmp_path):
    """As autograd and JAX: zeros of its shape, never a KeyError in an SGD
    loop over init_params(); bpc check and the IR dump say why."""
    from bpc.compiler import printing

    c = compile_text(
        spec(
            params=[{"name": "W", "shape": [2]}, {"name": "V", "shape": [3]}, {"name": "U", "shape": [2]}],
            inputs=[{"name": "x", "shape": [2]}],
            nodes=["loss = sum(W * x) + sum(stop_gradient(U) * (x > 0))"],
            loss="loss",
        )
    )
    m = load_source(c.source)
    assert m.WRT == ("W", "V", "U")  # every param by default
    arrays = {**m.init_params(), **m.example_inputs()}
    _, g = m.value_and_grad(**arrays)
    assert np.array_equal(g["V"], np.zeros(3)) and np.array_equal(g["U"], np.zeros(2))
    params = m.init_params()
    for _ in range(2):  # an SGD step over every param
        _, g = m.value_and_grad(**params, **m.example_inputs())
        params = {k: v - 0.1 * g[k] for k, v in params.items()}
    result = check_compiled(c, seed=0)
    assert result.passed
    assert result.notes == (
        "wrt[1] 'V': its gradient is zero: the loss does not depend on it",
        "wrt[2] 'U': its gradient is zero: every path to the loss goes through an op without a gradient "
        "(stop_gradient, comparisons, sign, step)",
    )
    text = printing.dump(c.optimized, "text")
    assert "# note: wrt[1] 'V': its gradient is zero" in text
    assert json.loads(printing.dump(c.optimized, "json", "optimized"))["graph"]["notes"] == list(result.notes)
