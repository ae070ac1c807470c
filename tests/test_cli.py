"""The CLI through typer's CliRunner: happy paths and every class of user error."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from bpc.cli.main import app

runner = CliRunner()

GOOD = {
    "inputs": [{"name": "x", "shape": [2, 1], "value": [1.0, 2.0]}],
    "params": [{"name": "W", "shape": [1, 2]}],
    "nodes": ["y = sigmoid(W @ x)"],
    "loss": "y",
}


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def write(tmp_path, spec, name="net.json"):
    p = tmp_path / name
    if isinstance(spec, bytes):
        p.write_bytes(spec)
    else:
        p.write_text(spec if isinstance(spec, str) else json.dumps(spec))
    return p


def test_compile_writes_module_and_checks(tmp_path):
    spec = write(tmp_path, GOOD)
    r = run("compile", spec, "-o", tmp_path / "out", "--check")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "out" / "net.py").exists()
    assert "PASSED" in r.output


def test_compile_O0_and_no_comments(tmp_path):
    spec = write(tmp_path, GOOD)
    r = run("compile", spec, "-o", tmp_path, "-O0", "--no-comments")
    assert r.exit_code == 0, r.output
    src = (tmp_path / "net.py").read_text()
    assert "# Backward pass" not in src
    assert "identity" not in src


def test_check_table_and_json(tmp_path):
    spec = write(tmp_path, GOOD)
    r = run("check", spec)
    assert r.exit_code == 0 and "PASSED" in r.output and "max rel error" in r.output
    r = run("check", spec, "--json")
    data = json.loads(r.output)
    assert data["passed"] and data["tensors"][0]["name"] == "W"
    assert data["tensors"][0]["max_rel_error"] < 1e-6


@pytest.mark.parametrize("stage", ["forward", "joint", "optimized"])
@pytest.mark.parametrize("fmt", ["text", "json", "dot"])
def test_ir_dumps(stage, fmt):
    r = run("ir", "examples/sigmoid_2_3_1.json", "--stage", stage, "--format", fmt)
    assert r.exit_code == 0, r.output
    if fmt == "json":
        data = json.loads(r.output)
        assert any(n["id"] == "X1" for n in data["nodes"])
    elif fmt == "dot":
        assert r.output.startswith('digraph "sigmoid_2_3_1"')
    else:
        assert "X1:f64[3,1] = sigmoid" in r.output
        assert ("-- backward --" in r.output) == (stage != "forward")


def test_ir_stats():
    r = run("ir", "examples/relu_deep.json", "--stats")
    assert r.exit_code == 0 and "before" in r.output and "total" in r.output
    assert "simplify: identity: " in r.output and "dce: removed nodes: " in r.output


def test_ops_lists_every_public_op():
    from bpc.compiler.ops import public_ops

    r = run("ops")
    assert r.exit_code == 0
    for name in public_ops():
        assert name in r.output


def _bad(tmp_path, spec):
    p = write(tmp_path, spec)
    out = tmp_path / "out"
    r = run("compile", p, "-o", out)
    return r, out


def mutate(**changes):
    spec = json.loads(json.dumps(GOOD))
    spec.update(changes)
    return spec


BAD = {
    "invalid_json": ('{"inputs": [}', "line 1, column 13", "invalid JSON"),
    "unknown_op": (mutate(nodes=[{"name": "y", "op": "sigmod", "inputs": ["x"]}]), "nodes[0].op", "did you mean 'sigmoid'"),
    "unknown_op_in_expression": (mutate(nodes=["y = sigmod(W @ x)"]), "nodes[0]", "unknown op 'sigmod'"),
    "wrong_arity": (mutate(nodes=[{"name": "y", "op": "add", "inputs": ["x"]}]), "nodes[0]", "takes 2 inputs, got 1"),
    "shape_mismatch": (mutate(nodes=[{"name": "y", "op": "matmul", "inputs": ["W", "W"]}]), "nodes[0]", "inner dimensions differ: [1, 2] @ [1, 2]"),
    "not_broadcastable": (mutate(inputs=GOOD["inputs"] + [{"name": "v", "shape": [3, 1]}], nodes=["y = sum(x + v)"]), "nodes[0], column 9", "shapes [2, 1] and [3, 1] are not broadcastable"),
    "unknown_input_name": (mutate(nodes=[{"name": "y", "op": "matmul", "inputs": ["W", "q"]}]), "nodes[0].inputs[1]", "unknown name 'q'"),
    "unknown_wrt": (mutate(wrt=["W", "nope"]), "wrt[1]", "unknown name 'nope'"),
    "cycle": (mutate(nodes=["a = b + x", "b = a * x", "y = sum(a)"]), "nodes[0]", "cycle: a -> b -> a"),
    "duplicate_name": (mutate(nodes=["x = W @ x", "y = sum(x)"]), "nodes[0]", "duplicate name 'x'"),
    "loss_not_scalar": (mutate(nodes=["y = x * 2.0"]), "loss", "exactly one element"),
    "unknown_key": (mutate(lossy="y"), "spec", "unknown key 'lossy'"),
    "bad_shape": (mutate(params=[{"name": "W", "shape": [1, 0]}]), "params[0].shape[1]", "greater than or equal to 1"),
    "bad_value": (mutate(inputs=[{"name": "x", "shape": [2, 1], "value": [1.0, "a"]}]), "inputs[0].value", "expected a number"),
    "value_shape": (mutate(inputs=[{"name": "x", "shape": [2, 1], "value": [1.0, 2.0, 3.0]}]), "inputs[0].value", "expected [2, 1]"),
    "nan_value": ('{"inputs": [{"name": "x", "shape": [1], "value": [NaN]}], "loss": "x"}', "net.json", "NaN"),
    "bad_name": (mutate(params=[{"name": "W; import os", "shape": [1, 2]}]), "params[0].name", "invalid name"),
    "keyword_name": (mutate(params=[{"name": "lambda", "shape": [1, 2]}]), "params[0].name", "reserved"),
    "disallowed_syntax": (mutate(nodes=["y = __import__('os')"]), "nodes[0], column 5", "dunder name"),
    "attribute_access": (mutate(nodes=["y = sum(x.shape)"]), "nodes[0], column 9", "only .T"),
    "negative_shape": (mutate(params=[{"name": "W", "shape": [-1, 2]}]), "params[0].shape[0]", "greater than or equal to 1"),
    "huge_shape": (mutate(params=[{"name": "W", "shape": [100000, 100000]}]), "params[0].shape", "more than 100000000 elements"),
    "huge_intermediate": (mutate(params=[{"name": "W", "shape": [20000, 1]}], inputs=[{"name": "x", "shape": [1, 20000]}], nodes=["y = sum(W * x)"]), "nodes[0], column 9", "400,000,000 elements"),
    "literal_too_big": (mutate(inputs=[{"name": "x", "shape": [2000, 1000], "value": 1.0}], nodes=["y = sum(x @ W.T)"]), "inputs[0].value", "over the limit"),
    "deep_nesting": (mutate(nodes=["y = " + "sigmoid(" * 150 + "W @ x" + ")" * 150]), "nodes[0]", "nested"),
    "too_many_dims": (mutate(params=[{"name": "W", "shape": [1] * 9}]), "params[0].shape", "more than 8 dimensions"),
    "unknown_dim": (mutate(dims={"batch": 4}), "dims.batch", "no input has a dim named 'batch'"),
    "symbolic_param": (mutate(params=[{"name": "W", "shape": ["n", 2]}]), "params[0].shape", "params need fixed sizes"),
    "wrt_twice": (mutate(wrt=["W", "W"]), "wrt[1]", "listed twice"),
    "bad_initializer": (mutate(params=[{"name": "W", "shape": [1, 2], "init": {"kind": "uniform", "low": 1, "high": 0}}]), "params[0].init", "'low' must be less than 'high'"),
    "value_and_init": (mutate(params=[{"name": "W", "shape": [1, 2], "value": 1.0, "init": {"kind": "zeros"}}]), "params[0]", "either 'value' or 'init'"),
    "bad_classes": (mutate(inputs=GOOD["inputs"] + [{"name": "lab", "shape": [1], "classes": 5}], nodes=["y = softmax_cross_entropy(W, lab)"]), "inputs[1].classes", "declares 5 classes but feeds 2-class"),
    "not_utf8": (b"\xff\xfe{}", "net.json", "not UTF-8"),
    "negative_seed": (mutate(seed=-1), "seed", "greater than or equal to 0"),
    "missing_loss": ({"inputs": GOOD["inputs"]}, "spec", "loss"),
    "non_literal_attribute": (mutate(nodes=["y = sum(W @ x, axis=x)"]), "nodes[0], column 21", "literals"),
    "bad_attribute_value": (mutate(nodes=["y = sum(W @ x, axis='a')"]), "nodes[0]", "attribute 'axis' of op 'sum': expected null, an integer"),
    "unknown_attribute": (mutate(nodes=[{"name": "y", "op": "sum", "inputs": ["x"], "attrs": {"axes": 1}}]), "nodes[0]", "op 'sum' has no attribute 'axes'"),
    # numbers no float holds: one line with the JSON path, not an OverflowError
    "huge_int_value": (mutate(inputs=[{"name": "x", "shape": [2, 1], "value": [1, 10**401]}]), "inputs[0].value[1]", "out of range"),
    "huge_float_value": (json.dumps(mutate(inputs=[{"name": "x", "shape": [2, 1], "value": [1.5, 2.5]}])).replace("2.5", "1e400"), "inputs[0].value[1]", "out of range"),
    "huge_int_attribute": (mutate(nodes=[{"name": "z", "op": "leaky_relu", "inputs": ["x"], "attrs": {"alpha": 10**401}}, "y = sum(W @ z)"]), "nodes[0].attrs.alpha", "out of range"),
    "huge_int_in_expression": (mutate(nodes=[f"y = sum(W @ x * {10**401})"]), "nodes[0], column 17", "out of range"),
    "huge_float_in_expression": (mutate(nodes=["y = sum(W @ x * 1e400)"]), "nodes[0], column 17", "out of range"),
    "huge_int_attribute_in_expression": (mutate(nodes=[f"y = sum(leaky_relu(W @ x, alpha={10**401}))"]), "nodes[0], column 9", "expected a finite number"),
    "huge_seed": (mutate(seed=2**64), "seed", "less than or equal to 9223372036854775807"),
    "huge_classes": (mutate(inputs=GOOD["inputs"] + [{"name": "lab", "shape": [1], "classes": 10**12}]), "inputs[1].classes", "less than or equal"),
    # attribute ranges and symbolic sizes
    "one_hot_zero_classes": (mutate(inputs=GOOD["inputs"] + [{"name": "lab", "shape": [2]}], nodes=["y = sum(one_hot(lab, num_classes=0)) + sum(W @ x)"]), "nodes[0], column 9", "expected an integer >= 1"),
    "concat_symbolic": (mutate(inputs=[{"name": "x", "shape": ["batch", 2]}], params=[{"name": "W", "shape": [2, 1]}], nodes=["y = sum(concat(x, x) @ W)"]), "nodes[0], column 9", "cannot concatenate along symbolic dim 'batch'"),
    # names: fullmatch, so no trailing newline anywhere
    "name_newline": (mutate(name="evil\n"), "name", "invalid name"),
    "param_newline": (mutate(params=[{"name": "W\n", "shape": [1, 2]}]), "params[0].name", "invalid name"),
    "dim_newline": (mutate(inputs=[{"name": "x", "shape": ["batch\n", 1]}]), "inputs[0].shape[0]", "invalid name"),
    "dims_key_newline": (mutate(dims={"batch\n": 2}), 'dims["batch\\n"]', "invalid name"),
    "builtin_name": (mutate(params=[{"name": "print", "shape": [1, 2]}]), "params[0].name", "builtin"),
    "deep_json": ("[" * 100000 + "]" * 100000, "net.json", "nested too deeply"),
    "utf16": ('{"loss": "y"}'.encode("utf-16"), "net.json", "UTF-16"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_line_with_location_and_exit_2(tmp_path, case):
    spec, location, message = BAD[case]
    r, out = _bad(tmp_path, spec)
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1, r.output
    assert lines[0].startswith("error: ")
    assert location in lines[0], lines[0]
    assert message in lines[0], lines[0]
    assert "Traceback" not in r.output
    assert not out.exists() or not any(out.iterdir())


def test_missing_spec_file(tmp_path):
    r = run("compile", tmp_path / "nope.json", "-o", tmp_path / "o")
    assert r.exit_code == 2 and "no such file" in r.output


def test_output_into_a_file_is_an_error(tmp_path):
    spec = write(tmp_path, GOOD)
    f = tmp_path / "afile"
    f.write_text("keep")
    r = run("compile", spec, "-o", f)
    assert r.exit_code == 2 and "is a file" in r.output
    assert f.read_text() == "keep"


def test_failed_compile_keeps_previous_module(tmp_path):
    spec = write(tmp_path, GOOD)
    out = tmp_path / "out"
    assert run("compile", spec, "-o", out).exit_code == 0
    before = (out / "net.py").read_text()
    write(tmp_path, mutate(nodes=["y = nope(x)"]))
    assert run("compile", spec, "-o", out).exit_code == 2
    assert (out / "net.py").read_text() == before
    assert [p.name for p in out.iterdir()] == ["net.py"]  # no temp files left


def test_too_many_nodes(tmp_path, monkeypatch):
    import bpc.compiler.lower

    monkeypatch.setattr(bpc.compiler.lower, "MAX_NODES", 2)
    r, out = _bad(tmp_path, mutate(nodes=["a = W @ x", "b = sigmoid(a)", "y = sum(b)"]))
    assert r.exit_code == 2 and r.output.startswith("error: nodes: more than 2 nodes")


def test_interrupt_while_writing_keeps_previous_module(tmp_path, monkeypatch):
    import os

    spec = write(tmp_path, GOOD)
    out = tmp_path / "out"
    assert run("compile", spec, "-o", out).exit_code == 0
    before = (out / "net.py").read_text()
    write(tmp_path, mutate(nodes=["y = tanh(W @ x)"]))

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    r = run("compile", spec, "-o", out)
    assert r.exit_code != 0
    assert (out / "net.py").read_text() == before
    assert [p.name for p in out.iterdir()] == ["net.py"]


def test_unwritable_output_is_a_clear_error(tmp_path):
    spec = write(tmp_path, GOOD)
    r = run("compile", spec, "-o", "/proc/bpc-cannot-write-here")
    assert r.exit_code == 2
    assert r.output.startswith("error: /proc/bpc-cannot-write-here: cannot create directory")


def test_missing_output_directory_is_created(tmp_path):
    spec = write(tmp_path, GOOD)
    r = run("compile", spec, "-o", tmp_path / "a" / "b")
    assert r.exit_code == 0 and (tmp_path / "a" / "b" / "net.py").exists()


def test_check_with_symbolic_batch_sizes():
    for size in ("1", "64"):
        r = run("check", "examples/autoencoder.json", "--dim", f"batch={size}")
        assert r.exit_code == 0 and "PASSED" in r.output
    r = run("check", "examples/autoencoder.json", "--dim", "nope=3")
    assert r.exit_code == 2 and "no symbolic dim 'nope'" in r.output


@pytest.mark.parametrize("command", ["compile", "check", "ir", "explain", "ops"])
def test_help_has_an_example(command):
    r = run(command, "--help")
    assert r.exit_code == 0 and "Example" in r.output


def test_check_samples_option():
    r = run("check", "examples/mnist_mlp.json", "--samples", "8", "--json")
    data = json.loads(r.output)
    assert r.exit_code == 0 and data["passed"]
    assert [t["elements_checked"] for t in data["tensors"]] == [8, 8, 8, 8, 8, 8]
    r = run("check", "examples/two_hidden.json", "--samples", "0", "--json")
    rows = json.loads(r.output)["tensors"]  # then the complex step (two_hidden is analytic)
    assert [t["elements_checked"] for t in rows] == [12, 16, 4] * 2
    assert [t["name"] for t in rows[3:]] == [t["name"] + " (complex step)" for t in rows[:3]]


def test_check_reports_a_wrong_gradient(monkeypatch):
    """The checker can fail: corrupt one derivative rule and bpc check exits 1."""
    from bpc.compiler.ops import registry

    op = registry._OPS["sigmoid"]
    bad = lambda g, out, x: [g * out]  # noqa: E731 - wrong: missing (1 - y)
    monkeypatch.setitem(registry._OPS, "sigmoid", registry.OpDef(**{**op.__dict__, "vjp": bad}))
    r = run("check", "examples/neuron.json")
    assert r.exit_code == 1 and "FAIL" in r.output and "FAILED" in r.output


# ---------------------------------------------------------------- module names


@pytest.mark.parametrize(
    "stem", ["numpy", "np", "class", "None", "print", "match", "a" * 70, "my-net", "2net", "_bpc_x", "ｍodel", "evil\n"]
)
def test_module_name_from_a_bad_file_name_suggests_name(tmp_path, stem):
    p = write(tmp_path, GOOD, f"{stem}.json")
    out = tmp_path / "out"
    r = run("compile", p, "-o", out)
    assert r.exit_code == 2
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "--name" in lines[0], r.output
    assert not out.exists()
    r = run("compile", p, "-o", out, "--name", "good")
    assert r.exit_code == 0, r.output
    assert [f.name for f in out.iterdir()] == ["good.py"]


@pytest.mark.parametrize("name", ["../x", "/abs/x", "a/b", "numpy", "x\n", "a" * 65])
def test_module_names_never_leave_the_output_directory(tmp_path, name):
    out = tmp_path / "out"
    r = run("compile", write(tmp_path, mutate(name=name)), "-o", out)
    assert r.exit_code == 2 and r.output.startswith("error: name: "), r.output
    r = run("compile", write(tmp_path, GOOD), "-o", out, "--name", name)
    assert r.exit_code == 2 and r.output.startswith("error: --name: "), r.output
    assert not out.exists() and not (tmp_path / "x.py").exists()


def test_writer_refuses_a_path_outside_the_output_directory(tmp_path):
    from bpc.cli.main import _module_path
    from bpc.compiler.errors import BpcError

    assert _module_path(tmp_path, "net") == tmp_path / "net.py"
    for bad in ("../net", "/tmp/net", "a/b"):
        with pytest.raises(BpcError):
            _module_path(tmp_path, bad)


def test_name_needs_one_spec(tmp_path):
    a, b = write(tmp_path, GOOD, "a.json"), write(tmp_path, GOOD, "b.json")
    r = run("compile", a, b, "-o", tmp_path / "out", "--name", "x")
    assert r.exit_code == 2 and r.output == "error: --name: --name needs exactly one spec\n"


def test_name_option_of_check_ir_and_explain(tmp_path):
    p = write(tmp_path, GOOD, "numpy.json")
    assert run("check", p).exit_code == 2
    assert run("check", p, "--name", "net").exit_code == 0
    assert run("ir", p, "--name", "net", "--format", "dot").output.startswith('digraph "net"')
    assert run("explain", p, "--wrt", "W", "--name", "net").exit_code == 0
    r = run("explain", p, "--wrt", "W\nimport os", "--name", "net")
    assert r.exit_code == 2 and r.output.startswith("error: --wrt: invalid name")


# ---------------------------------------------------------------- flags


BAD_FLAGS = {
    "seed_negative": (["check", "examples/neuron.json", "--seed", "-1"], "--seed"),
    "seed_text": (["check", "examples/neuron.json", "--seed", "abc"], "--seed"),
    "seed_huge": (["check", "examples/neuron.json", "--seed", str(2**64)], "--seed"),
    "samples_negative": (["check", "examples/neuron.json", "--samples", "-1"], "--samples"),
    "dim_unicode_digit": (["check", "examples/autoencoder.json", "--dim", "batch=²"], "--dim"),
    "dim_arabic_digit": (["check", "examples/autoencoder.json", "--dim", "batch=٣"], "--dim"),
    "dim_huge": (["check", "examples/autoencoder.json", "--dim", "batch=100000000000"], "--dim"),
    "dim_too_many_digits": (["check", "examples/autoencoder.json", "--dim", "batch=" + "9" * 5000], "--dim"),
    "dim_over_element_limit": (["check", "examples/autoencoder.json", "--dim", "batch=10000000"], "--dim"),
    "dim_zero": (["check", "examples/autoencoder.json", "--dim", "batch=0"], "--dim"),
    "dim_no_name": (["check", "examples/autoencoder.json", "--dim", "=3"], "--dim"),
    "dim_no_size": (["check", "examples/autoencoder.json", "--dim", "batch"], "--dim"),
    "dim_twice": (["check", "examples/autoencoder.json", "--dim", "batch=2", "--dim", "batch=3"], "--dim"),
    "unknown_option": (["compile", "examples/neuron.json", "--bogus"], "bpc compile"),
    "missing_argument": (["compile"], "SPECS"),
    "missing_option_value": (["compile", "examples/neuron.json", "-o"], "bpc"),
    "unknown_command": (["nope"], "bpc"),
    "bad_stage": (["ir", "examples/neuron.json", "--stage", "nope"], "--stage"),
    "bad_format": (["ir", "examples/neuron.json", "--format", "nope"], "--format"),
    "missing_wrt": (["explain", "examples/neuron.json"], "--wrt"),
    "bad_name": (["compile", "examples/neuron.json", "--name", "a b"], "--name"),
}


@pytest.mark.parametrize("case", sorted(BAD_FLAGS))
def test_bad_flags_are_one_line_errors(case, tmp_path):
    argv, location = BAD_FLAGS[case]
    r = runner.invoke(app, argv + (["-o", str(tmp_path / "out")] if argv[0] == "compile" and "-o" not in argv else []))
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {location}"), r.output
    assert "Traceback" not in r.output and "Usage" not in r.output
    assert not (tmp_path / "out").exists()


def test_bpc_without_arguments_prints_help():
    r = runner.invoke(app, [])
    assert "Usage" in r.output and "compile" in r.output


# ---------------------------------------------------------------- input files


def _one_line_error(r, where, message):
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.output
    assert where in lines[0] and message in lines[0], lines[0]


def test_devices_and_fifos_are_refused_without_reading(tmp_path):
    import os
    import subprocess
    import sys

    from .conftest import ROOT

    _one_line_error(run("compile", "/dev/zero", "-o", tmp_path / "o"), "/dev/zero", "not a regular file")
    link = tmp_path / "zero.json"
    link.symlink_to("/dev/zero")
    _one_line_error(run("compile", link, "-o", tmp_path / "o"), "zero.json", "not a regular file")
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    # in a child process with a timeout: a FIFO must never block
    r = subprocess.run(
        [sys.executable, "-m", "bpc", "compile", str(fifo), "-o", str(tmp_path / "o")],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert r.returncode == 2 and "not a regular file" in r.stderr and r.stderr.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_read_is_bounded_whatever_the_size_says(tmp_path, monkeypatch):
    import bpc.compiler.spec

    monkeypatch.setattr(bpc.compiler.spec, "MAX_SPEC_BYTES", 100)
    p = write(tmp_path, {**GOOD, "description": "x" * 200})
    _one_line_error(run("compile", p, "-o", tmp_path / "o"), "net.json", "larger than")
    real_stat = bpc.compiler.spec.os.stat

    class Lying:  # a file system that reports size 0 (as /proc files and devices do)
        def __init__(self, st):
            self.st_mode, self.st_size = st.st_mode, 0

    monkeypatch.setattr(bpc.compiler.spec.os, "stat", lambda name: Lying(real_stat(name)))
    _one_line_error(run("compile", p, "-o", tmp_path / "o"), "net.json", "larger than")


@pytest.mark.parametrize(
    "kind,where,message",
    [
        ("directory", "adir", "is a directory"),
        ("missing", "nope.json", "no such file"),
        ("under_a_file", "afile", "no such file"),
        ("newline_in_name", "a\\nb.json", "no such file"),
        ("empty", "net.json", "invalid JSON"),
        ("latin1", "net.json", "not UTF-8"),
        ("array", "spec", "a spec must be a JSON object"),
    ],
)
def test_bad_input_files(tmp_path, kind, where, message):
    if kind == "directory":
        (tmp_path / "adir").mkdir()
        p = tmp_path / "adir"
    elif kind == "missing":
        p = tmp_path / "nope.json"
    elif kind == "under_a_file":
        (tmp_path / "afile").write_text("{}")
        p = tmp_path / "afile" / "net.json"
    elif kind == "newline_in_name":
        p = tmp_path / "a\nb.json"
    elif kind == "empty":
        p = write(tmp_path, "")
    elif kind == "latin1":
        p = write(tmp_path, '{"description": "café"}'.encode("latin-1"))
    else:
        p = write(tmp_path, "[1, 2]")
    for command in (["compile", p, "-o", tmp_path / "o"], ["check", p], ["ir", p], ["explain", p, "--wrt", "W"]):
        _one_line_error(run(*command), where, message)
    assert not (tmp_path / "o").exists()


def test_unreadable_file(tmp_path):
    import os

    p = write(tmp_path, GOOD)
    p.chmod(0)
    try:
        if os.access(p, os.R_OK):
            pytest.skip("running as root: permissions are not enforced")
        _one_line_error(run("compile", p, "-o", tmp_path / "o"), "net.json", "Permission denied")
    finally:
        p.chmod(0o644)


def test_utf8_byte_order_mark_is_accepted(tmp_path):
    p = write(tmp_path, b"\xef\xbb\xbf" + json.dumps(GOOD).encode())
    r = run("compile", p, "-o", tmp_path / "out")
    assert r.exit_code == 0, r.output and (tmp_path / "out" / "net.py").exists()


def test_wrt_and_loss_flags_replace_the_specs_own(tmp_path):
    """--wrt and --loss work for every front end, JSON included; a bad name is
    reported at the flag, not at the spec's key."""
    r = run("compile", "examples/sigmoid_2_3_1.json", "--wrt", "X0,W1", "-o", str(tmp_path))
    assert r.exit_code == 0, r.output
    assert 'WRT = ("X0", "W1")' in (tmp_path / "sigmoid_2_3_1.py").read_text()
    r = run("check", "examples/neuron.json", "--wrt", "nope")
    assert r.exit_code == 2 and "error: --wrt: unknown name 'nope'" in r.output
    r = run("check", "examples/neuron.json", "--loss", "zz")
    assert r.exit_code == 2 and "error: --loss: unknown name 'zz'" in r.output
    r = run("check", "examples/neuron.json", "--wrt", " , ")
    assert r.exit_code == 2 and "error: --wrt:" in r.output


@pytest.mark.parametrize("flag", [["--fn", "f"], ["--shape", "W=3,2"]])
def test_python_only_flags_are_refused_for_a_json_spec(flag):
    r = run("check", "examples/neuron.json", *flag)
    assert r.exit_code == 2 and f"error: {flag[0]}: is for Python sources" in r.output


@pytest.mark.parametrize("bad", ["W", "W=3,,2", "W=0", "1W=3", "W=3;import os"])
def test_shape_flag_syntax(bad):
    r = run("compile", "examples/neuron.json", "--shape", bad)
    assert r.exit_code == 2 and "error: --shape:" in r.output and "Traceback" not in r.output
