"""Finite-difference gradient checks (central differences, float64).

For each tensor the checker reports the largest absolute difference between
the analytic gradient ``a`` and the numerical one ``n``, and the relative
error ``max|a - n| / max(max|a|, max|n|, 1e-12)``. A tensor passes when
``max|a - n| <= rtol * max(max|a|, max|n|) + atol``.

Defaults: step ``h = 1e-6 * max(1, |x_i|)``, ``rtol = 1e-6``, ``atol = 1e-8``
(times ``max(1, |loss|)``, since rounding in the loss sets the noise floor of
a difference quotient).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np

STEP = 1e-6
RTOL = 1e-6
ATOL = 1e-8


@dataclass
class TensorCheck:
    name: str
    shape: tuple[int, ...]
    max_abs: float
    max_rel: float
    passed: bool

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "shape": list(self.shape),
            "max_abs_error": self.max_abs,
            "max_rel_error": self.max_rel,
            "passed": self.passed,
        }


def numerical_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, step: float = STEP) -> np.ndarray:
    """Central differences of scalar ``f`` at ``x``, one element at a time."""
    x = np.array(x, dtype=np.float64)
    grad = np.zeros_like(x)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        h = step * max(1.0, abs(old))
        flat[i] = old + h
        fp = f(x)
        flat[i] = old - h
        fm = f(x)
        flat[i] = old
        gflat[i] = (fp - fm) / (2.0 * h)
    return grad


def compare(
    name: str,
    analytic: np.ndarray,
    numeric: np.ndarray,
    loss_scale: float = 1.0,
    rtol: float = RTOL,
    atol: float = ATOL,
) -> TensorCheck:
    a = np.asarray(analytic, dtype=np.float64)
    n = np.asarray(numeric, dtype=np.float64)
    if a.shape != n.shape:
        return TensorCheck(name, tuple(n.shape), np.inf, np.inf, False)
    diff = float(np.max(np.abs(a - n))) if a.size else 0.0
    scale = max(float(np.max(np.abs(a))) if a.size else 0.0, float(np.max(np.abs(n))) if n.size else 0.0)
    rel = diff / max(scale, 1e-12)
    ok = bool(np.isfinite(diff)) and diff <= rtol * scale + atol * max(1.0, abs(loss_scale))
    return TensorCheck(name, tuple(a.shape), diff, rel, ok)


def check_module(
    module,
    arrays: Mapping[str, np.ndarray],
    intermediate_loss: Callable[[str], Callable[[np.ndarray], float]] | None = None,
    rtol: float = RTOL,
    atol: float = ATOL,
    progress: Callable[[str], None] | None = None,
) -> tuple[float, list[TensorCheck]]:
    """Check a generated module's ``value_and_grad`` against finite differences.

    Params and inputs are perturbed through the module's own ``forward``;
    intermediate ``wrt`` values need ``intermediate_loss(name)``, a loss
    function of that value (the reference interpreter provides one).
    """
    loss, grads = module.value_and_grad(**arrays)
    loss_value = float(np.sum(loss))

    def fwd_loss(name: str) -> Callable[[np.ndarray], float]:
        def f(x: np.ndarray) -> float:
            out = module.forward(**{**arrays, name: x})
            return float(np.sum(out[0] if isinstance(out, tuple) else out))

        return f

    results = []
    for name in module.WRT:
        if progress:
            progress(name)
        if name in arrays:
            f = fwd_loss(name)
            x0 = arrays[name]
        else:
            if intermediate_loss is None:
                raise ValueError(f"'{name}' is intermediate: pass intermediate_loss")
            f, x0 = intermediate_loss(name)
        numeric = numerical_gradient(f, x0)
        results.append(compare(name, grads[name], numeric, loss_value, rtol, atol))
    return loss_value, results
