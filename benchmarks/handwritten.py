"""Hand-written NumPy forward+backward passes: the baselines of the benchmark.

The yardstick of issue 16: the fastest NumPy a careful person writes, reviewed
as an adversary would. Two kinds:

- ``w1_value_and_grad`` and ``w2_value_and_grad``: unrolled for exactly the
  W1 and W2 networks (batch 1), where per-call overhead (~0.4-1 µs per NumPy
  call on the benchmark machine) is the whole cost. No loops, no lambdas, no
  dict lookups; ``a.dot(b)`` rather than ``a @ b`` (the method skips the
  matmul ufunc's dispatch: ~0.5 against ~1.1 µs on 10x10); bias gradients at
  batch 1 are views of ``d``; activations are computed in place; derivatives
  are array-array ufuncs (``h - h*h``, not ``h * (1.0 - h)``: a Python float
  operand costs ~0.27 µs of scalar conversion per ufunc); the ReLU mask is the
  float ``np.sign(h)`` of the output (a bool mask costs a float-bool cast,
  ~0.8 µs more per multiply at this size); the loss of one residual is
  ``v * v`` on a Python float.
- ``mlp_value_and_grad_lists`` for W3-W5: one loop over layers (the loop costs
  nothing next to 256-wide matmuls, and ~0.1 µs per layer on W5), weights in
  lists, every intermediate that dies updated in place (``z += b``,
  ``np.tanh(z, out=z)``, the tanh derivative ``dh -= dh * h * h`` written
  into the dead activation), MSE through one ``np.vdot``, softmax CE without
  building the full log-probabilities.

Each returns ``(loss, grads)``; the ``*_lists`` form returns
``(loss, weight_grads, bias_grads)`` and ``mlp_value_and_grad`` wraps it with
bpc's names (``w1, b1, ...``) so the benchmark can check every gradient.
"""

from __future__ import annotations

import numpy as np

# 0-d array constants: a Python float operand costs ~0.2 µs of scalar
# conversion per ufunc call at these sizes (W1/W2: ~1 µs per gradient).
_ONE = np.ones(())
_ZERO = np.zeros(())

# ---------------------------------------------------------------------------
# W1: 2-10-10-1, sigmoid hidden layers, linear output, MSE, batch 1, row layout
# x (1, 2), w1 (2, 10), b1 (10,), w2 (10, 10), b2 (10,), w3 (10, 1), b3 (1,), y (1, 1)


def w1_value_and_grad(w1, b1, w2, b2, w3, b3, x, y):
    z1 = x.dot(w1)
    z1 += b1
    h1 = np.exp(-z1)  # sigmoid = 1 / (1 + exp(-z)), in place
    h1 += _ONE
    np.reciprocal(h1, out=h1)
    z2 = h1.dot(w2)
    z2 += b2
    h2 = np.exp(-z2)
    h2 += _ONE
    np.reciprocal(h2, out=h2)
    r = h2.dot(w3)
    r += b3
    r -= y  # residual (1, 1)
    v = r.item()
    d = r + r  # d loss / d prediction: 2 r / 1 element
    g_w3 = h2.T.dot(d)
    g_z2 = d.dot(w3.T)
    h2 -= h2 * h2  # sigmoid': h (1 - h), h2 is dead now
    g_z2 *= h2
    g_w2 = h1.T.dot(g_z2)
    g_z1 = g_z2.dot(w2.T)
    h1 -= h1 * h1
    g_z1 *= h1
    g_w1 = x.T.dot(g_z1)
    return v * v, {"w1": g_w1, "b1": g_z1[0], "w2": g_w2, "b2": g_z2[0], "w3": g_w3, "b3": d[0]}


# ---------------------------------------------------------------------------
# W2: 1-6-6-6-6-6-1, ReLU hidden layers, linear output, sum of squares, batch 1,
# column layout: x (1, 1), w1 (6, 1), b1 (6, 1), wk (6, 6), bk (6, 1), w6 (1, 6), b6 (1, 1)


def w2_value_and_grad(w1, b1, w2, b2, w3, b3, w4, b4, w5, b5, w6, b6, x, y):
    h1 = w1.dot(x)
    h1 += b1
    np.maximum(h1, _ZERO, out=h1)
    h2 = w2.dot(h1)
    h2 += b2
    np.maximum(h2, _ZERO, out=h2)
    h3 = w3.dot(h2)
    h3 += b3
    np.maximum(h3, _ZERO, out=h3)
    h4 = w4.dot(h3)
    h4 += b4
    np.maximum(h4, _ZERO, out=h4)
    h5 = w5.dot(h4)
    h5 += b5
    np.maximum(h5, _ZERO, out=h5)
    r = w6.dot(h5)
    r += b6
    r -= y  # residual (1, 1)
    v = r.item()
    d = r + r  # d loss / d prediction = 2 r
    g_w6 = d.dot(h5.T)
    g_z5 = w6.T.dot(d)
    g_z5 *= np.sign(h5)  # relu': 1 where h > 0 (h >= 0), as float
    g_w5 = g_z5.dot(h4.T)
    g_z4 = w5.T.dot(g_z5)
    g_z4 *= np.sign(h4)
    g_w4 = g_z4.dot(h3.T)
    g_z3 = w4.T.dot(g_z4)
    g_z3 *= np.sign(h3)
    g_w3 = g_z3.dot(h2.T)
    g_z2 = w3.T.dot(g_z3)
    g_z2 *= np.sign(h2)
    g_w2 = g_z2.dot(h1.T)
    g_z1 = w2.T.dot(g_z2)
    g_z1 *= np.sign(h1)
    g_w1 = g_z1 * x  # (6, 1) times the (1, 1) input: the outer product
    return v * v, {
        "w1": g_w1, "b1": g_z1, "w2": g_w2, "b2": g_z2, "w3": g_w3, "b3": g_z3,
        "w4": g_w4, "b4": g_z4, "w5": g_w5, "b5": g_z5, "w6": g_w6, "b6": d,
    }


UNROLLED = {"W1": w1_value_and_grad, "W2": w2_value_and_grad}


# ---------------------------------------------------------------------------
# The generic loop (W3-W5)


def mlp_value_and_grad_lists(ws, bs, x, y, act="tanh", loss="mse", layout="row"):
    """An MLP with activation ``act`` on hidden layers and a linear output.

    ws, bs: lists of weights and biases (layer 1 first). loss: "mse" (mean
    of squared error), "sse" (sum), "ce" (softmax cross-entropy with integer
    labels ``y``, averaged over the batch). layout: "row" (x is [batch, n])
    or "column" (x is [n, batch]). Returns (loss, weight grads, bias grads).
    """
    row = layout == "row"
    depth = len(ws)
    last = depth - 1
    hs = [x]
    h = x
    for k in range(depth):
        z = h @ ws[k] if row else ws[k] @ h
        z += bs[k]
        if k < last:
            if act == "tanh":
                np.tanh(z, out=z)
            elif act == "relu":
                np.maximum(z, 0.0, out=z)
            elif act == "sigmoid":
                np.negative(z, out=z)
                np.exp(z, out=z)
                z += 1.0
                np.reciprocal(z, out=z)
            else:
                raise ValueError(act)
        hs.append(z)
        h = z
    out = h  # ours: updated in place below
    if loss == "ce":
        if not row:
            raise ValueError("ce: row layout only")
        n = out.shape[0]
        out -= out.max(axis=1, keepdims=True)
        e = np.exp(out)
        s = e.sum(axis=1, keepdims=True)
        rows, idx = np.arange(n), y.astype(np.intp)
        # -mean(log softmax at the label) = mean(log s - shifted logit at the label)
        value = (np.log(s).sum() - out[rows, idx].sum()) / n
        s *= n
        e /= s  # softmax / n
        e[rows, idx] -= 1.0 / n
        d = e
    else:
        out -= y
        r = out
        value = np.vdot(r, r)
        if loss == "mse":
            value = value / r.size
            r *= 2.0 / r.size
        else:
            r += r
        d = r
    gws, gbs = [None] * depth, [None] * depth
    for k in range(last, -1, -1):
        hp = hs[k]
        if row:
            gws[k] = hp.T @ d
            gbs[k] = d.sum(axis=0) if d.shape[0] > 1 else d[0]
        else:
            gws[k] = d @ hp.T
            gbs[k] = d.sum(axis=1, keepdims=True) if d.shape[1] > 1 else d
        if k > 0:
            dh = d @ ws[k].T if row else ws[k].T @ d
            # hp (the activation of layer k) is dead now: derivatives in place
            if act == "tanh":  # dh * (1 - h*h) = dh - h*h*dh
                hp *= hp
                hp *= dh
                dh -= hp
            elif act == "relu":
                dh *= hp > 0
            else:  # sigmoid: h (1 - h)
                hp -= hp * hp
                dh *= hp
            d = dh
        # free each activation as it dies (as bpc's del does): freeing them
        # all at return leaves a large free chunk at the heap's top, which
        # glibc trims, and the next call faults its pages back in
        hs[k] = hp = None
    return value, gws, gbs


def lists_of(params, depth):
    return [params[f"w{k}"] for k in range(1, depth + 1)], [params[f"b{k}"] for k in range(1, depth + 1)]


def mlp_value_and_grad(params, x, y, depth, act="sigmoid", loss="mse", layout="row"):
    """``mlp_value_and_grad_lists`` with bpc's names: (loss, {"w1": ..., "b1": ...})."""
    ws, bs = lists_of(params, depth)
    value, gws, gbs = mlp_value_and_grad_lists(ws, bs, x, y, act, loss, layout)
    grads = {}
    for k in range(depth):
        grads[f"w{k + 1}"], grads[f"b{k + 1}"] = gws[k], gbs[k]
    return value, grads


def mlp_forward(params, x, y, depth, act="sigmoid", loss="mse", layout="row"):
    row = layout == "row"
    h = x
    for k in range(1, depth + 1):
        w, b = params[f"w{k}"], params[f"b{k}"]
        z = h @ w if row else w @ h
        z += b
        if k < depth:
            if act == "tanh":
                np.tanh(z, out=z)
            elif act == "relu":
                np.maximum(z, 0.0, out=z)
            else:
                z = 1.0 / (1.0 + np.exp(-z))
        h = z
    if loss == "ce":
        h -= h.max(axis=1, keepdims=True)
        s = np.exp(h).sum(axis=1, keepdims=True)
        return (np.log(s).sum() - h[np.arange(h.shape[0]), y.astype(np.intp)].sum()) / h.shape[0]
    h -= y
    v = np.vdot(h, h)
    return v / h.size if loss == "mse" else v
