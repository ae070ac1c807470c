"""Train the generated 2-10-10-1 sigmoid MLP with SGD on y = (x1^2 + x2^2) / 2.

Uses only NumPy and the generated module (generated/mlp_2_10_10_1.py), the
way an engineer would use bpc's output with no framework at run time:

    bpc compile examples/mlp_2_10_10_1.json
    python examples/train_mlp_2_10_10_1.py --steps 20000
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
MODULE = HERE.parent / "generated" / "mlp_2_10_10_1.py"


def load():
    spec = importlib.util.spec_from_file_location("mlp_2_10_10_1", MODULE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def target(x: np.ndarray) -> np.ndarray:
    return (x[:, :1] ** 2 + x[:, 1:] ** 2) / 2.0


def train(steps: int = 20000, lr: float = 0.05, seed: int = 0, verbose: bool = True):
    """SGD with batch size 1; returns the test loss before and after."""
    net = load()
    rng = np.random.default_rng(seed)
    params = net.init_params(seed)
    x_test = rng.uniform(-1.0, 1.0, size=(200, 2))
    y_test = target(x_test)

    def test_loss() -> float:
        return float(
            np.mean([net.forward(**params, x=x_test[i : i + 1], y=y_test[i : i + 1]) for i in range(len(x_test))])
        )

    first = test_loss()
    if verbose:
        print(f"step {0:6d}  test loss {first:.6f}")
    for step in range(1, steps + 1):
        x = rng.uniform(-1.0, 1.0, size=(1, 2))
        _, grads = net.value_and_grad(**params, x=x, y=target(x))
        for name in params:
            params[name] -= lr * grads[name]
        if verbose and step % max(1, steps // 10) == 0:
            print(f"step {step:6d}  test loss {test_loss():.6f}")
    return first, test_loss()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20000)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args()
    first, last = train(a.steps, a.lr, a.seed, not a.quiet)
    print(f"test loss: {first:.6f} -> {last:.6f}")
