"""Graph-to-graph optimization passes, run as a listed pipeline.

A pass rewrites a graph in place and returns whether it changed anything;
it counts what it did (``Counter`` keys such as ``"cse: merged"`` or a
simplify rewrite's name) for ``bpc ir --stats``. :func:`optimize` copies its
input once, runs the enabled passes in order until a round changes nothing,
and verifies the IR after every pass (tinygrad/MLIR style) or once at the end.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from ..ir import Graph
from .basic import cse, dce, fold_constants, simplify

Pass = Callable[[Graph, Counter], bool]  # rewrites in place; True when it changed the graph


def _dce(g: Graph, counts: Counter) -> bool:
    before = len(g)
    changed = dce(g)
    counts["dce: removed nodes"] += before - len(g)
    return changed


def _cse(g: Graph, counts: Counter) -> bool:
    before = len(g)
    changed = cse(g)
    counts["cse: merged nodes"] += before - len(g)
    return changed


def _fold(g: Graph, counts: Counter) -> bool:
    before = sum(1 for n in g.nx.nodes if g.op(n) == "const")
    changed = fold_constants(g)
    counts["fold: folded nodes"] += sum(1 for n in g.nx.nodes if g.op(n) == "const") - before
    return changed


def _simplify(g: Graph, counts: Counter) -> bool:
    done: Counter = Counter()
    changed = simplify(g, done)
    for k, v in done.items():
        counts[f"simplify: {k}"] += v
    return changed


# Order matters: simplify exposes dead code and duplicates; run to a fixpoint.
PIPELINE: list[tuple[str, Pass]] = [
    ("simplify", _simplify),
    ("fold", _fold),
    ("cse", _cse),
    ("dce", _dce),
]
PASS_NAMES = [n for n, _ in PIPELINE]


@dataclass
class PassReport:
    before: Counter = field(default_factory=Counter)
    after: Counter = field(default_factory=Counter)
    rounds: int = 0
    rewrites: Counter = field(default_factory=Counter)  # what the passes did, by name


def op_counts(g: Graph) -> Counter:
    return Counter(g.op(n) for n in g.nx.nodes)


def optimize(
    g: Graph,
    enabled: set[str] | None = None,
    verify: bool | str = True,
    report: PassReport | None = None,
    max_rounds: int = 10,
) -> Graph:
    """A copy of ``g`` with the enabled passes (default: all) run until none
    changes it.

    ``verify``: True/"each" checks the IR after every pass, "end" once at the
    end (large graphs), False never.
    """
    enabled = set(PASS_NAMES) if enabled is None else enabled
    unknown = enabled - set(PASS_NAMES)
    if unknown:
        raise ValueError(f"unknown passes: {sorted(unknown)}")
    report = report if report is not None else PassReport()
    report.before = op_counts(g)
    g = g.copy()  # one copy; the passes then rewrite it in place
    for r in range(max_rounds):
        changed = False
        for name, fn in PIPELINE:
            if name in enabled:
                changed |= fn(g, report.rewrites)
                if verify is True or verify == "each":
                    g.verify()
        report.rounds = r + 1
        if not changed:
            break
    if verify == "end":
        g.verify()
    report.after = op_counts(g)
    return g
