"""``bpc explain``: the chain rule from the loss down to one value, path by path.

For every path from NAME to the loss in the forward graph (a value used twice
gives two paths: the product rule), the explanation lists the local
derivatives along the path and, for each step, the vector-Jacobian product as
a NumPy line that can be run: ``d1_X2 = d1_l / X2`` says "the gradient of the
loss reaching X2 along path 1 is the gradient at l divided by X2", because
``l = log(X2)`` and log's rule is ``dx = g / x``. The gradient is the sum of
the paths' last lines; it is followed by the generated code that computes it
(where fan-out sums are shared, so it is shorter than the sum of paths).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx

from .autodiff import _fit
from .errors import GraphError
from .ir import BACKWARD, Graph
from .ops.registry import ATOM, EmitArgs, Expr, V, get_op, pyval

MAX_PATHS = 64


@dataclass
class Step:
    target: str  # the python name this step assigns, e.g. d1_X2
    code: str  # the NumPy expression
    statement: str  # the forward statement differentiated, e.g. "l = log(X2)"
    rule: str  # the op's derivative rule


@dataclass
class PathExplanation:
    nodes: list[str]  # NAME ... loss
    steps: list[Step]

    @property
    def result(self) -> str:
        return self.steps[-1].target


@dataclass
class Explanation:
    loss: str
    wrt: str
    paths: list[PathExplanation]
    total_paths: int
    generated: list[str] = field(default_factory=list)
    zero_paths: int = 0  # paths through ops with no gradient (stop_gradient, comparisons)

    def text(self) -> str:
        n = self.total_paths
        out = [
            f"d {self.loss} / d {self.wrt} by the chain rule: {n} path{'s' if n != 1 else ''} "
            f"from {self.wrt} to {self.loss}.",
            "",
            "Each line is a vector-Jacobian product: the gradient arriving at a value's",
            "output (g) times the local derivative of the op that made it (y is that output).",
            "Every name on the right is a forward value or an earlier line: the lines run.",
        ]
        for k, p in enumerate(self.paths, 1):
            pairs = list(zip(p.nodes[:-1], p.nodes[1:]))[::-1]
            chain = " · ".join(f"d {v}/d {u}" for u, v in pairs)
            out += ["", f"path {k}: {' -> '.join(p.nodes)}", f"  d {self.loss}/d {self.wrt} = {chain}"]
            width = max(len(f"{s.target} = {s.code}") for s in p.steps)
            for s in p.steps:
                line = f"{s.target} = {s.code}"
                note = f"{s.statement}; {s.rule}" if s.statement else s.rule
                out.append(f"  {line.ljust(width)}  # {note}")
        if self.zero_paths:
            out.append(
                f"\n({self.zero_paths} path{'s' if self.zero_paths != 1 else ''} through ops without "
                "a gradient (stop_gradient, comparisons) contribute 0 and are not shown)"
            )
        if self.total_paths > len(self.paths) + self.zero_paths:
            out.append(f"\n({self.total_paths - len(self.paths) - self.zero_paths} more paths not shown)")
        total = " + ".join(p.result for p in self.paths)
        out += ["", f"Sum over paths: grad_{self.wrt} = {total}"]
        if self.generated:
            out += ["", "The generated code that computes it (shared sub-sums computed once):"]
            out += [f"  {ln}" if ln else "" for ln in self.generated]
        return "\n".join(out) + "\n"


def _render(g: Graph, n: str, names: set[str]) -> Expr:
    if n in names:
        return Expr(n, ATOM, g.shape(n))
    d = g.data(n)
    operands = [_render(g, a, names) for a in g.args(n)]
    e = get_op(d["op"]).emit(EmitArgs(operands, d["attrs"], d["shape"]))
    return Expr(e.text, e.prec, d["shape"], e.literal)


def _statement(g: Graph, v: str) -> str:
    d = g.data(v)
    args = list(g.args(v))
    attrs = [f"{k}={pyval(x)}" for k, x in sorted(d["attrs"].items())]
    return f"{v} = {d['op']}({', '.join(args + attrs)})"


def explain(fwd: Graph, wrt: str, max_paths: int = MAX_PATHS) -> Explanation:
    """Paths and per-step VJP lines for d loss / d wrt on a forward graph."""
    if wrt not in fwd:
        raise GraphError(f"unknown name '{wrt}'", "--wrt")
    loss = fwd.loss
    if wrt not in fwd.ancestors([loss]):
        raise GraphError(f"the loss '{loss}' does not depend on '{wrt}'", "--wrt")
    h = nx.MultiDiGraph()
    active = fwd.ancestors([loss]) & fwd.descendants([wrt])
    for u, v, k, pos in fwd.nx.edges(keys=True, data="pos"):
        if u in active and v in active:
            h.add_edge(u, v, key=(k, pos), pos=pos)
    if wrt == loss:
        edge_paths = [[]]
    else:
        edge_paths = []
        for p in nx.all_simple_edge_paths(h, wrt, loss):
            edge_paths.append(p)
            if len(edge_paths) > max_paths:
                break
    total = len(edge_paths)
    if total > max_paths:  # count all paths without listing them (DAG dynamic programming)
        count = {loss: 1}
        for n in reversed(list(nx.topological_sort(h))):
            if n != loss:
                count[n] = sum(count.get(v, 0) for _, v in h.out_edges(n))
        total = count.get(wrt, 0)
    edge_paths = sorted(edge_paths[:max_paths], key=lambda p: [(u, v, k[1]) for u, v, k in p])

    paths = []
    dead = 0
    for idx, path in enumerate(edge_paths, 1):
        g = fwd.copy()
        forward_names = set(g.nx.nodes)
        prefix = f"d{idx}_" if len(edge_paths) > 1 else "d_"
        with g.context(phase=BACKWARD):
            cur = g.add("input", [], {"shape": g.shape(loss)}, name=g.fresh(f"{prefix}{loss}"), named=True)
        steps = [Step(cur, f"np.ones({pyval(tuple(g.shape(loss)))})" if g.shape(loss) else "1.0", "", f"seed: d {loss}/d {loss} = 1")]
        names = forward_names | {cur}
        nodes = [loss]
        for u, v, (k, pos) in reversed(path):
            d = g.data(v)
            opdef = get_op(d["op"])
            with g.context(phase=BACKWARD, origin=v):
                cts = opdef.vjp(V(g, cur), V(g, v), *(V(g, a) for a in g.args(v)), **d["attrs"])
                if cts[pos] is None:  # stop_gradient, comparisons: this path adds 0
                    break
                ct = _fit(cts[pos], V(g, u))
            target = g.fresh(f"{prefix}{u}")
            code = _render(g, ct.name, names).text
            with g.context(phase=BACKWARD):
                cur = g.add("input", [], {"shape": g.shape(u)}, name=target, named=True)
            names.add(cur)
            steps.append(Step(cur, code, _statement(fwd, v), f"{opdef.name}: {opdef.derivative}"))
            nodes.append(u)
        else:
            paths.append(PathExplanation(list(reversed(nodes)), steps))
            continue
        dead += 1
    return Explanation(loss, wrt, paths, total, zero_paths=dead)
