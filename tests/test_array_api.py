"""The array-API target (``--target array-api``) against the NumPy target.

Every module runs under ``array-api-strict``, which refuses anything outside
the standard (methods like ``.sum``, NumPy's bool/int promotion, unnamed
axes in an index, Python numbers where arrays are due), and under NumPy; its
loss, outputs and gradients must equal the NumPy target's to 1e-12 relative
(float64). Ops one by one (each op's samples), every example, every entry
point, float32, and random networks from ``tests/netgen.py``. PyTorch CPU
tensors too, when torch is installed (never a dependency).
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest

array_api_compat = pytest.importorskip("array_api_compat", reason="the array-api extra is not installed")
xps = pytest.importorskip("array_api_strict", reason="array-api-strict (the array-api extra) is not installed")

import bpc  # noqa: E402
from bpc.compiler.codegen import generate, templates  # noqa: E402
from bpc.compiler.errors import BpcError, OutputError  # noqa: E402
from bpc.compiler.ops import all_ops  # noqa: E402
from bpc.compiler.passes import optimize  # noqa: E402
from bpc.compiler.program import forward_entry  # noqa: E402
from bpc.compiler.targets import NUMPY, get_target  # noqa: E402
from bpc.compiler.codegen import CodegenOptions  # noqa: E402
from bpc.compiler.verify import verify_module  # noqa: E402
from bpc.runtime.loader import load_source  # noqa: E402
from bpc.runtime.namespaces import from_numpy, to_numpy  # noqa: E402

from .conftest import EXAMPLES, ROOT  # noqa: E402
from .helpers import joint, one_op_graph, sample_arrays  # noqa: E402

ARRAY_API = get_target("array-api")
TOL = 1e-12
ALL_FUNCTIONS = ("forward", "value_and_grad", "jvp", "vjp", "hvp", "jacobian", "hessian")


def flat(z) -> list:
    """The arrays of a result, in a fixed order (dicts by key)."""
    if isinstance(z, (tuple, list)):
        return [q for i in z for q in flat(i)]
    if isinstance(z, dict):
        return [q for k in sorted(z) for q in flat(z[k])]
    return [z]


def assert_same(got, want, tol: float = TOL, what: str = "") -> None:
    """``got`` (any namespace) equals ``want`` (NumPy) in structure, shape,
    float kind and values to ``tol`` relative (NaN where NaN)."""
    g, w = flat(got), flat(want)
    assert len(g) == len(w), what
    for a, b in zip(g, w):
        a, b = to_numpy(a), np.asarray(b)
        assert a.shape == b.shape, (what, a.shape, b.shape)
        assert (a.dtype.kind == "b") == (b.dtype.kind == "b"), (what, a.dtype, b.dtype)
        a, b = a.astype(np.float64), b.astype(np.float64)
        with np.errstate(invalid="ignore"):
            ok = (a == b) | (np.abs(a - b) <= tol * np.maximum(1.0, np.abs(b))) | (np.isnan(a) & np.isnan(b))
        assert ok.all(), (what, np.max(np.abs(a - b)))


def namespace_of(*arrays):
    return array_api_compat.array_namespace(*arrays)


def run_both(spec, functions=None, dtype="float64", passes=None, xp=xps, arrays=None):
    """(NumPy-target results, array-API results on ``xp``) per entry point."""
    kw = {"dtype": dtype, "passes": passes}
    if functions:
        kw["functions"] = functions
    ref = bpc.compile(spec, **kw)
    aa = bpc.compile(spec, target="array-api", **kw)
    assert aa.ENTRY_POINTS == ref.ENTRY_POINTS and aa.WRT == ref.WRT and aa.PARAMS == ref.PARAMS
    assert aa.INPUTS == ref.INPUTS and aa.OUTPUTS == ref.OUTPUTS and aa.LOSS == ref.LOSS
    arrays = arrays or {**ref.init_params(), **ref.example_inputs()}
    assert_same({**aa.init_params(), **aa.example_inputs()}, arrays, 0.0, "init_params/example_inputs")
    converted = from_numpy(arrays, xp)
    want_ns = namespace_of(*converted.values())
    rng = np.random.default_rng(0)
    ftype = np.float32 if dtype == "float32" else np.float64
    out = []
    for fn in ref.ENTRY_POINTS:
        extra = {}
        if fn in ("jvp", "hvp"):
            if not set(ref.WRT) <= set(arrays):
                continue  # a direction for an intermediate value: not from here
            t = {w: rng.standard_normal(np.shape(arrays[w])).astype(ftype) for w in ref.WRT}
        if fn == "jvp":
            extra = {"tangents": t}
        elif fn == "hvp":
            extra = {"vectors": t}
        elif fn == "vjp":
            outs = ref.forward(**arrays)[1]
            extra = {"cotangents": {o: rng.standard_normal(np.shape(outs[o])).astype(ftype) for o in ref.OUTPUTS}}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the NumPy reference may warn (log of 0 in a random net)
            r = getattr(ref, fn)(**arrays, **extra)
        a = getattr(aa, fn)(**converted, **{k: from_numpy(v, xp) for k, v in extra.items()})
        for v in flat(a):
            if not isinstance(v, (int, float)):
                assert namespace_of(v) is want_ns, (fn, type(v))
        out.append((fn, r, a))
    return out


# ------------------------------------------------------------------ examples


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
@pytest.mark.parametrize("ns", ["array_api_strict", "numpy"])
def test_examples_equal_numpy_target(path, ns):
    xp = xps if ns == "array_api_strict" else np
    for fn, want, got in run_both(path, xp=xp):
        assert_same(got, want, TOL, f"{path.stem} {fn}")
        for v in flat(got):
            assert to_numpy(v).dtype == np.float64 or to_numpy(v).dtype.kind == "b"


@pytest.mark.parametrize("path", [ROOT / "examples/two_hidden.json", ROOT / "examples/perceptron.json"], ids=["two_hidden", "perceptron"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_every_entry_point(path, dtype):
    spec = json.loads(path.read_text())
    if not spec.get("outputs") and "mlp" not in spec:
        pytest.skip("no outputs")
    fns = ALL_FUNCTIONS if spec.get("outputs") else ("forward", "value_and_grad", "jvp", "hvp", "hessian")
    for fn, want, got in run_both(spec, functions=fns, dtype=dtype):
        assert_same(got, want, TOL if dtype == "float64" else 1e-6, f"{path.stem} {fn}")
        if fn not in ("jacobian", "hessian"):  # the NumPy target's are float64 (np.eye)
            for v in flat(got):
                assert to_numpy(v).dtype == np.dtype(dtype), (fn, to_numpy(v).dtype)


def test_float32_module_computes_in_float32():
    (_, want, got), = [r for r in run_both(ROOT / "examples/mnist_mlp.json", dtype="float32") if r[0] == "value_and_grad"]
    assert_same(got, want, 1e-6)
    assert all(to_numpy(v).dtype == np.float32 for v in flat(got))


# ------------------------------------------------------------------ ops one by one

OPS = all_ops()
CASES = [
    pytest.param(op, i, id=f"{name}-{i}")
    for name, op in sorted(OPS.items())
    if op.category != "source"
    for i in range(len(op.samples))
]


def test_every_op_has_a_spelling():
    assert set(ARRAY_API.emit_table) == set(NUMPY.emit_table)
    for name, op in OPS.items():
        if (op.category != "source" or name == "const") and op.decompose is None:
            assert name in ARRAY_API.emit_table, name


@pytest.mark.parametrize("op,i", CASES)
def test_op_under_strict(op, i):
    sample = op.samples[i]
    rng = np.random.default_rng(1000 + i)
    arrays = sample_arrays(op, sample, rng)
    p = one_op_graph(op, sample)
    g = p.graph
    feeds = {f"a{k}": a for k, a in enumerate(arrays)}
    feeds["r"] = rng.standard_normal(g.shape("out"))
    g.set_result("outputs.out", "out")
    j = joint(p.but(entries=(forward_entry(g),)))
    o = j.but(graph=optimize(j.graph))
    ref = load_source(generate(o), f"op_{op.name}")
    aa = load_source(generate(o, CodegenOptions(target=ARRAY_API)), f"op_{op.name}_xp")
    for fn in ("forward", "value_and_grad"):
        assert_same(getattr(aa, fn)(**from_numpy(feeds, xps)), getattr(ref, fn)(**feeds), TOL, f"{op.name} {fn}")


# ------------------------------------------------------------------ random networks


def _netgen():
    from . import netgen

    return netgen


@pytest.mark.parametrize("block", range(3))
def test_random_networks_under_strict(block):
    """netgen's random networks (all passes, and none): the array-API module
    under array-api-strict equals the NumPy module."""
    netgen = _netgen()
    checked = 0
    for seed in range(block * 10, block * 10 + 10):
        spec = netgen.network_from_seed(f"array-api-{seed}").spec
        for passes in (None, set()):
            try:
                bpc.compile(spec, passes=passes)
            except BpcError:
                continue  # a network the compiler refuses (both targets alike)
            for fn, want, got in run_both(spec, passes=passes):
                assert_same(got, want, TOL, f"seed {seed} {fn}: {json.dumps(spec)}")
            checked += 1
    assert checked >= 14


# ------------------------------------------------------------------ torch (optional)


def test_torch_tensors():
    torch = pytest.importorskip("torch", reason="torch is not installed (optional)")
    for path in EXAMPLES:
        for fn, want, got in run_both(path, xp=torch):
            assert_same(got, want, 1e-12, f"{path.stem} {fn} on torch")
            assert all(isinstance(v, torch.Tensor) for v in flat(got))


# ------------------------------------------------------------------ the module itself


def _entry_functions(source: str):
    tree = ast.parse(source)
    return [f for f in tree.body if isinstance(f, ast.FunctionDef) and f.name in ALL_FUNCTIONS]


def test_entry_points_use_only_xp():
    """No NumPy in the compute functions (init_params, example_inputs and the
    self-check draw with NumPy: the standard has no random numbers)."""
    for path in EXAMPLES:
        source = bpc.compile(path, target="array-api").source
        for fn in _entry_functions(source):
            for node in ast.walk(fn):
                if isinstance(node, ast.Name):
                    assert node.id != "np", f"{path.stem}.{fn.name} uses np"
                if isinstance(node, ast.Attribute) and node.attr not in ("T", "shape", "dtype"):
                    assert isinstance(node.value, ast.Name) and node.value.id in ("xp", "array_api_compat"), (
                        f"{path.stem}.{fn.name}: .{node.attr}"
                    )


def test_numpy_target_unchanged_by_the_seam():
    """The default target is still NumPy, importing only numpy (golden files
    are compared byte for byte in test_golden)."""
    source = bpc.compile(ROOT / "examples/mnist_mlp.json").source
    assert "array_api_compat" not in source and not re.search(r"\bxp\.", source)
    assert bpc.compile(ROOT / "examples/mnist_mlp.json", target="numpy").source == source


def test_whitelist_is_per_target():
    source = bpc.compile(ROOT / "examples/neuron.json", target="array-api").source
    verify_module(source, templates("f64"), ARRAY_API)
    with pytest.raises(OutputError):
        verify_module(source, templates("f64"), NUMPY)  # imports array_api_compat
    with pytest.raises(OutputError):
        verify_module(source.replace("xp.exp(", "xp.fft.fft("), templates("f64"), ARRAY_API)
    with pytest.raises(OutputError):
        verify_module(source.replace("import array_api_compat\n", "import os\n"), templates("f64"), ARRAY_API)
    numpy_source = bpc.compile(ROOT / "examples/neuron.json").source
    with pytest.raises(OutputError):
        verify_module(numpy_source, templates("f64"), ARRAY_API)  # lacks the import


@pytest.mark.parametrize("name", ["xp", "dev", "array_api_compat"])
def test_reserved_names(name):
    spec = {
        "inputs": [{"name": "x", "shape": [3]}],
        "params": [{"name": "w", "shape": [3]}],
        "nodes": [f"{name} = x * w", f"loss = sum({name})"],
        "loss": "loss",
        "wrt": ["w"],
    }
    bpc.compile(spec)  # fine for NumPy
    with pytest.raises(BpcError, match="reserved by the array-api target"):
        bpc.compile(spec, target="array-api")


def test_self_check_runs(tmp_path):
    p = bpc.compile(ROOT / "examples/sigmoid_2_3_1.json", target="array-api")
    path = p.write(tmp_path)
    r = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "gradients match finite differences" in r.stdout


def test_mixed_namespaces_refused():
    p = bpc.compile(ROOT / "examples/neuron.json", target="array-api")
    arrays = {**p.init_params(), **p.example_inputs()}
    mixed = {k: (xps.asarray(v) if i == 0 else v) for i, (k, v) in enumerate(arrays.items())}
    with pytest.raises(TypeError):
        p.value_and_grad(**mixed)


def test_deterministic():
    path = ROOT / "examples/mnist_mlp.json"
    assert bpc.compile(path, target="array-api").source == bpc.compile(path, target="array-api").source


# ------------------------------------------------------------------ the CLI


def _cli(*args):
    from typer.testing import CliRunner

    from bpc.cli.main import app

    return CliRunner().invoke(app, [str(a) for a in args])


def test_cli_compile_target(tmp_path):
    r = _cli("compile", ROOT / "examples/neuron.json", "--target", "array-api", "-o", tmp_path)
    assert r.exit_code == 0, r.output
    source = (tmp_path / "neuron.py").read_text()
    assert "import array_api_compat" in source and "xp = array_api_compat.array_namespace(" in source
    r = _cli("compile", ROOT / "examples/neuron.json", "--target", "cupy", "-o", tmp_path / "x")
    assert r.exit_code == 2 and not (tmp_path / "x").exists()


def test_cli_check_namespace():
    r = _cli("check", ROOT / "examples/mnist_mlp.json", "--namespace", "array_api_strict", "--samples", "8", "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    rows = [t["name"] for t in report["tensors"]]
    assert "loss (on array_api_strict)" in rows and "w1 (on array_api_strict)" in rows
    assert report["passed"]
    r = _cli("check", ROOT / "examples/neuron.json", "--namespace", "jax")
    assert r.exit_code == 2


def test_cli_check_torch_namespace_optional():
    try:
        import torch  # noqa: F401
    except ImportError:
        r = _cli("check", ROOT / "examples/neuron.json", "--namespace", "torch")
        assert r.exit_code == 2
        assert "namespace 'torch' is not installed" in r.output
        return
    r = _cli("check", ROOT / "examples/neuron.json", "--namespace", "torch")
    assert r.exit_code == 0, r.output


def test_check_namespace_needs_the_array_api_target():
    with pytest.raises(BpcError, match="--target array-api"):
        from bpc.runtime.check import check_compiled

        check_compiled(bpc.compile(ROOT / "examples/neuron.json").compiled, namespace="numpy")
