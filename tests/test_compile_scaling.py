"""The compile-scaling benchmark runs (tiny sizes; no timing is asserted).

Timings belong to ``benchmarks/compile_scaling.py`` itself; this keeps it from
rotting: its specs compile, its children report, its table prints.
"""

from __future__ import annotations

import importlib.util
import json
import sys

from .conftest import ROOT


def _module():
    spec = importlib.util.spec_from_file_location("bpc_bench_scaling", ROOT / "benchmarks" / "compile_scaling.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def test_compile_scaling_harness_prints_its_table(capsys):
    bench = _module()
    argv = ["--layers", "10,50", "--concat", "2x20", "--explain", "8", "--timeout", "300", "--json"]
    assert bench.main(argv) == 0
    out = capsys.readouterr().out
    assert "| mlp10 | 10 |" in out and "| mlp50 | 50 |" in out and "| concat2x20 | - |" in out
    assert "max/min per layer over 2 mlp sizes: time" in out
    assert "`bpc explain --wrt w1` on a 8-layer residual chain:" in out
    rows = json.loads(out.strip().splitlines()[-1])
    assert [r["name"] for r in rows] == ["mlp10", "mlp50", "concat2x20", "explain resid8"]
    for r in rows:
        assert r["seconds"] > 0 and r["cpu"] > 0 and r["peak_kb"] > 0 and r["source_bytes"] > 0


def test_benchmark_specs_are_what_they_say():
    bench = _module()
    assert bench.mlp_spec(3)["mlp"]["sizes"] == [8, 8, 8, 8]
    spec = bench.concat_spec(3, 4)
    assert len(spec["params"]) == 4 and [n["inputs"] for n in spec["nodes"][:3]] == [
        ["p0", "p1", "p2", "p3"],
        ["p1", "p2", "p3", "p0"],
        ["p2", "p3", "p0", "p1"],
    ]
    assert bench.main(["--layers", "5", "--concat", "none", "--timeout", "0.001"]) == 1  # a timeout is a row, not a crash
