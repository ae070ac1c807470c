"""The dataflow IR: a thin wrapper around ``networkx.MultiDiGraph``.

A node is one SSA value. Its key is its unique name (a Python identifier, so
it can be used as a variable in generated code), and its data holds:

``op``      registered op name (see :mod:`compiler.ops`)
``shape``   static shape, a tuple of ints
``dtype``   element type: ``"f64"``/``"f32"`` (the compile dtype), ``"bool"``
            (comparisons, masks) or ``"i64"`` (class labels, sizes), from
            each op's dtype rule
``attrs``   the op's attributes (a dict of JSON-like values)
``phase``   ``"forward"`` or ``"backward"`` (adjoint)
``source``  where in the spec the value came from (``"nodes[3]"``), or None
``origin``  for adjoint nodes: the forward node whose derivative rule made it
``named``   True when the name is meaningful to the user (spec names,
            gradient totals); codegen keeps such values as statements
``seq``     creation counter, used to break ties in the topological order

An edge ``u -> v`` with ``pos=i`` says that ``u`` is the ``i``-th operand of
``v``; a value used twice by one node has two edges (``mul x x``).

Graph-level facts live in :class:`Graph` itself: the ordered ``inputs`` and
``params``, the ``loss``, extra ``outputs``, the ``grads`` map (wrt name ->
node holding its gradient), initial values and the metadata of the spec.
"""

from __future__ import annotations

import contextlib
import copy
import heapq
import math
from dataclasses import dataclass
from typing import Any, Iterator

import networkx as nx

from .errors import GraphError, ShapeError
from .ops.registry import DTYPES

MAX_ELEMENTS = 100_000_000  # per value (static dims): a spec cannot ask for more

FORWARD = "forward"
BACKWARD = "backward"


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
class Meta:
    """What codegen needs to know about where the graph came from."""

    name: str = "model"
    spec_path: str = "<memory>"
    spec_sha256: str = ""
    description: str = ""
    seed: int = 0
    dtype: str = "f64"


@dataclass
class _Context:
    phase: str = FORWARD
    source: str | None = None
    origin: str | None = None
    prefix: str | None = None  # name prefix for temporaries (composite ops)


# Python builtins a temporary must not shadow in generated code.
_BUILTINS = frozenset(dir(__import__("builtins")))


class Graph:
    """An SSA dataflow graph with explicit operand order."""

    def __init__(self, meta: Meta | None = None):
        self.nx = nx.MultiDiGraph()
        self.meta = meta or Meta()
        self.inputs: list[str] = []
        self.params: list[str] = []
        self.loss: str | None = None
        self.outputs: dict[str, str] = {}  # output name -> node
        self.wrt: list[str] = []  # names to differentiate, in order
        self.grads: dict[str, str] = {}  # wrt name -> node holding its gradient
        self.values: dict[str, Any] = {}  # name -> np.ndarray initial value
        self.inits: dict[str, Any] = {}  # param name -> Initializer
        self.docs: dict[str, str] = {}
        self.source_text: dict[str, str] = {}  # spec location -> its text
        self.dims: dict[str, int] = {}  # symbolic dim -> example size
        self.classes: dict[str, int] = {}  # label input -> number of classes
        self._seq = 0
        self._ctx = _Context()
        self._reserved: set[str] = set()
        self._counters: dict[str, int] = {}  # fresh(): next suffix per base name

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

    def reserve(self, names: set[str] | list[str]) -> None:
        """Names that fresh() must not hand out (user names not yet added)."""
        self._reserved.update(names)

    def fresh(self, hint: str) -> str:
        """A new unique node name based on ``hint``."""
        base = hint if hint and (hint[0].isalpha()) else f"t_{hint}"
        if base in _BUILTINS:
            base = f"{base}_"
        name, k = base, self._counters.get(base, 1)
        if k > 1:
            name = f"{base}_{k}"
        while name in self.nx or name in self._reserved:
            k += 1
            name = f"{base}_{k}"
        self._counters[base] = k
        return name

    def add(
        self,
        op: str,
        args: list[str] | tuple[str, ...] = (),
        attrs: dict[str, Any] | None = None,
        name: str | None = None,
        named: bool = False,
        hint: str | None = None,
        dtype: str | None = None,
    ) -> str:
        """Add a node; its shape and dtype come from the op's rules.

        ``dtype`` is given for sources (inputs, params) only. An op that
        computes in floats but gets no float operand gets one cast first (a
        ``cast`` node): bool masks and int labels never meet in bool or int
        arithmetic.
        """
        from .ops import get_op

        opdef = get_op(op)
        attrs = opdef.normalize_attrs(dict(attrs or {}), self._ctx.source)
        args = list(args)
        k = opdef.needs_cast([self.dtype(a) for a in args])
        if k is not None:
            with self.context(prefix=None):
                args[k] = self.add("cast", [args[k]], {"dtype": self.meta.dtype}, hint=f"{args[k]}_f")
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
        if name is None:
            prefix = self._ctx.prefix
            name = self.fresh(hint or (f"{prefix}_{op}" if prefix else op))
        elif name in self.nx:
            raise GraphError(f"duplicate name '{name}'", self._ctx.source)
        if dtype is None:
            dtype = opdef.infer_dtype([self.dtype(a) for a in args], attrs, self.meta.dtype)
        self._seq += 1
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
        prefix = name or (hint.rsplit("_", 1)[0] if hint else None) or self._ctx.prefix
        with self.context(prefix=prefix):
            out = opdef.decompose(*(V(self, a) for a in args), **attrs).name
        assert self.shape(out) == tuple(shape), (opdef.name, self.shape(out), shape)
        if name is None:
            return out
        if out in args or self.nx.nodes[out]["named"] or self.nx.nodes[out]["op"] in ("input", "param"):
            return self.add("identity", [out], name=name, named=named)
        self.rename(out, name)
        self.nx.nodes[name]["named"] = named
        return name

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
        """Values the user can ask for: loss, outputs and gradients."""
        out = [self.loss] if self.loss else []
        out += list(self.outputs.values()) + list(self.grads.values())
        return list(dict.fromkeys(out))

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
        """Make every user of ``old`` use ``new`` instead; roots follow."""
        if old == new:
            return
        for _, v, k, pos in list(self.nx.out_edges(old, keys=True, data="pos")):
            self.nx.remove_edge(old, v, key=k)
            self.nx.add_edge(new, v, pos=pos)
        self._retarget(old, new)

    def _retarget(self, old: str, new: str) -> None:
        if self.loss == old:
            self.loss = new
        self.outputs = {k: (new if o == old else o) for k, o in self.outputs.items()}
        self.grads = {w: (new if g == old else g) for w, g in self.grads.items()}

    def set_args(self, name: str, args: list[str]) -> None:
        for u, _, k in list(self.nx.in_edges(name, keys=True)):
            self.nx.remove_edge(u, name, key=k)
        for i, a in enumerate(args):
            self.nx.add_edge(a, name, pos=i)

    def remove(self, name: str) -> None:
        self.nx.remove_node(name)

    def rename(self, old: str, new: str) -> None:
        G = self.nx
        G.add_node(new, **G.nodes[old])
        for u, _, pos in list(G.in_edges(old, data="pos")):
            G.add_edge(u, new, pos=pos)
        for _, v, pos in list(G.out_edges(old, data="pos")):
            G.add_edge(new, v, pos=pos)
        G.remove_node(old)
        self._retarget(old, new)

    def copy(self) -> "Graph":
        g = copy.copy(self)
        g.nx = self.nx.copy()
        g.inputs, g.params = list(self.inputs), list(self.params)
        g.outputs, g.grads = dict(self.outputs), dict(self.grads)
        g.wrt = list(self.wrt)
        g.values, g.inits, g.docs = dict(self.values), dict(self.inits), dict(self.docs)
        g.source_text = dict(self.source_text)
        g.dims = dict(self.dims)
        g.classes = dict(self.classes)
        g._reserved = set(self._reserved)
        g._counters = dict(self._counters)
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
                dtype = opdef.infer_dtype(dtypes, d["attrs"], self.meta.dtype)
                if dtype != d["dtype"]:
                    raise AssertionError(f"{n}: dtype {d['dtype']} != rule {dtype}")
        for r in self.roots():
            if r not in self.nx:
                raise AssertionError(f"root {r} missing")
        self.topo()
