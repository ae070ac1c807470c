"""The Python front end: seed notebooks as written, the subset, its errors, and safety.

Gradients are checked against central finite differences (runtime.check) and,
where a notebook prints numbers, against those numbers; nothing here is a
gradient typed in by hand except the notebooks' own printed values.
"""

from __future__ import annotations

import ast
import random
import textwrap

import black
import numpy as np
import pytest
from typer.testing import CliRunner

import bpc
from bpc.cli.main import app
from bpc.compiler.errors import BpcError
from bpc.compiler.options import CompileOptions
from bpc.compiler.pipeline import compile_file
from bpc.runtime.check import check_compiled
from bpc.runtime.loader import load_source

from .conftest import NOTEBOOK_FLAGS, NOTEBOOKS, ROOT, notebook_options

IDS = [p.stem for p in NOTEBOOKS]


def compiled_notebook(name: str):
    path = ROOT / "examples" / "notebooks" / name
    c = compile_file(path.relative_to(ROOT), options=notebook_options(path))
    return c, load_source(c.source, c.name)


def grads_of(name: str):
    c, m = compiled_notebook(name)
    loss, grads = m.value_and_grad(**m.init_params(), **m.example_inputs())
    return loss, grads, m


# ---------------------------------------------------------------- the seeds


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_every_notebook_compiles_and_its_gradients_match_finite_differences(path):
    c = compile_file(path.relative_to(ROOT), options=notebook_options(path))
    result = check_compiled(c, seed=0)
    assert result.passed, [(t.name, t.max_rel) for t in result.tensors if not t.passed]
    assert {t.name for t in result.tensors} >= set(c.forward.wrt)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_generated_notebook_module_is_golden_formatted_and_numpy_only(path):
    c = compile_file(path.relative_to(ROOT), options=notebook_options(path))
    committed = (ROOT / "generated" / f"{path.stem}.py").read_text()
    assert committed == c.source, f"regenerate generated/{path.stem}.py (flags: {NOTEBOOK_FLAGS[path.name]})"
    assert black.format_str(c.source, mode=black.Mode()) == c.source
    imports = [n for n in ast.walk(ast.parse(c.source)) if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert [ast.unparse(n) for n in imports] == ["import numpy as np"]


def test_seed001_reproduces_the_notebooks_loss_and_gradients():
    """np.random.seed(0) then normal draws in the file's order: the notebook's own
    weights, so its printed loss (327.371) and layer-0 gradients come out."""
    loss, g, m = grads_of("seed001_relu_deep_column.py")
    assert round(float(loss), 3) == 327.371
    np.testing.assert_allclose(g["all_biases_0"].ravel(), [-4.486, 4.947, 6.812, -3.883, -24.935, 0.0], atol=6e-4)
    np.testing.assert_allclose(g["all_weights_0"].ravel(), [-5.383, 5.937, 8.174, -4.66, -29.922, 0.0], atol=6e-4)
    np.testing.assert_allclose(g["all_biases_1"].ravel(), [0.0, -11.297, 0.0, 0.0, -10.722, 0.0], atol=6e-4)
    # the weights are the notebook's: its printed all_weights[3], first row
    np.testing.assert_allclose(m.init_params()["all_weights_3"][0, :3], [0.96939671, -1.17312341, 1.94362119])
    assert m.INPUTS == {"y": (1, 1)} and "net_input" in m.WRT


def test_seed003_reproduces_the_notebooks_gradients():
    loss, g, _ = grads_of("seed003_sigmoid_neuron.py")
    np.testing.assert_allclose(np.ravel(loss)[0], 0.73105858, atol=1e-8)
    np.testing.assert_allclose(g["W1"].ravel(), [0.5898, -0.3932], atol=5e-5)
    np.testing.assert_allclose(g["b1"].ravel(), [0.1966], atol=5e-5)


def test_seed004_reproduces_all_seven_printed_gradients():
    _, g, m = grads_of("seed004_sigmoid_2_3_1_log.py")
    printed = {
        "X0": [-0.05246989, 0.28237541],
        "X_2": [1.46464132],
        "X_1": [-0.47585847, 0.0634478, 0.15861949],
        "W1": [-0.05948231, 0.05948231, 0.00691248, -0.00691248, 0.0068411, -0.0068411],
        "beta1": [-0.11896462, 0.01382496, 0.01368219],
        "W2": [0.15861949, 0.10177702, 0.28699041],
        "beta2": [0.31723898],
    }
    for name, values in printed.items():
        np.testing.assert_allclose(g[name].ravel(), values, atol=5e-9, err_msg=name)
    assert list(m.PARAMS) == ["X0", "W1", "beta1", "W2", "beta2"]  # in the file's order


def test_seed000_unseeded_draws_keep_shapes_not_values():
    _, m = compiled_notebook("seed000_one_hidden_forward.py")
    assert m.PARAMS == {"W0": (3, 4), "W1": (4, 1)}
    assert m.INPUTS == {"X": (1, 3), "Y": (1, 1)}
    np.testing.assert_array_equal(m.example_inputs()["X"], [[0.0, 0.0, 1.0]])


def test_comments_quote_the_source_line_with_the_loop_variable():
    c, _ = compiled_notebook("seed004_sigmoid_2_3_1_log.py")
    assert "seed004_sigmoid_2_3_1_log.py:59 [i=2]: X[i] = activation(linear(W[i],X[i-1],beta[i]))" in c.source


def test_cli_compiles_a_python_file(tmp_path):
    r = CliRunner().invoke(app, ["compile", "examples/notebooks/seed003_sigmoid_neuron.py", "--fn", "f",
                                 "--wrt", "W1,b1", "-o", str(tmp_path), "--check"])
    assert r.exit_code == 0, r.output
    assert "PASSED" in r.output
    assert 'WRT = ("W1", "b1")' in (tmp_path / "seed003_sigmoid_neuron.py").read_text()


def test_python_api_compiles_a_python_file():
    m = bpc.compile("examples/notebooks/seed003_sigmoid_neuron.py", fn="f")
    loss, grads = m.value_and_grad(**m.init_params())
    np.testing.assert_allclose(grads["b1"], [0.19661193], atol=1e-8)


# ---------------------------------------------------------------- the subset


def compile_src(tmp_path, src: str, **kw):
    p = tmp_path / "net.py"
    p.write_text(textwrap.dedent(src))
    return compile_file(p, options=CompileOptions(**kw))


def check_src(tmp_path, src: str, **kw):
    c = compile_src(tmp_path, src, **kw)
    r = check_compiled(c, seed=0)
    assert r.passed, [(t.name, t.max_rel) for t in r.tensors]
    return c, load_source(c.source, c.name)


def test_loops_lists_dicts_aliases_and_helpers(tmp_path):
    c, m = check_src(tmp_path, """
        import numpy as np
        np.random.seed(3)
        sizes = [3, 4, 2]
        Ws = [np.random.randn(sizes[i + 1], sizes[i]) for i in range(len(sizes) - 1)]
        bs = {i: np.zeros((sizes[i + 1], 1)) + 0.1 for i in range(2)}
        x = np.linspace if False else np.ones((3, 1)) * 0.5

        def tanh_layer(W, h, b):
            return np.tanh(W @ h + b)

        act = tanh_layer

        def net(Ws, bs):
            h = x
            cache = {}
            for k in range(len(Ws)):
                h = act(Ws[k], h, bs[k])
                cache['h' + str(k)] = h if False else h
            return np.sum(h ** 2) + 0.5 * np.mean(np.square(Ws[0])), cache
        """, fn="net")
    assert set(m.PARAMS) == {"Ws_0", "Ws_1", "bs_0", "bs_1"}


def test_numpy_spellings_and_methods(tmp_path):
    check_src(tmp_path, """
        import numpy as np
        W = np.array([[0.1, -0.2, 0.3], [0.4, 0.5, -0.6]])
        v = np.array([1.0, 2.0, -1.0]).reshape(3, 1)

        def f(W):
            z = np.dot(W, v).reshape(-1)
            a = np.maximum(z, 0.0) + np.where(z > 0, z, 0.1 * z)
            b = W.T.dot(np.ones((2,))) .clip(0.0) + np.exp(-np.abs(W)).sum(axis=0)
            c = np.concatenate([a, b[:2]], axis=0)
            return np.log1p(np.sum(np.square(c))) + W.mean() + np.sqrt(np.sum(W ** 2) + 1.0)
        """, fn="f")


@pytest.mark.parametrize("src, where, words", [
    ("def f(W):\n    return np.sum(W)\n", "net.py:1:7", "cannot tell the shape of argument 'W'"),
    ("import numpy as np\nW = np.ones((2, 2))\ndef f(W):\n    return np.linalg.norm(W)\n", "net.py:4:12",
     "not supported"),
    ("import numpy as np\nW = np.ones((2, 2))\ndef f(W):\n    if W[0, 0] > 0:\n        return W\n"
     "    return np.sum(W)\n", "net.py:4:8", "np.where"),
    ("import numpy as np\nW = np.ones((2, 2))\ndef f(W):\n    W[0] = 1.0\n    return np.sum(W)\n",
     "net.py:4:5", "assigning into an array"),
    ("import numpy as np\nW = np.ones((2, 3))\ndef f(W):\n    return np.sum(W @ W)\n", "net.py:4:19",
     "matmul"),
    ("import numpy as np\nW = np.ones((2, 2))\ndef f(W):\n    while True:\n        pass\n", "net.py:4:5",
     "While statements are not supported"),
    ("import numpy as np\nW = np.ones((2, 2))\ndef f(W):\n    return W\n", "net.py:4:5",
     "exactly one element"),
    ("import numpy as np\nW = np.ones((2, 2))\ndef f(W):\n    return f(W)\n", "net.py", "deeper"),
    ("import numpy as np\nW = np.ones((2, 2))\ndef f(W):\n    return np.sum(W.reshape(3, -1))\n",
     "net.py:4:19", "cannot reshape"),
    ("import numpy as np\nn = 10**9\nW = np.ones((n, n))\ndef f(W):\n    return np.sum(W)\n", "net.py:4:7",
     "elements"),
    ("def f(:\n", "net.py:1:7", "invalid Python"),
])
def test_unsupported_constructs_are_one_line_errors_at_file_line_col(tmp_path, src, where, words):
    with pytest.raises(BpcError) as e:
        compile_src(tmp_path, src, fn="f")
    msg = e.value.one_line()
    assert "\n" not in msg and where in msg and words in msg, msg


def test_cli_error_is_one_line_exit_2(tmp_path):
    p = tmp_path / "net.py"
    p.write_text("import numpy as np\nW = np.ones((2, 2))\ndef f(W):\n    return np.fft.fft(W)\n")
    r = CliRunner().invoke(app, ["compile", str(p), "--fn", "f", "-o", str(tmp_path / "out")])
    assert r.exit_code == 2 and r.output.startswith("error: ") and r.output.count("\n") == 1, r.output
    assert not (tmp_path / "out" / "net.py").exists()


def test_several_functions_need_fn(tmp_path):
    with pytest.raises(BpcError, match="no top-level function 'g'"):
        compile_src(tmp_path, "def f(x):\n    return x\n", fn="g")
    two = "import numpy as np\nW = np.ones((2, 2))\ndef f(W):\n    return np.sum(W)\ndef g(W):\n    return np.sum(W)\n"
    with pytest.raises(BpcError, match=r"name the function to compile with --fn \(top-level functions: f, g\)"):
        compile_src(tmp_path, two)
    c = compile_src(tmp_path, two.split("def g")[0])  # one function: it is the one
    assert "def value_and_grad(W)" in c.source


def test_comparisons_and_boolean_operators_evaluate_as_python_does(tmp_path):
    """Each operand of a chained comparison runs once; and/or stop at the operand
    that decides and give it as the value (checked against running the source)."""
    src = """
        import numpy as np
        W = np.ones((2, 2))
        def f(W):
            seen = []
            if 0 < len(seen.append(1) or seen) < 5:
                seen.append(2)
            k = (len(seen) > 9 and seen.append(3)) or 0 or len(seen)
            none_or_list = None or seen
            return np.sum(W) * (k + len(none_or_list) + len(seen))
        """
    c, m = check_src(tmp_path, src, fn="f")
    loss = float(np.sum(m.value_and_grad(W=np.ones((2, 2)))[0]))
    assert np.isclose(loss, numpy_reference(src, "f", {"W": np.ones((2, 2))}))


def test_shape_flag_and_defaults(tmp_path):
    c, m = check_src(tmp_path, """
        import numpy as np
        def f(W, s=2.0, b=np.zeros((3,))):
            return np.sum(np.tanh(W * s) @ np.ones((4,)) + b)
        """, fn="f", shapes={"W": (3, 4)})
    assert m.PARAMS == {"W": (3, 4), "b": (3,)}


# ---------------------------------------------------------------- safety


PAYLOAD = "__import__('os').system('touch {marker}')"


@pytest.mark.parametrize("place", ["module", "default", "helper", "loss", "import"])
def test_planted_code_is_never_executed(tmp_path, place):
    marker = tmp_path / "pwned"
    payload = PAYLOAD.format(marker=marker)
    src = {
        "module": f"import numpy as np\nW = np.ones((2, 2))\nx = {payload}\ndef f(W):\n    return np.sum(W)\n",
        "default": f"import numpy as np\ndef f(W=np.ones((2, 2)), k={payload}):\n    return np.sum(W)\n",
        "helper": f"import numpy as np\nW = np.ones((2, 2))\ndef g():\n    {payload}\n"
                  "def f(W):\n    g()\n    return np.sum(W)\n",
        "loss": f"import numpy as np\nW = np.ones((2, 2))\ndef f(W):\n    return np.sum(W) + {payload}\n",
        "import": "import os\nimport numpy as np\nW = np.ones((2, 2))\n"
                  f"os.system('touch {marker}')\ndef f(W):\n    os.system('touch {marker}')\n    return np.sum(W)\n",
    }[place]
    try:
        c = compile_src(tmp_path, src, fn="f")
    except BpcError:
        c = None
    assert not marker.exists()
    if c is not None:  # compiled because the payload was not needed: it is not in the module
        assert "system" not in c.source and "__import__" not in c.source


GOOD = textwrap.dedent("""
    import numpy as np
    np.random.seed(1)
    W1 = np.random.normal(size=(3, 2))
    b1 = np.zeros((3, 1))
    x = np.array([[0.5], [-1.0]])

    def sigmoid(z):
        return 1 / (1 + np.exp(-z))

    def f(W1, b1):
        h = sigmoid(W1 @ x + b1)
        for k in range(2):
            h = h * 0.5 + np.tanh(h)
        return np.sum(h ** 2)
    """)


def _mutants(seed: int, n: int):
    rng = random.Random(seed)
    pieces = ["(", ")", "[", "]", ":", ",", "**", "@", "np.", "__import__('os')", "-1", "10**9", "'k'", "x",
              "lambda: 0", "yield", "\n", "    ", "for", "while 1:", "del", "*", "global x", "f(", "None", "1e400",
              "[0]*10**8", "x.__class__", "import os", "=", "return", "range(10**7)", "{}", "np.random.seed(-1)"]
    lines = GOOD.splitlines()
    for _ in range(n):
        text = GOOD
        for _ in range(rng.randint(1, 4)):
            op = rng.random()
            i = rng.randrange(len(text) + 1)
            if op < 0.4:
                text = text[:i] + rng.choice(pieces) + text[i:]
            elif op < 0.7:
                j = min(len(text), i + rng.randint(1, 8))
                text = text[:i] + text[j:]
            else:
                k = rng.randrange(len(lines))
                text = text + "\n" + lines[k]
        yield text


def test_fuzz_mutated_sources_raise_only_bpc_errors(tmp_path):
    """Random edits of a good file: every outcome is a compiled module or a
    BpcError with a location; never another exception, never a hang."""
    marker = tmp_path / "pwned"
    ok = errors = 0
    for text in _mutants(0, 300):
        text = text.replace("__import__('os')", f"__import__('os').system('touch {marker}')")
        try:
            c = compile_src(tmp_path, text, fn="f")
            ok += 1
            assert "__import__" not in c.source
        except BpcError as e:
            errors += 1
            assert e.location, e
    assert not marker.exists()
    assert ok > 10 and errors > 10, (ok, errors)  # the generator reaches both outcomes


def test_fuzz_random_token_soup(tmp_path):
    rng = random.Random(7)
    tokens = ["def", "f", "(", ")", ":", "return", "np", ".", "sum", "x", "=", "1", "[", "]", "for", "in", "range",
              "\n", "    ", "import", "numpy", "as", "+", "*", "@", "if", "else", ",", "'a'", "{", "}", "W", "**"]
    for _ in range(300):
        text = " ".join(rng.choice(tokens) for _ in range(rng.randint(1, 40)))
        try:
            compile_src(tmp_path, text, fn="f")
        except BpcError:
            pass


def test_hostile_file_name_and_source_text_stay_in_comments(tmp_path):
    """A file name with a line break, and source lines with odd characters, never
    end a comment early: the generated module parses and holds no planted code."""
    d = tmp_path / "evil\nimport os\nos.system('x')\n"
    d.mkdir()
    p = d / "net.py"
    p.write_text("import numpy as np\nW = np.ones((2, 2))\ndef f(W):\n"
                 "    h = np.tanh(W)  # \u2028 os.system('y') \x0c\n    return np.sum(h)\n")
    c = compile_file(p, options=CompileOptions(fn="f"))
    tree = ast.parse(c.source)
    calls = {ast.unparse(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    assert not any("system" in f for f in calls)
    imports = [ast.unparse(n) for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert imports == ["import numpy as np"]


# ---------------------------------------------------------------- differential: JSON twin vs Python


def _python_twin(spec: dict) -> str:
    """A generated network (tests/netgen.py) written as a Python file: inputs and
    params as module-level arrays, the nodes as the body of f(params...)."""
    import json

    lines = ["import numpy as np", ""]
    for d in spec.get("inputs", []) + spec.get("params", []):
        value, shape = d.get("value", 0.5), tuple(d["shape"])
        if isinstance(value, list) and np.size(value) == int(np.prod(shape)):
            lines.append(f"{d['name']} = np.array({json.dumps(value)}).reshape({shape!r})")
        else:
            lines.append(f"{d['name']} = np.zeros({shape!r}) + {float(value)!r}")
    params = [d["name"] for d in spec.get("params", [])]
    lines += ["", f"def f({', '.join(params)}):"]
    class NumpyNames(ast.NodeTransformer):  # in Python, sum(x) is the builtin: bpc's is np.sum
        def visit_Call(self, node):
            self.generic_visit(node)
            if isinstance(node.func, ast.Name) and node.func.id in ("sum", "max", "min", "abs"):
                node.func = ast.Attribute(value=ast.Name(id="np", ctx=ast.Load()), attr=node.func.id, ctx=ast.Load())
            return node

    for n in spec["nodes"]:
        if isinstance(n, str):
            lines.append(f"    {ast.unparse(NumpyNames().visit(ast.parse(n)))}")
        else:
            if n["op"] == "slice":  # written as Python writes it: x[1:, -1]
                parts = [f"{'' if i[0] is None else i[0]}:{'' if i[1] is None else i[1]}" if isinstance(i, list)
                         else str(i) for i in n["attrs"]["index"]]
                lines.append(f"    {n['name']} = {n['inputs'][0]}[{', '.join(parts)}]")
                continue
            args = list(n["inputs"]) + [f"{k}={v!r}" for k, v in (n.get("attrs") or {}).items()]
            op = f"np.{n['op']}" if n["op"] in ("sum", "max", "min", "abs") else n["op"]
            lines.append(f"    {n['name']} = {op}({', '.join(args)})")
    lines.append(f"    return {spec['loss']}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("seed", range(40))
def test_generated_networks_compile_the_same_from_python(tmp_path, seed):
    """Random networks over every generated op, compiled from JSON and from
    their Python twin: same loss and gradients (float64, to 1e-12)."""
    from .netgen import network_from_seed

    spec = network_from_seed(seed).spec
    if any(d.get("classes") for d in spec.get("inputs", [])) or not spec.get("params"):
        pytest.skip("label inputs and param-free networks have no Python twin here")
    import json

    wrt = tuple(spec.get("wrt") or [d["name"] for d in spec["params"]])
    p = tmp_path / "twin.py"
    p.write_text(_python_twin(spec))
    try:
        ref = bpc.compile(json.dumps({**spec, "wrt": list(wrt)}))
    except BpcError as e:  # a spec bpc refuses (a wrt with no gradient): refused from Python too
        with pytest.raises(BpcError):
            bpc.compile(str(p), fn="f", wrt=wrt)
        return
    twin = bpc.compile(str(p), fn="f", wrt=wrt)
    arrays = {**ref.init_params(), **ref.example_inputs()}
    loss, grads = ref.value_and_grad(**arrays)
    tloss, tgrads = twin.value_and_grad(**{k: arrays[k] for k in (*twin.PARAMS, *twin.INPUTS)})
    np.testing.assert_allclose(tloss, loss, rtol=1e-12, atol=1e-12)
    assert set(tgrads) == set(grads)
    for k in grads:
        np.testing.assert_allclose(tgrads[k], grads[k], rtol=1e-12, atol=1e-12, err_msg=k)


def test_shape_annotations(tmp_path):
    c, m = check_src(tmp_path, """
        import numpy as np
        x = np.array([[0.5], [-1.0]])
        def f(W: (3, 2), b: "3x1", v: np.ndarray = np.ones((3, 1))):
            return np.sum(np.tanh(W @ x + b) * v)
        """, fn="f")
    assert m.PARAMS == {"W": (3, 2), "b": (3, 1), "v": (3, 1)}
    with pytest.raises(BpcError, match="a shape annotation lists sizes"):
        compile_src(tmp_path, "import numpy as np\ndef f(W: (3, 'a')):\n    return np.sum(W)\n", fn="f")


# ---------------------------------------------------------------- regressions from an outside review


def numpy_reference(src: str, fn: str, arrays: dict) -> float:
    """Run the file for real (our own test source) to get NumPy's answer."""
    scope: dict = {}
    exec(compile(textwrap.dedent(src), "ref.py", "exec"), scope)  # noqa: S102 - test sources we wrote
    return float(np.sum(scope[fn](**arrays)))


@pytest.mark.parametrize("src", [
    # an argument rebound in the body: the param is still what is differentiated
    """
    import numpy as np
    W = np.array([[1.0, -2.0], [0.3, 0.7]]); x = np.array([0.5, 2.0])
    def f(W, x):
        x = x.reshape(-1, 1)
        W = W * 2.0
        return np.sum(np.tanh(W @ x))
    """,
    # many temporary constants: none is mistaken for another
    """
    import numpy as np
    W = np.array([[1.0], [-2.0], [0.5]])
    def f(W):
        h = W
        for i in range(6):
            c = np.full((3, 1), float(i + 2))
            h = h * c
            c = None
        return np.sum(h) + np.sum(W * np.array([[1.], [2.], [3.]]) + W * (np.ones((3, 1)) * 5))
    """,
    # a nested function reads the enclosing function's names
    """
    import numpy as np
    scale = 1.0
    W = np.array([[1.0, -2.0], [0.3, 0.7]])
    def f(W):
        scale = 3.0
        def g(x):
            return x * scale
        return np.sum(g(W) ** 2)
    """,
    # defaults are evaluated when def runs
    """
    import numpy as np
    lam = 2.0
    W = np.array([[1.0, -2.0], [0.3, 0.7]])
    def helper(x, reg=lam):
        return np.sum(x ** 2) * reg
    def f(W, reg=lam):
        return helper(W) + np.sum(W) * reg
    lam = 5.0
    """,
    # a helper's local kept in a cache and returned
    """
    import numpy as np
    W = np.array([[1.0, -2.0], [0.3, 0.7]])
    x = np.array([[0.5], [-1.0]])
    def layer(W, a, cache):
        z = W @ a
        cache['z'] = z
        return z
    def f(W):
        cache = {}
        h = layer(W, x, cache)
        return np.sum(h * cache['z']) + np.sum(h) + sum([W, W])[0, 0] + np.sum(W * True)
    """,
])
def test_python_semantics_kept(tmp_path, src):
    c, m = check_src(tmp_path, src, fn="f")
    arrays = {**m.init_params(), **m.example_inputs()}
    loss, _ = m.value_and_grad(**arrays)
    assert np.isclose(float(np.sum(loss)), numpy_reference(src, "f", {k: arrays[k] for k in m.PARAMS}), rtol=1e-12)


@pytest.mark.parametrize("src, words", [
    ("import numpy as np\nW = np.ones((2, 2))\ndef f(W):\n    h = W\n    h += 1.0\n    return np.sum(W * h)\n",
     "in-place '+=' on an array that another name also holds"),
    ("import numpy as np\nrng = np.random.default_rng(0)\nW = np.ones((2, 2))\n"
     "def f(W):\n    return np.sum(W * rng.normal(size=(2, 2)))\n", "random draws inside the compiled function"),
    ("import numpy as np\nrng = np.random.default_rng(0)\nW = rng.randn(2, 2)\ndef f(W):\n    return np.sum(W)\n",
     "not a method of np.random.default_rng()"),
    ("import numpy as np\nW = np.ones((2, 2))\ndef f(W):\n    return np.linalg.norm(W)\n",
     "np.linalg.norm is not supported"),
    ("import numpy as np\nW = np.ones((2, 2))\ndef f(W):\n    for i, w in enumerate(W):\n        pass\n"
     "    return np.sum(W)\n", "'enumerate' is not supported"),
    ("import numpy as np\nW = np.ones((2, 2))\ndef f(W):\n    return np.sum(W[:, None])\n", ".reshape"),
])
def test_review_refusals(tmp_path, src, words):
    with pytest.raises(BpcError) as e:
        compile_src(tmp_path, src, fn="f")
    assert words in e.value.one_line(), e.value.one_line()


def test_skipped_statements_that_may_draw_desynchronise_the_seed(tmp_path):
    """After a skipped statement that may have drawn (a print of a draw, an unsupported
    draw), later draws are not the file's: bpc keeps their shapes, not wrong values."""
    for middle in ("print(np.random.rand())", "idx = np.random.randint(0, 10)"):
        c, m = check_src(tmp_path, f"""
            import numpy as np
            np.random.seed(0)
            {middle}
            W = np.random.randn(2, 2)
            def f(W):
                return np.sum(W ** 2)
            """, fn="f")
        params = m.init_params()
        assert not np.allclose(params["W"], np.random.RandomState(0).randn(2, 2))  # not the unshifted draw


@pytest.mark.parametrize("stmt", [
    "c = abs()", "c = max([])", "c = list(range(int(1e300)))", "d = {'a': 1}\nc = d[[1]]", "c = np.ones(2)[5]",
    "c = np.ones((2, 2))[0, 0, 0]", "c = " + " + ".join(["1.0"] * 1500), "c = np.add(np.ones((10**6, 1)), np.ones((1, 10**6)))",
    "c = np.dot(np.ones((10**6, 1)), np.ones((1, 10**6)))", "c = np.stack([np.ones(10**6)] * 1000)",
    "c = np.array([[0.0] * 100000] * 100000)", "l = [0] * 100000\nfor i in range(40):\n    l = l + l\nc = l",
    "A = np.ones((1000, 1000)) * 0.001\nfor i in range(30):\n    A = A @ A\nc = A", "c = 2 ** -1 + 2 ** 40 + 10 ** 17",
])
def test_hostile_constants_are_errors_not_crashes(tmp_path, stmt):
    src = f"import numpy as np\n{stmt}\ndef f(W=np.ones((2, 2))):\n    return np.sum(W) * np.sum(c)\n"
    try:
        compile_src(tmp_path, src, fn="f")
    except BpcError as e:
        assert e.location and "\n" not in e.one_line()
