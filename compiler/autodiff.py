"""Reverse-mode differentiation: forward graph -> joint (forward + adjoint) graph.

The pass walks the forward graph in reverse topological order. For each node
that lies on a path from a ``wrt`` value to the loss it

1. sums the cotangent contributions it received from its users (fan-out),
   into one node named ``g_<name>``;
2. applies the op's VJP rule from the registry, which builds ordinary IR nodes
   (phase ``backward``, ``origin`` = the node being differentiated, ``source``
   = its spec location; all three set by the builder context, not by rules);
3. fits each operand's cotangent to the operand's shape (``sum_to`` over
   broadcast axes, ``broadcast_to`` where the rule returned fewer axes).

Only what the outputs depend on *and* what depends on a ``wrt`` value is
differentiated. :func:`vjp` is the transform (graph, outputs, cotangents,
wrt -> graph, gradients); :func:`differentiate` asks it for the gradient of a
program's loss (seed 1) and adds the entry points. The adjoint graph is
ordinary IR, so it can be optimized, printed, and differentiated again.
"""

from __future__ import annotations

from .errors import GraphError
from .ir import BACKWARD, TANGENT, Graph
from .program import Program, gradient_entries
from .ops.registry import V, broadcast, get_op, is_static


def _fit(ct: V, arg: V) -> V:
    """Bring a cotangent to exactly ``arg``'s shape (the adjoint of broadcasting)."""
    shape = arg.shape
    if ct.shape == shape:
        return ct
    full = broadcast(ct.shape, shape)
    if full == shape:
        return ct.broadcast_to(shape, like=arg)
    if full != ct.shape:  # both sides broadcast: rare
        ct = ct.broadcast_to(full) if is_static(full) else ct + arg.apply("zeros_like")
    return ct.sum_to(shape)


def vjp(g: Graph, outputs: list[str], cotangents: list[str], wrt: list[str]) -> tuple[Graph, list[str | None]]:
    """Reverse mode as a pure transform: the vector-Jacobian product.

    Returns a new graph (``g`` plus adjoint nodes) and, for each value in
    ``wrt``, the node holding ``sum_i cotangents[i] * d outputs[i] / d wrt``
    in it; None where no gradient reaches (only piecewise-constant ops in
    between). The cotangents are nodes of ``g`` (a constant seed, or an input
    for a ``vjp`` entry point) shaped like their outputs. ``g`` is unchanged.
    """
    g = g.copy()
    return g, _vjp(g, outputs, cotangents, wrt)


def _vjp(g: Graph, outputs: list[str], cotangents: list[str], wrt: list[str]) -> list[str | None]:
    """:func:`vjp` in place."""
    order = g.topo()
    active = g.ancestors(outputs) & g.descendants(wrt)
    contribs: dict[str, list[V]] = {n: [] for n in active}
    for out, ct in zip(outputs, cotangents, strict=True):
        if g.shape(ct) != g.shape(out):
            raise GraphError(f"the cotangent of '{out}' has shape {g.shape(ct)}, not {g.shape(out)}")
        if out in active:
            contribs[out].append(V(g, ct))

    totals: dict[str, str] = {}
    for n in reversed(order):
        if n not in active or not contribs[n]:
            continue
        d = g.data(n)
        with g.context(phase=BACKWARD, origin=n, source=d["source"]):
            parts = contribs.pop(n)
            total = parts[0]
            for p in parts[1:]:
                total = total + p
                g.data(total.name)["accum"] = True  # codegen may sum in place
            total = _name_total(g, total.name, n)
            totals[n] = total
            opdef = get_op(d["op"])
            args = g.args(n)
            if opdef.vjp is None or not any(a in active for a in args):
                continue
            cts = opdef.vjp(V(g, total), V(g, n), *(V(g, a) for a in args), **d["attrs"])
            for a, ct in zip(args, cts):
                if ct is not None and a in active:
                    contribs[a].append(_fit(ct, V(g, a)))
    # Rules build cotangents for every operand; drop those nothing needs
    # (operands that do not depend on a wrt value). Inputs stay, used or not:
    # a vjp entry point's cotangent is an argument even where no wrt value
    # depends on its output.
    keep = [totals[w] for w in wrt if w in totals]
    live = g.ancestors(g.roots() + keep)
    for n in [n for n in g.nx.nodes if n not in live and g.data(n)["phase"] == BACKWARD and g.op(n) != "input"]:
        g.remove(n)
    return [totals.get(w) for w in wrt]


def differentiate(fwd: Program) -> Program:
    """The joint program: ``fwd``'s graph plus the gradient of its loss with
    respect to each value in ``fwd.wrt`` (results ``grads.<name>``), with the
    entry points ``forward`` and ``value_and_grad``.

    The seed is a ones constant of the loss's shape (the loss has one
    element). A ``wrt`` value that no gradient reaches (the loss does not
    depend on it, or only through piecewise-constant ops) gets zeros of its
    shape, as in autograd and JAX, and a note in ``notes`` saying why.
    """
    g = fwd.graph.copy()
    loss = g.loss
    if loss is None:
        raise ValueError("graph has no loss")
    with g.context(phase=BACKWARD, origin=loss, source=g.data(loss)["source"]):
        seed = g.add("const", [], {"value": 1.0, "shape": g.shape(loss)}, hint="seed")
    grads = _vjp(g, [loss], [seed], list(fwd.wrt))
    depends = g.ancestors([loss])
    notes = list(fwd.notes)
    # Gradients are labelled by the names the user sees (a temporary's
    # printed name when a spec asks for one, as bpc explain does).
    printed = fwd.graph.names() if any(g.data(w)["hint"] != w for w in fwd.wrt) else {}
    for i, (w, gw) in enumerate(zip(fwd.wrt, grads)):
        if gw is None:  # as autograd and JAX: zeros, with a note saying why
            shown = printed.get(w, w)
            why = (
                "the loss does not depend on it"
                if w not in depends
                else "every path to the loss goes through an op without a gradient (stop_gradient, comparisons, sign, step)"
            )
            notes.append(f"wrt[{i}] '{shown}': its gradient is zero: {why}")
            with g.context(phase=BACKWARD, origin=w, source=g.data(w)["source"]):
                hint = ("g_", w, "", f"g_{w}")
                if is_static(g.shape(w)):
                    gw = g.add("const", [], {"value": 0.0, "shape": g.shape(w)}, hint=hint, named=True)
                else:
                    gw = g.add("zeros_like", [w], hint=hint, named=True)
        g.set_result(f"grads.{printed.get(w, w)}", gw)
    if seed in g and not g.nx.out_degree(seed) and seed not in g.roots():
        g.remove(seed)
    return fwd.but(graph=g, entries=gradient_entries(g), notes=tuple(notes))


def _name_total(g: Graph, node: str, of: str) -> str:
    """Print the total cotangent of ``of`` as ``g_<of>``: give it that hint."""
    d = g.data(node)
    hint = ("g_", of, "", "g_" + _fallback(g, of))
    if d["named"] or d["phase"] != BACKWARD or d["op"] == "const":
        # A forward value or a shared constant: wrap it so the name is free.
        return g.add("identity", [node], hint=hint, named=True)
    d["hint"], d["named"] = hint, True
    return node


def _fallback(g: Graph, n: str) -> str:
    h = g.data(n)["hint"]
    return h if isinstance(h, str) else h[3]


# ------------------------------------------------------------------ forward mode


def tangent_rule(opdef, ts: list[V | None], out: V, args: list[V], attrs: dict) -> V | None:
    """The tangent of ``out`` from its operands' tangents (None: no tangent).

    An op's own ``jvp`` rule when it has one; otherwise derived, exactly:

    * piecewise-constant ops (``constant``): no tangent;
    * elementwise ops: the Jacobian is diagonal per operand, so operand i
      contributes its VJP rule applied to its tangent (``g`` read as ``t_i``),
      summed over operands;
    * linear ops: the op applied to the tangents of its value operands
      (zeros for operands without one).
    """
    from .ops.registry import CONSTANT, DIFFERENTIABLE, ELEMENTWISE, LINEAR

    if all(t is None for t in ts) or opdef.has(CONSTANT) or not opdef.has(DIFFERENTIABLE):
        return None
    if opdef.jvp is not None:
        return opdef.jvp(ts, out, *args, **attrs)
    if opdef.has(ELEMENTWISE):
        total = None
        for i, t in enumerate(ts):
            if t is None:
                continue
            part = opdef.vjp(t, out, *args, **attrs)[i]
            if part is None:
                continue
            if part.shape != out.shape:
                part = part.broadcast_to(out.shape, like=out)
            total = part if total is None else total + part
        return total
    if opdef.has(LINEAR):
        values = opdef.value_operands if opdef.value_operands is not None else range(len(args))
        operands = list(args)
        for i in values:
            operands[i] = ts[i] if ts[i] is not None else args[i].apply("zeros_like")
        return operands[0].apply(opdef.name, *operands[1:], **attrs)
    raise GraphError(f"op '{opdef.name}' has no forward-mode rule")


def tangent_text(opdef) -> str:
    """The forward-mode rule of an op in words (for comments and docs)."""
    from .ops.registry import ELEMENTWISE, LINEAR

    if opdef.jvp is not None:
        return opdef.tangent
    if opdef.has(ELEMENTWISE):
        return f"t = the rule {opdef.derivative.split('  (')[0]} with g read as each operand's tangent"
    if opdef.has(LINEAR):
        return f"t = {opdef.name} of the tangents (linear)"
    return ""


def jvp(g: Graph, inputs: list[str], tangents: list[str], outputs: list[str]) -> tuple[Graph, list[str | None]]:
    """Forward mode as a pure transform: the Jacobian-vector product.

    Returns a new graph and, for each of ``outputs``, the node holding
    ``sum_i d output / d inputs[i] * tangents[i]`` (None where no input
    reaches it). ``tangents`` are nodes shaped like their inputs (inputs of a
    ``jvp`` entry point, or any values); a tangent given for an intermediate
    value replaces the one flowing into it. ``g`` is unchanged.
    """
    g = g.copy()
    return g, _jvp(g, inputs, tangents, outputs)


def _jvp(g: Graph, inputs: list[str], tangents: list[str], outputs: list[str]) -> list[str | None]:
    """:func:`jvp` in place."""
    for x, t in zip(inputs, tangents, strict=True):
        if g.shape(t) != g.shape(x):
            raise GraphError(f"the tangent of '{x}' has shape {g.shape(t)}, not {g.shape(x)}")
    tan: dict[str, str] = dict(zip(inputs, tangents))
    active = g.descendants(inputs) & g.ancestors(outputs)
    for n in g.topo(active):
        if n in tan:
            continue
        d = g.data(n)
        args = g.args(n)
        ts = [V(g, tan[a]) if a in tan else None for a in args]
        if all(t is None for t in ts):
            continue
        before = g._seq
        with g.context(phase=TANGENT, origin=n, source=d["source"]):
            out = tangent_rule(get_op(d["op"]), ts, V(g, n), [V(g, a) for a in args], d["attrs"])
        if out is None:
            continue
        t = out.name
        td = g.data(t)
        if td["seq"] > before and td["phase"] == TANGENT and not td["named"] and d["named"]:
            td["hint"], td["named"] = ("t_", n, "", "t_" + _fallback(g, n)), True
        tan[n] = t
    return [tan.get(o) for o in outputs]
