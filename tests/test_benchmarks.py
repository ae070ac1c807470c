"""The benchmark harness runs, and its baselines and peers agree with bpc.

No timing is asserted here (timings belong to benchmarks/run.py, which prints
same-run ratios); this only keeps the harness working and its yardstick
honest: every baseline (the unrolled W1/W2 ones included) is checked against
bpc's gradients, the operation counter counts what it says it counts, and the
peer worker protocol works when the peers' interpreter exists.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from .conftest import ROOT

PEER_PYTHON = Path("/work/peers/bin/python")


def _load(name):
    spec = importlib.util.spec_from_file_location(f"bpc_bench_{name}", ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def run():
    return _load("run")


@pytest.mark.parametrize("key", ["W1", "W2", "W3", "W4", "W5"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_baselines_match_generated_code(run, key, dtype, tmp_path):
    if key == "W4" and dtype == np.float32:
        pytest.skip("W4 at float64 covers the loop; float32 is W3's labels and the tiny nets")
    w = run.BY_KEY[key]
    notes = []
    # prepare() checks the loss and every gradient of the baseline (and of
    # bpc called by keywords, and -O3 when it exists) before anything is timed.
    cells, prep = run.prepare(w, dtype, tmp_path, [], notes)
    assert {"bpc", "hand", "matmul 1024"} <= set(cells) and not notes
    assert prep["module"].value_and_grad(*prep["args"])[1]["w1"].dtype == dtype
    t = run.time_rounds({k: cells[k] for k in ("bpc", "hand")}, rounds=1, budget=0.0, gap=0.0)
    assert t["bpc"][0] > 0 and t["hand"][0] > 0


def test_unrolled_baselines_are_the_generic_loop(run):
    import handwritten

    for key, f in handwritten.UNROLLED.items():
        w = run.BY_KEY[key]
        _, m = run.compile_module(w)
        params, x, y = run.data(w, m, seed=3)
        loss, grads = f(*[params[k] for k in m.PARAMS], x, y)
        gl, gg = handwritten.mlp_value_and_grad(params, x, y, w.depth, w.act, w.loss, w.layout)
        assert np.isclose(loss, gl, rtol=1e-12)
        for k in gg:
            np.testing.assert_allclose(np.reshape(grads[k], np.shape(gg[k])), gg[k], rtol=1e-10, atol=1e-14)


def test_opcount_counts_a_known_function():
    opcount = _load("opcount")

    def f(a, b, n):
        c = a @ b + 1.0  # 2: matmul, add
        d = np.exp(-c)  # 2: negative, exp
        s = 2.0 / n  # 0: Python numbers
        e = d.T.reshape(-1)  # 2: .T, reshape
        e *= s  # 1: in place
        table = {"e": e}
        g = table["e"][0]  # 1: the array subscript, not the dict's
        return e.sum(), c.shape, g  # 1: sum; .shape is no array

    a = np.ones((2, 2))
    c = opcount.count_ops(f, (a, a, 4))
    assert c["total"] == 9, c
    assert (c["call"], c["operator"], c["attribute"], c["in-place operator"], c["subscript"]) == (3, 3, 1, 1, 1)


def test_opcount_on_generated_and_unrolled_code(run, tmp_path):
    w = run.BY_KEY["W1"]
    cells, prep = run.prepare(w, np.float64, tmp_path, [], [])
    counts = run.count_calls(w, prep)
    # 45 and 36 when written (2026): a change in either is worth a look, not a failure
    assert 20 < counts["hand"]["total"] <= counts["bpc"]["total"]


def test_fresh_process_figures(run, tmp_path):
    w = run.BY_KEY["W1"]
    cells, prep = run.prepare(w, np.float64, tmp_path, [], [])
    fr = run.fresh_figures(w, prep["modules"], prep["data"], reps=1, calls=2, gap=0.0, warm_s=1e-5)
    assert set(fr) >= {"bpc", "hand"}
    for v in fr.values():
        assert v["first_s"] > 0 and v["firstk_s"] >= v["first_s"] and v["warm_faults"] >= 0


def test_non_interned_keys_still_call(run):
    w = run.BY_KEY["W1"]
    _, m = run.compile_module(w)
    params, x, y = run.data(w, m)
    loose = run.non_interned({**params, "x": x, "y": y})
    assert list(loose) == [*params, "x", "y"] and any(a is not b for a, b in zip(loose, params))
    assert np.isclose(m.value_and_grad(**loose)[0], m.value_and_grad(**params, x=x, y=y)[0])


def test_o3_columns_with_a_stand_in(run, tmp_path, monkeypatch, capsys):
    """Until CompileOptions has opt_level: a stand-in -O3 module (the default
    one with an out= wrapper) drives the -O3 and out= paths of the harness."""
    plain = run.compile_module

    def compile_module(w, dtype="float64", opt_level=None):
        src, _ = plain(w, dtype)
        if opt_level == 3:
            src += (
                "\n\n_plain_value_and_grad = value_and_grad\n\n\n"
                "def value_and_grad(*args, out=None):\n"
                "    loss, grads = _plain_value_and_grad(*args)\n"
                "    if out is None:\n"
                "        return loss, grads\n"
                "    for k, g in grads.items():\n"
                "        out[k][...] = g\n"
                "    return loss, out\n"
            )
        return src, run.load_source(src, f"{w.key}_{dtype}_{opt_level}")

    monkeypatch.setattr(run, "o3_available", lambda: True)
    monkeypatch.setattr(run, "compile_module", compile_module)
    w = run.BY_KEY["W2"]
    cells, prep = run.prepare(w, np.float64, tmp_path, [], [])
    assert {"bpc -O3", "bpc -O3 out="} <= set(cells)
    assert set(run.count_calls(w, prep)) == {"bpc", "bpc -O3", "bpc -O3 out=", "hand"}
    fr = run.fresh_figures(w, prep["modules"], prep["data"], reps=1, calls=2, gap=0.0, warm_s=1e-5)
    assert set(fr) == {"bpc", "hand", "bpc -O3", "bpc -O3 out="}
    # and the report has the columns
    assert run.main(["--quick", "--only", "W2", "--fresh-reps", "1", "--json", str(tmp_path / "raw.json")]) == 0
    text = capsys.readouterr().out
    assert "| bpc -O3 out= |" in text and "| W2 | bpc -O3 |" in text
    assert json.loads((tmp_path / "raw.json").read_text())["runs"][0]["W2"]["times"]["bpc -O3"]


@pytest.mark.skipif(not PEER_PYTHON.exists(), reason="no peers' interpreter at /work/peers/bin/python")
def test_peer_worker_protocol(run, tmp_path):
    w = run.BY_KEY["W1"]
    peers, notes = run.start_peers(str(PEER_PYTHON), ["autograd"])
    try:
        if not peers:
            pytest.skip(f"autograd not importable there: {notes}")
        cells, prep = run.prepare(w, np.float64, tmp_path, peers, notes)
        assert "autograd" in cells and not notes  # set up and checked against bpc
        assert cells["autograd"](0.0) > 0
        r = peers[0].ask(cmd="nonsense")
        assert r["ok"] is False
    finally:
        for p in peers:
            p.close()


def test_compile_time_harness(run):
    (layers, seconds, nodes), = run.compile_times([5])
    assert layers == 5 and seconds > 0 and nodes > 0


def test_bounds_pieces_are_the_steps_products_and_activations(capsys):
    """benchmarks/bounds.py times a step's products and activations apart: they
    must be the ones the -O3 module makes (3 L - 1 products, L - 1 hidden
    activations for L layers), and the table prints."""
    import ast

    from bpc.compiler.options import CompileOptions
    from bpc.compiler.pipeline import compile_text

    bounds = _load("bounds")
    for key in ("W3", "W5"):
        w = bounds.BY_KEY[key]
        src = compile_text(json.dumps(w.spec()), options=CompileOptions(opt_level=3)).source
        fn = next(n for n in ast.parse(src).body if isinstance(n, ast.FunctionDef) and n.name == "value_and_grad")
        calls = [n for n in ast.walk(fn) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)]
        dots = [c for c in calls if c.func.attr == "dot" and ast.unparse(c.func.value) != "_bpc_ones"]
        acts = [c for c in calls if c.func.attr in ("tanh", "maximum")]
        assert len(dots) == 3 * w.depth - 1, key
        assert len(acts) == w.depth - 1, key
    assert bounds.main(["--only", "W5", "--budget", "0.001", "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    assert "| W5 |" in out and "tanh float64" in out
