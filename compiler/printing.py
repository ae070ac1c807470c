"""IR dumps: a jaxpr-like text form, JSON (networkx node-link) and DOT."""

from __future__ import annotations

import json
from typing import Any

import networkx as nx

from .ir import BACKWARD, Graph
from .program import Program


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
        inner = ",".join(_val(x) if isinstance(x, tuple) else str(x) for x in v)
        return f"({inner},)" if len(v) == 1 else f"({inner})"
    return repr(v)


def _operand(g: Graph, n: str, names: dict[str, str]) -> str:
    d = g.data(n)
    if d["op"] == "const" and d["shape"] == ():
        return repr(d["attrs"]["value"])
    return names[n]


def text(p: Program) -> str:
    """One equation per line; forward and backward parts separated."""
    g = p.graph
    names = g.names()
    params = " ".join(f"{p}:{_type(g, p)}" for p in g.params)
    inputs = " ".join(f"{i}:{_type(g, i)}" for i in g.inputs)
    extra = " ".join(f"{k}:{names[v]}:{_type(g, v)}" for k, v in g.extra_inputs.items())
    lines = [f"{{ lambda {params} ; {inputs}{' ; ' + extra if extra else ''} . let"]
    rows: list[tuple[str, str]] = []
    phase = "forward"
    for n in g.topo():
        d = g.data(n)
        if d["op"] in ("input", "param"):
            continue
        if d["op"] == "const" and d["shape"] == ():
            continue
        if d["phase"] != phase:  # backward (adjoint) and tangent (forward-mode) parts
            rows.append((f"  -- {d['phase']} --", ""))
            phase = d["phase"]
        args = " ".join(_operand(g, a, names) for a in g.args(n))
        if d["op"] == "const":
            args = ""
        eq = f"    {names[n]}:{_type(g, n)} = {d['op']}{_attr_text(d['attrs'])}"
        eq = f"{eq} {args}" if args else eq
        note = d["source"] or ""
        origin = g.origin(n)
        if d["phase"] != "forward" and origin is not None:
            note = f"{note} (d {names[origin]})".strip()
        rows.append((eq, note))
    width = max((len(r[0]) for r in rows if r[1]), default=0)
    for eq, note in rows:
        lines.append(f"{eq.ljust(width)}  # {note}" if note else eq)
    outs = [f"loss={names[g.loss]}"] + [f"{k}={names[v]}" for k, v in g.outputs.items()]
    groups: dict[str, list[str]] = {}
    for label, n in g.results.items():
        head, _, key = label.partition(".")
        if head in ("loss", "outputs"):
            continue
        if key:
            groups.setdefault(head, []).append(f"{key}: {names[n]}")
        else:
            outs.append(f"{head}={names[n]}")
    outs += [f"{head}={{{', '.join(items)}}}" for head, items in groups.items()]
    if not g.grads and p.wrt:
        outs.append("wrt=(" + ", ".join(names[w] for w in p.wrt) + ")")
    lines.append(f"  in ({', '.join(outs)}) }}")
    from .codegen import _comment_text

    lines += [f"# note: {_comment_text(n)}" for n in p.notes]
    return "\n".join(lines) + "\n"


def _jsonable(v: Any) -> Any:
    if isinstance(v, tuple):
        return [_jsonable(x) for x in v]
    return v


def to_json(p: Program, stage: str = "forward") -> dict:
    """networkx node-link data plus everything needed to compile the program again.

    Node ids are the printed names (each node's hint is kept where it differs),
    so ``from_json(to_json(p))`` prints, and compiles, the same; ``bpc
    compile`` accepts the file in place of a spec (the round trip gives
    byte-identical code).
    """
    g, m = p.graph, p.info
    names = g.names()
    h = nx.MultiDiGraph()
    for n in g.topo():
        d = g.data(n)
        hint = d["hint"]
        if not isinstance(hint, str):
            prefix, of, suffix, fallback = hint
            of = g.resolve(of)
            hint = [prefix, names[of] if of is not None else None, suffix, fallback]
        h.add_node(
            names[n],
            op=d["op"],
            shape=_jsonable(d["shape"]),
            dtype=d["dtype"],
            attrs={k: _jsonable(v) for k, v in d["attrs"].items()},
            phase=d["phase"],
            source=d["source"],
            origin=names.get(g.origin(n)) if d["origin"] is not None else None,
            named=d["named"],
            seq=d["seq"],
            **({"hint": hint} if hint != names[n] else {}),
            **({"accum": True} if d.get("accum") else {}),
        )
    for n in g.topo():
        for i, a in enumerate(g.args(n)):
            h.add_edge(names[a], names[n], key=i, pos=i)
    data = nx.node_link_data(h, edges="edges")
    data["graph"] = {
        "bpc_ir": 1,
        "stage": stage,
        "meta": {
            "name": m.name,
            "spec_path": m.spec_path,
            "spec_sha256": m.spec_sha256,
            "description": m.description,
            "seed": m.seed,
            "dtype": g.float_dtype,
        },
        "params": g.params,
        "inputs": g.inputs,
        "loss": names[g.loss],
        # ordered maps as pairs: dumps sort object keys, and order is meaningful
        "outputs": [[k, names[v]] for k, v in g.outputs.items()],
        "wrt": wrt_labels(p),
        "grads": [[k, names[v]] for k, v in g.grads.items()],
        "values": {k: v.tolist() for k, v in m.values.items()},
        "inits": {k: v.model_dump() for k, v in m.inits.items()},
        "docs": m.docs,
        "source_text": m.source_text,
        "dims": [[k, v] for k, v in m.dims.items()],
        "classes": m.classes,
        "next_seq": g._seq,
        "notes": list(p.notes),
        # entry points beyond forward/value_and_grad (jvp, hvp) and what they use
        "entries": [[e.name, list(e.returns), list(e.takes), e.calls] for e in p.entries],
        "extra_inputs": [[k, names[v]] for k, v in g.extra_inputs.items()],
        "results": [[k, names[v]] for k, v in g.results.items() if k != "loss" and not k.startswith(("outputs.", "grads."))],
    }
    return data


def wrt_labels(p: Program) -> list[str]:
    """The names of the wrt values: the gradient labels once there are
    gradients, else the forward graph's printed names."""
    if p.graph.grads:
        return list(p.graph.grads)
    names = p.graph.names()
    return [names[w] for w in p.wrt]


def is_ir_dump(data: Any) -> bool:
    return isinstance(data, dict) and isinstance(data.get("graph"), dict) and "bpc_ir" in data["graph"]


def from_json(data: Any, name: str | None = None) -> tuple[Program, str]:
    """Rebuild a program from ``to_json`` output. Returns (program, stage).

    A dump is untrusted input, like a spec: it is validated field by field
    (:mod:`compiler.dumps`) and verified; every problem is a SpecError with
    its location (``nodes[3].id``, ``graph.meta.seed``). ``name`` replaces the
    module name (``bpc compile --name``).
    """
    from .dumps import load
    from .names import check_name

    p, stage = load(data)
    if name is not None:
        p.info.name = check_name(name, "--name")
    return p, stage


def dot(p: Program) -> str:
    """Graphviz DOT: forward nodes boxes, adjoint nodes dashed, edges by position."""
    g = p.graph
    names = g.names()
    lines = [f'digraph "{p.info.name}" {{', "  rankdir=TB;", '  node [fontname="monospace"];']
    roots = set(g.roots())
    for n in g.topo():
        d = g.data(n)
        name = names[n]
        if d["op"] in ("input", "param"):
            label = f"{name}\\n{d['op']} {_type(g, n)}"
        elif d["op"] == "const":
            label = f"const {d['attrs']['value']!r}\\n{_type(g, n)}"
        else:
            label = f"{name}\\n{d['op']}{_attr_text(d['attrs'])}\\n{_type(g, n)}"
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
        lines.append(f'  "{name}" [label="{label}", {", ".join(style)}];')
    for n in g.topo():
        args = g.args(n)
        for i, a in enumerate(args):
            lab = f' [label="{i}"]' if len(args) > 1 else ""
            lines.append(f'  "{names[a]}" -> "{names[n]}"{lab};')
    lines.append("}")
    return "\n".join(lines) + "\n"


def dump(p: Program, fmt: str, stage: str = "forward") -> str:
    if fmt == "text":
        return text(p)
    if fmt == "json":
        return json.dumps(to_json(p, stage), indent=1, sort_keys=True) + "\n"
    if fmt == "dot":
        return dot(p)
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
    done = sorted((k, v) for k, v in report.rewrites.items() if v)
    if done:
        lines.append("rewrites:")
        lines += [f"  {k}: {v}" for k, v in done]
    return "\n".join(lines) + "\n"


GRAPHVIZ_HINT = (
    "Graphviz's 'dot' program is not installed: install it (Debian/Ubuntu: "
    "apt-get install graphviz; macOS: brew install graphviz) or use --format dot"
)


def render_dot(text: str, fmt: str) -> bytes | str:
    """Render DOT with Graphviz's ``dot`` (svg as text, png as bytes)."""
    import shutil
    import subprocess

    from .errors import BpcError

    exe = shutil.which("dot")
    if exe is None:
        raise BpcError(GRAPHVIZ_HINT, "--format " + fmt)
    try:
        r = subprocess.run([exe, f"-T{fmt}"], input=text.encode(), capture_output=True, timeout=120)
    except subprocess.TimeoutExpired:
        raise BpcError("Graphviz took longer than 120 s", "--format " + fmt) from None
    if r.returncode != 0:
        msg = r.stderr.decode(errors="replace").strip().splitlines()
        raise BpcError(f"Graphviz failed: {msg[0] if msg else r.returncode}", "--format " + fmt)
    return r.stdout.decode() if fmt == "svg" else r.stdout
