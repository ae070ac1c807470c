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


FORWARD_ENTRY = "forward"
VALUE_AND_GRAD = "value_and_grad"


@dataclass
class Program:
    graph: Graph
    info: ModuleInfo
    wrt: tuple[str, ...] = ()
    entries: tuple[Entry, ...] = ()

    @property
    def dtype(self) -> str:
        return self.graph.float_dtype

    def but(self, **changes: Any) -> "Program":
        return replace(self, **changes)

    def entry(self, name: str) -> Entry | None:
        return next((e for e in self.entries if e.name == name), None)

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
