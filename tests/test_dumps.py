"""IR dumps: every example, every stage, every format; JSON loads back exactly."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from cli.main import app
from compiler import printing
from compiler.pipeline import STAGES, compile_file

from .conftest import EXAMPLES, ROOT

runner = CliRunner()
IDS = [p.stem for p in EXAMPLES]


@pytest.mark.parametrize("spec", EXAMPLES, ids=IDS)
@pytest.mark.parametrize("stage", STAGES)
def test_json_dump_round_trip_gives_identical_code(spec, stage, tmp_path):
    c = compile_file(spec.relative_to(ROOT))
    dump = tmp_path / "g.json"
    dump.write_text(printing.dump(c.stage(stage), "json", stage))
    again = compile_file(dump)
    assert again.source == c.source
    # and the dump of the reloaded graph is the same dump
    g, st = printing.from_json(json.loads(dump.read_text()))
    assert st == stage and printing.dump(g, "json", stage) == dump.read_text()


@pytest.mark.parametrize("spec", EXAMPLES, ids=IDS)
@pytest.mark.parametrize("stage", STAGES)
def test_text_and_dot_dumps(spec, stage):
    c = compile_file(spec.relative_to(ROOT))
    g = c.stage(stage)
    text = printing.dump(g, "text")
    assert text.startswith("{ lambda ") and text.rstrip().endswith("}")
    for n in g.nx.nodes:
        if g.op(n) not in ("input", "param", "const"):
            assert f"    {n}:" in text
    assert ("-- backward --" in text) == (stage != "forward")
    dot = printing.dump(g, "dot")
    assert dot.count("->") == g.nx.number_of_edges()
    assert "peripheries=2" in dot  # the loss is marked


def test_text_dump_is_stable():
    a = printing.dump(compile_file("examples/relu_deep.json").joint, "text")
    b = printing.dump(compile_file("examples/relu_deep.json").joint, "text")
    assert a == b


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz 'dot' not installed")
@pytest.mark.parametrize("spec", EXAMPLES, ids=IDS)
def test_svg_and_png(spec, tmp_path):
    r = runner.invoke(app, ["ir", str(spec.relative_to(ROOT)), "--stage", "joint", "--format", "svg"])
    assert r.exit_code == 0 and "<svg" in r.output
    png = tmp_path / "g.png"
    r = runner.invoke(app, ["ir", str(spec.relative_to(ROOT)), "--format", "png", "-o", str(png)])
    assert r.exit_code == 0 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_graphviz_is_a_one_line_error(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    r = runner.invoke(app, ["ir", "examples/neuron.json", "--format", "svg"])
    assert r.exit_code == 2
    assert r.output.strip().count("\n") == 0 and "apt-get install graphviz" in r.output


def test_spec_stage():
    r = runner.invoke(app, ["ir", "examples/mlp_2_10_10_1.json", "--stage", "spec"])
    assert r.exit_code == 0 and json.loads(r.output)["mlp"]["sizes"] == [2, 10, 10, 1]


def test_broken_ir_dump_is_a_clear_error(tmp_path):
    c = compile_file("examples/neuron.json")
    data = printing.to_json(c.forward)
    data["edges"] = data["edges"][:-1]  # drop an operand
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(data))
    r = runner.invoke(app, ["compile", str(p), "-o", str(tmp_path / "o")])
    assert r.exit_code == 2 and "IR dump fails verification" in r.output


def test_self_checking_module_runs_as_a_script():
    import subprocess
    import sys

    r = subprocess.run([sys.executable, str(ROOT / "generated" / "sigmoid_2_3_1.py")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "gradients match finite differences" in r.stdout
    assert "X1  intermediate value" in r.stdout


def test_self_check_catches_a_wrong_gradient():
    from runtime.loader import load_source

    src = (ROOT / "generated" / "neuron.py").read_text()
    assert "g_W1 = " in src
    broken = src.replace("g_W1 = ", "g_W1 = 1.01 * ", 1)
    m = load_source(broken, "broken_neuron")
    assert m._self_check() is False
    assert load_source(src, "neuron_ok")._self_check() is True
