"""The dataflow IR: a thin wrapper around ``networkx.MultiDiGraph``.

A node is one SSA value. Its key is an opaque id: the name a spec or a dump
gave it (``x``, ``h1``), or ``%<k>`` for values the compiler makes. Ids never
reach generated code: printed names are assigned when a graph is printed or
turned into code (:meth:`Graph.names`), from each node's name hint, so no pass
ever renames a value. A node's data holds:

``op``      registered op name (see :mod:`compiler.ops`)
``shape``   static shape, a tuple of ints
``dtype``   element type: ``"f64"``/``"f32"`` (the compile dtype), ``"bool"``
            (comparisons, masks) or ``"i64"`` (class labels, sizes), from
            each op's dtype rule
``attrs``   the op's attributes (a dict of JSON-like values)
``phase``   ``"forward"``, ``"backward"`` (adjoint) or ``"tangent"`` (forward mode)
``source``  where in the spec the value came from (``"nodes[3]"``), or None
``origin``  for adjoint nodes: the forward node whose derivative rule made it
``named``   True when the value matters to the user (spec names, gradient
            totals): codegen keeps such values as statements
``hint``    the name to print it by: a string, or ``(prefix, node, suffix,
            fallback)`` for prefix + that node's printed name + suffix
            (``g_<name>``)
``seq``     creation counter: ties in the topological order, naming order

An edge ``u -> v`` with ``pos=i`` says that ``u`` is the ``i``-th operand of
``v``; a value used twice by one node has two edges (``mul x x``).

Graph-level state is only the ordered signature: ``params`` and ``inputs``
(the arguments) and ``results`` (label -> node: ``loss``, ``outputs.<name>``,
``grads.<name>``), plus the compile dtype. What the spec says about the
module (initial values, docs, dims, source text) is a separate
:class:`~compiler.program.ModuleInfo`; which functions to emit, and what to
differentiate, belong to the :class:`~compiler.program.Program`.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import heapq
import math
import re
from dataclasses import dataclass
from typing import Any, Iterator

import networkx as nx

from .errors import GraphError, ShapeError
from .ops.registry import DTYPES, is_float

MAX_ELEMENTS = 100_000_000  # per value (static dims): a spec cannot ask for more
MAX_PRINTED = 200  # characters of a printed name before its _<k> suffix

FORWARD = "forward"
BACKWARD = "backward"
TANGENT = "tangent"  # forward-mode values (jvp, hvp)


@dataclass(frozen=True)
class Node:
    """A read-only view of one node."""

    name: str
    op: str
    args: tuple[str, ...]
    shape: tuple[int, ...]
    dtype: str
    attrs: dict[str, Any]
    phase: str
    source: str | None
    origin: str | None
    named: bool


@dataclass
class _Context:
    phase: str = FORWARD
    source: str | None = None
    origin: str | None = None
    prefix: str | None = None  # name prefix for temporaries (composite ops)


@functools.lru_cache(maxsize=4096)
def _identifier(hint: str) -> str:
    """A hint as a name that cannot shadow a builtin, keyword or ``np``."""
    from .names import name_problem

    hint = re.sub(r"[^A-Za-z0-9_]", "_", hint)
    if not hint or not ("A" <= hint[0] <= "Z" or "a" <= hint[0] <= "z"):
        hint = f"t_{hint}"
    return hint if name_problem(hint, max_length=1 << 30) is None else f"{hint}_"


class Graph:
    """An SSA dataflow graph with explicit operand order.

    ``dtype`` is the compile dtype (``"f64"``/``"f32"``): the element type of
    every float value.
    """

    def __init__(self, dtype: str = "f64"):
        self.nx = nx.MultiDiGraph()
        self.float_dtype = dtype
        self.params: list[str] = []
        self.inputs: list[str] = []
        self.results: dict[str, str] = {}  # label -> node, in signature order
        # Inputs of some entry points only, by label (``tangents.<name>``):
        # passed as a dict argument named by the label's group.
        self.extra_inputs: dict[str, str] = {}
        self._at: dict[str, list[str]] = {}  # node -> labels naming it
        # A node a pass merged into an equal one (cse): old id -> the one kept,
        # so that origins (which forward node a derivative came from) still
        # resolve after the merge.
        self._alias: dict[str, str] = {}
        self._seq = 0
        self._ctx = _Context()

    # ------------------------------------------------------------ building

    @contextlib.contextmanager
    def context(self, **kw: Any) -> Iterator[None]:
        """Default ``phase``/``source``/``origin`` for nodes added inside."""
        old = self._ctx
        self._ctx = _Context(**{**old.__dict__, **kw})
        try:
            yield
        finally:
            self._ctx = old

    def context_of(self, name: str):
        """The builder context of an existing node (to add nodes beside it)."""
        d = self.nx.nodes[name]
        return self.context(phase=d["phase"], origin=d["origin"], source=d["source"])

    def add(
        self,
        op: str,
        args: list[str] | tuple[str, ...] = (),
        attrs: dict[str, Any] | None = None,
        name: str | None = None,
        named: bool = False,
        hint: Any = None,
        dtype: str | None = None,
    ) -> str:
        """Add a node and return its id; its shape and dtype come from the op's rules.

        ``name`` gives the node that id and printed name (a spec or dump name);
        otherwise the id is fresh and ``hint`` (default: the op) is the name
        to print it by. ``dtype`` is given for sources (inputs, params) only.
        An op that computes in floats but gets no float operand gets one cast
        first (a ``cast`` node): bool masks and int labels never meet in bool
        or int arithmetic.
        """
        from .ops import get_op

        opdef = get_op(op)
        attrs = opdef.normalize_attrs(dict(attrs or {}), self._ctx.source)
        args = list(args)
        casts = opdef.needs_cast([self.dtype(a) for a in args])
        casts = [] if casts is None else [casts]
        if self.float_dtype != "f64" and not casts and opdef.dtype in ("float", "same"):
            # NumPy computes int64 with float32 in float64: a float32 graph
            # casts an integer operand that meets a float one (labels used as
            # dense targets).
            vals = opdef.value_args(len(args))
            if any(is_float(self.dtype(args[i])) for i in vals):
                casts = [i for i in vals if self.dtype(args[i]) == "i64"]
        for k in casts:
            with self.context(prefix=None):
                args[k] = self.add("cast", [args[k]], {"dtype": self.float_dtype}, hint=("", args[k], "_f", "cast"))
        shapes = [self.shape(a) for a in args]
        shape = opdef.infer_shape(shapes, attrs, self._ctx.source)
        if opdef.decompose is not None:
            return self._expand(opdef, list(args), attrs, shape, name, named, hint)
        static = [d for d in shape if isinstance(d, int)]
        if static and math.prod(static) > MAX_ELEMENTS:
            raise ShapeError(
                f"{op} would make {math.prod(static):,} elements (limit {MAX_ELEMENTS:,})",
                self._ctx.source,
            )
        self._seq += 1
        if name is None:
            if hint is None:
                prefix = self._ctx.prefix
                hint = f"{prefix}_{op}" if prefix else op
            name = f"%{self._seq}"
        elif name in self.nx:
            raise GraphError(f"duplicate name '{name}'", self._ctx.source)
        else:
            hint = name
        if dtype is None:
            dtype = opdef.infer_dtype([self.dtype(a) for a in args], attrs, self.float_dtype)
        self.nx.add_node(
            name,
            op=op,
            shape=tuple(shape),
            dtype=dtype,
            attrs=attrs,
            phase=self._ctx.phase,
            source=self._ctx.source,
            origin=self._ctx.origin,
            named=named,
            hint=hint,
            seq=self._seq,
        )
        for i, a in enumerate(args):
            self.nx.add_edge(a, name, pos=i)
        return name

    def _expand(self, opdef, args, attrs, shape, name, named, hint) -> str:
        """A composite op: add its decomposition into primitive ops."""
        from .ops.registry import V

        if name is not None and name in self.nx:
            raise GraphError(f"duplicate name '{name}'", self._ctx.source)
        prefix = name or (hint.rsplit("_", 1)[0] if isinstance(hint, str) else None) or self._ctx.prefix
        with self.context(prefix=prefix):
            out = opdef.decompose(*(V(self, a) for a in args), **attrs).name
        assert self.shape(out) == tuple(shape), (opdef.name, self.shape(out), shape)
        if name is None:
            return out
        if out in args or self.nx.nodes[out]["named"] or self.nx.nodes[out]["op"] in ("input", "param"):
            return self.add("identity", [out], name=name, named=named)
        # The builder gives the decomposition's result the id the caller asked
        # for (a spec name); passes never change ids.
        self._rekey(out, name)
        self.nx.nodes[name].update(named=named, hint=name)
        return name

    def _rekey(self, old: str, new: str) -> None:
        G = self.nx
        G.add_node(new, **G.nodes[old])
        for u, _, pos in list(G.in_edges(old, data="pos")):
            G.add_edge(u, new, pos=pos)
        for _, v, pos in list(G.out_edges(old, data="pos")):
            G.add_edge(new, v, pos=pos)
        G.remove_node(old)
        self._retarget(old, new)

    # ------------------------------------------------------------ names

    def names(self) -> dict[str, str]:
        """Every node's printed name: a Python identifier, unique in the graph.

        User names (named nodes whose hint is a plain string: spec and dump
        names, and the names passes move onto the values that replace them)
        are kept exactly, first come first served. Every other node gets its hint, or the hint
        with the first free ``_2``, ``_3``... suffix, in creation order; a hint
        ``(prefix, node, suffix, fallback)`` is that node's printed name
        between ``prefix`` and ``suffix`` (``fallback`` once the node is gone). Names depend only on the nodes,
        their hints and their order, so the same graph prints the same names.
        """
        G = self.nx
        out: dict[str, str] = {}
        taken: set[str] = set()
        rest = []
        claims = []
        for n, d in G.nodes(data=True):
            h = d["hint"]
            if d["named"] and isinstance(h, str):
                claims.append((d["seq"], n))
            else:
                rest.append((d["seq"], n))
        claims.sort()
        for seq, n in claims:  # user names (kept exactly unless two want one)
            h = _identifier(G.nodes[n]["hint"][:MAX_PRINTED])
            if h in taken:
                rest.append((seq, n))
            else:
                out[n] = h
                taken.add(h)
        rest.sort()
        counters: dict[str, int] = {}
        for _, n in rest:
            h = G.nodes[n]["hint"]
            if not isinstance(h, str):
                prefix, of, suffix, fallback = h
                of = self.resolve(of)
                h = prefix + out[of] + suffix if of in out else fallback
            base = _identifier(h[:MAX_PRINTED])
            name = base
            if name in taken:
                k = counters.get(base, 2)
                while f"{base}_{k}" in taken:
                    k += 1
                counters[base] = k + 1
                name = f"{base}_{k}"
            out[n] = name
            taken.add(name)
        return out

    # ------------------------------------------------------------ queries

    def __contains__(self, name: str) -> bool:
        return name in self.nx

    def __len__(self) -> int:
        return self.nx.number_of_nodes()

    def node(self, name: str) -> Node:
        d = self.nx.nodes[name]
        return Node(
            name=name,
            op=d["op"],
            args=self.args(name),
            shape=d["shape"],
            dtype=d["dtype"],
            attrs=d["attrs"],
            phase=d["phase"],
            source=d["source"],
            origin=d["origin"],
            named=d["named"],
        )

    def op(self, name: str) -> str:
        return self.nx.nodes[name]["op"]

    def shape(self, name: str) -> tuple[int, ...]:
        return self.nx.nodes[name]["shape"]

    def dtype(self, name: str) -> str:
        return self.nx.nodes[name]["dtype"]

    def attrs(self, name: str) -> dict[str, Any]:
        return self.nx.nodes[name]["attrs"]

    def data(self, name: str) -> dict[str, Any]:
        return self.nx.nodes[name]

    def args(self, name: str) -> tuple[str, ...]:
        pred = self.nx._pred[name]  # {operand: {edge key: {"pos": i}}}
        if not pred:
            return ()
        pairs = sorted((d["pos"], u) for u, keys in pred.items() for d in keys.values())
        return tuple(u for _, u in pairs)

    def users(self, name: str) -> list[tuple[str, int]]:
        """(user, operand position) pairs, in a deterministic order."""
        uses = [(v, pos) for _, v, pos in self.nx.out_edges(name, data="pos")]
        return sorted(uses, key=lambda u: (self.nx.nodes[u[0]]["seq"], u[1]))

    def roots(self) -> list[str]:
        """The result nodes (loss, outputs, gradients), each once."""
        return list(dict.fromkeys(self.results.values()))

    # ------------------------------------------------------------ results

    def set_result(self, label: str, node: str) -> None:
        """Make ``node`` the result called ``label`` (``loss``, ``grads.w``)."""
        old = self.results.get(label)
        if old is not None:
            self._at[old].remove(label)
            if not self._at[old]:
                del self._at[old]
        self.results[label] = node
        self._at.setdefault(node, []).append(label)

    def group(self, prefix: str) -> dict[str, str]:
        """Results ``<prefix>.<key>`` as ``{key: node}``, in signature order."""
        p = prefix + "."
        return {k[len(p) :]: v for k, v in self.results.items() if k.startswith(p)}

    @property
    def loss(self) -> str | None:
        return self.results.get("loss")

    @property
    def outputs(self) -> dict[str, str]:
        return self.group("outputs")

    @property
    def grads(self) -> dict[str, str]:
        return self.group("grads")

    def topo(self, nodes: set[str] | None = None) -> list[str]:
        """Deterministic topological order (ties broken by creation order)."""
        G = self.nx
        members = set(G.nodes) if nodes is None else set(nodes)
        indeg = dict.fromkeys(members, 0)
        for n in members:
            for u, keys in G._pred[n].items():
                if u in members:
                    indeg[n] += len(keys)
        heap = [(G.nodes[n]["seq"], n) for n, d in indeg.items() if d == 0]
        heapq.heapify(heap)
        order = []
        while heap:
            _, n = heapq.heappop(heap)
            order.append(n)
            for v, keys in G._succ[n].items():
                if v in members:
                    indeg[v] -= len(keys)
                    if indeg[v] == 0:
                        heapq.heappush(heap, (G.nodes[v]["seq"], v))
        if len(order) != len(members):
            raise GraphError("the graph has a cycle")
        return order

    def ancestors(self, roots: list[str]) -> set[str]:
        """``roots`` and everything they depend on."""
        return self._reach(roots, self.nx._pred)

    def descendants(self, roots: list[str]) -> set[str]:
        """``roots`` and everything that depends on them."""
        return self._reach(roots, self.nx._succ)

    @staticmethod
    def _reach(roots: list[str], adjacency) -> set[str]:
        seen: set[str] = set()
        stack = list(roots)
        while stack:
            n = stack.pop()
            if n not in seen:
                seen.add(n)
                stack.extend(adjacency[n])
        return seen

    # ------------------------------------------------------------ rewriting

    def replace_uses(self, old: str, new: str) -> None:
        """Make every user of ``old`` use ``new`` instead; results follow."""
        if old == new:
            return
        for _, v, k, pos in list(self.nx.out_edges(old, keys=True, data="pos")):
            self.nx.remove_edge(old, v, key=k)
            self.nx.add_edge(new, v, pos=pos)
        self._retarget(old, new)

    def _retarget(self, old: str, new: str) -> None:
        labels = self._at.pop(old, None)
        if labels:
            for label in labels:
                self.results[label] = new
            self._at.setdefault(new, []).extend(labels)

    def set_args(self, name: str, args: list[str]) -> None:
        for u, _, k in list(self.nx.in_edges(name, keys=True)):
            self.nx.remove_edge(u, name, key=k)
        for i, a in enumerate(args):
            self.nx.add_edge(a, name, pos=i)

    def remove(self, name: str) -> None:
        self.nx.remove_node(name)

    def merged(self, old: str, into: str) -> None:
        """Record that ``old`` (removed) computed the same value as ``into``."""
        self._alias[old] = into

    def merged_nodes(self) -> list[str]:
        """The removed nodes recorded by :meth:`merged` (see :meth:`resolve`)."""
        return list(self._alias)

    def origin(self, n: str) -> str | None:
        """The forward node whose rule made ``n``, following merges; None
        when that node is gone (a pass replaced it by a different one)."""
        return self.resolve(self.nx.nodes[n]["origin"])

    def resolve(self, o: str | None) -> str | None:
        """``o``, or the node it was merged into; None when it is gone."""
        seen = 0
        while o is not None and o not in self.nx and o in self._alias and seen < 64:
            o, seen = self._alias[o], seen + 1
        return o if o in self.nx else None

    def copy(self) -> "Graph":
        g = copy.copy(self)
        g.nx = self.nx.copy()
        g.inputs, g.params = list(self.inputs), list(self.params)
        g.results = dict(self.results)
        g.extra_inputs = dict(self.extra_inputs)
        g._at = {n: list(ls) for n, ls in self._at.items()}
        g._alias = dict(self._alias)
        g._ctx = _Context()
        return g

    def verify(self) -> None:
        """Check the invariants every pass must keep (run between passes)."""
        from .ops import get_op

        for n in self.nx.nodes:
            d = self.nx.nodes[n]
            opdef = get_op(d["op"])
            args = self.args(n)
            if opdef.arity is not None and len(args) != opdef.arity:
                raise AssertionError(f"{n}: {d['op']} has {len(args)} operands")
            if opdef.decompose is not None:
                raise AssertionError(f"{n}: composite op {d['op']} left in the graph")
            poss = sorted(p for _, _, p in self.nx.in_edges(n, data="pos"))
            if poss != list(range(len(args))):
                raise AssertionError(f"{n}: operand positions {poss}")
            shape = opdef.infer_shape([self.shape(a) for a in args], d["attrs"], None)
            if tuple(shape) != d["shape"]:
                raise AssertionError(f"{n}: shape {d['shape']} != rule {shape}")
            if d["dtype"] not in DTYPES:
                raise AssertionError(f"{n}: unknown dtype {d['dtype']!r}")
            if args:
                dtypes = [self.dtype(a) for a in args]
                if opdef.needs_cast(dtypes) is not None:
                    raise AssertionError(f"{n}: {d['op']} of {dtypes} needs a cast")
                dtype = opdef.infer_dtype(dtypes, d["attrs"], self.float_dtype)
                if dtype != d["dtype"]:
                    raise AssertionError(f"{n}: dtype {d['dtype']} != rule {dtype}")
        for label, r in self.results.items():
            if r not in self.nx:
                raise AssertionError(f"result {label}: node {r} missing")
        self.topo()
