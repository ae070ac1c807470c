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

Only what the loss depends on *and* what depends on a ``wrt`` value is
differentiated. The seed is a ones array of the loss's shape (the loss has one
element). The result maps every ``wrt`` name to its gradient node in
``graph.grads``; the adjoint graph is ordinary IR, so it can be optimized,
printed, and differentiated again.
"""

from __future__ import annotations

from .errors import GraphError
from .ir import BACKWARD, Graph
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


def differentiate(fwd: Graph, strict: bool = False) -> Graph:
    """The joint graph: ``fwd`` plus the adjoint nodes for ``fwd.wrt``.

    A ``wrt`` value that no gradient reaches (only piecewise-constant ops in
    between) gets zeros, or a GraphError when ``strict`` (specs compile strict).
    """
    g = fwd.copy()
    if g.loss is None:
        raise ValueError("graph has no loss")
    order = g.topo()
    active = g.ancestors([g.loss]) & g.descendants(g.wrt)
    contribs: dict[str, list[V]] = {n: [] for n in active}

    with g.context(phase=BACKWARD, origin=g.loss, source=g.data(g.loss)["source"]):
        seed = g.add("const", [], {"value": 1.0, "shape": g.shape(g.loss)}, hint="seed")
    if g.loss in active:
        contribs[g.loss].append(V(g, seed))

    totals: dict[str, str] = {}
    # _name_total renames fresh backward temporaries, never an output: hold the
    # outputs aside so that each rename does not scan them (quadratic otherwise).
    outputs, g.outputs = g.outputs, {}
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
    g.outputs = outputs
    for i, w in enumerate(g.wrt):
        if w not in totals and strict:
            raise GraphError(
                f"no gradient flows from the loss to '{w}': every path goes through an op "
                "without one (stop_gradient, comparisons, sign, step)",
                f"wrt[{i}]",
            )
        if w not in totals:  # only piecewise-constant ops in between: zero
            with g.context(phase=BACKWARD, origin=w, source=g.data(w)["source"]):
                if is_static(g.shape(w)):
                    totals[w] = g.add("const", [], {"value": 0.0, "shape": g.shape(w)}, name=g.fresh(f"g_{w}"), named=True)
                else:
                    totals[w] = g.add("zeros_like", [w], name=g.fresh(f"g_{w}"), named=True)
    g.grads = {w: totals[w] for w in g.wrt}
    # Rules build cotangents for every operand; drop those nothing needs
    # (operands that do not depend on a wrt value), keeping the forward graph.
    live = g.ancestors(g.roots())
    for n in [n for n in g.nx.nodes if n not in live and g.data(n)["phase"] == BACKWARD]:
        g.remove(n)
    return g


def _name_total(g: Graph, node: str, of: str) -> str:
    """Give the total cotangent of ``of`` the readable name ``g_<of>``."""
    d = g.data(node)
    if d["named"] or d["phase"] != BACKWARD or d["op"] == "const":
        # A forward value or a shared constant: wrap it so the name is free.
        return g.add("identity", [node], name=g.fresh(f"g_{of}"), named=True)
    new = g.fresh(f"g_{of}")
    g.rename(node, new)
    g.data(new)["named"] = True
    return new
