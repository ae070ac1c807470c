"""bpc explain: the printed chain rule runs, and it agrees with the generated gradient."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from typer.testing import CliRunner

from bpc.cli.main import app
from bpc.compiler.explain import explain
from bpc.compiler.pipeline import compile_file, compile_text
from bpc.runtime import interpreter
from bpc.runtime.check import example_arrays
from bpc.runtime.loader import load_source

runner = CliRunner()


def _evaluate_printed_steps(output: str, env: dict) -> np.ndarray:
    """Run every printed step line, then the printed sum over paths."""
    env = dict(env, np=np)
    for line in output.splitlines():
        m = re.match(r"^  (d\d*_\w+) = (.+?)\s+# ", line)
        if m:
            env[m.group(1)] = eval(m.group(2), env)  # noqa: S307 - our own printed NumPy
    total = re.search(r"^Sum over paths: grad_\w+ = (.+)$", output, re.M).group(1)
    return eval(total, env)  # noqa: S307


@pytest.mark.parametrize(
    "spec,wrt,npaths",
    [
        ("sigmoid_2_3_1", "W1", 1),
        ("sigmoid_2_3_1", "X1", 1),
        ("scalar", "wx", 1),
        ("relu_deep", "W2", 1),
        ("autoencoder", "x", 2),  # x feeds the encoder and the loss
        ("mnist_mlp", "b2", 4),  # softmax: two live paths, two through stop_gradient(max)
    ],
)
def test_explain_steps_agree_with_generated_gradient(spec, wrt, npaths):
    r = runner.invoke(app, ["explain", f"examples/{spec}.json", "--wrt", wrt])
    assert r.exit_code == 0, r.output
    assert f"{npaths} path{'s' if npaths != 1 else ''} from {wrt}" in r.output
    c = compile_file(f"examples/{spec}.json")
    m = load_source(c.source, spec)
    arrays = example_arrays(m, seed=1)
    fwd = c.forward.graph
    names = fwd.names()
    env = {names[n]: v for n, v in interpreter.evaluate(fwd, arrays, list(fwd.nx.nodes)).items()}
    printed = _evaluate_printed_steps(r.output, env)
    # the generated gradient (compiled with wrt=[NAME] so intermediates work too)
    from bpc.compiler.pipeline import compile_spec
    from bpc.compiler.spec import load_spec

    s, text = load_spec(f"examples/{spec}.json")
    c2 = compile_spec(s.model_copy(update={"wrt": [wrt]}), f"examples/{spec}.json", text)
    _, grads = load_source(c2.source, spec + "_w").value_and_grad(**arrays)
    np.testing.assert_allclose(printed, grads[wrt], rtol=1e-10, atol=1e-12)


def test_explain_sigmoid_2_3_1_shows_the_two_layer_chain():
    r = runner.invoke(app, ["explain", "examples/sigmoid_2_3_1.json", "--wrt", "W1"])
    out = r.output
    assert "d l/d W1 = d l/d X2 · d X2/d X2_add" in out
    assert out.count("; sigmoid: dx = g * y * (1 - y)") == 2  # both layers, in the path
    assert "g_W1 = g_X1_add @ X0.T" in out  # the generated line


def test_explain_product_rule_gives_two_paths():
    import json

    spec = {"params": [{"name": "x", "shape": [3]}], "nodes": ["loss = sum(x * x)"], "loss": "loss"}
    from bpc.compiler.explain import explain
    from bpc.compiler.pipeline import compile_text

    e = explain(compile_text(json.dumps(spec)).forward, "x")
    assert e.total_paths == 2 and "d1_x + d2_x" in e.text()


def test_explain_errors():
    r = runner.invoke(app, ["explain", "examples/scalar.json", "--wrt", "nope"])
    assert r.exit_code == 2 and "error: wrt[0]: unknown name 'nope'" in r.output


def test_explain_takes_the_printed_name_of_a_temporary():
    spec = {
        "inputs": [{"name": "x", "shape": [3]}],
        "params": [{"name": "p", "shape": [3]}, {"name": "q", "shape": [3]}],
        "nodes": ["a = sum(exp(x * p)) + sum(q * p)", "l = a * a"],
        "loss": "l",
    }
    c = compile_text(json.dumps(spec))
    assert "a_mul" in c.forward.graph.names().values()
    e = explain(c.forward, "a_mul")
    assert e.wrt == "a_mul" and "%" not in e.text()
