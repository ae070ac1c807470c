"""Lowering: a validated :class:`Spec` to the forward IR graph.

Checks the meaning of the spec on the way (names are valid and unique, every
reference resolves, no cycles, shapes fit, the loss has one element, ``wrt``
names exist and the loss depends on them), each error naming its spec location.
"""

from __future__ import annotations

from collections.abc import Sequence

import hashlib
import math
from dataclasses import dataclass

import networkx as nx

from . import expr
from .errors import GraphError, SpecError, path
from .ir import MAX_ELEMENTS, Graph
from .program import ModuleInfo, Program, forward_entry
from .names import module_name_from_file
from .ops.registry import INT, all_ops, get_op, is_float
from .spec import (
    MLP,
    Initializer,
    OpNode,
    Spec,
    TensorDecl,
    check_name,
    literal_array,
)

MAX_NODES = 100_000
MAX_RANK = 8

DEFAULT_INIT = Initializer(kind="normal", std=0.1)


@dataclass
class _Item:
    """One computation node of the spec, before lowering."""

    where: str
    name: str
    refs: list[tuple[str, str]]  # (name, location of the reference)
    op: OpNode | None = None
    parsed: expr.Parsed | None = None
    text: str = ""


_INFIX = {"add": "+", "sub": "-", "mul": "*", "div": "/", "matmul": "@"}


def op_node_text(n: OpNode) -> str:
    """An op node as a readable statement (for comments and dumps)."""
    if n.op in _INFIX and len(n.inputs) == 2 and not n.attrs:
        return f"{n.name} = {n.inputs[0]} {_INFIX[n.op]} {n.inputs[1]}"
    args = list(n.inputs) + [f"{k}={v!r}" for k, v in sorted(n.attrs.items())]
    return f"{n.name} = {n.op}({', '.join(args)})"


def module_name(spec: Spec, spec_path: str | None) -> str:
    """The module name: the spec's ``name`` (or ``--name``), else the file's stem.

    Either follows the name rule of :mod:`compiler.names` (the module is written
    to ``<name>.py``); a file name that breaks it is an error suggesting
    ``--name``. A spec compiled from memory (no file) is ``model``.
    """
    if spec.name is not None:
        return check_name(spec.name, "name")
    if not spec_path or (spec_path.startswith("<") and spec_path.endswith(">")):
        return "model"
    return module_name_from_file(spec_path)


LOSS_KINDS = ("sse", "mse", "softmax_cross_entropy", "bce")  # the mlp shorthand's losses (and --loss of ONNX)


def loss_expression(kind: str, h: str, t: str, row: bool = True, labels: str = "index") -> str:
    """The loss ``kind`` of prediction ``h`` against target ``t``, as expression text.

    Row layout: ``t`` has ``h``'s shape, or for ``softmax_cross_entropy`` with
    index labels, ``h``'s shape without the class axis (last). Column layout:
    the class axis is the first.
    """
    if kind == "sse":
        return f"sum(({h} - {t}) ** 2)"
    if kind == "mse":
        return f"mean(({h} - {t}) ** 2)"
    if kind == "bce":
        return f"bce_with_logits({h}, {t})"
    if kind != "softmax_cross_entropy":
        raise SpecError(f"unknown loss {kind!r} (expected {', '.join(LOSS_KINDS)})", "loss")
    if row:
        return f"softmax_cross_entropy({h}, {t})"
    if labels == "index":
        return f"softmax_cross_entropy({h}.T, {t})"
    return f"softmax_cross_entropy({h}, {t}, axis=0)"


def expand_mlp(m: MLP) -> tuple[list[TensorDecl], list[TensorDecl], list[tuple[str, str]], str]:
    """The mlp shorthand as ordinary inputs, params and expression nodes.

    Returns inputs, params, (expression, source label) pairs and the loss name.
    """
    row = m.layout == "row"
    n = m.sizes
    classes = None
    if m.loss == "softmax_cross_entropy" and m.labels == "index":
        target_shape, classes = [m.batch], n[-1]
    else:
        target_shape = [m.batch, n[-1]] if row else [n[-1], m.batch]
    inputs = [
        TensorDecl(name=m.input, shape=[m.batch, n[0]] if row else [n[0], m.batch]),
        TensorDecl(name=m.target, shape=target_shape, classes=classes),
    ]
    params: list[TensorDecl] = []
    nodes: list[tuple[str, str]] = []
    h = m.input
    depth = len(n) - 1
    for k in range(1, depth + 1):
        w, b = f"{m.weight_prefix}{k}", f"{m.bias_prefix}{k}"
        params.append(
            TensorDecl(name=w, shape=[n[k - 1], n[k]] if row else [n[k], n[k - 1]], init=m.init)
        )
        last = k == depth
        act = m.output_activation if last else m.activation
        z = "prediction" if last and act == "linear" else f"z{k}"
        affine = f"{h} @ {w}" if row else f"{w} @ {h}"
        if m.bias:
            params.append(
                TensorDecl(name=b, shape=[n[k]] if row else [n[k], 1], init=Initializer(kind="zeros"))
            )
            affine += f" + {b}"
        where = f"mlp (layer {k})"
        nodes.append((f"{z} = {affine}", where))
        h = z
        if act != "linear":
            h = "prediction" if last else f"h{k}"
            nodes.append((f"{h} = {act}({z})", f"mlp (layer {k} activation)"))
    loss = loss_expression(m.loss, h, m.target, row, m.labels)
    nodes.append((f"loss = {loss}", "mlp (loss)"))
    return inputs, params, nodes, "loss"


def lower(
    spec: Spec,
    spec_path: str | None = None,
    spec_text: str | None = None,
    dtype: str = "f64",
    node_sources: Sequence[tuple[str, str]] = (),
) -> Program:
    """The forward program of a spec; values compute in ``dtype`` (``f64``/``f32``).

    ``node_sources`` (from a front end) gives, for each of ``spec.nodes``, the
    location and text it came from (``net.py:12``, the Python line): they
    replace ``nodes[i]`` in messages and the generated module's comments.
    """
    info = ModuleInfo(
        name=module_name(spec, spec_path),
        spec_path=spec_path or "<memory>",
        spec_sha256=hashlib.sha256((spec_text or spec.model_dump_json()).encode()).hexdigest(),
        description=spec.description,
        seed=spec.seed,
    )
    g = Graph(dtype)

    inputs = [(d, path("inputs", i)) for i, d in enumerate(spec.inputs)]
    params = [(d, path("params", i)) for i, d in enumerate(spec.params)]
    raw_nodes: list[tuple[object, str]] = []
    loss = spec.loss
    if spec.mlp is not None:
        for act, key in ((spec.mlp.activation, "activation"), (spec.mlp.output_activation, "output_activation")):
            if act != "linear":
                op = all_ops().get(act)
                if op is None or not op.public or op.arity != 1 or op.category != "elementwise":
                    raise SpecError(f"unknown activation '{act}'", path("mlp", key))
        mi, mp, mn, mloss = expand_mlp(spec.mlp)
        inputs += [(d, "mlp") for d in mi]
        params += [(d, "mlp") for d in mp]
        raw_nodes += mn
        loss = loss or mloss
    raw_nodes += [(n, node_sources[i][0] if node_sources else path("nodes", i)) for i, n in enumerate(spec.nodes)]
    shown_text = {where: text for where, text in node_sources}
    if len(raw_nodes) > MAX_NODES:
        raise SpecError(f"more than {MAX_NODES} nodes", "nodes")

    # ---- declarations: names valid and unique
    declared: dict[str, str] = {}

    def declare(name: str, where: str) -> None:
        check_name(name, where)
        if name in declared:
            raise SpecError(f"duplicate name '{name}' (first declared at {declared[name]})", where)
        declared[name] = where

    for d, where in inputs + params:
        declare(d.name, f"{where}.name" if where != "mlp" else where)
    items: list[_Item] = []
    for n, where in raw_nodes:
        if isinstance(n, str):
            parsed = expr.parse(n, where)
            declare(parsed.target, where)
            refs = [(name, f"{where}, column {col}") for name, col in parsed.names]
            items.append(_Item(where, parsed.target, refs, parsed=parsed, text=n))
        else:
            declare(n.name, f"{where}.name" if where != "mlp" else where)
            if n.op not in all_ops() or not all_ops()[n.op].public:
                try:
                    get_op(n.op)
                except SpecError as e:
                    raise SpecError(e.message, f"{where}.op") from None
                raise SpecError(f"op '{n.op}' is internal and cannot be used in specs", f"{where}.op")
            refs = [(name, f"{where}.inputs[{j}]") for j, name in enumerate(n.inputs)]
            items.append(_Item(where, n.name, refs, op=n))
    for it in items:
        for name, where in it.refs:
            if name not in declared:
                raise SpecError(f"unknown name '{name}'", where)

    # ---- order the computation; report cycles
    dep = nx.DiGraph()
    by_name = {it.name: i for i, it in enumerate(items)}
    dep.add_nodes_from(range(len(items)))
    for i, it in enumerate(items):
        for name, _ in it.refs:
            if name in by_name:
                dep.add_edge(by_name[name], i)
    try:
        order = list(nx.lexicographical_topological_sort(dep))
    except nx.NetworkXUnfeasible:
        cycle = nx.find_cycle(dep)
        first = min(u for u, _ in cycle)
        names = " -> ".join(items[u].name for u, _ in cycle) + f" -> {items[cycle[0][0]].name}"
        raise GraphError(f"cycle: {names}", items[first].where) from None

    # ---- sources
    for role, decls in (("input", inputs), ("param", params)):
        for d, where in decls:
            shape = tuple(d.shape)
            if len(shape) > MAX_RANK:
                raise SpecError(f"more than {MAX_RANK} dimensions", f"{where}.shape")
            static = [x for x in shape if isinstance(x, int)]
            if math.prod(static) > MAX_ELEMENTS:
                raise SpecError(f"more than {MAX_ELEMENTS} elements", f"{where}.shape")
            symbolic = [x for x in shape if not isinstance(x, int)]
            if symbolic and role == "param":
                raise SpecError(
                    f"params need fixed sizes; symbolic dim '{symbolic[0]}' is for inputs",
                    f"{where}.shape",
                )
            if symbolic and d.value is not None:
                raise SpecError("an input with a symbolic dim cannot have a value", f"{where}.value")
            for x in symbolic:
                info.dims.setdefault(x, spec.dims.get(x, 1))
            with g.context(source=where):
                # Class labels are integers; everything else computes in floats.
                dtype = INT if d.classes is not None and role == "input" else None
                g.add(role, [], {"shape": shape}, name=d.name, named=True, dtype=dtype)
            (g.inputs if role == "input" else g.params).append(d.name)
            if d.doc:
                info.docs[d.name] = d.doc
            if d.classes is not None:
                if role == "param":
                    raise SpecError("params cannot hold class labels", f"{where}.classes")
                info.classes[d.name] = d.classes
            if d.value is not None:
                if d.init is not None:
                    raise SpecError("give either 'value' or 'init', not both", where)
                info.values[d.name] = literal_array(d.value, shape, f"{where}.value")
            elif role == "param":
                info.inits[d.name] = d.init or DEFAULT_INIT
            elif d.init is not None:
                raise SpecError("inputs take 'value', not 'init'", f"{where}.init")

    # ---- computation
    for i in order:
        it = items[i]
        with g.context(source=it.where):
            if it.where in shown_text:  # a front end's source line (Python)
                info.source_text[it.where] = shown_text[it.where]
            elif it.op is None:
                info.source_text[it.where] = it.text
            else:  # an op node's doc (an ONNX node's origin) follows its text in comments
                info.source_text[it.where] = op_node_text(it.op) + (f"  # {it.op.doc}" if it.op.doc else "")
            if it.parsed is not None:
                expr.lower(it.parsed, g, it.where)
            else:
                g.add(it.op.op, it.op.inputs, it.op.attrs, name=it.name, named=True)
                if it.op.doc:
                    info.docs[it.name] = it.op.doc

    # ---- roles
    if loss is None:
        raise SpecError("missing required key 'loss' (the name of the loss value)", "spec")
    check_name(loss, "loss")
    if loss not in g:
        raise SpecError(f"unknown name '{loss}'", "loss")
    if not all(isinstance(x, int) for x in g.shape(loss)) or math.prod(g.shape(loss)) != 1:
        raise GraphError(
            f"the loss must have exactly one element, '{loss}' has shape {list(g.shape(loss))}",
            "loss",
        )
    if not is_float(g.dtype(loss)):
        raise GraphError(f"the loss must be a float value, '{loss}' is {_kind(g.dtype(loss))}", "loss")
    # Declared label inputs must match the classes of the one-hot they feed.
    for name, classes in info.classes.items():
        for user, _ in g.users(name):
            if g.op(user) == "one_hot" and g.attrs(user)["num_classes"] != classes:
                where = next((w for d, w in inputs if d.name == name), "inputs")
                raise SpecError(
                    f"'{name}' declares {classes} classes but feeds "
                    f"{g.attrs(user)['num_classes']}-class logits",
                    f"{where}.classes" if where != "mlp" else where,
                )
    for k in spec.dims:
        if k not in info.dims:
            raise SpecError(f"no input has a dim named '{k}'", path("dims", k))
    g.set_result("loss", loss)
    for i, o in enumerate(spec.outputs):
        check_name(o, path("outputs", i))
        if o not in g:
            raise SpecError(f"unknown name '{o}'", path("outputs", i))
        if o in g.outputs or o == loss:
            raise SpecError(f"'{o}' is already an output", path("outputs", i))
        g.set_result(f"outputs.{o}", o)
    depends = g.ancestors([loss])
    # Default: every param (as autograd and JAX do, a param the loss does not
    # use has a zero gradient: an SGD loop over init_params() never misses one).
    wrt = spec.wrt if spec.wrt is not None else list(g.params)
    if not wrt:
        raise SpecError("nothing to differentiate: no params and no 'wrt'", "wrt")
    seen: set[str] = set()
    ids: list[str] = []
    by_printed: dict[str, str] | None = None
    for i, name in enumerate(wrt):
        where = path("wrt", i)
        check_name(name, where)
        w = name
        if w not in g:
            # A value the compiler made, by the name bpc ir prints for it.
            if by_printed is None:
                by_printed = {v: k for k, v in g.names().items() if k not in declared}
            if w not in by_printed:
                raise SpecError(f"unknown name '{w}'", where)
            w = by_printed[w]
        if w in seen:
            raise SpecError(f"'{name}' is listed twice", where)
        if not is_float(g.dtype(w)):
            raise GraphError(f"'{name}' is {_kind(g.dtype(w))}: it has no gradient", where)
        seen.add(w)
        ids.append(w)
    return Program(g, info, tuple(ids), (forward_entry(g),))


def _kind(dtype: str) -> str:
    return {"bool": "a bool value (a comparison)", "i64": "an integer value (labels)"}.get(dtype, dtype)
