"""bpc benchmark: compile time and peak memory against network size.

    python benchmarks/compile_scaling.py                       # 100 ... 30,000 layers
    python benchmarks/compile_scaling.py --layers 100,1000     # a subset
    python benchmarks/compile_scaling.py --concat 9x4900       # wide concats too
    python benchmarks/compile_scaling.py --explain 1000        # and bpc explain

Each spec (an ``mlp`` of width 8 with tanh and MSE, as in ``benchmarks/run.py``;
``--concat KxN``: K concats of the same N params) is compiled in a fresh
subprocess from a spec file, as ``bpc compile`` does, so every run has its own
peak memory. The child reports the seconds from reading the spec to the
formatted module source (wall clock, and CPU time: steadier on a busy
machine), and its peak resident memory (``VmHWM``) above what it held after
importing bpc (the interpreter, NumPy, networkx and black are not the
compiler's to scale). Compile time and memory should grow linearly: the last
line gives the max/min ratio of the per-layer figures over the ``mlp`` rows
(close to 1 when linear). ``--explain DEPTH`` also runs ``bpc explain`` on a
residual chain of that depth (a named value per branch, so 2**(DEPTH - 1) paths
through the spec's values, each DEPTH to 2 * DEPTH steps: the worst case for an
explanation) and reports its time, memory and output size.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

DEFAULT_LAYERS = [100, 1000, 10_000, 30_000]
DEFAULT_CONCAT = "9x4900"


def mlp_spec(layers: int, width: int = 8) -> dict:
    return {
        "name": f"mlp{layers}",
        "mlp": {"sizes": [width] * (layers + 1), "activation": "tanh", "loss": "mse"},
    }


def residual_spec(depth: int, width: int = 4) -> dict:
    """``a_k = tanh(w_k @ h_{k-1})``, ``h_k = h_{k-1} + a_k``: 2**(depth - 1) paths
    from w1 to the loss through the spec's values (as one statement per block,
    ``bpc explain`` would sum each block's two paths in one step)."""
    return {
        "name": f"resid{depth}",
        "inputs": [{"name": "h0", "shape": [width, 1]}],
        "params": [{"name": f"w{k}", "shape": [width, width]} for k in range(1, depth + 1)],
        "nodes": [s for k in range(1, depth + 1) for s in (f"a{k} = tanh(w{k} @ h{k - 1})", f"h{k} = h{k - 1} + a{k}")]
        + [f"loss = sum(h{depth} * h{depth})"],
        "loss": "loss",
    }


def concat_spec(count: int, width: int) -> dict:
    """``count`` concats of the same ``width`` scalar-ish params, summed."""
    params = [{"name": f"p{i}", "shape": [1]} for i in range(width)]
    names = [p["name"] for p in params]
    nodes: list = []
    for k in range(count):
        # A rotation each: the same operands, different concats (no CSE).
        order = names[k:] + names[:k]
        nodes.append({"name": f"c{k}", "op": "concat", "inputs": order})
    nodes.append("loss = " + " + ".join(f"sum(c{k} * c{k})" for k in range(count)))
    return {"name": f"concat{count}x{width}", "params": params, "nodes": nodes, "loss": "loss"}


# ------------------------------------------------------------------ the child


def _status_kb(key: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _peak_kb() -> int:
    kb = _status_kb("VmHWM")
    if kb is not None:
        return kb
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak  # bytes on macOS


def child(spec_path: str, explain_wrt: str | None = None) -> int:
    """Compile one spec file (or run ``bpc explain`` on it); print one JSON line
    with the measurements."""
    sys.path.insert(0, str(ROOT))
    from bpc.compiler.pipeline import compile_file

    if explain_wrt:
        import contextlib
        import io

        from bpc.cli.main import app
    # Warm up: one compile of a 1-layer net first, so one-time costs (black's
    # grammar tables, pydantic validators, import-time caches) are not counted
    # as the network's.
    from bpc.compiler.pipeline import compile_text

    compile_text(json.dumps({"mlp": {"sizes": [2, 2, 1], "activation": "tanh"}}))
    base_kb = _status_kb("VmRSS") or _peak_kb()
    t0, c0 = time.perf_counter(), time.process_time()
    if explain_wrt:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            app(["explain", spec_path, "--wrt", explain_wrt], standalone_mode=False)
        size, nodes = len(out.getvalue().encode()), 0
    else:
        c = compile_file(spec_path)
        size, nodes = len(c.source.encode()), len(c.optimized.graph)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak_kb = _peak_kb()
    print(json.dumps({
        "seconds": seconds,
        "cpu": cpu,
        "peak_kb": peak_kb,
        "base_kb": base_kb,
        "source_bytes": size,
        "nodes": nodes,
    }))
    return 0


# ------------------------------------------------------------------ the parent


def measure(spec: dict, timeout: float, workdir: Path, explain_wrt: str | None = None) -> dict:
    text = json.dumps(spec)
    path = workdir / f"{spec['name']}.json"
    path.write_text(text)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(path)]
    if explain_wrt:
        cmd += ["--child-explain", explain_wrt]
    row = {"name": spec["name"], "spec_bytes": len(text.encode())}
    t0 = time.perf_counter()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=workdir)
    except subprocess.TimeoutExpired:
        row["error"] = f"timeout (> {timeout:g} s)"
        return row
    row["wall"] = time.perf_counter() - t0
    if r.returncode != 0:
        tail = (r.stderr.strip().splitlines() or ["?"])[-1]
        row["error"] = f"exit {r.returncode}: {tail[:80]}"
        return row
    row.update(json.loads(r.stdout.strip().splitlines()[-1]))
    row["peak_mb"] = max(row["peak_kb"] - row["base_kb"], 0) / 1024
    return row


def _ints(text: str) -> list[int]:
    return [int(x.replace("_", "")) for x in text.split(",") if x.strip()]


def _concat_arg(text: str) -> tuple[int, int] | None:
    if text.lower() in ("", "none", "0"):
        return None
    count, _, width = text.lower().partition("x")
    return int(count), int(width)


def ratio(values: list[float]) -> float:
    values = [v for v in values if v > 0]
    return max(values) / min(values) if values else float("nan")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="bpc compile time and memory against network size")
    ap.add_argument("--layers", type=_ints, default=DEFAULT_LAYERS, help="comma-separated mlp depths")
    ap.add_argument("--width", type=int, default=8, help="mlp layer width")
    ap.add_argument("--concat", type=_concat_arg, default=_concat_arg(DEFAULT_CONCAT),
                    help="KxN: K concats of N operands ('none' to skip)")
    ap.add_argument("--explain", type=int, default=0, metavar="DEPTH",
                    help="also time bpc explain on a residual chain this deep (0: skip)")
    ap.add_argument("--timeout", type=float, default=1200.0, help="seconds per compile")
    ap.add_argument("--json", action="store_true", help="also print the rows as JSON")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--child-explain", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        return child(a.child, a.child_explain)

    rows = []
    with tempfile.TemporaryDirectory(prefix="bpc-scaling-") as tmp:
        for L in a.layers:
            row = measure(mlp_spec(L, a.width), a.timeout, Path(tmp))
            row["layers"] = L
            rows.append(row)
            print(f"  {row['name']}: {row.get('error') or format(row['seconds'], '.2f') + ' s'}", file=sys.stderr)
        if a.concat:
            row = measure(concat_spec(*a.concat), a.timeout, Path(tmp))
            rows.append(row)
            print(f"  {row['name']}: {row.get('error') or format(row['seconds'], '.2f') + ' s'}", file=sys.stderr)
        if a.explain:
            row = measure(residual_spec(a.explain), a.timeout, Path(tmp), explain_wrt="w1")
            row["name"] = f"explain resid{a.explain}"
            rows.append(row)
            print(f"  {row['name']}: {row.get('error') or format(row['seconds'], '.2f') + ' s'}", file=sys.stderr)

    base = next((r["base_kb"] for r in rows if "base_kb" in r), None)
    print(f"# bpc compile scaling (mlp width {a.width}, tanh, MSE; Python {sys.version.split()[0]})\n")
    if base is not None:
        print(f"Peak memory is above the {base / 1024:.0f} MB a child holds after importing bpc and one warm-up compile of a 1-layer net.\n")
    print("| spec | layers | spec bytes | compile s | cpu s | peak MB | ms / layer | cpu ms / layer | KB / layer |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        L = r.get("layers")
        if "error" in r:
            print(f"| {r['name']} | {L or '-'} | {r['spec_bytes']:,} | {r['error']} | - | - | - | - | - |")
            continue
        per_t = f"{r['seconds'] * 1e3 / L:.3f}" if L else "-"
        per_c = f"{r['cpu'] * 1e3 / L:.3f}" if L else "-"
        per_m = f"{r['peak_mb'] * 1024 / L:.2f}" if L else "-"
        print(f"| {r['name']} | {L or '-'} | {r['spec_bytes']:,} | {r['seconds']:.2f} | {r['cpu']:.2f} | "
              f"{r['peak_mb']:.1f} | {per_t} | {per_c} | {per_m} |")
    ok = [r for r in rows if r.get("layers") and "error" not in r]
    if len(ok) >= 2:
        rt = ratio([r["seconds"] / r["layers"] for r in ok])
        rc = ratio([r["cpu"] / r["layers"] for r in ok])
        rm = ratio([r["peak_mb"] / r["layers"] for r in ok])
        print(f"\nmax/min per layer over {len(ok)} mlp sizes: time {rt:.2f}x (cpu {rc:.2f}x), memory {rm:.2f}x")
    for r in rows:
        if r["name"].startswith("explain") and "error" not in r:
            print(f"\n`bpc explain --wrt w1` on a {a.explain}-layer residual chain: "
                  f"{r['source_bytes']:,} bytes of output")
    if a.json:
        print(json.dumps(rows))
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
