"""Fresh-process figures: the first calls of value_and_grad in a new process.

    python benchmarks/fresh.py KIND WORKLOAD DATA.npz [MODULE.py] [--calls 3] [--warm 20]

KIND: ``bpc`` (MODULE.py: a generated module, called positionally),
``bpc-out`` (the same, with ``out=`` caller-owned gradient buffers allocated
before the first call, as a training loop would), ``hand`` (the
hand-written baseline). Prints one JSON line: seconds of the first call, of
the first ``calls`` calls, minor page faults (``ru_minflt``) of each, and,
after ``warm`` more calls, the warm per-call time and faults per call.
Everything (imports, module, data) is loaded before the first timed call.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

import handwritten  # noqa: E402
from workloads import BY_KEY  # noqa: E402


def faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("kind", choices=["bpc", "bpc-out", "hand"])
    ap.add_argument("workload")
    ap.add_argument("data")
    ap.add_argument("module", nargs="?")
    ap.add_argument("--calls", type=int, default=3)
    ap.add_argument("--warm", type=int, default=20)
    a = ap.parse_args(argv)
    w = BY_KEY[a.workload]
    with np.load(a.data) as z:
        arrays = {k: z[k] for k in z.files}
    x, y = arrays.pop("x"), arrays.pop("y")
    if a.kind == "hand":
        if w.key in handwritten.UNROLLED:
            names = [f"{p}{k}" for k in range(1, w.depth + 1) for p in "wb"]
            f, args = handwritten.UNROLLED[w.key], [arrays[k] for k in names] + [x, y]
            call = lambda: f(*args)  # noqa: E731
        else:
            ws, bs = handwritten.lists_of(arrays, w.depth)
            call = lambda: handwritten.mlp_value_and_grad_lists(ws, bs, x, y, w.act, w.loss, w.layout)  # noqa: E731
    else:
        spec = importlib.util.spec_from_file_location("bench_module", a.module)
        m = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(m)
        args = [arrays[k] for k in m.PARAMS] + [{"x": x, "y": y}[k] for k in m.INPUTS]
        if a.kind == "bpc-out":
            out = {k: np.empty(m.PARAMS[k], dtype=x.dtype) for k in m.WRT}
            call = lambda: m.value_and_grad(*args, out=out)  # noqa: E731
        else:
            call = lambda: m.value_and_grad(*args)  # noqa: E731
    result = {}
    f0 = faults()
    t0 = time.perf_counter()
    call()
    result["first_s"] = time.perf_counter() - t0
    result["first_faults"] = faults() - f0
    for _ in range(a.calls - 1):
        call()
    result["firstk_s"] = time.perf_counter() - t0
    result["firstk_faults"] = faults() - f0
    result["calls"] = a.calls
    for _ in range(a.warm):
        call()
    n = max(3, a.warm // 2)
    f0 = faults()
    t0 = time.perf_counter()
    for _ in range(n):
        call()
    result["warm_s"] = (time.perf_counter() - t0) / n
    result["warm_faults"] = (faults() - f0) / n
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
