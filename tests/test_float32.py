"""The float32 target: every array, constant, initializer and gradient is float32,
the module's own self-check passes at float32 tolerances, and the gradients
agree with the float64 module's (itself checked by finite differences)."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
from typer.testing import CliRunner

from bpc.cli.main import app
from bpc.compiler.options import CompileOptions
from bpc.compiler.pipeline import compile_file
from bpc.runtime.check import check_compiled
from bpc.runtime.loader import load_source

from .conftest import EXAMPLES

F32 = CompileOptions(dtype="float32")


@pytest.mark.parametrize("spec", EXAMPLES, ids=lambda p: p.stem)
def test_float32_module_computes_in_float32_and_checks_itself(spec):
    c = compile_file(spec, options=F32)
    assert c.optimized.dtype == "f32"
    m = load_source(c.source, c.name)
    arrays = {**m.init_params(), **m.example_inputs()}
    for k, v in arrays.items():
        assert v.dtype in (np.float32, np.int64), (k, v.dtype)  # int64: class labels
    loss, grads = m.value_and_grad(**arrays)
    assert np.asarray(loss).dtype == np.float32
    for k, g in grads.items():
        assert g.dtype == np.float32, k
        assert k not in arrays or g.shape == np.shape(arrays[k]), k  # (wrt may name hidden values)
    with contextlib.redirect_stdout(io.StringIO()):
        assert m._self_check()


@pytest.mark.parametrize("spec", EXAMPLES, ids=lambda p: p.stem)
def test_float32_gradients_agree_with_the_float64_twin(spec):
    r = check_compiled(compile_file(spec, options=F32), max_elements=32)
    assert r.passed, [t for t in r.tensors if not t.passed]
    assert any(t.name.endswith("(f32)") for t in r.tensors)


def test_float32_check_catches_a_wrong_float32_gradient():
    """The twin comparison is not vacuous: a float32 module whose gradient is off
    by a factor of 1.001 fails it."""
    c = compile_file(EXAMPLES[0], options=F32)
    name = next(iter(load_source(c.source, "m").WRT))
    # scale one gradient in value_and_grad's returned dict (the last mention)
    head, tail = c.source.rsplit(f'"{name}": ', 1)
    bad = head + f'"{name}": np.float32(1.001) * ' + tail
    assert bad != c.source
    c.source = bad
    r = check_compiled(c, max_elements=32)
    assert not r.passed


def test_cli_dtype_float32(tmp_path):
    r = CliRunner().invoke(app, ["compile", "examples/mlp_2_10_10_1.json", "--dtype", "float32", "-o", str(tmp_path)])
    assert r.exit_code == 0, r.output
    text = (tmp_path / "mlp_2_10_10_1.py").read_text()
    code = text.split("def _self_check")[0]  # (the self-check's differences are float64 on purpose)
    assert "np.float32" in code and "np.float64" not in code
    r = CliRunner().invoke(app, ["check", "examples/mlp_2_10_10_1.json", "--dtype", "float32"])
    assert r.exit_code == 0 and "PASSED" in r.output
    r = CliRunner().invoke(app, ["check", "examples/neuron.json", "--dtype", "float16"])
    assert r.exit_code == 2 and r.output.startswith("error: ")
