"""-O3: intermediates in buffers reused across calls, gradients into ``out=``.

The random networks of ``tests/test_differential.py`` run at -O3 too (with every
value buffered, whatever its size: ``tests/netgen.py``'s ``compile_level`` and
``check_workspace``). Here: every example at the real threshold against the
reference interpreter, on calls that reuse the workspace, and the contract of
``out=`` (it is written, returned, checked), the steady state allocating no
intermediate, and the errors.
"""

from __future__ import annotations

import json
import tracemalloc

import numpy as np
import pytest
from typer.testing import CliRunner

from bpc.cli.main import app
from bpc.compiler.errors import SpecError
from bpc.compiler.options import CompileOptions
from bpc.compiler.pipeline import compile_file, compile_text
from bpc.runtime import interpreter
from bpc.runtime.check import example_arrays
from bpc.runtime.loader import load_source

from .conftest import EXAMPLES

O3 = CompileOptions(opt_level=3)


def _o3(path):
    c = compile_file(path, options=O3)
    return c, load_source(c.source, c.name + "_o3")


def _scaled(module, arrays, k):
    """The same arrays with every param changed (labels and data kept)."""
    return {n: (np.asarray(v) * (1.0 + 0.1 * k) if n in module.PARAMS else v) for n, v in arrays.items()}


@pytest.mark.parametrize("spec", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_o3_equals_reference_interpreter_across_calls(spec):
    c, m = _o3(spec)
    base = example_arrays(m, seed=3)
    dims = getattr(m, "DIMS", {})
    # other sizes of the symbolic dims remake the workspace: one call at 3x, then back
    other = example_arrays(m, seed=4, dims={d: 3 * v for d, v in dims.items()}) if dims else None
    kept = []
    for k in range(4):  # the workspace is reused by every call after the first
        arrays = other if (k == 2 and other is not None) else _scaled(m, base, k)
        loss, grads = m.value_and_grad(**arrays)
        ref_loss, ref_grads = interpreter.value_and_grad(c.joint, arrays)
        np.testing.assert_allclose(loss, ref_loss, rtol=1e-12, atol=1e-12)
        assert tuple(grads) == m.WRT
        for w in m.WRT:
            np.testing.assert_allclose(grads[w], ref_grads[w], rtol=1e-10, atol=1e-12)
        kept.append((loss, grads, np.array(loss, copy=True), {w: g.copy() for w, g in grads.items()}))
        f = m.forward(**arrays)
        np.testing.assert_allclose(f[0] if isinstance(f, tuple) else f, loss, rtol=0, atol=0)
    # no result lives in the workspace: later calls left earlier results alone
    for loss, grads, loss0, grads0 in kept:
        assert np.array_equal(loss, loss0)
        for w in grads:
            assert np.array_equal(grads[w], grads0[w])
    # out=: the caller's arrays are written and returned
    out = {w: np.full(np.shape(g), np.nan) for w, g in kept[0][1].items()}
    loss, grads = m.value_and_grad(**base, out=out)
    assert grads is out
    for w in m.WRT:
        np.testing.assert_allclose(out[w], kept[0][3][w], rtol=1e-12, atol=0)


def test_deep_tanh_buffers_and_steady_state_allocates_no_intermediate():
    c, m = _o3("examples/deep_tanh.json")
    assert "out=_bpc_ws[" in c.source and "h1 = np.tanh(z1, out=z1)" in c.source
    arrays = example_arrays(m, seed=0)
    args = [arrays[k] for k in list(m.PARAMS) + list(m.INPUTS)]
    out = {w: np.zeros(np.shape(arrays[w])) for w in m.WRT}
    m.value_and_grad(*args, out=out)
    ws = m._BPC_WORKSPACE["value_and_grad"]
    ids = [id(a) for a in ws]
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    m.value_and_grad(*args, out=out)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    # The default module peaks at about 79 KB per call here (its 16x32
    # intermediates, 4 KB each); at -O3 what remains is Python objects and the
    # values below the buffer threshold (the 16x1 output and loss), about 6 KB.
    assert peak < 8192, peak
    assert [id(a) for a in m._BPC_WORKSPACE["value_and_grad"]] == ids
    # and the gradients are right: the default-level module agrees
    d = load_source(compile_file("examples/deep_tanh.json").source, "deep_tanh_o2")
    loss, grads = d.value_and_grad(**arrays)
    for w in m.WRT:
        np.testing.assert_allclose(out[w], grads[w], rtol=1e-12, atol=1e-15)


def test_default_level_allocates_the_intermediates_o3_does_not():
    """The measurement above can fail: the default module allocates per call."""
    d = load_source(compile_file("examples/deep_tanh.json").source, "deep_tanh_o2b")
    arrays = example_arrays(d, seed=0)
    d.value_and_grad(**arrays)
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    d.value_and_grad(**arrays)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    assert peak > 8 * 8192


W1_MSG = "out['w1']: expected a writable C-contiguous float64 array of shape (32, 32)"


def _read_only(a):
    a.flags.writeable = False
    return a


@pytest.mark.parametrize(
    "bad, expected",
    [
        (lambda a: a[:, :1], W1_MSG),
        (lambda a: a.astype(np.float32), W1_MSG),
        (lambda a: np.asfortranarray(a), W1_MSG),
        (lambda a: np.zeros((32, 64))[:, ::2], W1_MSG),
        (_read_only, W1_MSG),
        (lambda a: a.tolist(), W1_MSG),
        (lambda a: None, W1_MSG),
    ],
    ids=["shape", "dtype", "fortran", "strided", "read-only", "list", "missing"],
)
def test_out_is_checked(bad, expected):
    """Whatever is wrong with ``out`` is one ValueError naming the key, before
    anything is written."""
    _, m = _o3("examples/deep_tanh.json")
    arrays = example_arrays(m, seed=0)
    out = {w: np.zeros(np.shape(arrays[w])) for w in m.WRT}
    out["w1"] = bad(out["w1"])
    if out["w1"] is None:
        del out["w1"]
    kept = {k: np.array(v, copy=True) for k, v in out.items()}
    with pytest.raises(ValueError) as e:
        m.value_and_grad(**arrays, out=out)
    assert str(e.value) == expected
    assert all(np.array_equal(out[k], kept[k]) for k in out)  # nothing written
    with pytest.raises(ValueError, match=r"^out: expected a dict of arrays, got list$"):
        m.value_and_grad(**arrays, out=list(out.values()))


def test_gradient_that_is_an_argument_or_shared_is_copied_into_out():
    spec = {
        "params": [{"name": "w", "shape": [3]}, {"name": "v", "shape": [3]}],
        "inputs": [{"name": "x", "shape": [3]}],
        "nodes": ["loss = sum(w * x) + sum(v * x)"],
        "loss": "loss",
    }
    c = compile_text(json.dumps(spec), options=O3)
    m = load_source(c.source, "argcopy")
    x = np.array([1.0, 2.0, 3.0])
    out = {"w": np.zeros(3), "v": np.zeros(3)}
    loss, grads = m.value_and_grad(w=np.ones(3), v=np.ones(3), x=x, out=out)
    assert grads is out
    np.testing.assert_array_equal(out["w"], x)
    np.testing.assert_array_equal(out["v"], x)
    out["w"][0] = 99.0
    assert x[0] == 1.0  # a copy, not the argument


def test_param_named_out_is_rejected_at_o3_only():
    spec = {
        "params": [{"name": "out", "shape": [2]}],
        "nodes": ["loss = sum(out * out)"],
        "loss": "loss",
    }
    compile_text(json.dumps(spec))
    with pytest.raises(SpecError, match="'out' is reserved at -O3"):
        compile_text(json.dumps(spec), options=O3)


def test_cli_o3(tmp_path):
    runner = CliRunner()
    r = runner.invoke(app, ["compile", "examples/deep_tanh.json", "-O3", "-o", str(tmp_path), "--check"])
    assert r.exit_code == 0, r.output
    assert "PASSED" in r.output
    assert "out=_bpc_ws[" in (tmp_path / "deep_tanh.py").read_text()
    r = runner.invoke(app, ["check", "examples/deep_tanh.json", "-O3"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["compile", "examples/deep_tanh.json", "-O3", "-O0", "-o", str(tmp_path / "x")])
    assert r.exit_code == 2 and "give -O0 or -O3, not both" in r.output
    assert not (tmp_path / "x").exists()
    r = runner.invoke(app, ["compile", "examples/deep_tanh.json", "-O3", "--target", "array-api", "-o", str(tmp_path / "y")])
    assert r.exit_code == 2 and "-O3 writes NumPy's out= arguments" in r.output


def test_float32_o3():
    c = compile_file("examples/deep_tanh.json", options=CompileOptions(opt_level=3, dtype="float32"))
    m = load_source(c.source, "deep_tanh_f32_o3")
    assert "np.empty(s, dtype=np.float32)" in c.source
    arrays = example_arrays(m, seed=0)
    loss, grads = m.value_and_grad(**arrays)
    ref = load_source(compile_file("examples/deep_tanh.json").source, "deep_tanh_f64")
    rl, rg = ref.value_and_grad(**{k: np.asarray(v, np.float64) for k, v in arrays.items()})
    for w in m.WRT:
        assert grads[w].dtype == np.float32
        np.testing.assert_allclose(grads[w], rg[w], rtol=2e-3, atol=1e-5)
    with pytest.raises(ValueError, match="C-contiguous float32 array"):
        m.value_and_grad(**arrays, out={w: np.zeros(np.shape(g)) for w, g in grads.items()})


@pytest.mark.parametrize("dtype", ["f64", "f32"])
def test_templates_are_black_stable(dtype):
    import black

    from bpc.compiler.workspace import workspace_templates

    for name, text in workspace_templates(dtype).items():
        assert black.format_str(text + "\n", mode=black.Mode()) == text + "\n", name


def test_symbolic_batch_workspace_follows_the_argument_sizes():
    """A symbolic dim is read off the arguments: the workspace is remade when the
    batch size changes, and a gradient of symbolic shape goes into out= too."""
    spec = {
        "params": [{"name": "w", "shape": [8, 8]}],
        "inputs": [{"name": "x", "shape": ["batch", 8]}],
        "dims": {"batch": 32},
        "nodes": ["h = tanh(x @ w)", "loss = sum(h * h)"],
        "wrt": ["w", "x"],
        "loss": "loss",
    }
    c = compile_text(json.dumps(spec), options=O3)
    assert "(x.shape[0], 8)" in c.source and "out=_bpc_ws[" in c.source
    m = load_source(c.source, "symbolic_o3")
    rng = np.random.default_rng(0)
    for batch in (32, 32, 5, 70, 32):
        arrays = {"w": rng.standard_normal((8, 8)), "x": rng.standard_normal((batch, 8))}
        loss, grads = m.value_and_grad(**arrays)
        ref_loss, ref_grads = interpreter.value_and_grad(c.joint, arrays)
        np.testing.assert_allclose(loss, ref_loss, rtol=1e-12)
        for k in ("w", "x"):
            np.testing.assert_allclose(grads[k], ref_grads[k], rtol=1e-10, atol=1e-12)
        assert m._BPC_WORKSPACE["value_and_grad"][1][0].shape[0] == batch
        out = {"w": np.empty((8, 8)), "x": np.empty((batch, 8))}
        assert m.value_and_grad(**arrays, out=out)[1] is out
        np.testing.assert_allclose(out["x"], ref_grads["x"], rtol=1e-10, atol=1e-12)


def test_row_sums_are_products_with_a_ones_vector_of_the_current_batch():
    """-O3 writes ``x.sum(axis=0)`` of a 2-D value (a bias gradient, a column
    sum) as ``_bpc_ones.dot(x, out=...)``, the ones a workspace vector of the
    batch's length: the results equal the interpreter's at every batch size,
    a NaN or inf in a row still reaches the sum, and the vector holds ones
    after any number of calls (nothing writes into it)."""
    spec = {
        "params": [{"name": "w", "shape": [8, 8]}, {"name": "b", "shape": [8]}, {"name": "c", "shape": [8]}],
        "inputs": [{"name": "x", "shape": ["batch", 8]}],
        "dims": {"batch": 16},
        "nodes": ["h = tanh(x @ w + b)", "s = sum(h, axis=0)", "loss = sum(s * c) + sum(h * h)"],
        "loss": "loss",
    }
    c = compile_text(json.dumps(spec), options=CompileOptions(opt_level=3))
    assert "_bpc_ones = _bpc_ws[" in c.source
    assert '_bpc_ones.dot(g_h_add, out=out["b"])' in c.source and "s = _bpc_ones.dot(h, out=" in c.source
    m = load_source(c.source, "ones_o3")
    rng = np.random.default_rng(5)
    params = {"w": rng.standard_normal((8, 8)) * 0.3, "b": rng.standard_normal(8), "c": rng.standard_normal(8)}
    for batch in (16, 3, 16, 40, 1):
        x = rng.standard_normal((batch, 8))
        loss, grads = m.value_and_grad(**params, x=x)
        ref_loss, ref_grads = interpreter.value_and_grad(c.joint, {**params, "x": x})
        np.testing.assert_allclose(loss, ref_loss, rtol=1e-12)
        for k in ("w", "b", "c"):
            np.testing.assert_allclose(grads[k], ref_grads[k], rtol=1e-10, atol=1e-12)
    ones = [a for a in m._BPC_WORKSPACE["value_and_grad"][1] if a.shape == (1,)]
    assert ones and all(np.array_equal(a, np.ones(1)) for a in ones)
    x = rng.standard_normal((4, 8))
    x[2, 3] = np.nan
    with np.errstate(invalid="ignore"):
        _, grads = m.value_and_grad(**params, x=x)
    assert np.isnan(grads["b"]).any()


def test_a_value_named_out_is_renamed_inside_the_function_only():
    """A loss or intermediate named ``out`` is a local renamed out_1 at -O3 (the
    out= argument keeps its name); the module's LOSS constant keeps the spec's."""
    spec = {"params": [{"name": "p", "shape": [3]}], "nodes": ["out = sum(p * p)"], "loss": "out"}
    c = compile_text(json.dumps(spec), options=O3)
    m = load_source(c.source, "loss_named_out_o3")
    assert m.LOSS == "out" and "out_1 = " in c.source
    p = np.array([1.0, -2.0, 0.5])
    grads = {"p": np.zeros(3)}
    loss, got = m.value_and_grad(p=p, out=grads)
    assert got is grads and loss == 5.25
    np.testing.assert_array_equal(grads["p"], 2 * p)


def test_out_must_be_plain_ndarrays_not_subclasses():
    """A subclass (np.matrix, a masked array) may give * and indexing other
    meanings, and the gradients are read back from out: refused."""

    class Sub(np.ndarray):
        pass

    _, m = _o3("examples/deep_tanh.json")
    arrays = example_arrays(m, seed=0)
    out = {w: np.zeros(np.shape(arrays[w])) for w in m.WRT}
    out["w1"] = out["w1"].view(Sub)
    with pytest.raises(ValueError, match=r"^out\['w1'\]: expected a writable C-contiguous"):
        m.value_and_grad(**arrays, out=out)
