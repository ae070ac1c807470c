"""Data-parallel gradients on Dask: ``bpc.distributed.value_and_grad``.

The batch is split into chunks along ``batch_axis``; each chunk runs the
generated ``value_and_grad`` where its data lives (one Dask task per chunk,
on a ``distributed`` cluster or the threaded scheduler), and the per-chunk
losses and gradients are added in a tree reduction::

    import bpc, bpc.distributed, dask.array as da
    m = bpc.compile("examples/mnist_mlp.json")
    x = da.from_array(x_np, chunks=(10_000, 784))
    loss, grads = bpc.distributed.value_and_grad(m, m.init_params(), {"x": x, "y": y})

Combining chunks needs to know how the loss reduces over the batch: a **sum**
of per-row terms adds up (``L = sum_k L_k``), a **mean** is weighted by rows
(``L = sum_k n_k L_k / N``). Nothing is guessed: for a ``bpc.Program`` the
kind is derived from its IR (:func:`batch_reduction`), and anything that is
neither (a loss that mixes rows, a max over the batch, a sum of rows plus a
regulariser, a gradient of a per-row value) is refused with a ``BpcError``
that says why. A plain generated module has no IR: pass
``reduction="mean"`` or ``"sum"`` for it, your word for what the loss does.

Dask and distributed are the ``bpc[dask]`` extra; importing this module does
not need them (``batch_reduction`` works without).
"""

from __future__ import annotations

import hashlib
import inspect
import math
import types
from typing import Any

import numpy as np

from .compiler.errors import BpcError
from .compiler.ops.registry import sum_to_axes
from .runtime.loader import load_source

__all__ = ["batch_reduction", "value_and_grad"]

# ------------------------------------------------------------------ the analysis

MIXED = "mixed"  # the value combines rows of the batch (not row-wise)

# Ops that act element by element on broadcast operands: a row of the result
# depends on the same row of each operand.
ELEMENTWISE = frozenset(
    {
        "neg", "exp", "log", "square", "pow_const", "sigmoid", "tanh", "relu", "step", "add", "sub",
        "mul", "div", "identity", "stop_gradient", "log1p", "sqrt", "abs", "sign", "sin", "cos", "gt",
        "ge", "lt", "le", "eq", "where", "maximum", "minimum", "pow", "cast", "leaky_relu", "elu",
        "softplus", "zeros_like", "broadcast_like", "const",
    }
)  # fmt: skip
# Ops linear in their first operand: a sum (or mean) over the batch stays one
# through them (with the other operands free of the batch).
LINEAR = frozenset({"neg", "identity", "stop_gradient", "reshape", "transpose", "sum", "mean", "sum_to",
                    "broadcast_to", "broadcast_like", "slice", "cast"})  # fmt: skip


class _Batch:
    """Where the batch axis is in each value of a forward graph."""

    def __init__(self, g, batch_inputs: list[str], batch_axis: int):
        self.g = g
        dims = set()
        for name in batch_inputs:
            shape = g.shape(name)
            if not -len(shape) <= batch_axis < len(shape):
                raise BpcError(f"input '{name}' of shape {shape} has no axis {batch_axis}", "batch_axis")
            d = shape[batch_axis]
            if not isinstance(d, str):
                raise BpcError(
                    f"input '{name}' has the fixed size {d} on axis {batch_axis}: give it a symbolic "
                    "batch dim (e.g. \"batch\") so the module runs on chunks of any size",
                    "data",
                )
            dims.add(d)
        if len(dims) != 1:
            raise BpcError(f"the data inputs split along different dims {sorted(dims)}", "data")
        self.dim = dims.pop()
        self.ax: dict[str, Any] = {}
        for n in g.topo(g.ancestors([g.loss])):
            self.ax[n] = self._axis(n, batch_inputs, batch_axis)

    def _axis(self, n: str, batch_inputs, batch_axis):
        g = self.g
        op, shape = g.op(n), tuple(g.shape(n))
        if op == "input" and n in batch_inputs:
            return batch_axis % len(shape)
        if op in ("input", "param"):
            if self.dim in shape:
                raise BpcError(f"input '{n}' has the batch dim '{self.dim}' but is not in data", "data")
            return None
        args = g.args(n)
        axes = [self.ax[a] for a in args]
        if MIXED in axes:
            return MIXED
        if any(isinstance(a, tuple) for a in axes):
            if any(isinstance(a, int) for a in axes):
                return MIXED  # a batch statistic back on the rows (z - mean(z, axis=0))
            return ("after",)  # past a reduction over the batch: see _kind
        if all(a is None for a in axes):
            # No data in it, but it may still have the batch's size (a
            # broadcast of a constant): then each of its rows is the same.
            hits = [i for i, d in enumerate(shape) if d == self.dim]
            if len(hits) > 1:
                return MIXED
            return hits[0] if hits else None
        return self._rule(n, op, shape, args, axes)

    def _rule(self, n, op, shape, args, axes):
        g, r = self.g, len(shape)
        attrs = g.attrs(n)
        if op in ELEMENTWISE:
            out = {a + r - len(g.shape(x)) for x, a in zip(args, axes) if a is not None}
            return out.pop() if len(out) == 1 else MIXED
        if op == "matmul":
            (a, b), (sa, sb) = axes, (g.shape(args[0]), g.shape(args[1]))
            outs = set()
            if a is not None:
                if len(sa) < 2 or a == len(sa) - 1:
                    return MIXED  # contracted
                outs.add(r - 2 if a == len(sa) - 2 else a + r - len(sa))
            if b is not None:
                if len(sb) < 2 or b == len(sb) - 2:
                    return MIXED
                outs.add(r - 1 if b == len(sb) - 1 else b + r - len(sb))
            if len(outs) != 1:
                return MIXED
            out = outs.pop()
            if a is not None and b is not None and out >= r - 2:
                return MIXED  # rows of a against rows of b
            return out
        (x,) = axes[:1]
        if op == "one_hot":  # a new last axis: the classes
            return x
        if op in ("sum", "mean", "max", "min"):
            nd = len(g.shape(args[0]))
            red = range(nd) if attrs["axis"] is None else [a % nd for a in np.atleast_1d(attrs["axis"])]
            if x in red:
                return ("reduced", op)
            return x if attrs["keepdims"] else x - sum(1 for a in red if a < x)
        if op == "sum_to":
            lead, kept = sum_to_axes(tuple(g.shape(args[0])), shape)
            if x in lead or x in kept:
                return ("reduced", "sum")
            return x - len(lead)
        if op == "broadcast_to":
            return x + r - len(g.shape(args[0]))
        if op == "reshape":
            src = tuple(g.shape(args[0]))
            return x if src[: x + 1] == shape[: x + 1] else MIXED
        if op == "transpose":
            nd = len(g.shape(args[0]))
            perm = list(range(nd))[::-1] if attrs["axes"] is None else list(attrs["axes"])
            return perm.index(x)
        if op == "slice":
            index = list(attrs["index"])
            if x < len(index):
                item = index[x]
                if isinstance(item, int) or tuple(item) not in ((None, None),):
                    return MIXED
            return x - sum(1 for i in index[:x] if isinstance(i, int))
        if op == "pad":
            return x if tuple(attrs["widths"][x]) == (0, 0) else MIXED
        if op in ("concat", "stack"):
            known = {a for a in axes if a is not None}
            if len(known) != 1:
                return MIXED
            x = known.pop()
            axis = attrs["axis"] % (r if op == "stack" else len(g.shape(args[0])))
            if op == "concat":
                return MIXED if axis == x else x
            return x + 1 if axis <= x else x
        if op == "count":
            nd = len(g.shape(args[0]))
            counted = [a % nd for a in attrs["axis"]]
            return ("count",) if counted == [x] else MIXED
        return MIXED


def _kind(b: _Batch, n: str, memo: dict) -> str:
    """"free" (no batch in it), "sum" or "mean" (over rows), or raise."""
    if n in memo:
        return memo[n]
    g = b.g
    ax, op = b.ax[n], g.op(n)
    name = g.names().get(n, n)
    if ax is None:
        out = "free"
    elif ax == MIXED:
        raise BpcError(f"'{name}' ({op}) combines rows of the batch: the loss is not a sum or mean of per-row terms", "loss")
    elif isinstance(ax, int):
        raise BpcError(f"'{name}' keeps the batch axis: the loss must reduce it (sum or mean)", "loss")
    elif ax[0] == "reduced":
        if ax[1] not in ("sum", "mean"):
            raise BpcError(f"'{name}' is a {ax[1]} over the batch: only sums and means split into chunks", "loss")
        out = ax[1]
    elif ax[0] == "count":
        out = "count"
    else:
        out = _combine(b, n, op, [_kind(b, a, memo) for a in g.args(n)], name)
    memo[n] = out
    return out


def _combine(b: _Batch, n: str, op: str, kinds: list[str], name: str) -> str:
    def refuse(why: str):
        raise BpcError(f"'{name}' = {op} of {', '.join(kinds)} over the batch: {why}", "loss")

    batch = [k for k in kinds if k != "free"]
    if op in ("add", "sub"):
        if len(set(batch)) == 1 and (len(batch) == 2 or batch[0] == "mean"):
            return batch[0]  # sum + sum, mean + mean, mean + free (the weights add to 1)
        refuse("a sum over rows plus a term that is not (a regulariser would count once per chunk)")
    if op == "mul" and len(batch) == 1 and batch[0] in ("sum", "mean"):
        return batch[0]
    if op == "div" and kinds[1] == "free" and kinds[0] in ("sum", "mean"):
        return kinds[0]
    if op == "div" and kinds == ["sum", "count"]:
        return "mean"  # sum over rows / number of rows
    if op in LINEAR and len(batch) == 1 and kinds[0] in ("sum", "mean"):
        return kinds[0]
    refuse("not linear in the per-row terms")


def batch_reduction(program: Any, data: list[str] | None = None, batch_axis: int = 0) -> str:
    """``"mean"`` or ``"sum"``: how the loss of ``program`` (a ``bpc.Program``)
    reduces over the batch of the inputs ``data`` (default: every input with a
    symbolic dim on ``batch_axis``), derived from its forward IR. Raises a
    ``BpcError`` saying why when it is neither."""
    from .api import Program

    if not isinstance(program, Program):
        raise BpcError("the batch reduction is derived from a bpc.Program (bpc.compile)", "module")
    g = program.ir("forward").graph
    if data is None:
        data = [i for i in g.inputs if len(g.shape(i)) > batch_axis % max(1, len(g.shape(i))) and isinstance(g.shape(i)[batch_axis], str)]
    unknown = sorted(set(data) - set(g.inputs))
    if unknown:
        raise BpcError(f"'{unknown[0]}' is not an input of the module (inputs: {', '.join(g.inputs)})", "data")
    if not data:
        raise BpcError("no input to split: data is empty", "data")
    b = _Batch(g, list(data), batch_axis)
    for w in program.compiled.forward.wrt:
        if b.ax.get(w) is not None:
            raise BpcError(f"WRT names '{w}', which is split over the batch: its gradient is per chunk", "wrt")
    kind = _kind(b, g.loss, {})
    if kind not in ("sum", "mean"):
        raise BpcError(f"the loss does not depend on the batch (it is {kind})", "loss")
    return kind


# ------------------------------------------------------------------ the computation

_MODULES: dict[str, types.ModuleType] = {}


def _module(source: str, name: str) -> types.ModuleType:
    """The generated module, loaded once per process (workers cache it)."""
    key = hashlib.sha256(source.encode()).hexdigest()
    if key not in _MODULES:
        _MODULES[key] = load_source(source, name)
    return _MODULES[key]


def _chunk(source: str, name: str, weight: str, params: dict, names: tuple, axis: int, *blocks) -> tuple:
    """One chunk: (rows, loss * w, grads * w) with w = rows for a mean loss, else 1."""
    module = _module(source, name)
    data = dict(zip(names, blocks))
    rows = int(blocks[0].shape[axis])
    loss, grads = module.value_and_grad(**params, **data)
    w = rows if weight == "mean" else 1
    return rows, loss * w, {k: v * w for k, v in grads.items()}


def _add(*parts: tuple) -> tuple:
    rows = sum(p[0] for p in parts)
    loss = parts[0][1]
    grads = dict(parts[0][2])
    for p in parts[1:]:
        loss = loss + p[1]
        for k in grads:
            grads[k] = grads[k] + p[2][k]
    return rows, loss, grads


def data_ndim(x: Any) -> int:
    return len(np.shape(x)) if not hasattr(x, "ndim") else x.ndim


def _source(module: Any) -> tuple[str, str]:
    from .api import Program

    if isinstance(module, Program):
        return module.source, module.name
    if isinstance(module, types.ModuleType) and hasattr(module, "value_and_grad") and hasattr(module, "WRT"):
        try:
            return inspect.getsource(module), module.__name__.rsplit(".", 1)[-1]
        except (OSError, TypeError):
            raise BpcError("cannot read the module's source (load it from a file with bpc.load)", "module") from None
    raise BpcError(f"expected a bpc.Program or a generated module, not a {type(module).__name__}", "module")


def value_and_grad(
    module: Any,
    params: dict[str, Any],
    data: dict[str, Any],
    batch_axis: int = 0,
    client: Any = None,
    *,
    reduction: str | None = None,
    chunk_rows: int | None = None,
    split_every: int = 4,
    scheduler: str | None = None,
) -> tuple[Any, dict[str, Any]]:
    """The loss and gradients over the whole batch in ``data``, computed chunk
    by chunk on Dask; equal to ``module.value_and_grad(**params, **data)``.

    ``module``: a ``bpc.Program`` (the loss's batch reduction is derived from
    its IR) or a generated module (give ``reduction="mean"`` or ``"sum"``).
    ``params``: every other argument (params, and inputs not split), sent to
    each chunk once. ``data``: input name -> Dask array, or NumPy array cut
    into chunks of ``chunk_rows`` rows (default: 4 chunks). The chunks of all
    data arrays along ``batch_axis`` are aligned (rechunked to the first's).
    ``client``: a ``distributed.Client`` to compute on (default: the current
    Dask scheduler, ``scheduler`` if given). ``split_every``: partial results
    added per node of the reduction tree.
    """
    try:
        import dask
        import dask.array as da
    except ImportError:
        raise BpcError("bpc.distributed needs Dask: pip install 'bpc[dask]'", "dask") from None
    from .api import Program

    if not isinstance(data, dict) or not data:
        raise BpcError("data must map input names to arrays", "data")
    if split_every < 2:
        raise BpcError("split_every must be at least 2", "split_every")
    if isinstance(module, Program):
        derived = batch_reduction(module, list(data), batch_axis)
        if reduction is not None and reduction != derived:
            raise BpcError(f"reduction={reduction!r}, but the loss is a {derived} over the batch", "reduction")
        reduction = derived
    elif reduction not in ("mean", "sum"):
        raise BpcError(
            "a generated module carries no IR: pass reduction='mean' or 'sum' (how its loss reduces the batch), "
            "or pass the bpc.Program to derive it",
            "reduction",
        )
    source, name = _source(module)
    inputs = dict(getattr(module, "INPUTS", {}))
    missing = sorted(set(inputs) - set(data) - set(params))
    if missing:
        raise BpcError(f"input '{missing[0]}' is in neither data nor params", "data")
    for k in data:
        if k not in inputs:
            raise BpcError(f"'{k}' is not an input of the module (inputs: {', '.join(inputs)})", "data")

    names = tuple(data)
    arrays = {}
    for k in names:
        x = data[k]
        if not isinstance(x, da.Array):
            x = np.asarray(x)
            if x.ndim == 0:
                raise BpcError(f"data '{k}' is a scalar: nothing to split", "data")
            axis = batch_axis % x.ndim
            rows = chunk_rows or max(1, math.ceil(x.shape[axis] / 4))
            x = da.from_array(x, chunks={i: (rows if i == axis else -1) for i in range(x.ndim)})
        arrays[k] = da.moveaxis(x, batch_axis % x.ndim, 0) if batch_axis % x.ndim else x
    first = arrays[names[0]]
    n_rows = first.shape[0]
    for k in names:
        if arrays[k].shape[0] != n_rows:
            raise BpcError(f"data '{k}' has {arrays[k].shape[0]} rows on axis {batch_axis}, '{names[0]}' has {n_rows}", "data")
    chunks = first.chunks[0]
    blocks = []
    for k in names:
        x = arrays[k].rechunk({0: chunks, **{i: -1 for i in range(1, arrays[k].ndim)}})
        blocks.append(x.to_delayed().reshape(-1))
    if batch_axis % first.ndim:
        # the module wants its own layout: move the axis back in each chunk
        blocks = [[dask.delayed(np.moveaxis)(b, 0, batch_axis) for b in col] for col in blocks]

    shared = dask.delayed(params, pure=True)
    chunk = dask.delayed(_chunk, pure=True)
    axis = batch_axis % data_ndim(data[names[0]])
    parts = [chunk(source, name, reduction, shared, names, axis, *col) for col in zip(*blocks)]
    add = dask.delayed(_add, pure=True)
    while len(parts) > 1:
        parts = [add(*parts[i : i + split_every]) if len(parts[i : i + split_every]) > 1 else parts[i] for i in range(0, len(parts), split_every)]
    if client is not None:
        rows, loss, grads = client.compute(parts[0]).result()
    else:
        (rows, loss, grads), = dask.compute(parts[0], scheduler=scheduler)
    if reduction == "mean":
        loss = loss / rows
        grads = {k: v / rows for k, v in grads.items()}
    return loss, grads
