"""A program: a graph, what the module is, and the functions to emit.

The three parts are separate values:

* :class:`~compiler.ir.Graph`: dataflow and the ordered signature (params,
  inputs, named results). Transforms and passes work on graphs alone.
* :class:`ModuleInfo`: what the spec says about the module, which no
  transform changes: name, description, initial values and initializers,
  docs, symbolic dims and their example sizes, class counts, the spec text of
  each node (for comments). Stages of one compile share it.
* :class:`Entry` points: the functions codegen writes, each a name and the
  result groups it returns (``("loss", "grads")`` for ``value_and_grad``). A
  group is one result (``loss``) or every result ``<group>.<key>`` as a dict.

A program also carries the request ``wrt`` (what to differentiate), which
lives in neither the graph nor the module info: it is what the user asked of
this compile.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from .ir import Graph


@dataclass
class ModuleInfo:
    name: str = "model"
    spec_path: str = "<memory>"
    spec_sha256: str = ""
    description: str = ""
    seed: int = 0
    values: dict[str, Any] = field(default_factory=dict)  # name -> np.ndarray initial value
    inits: dict[str, Any] = field(default_factory=dict)  # param name -> Initializer
    docs: dict[str, str] = field(default_factory=dict)
    source_text: dict[str, str] = field(default_factory=dict)  # spec location -> its text
    dims: dict[str, int] = field(default_factory=dict)  # symbolic dim -> example size
    classes: dict[str, int] = field(default_factory=dict)  # label input -> number of classes


@dataclass(frozen=True)
class Entry:
    """One generated function: its name and the result groups it returns."""

    name: str
    returns: tuple[str, ...]
    takes: tuple[str, ...] = ()  # dict arguments: groups of Graph.extra_inputs
    # A composite entry (jacobian, hessian) computes nothing of its own: it
    # calls this entry point once per basis vector.
    calls: str | None = None


FORWARD_ENTRY = "forward"
VALUE_AND_GRAD = "value_and_grad"


@dataclass
class Program:
    graph: Graph
    info: ModuleInfo
    wrt: tuple[str, ...] = ()
    entries: tuple[Entry, ...] = ()
    notes: tuple[str, ...] = ()  # what the user should know (a zero gradient and why)

    @property
    def dtype(self) -> str:
        return self.graph.float_dtype

    def but(self, **changes: Any) -> "Program":
        return replace(self, **changes)

    def entry(self, name: str) -> Entry | None:
        return next((e for e in self.entries if e.name == name), None)

    def needed(self, functions) -> tuple[Entry, ...]:
        """The entries in ``functions``, with those their composites call."""
        keep = set(functions)
        keep |= {e.calls for e in self.entries if e.name in keep and e.calls}
        return tuple(e for e in self.entries if e.name in keep)

    def returned(self, entry: Entry) -> list[str | dict[str, str]]:
        """What ``entry`` returns: per group, a node or a ``{key: node}`` dict."""
        g = self.graph
        out: list[str | dict[str, str]] = []
        for grp in entry.returns:
            if grp in g.results:
                out.append(g.results[grp])
            else:
                out.append(g.group(grp))
        return out

    def takes(self, entry: Entry) -> list[tuple[str, dict[str, str]]]:
        """The dict arguments of ``entry``: (argument name, {key: input node})."""
        out = []
        for grp in entry.takes:
            p = grp + "."
            out.append((grp, {k[len(p) :]: v for k, v in self.graph.extra_inputs.items() if k.startswith(p)}))
        return out

    def roots(self, entry: Entry) -> list[str]:
        nodes: list[str] = []
        for r in self.returned(entry):
            nodes += [r] if isinstance(r, str) else list(r.values())
        return list(dict.fromkeys(nodes))


def forward_entry(g: Graph) -> Entry:
    """``forward``: the loss, and the outputs when the spec declares any."""
    return Entry(FORWARD_ENTRY, ("loss", "outputs") if g.outputs else ("loss",))


def gradient_entries(g: Graph) -> tuple[Entry, ...]:
    return (forward_entry(g), Entry(VALUE_AND_GRAD, ("loss", "grads")))


JVP, VJP, HVP = "jvp", "vjp", "hvp"
JACOBIAN, HESSIAN = "jacobian", "hessian"
COMPOSITE_MAX = 256  # basis vectors a jacobian or hessian may take (one call each)


def add_modes(p: Program, functions: tuple[str, ...]) -> Program:
    """``p`` (a joint program) with the forward-mode entry points asked for:
    ``jvp`` (the loss's and outputs' derivatives along tangents of the wrt
    values) and ``hvp`` (Hessian of the loss times vectors, forward over
    reverse: one tangent pass through the joint graph, no Hessian)."""
    from .autodiff import _jvp
    from .errors import GraphError
    from .ir import TANGENT

    g = p.graph.copy()
    composites: list[Entry] = []
    if HESSIAN in functions:
        _check_basis(g, list(p.wrt), "hessian", "the wrt values")
        composites.append(Entry(HESSIAN, (), (), HVP))
    if JACOBIAN in functions:
        if not g.outputs:
            raise GraphError("jacobian needs outputs: declare them in the spec's \"outputs\"", "emit")
        k_in = _check_basis(g, list(p.wrt), "jacobian", "the wrt values")
        k_out = _check_basis(g, list(g.outputs.values()), "jacobian", "the outputs")
        # one call per basis vector of the smaller side: reverse mode when
        # the outputs are fewer, forward mode when the inputs are
        composites.append(Entry(JACOBIAN, (), (), VJP if k_out < k_in else JVP))
    for e in composites:
        if e.calls in g.params + g.inputs:
            raise GraphError(f"{e.name} calls {e.calls}(...): rename the value '{e.calls}'", "emit")
    wanted = set(functions) | {e.calls for e in composites}
    modes = [f for f in (JVP, VJP, HVP) if f in wanted]
    if not modes:
        return p
    for i, w in enumerate(p.wrt):
        if g.op(w) not in ("param", "input"):
            raise GraphError(
                f"{' and '.join(modes)} need{'s' if len(modes) == 1 else ''} wrt values that are params or inputs; '{w}' is computed",
                f"wrt[{i}]",
            )
    for mode, group in ((JVP, "tangents"), (VJP, "cotangents"), (HVP, "vectors")):
        if mode in modes and group in g.params + g.inputs:
            raise GraphError(f"{mode} takes a dict argument '{group}': rename the value '{group}'", "emit")
    entries = list(p.entries)

    def seeds(group: str, prefix: str) -> list[str]:
        out = []
        for w in p.wrt:
            with g.context(phase=TANGENT, origin=w, source=g.data(w)["source"]):
                t = g.add("input", [], {"shape": g.shape(w)}, hint=(prefix, w, "", prefix + w), named=True)
            g.extra_inputs[f"{group}.{w}"] = t
            out.append(t)
        return out

    def zero_if_none(node: str | None, like: str, phase: str = TANGENT) -> str:
        if node is not None:
            return node
        with g.context(phase=phase, origin=like):
            return g.add("zeros_like", [like], hint="zeros")

    if JVP in modes:
        outs = [g.loss] + list(g.outputs.values())
        got = _jvp(g, list(p.wrt), seeds("tangents", "t_"), outs)
        g.set_result("d_loss", zero_if_none(got[0], g.loss))
        for (k, o), t in zip(list(g.outputs.items()), got[1:]):
            g.set_result(f"d_outputs.{k}", zero_if_none(t, o))
        returns = ("loss", "d_loss") + (("d_outputs",) if g.outputs else ())
        entries.append(Entry(JVP, returns, ("tangents",)))
    if HVP in modes:
        grads = g.grads
        got = _jvp(g, list(p.wrt), seeds("vectors", "v_"), [grads[w] for w in p.wrt])
        for w, t in zip(p.wrt, got):
            g.set_result(f"hvp.{w}", zero_if_none(t, w))
        entries.append(Entry(HVP, ("loss", "grads", "hvp"), ("vectors",)))
    if VJP in modes:
        if not g.outputs:
            raise GraphError("vjp needs outputs: declare them in the spec's \"outputs\"", "emit")
        from .autodiff import _vjp
        from .ir import BACKWARD

        cots = []
        for k, o in g.outputs.items():
            with g.context(phase=BACKWARD, origin=o, source=g.data(o)["source"]):
                ct = g.add("input", [], {"shape": g.shape(o)}, hint=("u_", o, "", "u_" + k), named=True)
            g.extra_inputs[f"cotangents.{k}"] = ct
            cots.append(ct)
        got = _vjp(g, list(g.outputs.values()), cots, list(p.wrt))
        for w, r in zip(p.wrt, got):
            g.set_result(f"vjp.{w}", zero_if_none(r, w, BACKWARD))
        entries.append(Entry(VJP, ("outputs", "vjp"), ("cotangents",)))
    return p.but(graph=g, entries=tuple(entries + composites))


def _check_basis(g, nodes: list[str], what: str, of: str) -> int:
    """The number of elements of ``nodes`` (static, and at most COMPOSITE_MAX)."""
    from .errors import GraphError
    from .ops.registry import is_static

    total = 0
    for n in nodes:
        if not is_static(g.shape(n)):
            raise GraphError(f"{what} needs fixed sizes; a value has the symbolic shape {list(g.shape(n))}", "emit")
        size = 1
        for d in g.shape(n):
            size *= d
        total += size
    if total > COMPOSITE_MAX:
        raise GraphError(
            f"{what}: {of} have {total} elements; the limit is {COMPOSITE_MAX} "
            f"(one call per element): use {'hvp' if what == 'hessian' else 'jvp or vjp'}",
            "emit",
        )
    return total
