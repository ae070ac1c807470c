"""NumPy spellings in expressions: each compiles to the canonical op and its
gradients pass bpc check (central differences, and the complex step where
every op is analytic); what is not supported is refused naming what is."""

from __future__ import annotations

import json

import pytest

from bpc.compiler.errors import BpcError
from bpc.compiler.pipeline import compile_text
from bpc.runtime.check import check_compiled

BASE = {
    "inputs": [{"name": "x", "shape": [2, 3]}, {"name": "y", "shape": [2, 3]}, {"name": "z", "shape": [2, 3, 4]}],
    "params": [{"name": "w", "shape": [3, 2]}],
}

# spelling -> (expression, an op it must lower to, wrt)
SPELLINGS = {
    "positional attribute": ("l = sum(leaky_relu(x, 0.1))", "leaky_relu", ["x"]),
    "positional axis": ("l = sum(sum(x, 0) * 2.0)", "sum", ["x"]),
    "tuple attribute": ("l = sum(transpose(z, (0, 2, 1)) * 2.0)", "transpose", ["z"]),
    "reshape by tuple": ("l = sum(reshape(x, (3, 2)) @ w.T)", "reshape", ["x", "w"]),
    "list of operands": ("l = sum(concat([x, y], axis=1) ** 2)", "concat", ["x", "y"]),
    "stack a list": ("l = sum(stack([x, y]) * 3.0)", "stack", ["x", "y"]),
    "tensor exponent": ("l = sum(np.exp(x) ** (y * y + 1.0))", "pow", ["x", "y"]),
    "np.dot": ("l = np.sum(np.dot(x, w))", "matmul", ["x", "w"]),
    "np.maximum and np.exp": ("l = np.sum(np.maximum(x, y) * np.exp(x))", "maximum", ["x", "y"]),
    "np.where and np.square": ("l = sum(np.where(x > 0, np.square(x), y))", "where", ["x", "y"]),
    "np.clip and .clip": ("l = (x.clip(0.0) + np.clip(y, -1, 1)).sum()", "minimum", ["x", "y"]),
    "np.concatenate": ("l = np.sum(np.concatenate([x, y], 1) ** 2)", "concat", ["x", "y"]),
    "np.abs, np.tanh, np.mean": ("l = np.mean(np.abs(np.tanh(x)))", "abs", ["x"]),
    "np.amax": ("l = np.amax(x * 2.0)", "max", ["x"]),
    "np.power": ("l = np.sum(np.power(np.exp(x), y))", "pow", ["x", "y"]),
    "np arithmetic": ("l = np.sum(np.divide(np.multiply(x, y), np.add(np.exp(x), 1.0)))", "div", ["x", "y"]),
    "numpy prefix": ("l = numpy.sum(numpy.subtract(x, numpy.negative(y)))", "neg", ["x", "y"]),
    "methods": ("l = x.dot(w).sum(axis=0).mean() + (x.T).max() + x.min(1).sum()", "matmul", ["x", "w"]),
    "reshape and transpose methods": ("l = x.reshape(3, 2).transpose().sum() + z.transpose(2, 0, 1).mean()", "transpose", ["x", "z"]),
}


@pytest.mark.parametrize("case", list(SPELLINGS), ids=list(SPELLINGS))
def test_numpy_spelling_compiles_and_its_gradients_check(case):
    expr, op, wrt = SPELLINGS[case]
    c = compile_text(json.dumps({**BASE, "nodes": [expr], "loss": "l", "wrt": wrt}))
    assert any(c.forward.graph.op(n) == op for n in c.forward.graph.nx.nodes), op
    result = check_compiled(c, seed=1)
    assert result.passed, [t.as_dict() for t in result.tensors if not t.passed]


REFUSED = {
    "unknown np function": ("l = np.foo(x)", "np.foo is not supported (NumPy functions bpc knows: np.abs"),
    "unknown method": ("l = x.bar()", "method .bar() is not supported (methods: .T, .clip()"),
    "list elsewhere": ("l = sum([x, y])", "only allowed as the first argument of concat or stack"),
    "np constant": ("l = np.pi * sum(x)", "np.pi is not a value bpc knows"),
    "too many positionals": ("l = sum(leaky_relu(x, 0.1, 2))", "leaky_relu takes 1 operand(s) and the attributes alpha"),
    "clip bound not a number": ("l = sum(x.clip(y))", "clip bounds must be numbers or None"),
    "attribute access": ("l = sum(x.shape)", "only .T"),
    "np.dot of N-D arrays": ("l = sum(np.dot(z, w))", "np.dot of arrays with more than 2 dimensions is not matmul"),
}


@pytest.mark.parametrize("case", list(REFUSED), ids=list(REFUSED))
def test_unsupported_spelling_is_one_line_naming_the_accepted_form(case):
    expr, message = REFUSED[case]
    with pytest.raises(BpcError) as e:
        compile_text(json.dumps({**BASE, "nodes": [expr], "loss": "l", "wrt": ["x"]}))
    assert message in e.value.message and "\n" not in str(e.value)
    assert e.value.location.startswith("nodes[0], column ")
