"""Where each node of a drawn graph goes: Graphviz's ``dot``, else a layered layout.

``layout(nodes, edges, sizes)`` returns a :class:`Layout`: each node's centre
and size, each edge's path as SVG path data, in pixels with y growing down.
The caller draws the SVG itself, so the picture is the same document with or
without Graphviz, and no text from a spec ever reaches Graphviz: nodes are
passed as ``n0, n1, ...`` with a fixed size and no label.

* With Graphviz (the ``dot`` program, what ``bpc ir --format svg`` uses):
  ``dot -Tplain`` places the nodes (its layered algorithm: few crossings,
  straight vertical chains) and routes the edges as cubic B-splines.
* Without it: :func:`layered_layout`, a small Sugiyama-style layout of our
  own: layers by longest path from a source, order in each layer by a few
  barycentre sweeps, straight edges.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from dataclasses import dataclass, field

DPI = 72.0  # Graphviz works in inches; SVG in CSS pixels (points at 72/in)
GAP_X, GAP_Y = 24.0, 48.0  # layered layout: between nodes, between layers
MARGIN = 8.0
DOT_TIMEOUT = 60  # seconds


@dataclass
class Layout:
    nodes: dict[str, tuple[float, float, float, float]]  # id -> (cx, cy, w, h)
    edges: list[tuple[str, str, str]]  # (u, v, SVG path data)
    width: float
    height: float
    engine: str  # "graphviz dot" or "layered (built-in)"
    notes: list[str] = field(default_factory=list)


def layout(
    nodes: list[str],
    edges: list[tuple[str, str]],
    sizes: dict[str, tuple[float, float]],
    use_graphviz: bool = True,
) -> Layout:
    """Positions for ``nodes`` (in topological order) joined by ``edges``
    (u -> v), each node ``sizes[n] = (width, height)`` pixels."""
    if use_graphviz and shutil.which("dot") is not None:
        try:
            return dot_layout(nodes, edges, sizes)
        except (OSError, subprocess.SubprocessError, ValueError) as e:
            out = layered_layout(nodes, edges, sizes)
            out.notes.append(f"Graphviz failed ({type(e).__name__}); the built-in layout is used")
            return out
    return layered_layout(nodes, edges, sizes)


def dot_layout(nodes: list[str], edges: list[tuple[str, str]], sizes: dict[str, tuple[float, float]]) -> Layout:
    """Graphviz ``dot -Tplain``: node centres and edge splines."""
    ids = {n: f"n{i}" for i, n in enumerate(nodes)}
    back = {v: k for k, v in ids.items()}
    lines = [
        "digraph G {",
        "  rankdir=TB; nodesep=0.2; ranksep=0.3;",
        '  node [shape=box, fixedsize=true, label=""];',
    ]
    for n in nodes:
        w, h = sizes[n]
        lines.append(f"  {ids[n]} [width={w / DPI:.4f}, height={h / DPI:.4f}];")
    for u, v in edges:
        lines.append(f"  {ids[u]} -> {ids[v]};")
    lines.append("}")
    r = subprocess.run(
        [shutil.which("dot") or "dot", "-Tplain"],
        input="\n".join(lines).encode(),
        capture_output=True,
        timeout=DOT_TIMEOUT,
    )
    if r.returncode != 0:
        raise ValueError(r.stderr.decode(errors="replace")[:200])
    height = None
    pos: dict[str, tuple[float, float, float, float]] = {}
    paths: list[tuple[str, str, str]] = []
    for line in r.stdout.decode().splitlines():
        tok = shlex.split(line)
        if not tok:
            continue
        if tok[0] == "graph":
            width, height = float(tok[2]) * DPI, float(tok[3]) * DPI
        elif tok[0] == "node" and height is not None:
            x, y = float(tok[2]) * DPI, height - float(tok[3]) * DPI
            pos[back[tok[1]]] = (x + MARGIN, y + MARGIN, *sizes[back[tok[1]]])
        elif tok[0] == "edge" and height is not None:
            k = int(tok[3])
            pts = [(float(tok[4 + 2 * i]) * DPI + MARGIN, height - float(tok[5 + 2 * i]) * DPI + MARGIN) for i in range(k)]
            d = f"M{pts[0][0]:.1f},{pts[0][1]:.1f}"
            for i in range(1, len(pts) - 2, 3):
                (a, b), (c, e), (f, g) = pts[i], pts[i + 1], pts[i + 2]
                d += f" C{a:.1f},{b:.1f} {c:.1f},{e:.1f} {f:.1f},{g:.1f}"
            paths.append((back[tok[1]], back[tok[2]], d))
    if height is None or set(pos) != set(nodes):
        raise ValueError("unexpected output from dot -Tplain")
    return Layout(pos, paths, width + 2 * MARGIN, height + 2 * MARGIN, "graphviz dot")


def layered_layout(nodes: list[str], edges: list[tuple[str, str]], sizes: dict[str, tuple[float, float]]) -> Layout:
    """A layered layout in pure Python (no Graphviz): every edge points down.

    Layer of a node: one more than the deepest of its predecessors (``nodes``
    come in topological order). Within a layer, nodes are ordered by the mean
    position of their neighbours in the layer above, then below (four
    sweeps), which removes most crossings of a network's dataflow graph.
    """
    index = {n: i for i, n in enumerate(nodes)}
    preds: dict[str, list[str]] = {n: [] for n in nodes}
    succs: dict[str, list[str]] = {n: [] for n in nodes}
    for u, v in edges:
        if index[u] >= index[v]:
            raise ValueError(f"nodes are not in topological order: {u!r} -> {v!r}")
        preds[v].append(u)
        succs[u].append(v)
    layer: dict[str, int] = {}
    for n in nodes:
        layer[n] = 1 + max((layer[p] for p in preds[n]), default=-1)
    layers: list[list[str]] = [[] for _ in range(1 + max(layer.values(), default=-1))]
    for n in nodes:
        layers[layer[n]].append(n)

    order = {n: i for lay in layers for i, n in enumerate(lay)}

    def sweep(rows, neighbours):
        for lay in rows:
            def key(n):
                ns = neighbours[n]
                return (sum(order[m] for m in ns) / len(ns), order[n]) if ns else (order[n], order[n])

            lay.sort(key=key)
            for i, n in enumerate(lay):
                order[n] = i

    for _ in range(2):
        sweep(layers[1:], preds)
        sweep(layers[-2::-1], succs)

    widths = [sum(sizes[n][0] for n in lay) + GAP_X * max(len(lay) - 1, 0) for lay in layers]
    total_w = max(widths, default=0.0)
    pos: dict[str, tuple[float, float, float, float]] = {}
    y = MARGIN
    for lay, lw in zip(layers, widths):
        lh = max(sizes[n][1] for n in lay)
        x = MARGIN + (total_w - lw) / 2
        for n in lay:
            w, h = sizes[n]
            pos[n] = (x + w / 2, y + lh / 2, w, h)
            x += w + GAP_X
        y += lh + GAP_Y
    paths = []
    for u, v in edges:
        ux, uy, _, uh = pos[u]
        vx, vy, _, vh = pos[v]
        paths.append((u, v, f"M{ux:.1f},{uy + uh / 2:.1f} L{vx:.1f},{vy - vh / 2:.1f}"))
    return Layout(pos, paths, total_w + 2 * MARGIN, y - GAP_Y + MARGIN, "layered (built-in)")
