"""Hand-written NumPy forward+backward passes: the baselines of the benchmark.

Written as a careful engineer would write them by hand: one loop over layers,
activations cached on the way forward, derivatives that reuse them, no
framework. Each returns ``(loss, grads)`` with the same names as bpc's ``mlp``
shorthand (``w1, b1, ...``), so the benchmark can check that both agree.
"""

from __future__ import annotations

import numpy as np


def _act(name):
    if name == "sigmoid":
        f = lambda z: 1.0 / (1.0 + np.exp(-z))  # noqa: E731
        df = lambda h, z: h * (1.0 - h)  # noqa: E731
    elif name == "tanh":
        f = np.tanh
        df = lambda h, z: 1.0 - h * h  # noqa: E731
    elif name == "relu":
        f = lambda z: np.maximum(z, 0.0)  # noqa: E731
        df = lambda h, z: z > 0  # noqa: E731
    else:
        raise ValueError(name)
    return f, df


def mlp_value_and_grad(params, x, y, depth, act="sigmoid", loss="mse", layout="row"):
    """An MLP with activation ``act`` on hidden layers and a linear output.

    loss: "mse" (mean of squared error), "sse" (sum), "ce" (softmax
    cross-entropy with integer labels ``y``, averaged over the batch).
    layout: "row" (x is [batch, n]) or "column" (x is [n, batch]).
    """
    f, df = _act(act)
    row = layout == "row"
    hs, zs = [x], []
    h = x
    for k in range(1, depth + 1):
        w, b = params[f"w{k}"], params[f"b{k}"]
        z = h @ w + b if row else w @ h + b
        zs.append(z)
        h = f(z) if k < depth else z
        hs.append(h)
    out = hs[-1]
    if loss == "ce":
        m = out.max(axis=1, keepdims=True)
        e = np.exp(out - m)
        s = e.sum(axis=1, keepdims=True)
        logp = out - m - np.log(s)
        n = out.shape[0]
        idx = y.astype(np.intp)
        value = -logp[np.arange(n), idx].mean()
        d = e / s
        d[np.arange(n), idx] -= 1.0
        d /= n
    else:
        r = out - y
        if loss == "mse":
            value = (r * r).mean()
            d = r * (2.0 / r.size)
        else:
            value = (r * r).sum()
            d = 2.0 * r
    grads = {}
    for k in range(depth, 0, -1):
        h_prev = hs[k - 1]
        w = params[f"w{k}"]
        # (at batch 1 the bias gradient is d itself: no reduction to pay for)
        if row:
            grads[f"w{k}"] = h_prev.T @ d
            grads[f"b{k}"] = d.sum(axis=0) if d.shape[0] > 1 else d[0]
        else:
            grads[f"w{k}"] = d @ h_prev.T
            grads[f"b{k}"] = d.sum(axis=1, keepdims=True) if d.shape[1] > 1 else d
        if k > 1:
            dh = d @ w.T if row else w.T @ d
            d = dh * df(hs[k - 1], zs[k - 2])
    return value, grads


def mlp_forward(params, x, y, depth, act="sigmoid", loss="mse", layout="row"):
    f, _ = _act(act)
    row = layout == "row"
    h = x
    for k in range(1, depth + 1):
        w, b = params[f"w{k}"], params[f"b{k}"]
        z = h @ w + b if row else w @ h + b
        h = f(z) if k < depth else z
    if loss == "ce":
        m = h.max(axis=1, keepdims=True)
        logp = h - m - np.log(np.exp(h - m).sum(axis=1, keepdims=True))
        return -logp[np.arange(h.shape[0]), y.astype(np.intp)].mean()
    r = h - y
    return (r * r).mean() if loss == "mse" else (r * r).sum()
