"""Integer class labels: example_inputs draws ints, and a generated module
refuses a label outside [0, classes) or a fraction with a ValueError naming the
input (NumPy indexing would raise IndexError, or silently wrap a negative label)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bpc.compiler.errors import OutputError
from bpc.compiler.pipeline import compile_file, compile_text
from bpc.compiler.verify import verify_module
from bpc.compiler.codegen import templates
from bpc.runtime.loader import load_source

SPEC = {
    "name": "clf",
    "mlp": {
        "sizes": [3, 4, 5],
        "activation": "tanh",
        "output_activation": "linear",
        "loss": "softmax_cross_entropy",
        "labels": "index",
        "layout": "row",
        "batch": 6,
    },
}


@pytest.fixture(scope="module")
def net():
    c = compile_text(json.dumps(SPEC))
    return load_source(c.source, "clf")


def _arrays(net, **labels):
    return {**net.init_params(), **net.example_inputs(), **labels}


def test_example_inputs_give_integer_labels(net):
    y = net.example_inputs(seed=3)["y"]
    assert y.dtype.kind == "i" and y.shape == (6,) and 0 <= y.min() and y.max() < 5
    m = load_source(compile_file("examples/mnist_mlp.json").source, "mnist_mlp")
    y = m.example_inputs()["y"]
    assert y.dtype.kind == "i" and 0 <= y.min() and y.max() < 10


def test_labels_in_range_as_ints_lists_or_whole_floats_agree(net):
    y = np.array([0, 1, 2, 3, 4, 0])
    loss, grads = net.value_and_grad(**_arrays(net, y=y))
    for same in (y.tolist(), y.astype(np.float64), y.astype(np.uint8), y.astype(np.int32)):
        l2, g2 = net.value_and_grad(**_arrays(net, y=same))
        assert l2 == loss and all(np.array_equal(g2[k], grads[k]) for k in grads)


@pytest.mark.parametrize(
    "bad,shown",
    [
        ([0, 1, 2, 3, 4, -1], "-1"),  # would wrap around to class 4 silently
        ([0, 1, 5, 3, 4, 0], "5"),  # would be an IndexError
        ([0, 1, 2, 3, 4, 10**12], "1000000000000"),
        ([0, 1.5, 2, 3, 4, 0], "1.5"),  # would be truncated to 1
        ([0, np.nan, 2, 3, 4, 0], "nan"),
        ([0, np.inf, 2, 3, 4, 0], "inf"),
        ([True, False, True, False, True, False], "bool values"),
        (["a", "b", "c", "d", "e", "f"], "values"),
    ],
)
@pytest.mark.parametrize("fn", ["forward", "value_and_grad"])
def test_bad_labels_are_a_clear_value_error(net, bad, shown, fn):
    with pytest.raises(ValueError) as e:
        getattr(net, fn)(**_arrays(net, y=np.array(bad)))
    msg = str(e.value)
    assert msg.startswith("y: expected integer class labels in [0, 5), got ") and shown in msg, msg


def test_the_label_check_is_one_template_the_whitelist_holds_to():
    c = compile_text(json.dumps(SPEC))
    src = c.source
    assert src.count("def _bpc_labels(") == 1
    assert src.count('y = _bpc_labels(y, "y", 5)') == 2  # forward and value_and_grad
    verify_module(src, templates())
    tampered = src.replace('raise ValueError(f"{expected} {y.dtype} values")', "return y")
    assert tampered != src
    with pytest.raises(OutputError, match="_bpc_labels differs from its template"):
        verify_module(tampered, templates())
    # a module without label inputs has no helper
    plain = compile_file("examples/neuron.json").source
    assert "_bpc_labels" not in plain


def test_array_api_module_checks_labels_in_its_namespace():
    """The array-API target's label check uses the array API (under array-api-strict too)."""
    xps = pytest.importorskip("array_api_strict")
    pytest.importorskip("array_api_compat")
    import numpy as np

    from bpc.compiler.options import CompileOptions
    from bpc.compiler.pipeline import compile_file
    from bpc.runtime.loader import load_source

    c = compile_file("examples/mnist_mlp.json", options=CompileOptions(target="array-api"))
    m = load_source(c.source, "mnist_mlp_xp_labels")
    params = {k: xps.asarray(v) for k, v in m.init_params().items()}
    x = xps.asarray(np.zeros((3, 784)))
    for bad in ([0, 10, 1], [0, -1, 1], [0.5, 1.0, 2.0]):
        with pytest.raises(ValueError, match="y: expected integer class labels in \\[0, 10\\)"):
            m.value_and_grad(**params, x=x, y=xps.asarray(bad))
    loss, _ = m.value_and_grad(**params, x=x, y=xps.asarray([0, 9, 1]))
    assert float(loss) > 0
