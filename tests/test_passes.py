"""Each pass keeps values and gradients exact; each does its job."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from bpc.compiler.passes import PASS_NAMES, PassReport, op_counts, optimize
from bpc.compiler.passes.basic import cse, dce, fold_constants, simplify
from bpc.compiler.pipeline import compile_file, compile_text
from bpc.runtime import interpreter
from bpc.runtime.check import example_arrays
from bpc.runtime.loader import load_source

from .conftest import EXAMPLES


@pytest.mark.parametrize("spec", EXAMPLES, ids=[p.stem for p in EXAMPLES])
@pytest.mark.parametrize("only", PASS_NAMES)
def test_each_pass_alone_keeps_gradients_exact(spec, only):
    c = compile_file(f"examples/{spec.name}", passes=set())
    module = load_source(c.source, c.name)
    arrays = example_arrays(module, seed=5)
    ref_loss, ref = interpreter.value_and_grad(c.joint, arrays)
    g = optimize(c.joint.graph, {only})
    loss, got = interpreter.value_and_grad(g, arrays)
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-13)
    for w in ref:
        np.testing.assert_allclose(got[w], ref[w], rtol=1e-12, atol=1e-14)


def test_optimized_graph_is_smaller():
    c = compile_file("examples/relu_deep.json")
    assert len(c.optimized.graph) < len(c.joint.graph)
    assert op_counts(c.optimized.graph)["identity"] == 0


def _graph(nodes, **kw):
    spec = {"params": [{"name": "x", "shape": [2, 2]}, {"name": "y", "shape": [2, 2]}], "nodes": nodes, "loss": "loss"}
    spec.update(kw)
    return compile_text(json.dumps(spec), passes=set())


def test_cse_merges_duplicates():
    c = _graph(["a = exp(x) * y", "b = exp(x) * y", "loss = sum(a + b)"])
    g = c.joint.graph.copy()
    before = op_counts(g)["exp"]
    assert cse(g) is True
    assert before >= 2 and op_counts(g)["exp"] == 1
    assert cse(g) is False  # nothing left to merge: the pass says so


def test_dce_removes_unused_but_keeps_signature():
    c = _graph(["unused = exp(y)", "loss = sum(x)"], wrt=["x"])
    g = c.joint.graph.copy()
    assert dce(g) is True
    assert "unused" not in g and "y" in g
    assert dce(g) is False


def test_fold_constants():
    c = _graph(["loss = sum(x * (2.0 * 3.0 + 1.0))"], wrt=["x"])
    g = c.joint.graph.copy()
    assert fold_constants(g) is True
    dce(g)
    consts = sorted(g.attrs(n)["value"] for n in g.nx.nodes if g.op(n) == "const" and not g.data(n)["phase"] == "backward")
    assert 7.0 in consts and 2.0 not in consts


def test_simplify_identities():
    c = _graph(["a = x * 1.0 + 0.0", "b = (a.T).T", "c = -(-b)", "loss = sum(c / 1)"], wrt=["x"])
    g = c.joint.graph.copy()
    counts = Counter()
    assert simplify(g, counts) is True
    dce(g)
    assert counts["double negation"] >= 1 and counts["double transpose"] >= 1 and counts["unit operand"] >= 1
    fwd_ops = {g.op(n) for n in g.ancestors([g.loss])} - {"param", "input"}
    assert fwd_ops == {"sum"}


def test_verify_rejects_a_broken_graph():
    c = _graph(["loss = sum(x * y)"])
    g = c.joint.graph.copy()
    mul = next(n for n in g.nx.nodes if g.op(n) == "mul")
    g.set_args(mul, [g.args(mul)[0]])
    with pytest.raises(AssertionError):
        g.verify()


def test_reduction_of_one_element_is_a_reshape():
    c = compile_text(json.dumps({"params": [{"name": "x", "shape": [1, 1]}], "nodes": ["loss = mean(x * x)"], "loss": "loss"}))
    assert "mean" not in c.source.split("def value_and_grad")[1]
    assert op_counts(c.optimized.graph)["mean"] == 0


def test_seed_and_fills_become_scalars():
    c = compile_text(json.dumps({"params": [{"name": "x", "shape": [3, 1]}], "nodes": ["loss = sum(log(x * x))"], "loss": "loss"}))
    vg = c.source.split("def value_and_grad")[1]
    assert "np.ones" not in vg and "np.full" not in vg and "np.broadcast_to" not in vg


def test_scalar_constants_are_reassociated():
    c = _graph(["loss = sum(3.0 * (2.0 * x))"], wrt=["x"])
    g = optimize(c.joint.graph)
    consts = {g.attrs(n)["value"] for n in g.nx.nodes if g.op(n) == "const"}
    assert 6.0 in consts


def test_large_intermediates_are_freed_after_last_use():
    c = compile_file("examples/mnist_mlp.json")
    vg = c.source.split("def value_and_grad")[1]
    dels = [ln.strip() for ln in vg.splitlines() if ln.strip().startswith("del ")]
    assert "del z1" in dels and "del h1, g_h1" in dels
    # a freed name is never read again (comments aside)
    lines = [ln.strip() for ln in vg.splitlines() if not ln.strip().startswith("#")]
    for i, ln in enumerate(lines):
        if ln.startswith("del "):
            for name in ln[4:].split(", "):
                later = "\n".join(lines[i + 1 :])
                assert not __import__("re").search(rf"\b{name}\b", later), name


def test_fan_out_is_accumulated_in_place():
    spec = {"params": [{"name": "x", "shape": [4, 4]}], "nodes": ["a = tanh(x)", "loss = sum(a * exp(a) + sin(a) + a @ a)"], "loss": "loss"}
    c = compile_text(json.dumps(spec))
    assert "g_a += " in c.source
    from bpc.runtime.check import check_compiled

    assert check_compiled(c, seed=0).passed


@pytest.mark.parametrize("spec", EXAMPLES, ids=[p.stem for p in EXAMPLES])
@pytest.mark.parametrize("only", PASS_NAMES + ["none"])
def test_each_pass_alone_passes_finite_differences(spec, only):
    from bpc.runtime.check import check_compiled

    c = compile_file(f"examples/{spec.name}", passes=set() if only == "none" else {only})
    result = check_compiled(c, seed=7, max_elements=48)
    assert result.passed, [t.as_dict() for t in result.tensors if not t.passed]


def test_multiplying_by_minus_one_is_a_negation():
    c = _graph(["loss = sum(-1.0 * exp(x))"], wrt=["x"])
    g = optimize(c.joint.graph)
    assert not any(g.op(n) == "mul" for n in g.ancestors([g.loss]))
    assert any(g.op(n) == "neg" for n in g.ancestors([g.loss]))


def test_optimize_runs_to_a_fixpoint_and_reports_each_rewrite():
    c = _graph(["a = -(-x)", "loss = sum(a * 1.0)"], wrt=["x"])
    report = PassReport()
    g = optimize(c.joint.graph, report=report)
    assert report.rewrites["simplify: double negation"] >= 1 and report.rewrites["simplify: unit operand"] >= 1
    assert report.rewrites["dce: removed nodes"] >= 1
    # a second run finds nothing to do: one round, no rewrites
    again = PassReport()
    optimize(g, report=again)
    assert again.rounds == 1 and not +again.rewrites


def test_passes_never_rename_a_value():
    """Ids are identity, names are printing: every id of the optimized graph
    is an id of the joint graph or a node a pass made, never a renamed one."""
    c = compile_file("examples/mnist_mlp.json")
    joint, opt = c.joint.graph, c.optimized.graph
    created = {n for n in opt.nx.nodes if n not in joint}
    assert all(opt.data(n)["seq"] > joint._seq for n in created)
    names = opt.names()
    assert len(set(names.values())) == len(names)
    assert all(names[n] == n for n in opt.params + opt.inputs)
