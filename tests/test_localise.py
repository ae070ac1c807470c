"""Node-level localisation and the second-order check."""

from __future__ import annotations

import dataclasses
import json

import pytest
from typer.testing import CliRunner

from bpc.cli.main import app
from bpc.compiler.ops import registry
from bpc.compiler.pipeline import compile_file
from bpc.runtime.check import check_compiled, example_arrays
from bpc.runtime.loader import load_source
from bpc.runtime.localise import localise

from .conftest import EXAMPLES


@pytest.fixture
def planted(request):
    """Replace one op's VJP (or JVP) rule by a wrong one for the test."""
    name, field, rule = request.param
    orig = registry._OPS[name]
    registry._OPS[name] = dataclasses.replace(orig, **{field: rule})
    yield name
    registry._OPS[name] = orig


PLANTS = [
    # sigmoid' = y (1 - y); planted: y
    ("sigmoid", "vjp", lambda g, out, x: [g * out], "examples/sigmoid_2_3_1.json", "nodes[0]", "X1"),
    # matmul's second operand gets a.T @ g; planted: twice that
    ("matmul", "vjp", lambda g, out, a, b: [g @ b.T, 2.0 * (a.T @ g)], "examples/two_hidden.json", "nodes[0]", None),
    # tanh' = 1 - y^2; planted: 1 - y
    ("tanh", "vjp", lambda g, out, x: [g * (1.0 - out)], "examples/autoencoder.json", "nodes[0]", "h1"),
]


@pytest.mark.parametrize(
    "planted,spec,where,node",
    [((op, field, rule), spec, where, node) for op, field, rule, spec, where, node in PLANTS],
    indirect=["planted"],
    ids=[p[0] for p in PLANTS],
)
def test_a_planted_wrong_rule_is_found_at_its_node(planted, spec, where, node):
    c = compile_file(spec)
    result = check_compiled(c, seed=0)
    assert not result.passed
    assert result.culprit is not None, "the check failed but named no node"
    assert result.culprit.op == planted and result.culprit.rule == "VJP"
    if where is not None:
        assert result.culprit.source == where and where in result.culprit.text()
    if node is not None:
        assert result.culprit.node == node
    assert planted in result.culprit.text()


@pytest.mark.parametrize("spec", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_no_node_is_blamed_when_the_rules_are_right(spec):
    c = compile_file(spec)
    m = load_source(c.source, c.name)
    for seed in (0, 1):
        assert localise(c.forward.graph, example_arrays(m, seed), seed) is None


def test_a_planted_wrong_jvp_is_found_too():
    orig = registry._OPS["matmul"]
    registry._OPS["matmul"] = dataclasses.replace(orig, jvp=lambda ts, out, a, b: (ts[0] @ b if ts[0] is not None else a @ ts[1]))
    try:
        c = compile_file("examples/two_hidden.json")
        m = load_source(c.source, c.name)
        cu = localise(c.forward.graph, example_arrays(m, 0))
        assert cu is not None and cu.op == "matmul" and cu.rule == "JVP"
    finally:
        registry._OPS["matmul"] = orig


def test_check_order_2_from_the_command_line():
    r = CliRunner().invoke(app, ["check", "examples/mlp_2_10_10_1.json", "--order", "2", "--json"])
    assert r.exit_code == 0, r.output
    rows = {t["name"]: t for t in json.loads(r.output)["tensors"]}
    assert rows["jvp (dot-product test)"]["passed"] and rows["hvp w1"]["passed"]
    assert len([k for k in rows if k.startswith("hvp ")]) == 6
    r = CliRunner().invoke(app, ["check", "examples/sigmoid_2_3_1.json", "--order", "2"])
    assert r.exit_code == 2 and "need wrt values that are params or inputs" in r.output


# ------------------------------------------------------------------ complex step


def test_complex_step_rows_for_analytic_specs_only():
    from bpc.runtime.check import is_analytic

    for spec, analytic in (("examples/mlp_2_10_10_1.json", True), ("examples/relu_deep.json", False)):
        c = compile_file(spec)
        assert is_analytic(c.forward.graph) == analytic
        result = check_compiled(c, seed=1)
        rows = [t for t in result.tensors if t.name.endswith("(complex step)")]
        assert result.passed and (len(rows) == len(c.forward.wrt) if analytic else not rows)
        assert all(t.max_rel < 1e-12 for t in rows)


def test_complex_step_sees_what_differences_cannot():
    """A rule off by 1e-8 relative passes central differences (rel 1e-6) and
    fails the complex step (rel 1e-10): no step-size trade-off."""
    orig = registry._OPS["tanh"]
    registry._OPS["tanh"] = dataclasses.replace(orig, vjp=lambda g, out, x: [g * (1.0 - out * out) * (1.0 + 1e-8)])
    try:
        spec = {"params": [{"name": "w", "shape": [3]}], "inputs": [{"name": "x", "shape": [3]}],
                "nodes": ["loss = sum(tanh(w * x))"], "loss": "loss"}
        from bpc.compiler.pipeline import compile_text

        result = check_compiled(compile_text(json.dumps(spec)), seed=0)
        fd = next(t for t in result.tensors if t.name == "w")
        cs = next(t for t in result.tensors if t.name == "w (complex step)")
        assert fd.passed and not cs.passed and not result.passed
        # and the localiser, judging tanh by the complex step too, names it
        assert result.culprit is not None and result.culprit.op == "tanh"
    finally:
        registry._OPS["tanh"] = orig
