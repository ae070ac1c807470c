"""The Python front door and the one import name."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import bpc
from bpc.compiler.errors import BpcError

from .conftest import ROOT

SPEC = {"params": [{"name": "w", "shape": [3]}], "inputs": [{"name": "x", "shape": [3]}], "nodes": ["l = sum(tanh(w * x))"], "loss": "l"}


@pytest.mark.parametrize(
    "given",
    [SPEC, json.dumps(SPEC), "examples/neuron.json", ROOT / "examples" / "neuron.json"],
    ids=["dict", "json-text", "path-str", "path"],
)
def test_compile_takes_dicts_text_and_paths(given):
    m = bpc.compile(given)
    loss, grads = m.value_and_grad(**m.init_params(), **m.example_inputs())
    assert set(grads) == set(m.WRT)
    assert "def value_and_grad" in m.source
    assert m.ir("forward").graph.loss == m.LOSS


def test_compile_takes_ir_dumps(tmp_path):
    m = bpc.compile("examples/sigmoid_2_3_1.json")
    p = tmp_path / "dump.json"
    p.write_text(m.ir_text("forward", "json"))
    assert bpc.compile(p).source == m.source


def test_options_reach_codegen_and_write_is_atomic(tmp_path):
    m = bpc.compile(SPEC, dtype="float32", comments=False, name="net")
    assert m.options.dtype == "float32" and "# Backward" not in m.source
    path = m.write(tmp_path / "out")
    assert path == tmp_path / "out" / "net.py"
    loaded = bpc.load(path)
    _, grads = loaded.value_and_grad(**loaded.init_params(), **loaded.example_inputs())
    assert grads["w"].dtype == np.float32


def test_check_reports_per_tensor_errors():
    r = bpc.check("examples/mlp_2_10_10_1.json")
    assert r.passed and r.tensors and all(t.max_rel < 1e-6 for t in r.tensors)
    assert bpc.check(bpc.compile(SPEC, dtype="float32")).passed


def test_bad_input_is_a_bpc_error():
    with pytest.raises(BpcError):
        bpc.compile({"params": [{"name": "w\n", "shape": [3]}], "nodes": ["l = sum(w)"], "loss": "l"})
    with pytest.raises(BpcError):
        bpc.compile(SPEC, dtype="float16")
    with pytest.raises(BpcError):
        bpc.compile(42)


def test_python_m_bpc_is_the_cli():
    r = subprocess.run([sys.executable, "-m", "bpc", "check", "examples/neuron.json"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0 and "PASSED" in r.stdout


@pytest.mark.slow
def test_the_wheel_installs_one_top_level_name(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    (wheel,) = tmp_path.glob("bpc-*.whl")
    tops = {n.split("/")[0] for n in zipfile.ZipFile(wheel).namelist()}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"bpc"}
    names = zipfile.ZipFile(wheel).namelist()
    assert "bpc/compiler/schema/spec.schema.json" in names and "bpc/api.py" in names


def test_functions_option_chooses_the_entry_points():
    m = bpc.compile("examples/neuron.json", functions=("forward",))
    assert hasattr(m.module, "forward") and not hasattr(m.module, "value_and_grad")
    assert "_self_check" not in m.source  # it needs both functions
    full = bpc.compile("examples/neuron.json")
    args = {**m.init_params(), **m.example_inputs()}
    assert np.array_equal(m.forward(**args), full.forward(**args))
    with pytest.raises(bpc.BpcError, match="unknown function 'hessian_of_nothing'"):
        bpc.compile("examples/neuron.json", functions=("hessian_of_nothing",))
