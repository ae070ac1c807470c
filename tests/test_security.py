"""Specs from untrusted sources: no code injection, whitelisted expressions only."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bpc.compiler.errors import BpcError, ExprError, SpecError
from bpc.compiler.pipeline import compile_text

from .conftest import ROOT

BASE = {
    "inputs": [{"name": "x", "shape": [2, 1]}],
    "params": [{"name": "W", "shape": [1, 2]}],
    "nodes": ["y = sigmoid(W @ x)"],
    "loss": "y",
}

HOSTILE_NAMES = [
    "x; import os",
    "__import__('os')",
    "__class__",
    "_private",
    "a'b",
    'a"b',
    "a\nb",
    "a b",
    "ｘ",  # fullwidth x, a unicode look-alike
    "xа",  # Cyrillic a
    "x" * 65,
    "np",
    "numpy",
    "lambda",
    "None",
    "True",
    "",
    "1x",
    "x-y",
    # $ in a regex matches before a trailing newline: the rule uses fullmatch
    "W\n",
    "evil\n",
    "x\r",
    "x\t",
    # builtins, soft keywords, the compiler's prefix
    "print",
    "sum",
    "input",
    "type",
    "match",
    "case",
    "_",
    "_bpc_tmp",
    "__import__",
]


def _spec(**changes):
    s = json.loads(json.dumps(BASE))
    s.update(changes)
    return json.dumps(s)


@pytest.mark.parametrize("name", HOSTILE_NAMES)
@pytest.mark.parametrize("where", ["param", "input", "node", "module", "dim", "dims", "output", "wrt", "loss"])
def test_hostile_names_are_refused_with_a_location(name, where):
    if where == "dim":
        text = _spec(inputs=[{"name": "x", "shape": [name, 1]}], nodes=["y = sum(sigmoid(W @ x))"])
        loc = "inputs[0].shape[0]"
    elif where == "dims":
        text = _spec(dims={name: 2})
        loc = "dims"
    elif where == "output":
        text = _spec(outputs=[name])
        loc = "outputs[0]"
    elif where == "wrt":
        text = _spec(wrt=[name])
        loc = "wrt[0]"
    elif where == "loss":
        text = _spec(loss=name)
        loc = "loss"
    elif where == "param":
        text = _spec(params=[{"name": name, "shape": [1, 2]}], nodes=[{"name": "y", "op": "matmul", "inputs": [name, "x"]}])
        loc = "params[0].name"
    elif where == "input":
        text = _spec(inputs=[{"name": name, "shape": [2, 1]}], nodes=[{"name": "y", "op": "matmul", "inputs": ["W", name]}])
        loc = "inputs[0].name"
    elif where == "node":
        text = _spec(nodes=[{"name": name, "op": "matmul", "inputs": ["W", "x"]}], loss=name)
        loc = "nodes[0].name"
    else:
        text = _spec(name=name)
        loc = "name"
    with pytest.raises(SpecError) as e:
        compile_text(text)
    assert e.value.location == loc or (where == "dims" and e.value.location.startswith("dims"))
    assert "\n" not in str(e.value) and "\r" not in str(e.value)


def test_one_name_rule():
    from bpc.compiler.names import MAX_NAME_LENGTH, is_valid_name

    for name in HOSTILE_NAMES:
        assert not is_valid_name(name), name
    for name in ["x", "W1", "g_W", "a" * MAX_NAME_LENGTH, "forward", "loss", "Batch_2", "numpy_like", "bpc"]:
        assert is_valid_name(name), name
    assert not is_valid_name(None) and not is_valid_name(3)


@pytest.mark.parametrize("name", ["forward", "value_and_grad", "PARAMS", "rng", "dims", "g_W", "W_2", "a" * 64])
def test_valid_names_that_look_like_generated_ones_work(name):
    """A user name never collides with generated ones: g_<name>, temporaries, locals."""
    from bpc.runtime.loader import load_source

    spec = {
        "inputs": [{"name": "x", "shape": ["batch", 2]}],
        "params": [{"name": "W", "shape": [2, 1]}, {"name": name, "shape": [1]}],
        "nodes": [f"h = x @ W + {name}", "loss = sum(h * h)"],
        "loss": "loss",
        "outputs": ["h"],
    }
    c = compile_text(json.dumps(spec))
    m = load_source(c.source, "names")
    loss, grads = m.value_and_grad(**m.init_params(), **m.example_inputs())
    assert set(grads) == {"W", name}


@pytest.mark.parametrize(
    "expr,column,message",
    [
        ("y = x.shape", 5, "only .T"),
        ("y = x.__class__", 5, "only .T"),
        ("y = __import__('os')", 5, "dunder"),
        ("y = (lambda: x)()", 5, "only registered ops"),
        ("y = sum([x for x in W])", 9, "ListComp"),
        ("y = sigmoid(*x)", 13, "*arguments"),
        ("y = sum(x, **{'axis': 0})", 14, "**arguments"),
        ("y = x[W]", 7, "integer literals"),
        ("y = x[0:2:1]", 7, "step"),
        ("y = x if W else x", 5, "IfExp"),
        ("y = 'x'", 5, "only numbers"),
        ("y = (z := x)", 6, "NamedExpr"),
        ("y = f'{x}'", 5, "JoinedStr"),
        ("y = x and W", 5, "BoolOp"),
        ("y = x % W", 5, "Mod"),
        ("y = x < W < x", 5, "single comparisons"),
        ("y = np.save(x)", 5, "np.save is not supported"),
        ("y = x.__add__(x)", 5, "method .__add__() is not supported"),
        ("y = np.__dict__", 5, "np.__dict__ is not a value"),
        ("y = input(x)", 5, "not an op usable in specs"),
        ("y = sum(x, axis=W)", 17, "literals"),
    ],
)
def test_expression_grammar_is_whitelisted(expr, column, message):
    with pytest.raises(BpcError) as e:
        compile_text(_spec(nodes=[expr]))
    assert e.value.location == f"nodes[0], column {column}", str(e.value)
    assert message in str(e.value)


def test_statements_other_than_one_assignment_are_refused():
    for expr in ["import os", "y = x\nimport os", "y = x; import os", "x", "del x", "y: int = x", "y = W = x"]:
        with pytest.raises(ExprError):
            compile_text(_spec(nodes=[expr]))


HOSTILE_TEXT = '"""\nimport os; os.system("touch /tmp/bpc_pwned")\n"""\\\r\x00\u2028 \' # end'


def test_hostile_text_reaches_code_only_as_inert_text(tmp_path):
    spec = json.loads(_spec(description=HOSTILE_TEXT))
    spec["params"][0]["doc"] = HOSTILE_TEXT
    spec["nodes"] = [{"name": "y", "op": "sigmoid", "inputs": ["z"], "doc": HOSTILE_TEXT}, "z = W @ x"]
    p = tmp_path / 'we"ird\'name.json'
    p.write_text(json.dumps(spec))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "bpc", "compile", str(p), "-o", str(out)]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    # the file name is no module name: a one-line error that suggests --name
    assert r.returncode == 2 and "--name" in r.stderr and r.stderr.count("\n") == 1, r.stderr
    r = subprocess.run(cmd + ["--name", "weird"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    module = next(out.glob("*.py"))
    canary = "/tmp/bpc_pwned"
    probe = (
        "import sys, importlib.util, os\n"
        "import numpy\n"
        f"spec = importlib.util.spec_from_file_location('m', {str(module)!r})\n"
        "m = importlib.util.module_from_spec(spec)\n"
        "before = set(sys.modules)\n"
        "spec.loader.exec_module(m)\n"
        "new = sorted(k for k in set(sys.modules) - before if not k.startswith('numpy'))\n"
        "names = sorted(k for k in vars(m) if not k.startswith('__'))\n"
        "print(new, names)\n"
    )
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == (
        "[] ['DIMS', 'ENTRY_POINTS', 'INPUTS', 'LOSS', 'OUTPUTS', 'PARAMS', 'WRT', '_self_check', 'example_inputs', "
        "'forward', 'init_params', 'np', 'value_and_grad']"
    ).replace("'DIMS', ", "")
    import os

    assert not os.path.exists(canary)


def test_generated_functions_use_no_builtins_a_user_name_could_shadow():
    """User names become parameters; forward/value_and_grad read nothing global but
    np and the module's own helpers, whose reserved _bpc prefix no user name has."""
    import ast

    for path in (ROOT / "generated").glob("*.py"):
        tree = ast.parse(path.read_text())
        for fn in tree.body:
            if isinstance(fn, ast.FunctionDef) and fn.name in ("forward", "value_and_grad"):
                params = {a.arg for a in fn.args.args}
                stored = {n.id for n in ast.walk(fn) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
                loaded = {n.id for n in ast.walk(fn) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
                free = {n for n in loaded - params - stored if not n.startswith("_bpc_")}
                assert free <= {"np"}, (path.name, free)


def test_attribute_ranges_are_checked():
    """Attr(min=, max=): values outside are SpecErrors, not a ZeroDivisionError later."""
    from bpc.compiler.ops.registry import Attr, _check_attr

    n = Attr("n", "int", min=1, max=3)
    assert _check_attr("op", n, 2, "here") == 2
    for bad in (0, 4, -1):
        with pytest.raises(SpecError) as e:
            _check_attr("op", n, bad, "here")
        assert e.value.location == "here" and "attribute 'n' of op 'op'" in e.value.message
    for bad in (10**400, float("inf"), float("nan")):
        with pytest.raises(SpecError):
            _check_attr("op", Attr("p", "float"), bad, "here")
    with pytest.raises(SpecError, match="expected an integer >= 1"):
        compile_text(_spec(inputs=[{"name": "x", "shape": [2]}], nodes=["y = sum(one_hot(x, num_classes=0) @ W.T)"]))
