"""Mutation fuzzing of IR dumps: ``bpc compile dump.json`` is a second way in.

Real dumps of every example at every stage (``bpc ir --stage ... --format
json``) are mutated (keys deleted, replaced, inserted, duplicated; types
changed; hostile strings, huge and negative numbers, NaN, wrong operand
positions, dangling edges, duplicate ids and params) and compiled through the
same path as the CLI (``compile_file``). Each must either raise a one-line
``BpcError`` or give a module that is import-safe: it parses, imports nothing
but NumPy, names nothing dangerous outside string literals and comments
(and passes the codegen's own whitelist verifier, when there is one), imports
cleanly, and has a module name that follows the name rule (so the file stays
in ``-o``). Any other exception fails.

Profiles (tests/conftest.py): at least 300 examples by default;
``pytest tests/test_dump_fuzz.py --hypothesis-profile=long`` runs 10,000.
"""

from __future__ import annotations

import ast
import atexit
import copy
import functools
import io
import json
import shutil
import tempfile
import tokenize
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from bpc.compiler import printing
from bpc.compiler.errors import BpcError
from bpc.compiler.names import is_valid_name
from bpc.compiler.pipeline import STAGES, compile_file, compile_text
from bpc.runtime.loader import load_source

from .conftest import EXAMPLES

FUZZ = settings(
    max_examples=max(settings().max_examples, 300),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)

# A spec with what the examples lack: symbolic dims, class labels, attributes.
EXTRA = {
    "name": "extra",
    "inputs": [{"name": "x", "shape": ["batch", 3]}, {"name": "lab", "shape": ["batch"], "classes": 2}],
    "params": [{"name": "W", "shape": [3, 2], "value": [[0.5, -1.0], [0.25, 2.0], [1.0, 0.0]]}, {"name": "b", "shape": [2]}],
    "nodes": [
        "z = x @ W + b",
        {"name": "h", "op": "leaky_relu", "inputs": ["z"], "attrs": {"alpha": 0.1}},
        "s = concat(h[:, 0:1], h[:, 1:2], axis=1)",
        "loss = softmax_cross_entropy(s, lab, reduction='sum') + mean(where(z > 0, z, 0.0))",
    ],
    "outputs": ["h"],
    "loss": "loss",
    "dims": {"batch": 4},
}


@functools.lru_cache(maxsize=1)
def _bases() -> list[tuple[str, str]]:
    """(label, dump text) for every example (and EXTRA) at every stage."""
    compiled = [(p.stem, compile_file(p)) for p in EXAMPLES]
    compiled.append(("extra", compile_text(json.dumps(EXTRA))))
    return [
        (f"{name}:{stage}", json.dumps(printing.to_json(c.stage(stage), stage)))
        for name, c in compiled
        for stage in STAGES
    ]


HOSTILE = [
    "__import__('os').system('x')",
    "z=__import__('os').system('x')",
    "x; import os",
    "../x",
    "/abs/x",
    "a\n",
    "x\n",
    "a\nimport os",
    '"""',
    "\\",
    "ｘ",
    "np",
    "numpy",
    "print",
    "lambda",
    "_bpc_x",
    "__class__",
    "x" * 300,
    "",
    "\ud800",
    "batch",
    "loss",
    "W",
    "x",
    "f64",
    "bool",
    "input",
    "param",
    "const",
    "add",
    "backward",
    "forward",
    "joint",
]
NUMBERS = [0, 1, 2, 7, -1, -(2**63), 2**63, 2**64, 10**30, 10**400, 1e308, -0.0, 0.5, 1e-320, float("nan"), float("inf")]

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from(NUMBERS),
    st.integers(-3, 100),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(HOSTILE),
    st.text(max_size=12),
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(["a", "id", "shape", "pos", "x"]) | st.text(max_size=6), inner, max_size=4)),
    max_leaves=8,
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


def _node_ids(d) -> list[str]:
    nodes = d.get("nodes")
    if not isinstance(nodes, list):
        return []
    return [n["id"] for n in nodes if isinstance(n, dict) and isinstance(n.get("id"), str)]


def _mutate(draw, d) -> None:
    paths = [p for p in _paths(d) if p]
    graph_paths = [p for p in paths if p[0] == "graph"]
    # Half the time aim at the graph-level facts (few, but each one matters).
    pool = graph_paths if graph_paths and draw(st.booleans()) else paths
    if not pool:
        return
    path = draw(st.sampled_from(pool))
    parent, key = _get(d, path[:-1]), path[-1]
    kind = draw(
        st.sampled_from(
            ["replace", "delete", "insert", "dup", "number", "hostile", "type", "rename", "edge", "swap"]
        )
    )
    ids = _node_ids(d)
    if kind == "replace":
        parent[key] = draw(JSON)
    elif kind == "delete":
        del parent[key]
    elif kind == "insert" and isinstance(parent, dict):
        parent[draw(st.sampled_from(HOSTILE) | st.text(max_size=6))] = draw(JSON)
    elif kind == "insert" and isinstance(parent, list):
        parent.insert(draw(st.integers(0, len(parent))), draw(JSON))
    elif kind == "dup" and isinstance(parent, list) and parent:
        parent.append(copy.deepcopy(parent[draw(st.integers(0, len(parent) - 1))]))
    elif kind == "number":
        parent[key] = draw(st.sampled_from(NUMBERS))
    elif kind == "hostile":
        parent[key] = draw(st.sampled_from(HOSTILE))
    elif kind == "type":  # the same value as another type
        v = parent[key]
        parent[key] = draw(st.sampled_from([str(v), [v], {"v": v}, None, True]))
    elif kind == "rename" and ids:  # a node id everywhere it appears, or a name to another node's
        old = draw(st.sampled_from(ids))
        new = draw(st.sampled_from(HOSTILE + ids))
        text = json.dumps(d)
        d.clear()
        d.update(json.loads(text.replace(json.dumps(old), json.dumps(new))))
    elif kind == "edge" and isinstance(d.get("edges"), list) and d["edges"]:
        e = d["edges"][draw(st.integers(0, len(d["edges"]) - 1))]
        if isinstance(e, dict):
            field = draw(st.sampled_from(["pos", "source", "target", "key"]))
            e[field] = draw(st.sampled_from([-1, 0, 1, 2, 5, 10**9, "0", None, "ghost"] + ids))
    elif kind == "swap" and isinstance(parent, list) and len(parent) > 1:
        i, j = draw(st.integers(0, len(parent) - 1)), draw(st.integers(0, len(parent) - 1))
        parent[i], parent[j] = parent[j], parent[i]


def _plausible(draw, d) -> None:
    """A change that keeps the dump well-typed, so that it reaches verification,
    differentiation, the passes and codegen: another op, shape, attribute,
    dtype, phase, operand or role."""
    nodes = [n for n in d.get("nodes", []) if isinstance(n, dict)] if isinstance(d.get("nodes"), list) else []
    ids = _node_ids(d)
    if not nodes or not ids:
        return
    n = draw(st.sampled_from(nodes))
    g = d.get("graph") if isinstance(d.get("graph"), dict) else {}
    kind = draw(st.sampled_from(["op", "shape", "attrs", "dtype", "phase", "rewire", "role", "named"]))
    if kind == "op":
        n["op"] = draw(st.sampled_from(OPS))
    elif kind == "shape":
        n["shape"] = draw(st.lists(st.sampled_from([1, 2, 3, 4, 8, 16, "batch"]), max_size=4))
    elif kind == "attrs":
        n["attrs"] = draw(ATTRS)
    elif kind == "dtype":
        n["dtype"] = draw(st.sampled_from(["f64", "f32", "bool", "i64"]))
    elif kind == "phase":
        n["phase"] = draw(st.sampled_from(["forward", "backward"]))
    elif kind == "named":
        n["named"] = not n.get("named")
    elif kind == "rewire" and isinstance(d.get("edges"), list) and d["edges"]:
        e = draw(st.sampled_from(d["edges"]))
        if isinstance(e, dict):
            e[draw(st.sampled_from(["source", "target"]))] = draw(st.sampled_from(ids))
    elif kind == "role" and g:
        role = draw(st.sampled_from(["loss", "wrt", "outputs", "grads", "params", "inputs"]))
        target = draw(st.sampled_from(ids))
        if role == "loss":
            g["loss"] = target
        elif isinstance(g.get(role), list) and g[role]:
            i = draw(st.integers(0, len(g[role]) - 1))
            if isinstance(g[role][i], list) and g[role][i]:
                g[role][i][-1] = target
            else:
                g[role][i] = target


def _ops() -> list[str]:
    from bpc.compiler.ops.registry import all_ops

    return sorted(all_ops())


OPS = _ops()
ATTRS = st.dictionaries(
    st.sampled_from(["axis", "keepdims", "shape", "axes", "index", "value", "alpha", "exponent", "num_classes", "widths", "reduction", "dtype"]),
    st.one_of(
        st.sampled_from([None, True, False, 0, 1, -1, 2, 0.5, "sum", "mean", "f64", "bool", 10**9]),
        st.lists(st.integers(-2, 4), max_size=3),
        st.lists(st.sampled_from([[0, 1], [None, 2], [0, 0], 1]), max_size=3),
    ),
    max_size=3,
)


@st.composite
def mutated_dumps(draw):
    label, text = draw(st.sampled_from(_bases()))
    d = json.loads(text)
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.booleans()):
            _plausible(draw, d)
        else:
            _mutate(draw, d)
    return label, d


# ------------------------------------------------------------------ checks

# Names that must never be code in a generated module (they may appear in
# string literals and comments: docstrings quote the spec).
FORBIDDEN_NAMES = {
    "__import__", "os", "sys", "system", "subprocess", "eval", "exec", "compile", "open",
    "getattr", "setattr", "delattr", "globals", "locals", "vars", "breakpoint", "exit", "quit",
    "__builtins__", "__class__", "__subclasses__", "__globals__", "importlib", "input",
}


def _verify(source: str) -> None:
    """The codegen's own whitelist verifier, when there is one (it runs inside
    generate too; here it checks the module that came back)."""
    import bpc.compiler.codegen as codegen

    verify = getattr(codegen, "verify_module", None)
    if verify is None:
        try:
            from bpc.compiler.verify import verify_module as verify
        except ImportError:
            return
    templates = getattr(codegen, "TEMPLATES", None)
    verify(source, templates) if templates is not None else verify(source)


def _refused(e: BpcError) -> None:
    """A BpcError is the right answer, unless it is the output backstop firing:
    then hostile text got as far as code generation."""
    assert "\n" not in str(e)
    assert "generated module" not in e.message, e


def check_import_safe(source: str, name: str) -> None:
    """The generated module parses, and is harmless to import."""
    tree = ast.parse(source)
    imports = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert [(type(n).__name__, [(a.name, a.asname) for a in n.names]) for n in imports] == [
        ("Import", [("numpy", "np")])
    ]
    code = []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type in (tokenize.STRING, tokenize.COMMENT):
            continue
        if tok.type == tokenize.NAME:
            assert tok.string not in FORBIDDEN_NAMES, tok
            assert not tok.string.startswith("__") or tok.string == "__name__", tok
        code.append(tok.string)
    text = " ".join(code)
    for h in HOSTILE[:3]:
        assert h not in text
    _verify(source)
    assert is_valid_name(name), name  # the file is <out>/<name>.py
    m = load_source(source, "fuzzed_dump")
    assert callable(m.value_and_grad) and callable(m.forward) and isinstance(m.WRT, tuple)


_TMP = Path(tempfile.mkdtemp(prefix="bpc_dump_fuzz_"))
atexit.register(shutil.rmtree, _TMP, ignore_errors=True)


def compile_dump_or_bpc_error(d) -> None:
    p = _TMP / "dump.json"
    p.write_text(json.dumps(d, allow_nan=True), encoding="utf-8", errors="surrogatepass")
    try:
        c = compile_file(p)
    except BpcError as e:
        _refused(e)
        event(f"refused at {e.location.split('[')[0].split('.')[0] if e.location else None}")
        return
    event("compiled")
    check_import_safe(c.source, c.name)


@FUZZ
@given(mutated_dumps())
def test_mutated_dumps_give_bpc_errors_or_safe_modules(case):
    _label, d = case
    compile_dump_or_bpc_error(d)


@FUZZ
@given(mutated_dumps())
def test_mutated_dumps_through_the_api(case):
    """printing.from_json on Python data (NaN, huge ints that JSON text would refuse)."""
    from bpc.compiler.pipeline import compile_graph

    _label, d = case
    try:
        g, stage = printing.from_json(d)
        c = compile_graph(g, stage)
    except BpcError as e:
        _refused(e)
        return
    check_import_safe(c.source, c.name)


def test_unmutated_dumps_compile_and_are_import_safe():
    for label, text in _bases():
        p = _TMP / "dump.json"
        p.write_text(text)
        c = compile_file(p)
        check_import_safe(c.source, c.name)
