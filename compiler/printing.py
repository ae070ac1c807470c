"""IR dumps: a jaxpr-like text form, JSON (networkx node-link) and DOT."""

from __future__ import annotations

import json
from typing import Any

import networkx as nx

from .ir import BACKWARD, Graph

DTYPE = {"f64": "f64", "f32": "f32"}


def _type(g: Graph, n: str) -> str:
    shape = ",".join(str(d) for d in g.shape(n))
    return f"{g.data(n)['dtype']}[{shape}]"


def _attr_text(attrs: dict[str, Any]) -> str:
    if not attrs:
        return ""
    inner = ",".join(f"{k}={_val(v)}" for k, v in sorted(attrs.items()))
    return f"[{inner}]"


def _val(v: Any) -> str:
    if isinstance(v, tuple):
        return "(" + ",".join(str(x) for x in v) + ")"
    return repr(v)


def _operand(g: Graph, n: str) -> str:
    d = g.data(n)
    if d["op"] == "const" and d["shape"] == ():
        return repr(d["attrs"]["value"])
    return n


def text(g: Graph) -> str:
    """One equation per line; forward and backward parts separated."""
    params = " ".join(f"{p}:{_type(g, p)}" for p in g.params)
    inputs = " ".join(f"{i}:{_type(g, i)}" for i in g.inputs)
    lines = [f"{{ lambda {params} ; {inputs} . let"]
    rows: list[tuple[str, str]] = []
    phase = "forward"
    for n in g.topo():
        d = g.data(n)
        if d["op"] in ("input", "param"):
            continue
        if d["op"] == "const" and d["shape"] == ():
            continue
        if d["phase"] == BACKWARD and phase != BACKWARD:
            rows.append(("  -- backward --", ""))
            phase = BACKWARD
        args = " ".join(_operand(g, a) for a in g.args(n))
        if d["op"] == "const":
            args = ""
        eq = f"    {n}:{_type(g, n)} = {d['op']}{_attr_text(d['attrs'])}"
        eq = f"{eq} {args}" if args else eq
        note = d["source"] or ""
        if d["phase"] == BACKWARD and d["origin"]:
            note = f"{note} (d {d['origin']})".strip()
        rows.append((eq, note))
    width = max((len(r[0]) for r in rows if r[1]), default=0)
    for eq, note in rows:
        lines.append(f"{eq.ljust(width)}  # {note}" if note else eq)
    outs = [f"loss={g.loss}"] + [f"{k}={v}" for k, v in g.outputs.items()]
    if g.grads:
        outs.append("grads={" + ", ".join(f"{w}: {n}" for w, n in g.grads.items()) + "}")
    elif g.wrt:
        outs.append("wrt=(" + ", ".join(g.wrt) + ")")
    lines.append(f"  in ({', '.join(outs)}) }}")
    return "\n".join(lines) + "\n"


def to_json(g: Graph) -> dict:
    """networkx node-link data, plus the graph's roles and metadata."""
    h = nx.MultiDiGraph()
    for n in g.topo():
        d = g.data(n)
        h.add_node(
            n,
            op=d["op"],
            shape=list(d["shape"]),
            dtype=d["dtype"],
            attrs={k: (list(v) if isinstance(v, tuple) else v) for k, v in d["attrs"].items()},
            phase=d["phase"],
            source=d["source"],
            origin=d["origin"],
            named=d["named"],
        )
    for n in g.topo():
        for i, a in enumerate(g.args(n)):
            h.add_edge(a, n, key=i, pos=i)
    data = nx.node_link_data(h, edges="edges")
    data["graph"] = {
        "name": g.meta.name,
        "spec_path": g.meta.spec_path,
        "spec_sha256": g.meta.spec_sha256,
        "params": g.params,
        "inputs": g.inputs,
        "loss": g.loss,
        "outputs": g.outputs,
        "wrt": g.wrt,
        "grads": g.grads,
    }
    return data


def dot(g: Graph) -> str:
    """Graphviz DOT: forward nodes boxes, adjoint nodes dashed, edges by position."""
    lines = [f'digraph "{g.meta.name}" {{', "  rankdir=TB;", '  node [fontname="monospace"];']
    roots = set(g.roots())
    for n in g.topo():
        d = g.data(n)
        label = f"{n}\\n{d['op']}{_attr_text(d['attrs'])}\\n{_type(g, n)}"
        style = []
        if d["op"] == "input":
            style.append('shape=invhouse, style=filled, fillcolor="#dbeafe"')
        elif d["op"] == "param":
            style.append('shape=box, style="filled,rounded", fillcolor="#fef3c7"')
        elif d["phase"] == BACKWARD:
            style.append('shape=box, style="dashed", color="#b91c1c"')
        else:
            style.append("shape=box")
        if n == g.loss:
            style.append("peripheries=2")
        elif n in roots:
            style.append("penwidth=2")
        lines.append(f'  "{n}" [label="{label}", {", ".join(style)}];')
    for n in g.topo():
        args = g.args(n)
        for i, a in enumerate(args):
            lab = f' [label="{i}"]' if len(args) > 1 else ""
            lines.append(f'  "{a}" -> "{n}"{lab};')
    lines.append("}")
    return "\n".join(lines) + "\n"


def dump(g: Graph, fmt: str) -> str:
    if fmt == "text":
        return text(g)
    if fmt == "json":
        return json.dumps(to_json(g), indent=1, sort_keys=True) + "\n"
    if fmt == "dot":
        return dot(g)
    raise ValueError(fmt)


def stats(report) -> str:
    ops = sorted(set(report.before) | set(report.after))
    w = max([len(o) for o in ops] + [5])
    lines = [f"{'op'.ljust(w)}  before  after"]
    for o in ops:
        lines.append(f"{o.ljust(w)}  {report.before[o]:6d}  {report.after[o]:5d}")
    tb, ta = sum(report.before.values()), sum(report.after.values())
    lines.append(f"{'total'.ljust(w)}  {tb:6d}  {ta:5d}")
    lines.append(f"(passes ran {report.rounds} round(s) to a fixpoint)")
    return "\n".join(lines) + "\n"
