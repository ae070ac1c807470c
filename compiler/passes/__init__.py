"""Graph-to-graph optimization passes, run as a listed pipeline.

Each pass is a pure function ``Graph -> Graph`` (it copies its input). The
pipeline verifies the IR after every pass (tinygrad/MLIR style) and can record
per-op node counts for ``bpc ir --stats``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from ..ir import Graph
from .basic import cse, dce, fold_constants, simplify

Pass = Callable[..., Graph]  # (graph, inplace=False) -> graph

# Order matters: simplify exposes dead code and duplicates; run to a fixpoint.
PIPELINE: list[tuple[str, Pass]] = [
    ("simplify", simplify),
    ("fold", fold_constants),
    ("cse", cse),
    ("dce", dce),
]
PASS_NAMES = [n for n, _ in PIPELINE]


@dataclass
class PassReport:
    before: Counter = field(default_factory=Counter)
    after: Counter = field(default_factory=Counter)
    rounds: int = 0


def op_counts(g: Graph) -> Counter:
    return Counter(g.op(n) for n in g.nx.nodes)


def optimize(
    g: Graph,
    enabled: set[str] | None = None,
    verify: bool | str = True,
    report: PassReport | None = None,
    max_rounds: int = 10,
) -> Graph:
    """Run the enabled passes (default: all) until nothing changes.

    ``verify``: True/"each" checks the IR after every pass, "end" once at the
    end (large graphs), False never.
    """
    enabled = set(PASS_NAMES) if enabled is None else enabled
    unknown = enabled - set(PASS_NAMES)
    if unknown:
        raise ValueError(f"unknown passes: {sorted(unknown)}")
    if report is not None:
        report.before = op_counts(g)
    g = g.copy()  # one copy; the passes then rewrite it in place
    for r in range(max_rounds):
        sig = _signature(g)
        for name, fn in PIPELINE:
            if name in enabled:
                g = fn(g, inplace=True)
                if verify is True or verify == "each":
                    g.verify()
        if report is not None:
            report.rounds = r + 1
        if _signature(g) == sig:
            break
    if verify == "end":
        g.verify()
    if report is not None:
        report.after = op_counts(g)
    return g


def _signature(g: Graph) -> tuple:
    return (len(g), g.nx.number_of_edges(), tuple(sorted(op_counts(g).items())))
