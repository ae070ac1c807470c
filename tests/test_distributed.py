"""``bpc.distributed``: the batch reduction derived from the IR, and
data-parallel gradients on Dask equal to the in-memory gradient.

The reference is the generated module's own ``value_and_grad`` over the whole
batch in one process; the distributed result must equal it to 1e-12 relative
(float64) for the MNIST MLP (examples/mnist_mlp.json, a mean loss) and the
same network with a sum loss, with uneven chunks, on the threaded scheduler,
the synchronous one, and a 2-worker ``distributed.LocalCluster``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

dask = pytest.importorskip("dask", reason="the dask extra is not installed")
da = pytest.importorskip("dask.array", reason="the dask extra is not installed")
distributed = pytest.importorskip("distributed", reason="the dask extra is not installed")

import bpc  # noqa: E402
import bpc.distributed as bd  # noqa: E402
from bpc.compiler.errors import BpcError  # noqa: E402

from .conftest import ROOT  # noqa: E402

MNIST = ROOT / "examples/mnist_mlp.json"
UNEVEN = (37, 100, 1, 64, 48)  # 250 rows


def mlp_spec(loss: str, extra_nodes=(), extra_params=()) -> dict:
    """The 784-256-256-10 MLP of examples/mnist_mlp.json in nodes form, with ``loss``."""
    sizes = [784, 256, 256, 10]
    params = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:]), 1):
        params.append({"name": f"w{i}", "shape": [a, b], "init": {"kind": "glorot_uniform"}})
        params.append({"name": f"b{i}", "shape": [b], "init": {"kind": "zeros"}})
    return {
        "name": "mlp",
        "inputs": [{"name": "x", "shape": ["batch", 784]}, {"name": "y", "shape": ["batch"], "classes": 10}],
        "params": params + list(extra_params),
        "dims": {"batch": 8},
        "nodes": [
            "h1 = relu(x @ w1 + b1)",
            "h2 = relu(h1 @ w2 + b2)",
            "z = h2 @ w3 + b3",
            *extra_nodes,
            f"loss = {loss}",
        ],
        "loss": "loss",
        "wrt": [p["name"] for p in params],
    }


SUM_SPEC = mlp_spec("softmax_cross_entropy(z, y, reduction='sum')")


def batch(n: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 784)), rng.integers(0, 10, n)


def assert_equal_to_memory(m, params, x, y, got, tol=1e-12):
    want_loss, want = m.value_and_grad(**params, x=x, y=y)
    loss, grads = got
    assert set(grads) == set(want)
    assert abs(float(loss) - float(want_loss)) <= tol * max(1.0, abs(float(want_loss)))
    for k in want:
        scale = max(1.0, float(np.max(np.abs(want[k]))))
        assert np.max(np.abs(np.asarray(grads[k]) - want[k])) <= tol * scale, k
        assert np.asarray(grads[k]).shape == want[k].shape


@pytest.fixture(scope="module")
def mean_program():
    return bpc.compile(MNIST)


@pytest.fixture(scope="module")
def sum_program():
    return bpc.compile(SUM_SPEC)


# ------------------------------------------------------------------ the batch reduction


def test_reduction_derived_from_ir(mean_program, sum_program):
    assert bd.batch_reduction(mean_program) == "mean"
    assert bd.batch_reduction(sum_program) == "sum"
    assert bd.batch_reduction(bpc.compile(mlp_spec("softmax_cross_entropy(z, y, reduction='mean')"))) == "mean"
    assert bd.batch_reduction(bpc.compile(mlp_spec("2.0 * sum((z - 1.0) ** 2) / 3.0"))) == "sum"
    # a regulariser with a mean loss: the chunk weights add up to 1, so it counts once
    assert bd.batch_reduction(bpc.compile(mlp_spec("softmax_cross_entropy(z, y) + 0.01 * sum(w1 * w1)"))) == "mean"
    assert bd.batch_reduction(bpc.compile(mlp_spec("mean(sum(z * z, axis=1))"))) == "mean"
    assert bd.batch_reduction(bpc.compile(mlp_spec("sum(mean(z * z, axis=1)) + sum(z)"))) == "sum"


@pytest.mark.parametrize(
    "loss,why",
    [
        ("max(sum(z * z, axis=1))", "max over the batch"),
        ("log(mean(z * z))", "not linear"),
        ("sum(z * z) + sum(w1 * w1)", "regulariser would count once per chunk"),
        ("sum(z * z) + mean(z * z)", "plus a term"),
        ("sum(transpose(h2) @ h2)", "combines rows"),
        ("mean(z * z) * mean(z)", "not linear"),
        ("sum((z - mean(z, axis=0)) ** 2)", "combines rows"),
        ("sum(softmax(z, axis=0) * z)", "combines rows"),
    ],
)
def test_reduction_refused(loss, why):
    with pytest.raises(BpcError, match=why):
        bd.batch_reduction(bpc.compile(mlp_spec(loss)))


def test_fixed_batch_size_refused():
    spec = mlp_spec("sum(z * z)")
    spec["inputs"] = [{"name": "x", "shape": [8, 784]}, {"name": "y", "shape": [8], "classes": 10}]
    del spec["dims"]
    with pytest.raises(BpcError, match="symbolic batch dim"):
        bd.batch_reduction(bpc.compile(spec), ["x", "y"])


def test_wrt_split_over_the_batch_refused():
    spec = mlp_spec("sum(z * z)")
    spec["wrt"] = ["w1", "h1"]
    with pytest.raises(BpcError, match="its gradient is per chunk"):
        bd.batch_reduction(bpc.compile(spec))


# ------------------------------------------------------------------ the computation


@pytest.mark.parametrize("which", ["mean", "sum"])
@pytest.mark.parametrize("scheduler", ["threads", "sync"])
def test_local_schedulers(which, scheduler, mean_program, sum_program):
    m = mean_program if which == "mean" else sum_program
    params = m.init_params(3)
    x, y = batch(sum(UNEVEN))
    got = bd.value_and_grad(m, params, {"x": da.from_array(x, chunks=(UNEVEN, 784)), "y": y}, scheduler=scheduler, split_every=2)
    assert_equal_to_memory(m, params, x, y, got)


def test_numpy_data_chunked(mean_program):
    params = mean_program.init_params()
    x, y = batch(101)
    got = bd.value_and_grad(mean_program, params, {"x": x, "y": y}, chunk_rows=17, scheduler="threads")
    assert_equal_to_memory(mean_program, params, x, y, got)


def test_one_chunk_and_one_row_chunks(sum_program):
    params = sum_program.init_params()
    x, y = batch(5)
    for rows in (5, 1):
        got = bd.value_and_grad(sum_program, params, {"x": x, "y": y}, chunk_rows=rows, scheduler="sync")
        assert_equal_to_memory(sum_program, params, x, y, got)


def test_generated_module_needs_the_reduction(tmp_path, mean_program):
    path = mean_program.write(tmp_path)
    module = bpc.load(path)
    params = module.init_params()
    x, y = batch(60)
    with pytest.raises(BpcError, match="reduction='mean' or 'sum'"):
        bd.value_and_grad(module, params, {"x": x, "y": y})
    got = bd.value_and_grad(module, params, {"x": x, "y": y}, reduction="mean", chunk_rows=25, scheduler="sync")
    assert_equal_to_memory(mean_program, params, x, y, got)


def test_array_api_module_on_dask(mean_program):
    aa = bpc.compile(MNIST, target="array-api")
    params = aa.init_params(1)
    x, y = batch(90)
    got = bd.value_and_grad(aa, params, {"x": x, "y": y}, chunk_rows=40, scheduler="threads")
    assert_equal_to_memory(mean_program, params, x, y, got)


def test_bad_calls(mean_program):
    params = mean_program.init_params()
    x, y = batch(20)
    with pytest.raises(BpcError, match="is a sum over the batch|reduction='sum'"):
        bd.value_and_grad(mean_program, params, {"x": x, "y": y}, reduction="sum")
    with pytest.raises(BpcError, match="rows"):
        bd.value_and_grad(mean_program, params, {"x": x, "y": y[:10]})
    with pytest.raises(BpcError, match="not an input"):
        bd.value_and_grad(mean_program, params, {"x": x, "y": y, "z": y})
    with pytest.raises(BpcError, match="'y' has the batch dim 'batch' but is not in data"):
        bd.value_and_grad(mean_program, params, {"x": x})
    with pytest.raises(BpcError, match="expected a bpc.Program"):
        bd.value_and_grad(object(), params, {"x": x, "y": y}, reduction="mean")


@pytest.fixture(scope="module")
def client():
    # processes=False: two workers in this process, started in well under a
    # second (processes=True is covered by the slow test below).
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
    ) as cluster, distributed.Client(cluster) as c:
        yield c


@pytest.mark.parametrize("which", ["mean", "sum"])
def test_local_cluster_two_workers(which, client, mean_program, sum_program):
    m = mean_program if which == "mean" else sum_program
    params = m.init_params(7)
    x, y = batch(sum(UNEVEN), seed=2)
    data = {"x": da.from_array(x, chunks=(UNEVEN, 784)), "y": da.from_array(y, chunks=(50,))}  # y rechunked to x's
    got = bd.value_and_grad(m, params, data, client=client)
    assert_equal_to_memory(m, params, x, y, got)
    assert len(client.scheduler_info()["workers"]) == 2


@pytest.mark.slow
def test_local_cluster_worker_processes(mean_program, sum_program):
    """Worker processes: the tasks travel pickled, each worker loads the module from its source."""
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster, distributed.Client(cluster) as c:
        for m in (mean_program, sum_program):
            params = m.init_params()
            x, y = batch(sum(UNEVEN), seed=4)
            got = bd.value_and_grad(m, params, {"x": da.from_array(x, chunks=(UNEVEN, 784)), "y": y}, client=c)
            assert_equal_to_memory(m, params, x, y, got)


def test_json_spec_round_trip():
    """The sum spec is valid JSON as written (what a user would save)."""
    assert bpc.compile(json.dumps(SUM_SPEC)).ENTRY_POINTS == ("forward", "value_and_grad")


def test_batch_on_axis_one():
    """Column layout: the batch on axis 1 (x of shape (3, batch))."""
    spec = {
        "inputs": [{"name": "x", "shape": [3, "batch"]}],
        "params": [{"name": "W", "shape": [2, 3]}],
        "dims": {"batch": 4},
        "nodes": ["h = tanh(W @ x)", "loss = mean(h * h)"],
        "loss": "loss",
        "wrt": ["W"],
    }
    m = bpc.compile(spec)
    assert bd.batch_reduction(m, ["x"], batch_axis=1) == "mean"
    x = np.random.default_rng(0).standard_normal((3, 53))
    params = m.init_params()
    loss, grads = bd.value_and_grad(m, params, {"x": x}, batch_axis=1, chunk_rows=10, scheduler="sync")
    want_loss, want = m.value_and_grad(**params, x=x)
    assert abs(loss - want_loss) <= 1e-12 * max(1.0, abs(want_loss))
    assert np.max(np.abs(grads["W"] - want["W"])) <= 1e-12 * max(1.0, np.max(np.abs(want["W"])))


def test_benchmark_harness():
    """benchmarks/dask_scaling.py runs and checks its distributed result (no timing asserted)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bpc_dask_scaling", ROOT / "benchmarks" / "dask_scaling.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    r = bench.child("threads2", 600, 150, 1, True)
    assert r["chunks"] == 4 and r["best_s"] > 0 and r["cpu_s"] > 0
    assert r["max_rel_diff_vs_memory"] <= 1e-12
