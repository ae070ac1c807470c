"""``bpc explain``: the chain rule from the loss down to one value, statement by statement.

A path runs through the spec's own values (params, inputs, the names its
statements assign), from NAME to the loss; a value used by two statements gives
two paths (the product rule). Each step differentiates one statement, whole:
``g_X1 = W2.T @ (g_X2 * (X2 * (1.0 - X2)))`` says "the gradient of the loss at
X1 is the gradient at X2 times the local derivatives of the ops of
``X2 = sigmoid(W2 @ X1 + beta2)``", and the comment above it lists those ops'
rules, each at the expression it differentiates (``add, at W2 @ X1 + beta2``):
the compiler's temporaries are never named, only spelled out. With one path,
``g_<name>`` is the generated code's own variable (d loss / d name); with
several, ``d<k>_<name>`` is path k's share and the gradient is their sum. The
generated code that computes it follows (where fan-out sums are shared).

Repeated structure is collapsed and said so: the paths inside one statement
(through its own ops, e.g. the two through softmax_cross_entropy's log-sum-exp)
are summed in its step, so a residual block ``h2 = h1 + tanh(w2 @ h1)`` is one
step, not two paths.

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
MAX_EXPR = 60  # characters of a temporary's expression named in a rule's comment
MAX_STATEMENT_OPS = 200  # ops of one statement differentiated in one step; more: the step is cut
MAX_GENERATED_LINES = 200  # lines of generated code quoted
MAX_CHARS = 1_000_000  # the whole text


@dataclass
class Step:
    target: str  # the python name this step assigns, e.g. g_X1 or d1_X1
    code: str  # the NumPy expression
    statement: str  # the spec statement differentiated, e.g. "X2 = sigmoid(W2 @ X1 + beta2)"
    rules: tuple[str, ...] = ()  # its ops' derivative rules, from its output down
    inner_paths: int = 1  # paths through the statement's own ops, summed in this step
    parts: tuple[tuple[str, str, str], ...] = ()  # (name, code, what) lines computed first: shared parts


@dataclass
class PathExplanation:
    nodes: list[str]  # NAME ... loss (the spec's values)
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
    total_paths: int  # through the spec's values
    generated: list[str] = field(default_factory=list)
    zero_paths: int = 0  # paths through ops with no gradient (stop_gradient, comparisons)
    op_paths: int = 0  # the same paths counted through every op: more when statements are collapsed

    def text(self) -> str:
        n = self.total_paths
        out = [
            f"d {self.loss} / d {self.wrt} by the chain rule: {_count(n)} path{'s' if n != 1 else ''} "
            f"from {self.wrt} to {self.loss} through the spec's values.",
        ]
        if self.op_paths > n:
            out.append(
                f"(Through the compiler's ops there are {_count(self.op_paths)}: the paths inside one statement "
                "are summed in its step.)"
            )
        loss = self.loss
        if len(self.paths) != 1:
            g = f"d<k>_<name> is path k's share of d {loss} / d <name>"
        else:
            g = f"g_<name> is d {loss} / d <name>, as in the generated code"
        out += [
            "",
            "Each step differentiates one statement of the spec: the gradient arriving at its",
            "output times the local derivatives of its ops, whose rules the comment lists (g is",
            "the gradient arriving at an op's output, y that output; the compiler's own values",
            "are spelled out, never named, or computed once on a line named after the statement).",
            f"{g}; every name on the",
            "right is a forward value or an earlier line: the lines run.",
        ]
        for k, p in enumerate(self.paths, 1):
            pairs = list(zip(p.nodes[:-1], p.nodes[1:]))[::-1]
            chain = _elide([f"d {v}/d {u}" for u, v in pairs], " · ")
            out += ["", f"path {k}: {_elide(p.nodes, ' -> ')}", f"  d {self.loss}/d {self.wrt} = {chain}"]
            for s in p.steps:
                if s.statement:
                    out.append(f"  # {s.statement}")
                if s.inner_paths > 1:
                    out.append(f"  #   ({_count(s.inner_paths)} paths through its ops, summed here)")
                out += [f"  #   {r}" for r in s.rules]
                for name, code, what in s.parts:
                    out += [f"  #   {name}: {what}", f"  {name} = {code}"]
                out.append(f"  {s.target} = {s.code}")
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
            total = " + ".join(p.result for p in self.paths) or "0"
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


def _count_paths(h, src: str, dst: str, order: list[str]) -> int:
    """Paths from ``src`` to ``dst`` in the DAG ``h`` (multi-edges count), by
    dynamic programming over ``order`` (a topological order of ``h``)."""
    count = {dst: 1}
    for n in reversed(order):
        if n != dst:
            count[n] = sum(count.get(v, 0) for _, v in h.out_edges(n))
    return count.get(src, 0)


def _render(g: Graph, n: str, names, printed: dict[str, str]) -> E:
    """``n`` as a NumPy expression: names in ``names`` as themselves, every
    other value spelled out (the compiler's temporaries are never named)."""
    if n in names:
        return E.name(printed.get(n, n), g.shape(n))
    d = g.data(n)
    operands = [_render(g, a, names, printed) for a in g.args(n)]
    e = NUMPY.emit(d["op"], operands, d["attrs"], d["shape"], d["dtype"])
    return E(e.node, d["shape"], e.literal)


SHARED_MIN = 24  # characters: a shared part of a step longer than this gets a line of its own


def _render_shared(g: Graph, root: str, names, printed, fresh, prefix: str, base: str, forward: dict[str, str | None]):
    """``root`` as a NumPy expression, like :func:`_render`, but a part used
    more than once (a gradient reaching a value by two of the statement's
    ops, a forward value two rules read) is computed once on a line of its
    own, before the step: ``g_in_loss_1`` (a gradient inside statement
    ``loss``) or ``in_loss_1`` (a value inside it; ``forward`` maps forward
    nodes to such a name once given, for later steps to reuse). Returns the
    expression and those lines as (name, code, what it is)."""
    uses: dict[str, int] = {}
    stack = [root]
    while stack:
        n = stack.pop()
        for a in g.args(n):
            if a not in names:
                uses[a] = uses.get(a, 0) + 1
                if uses[a] == 1:
                    stack.append(a)
    memo: dict[str, E] = {}
    lines: list[tuple[str, str, str]] = []
    count: dict[str, int] = {}

    def render(n: str) -> E:
        if n in names:
            return E.name(printed.get(n, n), g.shape(n))
        if n in memo:
            return memo[n]
        if forward.get(n):
            return E.name(forward[n], g.shape(n))
        d = g.data(n)
        e = NUMPY.emit(d["op"], [render(a) for a in g.args(n)], d["attrs"], d["shape"], d["dtype"])
        out = E(e.node, d["shape"], e.literal)
        if n != root and uses.get(n, 0) > 1 and len(out.source()) > SHARED_MIN:
            is_fwd = n in forward
            kind = "" if is_fwd else prefix
            count[kind] = count.get(kind, 0) + 1
            name = fresh(f"{kind}in_{base}_{count[kind]}")
            what = (
                f"{_short(_render(g, n, names, printed).source(), MAX_EXPR)}" if is_fwd
                else _describe(g, n, names, printed)
            )
            lines.append((name, out.source(), what))
            out = E.name(name, d["shape"])
            if is_fwd:
                forward[n] = name
        memo[n] = out
        return out

    return render(root), lines


def _describe(g: Graph, n: str, names, printed) -> str:
    """The forward value a gradient node belongs to, by its expression."""
    origin = g.data(n).get("origin")
    if origin is None:
        return "a shared part of the gradient"
    at = _short(_render(g, origin, names, printed).source(), MAX_EXPR)
    return f"a shared part of the gradient, from {g.op(origin)}'s rule at {at}"


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 4] + " ..."


class _Statements:
    """The forward graph seen through the spec's values (the waypoints: named
    values, the wrt value and the loss): which waypoints a statement reads, and
    the compiler's temporaries between them."""

    def __init__(self, fwd: Graph, active: set[str], waypoints: set[str]):
        self.fwd, self.active, self.waypoints = fwd, active, waypoints

    def targets(self, u: str) -> set[str]:
        """Waypoints reached from ``u`` through temporaries only."""
        out, seen, stack = set(), set(), [u]
        while stack:
            for v in self.fwd.nx.successors(stack.pop()):
                if v not in self.active or v in seen:
                    continue
                seen.add(v)
                if v in self.waypoints:
                    out.add(v)
                else:
                    stack.append(v)
        return out

    def inner(self, u: str, v: str) -> set[str]:
        """The temporaries on paths from waypoint ``u`` to waypoint ``v``."""

        def walk(start, step):
            seen, stack = set(), [start]
            while stack:
                for w in step(stack.pop()):
                    if w in self.active and w not in self.waypoints and w not in seen:
                        seen.add(w)
                        stack.append(w)
            return seen

        return walk(u, self.fwd.nx.successors) & walk(v, self.fwd.nx.predecessors)


def _statement_text(program: Program, g: Graph, v: str, names, printed: dict[str, str]) -> str:
    source = g.data(v).get("source")
    text = program.info.source_text.get(source) if source else None
    if text:
        return _short(" ".join(text.split()), MAX_STATEMENT)
    try:
        return _short(f"{printed[v]} = {_render(g, v, names - {v}, printed).source()}", MAX_STATEMENT)
    except RecursionError:
        return printed[v]


@gc_paused
def explain(
    program: Program,
    wrt: str,
    max_paths: int = MAX_PATHS,
    max_steps: int = MAX_STEPS,
    max_total_steps: int = MAX_TOTAL_STEPS,
) -> Explanation:
    """Paths through the spec's values and one NumPy step per statement for
    d loss / d wrt on a forward graph.

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
    active = fwd.ancestors([loss]) & fwd.descendants([wrt])
    values = {n for n in fwd.nx.nodes if fwd.data(n)["named"] or fwd.op(n) in ("input", "param")} | {wrt, loss}
    waypoints = values & active  # the spec's values a path can pass
    stmts = _Statements(fwd, active, waypoints)

    # The paths through every op (counted only: how much the statements collapse)
    h_ops = nx.MultiDiGraph()
    h_ops.add_nodes_from(active)
    for u, v, k in fwd.nx.edges(keys=True):
        if u in active and v in active:
            h_ops.add_edge(u, v, key=k)
    order = list(nx.topological_sort(h_ops))
    op_paths = 1 if wrt == loss else _count_paths(h_ops, wrt, loss, order)
    # ... and through the spec's values: one edge per statement reading a value
    h = nx.MultiDiGraph()
    h.add_nodes_from(waypoints)
    for u in sorted(waypoints, key=lambda n: printed[n]):
        for v in sorted(stmts.targets(u), key=lambda n: printed[n]):
            h.add_edge(u, v, key=0)
    if wrt == loss:
        edge_paths = [[]]
    else:
        edge_paths = _edge_paths(h, wrt, loss, max_paths + 1)
    total = len(edge_paths)
    if total > max_paths:  # count all paths without listing them (DAG dynamic programming)
        total = _count_paths(h, wrt, loss, [n for n in order if n in waypoints])
    edge_paths = sorted(edge_paths[:max_paths], key=lambda p: [(printed[u], printed[v]) for u, v, _ in p])

    paths = []
    dead = 0
    # One copy for all paths (each adds its own step nodes): a copy per path
    # made explain quadratic on large graphs.
    g = fwd.copy()
    forward_nodes: dict[str, str | None] = dict.fromkeys(fwd.nx.nodes)  # -> its in_<stmt>_<k> name once given
    single = len(edge_paths) == 1
    budget = max_total_steps
    made = 0

    def variable(display: str, shape) -> str:
        """A node for a step's result (its id internal, printed as ``display``)."""
        nonlocal made
        made += 1
        with g.context(phase=BACKWARD):
            node = g.add("input", [], {"shape": shape}, name=f"%explain{made}", named=True)
        printed[node] = display
        return node

    for path in edge_paths:
        if budget <= 0:
            break  # counted in "more paths not shown"
        # a path that turns out to add 0 gives its names back (paths are numbered as listed)
        mine: list[str] = []
        aliases = dict(forward_nodes)

        def fresh_here(base: str) -> str:
            mine.append(fresh(base))
            return mine[-1]

        prefix = "g_" if single else f"d{len(paths) + 1}_"
        cur = variable(fresh_here(f"{prefix}{printed[loss]}"), g.shape(loss))
        seed = f"np.ones({pyval(tuple(g.shape(loss)))})"
        steps = [Step(printed[cur], seed, f"seed: d {printed[loss]}/d {printed[loss]} = 1")]
        names = set(values) | {cur}  # printed by name; everything else spelled out
        nodes = [printed[loss]]
        limit = min(max_steps, budget)
        omitted = 0
        for i, (u, v, _) in enumerate(reversed(path)):
            inner = stmts.inner(u, v)
            if i == limit or len(inner) > MAX_STATEMENT_OPS:
                omitted = len(path) - i
                break
            ct, rules = _differentiate(g, u, v, inner, cur, names, printed)
            if ct is None:  # stop_gradient, comparisons: this path adds 0
                break
            target = fresh_here(f"{prefix}{printed[u]}")
            expr, aux = _render_shared(g, ct, names, printed, fresh_here, prefix, printed[v], aliases)
            cur = variable(target, g.shape(u))
            names.add(cur)
            sub = h_ops.subgraph(inner | {u, v})
            n_inner = _count_paths(sub, u, v, [n for n in order if n in inner or n in (u, v)])
            text = _statement_text(program, fwd, v, values, printed)
            steps.append(Step(target, expr.source(), text, tuple(rules), n_inner, tuple(aux)))
            nodes.append(printed[u])
        else:
            paths.append(PathExplanation(list(reversed(nodes)), steps))
            budget -= len(steps) - 1
            forward_nodes = aliases
            continue
        if omitted:
            full = [printed[path[0][0]]] + [printed[v] for _, v, _ in path] if path else [printed[loss]]
            paths.append(PathExplanation(full, steps, omitted))
            budget -= len(steps) - 1
            forward_nodes = aliases
            continue
        dead += 1
        taken.difference_update(mine)
    return Explanation(printed[loss], shown, paths, total, zero_paths=dead, op_paths=op_paths)


def _differentiate(g: Graph, u: str, v: str, inner: set[str], cur: str, names, printed) -> tuple[str | None, list[str]]:
    """The gradient at ``u`` from the gradient ``cur`` at ``v`` through the
    statement's ops (``inner``: its temporaries between them), every internal
    path summed, as a node of ``g``; None when no path carries a gradient.
    Also the rules applied, from ``v`` down, each at the expression it
    differentiates when that is a temporary."""
    order = [n for n in nx.topological_sort(g.nx.subgraph(inner | {v}))][::-1]
    ct: dict[str, V] = {v: V(g, cur)}
    rules = []
    for n in order:
        if n not in ct:
            continue
        d = g.data(n)
        opdef = get_op(d["op"])
        args = g.args(n)
        with g.context(phase=BACKWARD, origin=n):
            cts = opdef.vjp(ct[n], V(g, n), *(V(g, a) for a in args), **d["attrs"])
            for pos, a in enumerate(args):
                if (a != u and a not in inner) or cts[pos] is None:
                    continue
                c = _fit(cts[pos], V(g, a))
                ct[a] = c if a not in ct else ct[a] + c
        at = ""
        if n != v:
            try:
                at = f", at {_short(_render(g, n, names, printed).source(), MAX_EXPR)}"
            except RecursionError:
                at = ""
        rules.append(f"{opdef.name}{at}: {opdef.derivative}")
    return (ct[u].name if u in ct else None), rules


def jvp_text(loss: str, wrt: str, lines: list[str]) -> str:
    """``bpc explain --mode jvp``: forward mode, the tangent of ``wrt`` carried to the loss."""
    out = [
        f"d {loss} along a direction t_{wrt}, by forward mode (jvp): one pass from {wrt} to {loss},",
        "in the order the values are computed, beside them.",
        "",
        f"t_<name> is the derivative of <name> along the direction; each statement's tangent is",
        "its ops' forward-mode rules applied to its operands' tangents (the comments list them).",
        f"Forward mode gives one number per direction, d_loss = <grad_{wrt}, t_{wrt}>; reverse mode",
        f"(bpc explain without --mode) gives all of grad_{wrt} in one pass. `hvp` is this pass run",
        "over the gradient computation (forward over reverse).",
        "",
        "The generated code (bpc compile --emit jvp): the forward values, then the tangents:",
    ]
    shown = lines
    if len(shown) > MAX_GENERATED_LINES:
        head, tail = MAX_GENERATED_LINES * 3 // 4, MAX_GENERATED_LINES // 4
        note = f"# ... {len(shown) - head - tail} lines not shown (bpc compile writes them all)"
        shown = shown[:head] + [note] + shown[-tail:]
    out += [f"  {ln}" for ln in shown]
    out += [
        "",
        f"Check: d_loss equals np.sum(grad_{wrt} * t_{wrt}) for every direction (the dot-product",
        "test that bpc check --order 2 and the module's self-check run).",
    ]
    return "\n".join(out) + "\n"
