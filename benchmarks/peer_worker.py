"""One peer framework in its own process, timed on request over a pipe.

    <peer-python> benchmarks/peer_worker.py PEER     # PEER: jax | torch | torchfunc | autograd

Run by benchmarks/run.py with the interpreter given by ``--peer-python`` (the
peers live in their own environment; bpc never depends on them). Protocol:
one JSON object per line on stdin, one JSON reply per line on stdout (anything
the libraries print goes to stderr). The first reply, unasked, is
``{"ok": true, "info": {...}}`` (versions, threads) or ``{"ok": false, ...}``.

- ``{"cmd": "setup", "workload": {...}, "data": "in.npz", "grads": "out.npz"}``:
  read params (``w1, b1, ...``), ``x`` and ``y`` written by the main process
  (the same arrays bpc gets), build the peer's value_and_grad, call it once,
  write its gradients to ``grads`` and reply ``{"ok": true, "loss": ...}``.
- ``{"cmd": "time", "budget": 0.2}``: ``{"ok": true, "seconds": per call}``.
- ``{"cmd": "quit"}``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from workloads import Workload, per_call  # noqa: E402

NAMES = {"jax": "JAX jit", "torch": "torch eager", "torchfunc": "torch.func", "autograd": "autograd"}


def _info(peer):
    info = {
        "peer": peer,
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "cpus": os.cpu_count(),
        "env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "XLA_FLAGS") if k in os.environ},
    }
    if peer in ("torch", "torchfunc"):
        import torch

        info["version"] = torch.__version__
        info["threads"] = f"torch {torch.get_num_threads()} intra-op, {torch.get_num_interop_threads()} inter-op"
    elif peer == "jax":
        import jax

        jax.config.update("jax_enable_x64", True)
        info["version"] = jax.__version__
        info["threads"] = f"XLA CPU, {jax.device_count()} device(s), default thread pool"
    elif peer == "autograd":
        import autograd

        info["version"] = getattr(autograd, "__version__", "?")
        info["threads"] = "NumPy's BLAS (default threads)"
    else:
        raise ValueError(f"unknown peer {peer!r}")
    return info


def build(peer, w: Workload, params, x, y):
    """A zero-argument callable computing (loss, grads) and a function that
    turns its result into (float loss, {name: np.ndarray})."""
    depth, row = w.depth, w.layout == "row"
    names = [f"{p}{k}" for k in range(1, depth + 1) for p in ("w", "b")]
    labels = y.astype(np.int64) if w.loss == "ce" else None

    if peer == "jax":
        import jax
        import jax.numpy as jnp

        jp = {k: jnp.asarray(params[k]) for k in names}
        jx, jy = jnp.asarray(x), jnp.asarray(labels if labels is not None else y)
        act = {"sigmoid": jax.nn.sigmoid, "tanh": jnp.tanh, "relu": jax.nn.relu}[w.act]

        def loss(p):
            h = jx
            for k in range(1, depth + 1):
                h = h @ p[f"w{k}"] + p[f"b{k}"] if row else p[f"w{k}"] @ h + p[f"b{k}"]
                if k < depth:
                    h = act(h)
            if w.loss == "ce":
                logp = jax.nn.log_softmax(h, axis=1)
                return -jnp.mean(logp[jnp.arange(h.shape[0]), jy])
            r = h - jy
            return jnp.mean(r * r) if w.loss == "mse" else jnp.sum(r * r)

        f = jax.jit(jax.value_and_grad(loss))
        call = lambda: jax.block_until_ready(f(jp))  # noqa: E731
        return call, lambda out: (float(out[0]), {k: np.asarray(v) for k, v in out[1].items()})

    if peer in ("torch", "torchfunc"):
        import torch

        tx, ty = torch.from_numpy(x), torch.from_numpy(labels if labels is not None else y)
        act = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}[w.act]

        def loss(p):
            h = tx
            for k in range(1, depth + 1):
                h = h @ p[f"w{k}"] + p[f"b{k}"] if row else p[f"w{k}"] @ h + p[f"b{k}"]
                if k < depth:
                    h = act(h)
            if w.loss == "ce":
                return torch.nn.functional.cross_entropy(h, ty)
            r = h - ty
            return (r * r).mean() if w.loss == "mse" else (r * r).sum()

        if peer == "torch":
            tp = {k: torch.from_numpy(params[k].copy()).requires_grad_(True) for k in names}

            def call():
                for t in tp.values():
                    t.grad = None
                value = loss(tp)
                value.backward()
                return value

            return call, lambda value: (float(value), {k: t.grad.numpy() for k, t in tp.items()})
        from torch.func import grad_and_value

        plain = {k: torch.from_numpy(params[k].copy()) for k in names}
        gv = grad_and_value(loss)
        return (lambda: gv(plain)), lambda out: (float(out[1]), {k: v.numpy() for k, v in out[0].items()})

    if peer == "autograd":
        import autograd
        import autograd.numpy as anp

        onehot = np.eye(w.sizes[-1], dtype=x.dtype)[labels] if labels is not None else None

        def act(v):
            if w.act == "tanh":
                return anp.tanh(v)
            if w.act == "relu":
                return anp.maximum(v, 0.0)
            return 1.0 / (1.0 + anp.exp(-v))

        def loss(p):
            h = x
            for k in range(1, depth + 1):
                h = anp.dot(h, p[f"w{k}"]) + p[f"b{k}"] if row else anp.dot(p[f"w{k}"], h) + p[f"b{k}"]
                if k < depth:
                    h = act(h)
            if w.loss == "ce":
                m = anp.max(h, axis=1, keepdims=True)
                logp = h - m - anp.log(anp.sum(anp.exp(h - m), axis=1, keepdims=True))
                return -anp.mean(anp.sum(logp * onehot, axis=1))
            r = h - y
            return anp.mean(r * r) if w.loss == "mse" else anp.sum(r * r)

        ap = {k: params[k] for k in names}
        f = autograd.value_and_grad(loss)
        return (lambda: f(ap)), lambda out: (float(out[0]), {k: np.asarray(v) for k, v in out[1].items()})
    raise ValueError(peer)


def main(argv=None) -> int:
    peer = (argv or sys.argv[1:])[0]
    reply_fd = os.dup(1)
    os.dup2(2, 1)  # library chatter to stderr; replies on the saved stdout
    reply = os.fdopen(reply_fd, "w", buffering=1)

    def send(obj):
        reply.write(json.dumps(obj) + "\n")
        reply.flush()

    try:
        send({"ok": True, "info": _info(peer)})
    except Exception as e:  # not importable: the harness skips this peer
        send({"ok": False, "error": f"{type(e).__name__}: {e}"})
        return 0
    call = None
    for line in sys.stdin:
        msg = json.loads(line)
        try:
            if msg["cmd"] == "quit":
                break
            if msg["cmd"] == "setup":
                call = None
                w = Workload(**msg["workload"])
                with np.load(msg["data"]) as z:
                    arrays = {k: z[k] for k in z.files}
                x, y = arrays.pop("x"), arrays.pop("y")
                call, unpack = build(peer, w, arrays, x, y)
                value, grads = unpack(call())
                np.savez(msg["grads"], **grads)
                send({"ok": True, "loss": value})
            elif msg["cmd"] == "time":
                send({"ok": True, "seconds": per_call(call, float(msg["budget"]))})
            else:
                send({"ok": False, "error": f"unknown command {msg['cmd']!r}"})
        except Exception as e:
            send({"ok": False, "error": f"{type(e).__name__}: {e}"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
