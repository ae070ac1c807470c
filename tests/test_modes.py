"""Derivative modes: forward mode (jvp) and Hessian-vector products (hvp)."""

from __future__ import annotations

import numpy as np
import pytest

from bpc.compiler.autodiff import jvp, vjp
from bpc.compiler.ir import Graph
from bpc.compiler.ops.registry import DIFFERENTIABLE, all_ops
from bpc.runtime import interpreter

from .helpers import sample_arrays

CASES = [
    (op, i)
    for _, op in sorted(all_ops().items())
    if op.has(DIFFERENTIABLE)
    for i in range(len(op.samples))
]


@pytest.mark.parametrize("op,i", CASES, ids=[f"{op.name}-{i}" for op, i in CASES])
def test_every_op_jvp_matches_differences_and_its_vjp(op, i):
    """J t against central differences along t (float64, h = 1e-6, rel 1e-6),
    and the dot-product test <u, J t> = <J^T u, t> (no step size: rel 1e-12)."""
    sample = op.samples[i]
    rng = np.random.default_rng(100 + i)
    arrays = sample_arrays(op, sample, rng)
    g = Graph()
    xs = [g.add("input", [], {"shape": s}, name=f"a{k}", named=True) for k, s in enumerate(sample.shapes)]
    out = g.add(op.name, xs, dict(sample.attrs), name="out", named=True)
    diff = [k for k in range(len(xs)) if k not in sample.integer]
    ts = [g.add("input", [], {"shape": sample.shapes[k]}, name=f"t{k}", named=True) for k in diff]
    u = g.add("input", [], {"shape": g.shape(out)}, name="u", named=True)
    size = (len(g), g.nx.number_of_edges())
    gj, (tout,) = jvp(g, [xs[k] for k in diff], ts, [out])
    gv, cts = vjp(g, [out], [u], [xs[k] for k in diff])
    assert (len(g), g.nx.number_of_edges()) == size  # both transforms are pure

    feeds = {f"a{k}": a for k, a in enumerate(arrays)}
    tv = {f"t{k}": rng.standard_normal(sample.shapes[k]) for k in diff}
    uv = rng.standard_normal(g.shape(out))
    env = {**feeds, **tv, "u": uv}
    jt = interpreter.evaluate(gj, env, [tout])[tout] if tout is not None else np.zeros(g.shape(out))

    h = 1e-6
    up = interpreter.evaluate(g, {**feeds, **{f"a{k}": feeds[f"a{k}"] + h * tv[f"t{k}"] for k in diff}}, [out])[out]
    down = interpreter.evaluate(g, {**feeds, **{f"a{k}": feeds[f"a{k}"] - h * tv[f"t{k}"] for k in diff}}, [out])[out]
    fd = (up - down) / (2 * h)
    if op.name == "stop_gradient":  # no derivative by definition
        fd = np.zeros_like(fd)
    assert np.max(np.abs(jt - fd)) <= 1e-6 * max(1.0, float(np.max(np.abs(fd)))), op.name

    vals = interpreter.evaluate(gv, env, [c for c in cts if c is not None])
    lhs = sum(float(np.sum(vals[c] * tv[f"t{k}"])) for c, k in zip(cts, diff) if c is not None)
    rhs = float(np.sum(uv * jt))
    assert abs(lhs - rhs) <= 1e-12 * max(1.0, abs(lhs)), (op.name, lhs, rhs)


def test_every_differentiable_op_is_covered():
    assert {op.name for op, _ in CASES} == {
        n for n, op in all_ops().items() if op.has(DIFFERENTIABLE) and op.samples
    }
    assert not [n for n, op in all_ops().items() if op.has(DIFFERENTIABLE) and not op.samples]


# ------------------------------------------------------------------ jvp and hvp entry points

from bpc.compiler.errors import BpcError  # noqa: E402
from bpc.compiler.options import CompileOptions  # noqa: E402
from bpc.compiler.pipeline import compile_file  # noqa: E402
from bpc.runtime.check import example_arrays  # noqa: E402
from bpc.runtime.loader import load_source  # noqa: E402

from .conftest import EXAMPLES, ROOT  # noqa: E402

MODES = CompileOptions(functions=("forward", "value_and_grad", "jvp", "hvp"))


def _modes_module(spec):
    import json

    data = json.loads(spec.read_text())
    sources = {d["name"] for d in data.get("inputs", []) + data.get("params", [])}
    computed = [w for w in data.get("wrt") or [] if w not in sources]
    if computed:  # hvp/jvp need wrt values that are arguments: a clear error
        with pytest.raises(BpcError, match="need wrt values that are params or inputs"):
            compile_file(spec.relative_to(ROOT), options=MODES)
        pytest.skip(f"wrt {computed[0]} is computed")
    c = compile_file(spec.relative_to(ROOT), options=MODES)
    return c, load_source(c.source, c.name)


@pytest.mark.parametrize("spec", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_jvp_is_the_gradient_along_the_tangent(spec):
    """d_loss = <grad, t> (rel 1e-12); the loss and outputs equal forward's."""
    c, m = _modes_module(spec)
    assert m.ENTRY_POINTS == ("forward", "value_and_grad", "jvp", "hvp")
    arrays = example_arrays(m, seed=3)
    rng = np.random.default_rng(4)
    t = {w: rng.standard_normal(np.shape(arrays[w])) for w in m.WRT}
    loss, grads = m.value_and_grad(**arrays)
    res = m.jvp(**arrays, tangents=t)
    assert np.array_equal(res[0], loss)
    dot = sum(float(np.sum(grads[w] * t[w])) for w in m.WRT)
    assert abs(float(np.sum(res[1])) - dot) <= 1e-12 * max(1.0, abs(dot))
    if m.OUTPUTS:  # outputs' tangents against central differences
        h = 1e-6
        _, up = m.forward(**{**arrays, **{w: arrays[w] + h * t[w] for w in m.WRT}})
        _, down = m.forward(**{**arrays, **{w: arrays[w] - h * t[w] for w in m.WRT}})
        for k in m.OUTPUTS:
            fd = (up[k] - down[k]) / (2 * h)
            assert np.max(np.abs(res[2][k] - fd)) <= 1e-6 * max(1.0, float(np.max(np.abs(fd)))), k


@pytest.mark.parametrize("spec", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_hvp_matches_differences_of_the_gradient(spec):
    """hvp against central differences of value_and_grad along v (float64,
    h = 1e-7, rel 1e-6), and its gradients equal value_and_grad's. (The step
    is small so that it rarely crosses a relu kink: at h = 1e-5 the 784-256
    layer of mnist_mlp does, and differences of the gradient jump.)"""
    c, m = _modes_module(spec)
    arrays = example_arrays(m, seed=5)
    rng = np.random.default_rng(6)
    v = {w: rng.standard_normal(np.shape(arrays[w])) for w in m.WRT}
    loss, grads = m.value_and_grad(**arrays)
    l2, g2, hv = m.hvp(**arrays, vectors=v)
    assert np.array_equal(l2, loss) and all(np.array_equal(g2[w], grads[w]) for w in m.WRT)
    h = 1e-7
    _, gp = m.value_and_grad(**{**arrays, **{w: arrays[w] + h * v[w] for w in m.WRT}})
    _, gm = m.value_and_grad(**{**arrays, **{w: arrays[w] - h * v[w] for w in m.WRT}})
    scale = max(1.0, max(float(np.max(np.abs((gp[w] - gm[w]) / (2 * h)))) for w in m.WRT))
    for w in m.WRT:
        fd = (gp[w] - gm[w]) / (2 * h)
        assert np.shape(hv[w]) == np.shape(arrays[w])
        assert np.max(np.abs(hv[w] - fd)) <= 1e-6 * scale, w


def test_hessian_vector_products_are_symmetric():
    """<u, H v> = <v, H u>: a check on hvp that needs no step size."""
    c, m = _modes_module(ROOT / "examples" / "mlp_2_10_10_1.json")
    arrays = example_arrays(m, seed=1)
    rng = np.random.default_rng(2)
    u = {w: rng.standard_normal(np.shape(arrays[w])) for w in m.WRT}
    v = {w: rng.standard_normal(np.shape(arrays[w])) for w in m.WRT}
    hu, hv = m.hvp(**arrays, vectors=u)[2], m.hvp(**arrays, vectors=v)[2]
    a = sum(float(np.sum(u[w] * hv[w])) for w in m.WRT)
    b = sum(float(np.sum(v[w] * hu[w])) for w in m.WRT)
    assert abs(a - b) <= 1e-12 * max(1.0, abs(a))


def test_emit_in_the_spec_and_on_the_command_line(tmp_path):
    import json

    from typer.testing import CliRunner

    from bpc.cli.main import app

    spec = json.loads((ROOT / "examples" / "neuron.json").read_text())
    spec["emit"] = ["value_and_grad", "jvp"]
    p = tmp_path / "neuron.json"
    p.write_text(json.dumps(spec))
    m = load_source(compile_file(p).source, "neuron")
    assert m.ENTRY_POINTS == ("forward", "value_and_grad", "jvp")
    r = CliRunner().invoke(app, ["compile", str(p), "--emit", "hvp", "-o", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    m = load_source((tmp_path / "out" / "neuron.py").read_text(), "n2")
    assert m.ENTRY_POINTS == ("forward", "hvp")  # the command line wins
    r = CliRunner().invoke(app, ["compile", str(p), "--emit", "laplacian", "-o", str(tmp_path / "out")])
    assert r.exit_code == 2 and "--emit: unknown function 'laplacian'" in r.output


@pytest.mark.parametrize("stage", ["joint", "optimized"])
def test_dumps_keep_the_entry_points(stage):
    import json

    from bpc.compiler import printing
    from bpc.compiler.pipeline import compile_graph

    c = compile_file("examples/mlp_2_10_10_1.json", options=MODES)
    data = json.loads(printing.dump(c.stage(stage), "json", stage))
    again, st = printing.from_json(data)
    assert compile_graph(again, st).source == c.source
    data["graph"]["entries"][2][2] = ["nothing"]  # jvp takes a group no input has
    with pytest.raises(BpcError, match="takes 'nothing'"):
        printing.from_json(data)


def test_a_value_named_like_the_dict_argument_is_a_clear_error():
    import json

    spec = {
        "inputs": [{"name": "tangents", "shape": [2]}],
        "params": [{"name": "w", "shape": [2]}],
        "nodes": ["loss = sum(w * tangents)"],
        "loss": "loss",
    }
    with pytest.raises(BpcError, match="dict argument 'tangents'"):
        from bpc.compiler.pipeline import compile_text

        compile_text(json.dumps(spec), options=CompileOptions(functions=("jvp",)))


# ------------------------------------------------------------------ jacobian and hessian


def _flat_hessian(m, H):
    """The Hessian as one matrix over the flattened WRT values."""
    sizes = [int(np.prod(m.PARAMS.get(w, m.INPUTS.get(w)))) for w in m.WRT]
    return np.block([[np.asarray(H[a][b]).reshape(sa, sb) for b, sb in zip(m.WRT, sizes)] for a, sa in zip(m.WRT, sizes)])


@pytest.mark.parametrize("spec", ["mlp_2_10_10_1", "neuron", "scalar", "two_hidden", "perceptron"])
def test_hessian_is_symmetric_and_matches_hvp_and_differences(spec):
    """H = H.T (rel 1e-12); H v = hvp(v) for a random v (rel 1e-12); each
    column against central differences of value_and_grad (h 1e-7, rel 1e-5)."""
    c = compile_file(f"examples/{spec}.json", options=CompileOptions(functions=("value_and_grad", "hessian")))
    m = load_source(c.source, c.name)
    assert m.ENTRY_POINTS == ("forward", "value_and_grad", "hvp", "hessian")
    arrays = example_arrays(m, seed=2)
    H = _flat_hessian(m, m.hessian(**arrays))
    scale = max(1.0, float(np.max(np.abs(H))))
    assert np.max(np.abs(H - H.T)) <= 1e-12 * scale
    rng = np.random.default_rng(3)
    v = {w: rng.standard_normal(np.shape(arrays[w])) for w in m.WRT}
    hv = m.hvp(**arrays, vectors=v)[2]
    flat_v = np.concatenate([np.ravel(v[w]) for w in m.WRT])
    flat_hv = np.concatenate([np.ravel(hv[w]) for w in m.WRT])
    assert np.max(np.abs(H @ flat_v - flat_hv)) <= 1e-12 * max(1.0, float(np.max(np.abs(flat_hv))))
    h = 1e-7
    offsets = np.cumsum([0] + [np.size(arrays[w]) for w in m.WRT])
    for j in range(0, H.shape[0], max(1, H.shape[0] // 7)):  # a spread of columns
        w = m.WRT[int(np.searchsorted(offsets, j, side="right") - 1)]
        k = j - offsets[m.WRT.index(w)]
        e = np.zeros(np.size(arrays[w]))
        e[k] = 1.0
        up = m.value_and_grad(**{**arrays, w: arrays[w] + h * e.reshape(np.shape(arrays[w]))})[1]
        down = m.value_and_grad(**{**arrays, w: arrays[w] - h * e.reshape(np.shape(arrays[w]))})[1]
        col = np.concatenate([np.ravel((up[x] - down[x]) / (2 * h)) for x in m.WRT])
        assert np.max(np.abs(H[:, j] - col)) <= 1e-5 * scale, (spec, j)


JAC_SPEC = {
    "inputs": [{"name": "x", "shape": [3, 1]}],
    "params": [{"name": "W", "shape": [2, 3]}, {"name": "b", "shape": [2, 1]}],
    "nodes": ["y = tanh(W @ x + b)", "z = sum(y * y)", "loss = z + sum(W * W)"],
    "loss": "loss",
}


@pytest.mark.parametrize("outputs,mode", [(["y"], "vjp"), (["y", "z"], "vjp"), (["y"], "jvp")])
def test_jacobian_by_the_cheaper_mode_matches_differences(outputs, mode):
    """Reverse mode when the outputs have fewer elements than the wrt values,
    forward mode otherwise; either way against central differences (rel 1e-7)."""
    import json

    from bpc.compiler.pipeline import compile_text

    spec = {**JAC_SPEC, "outputs": outputs, "wrt": ["W", "b"] if mode == "vjp" else ["b"]}
    c = compile_text(json.dumps(spec), options=CompileOptions(functions=("value_and_grad", "jacobian")))
    m = load_source(c.source, "jac")
    assert mode in m.ENTRY_POINTS and "jacobian" in m.ENTRY_POINTS
    arrays = example_arrays(m, seed=4)
    J = m.jacobian(**arrays)
    h = 1e-6
    for w in m.WRT:
        for k in range(np.size(arrays[w])):
            e = np.zeros(np.size(arrays[w]))
            e[k] = 1.0
            d = e.reshape(np.shape(arrays[w]))
            up = m.forward(**{**arrays, w: arrays[w] + h * d})[1]
            down = m.forward(**{**arrays, w: arrays[w] - h * d})[1]
            for o in m.OUTPUTS:
                fd = (np.asarray(up[o]) - down[o]) / (2 * h)
                got = np.asarray(J[o][w]).reshape(np.shape(fd) + (-1,))[..., k]
                assert np.max(np.abs(got - fd)) <= 1e-7 * max(1.0, float(np.max(np.abs(fd)))), (o, w, k)


def test_composites_refuse_what_they_cannot_do():
    with pytest.raises(BpcError, match="hessian: the wrt values have 269322 elements; the limit is 256"):
        compile_file("examples/mnist_mlp.json", options=CompileOptions(functions=("hessian",)))
    with pytest.raises(BpcError, match="jacobian needs outputs"):
        compile_file("examples/neuron.json", options=CompileOptions(functions=("jacobian",)))


@pytest.mark.parametrize("stage", ["joint", "optimized"])
def test_dumps_keep_composite_entry_points(stage):
    import json

    from bpc.compiler import printing
    from bpc.compiler.pipeline import compile_graph, compile_text

    spec = {**JAC_SPEC, "outputs": ["y"]}
    opts = CompileOptions(functions=("value_and_grad", "jvp", "vjp", "jacobian", "hessian"))
    c = compile_text(json.dumps(spec), options=opts)
    data = json.loads(printing.dump(c.stage(stage), "json", stage))
    again, st = printing.from_json(data)
    assert compile_graph(again, st).source == c.source
    data["graph"]["entries"][-1][3] = None  # a hessian that calls nothing
    with pytest.raises(BpcError, match="call an entry point"):
        printing.from_json(data)


# ------------------------------------------------------------------ review of the modes (regressions)


def test_composites_do_not_clash_with_user_names():
    import json

    from bpc.compiler.pipeline import compile_text

    spec = {"params": [{"name": "e", "shape": [], "value": 3.0}, {"name": "c0", "shape": [], "value": 2.0}],
            "nodes": ["y = e * e * c0", "loss = y"], "loss": "loss", "outputs": ["y"],
            "emit": ["value_and_grad", "jacobian", "hessian"]}
    m = load_source(compile_text(json.dumps(spec)).source, "clash")
    J = m.jacobian(e=3.0, c0=2.0)
    assert float(J["y"]["e"]) == 12.0 and float(J["y"]["c0"]) == 9.0  # d(e^2 c0)/de, /dc0
    H = m.hessian(e=3.0, c0=2.0)
    assert float(H["e"]["e"]) == 4.0 and float(H["e"]["c0"]) == 6.0 == float(H["c0"]["e"])
    spec = {"params": [{"name": "hvp", "shape": [2]}], "nodes": ["loss = sum(hvp * hvp)"], "loss": "loss"}
    with pytest.raises(BpcError, match="hessian calls hvp"):
        compile_text(json.dumps(spec), options=CompileOptions(functions=("hessian",)))


def test_check_adds_value_and_grad_when_the_module_has_none():
    from bpc.runtime.check import check_compiled

    c = compile_file("examples/neuron.json", options=CompileOptions(functions=("hessian",)))
    assert "value_and_grad" not in load_source(c.source, "n").ENTRY_POINTS
    assert check_compiled(c, seed=0).passed


def test_order_2_with_stop_gradient_checks_hvp_by_symmetry():
    import json

    from bpc.compiler.pipeline import compile_text
    from bpc.runtime.check import check_compiled

    spec = {"params": [{"name": "a", "shape": [2], "value": [1.0, 2.0]}, {"name": "b", "shape": [2], "value": [3.0, 4.0]}],
            "nodes": ["s = stop_gradient(a * b)", "loss = sum(s * a * a)"], "loss": "loss", "wrt": ["a"]}
    r = check_compiled(compile_text(json.dumps(spec)), seed=0, order=2)
    assert r.passed and any(t.name == "hvp (symmetry: stop_gradient)" for t in r.tensors)


def test_a_nan_gradient_never_passes():
    from bpc.runtime.gradcheck import compare

    t = compare("b", np.array([np.nan, 1.0]), np.array([np.nan, 1.0]))
    assert not t.passed


ALL_FUNCTIONS = ("value_and_grad", "jvp", "vjp", "hvp", "jacobian", "hessian")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_self_check_checks_every_entry_point(dtype):
    from bpc.compiler.pipeline import compile_file
    from bpc.runtime.loader import load_source

    c = compile_file("examples/one_hidden.json", options=CompileOptions(functions=ALL_FUNCTIONS, dtype=dtype))
    m = load_source(c.source, "one_hidden_all")
    assert set(ALL_FUNCTIONS) <= set(m.ENTRY_POINTS)
    assert m._self_check() is True


def _scaled(value, factor):
    if isinstance(value, dict):
        return {k: _scaled(v, factor) for k, v in value.items()}
    return factor * np.asarray(value)


@pytest.mark.parametrize("function, part", [
    ("jvp", 1), ("vjp", 1), ("hvp", 2), ("jacobian", None), ("hessian", None),
])
def test_self_check_catches_a_wrong_entry_point(function, part):
    """A 0.1% error in one entry point (its result scaled, in the module's own
    namespace, where the self-check looks it up) makes the module's check fail."""
    from bpc.compiler.pipeline import compile_file
    from bpc.runtime.loader import load_source

    c = compile_file("examples/one_hidden.json", options=CompileOptions(functions=ALL_FUNCTIONS))
    m = load_source(c.source, f"one_hidden_broken_{function}")
    right = getattr(m, function)

    def wrong(*args, **kw):
        out = right(*args, **kw)
        if part is None:
            return _scaled(out, 1.001)
        return tuple(_scaled(v, 1.001) if i == part else v for i, v in enumerate(out))

    assert m._self_check() is True
    setattr(m, function, wrong)
    assert m._self_check() is False
