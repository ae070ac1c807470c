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
    checked: int = 0  # elements compared (all, unless sampled)

    @property
    def size(self) -> int:
        """Elements of the tensor (``checked`` of them were compared)."""
        return int(np.prod(self.shape, dtype=np.int64))

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "shape": list(self.shape),
            "max_abs_error": self.max_abs,
            "max_rel_error": self.max_rel,
            "passed": self.passed,
            "elements_checked": self.checked,
            "elements": self.size,
        }


def sample_indices(size: int, max_elements: int | None, seed: int = 0) -> np.ndarray:
    """All flat indices, or a seeded random subset of ``max_elements`` of them."""
    if not max_elements or size <= max_elements:
        return np.arange(size)
    return np.sort(np.random.default_rng(seed).choice(size, max_elements, replace=False))


def numerical_gradient(
    f: Callable[[np.ndarray], float],
    x: np.ndarray,
    step: float = STEP,
    indices: np.ndarray | None = None,
) -> np.ndarray:
    """Central differences of scalar ``f`` at ``x``, one element at a time.

    With ``indices`` (flat), only those elements are computed; the rest are NaN.
    """
    # C order: reshape(-1) must be a view, or the perturbations never reach x
    # (a transposed intermediate is Fortran-ordered).
    x = np.array(x, dtype=np.float64, order="C")
    grad = np.zeros_like(x) if indices is None else np.full_like(x, np.nan)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size) if indices is None else indices:
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
    shape = tuple(a.shape)
    if not np.all(np.isfinite(a)):  # a NaN or infinite gradient is never right
        return TensorCheck(name, shape, np.inf, np.inf, False, int(a.size))
    known = ~np.isnan(n)  # sampled checks leave the other elements NaN
    a, n = a[known], n[known]
    diff = float(np.max(np.abs(a - n))) if a.size else 0.0
    scale = max(float(np.max(np.abs(a))) if a.size else 0.0, float(np.max(np.abs(n))) if n.size else 0.0)
    rel = diff / max(scale, 1e-12)
    ok = bool(np.isfinite(diff)) and diff <= rtol * scale + atol * max(1.0, abs(loss_scale))
    return TensorCheck(name, shape, diff, rel, ok, int(known.sum()))


def check_module(
    module,
    arrays: Mapping[str, np.ndarray],
    intermediate_loss: Callable[[str], Callable[[np.ndarray], float]] | None = None,
    rtol: float = RTOL,
    atol: float = ATOL,
    progress: Callable[[str], None] | None = None,
    max_elements: int | None = None,
    module_fd: bool = True,
) -> tuple[float, list[TensorCheck]]:
    """Check a generated module's ``value_and_grad`` against finite differences.

    Params and inputs are perturbed through the module's own ``forward``;
    intermediate ``wrt`` values need ``intermediate_loss(name)``, a loss
    function of that value (the reference interpreter provides one), which
    is used for every name when ``module_fd`` is False (a spec with
    ``stop_gradient``, whose value finite differences must hold fixed). With
    ``max_elements``, a seeded random subset of that many elements per tensor is
    checked (large networks); otherwise every element.
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
        if name in arrays and module_fd:
            f = fwd_loss(name)
            x0 = arrays[name]
        else:
            if intermediate_loss is None:
                raise ValueError(f"'{name}' is intermediate: pass intermediate_loss")
            f, x0 = intermediate_loss(name)
        idx = sample_indices(np.size(x0), max_elements)
        numeric = numerical_gradient(f, x0, indices=idx if len(idx) < np.size(x0) else None)
        results.append(compare(name, grads[name], numeric, loss_value, rtol, atol))
    return loss_value, results
