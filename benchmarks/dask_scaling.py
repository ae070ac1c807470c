"""bpc benchmark: full-batch gradients of the 784-256-256-10 MLP on Dask.

    python benchmarks/dask_scaling.py                          # 100,000 rows
    python benchmarks/dask_scaling.py --rows 100000,300000 --repeats 3
    python benchmarks/dask_scaling.py --configs 1proc,threads2 --rows 2000   # quick

The network is ``examples/mnist_mlp.json`` (softmax cross-entropy, a mean
over the batch), compiled by ``bpc.compile``; the rows are synthetic
(``x`` standard normal, ``y`` uniform in 0..9), drawn by
``dask.array.random.default_rng(0)`` in chunks of ``--chunk-rows`` rows, so
every configuration sees the same numbers. Configurations, each in a fresh
subprocess (so each has its own peak memory):

* ``1proc``: one process, the whole batch in memory, one call of the
  generated ``value_and_grad``;
* ``threads2``: ``bpc.distributed.value_and_grad`` on the threaded scheduler
  with 2 threads (the data in the same process);
* ``lc1``, ``lc2``: a ``distributed.LocalCluster`` of 1 or 2 worker
  processes (1 thread each); the data is generated on the workers and
  persisted there first (it lives where it is used, as on a real cluster),
  then ``bpc.distributed.value_and_grad`` runs one task per chunk.

BLAS runs single-threaded everywhere (``OPENBLAS_NUM_THREADS=1`` and friends),
so 1 process means 1 core and 2 workers mean 2 cores. Each configuration
times ``--repeats`` gradients after one warm-up and reports the fastest and
the median (wall clock), the CPU seconds per gradient of the process and all
workers together (the work done, whatever share of the cores a busy machine
gave), and the peak resident memory (``ru_maxrss``) of the process and of
each worker. Every distributed result is checked against the
in-memory gradient of the same data (``--no-check`` to skip: the check
fetches the whole batch into the client).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "examples" / "mnist_mlp.json"
CONFIGS = ("1proc", "threads2", "lc1", "lc2")
SINGLE_THREAD = {k: "1" for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _data(rows: int, chunk_rows: int):
    import dask.array as da

    rng = da.random.default_rng(0)
    x = rng.standard_normal((rows, 784), chunks=(chunk_rows, 784))
    y = rng.integers(0, 10, size=rows, chunks=chunk_rows)
    return x, y


def _max_diff(a, b) -> float:
    import numpy as np

    la, ga = a
    lb, gb = b
    d = abs(float(la) - float(lb)) / max(1.0, abs(float(lb)))
    for k in gb:
        d = max(d, float(np.max(np.abs(np.asarray(ga[k]) - gb[k]))) / max(1.0, float(np.max(np.abs(gb[k])))))
    return d


def child(config: str, rows: int, chunk_rows: int, repeats: int, check: bool) -> dict:
    import bpc
    import bpc.distributed as bd

    m = bpc.compile(SPEC)
    params = m.init_params(0)
    x, y = _data(rows, chunk_rows)
    client = cluster = None
    if config == "1proc":
        xn, yn = x.compute(scheduler="sync"), y.compute(scheduler="sync")

        def step():
            return m.value_and_grad(**params, x=xn, y=yn)

    elif config == "threads2":
        x, y = x.persist(scheduler="threads", num_workers=2), y.persist(scheduler="threads", num_workers=2)

        def step():
            return bd.value_and_grad(m, params, {"x": x, "y": y}, scheduler="threads")

    else:
        from distributed import Client, LocalCluster, wait

        n = int(config[2:])
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0", env=SINGLE_THREAD)
        client = Client(cluster)
        x, y = client.persist([x, y])
        wait([x, y])

        def step():
            return bd.value_and_grad(m, params, {"x": x, "y": y}, client=client)

    step()  # warm-up: module loaded, caches and pools warm
    times = []
    result = None
    cpu0 = _cpu_s() + (sum(client.run(_cpu_s).values()) if client is not None else 0.0)
    for _ in range(repeats):
        t = time.perf_counter()
        result = step()
        times.append(time.perf_counter() - t)
    cpu1 = _cpu_s() + (sum(client.run(_cpu_s).values()) if client is not None else 0.0)
    out = {
        "config": config,
        "rows": rows,
        "chunk_rows": chunk_rows,
        "chunks": -(-rows // chunk_rows),
        "best_s": min(times),
        "median_s": statistics.median(times),
        "times_s": times,
        # CPU seconds per gradient, this process and every worker together: the
        # work done, whatever share of the cores the machine gave us
        "cpu_s": (cpu1 - cpu0) / repeats,
        "process_peak_mib": _peak_mib(),
        "data_mib": rows * (784 + 1) * 8 / 2**20,
        "loss": float(result[0]),
    }
    if client is not None:
        peaks = client.run(_peak_mib)
        out["worker_peak_mib"] = sorted(peaks.values())
    if check and config != "1proc":
        xn, yn = (x.compute(), y.compute()) if client is None else client.gather(client.compute([x, y]))
        out["max_rel_diff_vs_memory"] = _max_diff(result, m.value_and_grad(**params, x=xn, y=yn))
    if client is not None:
        client.close()
        cluster.close()
    return out


def run(configs, rows_list, chunk_rows: int, repeats: int, check: bool) -> list[dict]:
    results = []
    env = {**os.environ, **SINGLE_THREAD}
    for rows in rows_list:
        for config in configs:
            cmd = [sys.executable, __file__, "--child", config, "--rows", str(rows), "--chunk-rows", str(chunk_rows),
                   "--repeats", str(repeats)] + ([] if check else ["--no-check"])  # fmt: skip
            r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
            if r.returncode != 0:
                raise SystemExit(f"{config} at {rows} rows failed:\n{r.stderr[-3000:]}")
            res = json.loads(r.stdout.strip().splitlines()[-1])
            results.append(res)
            print(_row(res), flush=True)
    return results


HEADER = (
    "| config | rows | chunks | best s | median s | CPU s | process peak MiB | worker peak MiB | max rel diff |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def _row(r: dict) -> str:
    workers = ", ".join(f"{p:.0f}" for p in r.get("worker_peak_mib", [])) or "-"
    diff = r.get("max_rel_diff_vs_memory")
    return (
        f"| {r['config']} | {r['rows']:,} | {r['chunks']} | {r['best_s']:.2f} | {r['median_s']:.2f} | "
        f"{r.get('cpu_s', float('nan')):.2f} | "
        f"{r['process_peak_mib']:.0f} | {workers} | {'-' if diff is None else f'{diff:.1e}'} |"
    )


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", default="100000", help="comma-separated batch sizes")
    ap.add_argument("--chunk-rows", type=int, default=12_500)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--no-check", action="store_true")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    rows_list = [int(r) for r in a.rows.split(",")]
    if a.child:
        print(json.dumps(child(a.child, rows_list[0], a.chunk_rows, a.repeats, not a.no_check)))
        return
    configs = [c for c in a.configs.split(",") if c]
    bad = sorted(set(configs) - set(CONFIGS))
    if bad:
        raise SystemExit(f"unknown config {bad[0]} (expected {', '.join(CONFIGS)})")
    print(HEADER, flush=True)
    results = run(configs, rows_list, a.chunk_rows, a.repeats, not a.no_check)
    if a.json:
        a.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
