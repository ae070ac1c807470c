"""``bpc explain``: the chain rule from the loss down to one value, path by path.

For every path from NAME to the loss in the forward graph (a value used twice
gives two paths: the product rule), the explanation lists the local
derivatives along the path and, for each step, the vector-Jacobian product as
a NumPy line that can be run: ``d1_X2 = d1_l / X2`` says "the gradient of the
loss reaching X2 along path 1 is the gradient at l divided by X2", because
``l = log(X2)`` and log's rule is ``dx = g / x``. The gradient is the sum of
the paths' last lines; it is followed by the generated code that computes it
(where fan-out sums are shared, so it is shorter than the sum of paths).

The output is bounded on any spec, and so is the time beyond compiling it: at
most ``MAX_PATHS`` paths are listed (all are counted), each shows at most
``MAX_STEPS`` steps from the loss down, ``MAX_TOTAL_STEPS`` over all paths,
long node chains and statements are shortened, the generated code is cut to
``MAX_GENERATED_LINES`` and the whole text to ``MAX_CHARS``; every cut says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import networkx as nx

from .autodiff import _fit
from .errors import GraphError
from .ir import BACKWARD, Graph
from .ops.registry import V, get_op, pyval
from .pipeline import gc_paused
from .program import Program
from .targets import NUMPY
from .targets.pyexpr import E

MAX_PATHS = 64  # paths listed (all are counted)
MAX_STEPS = 100  # steps shown per path, from the loss down
MAX_TOTAL_STEPS = 1000  # over all listed paths: later paths are counted only
MAX_CHAIN = 40  # nodes named in a path's header before eliding the middle
MAX_STATEMENT = 200  # characters of a forward statement quoted in a comment
MAX_WIDTH = 120  # comments line up after code lines up to this long
MAX_GENERATED_LINES = 200  # lines of generated code quoted
MAX_CHARS = 1_000_000  # the whole text


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
    omitted: int = 0  # steps not shown (the path was cut after MAX_STEPS)

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
            f"d {self.loss} / d {self.wrt} by the chain rule: {_count(n)} path{'s' if n != 1 else ''} "
            f"from {self.wrt} to {self.loss}.",
            "",
            "Each line is a vector-Jacobian product: the gradient arriving at a value's",
            "output (g) times the local derivative of the op that made it (y is that output).",
            "Every name on the right is a forward value or an earlier line: the lines run.",
        ]
        for k, p in enumerate(self.paths, 1):
            pairs = list(zip(p.nodes[:-1], p.nodes[1:]))[::-1]
            chain = _elide([f"d {v}/d {u}" for u, v in pairs], " · ")
            out += ["", f"path {k}: {_elide(p.nodes, ' -> ')}", f"  d {self.loss}/d {self.wrt} = {chain}"]
            width = min(max(len(f"{s.target} = {s.code}") for s in p.steps), MAX_WIDTH)
            for s in p.steps:
                line = f"{s.target} = {s.code}"
                note = f"{s.statement}; {s.rule}" if s.statement else s.rule
                out.append(f"  {line.ljust(width)}  # {note}")
            if p.omitted:
                shown = len(p.steps) - 1
                out.append(f"  ... {p.omitted} more steps down to {self.wrt} not shown (this path is cut after {shown} steps)")
        if self.zero_paths:
            out.append(
                f"\n({self.zero_paths} path{'s' if self.zero_paths != 1 else ''} through ops without "
                "a gradient (stop_gradient, comparisons) contribute 0 and are not shown)"
            )
        if self.total_paths > len(self.paths) + self.zero_paths:
            out.append(f"\n({_count(self.total_paths - len(self.paths) - self.zero_paths)} more paths not shown)")
        cut = sum(1 for p in self.paths if p.omitted)
        if cut:
            out += ["", f"Sum over paths: grad_{self.wrt} is the sum of every path's last line "
                    f"({cut} path{'s' if cut != 1 else ''} above {'are' if cut != 1 else 'is'} cut before it)"]
        else:
            total = " + ".join(p.result for p in self.paths)
            out += ["", f"Sum over paths: grad_{self.wrt} = {total}"]
        if self.generated:
            out += ["", "The generated code that computes it (shared sub-sums computed once):"]
            lines = self.generated
            if len(lines) > MAX_GENERATED_LINES:
                head, tail = MAX_GENERATED_LINES * 3 // 4, MAX_GENERATED_LINES // 4
                skipped = len(lines) - head - tail
                note = f"# ... {skipped} lines not shown (bpc compile writes them all)"
                lines = lines[:head] + [note] + lines[-tail:]
            out += [f"  {ln}" if ln else "" for ln in lines]
        text = "\n".join(out) + "\n"
        if len(text) > MAX_CHARS:
            text = text[: text.rfind("\n", 0, MAX_CHARS) + 1]
            text += f"(output cut at {MAX_CHARS:,} characters)\n"
        return text


def _count(n: int) -> str:
    """A path count; astronomically many (2**depth in residual nets) as 'about 1.6e+60'."""
    if n < 10**15:
        return str(n)
    e = math.log10(n)
    return f"about {10 ** (e - math.floor(e)):.1f}e+{math.floor(e)}"


def _elide(items: list[str], sep: str) -> str:
    """``items`` joined, the middle of a long list elided."""
    if len(items) <= MAX_CHAIN:
        return sep.join(items)
    head, tail = items[: MAX_CHAIN // 2], items[-(MAX_CHAIN // 2 - 1):]
    return sep.join(head + [f"... ({len(items) - len(head) - len(tail)} more)"] + tail)


class _Names:
    """The forward names plus one path's step names, without copying the former."""

    def __init__(self, forward: set[str]):
        self.forward = forward
        self.steps: set[str] = set()

    def __contains__(self, n: str) -> bool:
        return n in self.forward or n in self.steps

    def add(self, n: str) -> None:
        self.steps.add(n)


def _edge_paths(h: nx.MultiDiGraph, src: str, dst: str, limit: int) -> list[list[tuple]]:
    """Up to ``limit`` edge paths from ``src`` to ``dst`` in the DAG ``h``, in the
    depth-first order of ``nx.all_simple_edge_paths`` (which costs O(length)
    per step: quadratic on a deep network's path; in a DAG every path is simple).
    """
    succ = h._succ  # (h.edges(n) builds a view whose setup is O(graph): quadratic)

    def edges(n: str):
        return ((n, v, k) for v, keys in succ[n].items() for k in keys)

    out: list[list[tuple]] = []
    path: list[tuple] = []
    stack = [edges(src)]
    while stack:
        e = next(stack[-1], None)
        if e is None:
            stack.pop()
            if path:
                path.pop()
            continue
        if e[1] == dst:
            out.append(path + [e])
            if len(out) >= limit:
                break
            continue
        path.append(e)
        stack.append(edges(e[1]))
    return out


def _render(g: Graph, n: str, names: _Names, printed: dict[str, str]) -> E:
    if n in names:
        return E.name(printed.get(n, n), g.shape(n))
    d = g.data(n)
    operands = [_render(g, a, names, printed) for a in g.args(n)]
    e = NUMPY.emit(d["op"], operands, d["attrs"], d["shape"], d["dtype"])
    return E(e.node, d["shape"], e.literal)


def _statement(g: Graph, v: str, printed: dict[str, str]) -> str:
    d = g.data(v)
    args = [printed[a] for a in g.args(v)]
    attrs = [f"{k}={pyval(x)}" for k, x in sorted(d["attrs"].items())]
    text = f"{printed[v]} = {d['op']}({', '.join(args + attrs)})"
    return text if len(text) <= MAX_STATEMENT else text[: MAX_STATEMENT - 4] + " ..."


@gc_paused
def explain(
    program: Program,
    wrt: str,
    max_paths: int = MAX_PATHS,
    max_steps: int = MAX_STEPS,
    max_total_steps: int = MAX_TOTAL_STEPS,
) -> Explanation:
    """Paths and per-step VJP lines for d loss / d wrt on a forward graph.

    Lists at most ``max_paths`` paths, each cut after ``max_steps`` steps; once
    ``max_total_steps`` steps are shown, the remaining paths are only counted.
    """
    fwd = program.graph
    printed = fwd.names()
    taken = set(printed.values())

    def fresh(base: str) -> str:
        name, k = base, 2
        while name in taken:
            name, k = f"{base}_{k}", k + 1
        taken.add(name)
        return name

    if wrt not in fwd or fwd.data(wrt)["hint"] != wrt:
        by_printed = {v: k for k, v in printed.items()}
        if wrt not in by_printed:
            raise GraphError(f"unknown name '{wrt}'", "--wrt")
        shown, wrt = wrt, by_printed[wrt]
    else:
        shown = wrt
    loss = fwd.loss
    if wrt not in fwd.ancestors([loss]):
        raise GraphError(f"the loss '{printed[loss]}' does not depend on '{shown}'", "--wrt")
    h = nx.MultiDiGraph()
    active = fwd.ancestors([loss]) & fwd.descendants([wrt])
    for u, v, k, pos in fwd.nx.edges(keys=True, data="pos"):
        if u in active and v in active:
            h.add_edge(u, v, key=(k, pos), pos=pos)
    if wrt == loss:
        edge_paths = [[]]
    else:
        edge_paths = _edge_paths(h, wrt, loss, max_paths + 1)
    total = len(edge_paths)
    if total > max_paths:  # count all paths without listing them (DAG dynamic programming)
        count = {loss: 1}
        for n in reversed(list(nx.topological_sort(h))):
            if n != loss:
                count[n] = sum(count.get(v, 0) for _, v in h.out_edges(n))
        total = count.get(wrt, 0)
    edge_paths = sorted(edge_paths[:max_paths], key=lambda p: [(printed[u], printed[v], k[1]) for u, v, k in p])

    paths = []
    dead = 0
    # One copy for all paths (each adds its own d<k>_ nodes): a copy per path
    # made explain quadratic on large graphs.
    g = fwd.copy()
    forward_names = set(g.nx.nodes)
    budget = max_total_steps
    for idx, path in enumerate(edge_paths, 1):
        if budget <= 0:
            break  # counted in "more paths not shown"
        prefix = f"d{idx}_" if len(edge_paths) > 1 else "d_"
        with g.context(phase=BACKWARD):
            cur = g.add("input", [], {"shape": g.shape(loss)}, name=fresh(f"{prefix}{printed[loss]}"), named=True)
        seed = f"np.ones({pyval(tuple(g.shape(loss)))})" if g.shape(loss) else "1.0"
        steps = [Step(cur, seed, "", f"seed: d {printed[loss]}/d {printed[loss]} = 1")]
        names = _Names(forward_names)
        names.add(cur)
        nodes = [printed[loss]]
        limit = min(max_steps, budget)
        omitted = 0
        for i, (u, v, (k, pos)) in enumerate(reversed(path)):
            if i == limit:
                omitted = len(path) - i
                break
            d = g.data(v)
            opdef = get_op(d["op"])
            with g.context(phase=BACKWARD, origin=v):
                cts = opdef.vjp(V(g, cur), V(g, v), *(V(g, a) for a in g.args(v)), **d["attrs"])
                if cts[pos] is None:  # stop_gradient, comparisons: this path adds 0
                    break
                ct = _fit(cts[pos], V(g, u))
            target = fresh(f"{prefix}{printed[u]}")
            code = _render(g, ct.name, names, printed).source()
            with g.context(phase=BACKWARD):
                cur = g.add("input", [], {"shape": g.shape(u)}, name=target, named=True)
            names.add(cur)
            steps.append(Step(cur, code, _statement(fwd, v, printed), f"{opdef.name}: {opdef.derivative}"))
            nodes.append(printed[u])
        else:
            paths.append(PathExplanation(list(reversed(nodes)), steps))
            budget -= len(steps) - 1
            continue
        if omitted:
            full = [printed[path[0][0]]] + [printed[v] for _, v, _ in path] if path else [printed[loss]]
            paths.append(PathExplanation(full, steps, omitted))
            budget -= len(steps) - 1
            continue
        dead += 1
    return Explanation(printed[loss], shown, paths, total, zero_paths=dead)
