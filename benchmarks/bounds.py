"""What a gradient step of W3-W5 is made of: products, activations, the rest.

    python benchmarks/bounds.py [--only W5] [--budget 0.5] [--rounds 3]

For each workload, in the same rounds:

- ``step``: one ``value_and_grad(..., out=grads)`` call of the ``-O3`` module;
- ``products``: the step's matrix products alone (forward ``h @ W`` per layer,
  backward ``g @ W.T`` for every layer but the first and ``h.T @ g`` for every
  layer), each with ``dot``'s ``out=`` on arrays of the step's shapes;
- ``activation``: the step's hidden activations alone (``np.tanh`` /
  ``np.maximum(z, 0)`` with ``out=``), one per hidden layer;
- ``rest``: ``step - products - activation`` (bias adds and gradients, the
  activation's derivative, the loss, Python).

Also the per-element cost of float64 and float32 ``tanh`` and ``exp`` on a
large array, and whether NumPy's SIMD loops for float64 ``tanh`` can run here
(NumPy vectorizes float64 ``tanh`` only with AVX512_SKX). A bound a rewrite of
bpc's code cannot move shows up as a large ``products`` or ``activation``
share: both are single NumPy calls already.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from workloads import BY_KEY, per_call  # noqa: E402


def _module(w):
    from bpc.compiler.options import CompileOptions
    from bpc.compiler.pipeline import compile_text
    from bpc.runtime.check import example_arrays
    from bpc.runtime.loader import load_source

    c = compile_text(json.dumps(w.spec()), options=CompileOptions(opt_level=3))
    m = load_source(c.source, f"bounds_{w.key}")
    arrays = example_arrays(m, seed=0)
    args = [arrays[k] for k in list(m.PARAMS) + list(m.INPUTS)]
    out = {k: np.empty(np.shape(arrays[k])) for k in m.WRT}
    return lambda: m.value_and_grad(*args, out=out)


def _pieces(w):
    """The products and the activations of one step, as two functions."""
    rng = np.random.default_rng(0)
    b, sizes = w.batch, w.sizes
    hs = [rng.standard_normal((b, n)) for n in sizes]
    ws = [rng.standard_normal((sizes[k], sizes[k + 1])) * 0.05 for k in range(w.depth)]
    zs = [np.empty((b, sizes[k + 1])) for k in range(w.depth)]
    gw = [np.empty_like(x) for x in ws]
    gh = [np.empty((b, sizes[k])) for k in range(w.depth)]

    def products():
        for k in range(w.depth):
            hs[k].dot(ws[k], out=zs[k])
        for k in range(w.depth - 1, -1, -1):
            hs[k].T.dot(zs[k], out=gw[k])
            if k > 0:
                zs[k].dot(ws[k].T, out=gh[k])

    hidden = zs[:-1]
    if w.act == "tanh":

        def activation():
            for z in hidden:
                np.tanh(z, out=z)

    else:
        zero = np.zeros(())

        def activation():
            for z in hidden:
                np.maximum(z, zero, out=z)

    return products, activation


def per_element() -> dict[str, float]:
    """Nanoseconds per element of tanh and exp on 2**18 elements."""
    x64 = np.random.default_rng(0).standard_normal(1 << 18)
    out = {}
    for dt in (np.float64, np.float32):
        x = x64.astype(dt)
        o = np.empty_like(x)
        for fn in ("tanh", "exp"):
            f = getattr(np, fn)
            t = per_call(lambda f=f, x=x, o=o: f(x, out=o), 0.2)
            out[f"{fn} {np.dtype(dt).name}"] = t / x.size * 1e9
    return out


def measure(keys, budget: float, rounds: int) -> dict:
    results = {}
    for key in keys:
        w = BY_KEY[key]
        step = _module(w)
        products, activation = _pieces(w)
        rows = {"step": [], "products": [], "activation": []}
        for _ in range(rounds):
            rows["step"].append(per_call(step, budget))
            rows["products"].append(per_call(products, budget))
            rows["activation"].append(per_call(activation, budget))
        med = {k: statistics.median(v) for k, v in rows.items()}
        med["rest"] = med["step"] - med["products"] - med["activation"]
        results[key] = med
    return results


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="*", default=["W3", "W4", "W5"], choices=["W3", "W4", "W5"])
    ap.add_argument("--budget", type=float, default=0.5, help="seconds per timing (default 0.5)")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args(argv)
    feats = np._core._multiarray_umath.__cpu_features__
    print(f"NumPy {np.__version__}; AVX2 {feats.get('AVX2')}, AVX512_SKX {feats.get('AVX512_SKX')}")
    for name, ns in per_element().items():
        print(f"  {name}: {ns:.2f} ns per element")
    print()
    print("| workload | step (-O3 out=) | products | activation | rest |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for key, m in measure(a.only, a.budget, a.rounds).items():
        s = m["step"]
        cells = [f"{m[k] * 1e6:,.0f} µs ({m[k] / s:.0%})" for k in ("products", "activation", "rest")]
        print(f"| {key} | {s * 1e6:,.0f} µs | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
