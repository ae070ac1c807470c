"""The benchmark harness runs, and its hand-written baselines agree with bpc.

No timing is asserted here (timings belong to benchmarks/run.py, which prints
same-run ratios); this only keeps the harness working and its baselines honest.
"""

from __future__ import annotations

import importlib.util
import sys

import pytest

from .conftest import ROOT


def _run_module():
    spec = importlib.util.spec_from_file_location("bpc_bench_run", ROOT / "benchmarks" / "run.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("key", ["W1", "W2", "W3", "W5"])
def test_handwritten_baseline_matches_generated_code(key):
    run = _run_module()
    w = next(w for w in run.WORKLOADS if w.key == key)
    # run_workload checks loss and every gradient against the baseline first.
    r = run.run_workload(w, rounds=1, budget=0.001, with_peers=False)
    assert r["ratio"] > 0 and r["mem_bpc"] > 0


def test_compile_time_harness():
    run = _run_module()
    (layers, seconds, nodes), = run.compile_times([5])
    assert layers == 5 and seconds > 0 and nodes > 0
