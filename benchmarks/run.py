"""bpc benchmark: generated value_and_grad against hand-written NumPy and peers.

    python benchmarks/run.py                                   # bpc and hand-written only
    python benchmarks/run.py --peer-python /work/peers/bin/python --runs 3
    python benchmarks/run.py --float32 --peer-python ...       # the same at float32
    python benchmarks/run.py --quick                           # a fast smoke run

Method (issue 16):

- Every cell (bpc, bpc -O3, bpc -O3 out=, the hand-written baseline, each
  peer, a bare 1024x1024 matmul) is timed in every round, one after the other,
  with an idle gap between cells (an idle OpenBLAS or OpenMP pool spins for
  about 0.1 s); the order rotates from round to round. A timing is the warm
  per-call time ("warm heap") over about ``--budget`` seconds after a
  warm-up call.
- Ratios are taken within a round (cell / hand-written, timed seconds apart)
  and reported as the median with the min-max over rounds.
- Peers (JAX jit value_and_grad, PyTorch eager, torch.func grad_and_value,
  HIPS autograd) each run in their own process (``--peer-python``, a separate
  environment: bpc never depends on them), fed the same arrays through an
  .npz file, and are checked against bpc (loss and every gradient) before
  they are timed. Every baseline is checked the same way.
- bpc is called positionally (PARAMS then INPUTS order); W5 is also timed
  with keyword arguments, with interned and with non-interned keys.
- Fresh-process figures: new interpreters that load the module and data,
  then time the first call and the first 3 calls, with minor page faults.
- ``--runs N`` repeats everything and reports the median of the N runs.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from bpc.compiler.options import CompileOptions  # noqa: E402
from bpc.compiler.pipeline import compile_text  # noqa: E402
from bpc.runtime.loader import load_source  # noqa: E402

import handwritten  # noqa: E402
import opcount  # noqa: E402
from workloads import BY_KEY, WORKLOADS, Workload, per_call  # noqa: E402, F401

PEERS = {"jax": "JAX jit", "torch": "torch eager", "torchfunc": "torch.func", "autograd": "autograd"}
BPC_CELLS = ("bpc", "bpc -O3", "bpc -O3 out=")
KW_CELLS = ("bpc kw", "bpc kw (non-interned keys)")


def o3_available() -> bool:
    return "opt_level" in CompileOptions.__dataclass_fields__


def compile_module(w: Workload, dtype: str = "float64", opt_level: int | None = None):
    kw = {"dtype": dtype}
    if opt_level is not None:
        kw["opt_level"] = opt_level
    c = compile_text(json.dumps(w.spec()), name=f"benchmarks:{w.key}", options=CompileOptions(**kw))
    return c.source, load_source(c.source, f"{w.key}_{dtype}_O{opt_level or 0}")


def data(w: Workload, module, seed: int = 0, dtype=np.float64):
    """Parameters (the module's initializers) and inputs, in ``dtype``. W3's
    labels are whole numbers stored in ``dtype``, as bpc accepts them."""
    rng = np.random.default_rng(seed)
    params = {k: np.asarray(v, dtype=dtype) for k, v in module.init_params(seed).items()}
    if w.layout == "row":
        x = rng.standard_normal((w.batch, w.sizes[0]))
        y = rng.integers(0, w.sizes[-1], w.batch).astype(np.float64) if w.loss == "ce" else rng.standard_normal((w.batch, w.sizes[-1]))
    else:
        x = rng.standard_normal((w.sizes[0], w.batch))
        y = rng.standard_normal((w.sizes[-1], w.batch))
    return params, x.astype(dtype), y.astype(dtype)


# --------------------------------------------------------------------- checks

def tolerances(dtype) -> dict:
    """Loss: rtol 1e-10 at float64 (1e-4 at float32); gradients: allclose with
    rtol 1e-8 (1e-3) and atol 1e-10 (1e-4) times the gradient's largest entry."""
    if np.dtype(dtype) == np.float32:
        return {"loss": 1e-4, "rtol": 1e-3, "atol": 1e-4}
    return {"loss": 1e-10, "rtol": 1e-8, "atol": 1e-10}


def check_against(ref_loss, ref_grads, loss, grads, dtype, who: str) -> None:
    tol = tolerances(dtype)
    assert np.allclose(float(loss), float(ref_loss), rtol=tol["loss"], atol=0), f"{who}: loss {loss} != bpc {ref_loss}"
    missing = set(ref_grads) - set(grads)
    assert not missing, f"{who}: no gradient for {sorted(missing)}"
    for k, g in ref_grads.items():
        h = np.asarray(grads[k])
        assert h.size == g.size, f"{who}: d/d{k} has shape {h.shape}, bpc {g.shape}"
        h = h.reshape(g.shape)
        scale = float(np.max(np.abs(g))) or 1.0
        assert np.allclose(h, g, rtol=tol["rtol"], atol=tol["atol"] * scale), (
            f"{who}: d/d{k} differs from bpc by {float(np.max(np.abs(h - g))):.3g} (largest entry {scale:.3g})")


# ---------------------------------------------------------------------- peers

class PeerProcess:
    """A peer worker (benchmarks/peer_worker.py) in its own interpreter."""

    def __init__(self, python: str, peer: str):
        self.peer, self.name = peer, PEERS[peer]
        # what the libraries print (XLA, warnings) lands here
        self.log = open(Path(tempfile.gettempdir()) / f"bpc-bench-{peer}.log", "w")
        self.proc = subprocess.Popen(
            [python, str(HERE / "peer_worker.py"), peer],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True, bufsize=1,
        )
        hello = self._read()
        self.ok = hello.get("ok", False)
        self.info = hello.get("info", {})
        self.error = hello.get("error")
        if not self.ok:
            self.close()

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            return {"ok": False, "error": f"worker exited ({self.proc.poll()})"}
        return json.loads(line)

    def ask(self, **msg) -> dict:
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def setup(self, w: Workload, data_path: str, grads_path: str):
        r = self.ask(cmd="setup", workload=w.to_dict(), data=data_path, grads=grads_path)
        if not r.get("ok"):
            raise RuntimeError(r.get("error"))
        with np.load(grads_path) as z:
            return r["loss"], {k: z[k] for k in z.files}

    def time(self, budget: float) -> float:
        r = self.ask(cmd="time", budget=budget)
        if not r.get("ok"):
            raise RuntimeError(r.get("error"))
        return r["seconds"]

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=10)
            except Exception:
                self.proc.kill()
                self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout, self.log):
            if not f.closed:
                f.close()


def start_peers(python: str | None, only=None) -> tuple[list[PeerProcess], list[str]]:
    if not python:
        return [], ["peers skipped (no --peer-python)"]
    if not Path(python).exists():
        return [], [f"peers skipped: {python} not found"]
    peers, notes = [], []
    for p in PEERS:
        if only and p not in only:
            continue
        proc = PeerProcess(python, p)
        if proc.ok:
            peers.append(proc)
        else:
            notes.append(f"{PEERS[p]} skipped: {proc.error}")
    return peers, notes


# -------------------------------------------------------------------- timing

def time_rounds(cells: dict, rounds: int, budget: float, gap: float) -> dict[str, list[float]]:
    """Per-call seconds of each cell in each round; the cell order rotates."""
    names = list(cells)
    times = {k: [] for k in names}
    for r in range(rounds):
        k0 = r % len(names)
        for name in names[k0:] + names[:k0]:
            times[name].append(cells[name](budget))
            time.sleep(gap)
    return times


def local(fn):
    return lambda budget: per_call(fn, budget)


def non_interned(d: dict) -> dict:
    """The same dict with keys that are equal but not identical strings (as
    keys read from a file are): keyword matching falls back to comparing."""
    return {"".join(list(k)): v for k, v in d.items()}


def prepare(w: Workload, dtype, tmp: Path, peers: list[PeerProcess], notes: list[str]):
    """Compile, check every baseline and peer against bpc, and return the
    timing cells and what the fresh-process children need."""
    dname = np.dtype(dtype).name
    src, m = compile_module(w, dname)
    params, x, y = data(w, m, dtype=dtype)
    inputs = {"x": x, "y": y}
    args = tuple(params[k] for k in m.PARAMS) + tuple(inputs[k] for k in m.INPUTS)
    ref_loss, ref_grads = m.value_and_grad(*args)
    ref_grads = {k: np.array(v) for k, v in ref_grads.items()}
    kl, kg = m.value_and_grad(**params, **inputs)
    check_against(ref_loss, ref_grads, kl, kg, dtype, "bpc (keywords)")
    cells = {"bpc": local(lambda: m.value_and_grad(*args))}
    modules = {"bpc": tmp / f"{w.key}_{dname}_bpc.py"}
    modules["bpc"].write_text(src)
    if o3_available():
        src3, m3 = compile_module(w, dname, opt_level=3)
        modules["bpc -O3"] = tmp / f"{w.key}_{dname}_bpc_O3.py"
        modules["bpc -O3"].write_text(src3)
        l3, g3 = m3.value_and_grad(*args)
        check_against(ref_loss, ref_grads, l3, g3, dtype, "bpc -O3")
        out = {k: np.empty(m3.PARAMS[k], dtype=dtype) for k in m3.WRT}
        lo, go = m3.value_and_grad(*args, out=out)
        check_against(ref_loss, ref_grads, lo, go, dtype, "bpc -O3 out=")
        assert all(go[k] is out[k] for k in out), "bpc -O3 out=: gradients not written into the caller's arrays"
        cells["bpc -O3"] = local(lambda: m3.value_and_grad(*args))
        cells["bpc -O3 out="] = local(lambda: m3.value_and_grad(*args, out=out))
    if w.key in handwritten.UNROLLED:
        f = handwritten.UNROLLED[w.key]
        hl, hg = f(*args)
        cells["hand"] = local(lambda: f(*args))
    else:
        ws, bs = handwritten.lists_of(params, w.depth)
        # on copies: the baseline must not be checked on arrays it updated
        hl, hg = handwritten.mlp_value_and_grad(params, x.copy(), y, w.depth, w.act, w.loss, w.layout)
        cells["hand"] = local(lambda: handwritten.mlp_value_and_grad_lists(ws, bs, x, y, w.act, w.loss, w.layout))
    check_against(ref_loss, ref_grads, hl, hg, dtype, "hand-written")
    # the inputs must have survived every call above unchanged
    for k, v in params.items():
        assert np.array_equal(v, data(w, m, dtype=dtype)[0][k]), f"{k} was modified"
    if w.key == "W5":
        kw = {**params, **inputs}
        loose = non_interned(kw)
        cells["bpc kw"] = local(lambda: m.value_and_grad(**kw))
        cells["bpc kw (non-interned keys)"] = local(lambda: m.value_and_grad(**loose))
    data_path = tmp / f"{w.key}_{dname}.npz"
    np.savez(data_path, **params, x=x, y=y)
    for p in list(peers):
        try:
            pl, pg = p.setup(w, str(data_path), str(tmp / f"{w.key}_{dname}_{p.peer}_grads.npz"))
            check_against(ref_loss, ref_grads, pl, pg, dtype, p.name)
        except (AssertionError, RuntimeError) as e:
            notes.append(f"{w.key}: {p.name} not timed: {e}")
            continue
        cells[p.name] = p.time
    rng = np.random.default_rng(1)
    ma, mb = rng.standard_normal((1024, 1024)).astype(dtype), rng.standard_normal((1024, 1024)).astype(dtype)
    cells["matmul 1024"] = local(lambda: ma @ mb)
    return cells, {"modules": modules, "data": data_path, "module": m, "args": args, "source": src}


def fresh_figures(w: Workload, modules: dict, data_path: Path, reps: int, calls: int, gap: float, warm_s: float) -> dict:
    """Median over ``reps`` new processes per variant (variants interleaved)."""
    variants = {"bpc": ["bpc", str(modules["bpc"])], "hand": ["hand"]}
    if "bpc -O3" in modules:
        variants["bpc -O3"] = ["bpc", str(modules["bpc -O3"])]
        variants["bpc -O3 out="] = ["bpc-out", str(modules["bpc -O3"])]
    warm = int(min(20, max(3, 0.5 / max(warm_s, 1e-6))))
    raw = {k: [] for k in variants}
    for _ in range(reps):
        for name, (kind, *mod) in variants.items():
            cmd = [sys.executable, str(HERE / "fresh.py"), kind, w.key, str(data_path), *mod, "--calls", str(calls), "--warm", str(warm)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            raw[name].append(json.loads(out.strip().splitlines()[-1]))
            time.sleep(gap)
    return {name: {f: statistics.median(r[f] for r in rs) for f in rs[0]} | {"raw": rs} for name, rs in raw.items()}


def count_calls(w: Workload, prep: dict) -> dict:
    """NumPy operations per gradient (benchmarks/opcount.py)."""
    m, args = prep["module"], prep["args"]
    out = {"bpc": opcount.count_ops(source=prep["source"], name="value_and_grad", globals_=m.__dict__, args=args)}
    if "bpc -O3" in prep["modules"]:
        src3 = prep["modules"]["bpc -O3"].read_text()
        m3 = load_source(src3, f"{w.key}_count_O3")
        outbuf = {k: np.empty(m3.PARAMS[k], dtype=args[0].dtype) for k in m3.WRT}
        out["bpc -O3"] = opcount.count_ops(source=src3, name="value_and_grad", globals_=m3.__dict__, args=args)
        out["bpc -O3 out="] = opcount.count_ops(source=src3, name="value_and_grad", globals_=m3.__dict__, args=args, kwargs={"out": outbuf})
    f = handwritten.UNROLLED[w.key]
    out["hand"] = opcount.count_ops(f, [a.copy() for a in args])
    return {k: dict(v) for k, v in out.items()}


# ---------------------------------------------------------------- reporting

def fmt_t(s: float) -> str:
    return f"{s * 1e6:.1f} µs" if s < 1e-3 else f"{s * 1e3:.2f} ms"


def ratios(t: dict, a: str, b: str) -> list[float]:
    return [x / y for x, y in zip(t[a], t[b])]


def summarize(runs: list[dict], key: str, a: str, b: str):
    """(median over runs of each run's median same-round ratio, min, max over all rounds)"""
    per_run, every = [], []
    for run in runs:
        t = run[key]["times"]
        if a in t and b in t:
            r = ratios(t, a, b)
            per_run.append(statistics.median(r))
            every += r
    if not per_run:
        return None
    return statistics.median(per_run), min(every), max(every)


def fmt_r(s) -> str:
    if s is None:
        return "-"
    med, lo, hi = s
    return f"{med:.2f} ({lo:.2f}–{hi:.2f})"


def median_time(runs, key, cell):
    v = [statistics.median(r[key]["times"][cell]) for r in runs if cell in r[key]["times"]]
    return statistics.median(v) if v else None


def thread_report(peers: list[PeerProcess]) -> list[str]:
    lines = []
    env = {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS") if k in os.environ}
    blas = "?"
    try:
        cfg = np.__config__.CONFIG["Build Dependencies"]["blas"]
        blas = f"{cfg['name']} {cfg['version']}"
    except Exception:
        pass
    threads = "default"
    try:  # the OpenBLAS NumPy loaded: ask it
        maps = Path("/proc/self/maps").read_text().splitlines()
        for line in maps:
            if "openblas" in line and ".so" in line:
                lib = ctypes.CDLL(line.split()[-1])
                for sym in ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_", "openblas_get_num_threads"):
                    if hasattr(lib, sym):
                        threads = f"{getattr(lib, sym)()} threads"
                        break
                break
    except Exception:
        pass
    lines.append(f"- bpc, hand-written, matmul (this process): NumPy {np.__version__}, {blas}, {threads}; "
                 f"{os.cpu_count()} CPUs; thread variables: {env or 'none set (library defaults)'}")
    for p in peers:
        i = p.info
        lines.append(f"- {p.name} (own process): {i.get('version')}, NumPy {i.get('numpy')}, {i.get('threads')}; "
                     f"thread variables: {i.get('env') or 'none set'}")
    return lines


def report(runs: list[dict], args, peers, notes, counts, dtype_name) -> None:
    keys = [k for k in runs[0] if k in BY_KEY]
    cells_all = []
    for r in runs:
        for k in keys:
            for c in r[k]["times"]:
                if c not in cells_all:
                    cells_all.append(c)
    main_cells = [c for c in BPC_CELLS if c in cells_all] + ["hand"]
    peer_cells = [PEERS[p] for p in PEERS if PEERS[p] in cells_all]
    p = print
    p(f"# bpc benchmark ({dtype_name})\n")
    p(f"Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs. {len(runs)} run(s) × "
      f"{args.rounds} interleaved rounds, ~{args.budget} s per timing, {args.gap} s idle gap between cells. "
      f"bpc -O3: {'compiled' if o3_available() else 'not available (CompileOptions has no opt_level yet): skipped'}.\n")
    p("Threads:\n")
    for line in thread_report(peers):
        p(line)
    p("\n## Warm heap: seconds per call (median of rounds; median of runs)\n")
    cols = main_cells + peer_cells + ["matmul 1024"]
    p("| workload | " + " | ".join(cols) + " |")
    p("| --- | " + " | ".join("---:" for _ in cols) + " |")
    for k in keys:
        cells = [median_time(runs, k, c) for c in cols]
        p(f"| {k}: {BY_KEY[k].title} | " + " | ".join(fmt_t(v) if v else "-" for v in cells) + " |")
    p("\n## Same-round ratios to the hand-written baseline (median, min–max over rounds; lower is faster)\n")
    cols = [c for c in main_cells if c != "hand"] + peer_cells
    p("| workload | " + " | ".join(cols) + " |")
    p("| --- | " + " | ".join("---:" for _ in cols) + " |")
    for k in keys:
        p(f"| {k} | " + " | ".join(fmt_r(summarize(runs, k, c, "hand")) for c in cols) + " |")
    if peer_cells:
        p("\n## bpc against the best peer\n")
        p("The bpc variant and the peer with the lowest median time; their ratio is taken round by round.\n")
        p("| workload | best bpc | best peer | bpc best / best peer | best peer / hand |")
        p("| --- | --- | --- | ---: | ---: |")
        for k in keys:
            bb = min((c for c in BPC_CELLS if median_time(runs, k, c)), key=lambda c: median_time(runs, k, c))
            pp = [c for c in peer_cells if median_time(runs, k, c)]
            if not pp:
                p(f"| {k} | {bb} | - | - | - |")
                continue
            bp = min(pp, key=lambda c: median_time(runs, k, c))
            p(f"| {k} | {bb} ({fmt_t(median_time(runs, k, bb))}) | {bp} ({fmt_t(median_time(runs, k, bp))}) | "
              f"{fmt_r(summarize(runs, k, bb, bp))} | {fmt_r(summarize(runs, k, bp, 'hand'))} |")
    p("\n## Throughput: GFLOP/s and share of a bare 1024×1024 matmul timed in the same rounds\n")
    p("FLOPs of the work done: each layer's product forward and its weight gradient, and the input gradient "
      "of every layer but the first. Share = (FLOPs / cell time) / (2·1024³ / matmul time), same round.\n")
    cols = [c for c in main_cells + peer_cells]
    p("| workload | GFLOP | matmul GFLOP/s | " + " | ".join(cols) + " |")
    p("| --- | ---: | ---: | " + " | ".join("---:" for _ in cols) + " |")
    ref = 2 * 1024**3
    for k in keys:
        fl = BY_KEY[k].flops()
        mm = median_time(runs, k, "matmul 1024")
        row = []
        for c in cols:
            share = []
            for r in runs:
                t = r[k]["times"]
                if c in t:
                    share.append(statistics.median((fl / a) / (ref / b) for a, b in zip(t[c], t["matmul 1024"])))
            tc = median_time(runs, k, c)
            row.append(f"{fl / tc / 1e9:.1f} ({statistics.median(share):.0%})" if share else "-")
        p(f"| {k} | {fl / 1e9:.3g} | {ref / mm / 1e9:.1f} | " + " | ".join(row) + " |")
    kw_keys = [k for k in keys if all(c in runs[0][k]["times"] for c in KW_CELLS)]
    if kw_keys:
        p("\n## Positional against keyword calls (W5: 132 arguments)\n")
        p("| workload | positional | keywords (interned keys) | keywords (non-interned keys) | kw / positional | non-interned / positional |")
        p("| --- | ---: | ---: | ---: | ---: | ---: |")
        for k in kw_keys:
            p(f"| {k} | {fmt_t(median_time(runs, k, 'bpc'))} | {fmt_t(median_time(runs, k, KW_CELLS[0]))} | "
              f"{fmt_t(median_time(runs, k, KW_CELLS[1]))} | {fmt_r(summarize(runs, k, KW_CELLS[0], 'bpc'))} | "
              f"{fmt_r(summarize(runs, k, KW_CELLS[1], 'bpc'))} |")
    fresh_keys = [k for k in keys if runs[0][k].get("fresh")]
    if fresh_keys:
        p(f"\n## Fresh process against warm heap\n")
        p(f"A new interpreter loads the module and the data, then calls value_and_grad: the first call, and the "
          f"mean of the first {args.fresh_calls}; minor page faults (ru_minflt) per call. Warm: the same process "
          f"after warm-up calls. Median of {args.fresh_reps} processes per variant (and of runs).\n")
        p("| workload | variant | first call | faults | mean of first " + str(args.fresh_calls)
          + " | faults / call | warm (same process) | warm faults / call | warm heap (rounds) |")
        p("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for k in fresh_keys:
            for v in runs[0][k]["fresh"]:
                f = {fld: statistics.median(r[k]["fresh"][v][fld] for r in runs)
                     for fld in ("first_s", "first_faults", "firstk_s", "firstk_faults", "warm_s", "warm_faults", "calls")}
                wt = median_time(runs, k, v)
                p(f"| {k} | {v} | {fmt_t(f['first_s'])} | {f['first_faults']:.0f} | {fmt_t(f['firstk_s'] / f['calls'])} | "
                  f"{f['firstk_faults'] / f['calls']:.0f} | {fmt_t(f['warm_s'])} | {f['warm_faults']:.0f} | "
                  f"{fmt_t(wt) if wt else '-'} |")
    if counts:
        p("\n## NumPy operations per gradient (benchmarks/opcount.py)\n")
        p("Each NumPy call (np.* function or ufunc, array method such as .dot/.sum/.reshape/.item), operator "
          "with an array result (incl. in place), new-array attribute (.T) and array subscript counts one; "
          "Python-level work (argument binding, the returned dict) does not.\n")
        p("| workload | variant | total | calls | operators | in-place operators | .T | subscripts |")
        p("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for k, per in counts.items():
            for v, c in per.items():
                p(f"| {k} | {v} | {c.get('total', 0)} | {c.get('call', 0)} | {c.get('operator', 0)} | "
                  f"{c.get('in-place operator', 0)} | {c.get('attribute', 0)} | {c.get('subscript', 0)} |")
    if notes:
        p("\nNotes:\n")
        for n in dict.fromkeys(notes):
            p(f"- {n}")


# ---------------------------------------------------------------- extras

def derivative_modes(w: Workload, rounds: int, budget: float) -> dict:
    """bpc's forward, hvp and jvp against value_and_grad (same rounds)."""
    src, m = compile_module(w)
    params, x, y = data(w, m)
    spec2 = {**w.spec(), "emit": ["value_and_grad", "jvp", "hvp"]}
    m2 = load_source(compile_text(json.dumps(spec2), name=f"benchmarks:{w.key}").source, w.key + "_2")
    vecs = {k: np.random.default_rng(2).standard_normal(np.shape(v)) for k, v in params.items()}
    cells = {
        "grad": local(lambda: m.value_and_grad(**params, x=x, y=y)),
        "fwd": local(lambda: m.forward(**params, x=x, y=y)),
        "hvp": local(lambda: m2.hvp(**params, x=x, y=y, vectors=vecs)),
        "jvp": local(lambda: m2.jvp(**params, x=x, y=y, tangents=vecs)),
    }
    t = time_rounds(cells, rounds, budget, 0.0)
    return {k: statistics.median(v) for k, v in t.items()} | {
        "hvp/grad": statistics.median(ratios(t, "hvp", "grad")),
        "grad/fwd": statistics.median(ratios(t, "grad", "fwd")),
        "jvp/fwd": statistics.median(ratios(t, "jvp", "fwd")),
    }


def compile_times(layers: list[int]) -> list[tuple[int, float, int]]:
    out = []
    for L in layers:
        spec = {"name": f"mlp{L}", "mlp": {"sizes": [8] * (L + 1), "activation": "tanh", "loss": "mse"}}
        t0 = time.perf_counter()
        c = compile_text(json.dumps(spec))
        out.append((L, time.perf_counter() - t0, len(c.optimized.graph)))
    return out


# ------------------------------------------------------------------- main

def one_run(chosen, args, dtype, peers, notes, tmp: Path, want_counts: bool):
    result, counts = {}, {}
    for w in chosen:
        cells, prep = prepare(w, dtype, tmp, peers, notes)
        t = time_rounds(cells, args.rounds, args.budget, args.gap)
        result[w.key] = {"times": t}
        if args.fresh_reps > 0:
            fr = fresh_figures(w, prep["modules"], prep["data"], args.fresh_reps, args.fresh_calls, args.gap,
                               statistics.median(t["bpc"]))
            result[w.key]["fresh"] = fr
        if want_counts and w.key in handwritten.UNROLLED:
            counts[w.key] = count_calls(w, prep)
        print(f"[{w.key} done]", file=sys.stderr, flush=True)
    return result, counts


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="bpc benchmarks (issue 16)")
    ap.add_argument("--quick", action="store_true", help="one short round, no fresh processes (smoke test)")
    ap.add_argument("--runs", type=int, default=1, help="repeat everything; report the median of the runs")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--budget", type=float, default=0.2, help="seconds per timing")
    ap.add_argument("--gap", type=float, default=0.2, help="idle seconds between cells")
    ap.add_argument("--only", nargs="*", help="workload keys, e.g. W1 W3")
    ap.add_argument("--peer-python", help="interpreter with the peers (JAX, PyTorch, autograd); default: no peers")
    ap.add_argument("--peers", nargs="*", choices=list(PEERS), help="a subset of the peers")
    ap.add_argument("--float32", action="store_true", help="compile with dtype float32 and feed float32 data")
    ap.add_argument("--fresh-reps", type=int, help="new processes per variant for the fresh figures (0: none; default 3, --quick 0)")
    ap.add_argument("--fresh-calls", type=int, default=3)
    ap.add_argument("--modes", action="store_true", help="also time bpc's forward, jvp and hvp")
    ap.add_argument("--compile-layers", type=int, nargs="*", default=[], help="also time compiling MLPs of these depths")
    ap.add_argument("--json", help="write every raw time here")
    a = ap.parse_args(argv)
    if a.quick:
        a.rounds, a.budget, a.gap = 1, 0.01, 0.0
    if a.fresh_reps is None:
        a.fresh_reps = 0 if a.quick else 3
    dtype = np.float32 if a.float32 else np.float64
    chosen = [w for w in WORKLOADS if not a.only or w.key in a.only]
    peers, notes = start_peers(a.peer_python, a.peers)
    runs, counts = [], {}
    try:
        with tempfile.TemporaryDirectory(prefix="bpc-bench-") as tmp:
            for i in range(a.runs):
                r, c = one_run(chosen, a, dtype, peers, notes, Path(tmp), want_counts=(i == 0))
                runs.append(r)
                counts = counts or c
    finally:
        for p in peers:
            p.close()
    report(runs, a, peers, notes, counts, np.dtype(dtype).name)
    extras = {}
    if a.modes:
        print("\n## Derivative modes (bpc, float64, same rounds)\n")
        print("| workload | value_and_grad | forward | grad / fwd | hvp | hvp / grad | jvp | jvp / fwd |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for w in chosen:
            d = extras.setdefault("modes", {})[w.key] = derivative_modes(w, a.rounds, a.budget)
            print(f"| {w.key} | {fmt_t(d['grad'])} | {fmt_t(d['fwd'])} | {d['grad/fwd']:.2f} | {fmt_t(d['hvp'])} | "
                  f"{d['hvp/grad']:.2f} | {fmt_t(d['jvp'])} | {d['jvp/fwd']:.2f} |")
    if a.compile_layers:
        print("\n| MLP layers (width 8, tanh) | compile time | optimized IR nodes |")
        print("| --- | --- | --- |")
        for L, s, n in compile_times(a.compile_layers):
            print(f"| {L} | {s:.2f} s | {n} |")
    if a.json:
        def clean(o):
            if isinstance(o, dict):
                return {k: clean(v) for k, v in o.items()}
            if isinstance(o, list):
                return [clean(v) for v in o]
            return o
        Path(a.json).write_text(json.dumps({
            "dtype": np.dtype(dtype).name, "rounds": a.rounds, "budget": a.budget, "gap": a.gap,
            "peers": {p.name: p.info for p in peers}, "notes": notes, "runs": clean(runs), "counts": counts,
            "extras": extras,
        }, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
