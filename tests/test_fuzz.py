"""Fuzzing: corrupted specs give a BpcError (never another exception), and
arbitrary text never crashes the parser.

Profiles (tests/conftest.py): the default runs a few hundred examples in CI;
``pytest tests/test_fuzz.py --hypothesis-profile=long`` runs 10,000 per test.
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bpc.compiler.errors import BpcError
from bpc.compiler.pipeline import compile_text
from bpc.runtime.loader import load_source

from .conftest import EXAMPLES

# At least 300 examples per fuzz test in the default (CI) profile; the long
# profile's 10,000 when it is selected.
FUZZ = settings(
    max_examples=max(settings().max_examples, 300),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

BASES = [json.loads(p.read_text()) for p in EXAMPLES if p.stem != "mnist_mlp"]
BASES.append(
    {
        "inputs": [{"name": "x", "shape": ["batch", 3]}, {"name": "lab", "shape": ["batch"], "classes": 2}],
        "params": [{"name": "W", "shape": [3, 2]}, {"name": "b", "shape": [2]}],
        "nodes": [
            "z = x @ W + b",
            {"name": "h", "op": "leaky_relu", "inputs": ["z"], "attrs": {"alpha": 0.1}},
            "s = concat(h[:, 0:1], h[:, 1:2], axis=1)",
            "loss = softmax_cross_entropy(s, lab, reduction='sum') + mean(where(z > 0, z, 0.0))",
        ],
        "loss": "loss",
        "dims": {"batch": 4},
    }
)

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(
        [
            "x; import os",
            "__import__('os').system('echo pwned')",
            "y = x.__class__",
            "lambda: 0",
            "y = [i for i in x]",
            "y = f(**x)",
            'a"""b',
            "a\nb",
            "ｘ",
            "x" * 200,
            "y = ((((((((((x))))))))))" ,
            "y = " + "(" * 300 + "x" + ")" * 300,
            "y = x" + " + x" * 500,
            "sigmoid",
            "batch",
            "loss",
            "W",
            "matmul",
        ]
    ),
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


def _get(obj, path):
    for p in path:
        obj = obj[p]
    return obj


@st.composite
def corrupted(draw):
    spec = json.loads(json.dumps(draw(st.sampled_from(BASES))))
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(spec) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = _get(spec, path[:-1])
        key = path[-1]
        kind = draw(st.sampled_from(["replace", "delete", "insert", "numbers", "shape", "dup"]))
        if kind == "replace":
            parent[key] = draw(JSON)
        elif kind == "delete":
            del parent[key]
        elif kind == "insert" and isinstance(parent, dict):
            parent[draw(st.text(max_size=8))] = draw(JSON)
        elif kind == "numbers" and isinstance(parent[key], (int, float)) and not isinstance(parent[key], bool):
            parent[key] = draw(st.sampled_from([0, -1, 10**9, 1e308, -0.0, 2**63, 0.5]))
        elif kind == "shape" and isinstance(parent, dict) and "shape" in parent:
            parent["shape"] = draw(st.lists(st.one_of(st.integers(-2, 10**6), st.text(max_size=5)), max_size=10))
        elif kind == "dup" and isinstance(parent, list) and parent:
            parent.append(parent[0])
    return spec


def _compile_or_bpc_error(text: str) -> None:
    try:
        c = compile_text(text)
    except BpcError as e:
        assert "\n" not in str(e)
        return
    # It compiled: the module must import and define its contract.
    m = load_source(c.source, "fuzzed")
    assert callable(m.value_and_grad) and isinstance(m.WRT, tuple)
    dims = getattr(m, "DIMS", {})
    sizes = [math.prod(dims.get(d, d) if isinstance(d, str) else d for d in shape) for shape in {**m.PARAMS, **m.INPUTS}.values()]
    if sum(sizes) < 10**6:
        arrays = {**m.init_params(), **m.example_inputs()}
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            loss, grads = m.value_and_grad(**arrays)
        assert set(grads) == set(m.WRT)


@FUZZ
@given(corrupted())
def test_corrupted_specs_give_bpc_errors(spec):
    _compile_or_bpc_error(json.dumps(spec, allow_nan=True))


@FUZZ
@given(st.text(max_size=300))
def test_arbitrary_text_gives_bpc_errors(text):
    _compile_or_bpc_error(text)


@FUZZ
@given(st.lists(st.sampled_from(list("xyW()+-*/@.T[]:0123456789, =_abscdefgilmnoqrtuwz'\"\\\n!<>")), max_size=60))
def test_random_expressions_give_bpc_errors(chars):
    expr = "".join(chars)
    spec = {"params": [{"name": "x", "shape": [2, 2]}, {"name": "W", "shape": [2, 2]}], "nodes": [expr, "loss = sum(x)"], "loss": "loss"}
    _compile_or_bpc_error(json.dumps(spec))


def test_limits_are_reported_not_hit():
    deep = {"params": [{"name": "x", "shape": [2]}], "nodes": ["loss = " + "sum(" * 120 + "x" + ")" * 120], "loss": "loss"}
    try:
        compile_text(json.dumps(deep))
        raise AssertionError("expected an error")
    except BpcError as e:
        assert "nested" in str(e)
    deep_json = "[" * 100000 + "]" * 100000
    try:
        compile_text(deep_json)
        raise AssertionError("expected an error")
    except BpcError as e:
        assert "nested too deeply" in str(e) or "a spec must be a JSON object" in str(e)
    huge = {"params": [{"name": "x", "shape": [100000, 100000]}], "nodes": ["loss = sum(x)"], "loss": "loss"}
    try:
        compile_text(json.dumps(huge))
        raise AssertionError("expected an error")
    except BpcError as e:
        assert "elements" in str(e)
    outer = {"params": [{"name": "a", "shape": [100000, 1]}, {"name": "b", "shape": [1, 100000]}], "nodes": ["loss = sum(a * b)"], "loss": "loss"}
    try:
        compile_text(json.dumps(outer))
        raise AssertionError("expected an error")
    except BpcError as e:
        assert "10,000,000,000 elements" in str(e)
    assert math.isfinite(1.0)
