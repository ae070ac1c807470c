"""Train the generated 2-10-10-1 sigmoid MLP on y = (x1^2 + x2^2) / 2.

Uses only NumPy and the generated module (generated/mlp_2_10_10_1.py), the
way an engineer would use bpc's output with no framework at run time:

    bpc compile examples/mlp_2_10_10_1.json
    python examples/train_mlp_2_10_10_1.py

One example per step (the spec's batch is 1), Adam with a learning rate that
decays linearly to 0. It prints the test loss as it goes and, to judge it, the
loss of the best constant predictor (the mean of the test targets): a network
that learned nothing ends there. With matplotlib installed it saves the loss
curve as a PNG (--plot); without, it says so (matplotlib is not a dependency).
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


def train(steps: int = 5000, lr: float = 0.05, seed: int = 0, verbose: bool = True, tests: int = 200):
    """Adam on one random example per step; returns (curve, baseline): the
    test loss at evenly spaced steps as (step, loss) pairs, and the loss of
    predicting the mean test target everywhere."""
    net = load()
    rng = np.random.default_rng(seed)
    params = net.init_params(seed)
    x_test = rng.uniform(-1.0, 1.0, size=(tests, 2))
    y_test = target(x_test)
    baseline = float(np.mean((y_test - y_test.mean()) ** 2))  # the loss is (prediction - y)^2

    def test_loss() -> float:
        return float(np.mean([net.forward(**params, x=x_test[i : i + 1], y=y_test[i : i + 1]) for i in range(tests)]))

    beta1, beta2, eps = 0.9, 0.999, 1e-8
    m = {k: np.zeros_like(v) for k, v in params.items()}
    v = {k: np.zeros_like(v) for k, v in params.items()}
    curve = [(0, test_loss())]
    every = max(1, steps // 50)
    if verbose:
        print(f"constant-mean predictor: test loss {baseline:.6f}")
        print(f"step {0:6d}  test loss {curve[0][1]:.6f}")
    for step in range(1, steps + 1):
        x = rng.uniform(-1.0, 1.0, size=(1, 2))
        _, grads = net.value_and_grad(**params, x=x, y=target(x))
        rate = lr * (1.0 - (step - 1) / steps)
        for name, g in grads.items():
            m[name] = beta1 * m[name] + (1 - beta1) * g
            v[name] = beta2 * v[name] + (1 - beta2) * g * g
            m_hat, v_hat = m[name] / (1 - beta1**step), v[name] / (1 - beta2**step)
            params[name] -= rate * m_hat / (np.sqrt(v_hat) + eps)
        if step % every == 0 or step == steps:
            curve.append((step, test_loss()))
            if verbose and (step % max(1, steps // 10) == 0 or step == steps):
                print(f"step {step:6d}  test loss {curve[-1][1]:.6f}")
    return curve, baseline


def plot(curve, baseline: float, path: Path) -> bool:
    """Save the loss curve as a PNG; False when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display needed
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    steps, losses = zip(*curve)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.semilogy(steps, losses, label="test loss")
    ax.axhline(baseline, color="gray", linestyle="--", label="constant-mean predictor")
    ax.set_xlabel("step")
    ax.set_ylabel("mean squared error")
    ax.set_title("2-10-10-1 sigmoid MLP on y = (x1² + x2²) / 2")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--plot", type=Path, default=Path("train_mlp_2_10_10_1.png"), help="where the loss curve goes")
    ap.add_argument("--no-plot", action="store_true")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    curve, baseline = train(a.steps, a.lr, a.seed, not a.quiet)
    first, last = curve[0][1], curve[-1][1]
    print(f"test loss: {first:.6f} -> {last:.6f} (constant-mean predictor: {baseline:.6f}, {baseline / last:.0f}x higher)")
    if not a.no_plot:
        if plot(curve, baseline, a.plot):
            print(f"loss curve: {a.plot}")
        else:
            print("loss curve: not drawn, matplotlib is not installed (pip install matplotlib)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
