"""``bpc report``: one self-contained HTML page that shows every step.

The page holds, with no network access (inline CSS, inline SVG, one small
inline script, a Content-Security-Policy that allows nothing else):

* the graph the module is generated from (forward and adjoint nodes, the
  optimized IR), each node with its printed name (the generated code's
  variable), op, shape, value and the loss's gradient with respect to it;
  forward and backward edges drawn apart;
* each spec statement beside the generated lines it became, linked both ways,
  and the whole module with line numbers (click a node: its lines light up);
* the finite-difference check table and ``explain``'s paths for one wrt value.

Where the numbers come from. Inputs and params: the module's own
``init_params(seed)`` and ``example_inputs(seed)``. The loss and the
gradients of the wrt values: the generated module's ``value_and_grad`` (what
a user of the module gets). Every other value: the reference interpreter on
the same graph (``runtime/interpreter.py``); the gradient of the loss with
respect to an intermediate value: the interpreter on the forward graph (each
spec value its own node) extended by reverse mode to every forward value
(``compiler/autodiff.vjp``), so it is what ``--wrt NAME`` would give. The page
states how far the interpreter is from the module where both compute a value.

Everything that comes from a spec (names, description, docs, statement text,
the file path) is escaped with :func:`html.escape`; no spec text reaches the
script or Graphviz (see ``compiler/layout.py``).
"""

from __future__ import annotations

import ast
import base64
import hashlib
import html
import json
import math
import re
import struct
import zlib
from dataclasses import dataclass, field

import numpy as np

from ..compiler.autodiff import vjp
from ..compiler.codegen import statement_owners
from ..compiler.errors import BpcError, SpecError
from ..compiler.ir import BACKWARD, FORWARD, TANGENT
from ..compiler.layout import Layout, layout
from ..compiler.ops.registry import is_float
from ..compiler.pipeline import Compiled
from . import interpreter
from .check import CheckResult, check_compiled, example_arrays
from .loader import load_source

SMALL_IN_GRAPH = 6  # elements shown in full inside a graph node
SMALL_IN_TABLE = 64  # elements shown in full in the table (and in data-*)
THUMB_CELLS = 24  # a heat map has at most this many cells a side
CHAR_W, LINE_H = 6.6, 14.0  # monospace 11px
MAX_GRAPH_NODES = 2000  # above: the table and code only, no picture


def esc(text) -> str:
    """Text for HTML content or a quoted attribute value."""
    return html.escape(str(text), quote=True)


# ------------------------------------------------------------------ numbers


def _num(x) -> str:
    x = float(x)
    if math.isnan(x) or math.isinf(x):
        return str(x)
    if x == 0:
        return "0"
    return f"{x:.4g}"


def _summary(a: np.ndarray) -> dict:
    f = np.asarray(a, dtype=np.float64)
    return {"shape": list(f.shape), "min": float(np.min(f)), "max": float(np.max(f)), "mean": float(np.mean(f))}


def _data(a: np.ndarray | None):
    """What ``data-value``/``data-grad`` hold: the full array when small, else a summary."""
    if a is None:
        return None
    a = np.asarray(a)
    if a.size <= SMALL_IN_TABLE:
        return {"shape": list(a.shape), "values": np.asarray(a, dtype=np.float64).reshape(-1).tolist()}
    return _summary(a)


def _rows(a: np.ndarray) -> list[str]:
    """A small array as text lines: one per row of its last two axes."""
    if a.ndim == 0:
        return [_num(a)]
    if a.ndim == 1:
        return ["[" + " ".join(_num(x) for x in a) + "]"]
    m = a.reshape(-1, a.shape[-1])
    return ["[" + " ".join(_num(x) for x in row) + "]" for row in m]


def _summary_text(a: np.ndarray) -> str:
    s = _summary(a)
    return f"min {_num(s['min'])} mean {_num(s['mean'])} max {_num(s['max'])}"


def _heat_cells(a: np.ndarray) -> np.ndarray:
    """``a`` as a 2-D grid of at most THUMB_CELLS a side (block means)."""
    f = np.asarray(a, dtype=np.float64)
    if f.ndim == 0:
        f = f.reshape(1, 1)
    elif f.ndim == 1:
        f = f.reshape(1, -1)
    elif f.ndim > 2:
        f = f.reshape(-1, f.shape[-1])
    for axis in (0, 1):
        n = f.shape[axis]
        k = min(n, THUMB_CELLS)
        edges = np.linspace(0, n, k + 1).astype(int)
        blocks = [np.take(f, range(edges[i], max(edges[i + 1], edges[i] + 1)), axis=axis).mean(axis=axis) for i in range(k)]
        f = np.stack(blocks, axis=axis)
    return f


def heatmap_png(a: np.ndarray) -> tuple[str, int, int]:
    """A heat map of ``a`` as a base64 PNG (one pixel per cell; red positive,
    blue negative, white zero), and its width and height in cells."""
    grid = _heat_cells(a)
    finite = grid[np.isfinite(grid)]
    scale = float(np.max(np.abs(finite))) if finite.size else 1.0
    scale = scale or 1.0
    t = np.clip(np.nan_to_num(grid / scale, nan=0.0), -1.0, 1.0)
    fade = np.rint(255 * (1 - np.abs(t))).astype(np.uint8)
    full = np.full_like(fade, 255)
    rgb = np.stack([np.where(t > 0, full, fade), fade, np.where(t < 0, full, fade)], axis=-1)
    rgb[~np.isfinite(grid)] = 0  # NaN or inf: black
    rows, cols = grid.shape
    raw = b"".join(b"\x00" + rgb[i].tobytes() for i in range(rows))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", cols, rows, 8, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    return base64.b64encode(png).decode("ascii"), cols, rows


def heatmap_svg(a: np.ndarray, cell: float = 3.0, x: float = 0.0, y: float = 0.0, standalone: bool = True) -> str:
    """A heat-map thumbnail of ``a``: an inline PNG, each cell ``cell`` pixels."""
    data, cols, rows = heatmap_png(a)
    w, h = cols * cell, rows * cell
    img = (
        f'<image class="heat" x="{x:.1f}" y="{y:.1f}" width="{w:.0f}" height="{h:.0f}" preserveAspectRatio="none" '
        f'href="data:image/png;base64,{data}"/>'
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.0f}" height="{h:.0f}" fill="none" stroke="#999" stroke-width="0.5"/>'
    )
    if not standalone:
        return f'<g class="heat">{img}</g>'
    return (
        f'<svg class="heat" width="{w + 1:.0f}" height="{h + 1:.0f}" viewBox="0 0 {w + 1:.0f} {h + 1:.0f}" '
        f'role="img" aria-label="heat map">{img}</svg>'
    )


def _cell(a: np.ndarray | None, empty: str) -> str:
    """A value in the table: in full when small, else a summary and a heat map."""
    if a is None:
        return f'<span class="none">{esc(empty)}</span>'
    a = np.asarray(a)
    if a.size <= SMALL_IN_TABLE:
        return '<pre class="arr">' + esc("\n".join(_rows(a))) + "</pre>"
    return f'<span class="sum">{esc(_summary_text(a))}</span><br>{heatmap_svg(a, 4.0)}'


# ------------------------------------------------------------------ the data


@dataclass
class NodeView:
    key: str  # node id in the graph
    index: int
    name: str  # printed name: the generated code's variable
    op: str
    phase: str
    shape: tuple
    source: str | None
    origin: str | None  # printed name of the forward node whose rule made it
    value: np.ndarray | None = None
    grad: np.ndarray | None = None
    grad_note: str = ""
    lines: list[int] = field(default_factory=list)
    merged: list[str] = field(default_factory=list)  # spec values the optimizer merged into it


@dataclass
class ReportData:
    compiled: Compiled
    seed: int | None
    nodes: list[NodeView]
    edges: list[tuple[str, str, str]]  # (u, v, phase of the edge)
    source_lines: list[str]
    line_nodes: dict[int, list[int]]  # module line -> node indices
    line_spec: dict[int, str]  # module line -> spec location
    spec_rows: list[tuple[str, str, list[int]]]  # (location, text, module lines)
    loss: float
    module_vs_interpreter: float
    check: CheckResult | None
    explain_wrt: str | None
    explain_text: str
    notes: list[str]


def _ensure_value_and_grad(c: Compiled) -> Compiled:
    if c.optimized.entry("value_and_grad") is not None:
        return c
    from ..compiler.pipeline import compile_spec

    if c.spec is None:
        raise SpecError("bpc report needs value_and_grad in the module (add it to --emit)", "--emit")
    return compile_spec(c.spec, options=c.options.but(functions=tuple(c.options.functions or ()) + ("value_and_grad",)))


def _line_map(source: str, names: dict[str, str], owners: dict[str, set[str]], roots: set[str]):
    """Module lines of each node's statements, and the spec location of comment lines."""
    tree = ast.parse(source)
    var_lines: dict[str, list[int]] = {}
    return_lines: list[int] = []
    for fn in tree.body:
        if not isinstance(fn, ast.FunctionDef) or fn.name.startswith("_") or fn.name in ("init_params", "example_inputs"):
            continue
        for st in fn.body:
            span = list(range(st.lineno, (st.end_lineno or st.lineno) + 1))
            if isinstance(st, ast.Assign) and len(st.targets) == 1 and isinstance(st.targets[0], ast.Name):
                var_lines.setdefault(st.targets[0].id, []).extend(span)
            elif isinstance(st, ast.AugAssign) and isinstance(st.target, ast.Name):
                var_lines.setdefault(st.target.id, []).extend(span)
            elif isinstance(st, ast.Return):
                return_lines.extend(span)
    text = source.split("\n")
    by_node: dict[str, list[int]] = {}
    for n, own in owners.items():
        lines: set[int] = set()
        for o in own:
            lines |= set(var_lines.get(names[o], ()))
        if n in roots:  # the lines of a return statement that name it
            word = re.compile(rf"\b{re.escape(names[n])}\b")
            lines |= {ln for ln in return_lines if word.search(text[ln - 1])}
        by_node[n] = sorted(lines)
    return by_node


def collect(c: Compiled, seed: int | None = None, wrt: str | None = None, check: bool = True, samples: int | None = 256) -> ReportData:
    """Everything the page shows, computed once."""
    c = _ensure_value_and_grad(c)
    p = c.optimized
    g = p.graph
    names = g.names()
    module = load_source(c.source, c.name)
    arrays = example_arrays(module, seed)
    loss_m, grads_m = module.value_and_grad(**arrays)
    notes: list[str] = []
    np_dtype = np.float32 if g.float_dtype == "f32" else np.float64

    # Values: the interpreter on the graph the module is generated from
    # (values that need a jvp/vjp/hvp argument are not shown).
    extra = list(g.extra_inputs.values())
    unreachable = g.descendants(extra) if extra else set()
    keys = [n for n in g.topo() if n not in unreachable]
    values = interpreter.evaluate(g, arrays, keys, dtype=np_dtype)

    # Gradients of the loss w.r.t. every forward float value on a path to
    # it, as the spec means them (what --wrt NAME gives): on the forward graph,
    # where each spec value is its own node. Node ids survive the passes, so
    # they index the optimized graph too; a value a pass made (not in the
    # forward graph) gets its gradient on the optimized graph.
    fwd = c.forward.graph
    on_path = g.ancestors([g.loss])
    fwd_keys = [n for n in keys if g.data(n)["phase"] == FORWARD and is_float(g.dtype(n)) and n in on_path]
    grads = {}
    for graph, wanted in ((fwd, [n for n in fwd_keys if n in fwd]), (g, [n for n in fwd_keys if n not in fwd])):
        if wanted and graph.loss is not None:
            grads.update(_loss_gradients(graph, wanted, arrays, np_dtype))
    merged: dict[str, list[str]] = {}
    for old in g.merged_nodes():
        into = g.resolve(old)
        if into is not None and old in fwd and fwd.data(old)["named"]:
            merged.setdefault(into, []).append(old)

    # Where the module computes a value itself, show the module's and measure
    # how far the interpreter is from it.
    diffs = []

    def adopt(table, key, val):
        val = np.asarray(val)
        if key in table:
            ref = np.asarray(table[key], dtype=np.float64)
            scale = max(1.0, float(np.max(np.abs(ref)))) if ref.size else 1.0
            diffs.append(float(np.max(np.abs(np.asarray(val, dtype=np.float64) - ref))) / scale if ref.size else 0.0)
        table[key] = val

    adopt(values, g.loss, loss_m)
    for w, node in g.grads.items():
        adopt(values, node, grads_m[w])
    printed_to_key = {v: k for k, v in names.items()}
    for w in g.grads:
        k = printed_to_key.get(w, w)
        if k in g and g.data(k)["phase"] == FORWARD:
            adopt(grads, k, grads_m[w])
    module_vs_interp = max(diffs, default=0.0)

    # Code lines per node, over every function the module has.
    roots: set[str] = set()
    owners: dict[str, set[str]] = {}
    for e in p.entries:
        if e.calls is not None:
            continue
        for n, own in statement_owners(p, e).items():
            owners.setdefault(n, set()).update(own)
        roots |= set(p.roots(e))
    node_lines = _line_map(c.source, names, owners, roots)

    index = {n: i for i, n in enumerate(g.topo())}
    views = []
    for n in g.topo():
        d = g.data(n)
        o = g.origin(n) if d["phase"] != FORWARD else None
        v = NodeView(n, index[n], names[n], d["op"], d["phase"], tuple(d["shape"]), d["source"], names.get(o) if o else None)
        v.value = values.get(n)
        if d["phase"] == FORWARD:
            if n in grads:
                v.grad = grads[n]
            elif not is_float(d["dtype"]):
                v.grad_note = "no gradient (not a float)"
            elif n not in on_path:
                v.grad_note = "the loss does not depend on it"
            else:
                v.grad_note = "no gradient reaches it (piecewise-constant ops)"
        else:
            v.grad_note = "an adjoint value"
        if n in unreachable:
            v.grad_note = "needs a jvp/vjp/hvp argument"
        v.lines = node_lines.get(n, [])
        v.merged = sorted(fwd.names()[m] for m in merged.get(n, []))
        views.append(v)

    source_lines = c.source.split("\n")
    if source_lines and source_lines[-1] == "":
        source_lines.pop()
    line_nodes: dict[int, list[int]] = {}
    for v in views:
        for ln in v.lines:
            line_nodes.setdefault(ln, []).append(v.index)

    # Spec statements in order of first use, and the module lines they became.
    info = p.info
    locs: list[str] = []
    for n in g.topo():
        s = g.data(n)["source"]
        if s and s not in locs:
            locs.append(s)
    for loc in info.source_text:
        if loc not in locs:
            locs.append(loc)
    comment_loc: dict[int, str] = {}
    current = None
    for i, text in enumerate(source_lines, 1):
        t = text.strip()
        hit = next((loc for loc in locs if t.startswith(f"# {loc}:")), None)
        if hit is not None:
            current = hit
            comment_loc[i] = hit
        elif t.startswith("#   ") and current is not None:
            comment_loc[i] = current
        elif not t.startswith("#"):
            current = None
    spec_rows = []
    line_spec: dict[int, str] = dict(comment_loc)
    for loc in locs:
        members = [v for v in views if v.source == loc]
        # a literal constant is written into every statement that uses it,
        # whichever spec statement first made it: it claims no line
        lines = sorted({ln for v in members if v.op != "const" for ln in v.lines} | {ln for ln, lc in comment_loc.items() if lc == loc})
        text = info.source_text.get(loc)
        if text is None:
            decl = [v for v in members if v.op in ("param", "input")]
            text = ", ".join(f"{v.op} {v.name}: {shape_text(v.shape)}" for v in decl) or ", ".join(v.name for v in members[:4])
        spec_rows.append((loc, text, lines))
        for ln in lines:
            line_spec.setdefault(ln, loc)

    result = None
    if check:
        try:
            result = check_compiled(c, seed=seed, max_elements=samples)
        except BpcError as e:  # a check this compile cannot have (a float32 IR dump)
            notes.append(f"gradient check not run: {e.one_line()}")

    explain_wrt, explain_text = _explain(c, wrt)
    edges = []
    for n in g.topo():
        for a in g.args(n):
            edges.append((a, n, g.data(n)["phase"]))
    return ReportData(
        c, seed, views, edges, source_lines, line_nodes, line_spec, spec_rows,
        float(np.sum(np.asarray(loss_m, dtype=np.float64))), module_vs_interp, result, explain_wrt, explain_text, notes,
    )


def _loss_gradients(graph, wanted: list[str], arrays, np_dtype) -> dict[str, np.ndarray]:
    """d loss / d n for each ``n`` in ``wanted`` a gradient reaches: ``graph``
    extended by reverse mode (seed 1), run by the reference interpreter."""
    h = graph.copy()
    with h.context(phase=BACKWARD, origin=graph.loss):
        seed_node = h.add("const", [], {"value": 1.0, "shape": graph.shape(graph.loss)}, hint="seed")
    h, gnodes = vjp(h, [graph.loss], [seed_node], wanted)
    grad_of = {t: gn for t, gn in zip(wanted, gnodes) if gn is not None}
    if not grad_of:
        return {}
    vals = interpreter.evaluate(h, arrays, list(dict.fromkeys(grad_of.values())), dtype=np_dtype)
    return {t: vals[gn] for t, gn in grad_of.items()}


def _explain(c: Compiled, wrt: str | None) -> tuple[str | None, str]:
    from ..compiler.codegen import generated_lines
    from ..compiler.explain import explain

    grads = c.optimized.graph.grads
    if wrt is None:
        if not grads:
            return None, "(nothing to explain: the spec asks for no gradient)"
        wrt = next(iter(grads))
    elif wrt not in grads:
        raise SpecError(f"'{wrt}' is not one of the wrt values ({', '.join(grads) or 'none'})", "--explain")
    try:
        e = explain(c.forward, wrt)
    except BpcError as err:
        return wrt, f"(explain: {err.message})"
    e.generated = generated_lines(c.optimized, wrt)
    return wrt, e.text()


# ------------------------------------------------------------------ drawing


PHASE_CLASS = {FORWARD: "fwd", BACKWARD: "bwd", TANGENT: "tan"}


def shape_text(shape) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def _node_text(v: NodeView) -> tuple[list[tuple[str, str]], list[np.ndarray]]:
    """Lines of a graph node (css class, text), and the arrays to show as heat maps."""
    out = [("nname", v.name), ("nop", f"{v.op} {shape_text(v.shape)}")]
    heat = []
    for label, a in (("value", v.value), ("grad", v.grad)):
        if a is None:
            continue
        a = np.asarray(a)
        if a.size <= SMALL_IN_GRAPH:
            rows = _rows(a)
            out.append(("n" + label, f"{label} {rows[0]}"))
            out += [("n" + label, " " * (len(label) + 1) + r) for r in rows[1:]]
        else:
            out.append(("n" + label, f"{label} {_summary_text(a)}"))
            heat.append(a)
    return out, heat


def graph_svg(data: ReportData, use_graphviz: bool = True) -> tuple[str, Layout]:
    texts = {}
    sizes = {}
    for v in data.nodes:
        lines, heat = _node_text(v)
        cells = [_heat_cells(a).shape for a in heat]
        w = max(max(len(t) for _, t in lines) * CHAR_W, sum(c * 3 + 8 for _, c in cells)) + 16
        hgt = len(lines) * LINE_H + 10 + (max(r for r, _ in cells) * 3 + 6 if cells else 0)
        texts[v.key] = (lines, heat)
        sizes[v.key] = (max(w, 60.0), hgt)
    keys = [v.key for v in data.nodes]
    lay = layout(keys, [(u, v) for u, v, _ in data.edges], sizes, use_graphviz=use_graphviz)
    parts = [
        f'<svg class="graph" xmlns="http://www.w3.org/2000/svg" width="{lay.width:.0f}" height="{lay.height:.0f}" '
        f'viewBox="0 0 {lay.width:.0f} {lay.height:.0f}" role="img" aria-label="forward and adjoint graph">',
        "<defs>",
        '<marker id="ah-fwd" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto">'
        '<path d="M0,0 L10,5 L0,10 z" fill="#334155"/></marker>',
        '<marker id="ah-bwd" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto">'
        '<path d="M0,0 L10,5 L0,10 z" fill="#b91c1c"/></marker>',
        '<marker id="ah-tan" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto">'
        '<path d="M0,0 L10,5 L0,10 z" fill="#6d28d9"/></marker>',
        "</defs>",
        '<g class="edges">',
    ]
    phase = {}
    for u, v, ph in data.edges:
        phase.setdefault((u, v), ph)
    for u, v, d in lay.edges:
        cls = PHASE_CLASS.get(phase.get((u, v), FORWARD), "fwd")
        parts.append(f'<path class="edge {cls}" d="{d}" marker-end="url(#ah-{cls})"/>')
    parts.append("</g>")
    parts.append('<g class="nodes">')
    for v in data.nodes:
        cx, cy, w, h = lay.nodes[v.key]
        x0, y0 = cx - w / 2, cy - h / 2
        lines, heat = texts[v.key]
        cls = PHASE_CLASS.get(v.phase, "fwd")
        kind = " source" if v.op in ("param", "input") else ""
        attrs = (
            f'class="node {cls}{kind}" id="node-{v.index}" data-node="{v.index}" data-name="{esc(v.name)}" '
            f'data-op="{esc(v.op)}" data-phase="{esc(v.phase)}" data-shape="{esc(json.dumps(list(v.shape)))}" '
            f'data-lines="{" ".join(map(str, v.lines))}" '
            f'data-value="{esc(json.dumps(_data(v.value)))}" data-grad="{esc(json.dumps(_data(v.grad)))}"'
        )
        parts.append(f'<a href="#card-{v.index}"><g {attrs}>')
        parts.append(f"<title>{esc(v.name)}: {esc(v.op)} {esc(shape_text(v.shape))}</title>")
        parts.append(f'<rect class="box" x="{x0:.1f}" y="{y0:.1f}" width="{w:.1f}" height="{h:.1f}" rx="4"/>')
        ty = y0 + 5 + LINE_H - 3
        for tcls, text in lines:
            parts.append(f'<text class="{tcls}" x="{x0 + 8:.1f}" y="{ty:.1f}" xml:space="preserve">{esc(text)}</text>')
            ty += LINE_H
        hx = x0 + 8
        for a in heat:  # the value's heat map, then the gradient's
            parts.append(heatmap_svg(a, 3.0, hx, ty - LINE_H + 8, standalone=False))
            hx += _heat_cells(a).shape[1] * 3 + 8
        parts.append("</g></a>")
    parts.append("</g></svg>")
    return "\n".join(parts), lay


# ------------------------------------------------------------------ the page

CSS = """
:root { --fg:#1f2937; --muted:#6b7280; --fwd:#334155; --bwd:#b91c1c; --tan:#6d28d9; --hl:#fde68a; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); margin: 0 auto; max-width: 1400px; padding: 1rem 1.5rem; }
h1 { font-size: 1.5rem; margin: .2rem 0; } h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #e5e7eb; }
code, pre, .mono { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 12px; }
.meta, .muted { color: var(--muted); }
nav a { margin-right: 1rem; }
.graph-wrap { overflow: auto; border: 1px solid #e5e7eb; max-height: 90vh; }
svg.graph text { font: 11px ui-monospace, "DejaVu Sans Mono", Menlo, monospace; fill: var(--fg); }
svg.graph .nname { font-weight: bold; }
svg.graph .nop { fill: var(--muted); }
svg.graph .ngrad { fill: var(--bwd); }
svg.graph .node > rect.box { fill: #fff; stroke: var(--fwd); stroke-width: 1; }
svg.graph .node.source > rect.box { fill: #fef3c7; }
svg.graph .node.bwd > rect.box { fill: #fef2f2; stroke: var(--bwd); stroke-dasharray: 4 2; }
svg.graph .node.tan > rect.box { fill: #f5f3ff; stroke: var(--tan); stroke-dasharray: 2 2; }
svg.graph .node.selected > rect.box { stroke-width: 3; stroke: #d97706; }
image.heat { image-rendering: pixelated; }
svg.graph a { cursor: pointer; }
.edge { fill: none; stroke-width: 1.2; }
.edge.fwd { stroke: var(--fwd); }
.edge.bwd { stroke: var(--bwd); stroke-dasharray: 5 3; }
.edge.tan { stroke: var(--tan); stroke-dasharray: 2 2; }
.legend span { margin-right: 1.2rem; }
.legend .sw { display: inline-block; width: 28px; height: 0; vertical-align: middle; margin-right: .3rem; border-top: 2px solid var(--fwd); }
.legend .sw.bwd { border-top: 2px dashed var(--bwd); }
table { border-collapse: collapse; margin: .5rem 0; }
th, td { border: 1px solid #e5e7eb; padding: .25rem .5rem; vertical-align: top; text-align: left; }
th { background: #f9fafb; }
td.num { text-align: right; font-family: ui-monospace, monospace; }
pre.arr { margin: 0; }
.none { color: var(--muted); font-style: italic; }
tr.bwd td:first-child { color: var(--bwd); }
tr:target { background: var(--hl); }
.ok { color: #15803d; font-weight: bold; } .fail { color: var(--bwd); font-weight: bold; }
pre.code { border: 1px solid #e5e7eb; padding: .5rem 0; overflow-x: auto; line-height: 1.35; }
pre.code .ln { display: block; padding: 0 .5rem; }
pre.code .ln.hl, pre.code .ln:target { background: var(--hl); }
pre.code .no { display: inline-block; width: 3.5em; color: var(--muted); text-align: right; margin-right: 1em; user-select: none; text-decoration: none; }
pre.code .sp { display: inline-block; width: 6.5em; color: var(--muted); text-decoration: none; }
table.map td.gen pre { margin: 0; }
table.map td.gen a { text-decoration: none; color: inherit; }
table.map tr.hl td { background: var(--hl); }
pre.explain { white-space: pre-wrap; border: 1px solid #e5e7eb; padding: .5rem; }
#selection { position: sticky; bottom: 0; background: #fffbeb; border: 1px solid #fcd34d; padding: .3rem .6rem; }
@media print {
  body { max-width: none; padding: 0; font-size: 11px; }
  nav, #selection, .noprint { display: none !important; }
  .graph-wrap { max-height: none; overflow: visible; border: none; }
  svg.graph { max-width: 100%; height: auto; }
  section { break-inside: auto; } tr, pre.code .ln { break-inside: avoid; }
  pre.code, pre.explain { white-space: pre-wrap; overflow: visible; }
  a { color: inherit; text-decoration: none; }
}
"""

# The one script: click a node (or a spec statement) to light up its code lines.
SCRIPT = """
(function () {
  var lit = [];
  function clear() { lit.forEach(function (e) { e.classList.remove('hl', 'selected'); }); lit = []; }
  function light(lines, extra, label) {
    clear();
    if (extra) { extra.classList.add(extra.tagName.toLowerCase() === 'tr' ? 'hl' : 'selected'); lit.push(extra); }
    var first = null;
    lines.split(' ').forEach(function (n) {
      if (!n) return;
      var e = document.getElementById('L' + n);
      if (e) { e.classList.add('hl'); lit.push(e); if (!first) first = e; }
    });
    var s = document.getElementById('selection');
    if (s) s.textContent = label + (first ? '' : ' (no line of its own in the module)');
    return first;
  }
  document.querySelectorAll('svg.graph g.node').forEach(function (g) {
    g.parentNode.addEventListener('click', function (ev) {
      ev.preventDefault();
      var n = g.getAttribute('data-lines') || '';
      var k = n.split(' ').filter(Boolean).length;
      light(n, g, g.getAttribute('data-name') + ': ' + k + ' line' + (k === 1 ? '' : 's') + ' of the module highlighted');
    });
  });
  document.querySelectorAll('table.map tr[data-lines]').forEach(function (tr) {
    tr.querySelector('td').addEventListener('click', function () {
      var first = light(tr.getAttribute('data-lines'), tr, tr.getAttribute('data-loc') + ' highlighted');
      if (first) first.scrollIntoView({block: 'center'});
    });
  });
})();
"""


def _code_lines(lines: list[str]) -> list[str]:
    """Module lines as HTML: highlighted by Pygments when installed, else escaped."""
    try:
        from pygments import highlight
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import PythonLexer
    except ImportError:
        return [esc(ln) for ln in lines]
    out = highlight("\n".join(lines) + "\n", PythonLexer(), HtmlFormatter(nowrap=True, classprefix="pg-"))
    got = out.split("\n")
    if got and got[-1] == "":
        got.pop()
    return got if len(got) == len(lines) else [esc(ln) for ln in lines]


def pygments_css() -> str:
    try:
        from pygments.formatters import HtmlFormatter
    except ImportError:
        return ""
    return HtmlFormatter(classprefix="pg-", style="default").get_style_defs(".pgc")


def _csp(script: str) -> str:
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    return f"default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src 'sha256-{digest}'"


def render(data: ReportData, use_graphviz: bool = True) -> str:
    c = data.compiled
    p = c.optimized
    info = p.info
    g = p.graph
    names = g.names()
    out: list[str] = []
    w = out.append
    w("<!DOCTYPE html>")
    w('<html lang="en"><head><meta charset="utf-8">')
    w(f'<meta http-equiv="Content-Security-Policy" content="{esc(_csp(SCRIPT))}">')
    w('<meta name="viewport" content="width=device-width, initial-scale=1">')
    w(f"<title>bpc report: {esc(c.name)}</title>")
    w(f"<style>{CSS}{pygments_css()}</style></head><body>")
    w(f'<header><h1>bpc report: <span class="mono">{esc(c.name)}</span></h1>')
    if info.description.strip():
        w(f'<p class="desc">{esc(info.description.strip())}</p>')
    seed = 0 if data.seed is None else data.seed
    w(
        f'<p class="meta">from <span class="mono">{esc(info.spec_path)}</span> · {esc(c.options.dtype)} · '
        f'arrays from init_params({seed}) and example_inputs({seed}) · '
        f'loss <span class="mono">{esc(names[g.loss])}</span> = <span class="mono" id="loss-value" data-value="{esc(repr(data.loss))}">{esc(_num(data.loss))}</span></p>'
    )
    w('<nav class="noprint"><a href="#graph">graph</a><a href="#values">values and gradients</a>'
      '<a href="#code">spec and code</a><a href="#check">gradient check</a><a href="#explain">explain</a></nav></header>')

    # graph
    w('<section id="graph"><h2>The graph: forward and adjoint</h2>')
    w(
        '<p class="legend"><span><span class="sw"></span>forward edge</span>'
        '<span><span class="sw bwd"></span>backward (adjoint) edge</span>'
        "<span>boxes: name (the generated code's variable), op and shape, value, "
        '<span style="color:var(--bwd)">grad</span> = d loss / d value</span></p>'
    )
    if len(data.nodes) <= MAX_GRAPH_NODES:
        svg, lay = graph_svg(data, use_graphviz)
        w(f'<p class="muted">Layout: {esc(lay.engine)}. {esc(" ".join(lay.notes))} '
          "Click a node to light up the lines of the module that compute it; without JavaScript, "
          "a node links to its row in the table below.</p>")
        w(f'<div class="graph-wrap">{svg}</div>')
    else:
        w(f'<p class="muted">{len(data.nodes)} nodes: too many to draw; see the table below.</p>')
    w('<p id="selection" class="noprint">Click a node in the graph or a spec statement below.</p></section>')

    # values
    w('<section id="values"><h2>Every value and gradient</h2>')
    w(
        f'<p class="muted">The loss and the gradients of {esc(", ".join(g.grads) or "no value")} are what the generated '
        "module's value_and_grad returns; the other values come from the reference interpreter on the same graph, "
        "and the gradients of intermediate values from the interpreter on the forward graph extended by reverse "
        "mode to every value (d loss / d that spec value, as --wrt NAME would give it). "
        f"Where both compute a value they differ by at most {data.module_vs_interpreter:.1e} (relative).</p>"
    )
    w('<table class="values"><thead><tr><th>name</th><th>op</th><th>shape</th><th>spec</th><th>value</th>'
      "<th>d loss / d value</th><th>module lines</th></tr></thead><tbody>")
    for v in data.nodes:
        cls = PHASE_CLASS.get(v.phase, "fwd")
        links = " ".join(f'<a href="#L{ln}">{ln}</a>' for ln in v.lines) or '<span class="none">inlined nowhere</span>'
        origin = f'<br><span class="muted">adjoint in the rule of {esc(v.origin)}</span>' if v.origin else ""
        if v.merged:
            origin += (
                f'<br><span class="muted">also the value of {esc(", ".join(v.merged))} (merged by the optimizer); '
                f"its gradient here is d loss / d {esc(v.name)} alone</span>"
            )
        doc = info.docs.get(v.key) if v.phase == FORWARD else None
        if doc:
            origin += f'<br><span class="doc">{esc(doc)}</span>'

        w(
            f'<tr id="card-{v.index}" class="{cls}" data-name="{esc(v.name)}"><td class="mono">{esc(v.name)}{origin}</td>'
            f'<td class="mono">{esc(v.op)}</td><td class="mono">{esc(shape_text(v.shape))}</td>'
            f'<td class="mono">{esc(v.source or "")}</td>'
            f"<td>{_cell(v.value, 'not computed here')}</td><td>{_cell(v.grad, v.grad_note)}</td><td>{links}</td></tr>"
        )
    w("</tbody></table></section>")

    # spec and code
    w('<section id="code"><h2>Spec statements and the code they became</h2>')
    w('<table class="map"><thead><tr><th>spec</th><th>generated lines</th></tr></thead><tbody>')
    for k, (loc, text, lines) in enumerate(data.spec_rows):
        gen = "\n".join(
            f'<a href="#L{ln}"><span class="muted">{ln:4d}</span>  {esc(data.source_lines[ln - 1].strip())}</a>'
            for ln in lines
        ) or '<span class="none">no line of its own</span>'
        w(
            f'<tr id="spec-{k}" data-loc="{esc(loc)}" data-lines="{" ".join(map(str, lines))}">'
            f'<td><span class="muted mono">{esc(loc)}</span><br><code>{esc(text)}</code></td>'
            f'<td class="gen"><pre>{gen}</pre></td></tr>'
        )
    w("</tbody></table>")
    spec_index = {loc: k for k, (loc, _, _) in enumerate(data.spec_rows)}
    w(f"<h3>The generated module <span class=\"mono\">{esc(c.name)}.py</span></h3>")
    code = []
    for i, line_html in enumerate(_code_lines(data.source_lines), 1):
        nodes = " ".join(str(k) for k in data.line_nodes.get(i, []))
        loc = data.line_spec.get(i)
        back = (f'<a class="sp" href="#spec-{spec_index[loc]}">{esc(loc)}</a>' if loc in spec_index
                else '<span class="sp"></span>')
        code.append(f'<span class="ln" id="L{i}" data-nodes="{nodes}"><a class="no" href="#L{i}">{i}</a>{back}{line_html}</span>')
    # block spans, one per line: no newline between them (it would double the spacing)
    w('<pre class="code pgc">' + "".join(code) + "</pre></section>")

    # check
    w('<section id="check"><h2>Gradient check</h2>')
    if data.check is None:
        w(f'<p class="muted">{esc(" ".join(data.notes) or "Not run.")}</p>')
    else:
        w(check_table(data.check))
    w("</section>")

    # explain
    w('<section id="explain">')
    title = f"Explain: d {names[g.loss]} / d {data.explain_wrt}" if data.explain_wrt else "Explain"
    w(f"<h2>{esc(title)}</h2>")
    w(f'<pre class="explain">{esc(data.explain_text)}</pre></section>')
    w(f"<script>{SCRIPT}</script>")
    w("</body></html>")
    return "\n".join(out) + "\n"


def check_table(result: CheckResult) -> str:
    out = [
        f'<p>{esc(result.name)}: gradients vs central finite differences (float64): '
        f'<span class="{"ok" if result.passed else "fail"}" id="check-verdict">{"PASSED" if result.passed else "FAILED"}</span>; '
        f"generated code vs reference interpreter: max diff {result.interpreter_max_diff:.1e}</p>",
        '<table class="check"><thead><tr><th>name</th><th>shape</th><th>elements checked</th>'
        "<th>max abs error</th><th>max rel error</th><th>result</th></tr></thead><tbody>",
    ]
    for t in result.tensors:
        verdict = '<span class="ok">ok</span>' if t.passed else '<span class="fail">FAIL</span>'
        out.append(
            f'<tr><td class="mono">{esc(t.name)}</td><td class="mono">{esc(list(t.shape))}</td>'
            f'<td class="num">{t.checked}</td><td class="num">{t.max_abs:.2e}</td><td class="num">{t.max_rel:.2e}</td>'
            f"<td>{verdict}</td></tr>"
        )
    out.append("</tbody></table>")
    for note in result.notes:
        out.append(f'<p class="muted">note: {esc(note)}</p>')
    if result.culprit is not None:
        out.append(f"<pre>{esc(result.culprit.text())}</pre>")
    return "\n".join(out)


def report_html(
    c: Compiled,
    seed: int | None = None,
    wrt: str | None = None,
    check: bool = True,
    samples: int | None = 256,
    use_graphviz: bool = True,
) -> str:
    """The whole page for a compiled spec."""
    return render(collect(c, seed, wrt, check, samples), use_graphviz)


NOTEBOOK_SAMPLES = 16  # elements per tensor the notebook view's check compares


def _scoped_css(scope: str) -> str:
    """The graph's and the code's rules of the page, scoped to ``scope`` (a
    notebook holds many outputs and its own styles)."""
    rules = [ln for ln in CSS.splitlines() if ln.startswith(("svg.graph", ".edge", "image.heat", ":root"))]
    rules = [ln.replace(":root", scope) if ln.startswith(":root") else f"{scope} {ln}" for ln in rules]
    rules.append(f"{scope} pre.code {{ font-size: 12px; line-height: 1.35; max-height: 32em; overflow: auto; }}")
    rules.append(f"{scope} .graph-wrap {{ overflow: auto; max-height: 40em; }}")
    rules.append(f"{scope} .ok {{ color: #15803d; font-weight: bold; }} {scope} .fail {{ color: #b91c1c; font-weight: bold; }}")
    rules.append(f"{scope} table.check td, {scope} table.check th {{ padding: 0 .5em; text-align: left; }}")
    css = pygments_css()
    if css:
        rules += [f"{scope} {ln}" if ln.startswith(".pgc") else ln for ln in css.splitlines() if ln.startswith(".pgc")]
    return "\n".join(rules)


def notebook_html(c: Compiled, seed: int | None = None) -> str:
    """A ``Program``'s view in Jupyter: the check summary, the graph with
    values and gradients, and the module's code (highlighted by Pygments when
    installed, else escaped). No script: notebooks may not run one."""
    data = collect(c, seed, check=True, samples=NOTEBOOK_SAMPLES)
    svg, lay = graph_svg(data)
    code = "".join(f'<span class="ln">{ln}</span>\n' for ln in _code_lines(data.source_lines))
    g = data.compiled.optimized.graph
    parts = [
        '<div class="bpc-nb">',
        f"<style>{_scoped_css('.bpc-nb')}</style>",
        f"<p><b>bpc.Program</b> <code>{esc(c.name)}</code> ({esc(c.options.dtype)}): loss "
        f"<code>{esc(g.names()[g.loss])}</code> = {esc(_num(data.loss))} at init_params() and example_inputs()</p>",
    ]
    if data.check is not None:
        parts.append(check_table(data.check).replace("<p>", f"<p>Check ({NOTEBOOK_SAMPLES} elements per tensor): ", 1))
    parts.append(f'<details open><summary>graph ({len(data.nodes)} nodes, layout: {esc(lay.engine)})</summary>')
    parts.append(f'<div class="graph-wrap">{svg}</div></details>')
    parts.append(f'<details><summary>generated code ({len(data.source_lines)} lines)</summary>')
    parts.append(f'<pre class="code pgc">{code}</pre></details>')
    parts.append("</div>")
    return "\n".join(parts)
