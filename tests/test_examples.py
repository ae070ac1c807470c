"""End to end, for every example: compile -> import -> value_and_grad -> finite differences."""

from __future__ import annotations

import numpy as np
import pytest

from bpc.compiler.pipeline import compile_file
from bpc.runtime import interpreter
from bpc.runtime.check import check_compiled, example_arrays
from bpc.runtime.loader import load_source

from .conftest import EXAMPLES

IDS = [p.stem for p in EXAMPLES]


@pytest.fixture(scope="module", params=EXAMPLES, ids=IDS)
def compiled(request):
    return compile_file(request.param.relative_to(request.param.parents[1]))


def test_reference_examples_exist():
    expected = {
        "scalar", "perceptron", "one_hidden", "two_hidden", "relu_deep",
        "mlp_2_10_10_1", "sigmoid_2_3_1", "neuron", "mnist_mlp", "autoencoder",
    }
    assert expected <= set(IDS)


@pytest.mark.parametrize("seed", [None, 1, 2])
def test_gradients_match_finite_differences(compiled, seed):
    result = check_compiled(compiled, seed=seed)
    for t in result.tensors:
        assert t.passed, f"{compiled.name}.{t.name}: abs {t.max_abs:.2e} rel {t.max_rel:.2e}"
        assert t.max_rel < 1e-6, f"{compiled.name}.{t.name}: rel {t.max_rel:.2e}"
    assert result.passed


@pytest.mark.parametrize("passes", [None, set()], ids=["O2", "O0"])
def test_generated_code_equals_reference_interpreter(compiled, passes):
    c = compile_file(f"examples/{compiled.name}.json", passes=passes)
    module = load_source(c.source, c.name)
    arrays = example_arrays(module, seed=3)
    loss, grads = module.value_and_grad(**arrays)
    ref_loss, ref_grads = interpreter.value_and_grad(c.joint, arrays)
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-12, atol=1e-12)
    assert set(grads) == set(module.WRT)
    for w in module.WRT:
        assert np.shape(grads[w]) == np.shape(ref_grads[w])
        np.testing.assert_allclose(grads[w], ref_grads[w], rtol=1e-10, atol=1e-12)
    # forward agrees with value_and_grad's loss
    out = module.forward(**arrays)
    np.testing.assert_allclose(out[0] if isinstance(out, tuple) else out, loss, rtol=0, atol=0)


def test_module_contract(compiled):
    module = load_source(compiled.source, compiled.name)
    params, inputs = module.init_params(), module.example_inputs()
    assert list(params) == list(module.PARAMS) and list(inputs) == list(module.INPUTS)
    dims = getattr(module, "DIMS", {})

    def concrete(shape):
        return tuple(dims[d] if isinstance(d, str) else d for d in shape)

    for name, shape in {**module.PARAMS, **module.INPUTS}.items():
        assert np.shape({**params, **inputs}[name]) == concrete(shape)
    loss, grads = module.value_and_grad(**params, **inputs)
    assert np.size(loss) == 1
    assert tuple(grads) == module.WRT
    shapes = {**module.PARAMS, **module.INPUTS}
    for w, gw in grads.items():
        if w in shapes:
            assert np.shape(gw) == concrete(shapes[w]), w
    # init_params is deterministic in its seed
    again = module.init_params()
    for k in params:
        np.testing.assert_array_equal(params[k], again[k])


def _load(name):
    c = compile_file(f"examples/{name}.json")
    return load_source(c.source, name), c


def test_neuron_known_answer():
    # The exercise's published answer: df/dW1 = [0.5898, -0.3932], df/db1 = 0.1966.
    m, _ = _load("neuron")
    loss, g = m.value_and_grad(**m.init_params(), **m.example_inputs())
    np.testing.assert_allclose(g["W1"], [[0.5898, -0.3932]], atol=5e-5)
    np.testing.assert_allclose(g["b1"], [0.1966], atol=5e-5)


def test_scalar_network_closed_form():
    # f = (wx*x + wy*y) * (wz*z): df/dwx = wz*z*x, df/dwy = wz*z*y, df/dwz = p*z.
    m, _ = _load("scalar")
    p, i = m.init_params(), m.example_inputs()
    loss, g = m.value_and_grad(**p, **i)
    wx, wy, wz = p["wx"].item(), p["wy"].item(), p["wz"].item()
    x, y, z = i["x"].item(), i["y"].item(), i["z"].item()
    assert (x, y, z) == (5.0, 3.0, 2.0)
    assert loss.item() == pytest.approx((wx * x + wy * y) * (wz * z))
    assert g["wx"].item() == pytest.approx(wz * z * x)
    assert g["wy"].item() == pytest.approx(wz * z * y)
    assert g["wz"].item() == pytest.approx((wx * x + wy * y) * z)


def test_sigmoid_2_3_1_hand_derivation():
    # Independent hand-written NumPy backprop of the exercise (column layout, loss log(X2)).
    m, _ = _load("sigmoid_2_3_1")
    p, i = m.init_params(), m.example_inputs()
    W1, b1, W2, b2, X0 = p["W1"], p["beta1"], p["W2"], p["beta2"], i["X0"]
    s = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    X1 = s(W1 @ X0 + b1)
    X2 = s(W2 @ X1 + b2)
    d2 = (1 / X2) * X2 * (1 - X2)  # dl/dz2
    dX1 = W2.T @ d2
    d1 = dX1 * X1 * (1 - X1)
    loss, g = m.value_and_grad(**p, **i)
    np.testing.assert_allclose(loss, np.log(X2), rtol=1e-14)
    np.testing.assert_allclose(g["W2"], d2 @ X1.T, rtol=1e-12)
    np.testing.assert_allclose(g["beta2"], d2, rtol=1e-12)
    np.testing.assert_allclose(g["X1"], dX1, rtol=1e-12)
    np.testing.assert_allclose(g["W1"], d1 @ X0.T, rtol=1e-12)
    np.testing.assert_allclose(g["beta1"], d1, rtol=1e-12)
    np.testing.assert_allclose(g["X0"], W1.T @ d1, rtol=1e-12)


# The training example: tests/test_train_example.py (ends far below the
# constant-mean predictor, not only below its start).


@pytest.mark.parametrize("name", ["mnist_mlp", "autoencoder"])
@pytest.mark.parametrize("batch", [1, 64])
def test_symbolic_batch_one_module_any_size(name, batch):
    c = compile_file(f"examples/{name}.json")
    result = check_compiled(c, seed=0, dims={"batch": batch}, max_elements=32)
    assert result.passed, result.as_dict()
    m = load_source(c.source, name)
    arrays = example_arrays(m, seed=1, dims={"batch": batch})
    if name == "mnist_mlp":
        assert set(np.unique(arrays["y"])) <= set(range(10))
    loss, grads = m.value_and_grad(**arrays)
    ref_loss, ref = interpreter.value_and_grad(c.joint, arrays)
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-12)
    for w in m.WRT:
        assert grads[w].shape == m.PARAMS[w]
        np.testing.assert_allclose(grads[w], ref[w], rtol=1e-9, atol=1e-12)


def test_initializers_and_their_seeds():
    import json

    from bpc.compiler.pipeline import compile_text

    spec = {
        "params": [
            {"name": "a", "shape": [3, 4], "init": {"kind": "normal", "std": 0.5}},
            {"name": "b", "shape": [4], "init": {"kind": "uniform", "low": 2.0, "high": 3.0, "seed": 11}},
            {"name": "c", "shape": [4, 2], "init": {"kind": "glorot_uniform"}},
            {"name": "d", "shape": [2], "init": {"kind": "ones"}},
            {"name": "e", "shape": [2], "value": 0.25},
        ],
        "nodes": ["loss = sum(((a + b) @ c + d) * e)"],
        "loss": "loss",
        "seed": 5,
    }
    m = load_source(compile_text(json.dumps(spec)).source)
    p5, p5b, p6 = m.init_params(), m.init_params(5), m.init_params(6)
    np.testing.assert_array_equal(p5["a"], p5b["a"])  # spec seed is the default
    assert not np.array_equal(p5["a"], p6["a"])  # the function's seed matters...
    np.testing.assert_array_equal(p5["b"], p6["b"])  # ...except for an own seed
    np.testing.assert_array_equal(p5["b"], np.random.default_rng(11).uniform(2.0, 3.0, size=(4,)))
    assert np.all((p5["b"] >= 2.0) & (p5["b"] < 3.0))
    limit = np.sqrt(6.0 / (4 + 2))
    assert np.all(np.abs(p5["c"]) <= limit)
    np.testing.assert_array_equal(p5["d"], np.ones(2))
    np.testing.assert_array_equal(p5["e"], np.full(2, 0.25))
    assert abs(np.std(m.init_params(1)["a"]) - 0.5) < 0.3
