"""bpc benchmark: generated value_and_grad vs hand-written NumPy (and peers).

    python benchmarks/run.py            # full run, prints a markdown table
    python benchmarks/run.py --quick    # a fast smoke run

All times are medians over interleaved rounds; ratios are taken within each
round (generated / hand-written, measured back to back) and then the median
is reported, so machine noise affects both sides alike. Peers (PyTorch, JAX,
HIPS autograd) are timed only when installed.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bpc.compiler.pipeline import compile_text  # noqa: E402
from bpc.runtime.loader import load_source  # noqa: E402

import handwritten  # noqa: E402


@dataclass
class Workload:
    key: str
    title: str
    sizes: list[int]
    act: str
    loss: str  # mse | sse | ce
    layout: str
    batch: int

    @property
    def depth(self) -> int:
        return len(self.sizes) - 1

    def spec(self) -> dict:
        loss = {"mse": "mse", "sse": "sse", "ce": "softmax_cross_entropy"}[self.loss]
        return {
            "name": self.key,
            "mlp": {
                "sizes": self.sizes,
                "activation": self.act,
                "output_activation": "linear",
                "loss": loss,
                "layout": self.layout,
                "batch": self.batch,
            },
        }


WORKLOADS = [
    Workload("W1", "2-10-10-1 sigmoid, MSE, batch 1 (row)", [2, 10, 10, 1], "sigmoid", "mse", "row", 1),
    Workload("W2", "1-6-6-6-6-6-1 ReLU, least squares, batch 1 (column)", [1, 6, 6, 6, 6, 6, 1], "relu", "sse", "column", 1),
    Workload("W3", "784-256-256-10 ReLU, softmax CE, batch 64", [784, 256, 256, 10], "relu", "ce", "row", 64),
    Workload("W4", "1024-1024-1024-1024-1 tanh, MSE, batch 256", [1024, 1024, 1024, 1024, 1], "tanh", "mse", "row", 256),
    Workload("W5", "64 layers of width 32, tanh, MSE, batch 16", [32] * 64 + [1], "tanh", "mse", "row", 16),
]


def data(w: Workload, module, seed: int = 0):
    rng = np.random.default_rng(seed)
    params = module.init_params(seed)
    if w.layout == "row":
        x = rng.standard_normal((w.batch, w.sizes[0]))
        y = rng.integers(0, w.sizes[-1], w.batch).astype(np.float64) if w.loss == "ce" else rng.standard_normal((w.batch, w.sizes[-1]))
    else:
        x = rng.standard_normal((w.sizes[0], w.batch))
        y = rng.standard_normal((w.sizes[-1], w.batch))
    return params, x, y


def per_call(fn, budget: float) -> float:
    """Seconds per call of ``fn``, calling it for about ``budget`` seconds."""
    fn()
    n, t = 1, 0.0
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        t = time.perf_counter() - t0
        if t >= budget:
            return t / n
        n = max(n * 2, int(n * budget / max(t, 1e-9)))


def peak_bytes(fn) -> int:
    fn()
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    fn()
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return peak


def interleaved(fns: dict, rounds: int, budget: float) -> dict[str, list[float]]:
    times = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            times[k].append(per_call(fn, budget))
    return times


def peers(w: Workload, params, x, y):
    """Optional peers, each a zero-argument callable computing loss and grads."""
    out, notes = {}, []
    try:
        import torch

        torch.set_num_threads(max(1, torch.get_num_threads()))
        tp = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
        tx, ty = torch.tensor(x), torch.tensor(y)

        def torch_loss(p):
            h = tx
            for k in range(1, w.depth + 1):
                z = h @ p[f"w{k}"] + p[f"b{k}"] if w.layout == "row" else p[f"w{k}"] @ h + p[f"b{k}"]
                h = z if k == w.depth else {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}[w.act](z)
            if w.loss == "ce":
                return torch.nn.functional.cross_entropy(h, ty.long())
            r = h - ty
            return (r * r).mean() if w.loss == "mse" else (r * r).sum()

        def torch_eager():
            for t in tp.values():
                t.grad = None
            torch_loss(tp).backward()

        out["PyTorch eager"] = torch_eager
        try:
            from torch.func import grad_and_value

            gv = grad_and_value(torch_loss)
            plain = {k: v.detach() for k, v in tp.items()}
            out["torch.func"] = lambda: gv(plain)
        except Exception as e:  # pragma: no cover
            notes.append(f"torch.func unavailable: {e}")
    except ImportError:
        notes.append("PyTorch not installed: skipped")
    try:
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_enable_x64", True)
        jp = {k: jnp.asarray(v) for k, v in params.items()}
        jx, jy = jnp.asarray(x), jnp.asarray(y)

        def jax_loss(p):
            h = jx
            for k in range(1, w.depth + 1):
                z = h @ p[f"w{k}"] + p[f"b{k}"] if w.layout == "row" else p[f"w{k}"] @ h + p[f"b{k}"]
                h = z if k == w.depth else {"sigmoid": jax.nn.sigmoid, "tanh": jnp.tanh, "relu": jax.nn.relu}[w.act](z)
            if w.loss == "ce":
                logp = jax.nn.log_softmax(h, axis=1)
                return -jnp.mean(logp[jnp.arange(h.shape[0]), jy.astype(int)])
            r = h - jy
            return jnp.mean(r * r) if w.loss == "mse" else jnp.sum(r * r)

        f = jax.jit(jax.value_and_grad(jax_loss))
        out["JAX jit"] = lambda: jax.block_until_ready(f(jp))
    except ImportError:
        notes.append("JAX not installed: skipped")
    try:
        import autograd
        import autograd.numpy as anp

        def ag_loss(p):
            h = x
            for k in range(1, w.depth + 1):
                z = anp.dot(h, p[f"w{k}"]) + p[f"b{k}"] if w.layout == "row" else anp.dot(p[f"w{k}"], h) + p[f"b{k}"]
                if k < w.depth:
                    z = {"sigmoid": lambda v: 1 / (1 + anp.exp(-v)), "tanh": anp.tanh, "relu": lambda v: anp.maximum(v, 0.0)}[w.act](z)
                h = z
            if w.loss == "ce":
                m = anp.max(h, axis=1, keepdims=True)
                logp = h - m - anp.log(anp.sum(anp.exp(h - m), axis=1, keepdims=True))
                return -anp.mean(anp.sum(logp * np.eye(w.sizes[-1])[y.astype(int)], axis=1))
            r = h - y
            return anp.mean(r * r) if w.loss == "mse" else anp.sum(r * r)

        agf = autograd.value_and_grad(ag_loss)
        out["HIPS autograd"] = lambda: agf(params)
    except ImportError:
        notes.append("HIPS autograd not installed: skipped")
    return out, notes


def run_workload(w: Workload, rounds: int, budget: float, with_peers: bool = False):
    c = compile_text(json.dumps(w.spec()), name=f"benchmarks:{w.key}")
    m = load_source(c.source, w.key)
    params, x, y = data(w, m)
    # The baseline must compute the same thing: check before timing.
    gl, gg = m.value_and_grad(**params, x=x, y=y)
    hl, hg = handwritten.mlp_value_and_grad(params, x, y, w.depth, w.act, w.loss, w.layout)
    assert np.allclose(gl, hl, rtol=1e-10), (w.key, gl, hl)
    for k in hg:
        assert np.allclose(gg[k], hg[k], rtol=1e-8, atol=1e-12), (w.key, k)
    # Second order: the same spec with hvp and jvp (forward over reverse).
    spec2 = {**w.spec(), "emit": ["value_and_grad", "jvp", "hvp"]}
    m2 = load_source(compile_text(json.dumps(spec2), name=f"benchmarks:{w.key}").source, w.key + "_2")
    vecs = {k: np.random.default_rng(2).standard_normal(np.shape(v)) for k, v in params.items()}
    fns = {
        "bpc": lambda: m.value_and_grad(**params, x=x, y=y),
        "bpc hvp": lambda: m2.hvp(**params, x=x, y=y, vectors=vecs),
        "bpc jvp": lambda: m2.jvp(**params, x=x, y=y, tangents=vecs),
        "hand": lambda: handwritten.mlp_value_and_grad(params, x, y, w.depth, w.act, w.loss, w.layout),
        "bpc fwd": lambda: m.forward(**params, x=x, y=y),
        "hand fwd": lambda: handwritten.mlp_forward(params, x, y, w.depth, w.act, w.loss, w.layout),
    }
    # NumPy's own 1024x1024 matmul, timed in the same rounds: the throughput reference.
    rng = np.random.default_rng(1)
    ma, mb = rng.standard_normal((1024, 1024)), rng.standard_normal((1024, 1024))
    fns["matmul 1024"] = lambda: ma @ mb
    notes = []
    t = interleaved(fns, rounds, budget)
    if with_peers:
        # Peers run in a second phase: their thread pools (OpenMP spinning,
        # XLA) must not slow the bpc-vs-hand-written comparison above.
        extra, notes = peers(w, params, x, y)
        pt = interleaved({"bpc": fns["bpc"], **extra}, rounds, budget)
        t.update({k: v for k, v in pt.items() if k != "bpc"})
        t["bpc (peer phase)"] = pt["bpc"]
    med = {k: statistics.median(v) for k, v in t.items()}
    ratio = statistics.median(a / b for a, b in zip(t["bpc"], t["hand"]))
    fb = statistics.median(a / b for a, b in zip(t["bpc"], t["bpc fwd"]))
    hvp_ratio = statistics.median(a / b for a, b in zip(t["bpc hvp"], t["bpc"]))
    jvp_ratio = statistics.median(a / b for a, b in zip(t["bpc jvp"], t["bpc fwd"]))
    mem_bpc = peak_bytes(fns["bpc"])
    mem_hand = peak_bytes(fns["hand"])
    # The work actually done: every layer's product forward and its weight
    # gradient backward; the input gradient of every layer but the first (the
    # gradient with respect to the data is never computed).
    flops = 0
    for k in range(w.depth):
        products = 3 if k > 0 else 2
        flops += products * 2 * w.batch * w.sizes[k] * w.sizes[k + 1]
    ref = 2 * 1024**3
    share = statistics.median((flops / a) / (ref / m) for a, m in zip(t["bpc"], t["matmul 1024"]))
    return {
        "key": w.key,
        "title": w.title,
        "times": med,
        "ratio": ratio,
        "fwd_bwd_over_fwd": fb,
        "hvp_over_grad": hvp_ratio,
        "jvp_over_fwd": jvp_ratio,
        "mem_bpc": mem_bpc,
        "mem_hand": mem_hand,
        "mem_ratio": mem_bpc / max(mem_hand, 1),
        "gflops": flops / med["bpc"] / 1e9,
        "matmul_share": share,
        "notes": notes,
    }


def matmul_gflops(budget: float) -> float:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((1024, 1024)), rng.standard_normal((1024, 1024))
    t = per_call(lambda: a @ b, budget)
    return 2 * 1024**3 / t / 1e9


def compile_times(layers: list[int]) -> list[tuple[int, float, int]]:
    out = []
    for L in layers:
        spec = {"name": f"mlp{L}", "mlp": {"sizes": [8] * (L + 1), "activation": "tanh", "loss": "mse"}}
        t0 = time.perf_counter()
        c = compile_text(json.dumps(spec))
        out.append((L, time.perf_counter() - t0, len(c.optimized.graph)))
    return out


def fmt_t(s: float) -> str:
    return f"{s * 1e6:.1f} µs" if s < 1e-3 else f"{s * 1e3:.2f} ms"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="bpc benchmarks")
    ap.add_argument("--quick", action="store_true", help="few short rounds (smoke test)")
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--budget", type=float, default=0.2, help="seconds per timing")
    ap.add_argument("--only", nargs="*", help="workload keys, e.g. W1 W3")
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--compile-layers", type=int, nargs="*", default=[10, 100, 1000])
    a = ap.parse_args(argv)
    if a.quick:
        a.rounds, a.budget, a.compile_layers = 1, 0.01, [10]
    try:
        from threadpoolctl import threadpool_info

        blas = ", ".join(f"{i.get('internal_api')} {i.get('version')} ({i.get('num_threads')} threads)" for i in threadpool_info())
    except ImportError:
        blas = "unknown (threadpoolctl not installed)"
    print(f"# bpc benchmark\n\nPython {platform.python_version()}, NumPy {np.__version__}, {platform.machine()}, "
          f"BLAS: {blas}. Rounds: {a.rounds}, ~{a.budget}s per timing.\n")
    ref = matmul_gflops(a.budget)
    print(f"NumPy 1024x1024 float64 matmul: {ref:.1f} GFLOP/s (at start; the '% of matmul' column "
          "uses the same product timed in each round)\n")
    chosen = [w for w in WORKLOADS if not a.only or w.key in a.only]
    results = [run_workload(w, a.rounds, a.budget) for w in chosen]
    compiled = compile_times(a.compile_layers)  # before any peer is imported
    if not a.no_peers:
        for w, r in zip(chosen, results):
            peer = run_workload(w, a.rounds, a.budget, with_peers=True)
            r["times"].update({k: v for k, v in peer["times"].items() if k not in r["times"]})
            r["notes"] = peer["notes"]
    print("| workload | bpc | hand-written | bpc / hand | (fwd+bwd)/fwd | peak mem bpc | peak mem hand | mem ratio | GFLOP/s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        t = r["times"]
        print(f"| {r['key']}: {r['title']} | {fmt_t(t['bpc'])} | {fmt_t(t['hand'])} | {r['ratio']:.2f} | "
              f"{r['fwd_bwd_over_fwd']:.2f} | {r['mem_bpc'] / 1e6:.2f} MB | {r['mem_hand'] / 1e6:.2f} MB | "
              f"{r['mem_ratio']:.2f} | {r['gflops']:.1f} ({r['matmul_share']:.0%} of matmul) |")
    own = {"bpc", "hand", "bpc fwd", "hand fwd", "bpc (peer phase)", "matmul 1024", "bpc hvp", "bpc jvp"}
    peer_keys = sorted({k for r in results for k in r["times"]} - own)
    if peer_keys:
        print("\nPeers, timed in a second phase together with bpc (column 'bpc'):\n")
        print("| workload | bpc | " + " | ".join(peer_keys) + " |")
        print("| --- | --- | " + " | ".join("---" for _ in peer_keys) + " |")
        for r in results:
            cells = [fmt_t(r["times"][k]) if k in r["times"] else "-" for k in peer_keys]
            print(f"| {r['key']} | {fmt_t(r['times']['bpc (peer phase)'])} | " + " | ".join(cells) + " |")
    print("\nDerivative modes (same rounds): hvp is forward over reverse, one tangent pass through")
    print("value_and_grad; the cheap-gradient bound says a small constant (about 2-4) times a gradient.\n")
    print("| workload | value_and_grad | hvp | hvp / grad | jvp | jvp / forward |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in results:
        t = r["times"]
        print(f"| {r['key']} | {fmt_t(t['bpc'])} | {fmt_t(t['bpc hvp'])} | {r['hvp_over_grad']:.2f} | "
              f"{fmt_t(t['bpc jvp'])} | {r['jvp_over_fwd']:.2f} |")
    notes = sorted({n for r in results for n in r["notes"]})
    for n in notes:
        print(f"\n- {n}")
    print("\n| MLP layers (width 8, tanh) | compile time | optimized IR nodes |")
    print("| --- | --- | --- |")
    for L, s, n in compiled:
        print(f"| {L} | {s:.2f} s | {n} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
