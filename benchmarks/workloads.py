"""The five benchmark workloads (issue 16). Imports NumPy only: the peer
workers (benchmarks/peer_worker.py, run by another interpreter) read them too."""

from __future__ import annotations

from dataclasses import asdict, dataclass


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

    def to_dict(self) -> dict:
        return asdict(self)

    def flops(self) -> int:
        """The work actually done: every layer's product forward and its
        weight gradient backward; the input gradient of every layer but the
        first (the gradient with respect to the data is never computed)."""
        total = 0
        for k in range(self.depth):
            products = 3 if k > 0 else 2
            total += products * 2 * self.batch * self.sizes[k] * self.sizes[k + 1]
        return total


WORKLOADS = [
    Workload("W1", "2-10-10-1 sigmoid, MSE, batch 1 (row)", [2, 10, 10, 1], "sigmoid", "mse", "row", 1),
    Workload("W2", "1-6-6-6-6-6-1 ReLU, least squares, batch 1 (column)", [1, 6, 6, 6, 6, 6, 1], "relu", "sse", "column", 1),
    Workload("W3", "784-256-256-10 ReLU, softmax CE, batch 64", [784, 256, 256, 10], "relu", "ce", "row", 64),
    Workload("W4", "1024-1024-1024-1024-1 tanh, MSE, batch 256", [1024, 1024, 1024, 1024, 1], "tanh", "mse", "row", 256),
    Workload("W5", "64 layers of width 32, tanh, MSE, batch 16", [32] * 64 + [1], "tanh", "mse", "row", 16),
]
BY_KEY = {w.key: w for w in WORKLOADS}


def per_call(fn, budget: float) -> float:
    """Seconds per call of ``fn`` over about ``budget`` seconds, after one
    warm-up call: a short calibration, then one timed stretch of calls."""
    import time

    fn()
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        t = time.perf_counter() - t0
        if t >= budget:
            return t / n
        if t >= budget / 8:
            n = max(n + 1, round(n * budget / t))
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            return (time.perf_counter() - t0) / n
        n *= 8
