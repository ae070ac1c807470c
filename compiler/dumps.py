"""Validation of IR dumps read back by ``bpc compile`` (a second way in).

``bpc ir --format json`` writes a graph as networkx node-link data plus the
graph-level facts (:func:`compiler.printing.to_json`). ``bpc compile`` accepts
such a file in place of a spec, so a dump is untrusted input just like a spec:
every field is validated here before a :class:`~compiler.ir.Graph` is built,
in two layers, as for specs:

* structure and types, by the pydantic models below (unknown keys, missing
  keys, wrong types, out-of-range numbers, the name rule of
  :mod:`compiler.names` for every node id and every name);
* meaning, by :func:`check`: node ids unique, ops registered, attributes
  normalized by the op's own ``normalize_attrs``, edges between existing
  nodes with operand positions ``0..n-1``, params and inputs listed once and
  backed by ``param``/``input`` nodes, every name refers to a node, values of
  the declared static shape, dims declared, the loss a single element.

Every error is a :class:`SpecError` with a location such as ``nodes[3].id``
or ``graph.meta.seed``. The graph is then verified (``Graph.verify``); a
failure is a SpecError too.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
)

from .errors import BpcError, SpecError
from .ir import MAX_ELEMENTS, Graph
from .program import Entry, ModuleInfo, Program, forward_entry, gradient_entries
from .names import MAX_NODE_ID_LENGTH, name_problem
from .spec import (
    MAX_CLASSES,
    MAX_DIM_SIZE,
    MAX_SEED,
    Initializer,
    _format_validation_error,
    json_path,
    literal_array,
)

MAX_TEXT = 1_000_000  # description, docs, source text
MAX_LINE = 4096  # spec path, node source/origin, source_text keys
MAX_NODES = 1_000_000
MAX_RANK = 64
MAX_OPERANDS = 100_000
MAX_COUNTER = 10**9
MAX_SEQ = 2**62


# ------------------------------------------------------------------ field types


def _name(v: str) -> str:
    problem = name_problem(v)
    if problem is not None:
        raise ValueError(problem)
    return v


def _node_id(v: str) -> str:
    problem = name_problem(v, MAX_NODE_ID_LENGTH)
    if problem is not None:
        raise ValueError(problem)
    return v


def _encodable(v: str) -> str:
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text with a lone surrogate (not valid Unicode)") from None
    return v


def _one_line(v: str) -> str:
    if not v.isprintable():
        raise ValueError("expected one line of printable text")
    return v


def _shape_entry(v: Any) -> Any:
    if isinstance(v, bool) or not isinstance(v, (int, str)):
        raise ValueError("expected a positive size or a dim name")
    if isinstance(v, int):
        if not 1 <= v <= MAX_ELEMENTS:
            raise ValueError(f"a size must be between 1 and {MAX_ELEMENTS:,}")
        return v
    return _name(v)


Name = Annotated[StrictStr, AfterValidator(_name)]
NodeId = Annotated[StrictStr, AfterValidator(_node_id)]
Text = Annotated[StrictStr, Field(max_length=MAX_TEXT), AfterValidator(_encodable)]
Line = Annotated[StrictStr, Field(max_length=MAX_LINE), AfterValidator(_one_line)]
Key = Annotated[StrictStr, Field(max_length=MAX_LINE), AfterValidator(_encodable)]
ShapeEntry = Annotated[Any, PlainValidator(_shape_entry)]
_HINT_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*", re.ASCII)
_AFFIX_RE = re.compile(r"[A-Za-z0-9_]{0,16}", re.ASCII)


def _hint(v: Any) -> Any:
    """A name hint: identifier characters (a builtin's name such as "sum" is
    fine: printed names get a trailing "_"), or [prefix, node id, suffix,
    fallback] with short identifier-character affixes."""
    if isinstance(v, str):
        if len(v) > MAX_NODE_ID_LENGTH or not _HINT_RE.fullmatch(v):
            raise ValueError(f"expected a hint of at most {MAX_NODE_ID_LENGTH} letters, digits and '_'")
        return v
    if isinstance(v, (list, tuple)) and len(v) == 4 and all(isinstance(x, str) or (i == 1 and x is None) for i, x in enumerate(v)):
        prefix, of, suffix, fallback = v
        if not (_AFFIX_RE.fullmatch(prefix) and _AFFIX_RE.fullmatch(suffix)):
            raise ValueError("expected a prefix and a suffix of at most 16 letters, digits and '_'")
        if of is not None:
            _node_id(of)
        return (prefix, of, suffix, _hint(fallback))
    raise ValueError("expected a hint: a name, or [prefix, node id, suffix, fallback name]")


Hint = Annotated[Any, PlainValidator(_hint)]


def _int(lo: int, hi: int):
    return Annotated[StrictInt, Field(ge=lo, le=hi)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DumpMeta(_Model):
    name: Name
    spec_path: Line
    spec_sha256: Annotated[StrictStr, Field(pattern=r"^(?:[0-9a-f]{64})?$")]
    description: Text
    seed: _int(0, MAX_SEED)
    dtype: Literal["f64", "f32"]  # the compile dtype


class DumpNode(_Model):
    id: NodeId
    op: Annotated[StrictStr, Field(max_length=64)]
    shape: Annotated[list[ShapeEntry], Field(max_length=MAX_RANK)]
    dtype: Literal["f64", "f32", "bool", "i64"]  # element types of IR values
    attrs: dict[Key, Any]
    phase: Literal["forward", "backward", "tangent"]
    source: Optional[Line]
    origin: Optional[Line]
    named: StrictBool
    # The name hint (see compiler.ir): absent when it is the id itself.
    hint: Optional[Hint] = None
    seq: _int(0, MAX_SEQ)
    accum: StrictBool = False


class DumpEdge(_Model):
    source: NodeId
    target: NodeId
    pos: _int(0, MAX_OPERANDS)
    key: _int(0, MAX_OPERANDS)


EntryName = Literal["forward", "value_and_grad", "jvp", "vjp", "hvp", "jacobian", "hessian"]


class DumpGraph(_Model):
    bpc_ir: Literal[1]
    stage: Literal["forward", "joint", "optimized"]
    meta: DumpMeta
    params: list[Name]
    inputs: list[Name]
    loss: NodeId
    outputs: list[tuple[Name, NodeId]]
    wrt: list[NodeId]
    grads: list[tuple[NodeId, NodeId]]
    values: dict[Key, Any]
    inits: dict[Key, Initializer]
    docs: dict[Key, Text]
    source_text: dict[Key, Text]
    dims: list[tuple[Name, _int(1, MAX_DIM_SIZE)]]
    classes: dict[Key, _int(1, MAX_CLASSES)]
    next_seq: _int(0, MAX_SEQ)
    notes: list[Line] = []
    entries: Optional[list[tuple[EntryName, list[Name], list[Name], Optional[Literal["jvp", "vjp", "hvp"]]]]] = None
    extra_inputs: list[tuple[Annotated[StrictStr, Field(max_length=200, pattern=r"^[A-Za-z][A-Za-z0-9_]*\.[A-Za-z][A-Za-z0-9_]*$")], NodeId]] = []
    results: list[tuple[Annotated[StrictStr, Field(max_length=200, pattern=r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)?$")], NodeId]] = []
    # Written by bpc before names were assigned at print time; ignored.
    reserved: list[NodeId] = []
    counters: dict[Key, _int(1, MAX_COUNTER)] = {}


class Dump(_Model):
    directed: Literal[True]
    multigraph: Literal[True]
    graph: DumpGraph
    nodes: Annotated[list[DumpNode], Field(max_length=MAX_NODES)]
    edges: list[DumpEdge]


# ------------------------------------------------------------------ checks


def parse(data: Any) -> Dump:
    """Structure and types; SpecError with the JSON path of the first problem."""
    if not isinstance(data, dict):
        raise SpecError("an IR dump must be a JSON object", "dump")
    try:
        return Dump.model_validate(data)
    except ValidationError as e:
        raise _format_validation_error(e, top="dump") from None
    except RecursionError:
        raise SpecError("nested too deeply", "dump") from None


def _where(*parts) -> str:
    return json_path(parts)


def check(d: Dump) -> dict[str, dict]:
    """Meaning: every cross-reference of the dump. Returns normalized attrs by node id."""
    from .ops.registry import all_ops

    ops = all_ops()
    gd = d.graph
    index: dict[str, int] = {}
    attrs: dict[str, dict] = {}
    for i, n in enumerate(d.nodes):
        if n.id in index:
            raise SpecError(f"duplicate node id '{n.id}' (first at nodes[{index[n.id]}])", _where("nodes", i, "id"))
        index[n.id] = i
        opdef = ops.get(n.op)
        if opdef is None:
            raise SpecError(f"unknown op {n.op!r}", _where("nodes", i, "op"))
        if opdef.decompose is not None:
            raise SpecError(f"composite op '{n.op}' cannot appear in a graph", _where("nodes", i, "op"))
        attrs[n.id] = opdef.normalize_attrs(dict(n.attrs), _where("nodes", i, "attrs"))
        static = [x for x in n.shape if isinstance(x, int)]
        if math.prod(static) > MAX_ELEMENTS:
            raise SpecError(f"more than {MAX_ELEMENTS:,} elements", _where("nodes", i, "shape"))

    # ---- edges: between existing nodes, positions 0..n-1 per target
    positions: dict[str, dict[int, int]] = {}
    for k, e in enumerate(d.edges):
        for end in ("source", "target"):
            if getattr(e, end) not in index:
                raise SpecError(f"no node '{getattr(e, end)}'", _where("edges", k, end))
        seen = positions.setdefault(e.target, {})
        if e.pos in seen:
            raise SpecError(
                f"operand {e.pos} of '{e.target}' is given twice (edges[{seen[e.pos]}])", _where("edges", k, "pos")
            )
        seen[e.pos] = k
    for target, seen in positions.items():
        n = len(seen)
        for pos, k in seen.items():
            if pos >= n:
                raise SpecError(
                    f"operand position {pos} of '{target}' is out of range: it has {n} operand"
                    f"{'s' if n != 1 else ''}",
                    _where("edges", k, "pos"),
                )
    for i, n in enumerate(d.nodes):
        opdef = ops[n.op]
        count = len(positions.get(n.id, ()))
        if opdef.arity is not None and count != opdef.arity:
            raise SpecError(f"op '{n.op}' takes {opdef.arity} operand(s), the dump gives {count}", _where("nodes", i))
        if opdef.arity is None and count < opdef.min_arity:
            raise SpecError(f"op '{n.op}' takes at least {opdef.min_arity} operands, the dump gives {count}", _where("nodes", i))

    # ---- params and inputs: listed once, backed by param/input nodes
    listed: dict[str, str] = {}
    for role in ("params", "inputs"):
        op = role[:-1]
        for i, name in enumerate(getattr(gd, role)):
            where = _where("graph", role, i)
            if name in listed:
                raise SpecError(f"'{name}' is listed twice (also at {listed[name]})", where)
            listed[name] = where
            if name not in index or d.nodes[index[name]].op != op:
                raise SpecError(f"'{name}' is not a node with op '{op}'", where)
            n = d.nodes[index[name]]
            if not n.named or (n.hint is not None and n.hint != n.id):
                # arguments are printed by their ids: their hint cannot differ
                raise SpecError(f"{op} '{name}' must be named by its id", _where("nodes", index[name]))
            if op == "param" and not all(isinstance(x, int) for x in d.nodes[index[name]].shape):
                raise SpecError("params need fixed sizes (no symbolic dims)", where)
    extra = set()
    for i, (label, node_id) in enumerate(gd.extra_inputs):
        if node_id not in index or d.nodes[index[node_id]].op != "input":
            raise SpecError(f"'{node_id}' is not a node with op 'input'", _where("graph", "extra_inputs", i, 1))
        if node_id in listed or node_id in extra:
            raise SpecError(f"'{node_id}' is listed twice", _where("graph", "extra_inputs", i, 1))
        extra.add(node_id)
    labels = {"loss"} | {f"outputs.{k}" for k, _ in gd.outputs} | {f"grads.{k}" for k, _ in gd.grads}
    for i, (label, node_id) in enumerate(gd.results):
        if node_id not in index:
            raise SpecError(f"no node '{node_id}'", _where("graph", "results", i, 1))
        if label in labels or label.split(".")[0] in ("loss", "outputs", "grads"):
            raise SpecError(f"result '{label}' is listed twice", _where("graph", "results", i, 0))
        labels.add(label)
    groups = {lab.split(".")[0] for lab in labels}
    takes = {lab.split(".")[0] for lab, _ in gd.extra_inputs}
    if gd.entries is not None and not gd.entries:
        raise SpecError("a dump needs at least one entry point", "graph.entries")
    seen_entries: set[str] = set()
    names_listed = [e[0] for e in gd.entries or []]
    for i, (name, returns, taken, calls) in enumerate(gd.entries or []):
        if name in seen_entries:
            raise SpecError(f"entry '{name}' is listed twice", _where("graph", "entries", i, 0))
        seen_entries.add(name)
        composite = name in ("jacobian", "hessian")
        if composite != (calls is not None) or (composite and (returns or taken)):
            raise SpecError("jacobian and hessian call an entry point and return nothing of their own; "
                            "other entries call none", _where("graph", "entries", i))
        if calls is not None and calls not in names_listed:
            raise SpecError(f"entry '{name}' calls '{calls}', which is not listed", _where("graph", "entries", i, 3))
        if (not returns and not composite) or len(set(returns)) != len(returns):
            raise SpecError("an entry returns one or more distinct result groups", _where("graph", "entries", i, 1))
        if len(set(taken)) != len(taken):
            raise SpecError("an entry takes each group once", _where("graph", "entries", i, 2))
        for j, grp in enumerate(returns):
            if grp not in groups:
                raise SpecError(f"entry '{name}' returns '{grp}', which no result is", _where("graph", "entries", i, 1, j))
        for j, grp in enumerate(taken):
            if grp in listed:
                raise SpecError(f"entry '{name}' takes '{grp}', which is also a param or input", _where("graph", "entries", i, 2, j))
            if grp not in takes:
                raise SpecError(f"entry '{name}' takes '{grp}', which no input is", _where("graph", "entries", i, 2, j))
    for i, n in enumerate(d.nodes):
        if n.op == "input" and n.id in extra:
            continue
        if n.op in ("param", "input") and n.id not in listed:
            raise SpecError(f"{n.op} node '{n.id}' is not listed in graph.{n.op}s", _where("nodes", i))

    # ---- roles
    def node(name: str, *where) -> None:
        if name not in index:
            raise SpecError(f"no node '{name}'", _where(*where))

    node(gd.loss, "graph", "loss")
    shape = d.nodes[index[gd.loss]].shape
    if not all(isinstance(x, int) for x in shape) or math.prod(shape) != 1:
        raise SpecError(f"the loss must have exactly one element, '{gd.loss}' has shape {list(shape)}", "graph.loss")
    outs: set[str] = set()
    for i, (name, target) in enumerate(gd.outputs):
        if name in outs:
            raise SpecError(f"output '{name}' is listed twice", _where("graph", "outputs", i, 0))
        outs.add(name)
        node(target, "graph", "outputs", i, 1)
    wrt: set[str] = set()
    for i, name in enumerate(gd.wrt):
        if name in wrt:
            raise SpecError(f"'{name}' is listed twice", _where("graph", "wrt", i))
        wrt.add(name)
        if gd.stage == "forward":  # (later stages: the names of the gradients)
            node(name, "graph", "wrt", i)
    if gd.stage == "forward":
        if gd.grads:
            raise SpecError("a forward-stage dump has no gradients", "graph.grads")
    else:
        if [w for w, _ in gd.grads] != gd.wrt:
            raise SpecError("expected one gradient per wrt name, in the order of graph.wrt", "graph.grads")
        for i, (_, target) in enumerate(gd.grads):
            node(target, "graph", "grads", i, 1)

    # ---- initial values, initializers, classes, dims
    params, inputs = set(gd.params), set(gd.inputs)
    for key in gd.values:
        if key not in params and key not in inputs:
            raise SpecError(f"'{key}' is not a param or an input", _where("graph", "values", key))
        shape = d.nodes[index[key]].shape
        if not all(isinstance(x, int) for x in shape):
            raise SpecError("a value with a symbolic dim cannot have a fixed value", _where("graph", "values", key))
    for key in gd.inits:
        if key not in params:
            raise SpecError(f"'{key}' is not a param", _where("graph", "inits", key))
    for i, p in enumerate(gd.params):
        if (p in gd.values) == (p in gd.inits):
            what = "both a value and an init" if p in gd.values else "neither a value nor an init"
            raise SpecError(f"param '{p}' has {what}", _where("graph", "params", i))
    for key in gd.classes:
        if key not in inputs:
            raise SpecError(f"'{key}' is not an input", _where("graph", "classes", key))
    declared: dict[str, int] = {}
    for i, (name, _) in enumerate(gd.dims):
        if name in declared:
            raise SpecError(f"dim '{name}' is listed twice", _where("graph", "dims", i, 0))
        declared[name] = i
    used: set[str] = set()
    for i, n in enumerate(d.nodes):
        for x in n.shape:
            if isinstance(x, str):
                if x not in declared:
                    raise SpecError(f"dim '{x}' is not declared in graph.dims", _where("nodes", i, "shape"))
                if n.op == "input":
                    used.add(x)
    for name, i in declared.items():
        if name not in used:
            raise SpecError(f"no input has a dim named '{name}'", _where("graph", "dims", i, 0))
    seqs: dict[int, int] = {}
    for i, n in enumerate(d.nodes):
        if n.seq > gd.next_seq:
            raise SpecError("next_seq is below a node's seq", "graph.next_seq")
        if n.seq in seqs:
            raise SpecError(f"seq {n.seq} is also the seq of nodes[{seqs[n.seq]}]", _where("nodes", i, "seq"))
        seqs[n.seq] = i
        if isinstance(n.hint, tuple) and n.hint[1] is not None and n.hint[1] not in index:
            raise SpecError(f"no node '{n.hint[1]}'", _where("nodes", i, "hint", 1))
    return attrs


def build(d: Dump, attrs: dict[str, dict]) -> Program:
    """The program of a checked dump (after :func:`check`)."""
    gd = d.graph
    m = gd.meta
    g = Graph(m.dtype)
    for n in d.nodes:
        g.nx.add_node(
            n.id,
            op=n.op,
            shape=tuple(n.shape),
            dtype=n.dtype,
            attrs=attrs[n.id],
            phase=n.phase,
            source=n.source,
            origin=n.origin,
            named=n.named,
            hint=n.id if n.hint is None else n.hint,
            seq=n.seq,
            **({"accum": True} if n.accum else {}),
        )
    for e in d.edges:
        g.nx.add_edge(e.source, e.target, pos=e.pos)
    g.params, g.inputs = list(gd.params), list(gd.inputs)
    g._seq = gd.next_seq
    g.set_result("loss", gd.loss)
    for k, v in gd.outputs:
        g.set_result(f"outputs.{k}", v)
    for k, v in gd.grads:
        g.set_result(f"grads.{k}", v)
    for k, v in gd.results:
        g.set_result(k, v)
    g.extra_inputs = dict(gd.extra_inputs)
    info = ModuleInfo(
        name=m.name,
        spec_path=m.spec_path,
        spec_sha256=m.spec_sha256,
        description=m.description,
        seed=m.seed,
        values={k: literal_array(v, g.shape(k), _where("graph", "values", k)) for k, v in gd.values.items()},
        inits=dict(gd.inits),
        docs=dict(gd.docs),
        source_text=dict(gd.source_text),
        dims=dict(gd.dims),
        classes=dict(gd.classes),
    )
    if gd.entries is not None:
        entries = tuple(Entry(name, tuple(r), tuple(t), c) for name, r, t, c in gd.entries)
    else:
        entries = (forward_entry(g),) if gd.stage == "forward" else gradient_entries(g)
    return Program(g, info, tuple(gd.wrt), entries, tuple(gd.notes))


def load(data: Any) -> tuple[Program, str]:
    """Validate a dump and build its program. Returns (program, stage)."""
    d = parse(data)
    p = build(d, check(d))
    g = p.graph
    try:
        g.verify()
    except (AssertionError, BpcError) as e:
        msg = getattr(e, "message", None) or str(e)
        raise SpecError(f"IR dump fails verification: {msg}", "graph") from None
    return p, d.graph.stage
