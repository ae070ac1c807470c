"""The ONNX front end: names, losses, examples and their JSON twins, hostile models."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

onnx = pytest.importorskip("onnx", reason="the ONNX front end needs the onnx extra: pip install '.[onnx]'")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import bpc  # noqa: E402
from bpc.compiler.errors import BpcError  # noqa: E402
from bpc.compiler.frontends.onnx_model import SUPPORTED, Namer, readable  # noqa: E402
from bpc.compiler.names import is_valid_name  # noqa: E402
from bpc.compiler.options import CompileOptions  # noqa: E402
from bpc.compiler.pipeline import compile_file  # noqa: E402

from .conftest import ROOT  # noqa: E402

EXAMPLES = ROOT / "examples" / "onnx"
# example -> (--loss, its JSON twin)
ONNX_EXAMPLES = {"mlp_2_10_10_1": ("sse", "mlp_2_10_10_1"), "mnist_mlp": ("softmax_cross_entropy", "mnist_mlp")}


def model(nodes, inputs, outputs, inits=(), opset=18, **kw):
    g = helper.make_graph(nodes, kw.pop("name", "g"), inputs, outputs, list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], **kw)


def vi(name, shape, t=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, t, shape)


def tiny(**kw):
    """x [batch, 3] -> Gemm with net.0.weight [4, 3] (transB) -> Sigmoid."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((4, 3)).astype(np.float32), "net.0.weight")
    b = numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "net.0.bias")
    nodes = [
        helper.make_node("Gemm", ["x", "net.0.weight", "net.0.bias"], ["/net/net.0/Gemm_output_0"], name="/net/net.0/Gemm", transB=1),
        helper.make_node("Sigmoid", ["/net/net.0/Gemm_output_0"], ["out"], name="/net/net.1/Sigmoid"),
    ]
    return model(nodes, [vi("x", ["batch", 3])], [vi("out", ["batch", 4])], [w, b], **kw)


def one_line(e: BpcError) -> str:
    text = str(e)
    assert "\n" not in text and "\r" not in text, text
    return text


# ------------------------------------------------------------------ names


@pytest.mark.parametrize(
    "onnx_name,expected",
    [
        ("/net/net.0/Gemm_output_0", "net_0_Gemm"),
        ("net.0.weight", "net_0_weight"),
        ("onnx::Gemm_12", "onnx_Gemm_12"),
        ("0", "v_0"),
        ("_private", "private"),
        ("x\ny", "x_y"),
        ("gewicht_ä", "gewicht"),
    ],
)
def test_onnx_names_read_like_identifiers(onnx_name, expected):
    assert readable(onnx_name) == expected


def test_names_are_valid_unique_and_deterministic():
    names = ["lambda", "sum", "np", "", "///", "a.b", "a_b", "a-b", "x" * 200, "_bpc_x", "print"]
    first = [Namer().name(n) for n in names]  # each alone: valid
    assert all(is_valid_name(n) for n in first), first
    namer = Namer()
    together = [namer.name(n) for n in names]
    assert len(set(together)) == len(names) and all(is_valid_name(n) for n in together), together
    again = Namer()
    assert [again.name(n) for n in names] == together
    assert together[5:8] == ["a_b", "a_b_2", "a_b_3"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=80), max_size=30))
def test_any_onnx_names_become_valid_distinct_names(raw):
    namer = Namer()
    out = [namer.name(n) for n in raw]
    assert all(is_valid_name(n) for n in out)
    assert len(set(out)) == len(set(raw))


# ------------------------------------------------------------------ compiling


def test_a_model_compiles_with_readable_names_and_origins():
    p = bpc.compile(tiny(), loss="mse")
    assert p.PARAMS == {"net_0_weight": (4, 3), "net_0_bias": (4,)}
    assert p.INPUTS == {"x": ("batch", 3), "target": ("batch", 4)}  # the symbolic dim is kept
    assert p.WRT == ("net_0_weight", "net_0_bias") and p.OUTPUTS == ("out",)
    src = p.source
    assert "net_0_Gemm = x @ net_0_weight.T + net_0_bias" in src
    assert "# ONNX Gemm '/net/net.0/Gemm'" in src
    assert "net_0_weight: array of shape (4, 3); ONNX initializer 'net.0.weight'" in src
    assert bpc.check(p).passed


def test_initializer_values_are_the_params_initial_values():
    m = tiny()
    p = bpc.compile(m, loss="sse")
    init = p.init_params()
    for t in m.graph.initializer:
        np.testing.assert_array_equal(init[readable(t.name)], numpy_helper.to_array(t).astype(np.float64))


@pytest.mark.parametrize("loss", ["sse", "mse", "bce", "softmax_cross_entropy"])
def test_every_loss_kind_compiles_and_checks(loss):
    p = bpc.compile(tiny(), loss=loss)
    assert bpc.check(p).passed
    if loss == "softmax_cross_entropy":  # integer class labels of the batch
        assert p.INPUTS["target"] == ("batch",)


def test_a_scalar_output_is_its_own_loss():
    m = tiny()
    m.graph.node.append(helper.make_node("ReduceSum", ["out"], ["total"], keepdims=0))
    del m.graph.output[:]
    m.graph.output.extend([vi("total", [])])
    p = bpc.compile(m)
    assert p.LOSS == "total" and "target" not in p.INPUTS
    x = np.ones((2, 3))
    np.testing.assert_allclose(p.forward(**p.init_params(), x=x), p.forward.__globals__["forward"](**p.init_params(), x=x))
    assert bpc.check(p).passed


def test_wrt_and_float32():
    p = bpc.compile(tiny(), loss="sse", wrt=("x", "net_0_bias"), dtype="float32")
    assert p.WRT == ("x", "net_0_bias")
    assert bpc.check(p).passed
    # the model's own names work too
    from bpc.compiler.frontends.onnx_model import source_from_model

    src = source_from_model(tiny(), CompileOptions(loss="sse", wrt=("net.0.weight", "x")))
    assert src.spec.wrt == ["net_0_weight", "x"]
    assert bpc.compile(tiny(), loss="sse", wrt=("net.0.weight",)).WRT == ("net_0_weight",)


def test_a_model_output_that_is_no_scalar_needs_a_loss():
    with pytest.raises(BpcError) as e:
        bpc.compile(tiny())
    text = one_line(e.value)
    assert e.value.location == "--loss" and "shape ['batch', 4]" in text and "sse" in text
    with pytest.raises(BpcError, match="unknown loss 'hinge'"):
        bpc.compile(tiny(), loss="hinge")


def test_an_unsupported_op_names_the_node_its_type_and_the_supported_list():
    m = tiny()
    m.graph.node.append(helper.make_node("Conv", ["out", "net.0.weight"], ["y"], name="conv\n1"))
    with pytest.raises(BpcError) as e:
        bpc.compile(m, loss="sse")
    text = one_line(e.value)
    assert "node 2 'conv\\n1' (Conv)" in text and "op Conv is not supported" in text
    assert "supported: " + ", ".join(SUPPORTED) in text


def test_a_shape_error_names_the_onnx_node():
    m = tiny()
    m.graph.node.append(helper.make_node("MatMul", ["out", "out"], ["y"], name="mm"))
    with pytest.raises(BpcError) as e:
        bpc.compile(m, loss="sse")
    assert "node 2 'mm' (MatMul)" in one_line(e.value)


def test_compositions_match_numpy():
    """Gemm (all forms), Slice, Reshape with 0 and -1, Unsqueeze, Concat, Clip, Softmax (opset 11)."""
    rng = np.random.default_rng(3)
    a = rng.standard_normal((3, 4)).astype(np.float32)
    b = rng.standard_normal((5, 3)).astype(np.float32)
    c = rng.standard_normal((1, 5)).astype(np.float32)
    inits = [numpy_helper.from_array(b, "B"), numpy_helper.from_array(c, "C"),
             numpy_helper.from_array(np.array([0, -1], np.int64), "shape"),
             numpy_helper.from_array(np.array([1], np.int64), "s0"), numpy_helper.from_array(np.array([3], np.int64), "e0"),
             numpy_helper.from_array(np.array([1], np.int64), "ax")]
    nodes = [
        helper.make_node("Gemm", ["A", "B", "C"], ["g"], transA=1, transB=1, alpha=0.5, beta=-2.0),
        helper.make_node("Slice", ["g", "s0", "e0", "ax"], ["s"]),
        helper.make_node("Reshape", ["s", "shape"], ["r"]),
        helper.make_node("Clip", ["r"], ["cl"], min=-0.5, max=0.75),
        helper.make_node("Softmax", ["cl"], ["out"], axis=1),
    ]
    m = model(nodes, [vi("A", [3, 4])], [vi("out", [4, 2])], inits, opset=10)
    # opset 10: Clip takes min/max attributes, Softmax flattens from its axis
    p = bpc.compile(m, loss="sse")
    g = 0.5 * (a.T.astype(np.float64) @ b.T) - 2.0 * c
    cl = np.clip(g[:, 1:3], -0.5, 0.75)
    e = np.exp(cl - cl.max(axis=1, keepdims=True))
    want = e / e.sum(axis=1, keepdims=True)
    _, outs = p.forward(**p.init_params(), A=a, target=np.zeros((4, 2)))
    np.testing.assert_allclose(outs["out"], want, rtol=1e-6)


# ------------------------------------------------------------------ examples and their JSON twins


@pytest.mark.parametrize("stem", ["mlp_2_10_10_1", pytest.param("mnist_mlp", marks=pytest.mark.slow)])
def test_generated_onnx_examples_are_up_to_date_and_black(stem):
    import black

    loss, _ = ONNX_EXAMPLES[stem]
    fresh = compile_file(Path("examples/onnx") / f"{stem}.onnx", options=CompileOptions(loss=loss)).source
    committed = (ROOT / "generated" / "onnx" / f"{stem}.py").read_text()
    assert committed == fresh, f"regenerate: bpc compile examples/onnx/{stem}.onnx --loss {loss} -o generated/onnx"
    assert black.format_str(committed, mode=black.Mode()) == committed
    tree = ast.parse(committed)
    imports = [ast.unparse(n) for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert imports == ["import numpy as np"]


@pytest.mark.parametrize("stem", ["mlp_2_10_10_1", "mnist_mlp"])
def test_onnx_examples_have_the_gradients_of_their_json_twins(stem):
    """Same weights in both modules: the ONNX model's weights fed into the JSON twin."""
    _, twin = ONNX_EXAMPLES[stem]
    onnx_mod = bpc.load(ROOT / "generated" / "onnx" / f"{stem}.py")
    json_mod = bpc.load(ROOT / "generated" / f"{twin}.py")
    weights = onnx_mod.init_params()
    depth = len(weights) // 2
    twin_params = {}
    for k in range(depth):  # torch Linear k -> net_{2k}: weight [out, in] is w.T
        twin_params[f"w{k + 1}"] = weights[f"net_{2 * k}_weight"].T
        twin_params[f"b{k + 1}"] = weights[f"net_{2 * k}_bias"]
    assert set(twin_params) == set(json_mod.PARAMS)
    rng = np.random.default_rng(7)
    batch = 1 if stem == "mlp_2_10_10_1" else 5
    x = rng.standard_normal((batch, onnx_mod.INPUTS["x"][1]))
    if stem == "mnist_mlp":
        y = rng.integers(0, 10, size=batch)
    else:
        y = rng.standard_normal((batch, 1))
    loss_j, grads_j = json_mod.value_and_grad(**twin_params, x=x, y=y)
    loss_o, grads_o = onnx_mod.value_and_grad(**weights, x=x, target=y)
    np.testing.assert_allclose(loss_o, loss_j, rtol=1e-12)
    for k in range(depth):
        np.testing.assert_allclose(grads_o[f"net_{2 * k}_weight"], grads_j[f"w{k + 1}"].T, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(grads_o[f"net_{2 * k}_bias"], grads_j[f"b{k + 1}"], rtol=1e-10, atol=1e-14)


def test_the_readme_command_works(tmp_path):
    cmd = [sys.executable, "-m", "bpc", "compile", "examples/onnx/mlp_2_10_10_1.onnx", "--loss", "sse", "--check",
           "-o", str(tmp_path)]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "PASSED" in r.stdout and (tmp_path / "mlp_2_10_10_1.py").exists()


def test_cli_errors_are_one_line_with_exit_code_2(tmp_path):
    # the MNIST model's output is [batch, 10]: it needs a loss (the small one's [1, 1] is its own)
    cmd = [sys.executable, "-m", "bpc", "compile", "examples/onnx/mnist_mlp.onnx", "-o", str(tmp_path)]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--loss" in r.stderr, r.stderr
    assert not list(tmp_path.iterdir())


def test_without_onnx_the_front_end_says_how_to_get_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnx", None)
    monkeypatch.delitem(sys.modules, "bpc.compiler.frontends.onnx_model", raising=False)
    with pytest.raises(BpcError) as e:
        bpc.compile(str(EXAMPLES / "mlp_2_10_10_1.onnx"), loss="sse")
    assert "cannot read .onnx files" in one_line(e.value) and "bpc[onnx]" in str(e.value)


# ------------------------------------------------------------------ hostile models


def write_model(path: Path, m) -> Path:
    path.write_bytes(m.SerializeToString())
    return path


@pytest.mark.parametrize("cut", [1, 7, 100, 5000, -3])
def test_a_truncated_protobuf_is_a_one_line_error(tmp_path, cut):
    data = (EXAMPLES / "mnist_mlp.onnx").read_bytes()
    p = tmp_path / "cut.onnx"
    p.write_bytes(data[:cut])
    with pytest.raises(BpcError) as e:
        bpc.compile(str(p), loss="sse")
    assert "cut.onnx" in (e.value.location or "") or "cut.onnx" in one_line(e.value)
    one_line(e.value)


@pytest.mark.parametrize("data", [b"", b"\x00" * 64, os.urandom(256), b"{\"bpc\": 1}"])
def test_garbage_is_a_one_line_error(tmp_path, data):
    p = tmp_path / "junk.onnx"
    p.write_bytes(data)
    with pytest.raises(BpcError) as e:
        bpc.compile(str(p), loss="sse")
    one_line(e.value)


def test_huge_declared_shapes_are_refused_before_allocating():
    m = tiny()
    m.graph.input[0].type.tensor_type.shape.dim[1].dim_value = 10**12
    with pytest.raises(BpcError, match="more than 100,000,000 elements"):
        bpc.compile(m, loss="sse")
    # an initializer that declares 10^9 elements and holds 4 bytes
    m = tiny()
    t = m.graph.initializer[1]
    t.ClearField("dims")
    t.dims.extend([10**7])
    with pytest.raises(BpcError) as e:
        bpc.compile(m, loss="sse")
    assert "holds 16 bytes, its shape [10000000] needs 40000000" in one_line(e.value)
    m = tiny()
    m.graph.initializer[1].dims.extend([10**6, 10**6])
    with pytest.raises(BpcError, match="more than 100,000,000 elements"):
        bpc.compile(m, loss="sse")


def external_model(tmp_path: Path, location: str) -> Path:
    m = tiny()
    t = m.graph.initializer[1]  # net.0.bias, 4 float32
    t.ClearField("raw_data")
    t.ClearField("float_data")
    t.data_location = TensorProto.EXTERNAL
    t.external_data.add(key="location", value=location)
    t.external_data.add(key="length", value="16")
    return write_model(tmp_path / "model" / "m.onnx", m)


@pytest.mark.parametrize("location", ["../outside.bin", "sub/../../outside.bin", "/etc/passwd", "link.bin"])
def test_external_data_outside_the_models_folder_is_refused(tmp_path, location, monkeypatch):
    (tmp_path / "model").mkdir()
    secret = tmp_path / "outside.bin"
    secret.write_bytes(np.arange(4, dtype=np.float32).tobytes())
    (tmp_path / "model" / "link.bin").symlink_to(secret)
    p = external_model(tmp_path, location)
    opened = []
    real_open = os.open
    monkeypatch.setattr(os, "open", lambda name, *a, **k: (opened.append(os.path.realpath(name)), real_open(name, *a, **k))[1])
    with pytest.raises(BpcError) as e:
        bpc.compile(str(p), loss="sse")
    assert "outside the model's folder" in one_line(e.value) or "relative path inside" in str(e.value)
    assert str(secret) not in opened and "/etc/passwd" not in opened


def test_external_data_inside_the_models_folder_is_read(tmp_path):
    (tmp_path / "model").mkdir()
    values = np.array([0.5, -1.0, 2.0, 0.25], np.float32)
    (tmp_path / "model" / "bias.bin").write_bytes(values.tobytes())
    p = external_model(tmp_path, "bias.bin")
    np.testing.assert_array_equal(bpc.compile(str(p), loss="sse").init_params()["net_0_bias"], values)
    (tmp_path / "model" / "bias.bin").write_bytes(values.tobytes()[:12])  # shorter than declared
    with pytest.raises(BpcError, match="shorter"):
        bpc.compile(str(p), loss="sse")


def test_external_data_needs_a_file():
    m = tiny()
    t = m.graph.initializer[1]
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    t.external_data.add(key="location", value="bias.bin")
    with pytest.raises(BpcError, match="needs the model's file"):
        bpc.compile(m, loss="sse")


HOSTILE = '"""\nimport os; open("/tmp/bpc_onnx_pwned", "w")\n"""\\\r\x00\u2028 \' # end'


def test_hostile_names_and_doc_strings_reach_the_module_only_as_inert_text(tmp_path):
    canary = Path("/tmp/bpc_onnx_pwned")
    canary.unlink(missing_ok=True)
    m = tiny(doc_string=HOSTILE)
    m.graph.doc_string = HOSTILE
    rename = {"x": "x" + HOSTILE, "net.0.weight": HOSTILE, "out": "o'\"\n" + HOSTILE}
    for v in list(m.graph.input) + list(m.graph.output):
        v.name = rename.get(v.name, v.name)
    for t in m.graph.initializer:
        t.name = rename.get(t.name, t.name)
    for n in m.graph.node:
        n.name = HOSTILE
        n.input[:] = [rename.get(i, i) for i in n.input]
        n.output[:] = [rename.get(o, o) for o in n.output]
    p = write_model(tmp_path / "evil.onnx", m)
    prog = bpc.compile(str(p), loss="sse")
    tree = ast.parse(prog.source)
    imports = [ast.unparse(n) for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert imports == ["import numpy as np"]
    calls = {ast.unparse(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    assert "open" not in calls
    assert all(is_valid_name(k) for k in list(prog.PARAMS) + list(prog.INPUTS))
    arrays = {**prog.init_params(), **prog.example_inputs()}
    prog.value_and_grad(**arrays)
    assert not canary.exists()
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "bpc", "compile", str(p), "--loss", "sse", "-o", str(out)],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([sys.executable, str(next(out.glob("*.py")))], capture_output=True, text=True)
    assert r.returncode == 0 and "gradients match" in r.stdout, r.stderr
    assert not canary.exists()


def test_hostile_names_in_errors_stay_on_one_line():
    m = tiny()
    m.graph.node[1].op_type = "Evil\nOp"
    m.graph.node[1].name = HOSTILE
    with pytest.raises(BpcError) as e:
        bpc.compile(m, loss="sse")
    one_line(e.value)
    m = tiny()
    m.graph.input[0].name = HOSTILE
    m.graph.input[0].type.tensor_type.shape.dim[1].dim_value = 10**12
    with pytest.raises(BpcError) as e:
        bpc.compile(m, loss="sse")
    one_line(e.value)


def test_large_initializers_are_strings_of_numbers_read_back_exactly():
    rng = np.random.default_rng(5)
    w = rng.standard_normal((40, 30))
    for dtype, arr in (("float64", w), ("float32", w.astype(np.float32)), ("float64", w.astype(np.float32))):
        t = numpy_helper.from_array(arr, "W")
        m = model([helper.make_node("MatMul", ["x", "W"], ["y"])], [vi("x", [2, 40])], [vi("y", [2, 30])], [t])
        p = bpc.compile(m, loss="sse", dtype=dtype)
        import black

        assert "np.fromstring(" in p.source
        assert black.format_str(p.source, mode=black.Mode()) == p.source
        got = p.init_params()["W"]
        assert got.dtype == np.dtype(dtype) and got.flags.writeable
        np.testing.assert_array_equal(got, arr.astype(dtype))


def test_comparisons_and_where_on_floats():
    nodes = [
        helper.make_node("Greater", ["a", "b"], ["gt"]),
        helper.make_node("Less", ["a", "b"], ["lt"]),
        helper.make_node("Equal", ["a", "b"], ["eq"]),
        helper.make_node("Where", ["gt", "a", "b"], ["w1"]),
        helper.make_node("Where", ["eq", "w1", "lt_f"], ["out"]),
        helper.make_node("Where", ["lt", "a", "b"], ["lt_f"]),
    ]
    nodes = nodes[:4] + [nodes[5], nodes[4]]  # ONNX graphs list nodes in topological order
    m = model(nodes, [vi("a", [6]), vi("b", [6])], [vi("out", [6])])
    p = bpc.compile(m, loss="sse")
    a = np.array([1.0, 2.0, 3.0, -1.0, 0.5, 2.0])
    b = np.array([1.0, 3.0, 2.0, -2.0, 0.5, 1.0])
    _, outs = p.forward(a=a, b=b, target=np.zeros(6))
    want = np.where(a == b, np.where(a > b, a, b), np.where(a < b, a, b))
    np.testing.assert_array_equal(outs["out"], want)
    assert bpc.check(p).passed


def test_losses_with_labels_from_an_integer_input_and_class_weights():
    rng = np.random.default_rng(2)
    w = numpy_helper.from_array(rng.standard_normal((5, 4)).astype(np.float32), "W")
    cw = numpy_helper.from_array(np.array([1.0, 2.0, 0.5, 1.5], np.float32), "class_w")
    for op, reduction in (("SoftmaxCrossEntropyLoss", "mean"), ("NegativeLogLikelihoodLoss", "sum")):
        nodes = [helper.make_node("MatMul", ["x", "W"], ["z"])]
        if op == "NegativeLogLikelihoodLoss":
            nodes.append(helper.make_node("LogSoftmax", ["z"], ["lp"], axis=1))
            nodes.append(helper.make_node(op, ["lp", "labels", "class_w"], ["loss"], reduction=reduction))
        else:
            nodes.append(helper.make_node(op, ["z", "labels", "class_w"], ["loss"], reduction=reduction))
        m = model(nodes, [vi("x", ["n", 5]), vi("labels", ["n"], TensorProto.INT64)], [vi("loss", [])], [w, cw])
        p = bpc.compile(m)
        assert p.LOSS == "loss" and p.INPUTS["labels"] == ("n",)
        x = rng.standard_normal((3, 5))
        y = np.array([0, 3, 2])
        z = x @ numpy_helper.to_array(w).astype(np.float64)
        lp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        wl = np.array([1.0, 2.0, 0.5, 1.5])[y]
        per = -lp[np.arange(3), y] * wl
        want = per.sum() / wl.sum() if reduction == "mean" else per.sum()
        np.testing.assert_allclose(p.forward(**p.init_params(), x=x, labels=y), want, rtol=1e-6)
        assert bpc.check(p).passed


def test_explain_and_the_spec_stage_read_onnx_models(tmp_path):
    base = [sys.executable, "-m", "bpc"]
    r = subprocess.run(base + ["explain", "examples/onnx/mlp_2_10_10_1.onnx", "--wrt", "net_4_bias", "--loss", "sse"],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0 and "d loss / d net_4_bias" in r.stdout, r.stderr
    r = subprocess.run(base + ["ir", "examples/onnx/mlp_2_10_10_1.onnx", "--stage", "spec"], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    spec = json.loads(r.stdout)
    assert [p["name"] for p in spec["params"]][:2] == ["net_0_weight", "net_0_bias"]
    # the printed spec compiles to the same module, weights and all
    (tmp_path / "mlp_2_10_10_1.json").write_text(r.stdout)
    again = bpc.compile(str(tmp_path / "mlp_2_10_10_1.json"))
    ref = bpc.compile("examples/onnx/mlp_2_10_10_1.onnx")
    for k, v in ref.init_params().items():
        np.testing.assert_array_equal(again.init_params()[k], v)
