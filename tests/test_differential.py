"""Differential testing: random networks built from the op registry, compiled at
every optimization level, against the reference interpreter and finite differences.

The generator and the check live in ``tests/netgen.py`` (see its docstring for
what is generated and checked, and the tolerances). Profiles
(``tests/conftest.py``): the default runs ``DIFF_EXAMPLES`` networks (about
30 s); ``pytest tests/test_differential.py --hypothesis-profile=long`` runs
10,000. ``benchmarks/fuzz_differential.py`` runs the same generator and check
on many networks without hypothesis.
"""

from __future__ import annotations

import random
import types
from collections import Counter
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from .netgen import (
    EXCLUDED,
    FD_STEP,
    check_spec,
    differentiable_public_ops,
    failure_predicate,
    features,
    finite_differences,
    generate,
    generated_ops,
    network_from_seed,
    ops_in_spec,
    report,
    shrink,
)

# At least this many networks in the default (CI) profile; the long profile's 10,000.
DIFF_EXAMPLES = 250

DIFF = settings(
    max_examples=max(settings().max_examples, DIFF_EXAMPLES),
    deadline=None,
    # No hypothesis shrinking: a failing spec is minimized by netgen.shrink,
    # which knows the spec format (drops nodes, loss terms, wrt entries, ...).
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _fail(spec: dict[str, Any], outcome: Any) -> None:
    small = shrink(spec, failure_predicate(outcome), budget=60)
    pytest.fail(
        "generated code disagrees (minimized spec, then the original):\n"
        + report(small, check_spec(small))
        + "\n"
        + report(spec, outcome),
        pytrace=False,
    )


@DIFF
@given(rng=st.randoms(use_true_random=False))
def test_random_networks_agree_at_every_optimization_level(rng: random.Random) -> None:
    net = generate(rng)
    outcome = check_spec(net.spec)
    event(f"status: {outcome.status}")
    if outcome.failures:
        _fail(net.spec, outcome)


# ------------------------------------------------------------------ regressions

# Specs an outside tester reported (silently wrong gradients, bool/int
# gradients, run-time errors), and minimal ones this generator found. Each
# must compile and pass every check at every level.
REGRESSIONS: dict[str, dict[str, Any]] = {
    "fan-out sum needs parentheses": {
        "params": [{"name": "x", "shape": [], "value": 0.7}],
        "nodes": ["t = tanh(x)", "r = relu(x)", "l = r + x + t"],
        "loss": "l",
    },
    "relu and maximum masks are bools": {
        "params": [{"name": "x", "shape": [3], "value": [0.5, -1.5, 2.0]}],
        "nodes": ["l = sum(relu(x)) + sum(maximum(x, 0.0))"],
        "loss": "l",
    },
    "relu of a negation": {
        "params": [{"name": "x", "shape": [3], "value": [0.5, -1.5, 2.0]}],
        "nodes": ["l = sum(relu(-x))"],
        "loss": "l",
    },
    "maximum of a value with itself": {
        "params": [{"name": "p", "shape": [2], "value": [0.3, -0.4]}],
        "nodes": ["l = sum(maximum(p, p))"],
        "loss": "l",
    },
    "integer spec values": {
        "params": [{"name": "w", "shape": [3], "value": [1, -2, 3]}],
        "inputs": [{"name": "x", "shape": [3], "value": [2, 0, 1]}],
        "nodes": ["l = sum(w * x)"],
        "loss": "l",
        "wrt": ["w", "x"],
    },
    "fan-out of add(p, p)": {
        "params": [{"name": "p", "shape": [], "value": 0.5}],
        "nodes": ["a = add(p, p)", "r = relu(p)", "loss = a + r"],
        "loss": "loss",
    },
    "gradient wrt the loss": {
        "params": [{"name": "w", "shape": [3], "value": [0.5, -1.0, 2.0]}],
        "nodes": ["loss = sum(w * w)"],
        "loss": "loss",
        "wrt": ["w", "loss"],
    },
    "constant gradient of a scalar": {
        "params": [
            {"name": "b", "shape": [], "value": 0.5},
            {"name": "w", "shape": [2], "value": [0.5, 1.5]},
        ],
        "nodes": ["loss = sum(tanh(w)) - 3.0 * b"],
        "loss": "loss",
    },
    "two wrt names share one gradient": {
        "params": [
            {"name": "a", "shape": [3], "value": [0.3, 1.1, -1.7]},
            {"name": "b", "shape": [], "value": 0.5},
        ],
        "nodes": ["u = min(a)", "v = square(b)", "loss = u + v"],
        "loss": "loss",
        "wrt": ["u", "v"],
    },
    "transpose of a scalar": {
        "params": [{"name": "p", "shape": [], "value": 0.5}],
        "nodes": ["loss = p.T * 2.0"],
        "loss": "loss",
    },
    "exp of a mask": {
        "inputs": [{"name": "x", "shape": [2], "value": [0.0, 1.0]}],
        "nodes": ["m = x < 0.5", "loss = sum(exp(m)) + sum(x)"],
        "loss": "loss",
        "wrt": ["x"],
    },
    "sum of two mask maxima": {
        "params": [{"name": "p", "shape": [3], "value": [0.5, 1.0, -1.0]}],
        "nodes": ["m = p >= p", "loss = max(m) + max(m) + sum(p)"],
        "loss": "loss",
    },
    # The oracle's own regression: a plain central difference is off by 1e-5
    # relative here (slope ~4,600, third derivative ~1e11); Richardson is not.
    "fast oscillation (the oracle's truncation error)": {
        "inputs": [{"name": "x2", "shape": [1], "value": -1.771}],
        "nodes": ["v3 = pow(square(x2) + 1.5, square(x2) + 1.3)", "v4 = sin(v3)"],
        "loss": "v4",
        "wrt": ["x2"],
    },
    # A three-way tie in min that only rounding breaks: the interpreter's
    # sigmoid and the emitted one round differently, so each picks a
    # different (valid) subgradient; gradients are not compared there.
    "tie in min broken only by rounding": {
        "inputs": [{"name": "x1", "shape": [1, 3], "value": [[-0.409, -1.168, -1.55]]}],
        "params": [{"name": "p2", "shape": [], "value": 1}],
        "nodes": ["v4 = sub(x1, p2) - x1", {"name": "v5", "op": "elu", "inputs": ["v4"]}, "v7 = sigmoid(v5)", "loss = min(v7)"],
        "loss": "loss",
        "wrt": ["v4"],
    },
    "negated mask": {
        "params": [{"name": "p", "shape": [3], "value": [0.5, 1.0, -1.0]}],
        "nodes": ["m = p > 0", "loss = sum(-m) + sum(p)"],
        "loss": "loss",
    },
    "logsumexp of a mask": {
        "params": [{"name": "p", "shape": [2], "value": [0.5, -1.0]}],
        "nodes": ["m = p > 0", "loss = logsumexp(m) + sum(p)"],
        "loss": "loss",
    },
    "maximum with a broadcast operand": {
        "inputs": [
            {"name": "x", "shape": [2, 3], "value": [1.977, 0.858, 0.048, 0.634, 0.149, 1.617]},
            {"name": "y", "shape": [2, 1], "value": 0.5},
        ],
        "nodes": ["loss = sum(maximum(x, y))"],
        "loss": "loss",
        "wrt": ["y"],
    },
    "minimum fan-out accumulates into a mask": {
        "params": [{"name": "p", "shape": [4, 2], "value": 0.5}],
        "nodes": ["s = sse(p, p)", "loss = sum(minimum(p, s))"],
        "loss": "loss",
    },
    "nll with integer one-hot targets": {
        "inputs": [{"name": "y", "shape": [1, 3], "value": [[1, 1, 2]]}],
        "params": [{"name": "z", "shape": [1, 3], "value": 0.5}],
        "nodes": ["loss = nll(z, y)"],
        "loss": "loss",
    },
    "negative power of an integer array": {
        "params": [{"name": "p", "shape": [1, 1], "value": 2}],
        "nodes": ["loss = p ** (-1)"],
        "loss": "loss",
    },
    # An adversarial review of -O3 (session 6): results that are also
    # gradients, views of gradients, and a value named like out=.
    "loss is itself a gradient": {
        "params": [{"name": "w", "shape": [], "value": 0.5}],
        "nodes": ["loss = exp(w)"],
        "loss": "loss",
    },
    "loss is the gradient of another param": {
        "params": [
            {"name": "a", "shape": [1], "value": [0.1]},
            {"name": "b", "shape": [1], "value": [0.2]},
            {"name": "c", "shape": [1], "value": [0.3]},
        ],
        "nodes": ["loss = exp(a + b * c)"],
        "loss": "loss",
    },
    "loss is a view of a gradient": {
        "params": [{"name": "w", "shape": [1, 1], "value": 0.4}],
        "nodes": ["h = exp(w)", "loss = reshape(h, [1])"],
        "loss": "loss",
    },
    "a value named out": {
        "params": [{"name": "w", "shape": [2], "value": [0.3, -0.2]}],
        "nodes": ["out = tanh(w)", "loss = sum(out * out)"],
        "loss": "loss",
    },
    "loss and an output share memory": {
        "params": [{"name": "p", "shape": [1, 1], "value": 0.3}],
        "nodes": ["v = tanh(p)", "loss = transpose(v)"],
        "loss": "loss",
        "outputs": ["v"],
    },
    "loss is a param": {
        "params": [{"name": "p", "shape": [1], "value": [0.3]}],
        "nodes": ["loss = stop_gradient(p)"],
        "loss": "loss",
    },
    "vjp of a keepdims max that is an output": {
        "inputs": [{"name": "x6", "shape": [2, 1], "value": [[0.5], [-0.3]]}],
        "params": [
            {"name": "p1", "shape": [2, 3], "value": 0.1},
            {"name": "p2", "shape": [2, 3], "value": 0.2},
            {"name": "p3", "shape": [2, 1], "value": 0.3},
            {"name": "p4", "shape": [2], "value": [0.4, -0.1]},
        ],
        "nodes": [
            "v5 = p4 @ p3",
            {"name": "v7", "op": "max", "inputs": ["x6"], "attrs": {"keepdims": True}},
            "loss = v5 - v7",
        ],
        "loss": "loss",
        "outputs": ["v7"],
        "emit": ["forward", "value_and_grad", "vjp"],
    },
}

# A comparison result (a mask) named in wrt: the compiler may refuse it
# (BpcError), but if it differentiates, every use must count.
MAY_REJECT: dict[str, dict[str, Any]] = {
    "mask in wrt used twice": {
        "params": [{"name": "p", "shape": [], "value": 0.5}],
        "nodes": ["m = p >= p", "loss = m - m + p"],
        "loss": "loss",
        "wrt": ["m", "p"],
    },
    "mask in wrt under pow": {
        "params": [{"name": "p", "shape": [1, 1], "value": 1.0}],
        "nodes": ["m = p == p", "loss = pow(m, m) + p"],
        "loss": "loss",
        "wrt": ["m", "p"],
    },
}


@pytest.mark.parametrize("spec", list(REGRESSIONS.values()), ids=list(REGRESSIONS))
def test_regressions(spec: dict[str, Any]) -> None:
    outcome = check_spec(spec)
    assert outcome.status != "rejected", outcome.rejection
    assert not outcome.failures, report(spec, outcome)


@pytest.mark.parametrize("spec", list(MAY_REJECT.values()), ids=list(MAY_REJECT))
def test_regressions_that_may_be_rejected(spec: dict[str, Any]) -> None:
    outcome = check_spec(spec)
    assert not outcome.failures, report(spec, outcome)


# ------------------------------------------------------------------ the generator's reach


def test_generator_is_driven_by_the_registry_and_reaches_every_op() -> None:
    # Statically: every public op with a derivative has a builder, bar the
    # (commented) exclusions in netgen.EXCLUDED.
    assert generated_ops() == differentiable_public_ops() - set(EXCLUDED)
    # And in practice: a few hundred networks use every one of them.
    used: set[str] = set()
    for i in range(300):
        used |= ops_in_spec(network_from_seed(i).spec)
    assert generated_ops() <= used, sorted(generated_ops() - used)


FEATURES = {
    "shape:()",
    "shape:(1,)",
    "shape:(1, 1)",
    "shape:(3,)",
    "shape:(2, 3)",
    "shape:(1, 3)",
    "shape:(2, 1)",
    "integer values",
    "filled with 0 or 1",
    "op-node form",
    "expression form",
    "same value on both sides",
    "literal operand",
    "chain of +",
    "keepdims",
    "axis tuple",
    "where with comparison",
    "default wrt",
    "wrt param",
    "wrt input",
    "wrt intermediate",
    "wrt loss",
    "outputs",
}


def test_generator_reaches_every_feature() -> None:
    seen: Counter[str] = Counter()
    for i in range(300):
        seen.update(features(network_from_seed(i).spec))
    assert FEATURES <= set(seen), sorted(FEATURES - set(seen))


def test_generated_networks_mostly_compile_and_are_checked_by_differences() -> None:
    statuses: Counter[str] = Counter()
    checked = skipped = 0
    for i in range(40):
        o = check_spec(network_from_seed(f"batch:{i}").spec, only_levels=["none"])
        statuses[o.status] += 1
        checked += o.fd_checked
        skipped += o.fd_skipped
    # Rejections (BpcError, e.g. no gradient reaches a wrt name) are fine,
    # but most networks must compile.
    assert statuses["rejected"] <= 12, statuses
    # Kinks and ties skip some elements; most are compared with differences.
    assert checked > 100 and skipped < 0.25 * (checked + skipped), (checked, skipped)


# ------------------------------------------------------------------ the check can fail


def test_finite_differences_skip_kinks_but_not_smooth_ties() -> None:
    relu = finite_differences(lambda x: float(np.maximum(x, 0.0).sum()), np.array([0.0, 0.5, -0.5]), 1.0)
    assert relu.skipped == 1 and np.isnan(relu.numeric[0])
    np.testing.assert_allclose(relu.numeric[1:], [1.0, 0.0], atol=1e-8)
    # max(p, p) = p: a tie of identical operands is smooth, and checked.
    tie = finite_differences(lambda x: float(np.maximum(x, x).sum()), np.array([0.0, 0.3]), 1.0)
    assert tie.skipped == 0
    np.testing.assert_allclose(tie.numeric, [1.0, 1.0], atol=1e-8)
    # A flipped comparison (a jump) is not smooth either.
    step = finite_differences(
        lambda x: float(np.where(x > 0, 1.0, 0.0).sum() + x.sum()), np.array([0.0]), 1.0
    )
    assert step.skipped == 1
    # Near (within the step), but not at, a kink is skipped too.
    near = finite_differences(lambda x: float(np.abs(x).sum()), np.array([0.5 * FD_STEP]), 1.0)
    assert near.skipped == 1


def test_finite_differences_of_a_transposed_value() -> None:
    # An intermediate such as x.T arrives in Fortran order: perturbing a
    # reshaped copy instead of the array itself would give zeros.
    x0 = np.arange(6.0).reshape(2, 3).T
    r = finite_differences(lambda x: float(np.sum(x * x)), x0, 1.0)
    np.testing.assert_allclose(r.numeric, 2.0 * x0, rtol=1e-6)


def test_kinks_inside_the_network_are_not_compared_with_differences() -> None:
    # relu(x) - relu(-x) = x is smooth, but AD takes relu'(0) = 0 at x = 0:
    # the element at the kink is skipped; the other one is checked.
    kinked = {
        "params": [{"name": "x", "shape": [2], "value": [0.0, 0.5]}],
        "nodes": ["loss = sum(relu(x) - relu(-x))"],
        "loss": "loss",
    }
    o = check_spec(kinked, only_levels=["none"])
    assert "rule_mismatch" not in o.kinds and (o.fd_checked, o.fd_skipped) == (1, 1), report(kinked, o)
    # max(p) + min(p) with all elements tied: each partial difference is 1,
    # but no gradient exists there (a shared subgradient gives 2/3).
    tied = {
        "params": [{"name": "p", "shape": [3], "value": [1.0, 1.0, 1.0]}],
        "nodes": ["loss = max(p) + min(p)"],
        "loss": "loss",
    }
    o = check_spec(tied, only_levels=["none"])
    assert "rule_mismatch" not in o.kinds and o.fd_skipped == 3, report(tied, o)


SMOOTH = {
    "params": [{"name": "w", "shape": [3], "value": [0.5, -1.5, 2.0]}],
    "inputs": [{"name": "x", "shape": [], "value": 0.7}],
    "nodes": ["h = tanh(w * x)", "loss = sum(h * h)"],
    "loss": "loss",
    "wrt": ["w", "x", "h"],
}


class _Tampered:
    """A generated module whose value_and_grad is altered by ``tamper``."""

    def __init__(self, inner: types.ModuleType, tamper: Any):
        self.inner, self.tamper = inner, tamper

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def value_and_grad(self, **arrays: Any) -> Any:
        return self.tamper(self.inner, arrays)


def _wrong_value(m: Any, a: dict[str, Any]) -> Any:
    loss, g = m.value_and_grad(**a)
    return loss, {**g, "w": g["w"] + 0.5}


def _int_grad(m: Any, a: dict[str, Any]) -> Any:
    loss, g = m.value_and_grad(**a)
    return loss, {**g, "w": np.round(g["w"]).astype(np.int64)}


def _python_float(m: Any, a: dict[str, Any]) -> Any:
    loss, g = m.value_and_grad(**a)
    return loss, {**g, "x": float(g["x"])}


def _bool_grad(m: Any, a: dict[str, Any]) -> Any:
    loss, g = m.value_and_grad(**a)
    return loss, {**g, "h": g["h"] > 0}


def _wrong_shape(m: Any, a: dict[str, Any]) -> Any:
    loss, g = m.value_and_grad(**a)
    return loss, {**g, "x": np.reshape(g["x"], (1,))}


def _raises(m: Any, a: dict[str, Any]) -> Any:
    raise TypeError("boom")


def _warns(m: Any, a: dict[str, Any]) -> Any:
    loss, g = m.value_and_grad(**a)
    return loss, {**g, "w": g["w"] + np.log(np.zeros(3)) * 0.0}


def _mutates(m: Any, a: dict[str, Any]) -> Any:
    out = m.value_and_grad(**a)
    a["w"] += 1.0
    return out


def _missing(m: Any, a: dict[str, Any]) -> Any:
    loss, g = m.value_and_grad(**a)
    return loss, {k: v for k, v in g.items() if k != "h"}


@pytest.mark.parametrize(
    "tamper, kinds",
    [
        (_wrong_value, {"interp_mismatch", "fd_mismatch"}),
        (_int_grad, {"grad_type"}),
        (_python_float, {"grad_type"}),
        (_bool_grad, {"grad_type"}),
        (_wrong_shape, {"grad_type"}),
        (_raises, {"run_error"}),
        (_warns, {"numpy_warning"}),
        (_mutates, {"mutated_input"}),
        (_missing, {"grad_type"}),
    ],
)
def test_the_check_catches_tampered_modules(tamper: Any, kinds: set[str]) -> None:
    clean = check_spec(SMOOTH)
    assert clean.status == "ok", report(SMOOTH, clean)
    outcome = check_spec(SMOOTH, wrap_module=lambda m: _Tampered(m, tamper))
    assert kinds <= outcome.kinds, report(SMOOTH, outcome)


def test_shrink_keeps_the_failure_and_drops_the_rest() -> None:
    spec = {
        "params": [
            {"name": "a", "shape": [3], "value": [1.0, 2.0, 3.0]},
            {"name": "b", "shape": [], "value": 0.5},
        ],
        "nodes": ["u = sin(a) * b", "v = exp(b)", "loss = sum(u) + v + sum(a)"],
        "loss": "loss",
    }

    def has_sin(s: dict[str, Any]) -> bool:  # stands in for "still fails"
        return "sin" in ops_in_spec(s) and "loss" == s["loss"]

    small = shrink(spec, has_sin)
    assert "sin" in ops_in_spec(small) and len(str(small)) < len(str(spec))
    assert all("exp" not in str(n) for n in small["nodes"])
