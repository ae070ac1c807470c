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


STEP = re.compile(r"^  ([A-Za-z_]\w*) = (.+)$")


def _explanation(output: str) -> str:
    """The explanation, without the generated code quoted after it."""
    return output.split("\nThe generated code that computes it")[0]


def _evaluate_printed_steps(output: str, env: dict) -> np.ndarray:
    """Run every printed step line (and the shared parts before them), then the
    printed sum over paths."""
    env = dict(env, np=np)
    ran = 0
    for line in _explanation(output).splitlines():
        m = STEP.match(line)
        if m:
            env[m.group(1)] = eval(m.group(2), env)  # noqa: S307 - our own printed NumPy
            ran += 1
    assert ran > 0 or "contribute 0" in output
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
        ("mnist_mlp", "b2", 1),  # the loss statement's 4 op paths (2 through stop_gradient) are one step
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
    out = _explanation(r.output)
    assert "path 1: W1 -> X1 -> X2 -> l" in out
    assert "d l/d W1 = d l/d X2 · d X2/d X1 · d X1/d W1" in out
    # one step per statement, named after the generated code's gradient variables
    assert "  # X2 = sigmoid(W2 @ X1 + beta2)\n" in out
    # (a product of 2-D operands is spelled a.dot(b): the same as a @ b, cheaper)
    assert "  g_X1 = W2.T.dot(g_X2 * (X2 * (1.0 - X2)))\n" in out
    assert "  #   add, at W1.dot(X0) + beta1: da = g, db = g" in out  # a temporary: by its expression
    assert out.count("sigmoid: dx = g * y * (1 - y)") == 2  # both layers, in the path
    assert "g_W1 = g_X1_add.dot(X0.T)" in r.output  # the generated line, quoted after it


def _temporaries(c) -> set[str]:
    """Printed names of the forward graph's compiler-made values."""
    fwd = c.forward.graph
    names = fwd.names()
    return {names[n] for n in fwd.nx.nodes if not fwd.data(n)["named"] and fwd.op(n) not in ("input", "param")}


@pytest.mark.parametrize(
    "spec,wrt",
    [("sigmoid_2_3_1", "W1"), ("mnist_mlp", "w1"), ("autoencoder", "x"), ("relu_deep", "W1"), ("two_hidden", "W0")],
)
def test_explain_never_names_a_compiler_temporary(spec, wrt):
    r = runner.invoke(app, ["explain", f"examples/{spec}.json", "--wrt", wrt])
    assert r.exit_code == 0, r.output
    temps = _temporaries(compile_file(f"examples/{spec}.json"))
    assert temps  # every one of these has some (X1_add, loss_sub_2, ...)
    words = set(re.findall(r"[A-Za-z_]\w*", _explanation(r.output)))
    assert not words & temps, sorted(words & temps)


def test_explain_mnist_is_short_and_says_what_it_collapsed():
    r = runner.invoke(app, ["explain", "examples/mnist_mlp.json", "--wrt", "w1"])
    out = _explanation(r.output)
    assert out.startswith("d loss / d w1 by the chain rule: 1 path from w1 to loss through the spec's values.")
    assert "(Through the compiler's ops there are 4: the paths inside one statement are summed in its step.)" in out
    assert "path 1: w1 -> z1 -> h1 -> z2 -> h2 -> prediction -> loss" in out
    assert "  #   (4 paths through its ops, summed here)" in out  # softmax_cross_entropy's
    assert "stop_gradient, at prediction.max(axis=-1, keepdims=True): no gradient" in out
    assert len(out.splitlines()) <= 60
    assert max(len(ln) for ln in out.splitlines()) <= 200
    steps = [m.group(1) for m in map(STEP.match, out.splitlines()) if m]
    assert [s for s in steps if s.startswith("g_") and "_in_" not in s] == [
        "g_loss", "g_prediction", "g_h2", "g_z2", "g_h1", "g_z1", "g_w1"
    ]


def test_explain_product_rule_gives_two_paths():
    spec = {"params": [{"name": "x", "shape": [3]}], "nodes": ["a = exp(x)", "loss = sum(a * x)"], "loss": "loss"}
    e = explain(compile_text(json.dumps(spec)).forward, "x")
    assert e.total_paths == 2 and "grad_x = d1_x + d2_x" in e.text()
    # a value used twice inside one statement: one path, the product rule inside its step
    spec = {"params": [{"name": "x", "shape": [3]}], "nodes": ["loss = sum(x * x)"], "loss": "loss"}
    e = explain(compile_text(json.dumps(spec)).forward, "x")
    assert e.total_paths == 1 and e.op_paths == 2 and "(2 paths through its ops, summed here)" in e.text()
    x = np.array([1.0, -2.0, 3.0])
    env = {"np": np, "x": x, "g_loss": 1.0}
    for name, code, _ in e.paths[0].steps[-1].parts:
        env[name] = eval(code, env)  # noqa: S307 - our own printed NumPy
    np.testing.assert_allclose(eval(e.paths[0].steps[-1].code, env), 2 * x)  # noqa: S307


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


@pytest.mark.slow
@pytest.mark.parametrize("path", sorted(str(p) for p in __import__("pathlib").Path("examples").glob("*.json")))
def test_every_explanation_of_every_example_runs_and_agrees(path):
    """Every float value of every example the loss depends on, as --wrt: the
    printed lines run, and their sum is the generated module's gradient."""
    from bpc.compiler.pipeline import compile_spec
    from bpc.compiler.spec import load_spec

    c = compile_file(path)
    fwd = c.forward.graph
    names = fwd.names()
    m = load_source(c.source, "m")
    arrays = example_arrays(m, seed=1)
    env = {names[n]: v for n, v in interpreter.evaluate(fwd, arrays, list(fwd.nx.nodes)).items()}
    ancestors = fwd.ancestors([fwd.loss])
    values = [
        names[n]
        for n in fwd.nx.nodes
        if n in ancestors and (fwd.data(n)["named"] or fwd.op(n) in ("param", "input")) and fwd.dtype(n) == "f64"
    ]
    s, text = load_spec(path)
    c2 = compile_spec(s.model_copy(update={"wrt": values}), path, text)
    _, grads = load_source(c2.source, "m2").value_and_grad(**arrays)
    assert values
    for wrt in values:
        printed = _evaluate_printed_steps(explain(c.forward, wrt).text(), env)
        np.testing.assert_allclose(printed, grads[wrt], rtol=1e-9, atol=1e-12, err_msg=wrt)


@pytest.mark.parametrize("seed", list(range(24)) + [64, 90, 137])  # 64, 137: a 0-d transpose; 90: a path adding 0 first
def test_explanations_of_random_networks_run_and_agree(seed):
    """Random networks from the differential tester's generator (every op,
    shapes, fan-out): for every float value the loss depends on, the printed
    lines run and their sum is the generated module's gradient."""
    from bpc.compiler.pipeline import compile_spec
    from bpc.compiler.spec import spec_from_data
    from tests.netgen import network_from_seed

    spec = network_from_seed(seed).spec
    inputs = [i["name"] for i in spec.get("inputs", []) if "classes" not in i]
    spec = {**spec, "wrt": inputs or None}  # the spec's own may name a bool; explain picks its own
    spec = {k: v for k, v in spec.items() if v is not None}
    c = compile_text(json.dumps(spec))
    fwd = c.forward.graph
    names = fwd.names()
    arrays = example_arrays(load_source(c.source, "m"), seed=1)
    env = {names[n]: v for n, v in interpreter.evaluate(fwd, arrays, list(fwd.nx.nodes)).items()}
    ancestors = fwd.ancestors([fwd.loss])
    values = [
        names[n]
        for n in fwd.nx.nodes
        if n in ancestors and (fwd.data(n)["named"] or fwd.op(n) in ("param", "input")) and fwd.dtype(n) == "f64"
    ]
    from bpc.compiler.errors import GraphError

    while True:  # values without a gradient (a comparison's bool, named) are left out
        try:
            c2 = compile_spec(spec_from_data(spec).model_copy(update={"wrt": values}))
            break
        except GraphError as e:
            values.remove(re.search(r"'(\w+)' is a", e.message).group(1))
    _, grads = load_source(c2.source, "m2").value_and_grad(**arrays)
    for wrt in values:
        with np.errstate(all="ignore"):
            printed = _evaluate_printed_steps(explain(c.forward, wrt).text(), env)
        np.testing.assert_allclose(printed, grads[wrt], rtol=1e-8, atol=1e-10, equal_nan=True, err_msg=wrt)


@pytest.mark.parametrize("spec, wrt", [("sigmoid_2_3_1", "W1"), ("one_hidden", "W0"), ("mlp_2_10_10_1", "w2")])
def test_explain_jvp_lines_run_and_give_the_directional_derivative(spec, wrt):
    """bpc explain --mode jvp prints forward-mode lines that run on the forward
    values and give d_loss = <grad, t> (checked against value_and_grad)."""
    import numpy as np
    from typer.testing import CliRunner

    from bpc.cli.main import app
    from bpc.compiler.options import CompileOptions
    from bpc.compiler.pipeline import compile_file
    from bpc.runtime import interpreter
    from bpc.runtime.check import example_arrays
    from bpc.runtime.loader import load_source

    r = CliRunner().invoke(app, ["explain", f"examples/{spec}.json", "--wrt", wrt, "--mode", "jvp"])
    assert r.exit_code == 0, r.output
    code = [ln.strip() for ln in r.output.split("then the tangents:")[1].split("\nCheck:")[0].splitlines()]
    code = [ln for ln in code if ln and not ln.startswith("#")]
    assert code[0].startswith(f"t_{wrt} = tangents[") and code[-1].startswith("d_loss = ")
    assert any(ln.startswith("t_") for ln in code[1:-1])
    c = compile_file(f"examples/{spec}.json", options=CompileOptions(wrt=(wrt,)))
    m = load_source(c.source, f"{spec}_jvp_explain")
    arrays = example_arrays(m, seed=1)
    t = np.random.default_rng(0).standard_normal(np.shape(arrays[wrt]))
    scope = {"np": np, **arrays, "tangents": {wrt: t}}
    exec("\n".join(code), scope)  # noqa: S102 - bpc's own printed lines
    _, grads = m.value_and_grad(**arrays)
    np.testing.assert_allclose(np.sum(scope["d_loss"]), np.sum(grads[wrt] * t), rtol=1e-10, atol=1e-12)
