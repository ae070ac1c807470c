"""IR to a standalone NumPy module, in black's style.

The module's contract (see ``docs/generated.md``): module-level ``PARAMS``,
``INPUTS`` (name -> shape), ``WRT``, ``OUTPUTS`` and ``LOSS``;
``forward(**arrays)`` returning the loss, or ``(loss, outputs)`` when the spec
declares outputs; ``value_and_grad(**arrays)`` returning ``(loss, grads)``;
``init_params(seed)`` and ``example_inputs(seed)`` returning dicts of arrays.

Statements: every value the user named (spec names, ``g_<name>`` gradient
totals) and every value used more than once becomes an assignment; a value
used once is inlined into its user as a sub-expression (parenthesized by
precedence). Scalar constants are literals.

Memory: after the last use of an array of at least ``free_threshold`` elements
the code says ``del`` (so peak memory follows the schedule, as in careful
hand-written code), and fan-out gradients of three or more terms are summed
in place (``g += term``).

Formatting: the output is black-formatted. Lines we emit in a form black
keeps (short, canonical spacing) are written directly; every other statement
goes through black (one batched call), so large networks compile fast. The
test suite checks that ``black.format_str`` leaves every module unchanged.
Output is deterministic: the same graph gives the same bytes.
"""

from __future__ import annotations

import ast
import json
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

import black
import numpy as np

from . import __version__
from .autodiff import tangent_text
from .errors import SpecError
from .ir import BACKWARD, FORWARD, TANGENT, Graph
from .program import Entry, ModuleInfo, Program
from .ops.registry import get_op, is_float, is_static, pyval, sum_to_axes
from .targets import NUMPY, Target
from .targets.numpy import FLOAT_TYPES
from .targets.pyexpr import NP, E, assign, augassign
from .verify import verify_module, verify_statements

SOURCES = ("input", "param")
# Ops whose spelling (an operator, or a method of its operand) keeps Python
# numbers Python numbers; every np.* function returns NumPy values.
SCALAR_ARITH = frozenset({"add", "sub", "mul", "div", "neg", "square", "pow_const", "pow", "identity", "stop_gradient"})
LINE = 88
MAX_INLINE_DEPTH = 24


@dataclass
class CodegenOptions:
    comments: bool = True
    free_threshold: int | None = 64  # elements; None: never emit del
    inplace_accumulate: bool = True
    target: Target = NUMPY
    workspace: bool = False  # -O3: buffers reused across calls, value_and_grad(..., out=)


# ------------------------------------------------------------------ text helpers


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else "?" for c in text)


def _wrap(text: str, width: int = 79) -> list[str]:
    """Spec text as docstring lines: wrapped, non-printable characters as '?'.

    The lines only ever reach source inside a string literal that
    ``ast.unparse`` writes (see ``_docstring``), so no text can end it early.
    """
    out: list[str] = []
    for para in text.split("\n"):
        out += textwrap.wrap(_printable(para), width) or [""]
    while out and not out[-1]:
        out.pop()
    return out


def _docstring(lines: list[str]) -> str:
    """A module docstring as source: quoting and escapes by ``ast.unparse``."""
    text = "\n".join(lines)
    if len(lines) > 1:
        text += "\n"
    return ast.unparse(ast.Module([ast.Expr(ast.Constant(text))], []))


def _comment_text(text: str) -> str:
    """Spec text as one comment line: no line breaks, nothing non-printable."""
    return _printable(" ".join(text.split()))


# Arrays of more elements are written as strings of numbers (np.fromstring, one
# string a row), in float32's shortest digits when the values are float32 (ONNX
# weights): about 11 characters a number instead of about 30 in nested lists,
# and few enough atoms for black to format a 270k-weight module in seconds.
TEXT_ARRAY_ELEMENTS = 1024
TEXT_ARRAY_ROW = 256  # numbers per string of a 1-D array (else one string per row)


def _array_literal(a: np.ndarray, dtype: str = "f64") -> str:
    """A literal array in ``dtype`` (labels: ints; float32: ``dtype=`` given)."""
    num = int if dtype == "i64" else float
    kw = ", dtype=np.float32" if dtype == "f32" else ""
    if a.ndim == 0:
        return f"np.array({num(a)!r}{kw})"
    if a.size > 1 and np.all(a == a.flat[0]):  # a filled value: no long literal
        return f"np.full({pyval(a.shape)}, {num(a.flat[0])!r}{kw})"
    if a.size > TEXT_ARRAY_ELEMENTS and dtype != "i64":
        return _text_array(a, dtype)
    return f"np.array({_nested(a.tolist(), num)}{kw})"


def _text_array(a: np.ndarray, dtype: str) -> str:
    """A large array as ``np.fromstring("1.5 -0.25 ...", sep=" ")``, one string
    per row of its last axis, laid out as black does (lines relative to the
    dict item). NumPy parses numbers (no code runs); the text is parsed here
    as the module will parse it, and must give the exact values."""
    np_dtype = np.float32 if dtype == "f32" else np.float64
    want = np.asarray(a, dtype=np.float64).astype(np_dtype)
    f32 = want.astype(np.float32)
    if np.array_equal(f32.astype(np.float64), want.astype(np.float64)):
        words = [str(x) for x in f32.reshape(-1)]  # float32 values: their shortest digits
    else:
        words = [repr(float(x)) for x in want.reshape(-1)]
    kw = ["    dtype=np.float32,"] if dtype == "f32" else []
    for attempt in range(2):
        row = a.shape[-1] if a.ndim >= 2 else TEXT_ARRAY_ROW
        rows = [" ".join(words[i : i + row]) for i in range(0, len(words), row)]
        got = np.fromstring(" ".join(rows), sep=" ", dtype=np_dtype)
        if np.array_equal(got, want.reshape(-1)):
            break
        words = [repr(float(x)) for x in want.reshape(-1)]  # float64 digits: exact for any value
    else:  # pragma: no cover - repr round-trips every float64
        raise AssertionError("np.fromstring does not read the values back")
    lines = [f'    "{r} "' for r in rows[:-1]] + [f'    "{rows[-1]}",', '    sep=" ",'] + kw
    return "np.fromstring(\n" + "\n".join(lines) + f"\n).reshape({pyval(a.shape)})"


def _nested(v, num=float) -> str:
    if isinstance(v, list):
        return "[" + ", ".join(_nested(x, num) for x in v) + "]"
    return repr(num(v))


def _as_dtype(expr: str, dtype: str) -> str:
    """A float64 draw as the compile dtype (the same values, rounded)."""
    return f"{expr}.astype(np.float32)" if dtype == "f32" else expr


def _return_dict(prefix: str, m: dict[str, str]) -> str:
    """``return <prefix>{...}`` laid out as black would (inside a function)."""
    items = [f"{json.dumps(k)}: {v}" for k, v in m.items()]
    return _explode(f"return {prefix}{{", items, "}", indent=4) or f"return {prefix}{{{', '.join(items)}}}"


# ------------------------------------------------------------------ statements


@dataclass
class Stmt:
    target: str
    text: str  # the full statement, e.g. "z1 = x @ w1 + b1" or "g += t"
    reads: set[str]
    phase: str
    source: str | None


# Comments of the derivative blocks: per phase, the header said when the block
# starts, and each op's rule in words.
PHASE_COMMENTS = {
    BACKWARD: (
        [
            "# Backward pass: the chain rule, from the loss back to the inputs.",
            "# g_<name> is d loss / d <name>; in the rules below g is the gradient",
            "# arriving at an op's output and y is that output.",
        ],
        lambda op: op.derivative,
    ),
    TANGENT: (
        [
            "# Forward mode: each t_<name> is the derivative of <name> along the",
            "# direction given, computed beside the values by each op's tangent rule.",
        ],
        tangent_text,
    ),
}


class _Emitter:
    def __init__(self, g: Graph, roots: list[str], opts: CodegenOptions, names: dict[str, str], info: ModuleInfo):
        self.g = g
        self.names = names
        self.info = info
        self.opts = opts
        self.target = opts.target
        self.assigned: set[str] = set()
        self._pynum: dict[str, bool] = {}
        self.int_numbers: set[str] = set()  # assigned, and still Python ints (counts)
        self.roots = set(roots)
        nodes = g.ancestors(roots)
        self.order = [n for n in g.topo(nodes) if g.op(n) not in SOURCES]
        self.uses = {n: 0 for n in nodes}
        for n in self.order:
            k = 2 if g.op(n) in self.target.reuses_operands else 1
            for a in g.args(n):
                self.uses[a] += k
        # Bound the nesting of inlined expressions (readability, and recursion
        # depth on huge fan-outs): a subtree deeper than this becomes a statement.
        self.forced: set[str] = set()
        depth: dict[str, int] = {}
        for n in self.order:
            dn = 1 + max((depth.get(a, 0) for a in g.args(n) if self._inlinable(a)), default=0)
            if dn > MAX_INLINE_DEPTH:
                self.forced.add(n)
                dn = 0
            depth[n] = dn

    def python_number(self, n: str) -> bool:
        """Whether ``n``'s emitted value is a Python number, not a NumPy value:
        a scalar literal, a size read from a shape, or arithmetic of those,
        not yet assigned to a variable (statements make them NumPy scalars)."""
        if n in self.assigned:
            return False
        if n not in self._pynum:
            g = self.g
            op = g.op(n)
            if op == "const":
                out = g.shape(n) == ()
            elif op == "count":
                out = True
            elif op in SCALAR_ARITH:
                out = all(self.python_number(a) for a in g.args(n))
            else:
                out = False
            self._pynum[n] = out
        return self._pynum[n]

    def _inlinable(self, n: str) -> bool:
        g = self.g
        op = g.op(n)
        if op in SOURCES or n in self.roots:
            return False
        if op == "const":
            return True
        return not g.data(n)["named"] and self.uses[n] == 1

    def inlined(self, n: str) -> bool:
        return n not in self.forced and self._inlinable(n)

    def expr(self, n: str, reads: set[str]) -> E:
        g = self.g
        d = g.data(n)
        if d["op"] in SOURCES or not self.inlined(n):
            reads.add(n)
            return E.name(self.names[n], d["shape"])
        return self.rhs(n, reads)

    def rhs(self, n: str, reads: set[str]) -> E:
        g = self.g
        d = g.data(n)
        args = g.args(n)
        operands = [self.expr(a, reads) for a in args]
        pynum = [self.python_number(a) or a in self.int_numbers for a in args]
        dtypes = [g.dtype(a) for a in args]
        if d["dtype"] != "f64" and is_float(d["dtype"]):
            # Python numbers are float64 once no array operand carries the
            # compile dtype (np.where(c, 1.0, 0.5), 0.5 * (y > 0)): give the
            # first one it.
            vals = get_op(d["op"]).value_args(len(operands))
            nums = [i for i in vals if pynum[i]]
            if nums and not any(is_float(dtypes[i]) for i in vals if not pynum[i]):
                i = nums[0]
                operands[i] = self.target.scalar(operands[i], FLOAT_TYPES[d["dtype"]])
                pynum[i] = False
        e = self.target.emit(d["op"], operands, d["attrs"], d["shape"], d["dtype"], dtypes, pynum)
        return E(e.node, d["shape"], e.literal)

    def _terms(self, n: str) -> list[str]:
        """Operands of a left-nested in-place-able accumulation chain."""
        g = self.g
        terms = []
        while True:
            a, b = g.args(n)
            terms.append(b)
            if not (g.op(a) == "add" and g.data(a).get("accum") and self.inlined(a)):
                terms.append(a)
                return terms[::-1]
            n = a

    def statements(self) -> list[Stmt]:
        g = self.g
        out: list[Stmt] = []
        for n in self.order:
            if self.inlined(n):
                continue
            d = g.data(n)
            if self.opts.inplace_accumulate and d["op"] == "add" and d.get("accum") and d["shape"] != ():
                terms = self._terms(n)
                if len(terms) >= 3 and all(g.shape(t) == d["shape"] for t in terms):
                    reads: set[str] = set()
                    first = self.into(n, self.expr(terms[0], reads) + self.expr(terms[1], reads))
                    out.append(Stmt(n, assign(self.names[n], first), reads, d["phase"], d["source"]))
                    for t in terms[2:]:
                        r: set[str] = set()
                        text = augassign(self.names[n], "+", self.expr(t, r))
                        out.append(Stmt(n, text, r, d["phase"], d["source"]))
                    out += self.after(n, d)
                    continue
            reads = set()
            e = self.rhs(n, reads)
            if self.python_number(n) and is_float(d["dtype"]):
                # A scalar computed from Python numbers alone (the seed, a
                # constant gradient, 1.0 / x.shape[0]) is kept as a NumPy
                # scalar of the compile dtype, never a Python float: it has .T
                # and .copy() and a dtype, like every other value.
                e = self.target.scalar(e, FLOAT_TYPES[d["dtype"]])
            elif self.python_number(n):
                self.int_numbers.add(n)
            self.assigned.add(n)
            e = self.into(n, e)
            text = assign(self.names[n], e) if self.bound(n) else ast.unparse(ast.Expr(e.node))
            out.append(Stmt(n, text, reads, d["phase"], d["source"]))
            out += self.after(n, d)
        return out

    def into(self, n: str, e: E) -> E:
        """``n``'s value as its statement computes it (-O3: into a buffer)."""
        return e

    def bound(self, n: str) -> bool:
        """Whether ``n``'s statement binds its name (-O3: not when it only
        writes a gradient into ``out`` that nothing reads after)."""
        return True

    def after(self, n: str, d: dict) -> list[Stmt]:
        """Statements right after ``n``'s (-O3: copies into the caller's arrays)."""
        return []

    def _freeable(self, n: str) -> bool:
        g = self.g
        if self.opts.free_threshold is None or n in self.roots or g.op(n) in SOURCES:
            return False
        shape = g.shape(n)
        return not is_static(shape) or int(np.prod(shape)) >= self.opts.free_threshold

    def body(self) -> list[str]:
        g = self.g
        stmts = self.statements()
        last: dict[str, int] = {}
        for i, s in enumerate(stmts):
            for r in s.reads:
                last[r] = i
        frees: dict[int, list[str]] = {}
        for v, i in last.items():
            if self._freeable(v):
                frees.setdefault(i, []).append(v)
        lines: list[str] = []
        phase, source, rule = FORWARD, None, None
        for i, s in enumerate(stmts):
            block = PHASE_COMMENTS.get(s.phase) if self.opts.comments else None
            if block is not None:
                header, rule_of = block
                if phase != s.phase:
                    lines += ["", *header]
                if s.source != source:
                    text = self.info.source_text.get(s.source) if s.source else None
                    if text:
                        lines.append(f"# {_comment_text(s.source)}: {_comment_text(text)}")
                    source, rule = s.source, None
                origin = g.origin(s.target) if s.target in g else None
                if origin in g and g.op(origin) not in SOURCES:
                    op = get_op(g.op(origin))
                    words = rule_of(op)
                    text = f"#   {_comment_text(op.name + ': ' + words)}" if words else None
                    if text and text != rule:
                        lines.append(text)
                        rule = text
            phase = s.phase
            lines.append(s.text)
            if i in frees:
                dead = sorted(frees[i], key=lambda v: g.data(v)["seq"])
                lines.append("del " + ", ".join(self.names[v] for v in dead))
        return lines


class _BufferedEmitter(_Emitter):
    """-O3 (``compiler/workspace.py``): the same statements, computed with
    ``out=`` into workspace buffers, and gradients into ``out[name]``."""

    def __init__(
        self, g: Graph, roots: list[str], opts: CodegenOptions, names: dict[str, str], info: ModuleInfo, out_keys=None, kept=()
    ):
        from .workspace import buffer_candidates, dim_sources

        self.out_keys: dict[str, str] = dict(out_keys or {})  # gradient node -> key of out
        # Gradients that are also returned on their own (the loss, an output):
        # computed as usual and copied into out[key], never computed there (the
        # loss would share the caller's array, and the statement keeps its name).
        self.kept: set[str] = set(kept)
        self.candidates: set[str] = set()
        self.dims = dim_sources(g, names)  # symbolic dim -> its size read off an argument
        super().__init__(g, roots, opts, names, info)
        self.candidates = buffer_candidates(self)
        self._sink()
        self.slot_of: dict[str, int] = {}
        self.slots: list[tuple] = []  # the shape of each workspace array
        self.ones: dict = {}  # rows -> the slot of a vector of ones (row sums)
        self.in_place: dict[str, str] = {}  # value -> the dying operand whose buffer it takes
        self.written: set[str] = set()  # out keys written
        self._plan()

    def _inlinable(self, n: str) -> bool:
        if n in self.candidates or n in self.out_keys:
            return False
        return super()._inlinable(n)

    def _sink(self) -> None:
        """Move each buffered value the default level would inline (one use, no
        name of its own) to just before its user, as the inlined expression was:
        its buffer then lives for one statement, not from where its operands
        are ready (``1 - h * h`` of a tanh would otherwise wait the whole
        forward pass in its own array)."""
        g = self.g
        late = {n for n in self.candidates if _Emitter._inlinable(self, n) and n not in self.forced}
        if not late:
            return
        placed: set[str] = set()
        order: list[str] = []

        def place(n: str) -> None:
            for a in g.args(n):
                if a in late and a not in placed:
                    place(a)
            placed.add(n)
            order.append(n)

        for n in self.order:
            if n not in late and n not in placed:
                place(n)
        order += [n for n in self.order if n not in placed]
        self.order = order

    def _reads(self, n: str) -> set[str]:
        out: set[str] = set()
        for a in self.g.args(n):
            if self.g.op(a) in SOURCES or not self.inlined(a):
                out.add(a)
            else:
                out |= self._reads(a)
        return out

    def _plan(self) -> None:
        """Give each buffered value a workspace array: a linear scan over the
        statements, freeing a buffer after the last read of its value and of
        every view of it."""
        from .workspace import ELEMENTWISE

        g = self.g
        stmts = [n for n in self.order if not self.inlined(n)]
        pos = {n: i for i, n in enumerate(stmts)}
        reads = {n: self._reads(n) for n in stmts}
        last: dict[str, int] = {}
        for n in stmts:
            for r in reads[n]:
                last[r] = pos[n]
        alias: dict[str, set[str]] = {}  # a statement's value -> buffered values it may view
        for n in stmts:
            if g.op(n) in VIEW_OPS | BROADCASTS:
                bases: set[str] = set()
                for r in reads[n]:
                    bases |= alias.get(r, set()) | ({r} if r in self.candidates else set())
                alias[n] = bases
        end = {b: last.get(b, pos[b]) for b in self.candidates}
        for v, bases in alias.items():
            for b in bases:
                end[b] = max(end[b], last.get(v, pos[v]))
        dying: dict[int, list[str]] = {}
        for b in sorted(self.candidates, key=lambda b: g.data(b)["seq"]):
            dying.setdefault(end[b], []).append(b)
        free: dict[tuple, list[int]] = {}
        for i, n in enumerate(stmts):
            if n in self.candidates:
                shape = tuple(g.shape(n))
                slot = None
                chain = g.op(n) == "add" and g.data(n).get("accum")
                if g.op(n) in ELEMENTWISE and not chain:
                    others = set().union(*(alias.get(r, set()) for r in reads[n]))
                    for a in g.args(n):
                        if a in self.slot_of and a not in self.in_place.values() and end[a] == i:
                            if tuple(g.shape(a)) == shape and a not in others:
                                slot = self.slot_of[a]
                                self.in_place[n] = a
                                break
                if slot is None:
                    pool = free.get(shape)
                    if pool:
                        slot = min(pool)
                        pool.remove(slot)
                    else:
                        slot = len(self.slots)
                        self.slots.append(shape)
                self.slot_of[n] = slot
            for b in dying.get(i, []):
                if b in self.slot_of and self.in_place.get(n) != b:
                    free.setdefault(tuple(g.shape(b)), []).append(self.slot_of[b])

    def bound(self, n: str) -> bool:
        return n in self.kept or not (n in self.out_keys and self.out_keys[n] in self.written and self.uses[n] == 0)

    def _ones_dot(self, n: str, e: E) -> E:
        """``x.sum(axis=0)`` of a 2-D float ``x`` as ``ones.dot(x)``, the ones a
        workspace vector: one BLAS call (about 0.4 us against 1.6 us for a
        16 x 32 bias gradient; 42 against 55 us at 256 x 1024)."""
        from .workspace import row_sum

        g = self.g
        x = row_sum(e)
        if x is None or g.op(n) not in ("sum", "sum_to") or len(g.args(n)) != 1:
            return e
        a = g.args(n)[0]
        shape = g.shape(a)
        ok = len(shape) == 2 and tuple(g.shape(n)) == (shape[1],)
        if not ok or g.dtype(a) != g.float_dtype or g.dtype(n) != g.float_dtype:
            return e
        rows = shape[0]
        if isinstance(rows, str) and rows not in self.dims:
            return e
        if rows not in self.ones:
            self.ones[rows] = len(self.slots)
            self.slots.append((rows,))
        return E(E.name(self.ones_name(rows)).dot(x).node, e.shape)

    def ones_name(self, rows) -> str:
        k = list(self.ones).index(rows)
        return "_bpc_ones" if k == 0 else f"_bpc_ones_{k + 1}"  # (the _bpc prefix: no user name can clash)

    def into(self, n: str, e: E) -> E:
        from .workspace import out_item, slot_item, with_out

        direct = n in self.out_keys and n not in self.kept  # computed into out[key]
        if direct or n in self.slot_of:
            e = self._ones_dot(n, e)
        if direct:
            got = with_out(e, out_item(self.out_keys[n]))
            if got is not None:
                self.written.add(self.out_keys[n])
                return got
            return e
        if n in self.slot_of:
            a = self.in_place.get(n)
            buf = E.name(self.names[a]) if a is not None else slot_item(self.slot_of[n])
            got = with_out(e, buf)
            if got is not None:
                return got
            # no out= form after all: an ordinary allocation, and no buffer
            del self.slot_of[n]
        return e

    def after(self, n: str, d: dict) -> list[Stmt]:
        key = self.out_keys.get(n)
        if key is None or key in self.written:
            return []
        self.written.add(key)
        return [Stmt(n, copy_into(key, E.name(self.names[n])), {n}, d["phase"], d["source"])]

    def _freeable(self, n: str) -> bool:
        return n not in self.slot_of and super()._freeable(n)

    def body(self) -> list[str]:
        lines = super().body()
        for node, key in self.out_keys.items():  # gradients that are arguments
            if key not in self.written:
                lines.append(copy_into(key, E.name(self.names[node])))
                self.written.add(key)
        return lines


def copy_into(key: str, value: E) -> str:
    """``np.copyto(out["key"], value)`` (-O3)."""
    from .workspace import out_item

    return ast.unparse(ast.Expr(NP.copyto(out_item(key), value).node))


def statement_owners(p: Program, entry: Entry, opts: CodegenOptions | None = None) -> dict[str, set[str]]:
    """Which statements of ``entry``'s function compute each node: for a node
    with a statement of its own (or a param's cast), itself; for a value
    inlined into its users, the owners of those users. Keys are nodes, values
    the nodes whose printed names the statements assign (the same inlining
    decisions as :func:`generate`)."""
    g = p.graph
    em = _Emitter(g, p.roots(entry), opts or CodegenOptions(), g.names(), p.info)
    owners: dict[str, set[str]] = {}
    for n in reversed(em.order):
        if not em.inlined(n):
            owners[n] = {n}
            continue
        out: set[str] = set()
        for u, _ in g.users(n):
            out |= owners.get(u, set())
        owners[n] = out
    for n in em.uses:
        if g.op(n) in SOURCES:
            owners[n] = {n}
    return owners


def generated_lines(p: Program, wrt: str, opts: CodegenOptions | None = None) -> list[str]:
    """The backward statements of value_and_grad that compute d loss / d wrt."""
    opts = opts or CodegenOptions(free_threshold=None)
    g = p.graph
    names = g.names()
    em = _Emitter(g, [g.loss, g.grads[wrt]], opts, names, p.info)
    lines = em.body()
    start = next((i for i, ln in enumerate(lines) if ln.startswith("# Backward")), len(lines))
    body = [ln for ln in lines[start:] if ln]
    return body + [f"grad_{wrt} = {names[g.grads[wrt]]}"]


def tangent_lines(p: Program, wrt: str, opts: CodegenOptions | None = None) -> list[str]:
    """The forward-mode statements of jvp that carry the tangent of ``wrt`` to the loss
    (``p`` compiled with jvp and ``wrt`` as its only WRT name)."""
    opts = opts or CodegenOptions(free_threshold=None)
    g = p.graph
    names = g.names()
    d_loss = g.results["d_loss"]
    em = _Emitter(g, [g.loss, d_loss], opts, names, p.info)
    seed = names[g.extra_inputs[f"tangents.{wrt}"]]
    # the whole body: forward values (some shared with the tangents), then the tangents
    lines = [ln for ln in em.body() if ln and not ln.startswith(f"{seed} = ")]
    return [f"{seed} = tangents[{wrt!r}]  # the direction: any array of {wrt}'s shape"] + lines + [
        f"d_loss = {names[d_loss]}"
    ]


# ------------------------------------------------------------------ formatting

# Characters of lines we know black leaves alone (no quotes, no **, no slices).
_SAFE = re.compile(r"^[A-Za-z0-9_ .,()=+\-*/@<>#:{}\"']*$")


# A subscript black leaves as it is: x[0], x[1:3], x[:, 0:2], x[-1]
_INDEX_ITEM = r"(?:-?[0-9]+|[A-Za-z_][A-Za-z0-9_]*)?"
_SIMPLE_INDEX = re.compile(rf"\[{_INDEX_ITEM}(?:(?::|, ){_INDEX_ITEM})*\]")


def _safe(line: str, indent: int) -> bool:
    if line.startswith("# "):  # black never rewraps comments
        return line == line.rstrip()
    if len(line) + indent > LINE or "**" in line or "\\" in line:
        return False
    if "[" in line:
        line = _SIMPLE_INDEX.sub("", line)
        if "[" in line or "]" in line:
            return False
    return bool(_SAFE.match(line)) and "  " not in line and "'" not in line


def _black(source: str) -> str:
    return black.format_str(source, mode=black.Mode(line_length=LINE))


def _format_body(lines: list[str]) -> list[str]:
    """Indent a function body; lines black would change go through black, batched."""
    # Multi-line entries were already laid out in black's style (_explode).
    todo = [i for i, ln in enumerate(lines) if ln and "\n" not in ln and not _safe(ln, 4)]
    out = ["\n".join("    " + x for x in ln.split("\n")) if ln else "" for ln in lines]
    if not todo:
        return out
    src = ["def _bpc_format_():"]
    for k, i in enumerate(todo):
        src.append(f"    # @bpc {k}")
        src.append("    " + lines[i])
    formatted = _black("\n".join(src) + "\n").splitlines()[1:]
    chunks: list[list[str]] = []
    for ln in formatted:
        if ln.startswith("    # @bpc "):
            chunks.append([])
        elif ln.strip():
            chunks[-1].append(ln)
    for i, chunk in zip(todo, chunks):
        out[i] = "\n".join(chunk)
    return out


def _explode(head: str, items: list[str], tail: str, indent: int = 0, collection: bool = True) -> str | None:
    """A bracketed list in black's style: one line if it fits; else, for call
    or def brackets, the items on one indented line if they fit; else (and
    always for collection displays, as black does) one item per line with a
    trailing comma. Returns None when an item needs splitting itself (black).
    """
    pad = ""  # lines are relative to the statement's indentation
    one = f"{head}{', '.join(items)}{tail}"
    if len(one) + indent <= LINE:
        return one
    inner = " " * 4
    body = ", ".join(items)
    if not collection and items and len(body) + indent + 4 <= LINE:
        return f"{head}\n{inner}{body}\n{pad}{tail}"
    if any(len(it) + indent + 5 > LINE for it in items):
        return None
    return f"{head}\n" + "".join(f"{inner}{it},\n" for it in items) + f"{pad}{tail}"


def _format_top(line: str) -> str:
    """A module-level statement or a def line in black's style."""
    if _safe(line, 0):
        return line
    if line.startswith("def "):
        return _black(line + "\n    pass\n").rstrip("\n").rsplit("\n", 1)[0]
    return _black(line + "\n").rstrip("\n")


def _function(name: str, params: list[str], doc: list[str], body: list[str], formatted: list | None = None) -> str:
    """A function in black's style; ``formatted`` (a list) receives its body's lines."""
    head = _explode(f"def {name}(", params, "):", collection=False) or _format_top(f"def {name}({', '.join(params)}):")
    doc_lines = ['    """' + doc[0]] + [("    " + d) if d else "" for d in doc[1:]]
    if len(doc) > 1:
        doc_lines.append('    """')
    else:
        doc_lines[0] += '"""'
    lines = _format_body(body)
    if formatted is not None:
        formatted.append(lines)
    return "\n".join([head] + doc_lines + lines)


# ------------------------------------------------------------------ module


def _shape_doc(g: Graph, n: str) -> str:
    shape = tuple(g.shape(n))
    return f"{n}: array of shape {pyval(shape)}" if shape else f"{n}: scalar"


def _arg_note(m: ModuleInfo, n: str) -> str:
    """An argument's doc (a front end's note, e.g. its ONNX name) after its shape."""
    doc = m.docs.get(n)
    if not doc:
        return ""
    # inside a docstring written as is: no quote or backslash may end or escape it
    return "; " + _comment_text(doc).replace("\\", "\\\\").replace('"', '\\"')


def _shape_literal(shape) -> str:
    """A shape tuple for PARAMS/INPUTS: sizes, and symbolic dims as strings."""
    parts = [json.dumps(d) if isinstance(d, str) else str(d) for d in shape]
    return f"({parts[0]},)" if len(parts) == 1 else f"({', '.join(parts)})"


# What each result group of an entry point is, for its docstring.
GROUP_DOCS = {
    "loss": "the loss",
    "outputs": "outputs maps each name in OUTPUTS to its value",
    "grads": "grads maps each name in WRT to d loss / d name",
    "d_loss": "d_loss is the derivative of the loss along the tangents",
    "d_outputs": "d_outputs maps each name in OUTPUTS to its derivative along the tangents",
    "hvp": "hvp maps each name in WRT to its part of H @ vectors",
}
# The dict arguments of entry points.
TAKES_DOCS = {
    "tangents": "tangents: dict mapping each name in WRT to an array of its shape (the direction)",
    "vectors": "vectors: dict mapping each name in WRT to an array of its shape (v in H @ v)",
    "cotangents": "cotangents: dict mapping each name in OUTPUTS to an array of its shape (u in u @ J)",
}


def _entry_doc(p: Program, entry: Entry) -> str:
    groups = entry.returns
    if len(groups) == 1:
        return f"Return {GROUP_DOCS.get(groups[0], groups[0])}."
    dicts = [GROUP_DOCS[grp] for grp in groups if grp not in p.graph.results and grp in GROUP_DOCS]
    return f"Return ({', '.join(groups)})" + (": " + "; ".join(dicts) if dicts else "") + "."


def _return(p: Program, entry: Entry, names: dict[str, str], target: Target = NUMPY, out: bool = False) -> str:
    """The return statement of ``entry``: every result a writable array of its
    own, sharing memory with no argument and no other result (copied where it
    could). ``out`` (-O3): the gradients are in the caller's dict ``out``."""
    g = p.graph
    items = p.returned(entry)
    bases: set[str] = set()
    if out:  # the gradients live in the caller's arrays: nothing else may view them
        for grp, r in zip(entry.returns, items):
            if grp == "grads":
                bases |= {_view_base(g, v)[0] for v in r.values()}
    parts: list = []
    for grp, r in zip(entry.returns, items):
        if out and grp == "grads":
            parts.append("out")
        elif isinstance(r, str):
            parts.append(_distinct(g, {"": r}, names, bases, target)[""])
        else:
            parts.append(_distinct(g, r, names, bases, target))
    if len(parts) == 1 and isinstance(parts[0], str):
        return f"return {parts[0]}"
    if all(isinstance(x, str) for x in parts[:-1]) and isinstance(parts[-1], dict):
        return _return_dict("".join(f"{x}, " for x in parts[:-1]), parts[-1])
    text = ", ".join(x if isinstance(x, str) else "{" + ", ".join(f"{json.dumps(k)}: {v}" for k, v in x.items()) + "}" for x in parts)
    return f"return {text}"


def generate(p: Program, opts: CodegenOptions | None = None) -> str:
    """The generated module's source, in black's style: one function per
    entry point of ``p``, plus the module constants and helpers."""
    opts = opts or CodegenOptions()
    g, m = p.graph, p.info
    dtype = g.float_dtype
    names = public = g.names()  # (public: the spec's names, for the module's constants)
    args = g.params + g.inputs
    clash = sorted(set(names.values()) & opts.target.reserved)
    if clash:
        raise SpecError(f"name {clash[0]!r} is reserved by the {opts.target.name} target (rename it)", clash[0])
    if opts.workspace:
        from . import workspace as ws

        if opts.target is not NUMPY:
            raise SpecError("-O3 writes NumPy's out= arguments: it is for the numpy target", "--target")
        clash = sorted(set(names[a] for a in g.params + g.inputs) & ws.RESERVED)
        if clash:
            raise SpecError(f"name {clash[0]!r} is reserved at -O3 (value_and_grad's out= argument): rename it", clash[0])
        # Any other value so named is a local of the function: renamed there
        # (out_1), so it cannot hide the out= argument.
        taken = set(names.values())
        for n, name in list(names.items()):
            if name in ws.RESERVED and n not in g.params + g.inputs:
                k = 1
                while f"{name}_{k}" in taken:
                    k += 1
                names = {**names, n: f"{name}_{k}"}
                taken.add(names[n])

    sha = "".join(c for c in str(m.spec_sha256)[:16] if c in "0123456789abcdef")
    head = [f"Generated by bpc {__version__} from {_printable(str(m.spec_path))} (sha256 {sha})."]
    head.append("")
    what = {".py": "the Python source", ".onnx": "the model"}.get(Path(str(m.spec_path)).suffix, "the spec")
    head.append(f"Do not edit: change {what} and run bpc compile again.")
    if m.description.strip():
        head.append("")
        head += _wrap(m.description.strip())
    fns = [e.name for e in p.entries]
    if "value_and_grad" in fns:
        head += [
            "",
            "Call value_and_grad(**params, **inputs) for (loss, grads); see forward,",
            "init_params and example_inputs.",
        ]
    else:
        head += ["", f"Functions: {', '.join(fns)}; see init_params and example_inputs."]
    top = []

    def table(name: str, keys: list[str]) -> str:
        items = [f"{json.dumps(n)}: {_shape_literal(g.shape(n))}" for n in keys]
        return _explode(f"{name} = {{", items, "}") or _format_top(f"{name} = {{{', '.join(items)}}}")

    def tuple_of(name: str, t) -> str:
        if not t:
            return f"{name} = ()"
        items = [json.dumps(x) for x in t]
        if len(t) == 1:
            return _format_top(f"{name} = ({items[0]},)")
        return _explode(f"{name} = (", items, ")") or _format_top(f"{name} = ({', '.join(items)})")

    consts = [
        table("PARAMS", g.params),
        table("INPUTS", g.inputs),
        tuple_of("WRT", list(g.grads) if g.grads else [public[w] for w in p.wrt]),
        tuple_of("OUTPUTS", list(g.outputs)),
        f"LOSS = {json.dumps(public[g.loss])}",
        tuple_of("ENTRY_POINTS", [e.name for e in p.entries]),
    ]
    if m.dims:
        consts.append(_format_top("DIMS = {" + ", ".join(f"{json.dumps(k)}: {v}" for k, v in m.dims.items()) + "}"))
    top.append("\n".join(consts))
    top.append(_init_function(g, m))
    top.append(_inputs_function(g, m))
    if m.classes:
        top.append(opts.target.labels_check or LABELS_CHECK)
    if opts.workspace:
        top[0] += f"\n{ws.WORKSPACE_DICT} = {{}}"
        top += list(ws.workspace_templates(dtype).values())

    arg_doc = ["", "Args:"] + [f"    {_shape_doc(g, a)}{_arg_note(m, a)}" for a in args]
    entry_casts = _entry_casts(g, opts.target) + _label_checks(g, m)
    bodies: list[list[str]] = []  # the big bodies, for the output check
    stubs = {}
    ftype = FLOAT_TYPES[dtype]
    for entry in p.entries:
        if entry.calls is not None:
            top.append(_composite(p, entry, args, arg_doc, opts.target))
            continue
        takes = p.takes(entry)
        roots = set(p.roots(entry))
        unpack = [
            assign(names[node], opts.target.cast_arg(_item(grp, key), ftype))
            for grp, group in takes
            for key, node in group.items()
            if g.users(node) or node in roots  # (a cotangent no wrt value depends on is not read)
        ]
        fargs = args + [grp for grp, _ in takes]
        doc = [_entry_doc(p, entry)] + arg_doc + [f"    {TAKES_DOCS.get(grp, grp)}" for grp, _ in takes]
        if opts.workspace:
            grads = g.grads if entry.name == "value_and_grad" else {}
            out_keys = {}
            for key, node in grads.items():
                out_keys.setdefault(node, key)
            kept = [r for grp, r in zip(entry.returns, p.returned(entry)) if isinstance(r, str)]
            kept += [v for grp, r in zip(entry.returns, p.returned(entry)) if isinstance(r, dict) and grp != "grads" for v in r.values()]
            em = _BufferedEmitter(g, p.roots(entry), opts, names, m, out_keys, kept)
            lines = em.body()
            extra = [k for k, node in grads.items() if out_keys[node] != k]
            lines += [copy_into(k, ws.out_item(out_keys[grads[k]])) for k in extra]  # one value, two names
            head_lines = []
            if em.slots:
                ones = f", ones={ws.int_tuple(sorted(em.ones.values()))}" if em.ones else ""
                head_lines.append(
                    f"{ws.WORKSPACE_VAR} = _bpc_workspace({json.dumps(entry.name)}, {ws.shapes_literal(em.slots, em.dims)}{ones})"
                )
                head_lines += [f"{em.ones_name(r)} = {ws.WORKSPACE_VAR}[{i}]" for r, i in em.ones.items()]
            if grads:
                items = [(k, g.shape(node)) for k, node in grads.items()]
                head_lines.append(f"out = _bpc_out(out, {ws.keyed_shapes_literal(items, em.dims)})")
                fargs = fargs + ["out=None"]
                doc += [
                    "    out: None, or a dict of writable C-contiguous arrays (one per name in WRT,",
                    "        of its shape and the compile dtype) to write the gradients into and return",
                ]
            body = entry_casts + unpack + head_lines + lines
            body.append(_return(p, entry, names, opts.target, out=bool(grads)))
        else:
            body = entry_casts + unpack + _Emitter(g, p.roots(entry), opts, names, m).body()
            body.append(_return(p, entry, names, opts.target))
        body = opts.target.prologue(args, body) + body
        top.append(_function(entry.name, fargs, doc, body, bodies))
        stubs[entry.name] = _function(entry.name, fargs, doc, ["return None"])
    checkable = {"forward", "value_and_grad"} <= {e.name for e in p.entries}
    if checkable:
        top.append(self_check_source(dtype))
    preamble = _docstring(head) + "\n\n" + opts.target.import_line + "\n\n" + top[0]
    source = "\n\n\n".join([preamble] + top[1:]) + "\n"
    if len(source) <= VERIFY_WHOLE_MAX:
        verify_module(source, templates(dtype, opts.target), opts.target)
    else:
        # A big module: parsed whole, its syntax tree would take about three
        # times the memory of everything else. Check the module with the
        # entry points' bodies stubbed, then each body statement on its own:
        # the source is exactly those pieces joined, so the same whitelist holds.
        skeleton = [stubs.get(t.split("(", 1)[0][4:], t) if t.startswith("def ") else t for t in top[1:]]
        verify_module("\n\n\n".join([preamble] + skeleton) + "\n", templates(dtype, opts.target), opts.target)
        for lines in bodies:
            for stmt in lines:
                verify_statements(stmt, opts.target)
    return source


def _item(group: str, key: str) -> E:
    """``group["key"]`` (the key a string literal, quoted by ``ast.unparse``)."""
    return E(ast.Subscript(E.name(group).node, ast.Constant(str(key)), ast.Load()))


VERIFY_WHOLE_MAX = 1_000_000  # characters: above, the module is checked piece by piece


def _blocks(g: Graph, items: list[tuple[str, str]]) -> tuple[int, dict[str, tuple[int, int, tuple]]]:
    """Offsets of each (key, node) in one flat basis: key -> (start, stop, shape)."""
    out, at = {}, 0
    for key, n in items:
        shape = tuple(g.shape(n))
        size = int(np.prod(shape)) if shape else 1
        out[key] = (at, at + size, shape)
        at += size
    return at, out


def _composite(p: Program, entry: Entry, args: list[str], arg_doc: list[str], target: Target = NUMPY) -> str:
    """jacobian or hessian: one call of ``entry.calls`` per basis vector,
    columns (or rows) stacked and shaped ``out.shape + in.shape``."""
    g = p.graph
    wrt = [(w, w) for w in p.wrt]
    call_args = ", ".join(f"{a}={a}" for a in args)
    lines: list[str] = []
    if entry.name == "hessian":
        n, blocks = _blocks(g, wrt)
        rows, cols, group, index = blocks, blocks, "vectors", 2
        doc = [
            "Return the Hessian of the loss over WRT: hessian[a][b] has the shape of",
            f"a + the shape of b (d2 loss / da db). Built from {n} hvp calls, one per",
            "element of the WRT values.",
        ]
    else:
        outs = list(g.outputs.items())
        if entry.calls == "jvp":
            n, cols = _blocks(g, wrt)
            _, rows = _blocks(g, outs)
            group, index = "tangents", 2
        else:
            n, rows = _blocks(g, outs)
            _, cols = _blocks(g, wrt)
            group, index = "cotangents", 1
        doc = [
            "Return the Jacobian of the outputs over WRT: jacobian[o][w] has the shape",
            f"of o + the shape of w (d o / d w). Built from {n} {entry.calls} calls, one per",
            f"element of the {'WRT values' if entry.calls == 'jvp' else 'outputs'}.",
        ]
    basis = cols if entry.calls in ("jvp", "hvp") else rows
    lines.append(f"_bpc_e = {target.eye(n, FLOAT_TYPES[g.float_dtype])}")  # (the _bpc prefix: no user name can clash)
    for k in range(n):
        parts = []
        for key, (a, b, shape) in basis.items():
            parts.append(f"{json.dumps(key)}: {target.reshape(f'_bpc_e[{k}, {a}:{b}]', pyval(shape))}")
        lines.append(f"_bpc_c{k} = {entry.calls}({call_args}, {group}={{{', '.join(parts)}}})[{index}]")
    result = []
    for r, (ra, rb, rshape) in rows.items():
        inner = []
        for c, (ca, cb, cshape) in cols.items():
            if entry.calls in ("jvp", "hvp"):  # columns: d row / d basis k
                terms = ", ".join(f"_bpc_c{k}[{json.dumps(r)}]" for k in range(ca, cb))
                expr = target.reshape(target.stack(terms, -1), pyval(rshape + cshape))
            else:  # rows: d basis k / d column
                terms = ", ".join(f"_bpc_c{k}[{json.dumps(c)}]" for k in range(ra, rb))
                expr = target.reshape(target.stack(terms, 0), pyval(rshape + cshape))
            inner.append(f"{json.dumps(c)}: {expr}")
        result.append(f"{json.dumps(r)}: {{{', '.join(inner)}}}")
    lines.append(f"return {{{', '.join(result)}}}")
    return _function(entry.name, args, doc + arg_doc, target.prologue(args, lines) + lines)


def _entry_casts(g: Graph, target: Target) -> list[str]:
    """``x = np.asarray(x, dtype=np.float64)`` for each float argument: int or
    bool arrays (or lists) passed in compute, and differentiate, in floats."""
    ftype = FLOAT_TYPES[g.float_dtype]
    lines = [assign(a, target.cast_arg(E.name(a), ftype)) for a in g.params + g.inputs if is_float(g.dtype(a))]
    if lines:
        lines.insert(0, f"# Compute in {ftype}, whatever {target.cast_what} come in.")
    return lines


def _label_checks(g: Graph, m: ModuleInfo) -> list[str]:
    """``y = _bpc_labels(y, "y", 10)`` for each input of class labels (see LABELS_CHECK)."""
    return [f"{i} = _bpc_labels({i}, {json.dumps(i)}, {int(m.classes[i])})" for i in g.inputs if i in m.classes]


# A module with class-label inputs checks them on entry, in one place: a label
# outside [0, classes) would index past one_hot's rows (IndexError) or, when
# negative, silently wrap around; a fraction would be truncated.
LABELS_CHECK = '''def _bpc_labels(y, name, classes):
    """`y` as integer class labels in [0, classes), or a ValueError naming the
    input (NumPy indexing would wrap a negative label around silently).
    """
    y = np.asarray(y)
    expected = f"{name}: expected integer class labels in [0, {classes}), got"
    if y.dtype.kind == "f":
        whole = np.isfinite(y) & (y == np.round(y))
        if not np.all(whole):
            raise ValueError(f"{expected} {y[~whole].flat[0]}")
        y = y.astype(np.int64)
    if y.dtype.kind not in "iu":
        raise ValueError(f"{expected} {y.dtype} values")
    outside = (y < 0) | (y >= classes)
    if np.any(outside):
        raise ValueError(f"{expected} {y[outside].flat[0]}")
    return y'''


# Ops whose NumPy spelling can return a view of an operand (read-only, for
# broadcasts).
VIEW_OPS = frozenset({"identity", "stop_gradient", "reshape", "transpose", "slice", "sum_to"})
BROADCASTS = frozenset({"broadcast_to", "broadcast_like"})


def _view_base(g: Graph, n: str) -> tuple[str, bool]:
    """The value whose memory ``n`` may share, and whether ``n`` may be read-only."""
    readonly = False
    while True:
        op = g.op(n)
        if op in BROADCASTS:
            readonly = True
        elif op not in VIEW_OPS or (op == "sum_to" and not _reshapes(g, n)):
            return n, readonly
        n = g.args(n)[0]


def _reshapes(g: Graph, n: str) -> bool:
    src, dst = g.shape(g.args(n)[0]), g.shape(n)
    lead, kept = sum_to_axes(src, dst)
    return all(src[i] == 1 for i in lead + kept)


def _distinct(g: Graph, m: dict[str, str], names: dict[str, str], bases: set[str], target: Target = NUMPY) -> dict[str, str]:
    """Return expressions, copied where a result could share memory with an
    argument or another result (``bases``: those already returned), or be a
    read-only broadcast view: every result is a writable array of its own."""
    out = {}
    for k, v in m.items():
        base, readonly = _view_base(g, v)
        shared = base in bases or g.op(base) in SOURCES
        out[k] = target.copy(names[v]) if shared or readonly else names[v]
        bases.add(base)
    return out


# Appended to every module: `python module.py` checks its own gradients.
SELF_CHECK = '''def _self_check(seed=0, step=1e-6, samples=200):
    """Compare value_and_grad with central finite differences (NumPy only).

    Checks up to `samples` elements of each param/input gradient; returns True
    when every checked element agrees within 1e-6 relative (+1e-8 absolute).
    """
    arrays = {**init_params(seed), **example_inputs(seed)}
    loss, grads = value_and_grad(**arrays)
    scale = max(1.0, abs(float(np.sum(loss))))
    rng = np.random.default_rng(seed)
    ok = True
    for name in WRT:
        if name not in arrays:
            print(f"{name:>12}  intermediate value: checked by bpc check, not here")
            continue
        x = np.array(arrays[name], dtype=np.float64)
        flat = x.reshape(-1)
        picks = np.arange(flat.size)
        if flat.size > samples:
            picks = np.sort(rng.choice(flat.size, samples, replace=False))
        numeric = np.empty(picks.size)
        for k, i in enumerate(picks):
            old = flat[i]
            h = step * max(1.0, abs(old))
            flat[i] = old + h
            up = forward(**{**arrays, name: x})
            flat[i] = old - h
            down = forward(**{**arrays, name: x})
            flat[i] = old
            up = up[0] if isinstance(up, tuple) else up
            down = down[0] if isinstance(down, tuple) else down
            numeric[k] = (np.sum(up) - np.sum(down)) / (2.0 * h)
        analytic = np.asarray(grads[name], dtype=np.float64).reshape(-1)[picks]
        err = float(np.max(np.abs(analytic - numeric)))
        size = max(float(np.max(np.abs(analytic))), float(np.max(np.abs(numeric))))
        passed = err <= 1e-6 * size + 1e-8 * scale
        ok = ok and passed
        rel = err / max(size, 1e-12)
        verdict = "ok" if passed else "FAIL"
        print(f"{name:>12}  max abs error {err:.2e}  rel {rel:.2e}  {verdict}")
    # Forward mode and second order, when the module has them (ENTRY_POINTS).
    direction = {
        n: rng.standard_normal(np.shape(arrays[n])) for n in WRT if n in arrays
    }
    if "jvp" in ENTRY_POINTS and len(direction) == len(WRT):
        d_loss = float(np.sum(jvp(**arrays, tangents=direction)[1]))
        dot = sum(float(np.sum(grads[name] * direction[name])) for name in WRT)
        err = abs(d_loss - dot)
        passed = err <= 1e-10 * max(1.0, abs(dot))
        ok = ok and passed
        verdict = "ok" if passed else "FAIL"
        print(f"{'jvp':>12}  d_loss vs <grads, t>: abs error {err:.2e}  {verdict}")
    every = len(direction) == len(WRT)  # no computed value in WRT
    if every and ("hvp" in ENTRY_POINTS or "hessian" in ENTRY_POINTS):
        # H @ direction, by differences of the gradient along the direction
        h = step * 0.1
        plus = {n: arrays[n] + h * direction[n] for n in WRT}
        minus = {n: arrays[n] - h * direction[n] for n in WRT}
        up = value_and_grad(**{**arrays, **plus})[1]
        down = value_and_grad(**{**arrays, **minus})[1]
        gscale = max([1.0] + [float(np.max(np.abs(grads[n]))) for n in WRT])
        products = {}
        if "hvp" in ENTRY_POINTS:
            products["hvp"] = hvp(**arrays, vectors=direction)[2]
        if "hessian" in ENTRY_POINTS:
            hess = hessian(**arrays)
            products["hessian"] = {
                a: sum(
                    np.tensordot(hess[a][b], direction[b], np.ndim(direction[b]))
                    for b in WRT
                )
                for a in WRT
            }
            for a in WRT:  # symmetric: d2 loss / da db = (d2 loss / db da) transposed
                for b in WRT:
                    size_a, size_b = np.size(arrays[a]), np.size(arrays[b])
                    ab = np.reshape(hess[a][b], (size_a, size_b))
                    ba = np.reshape(hess[b][a], (size_b, size_a))
                    err = float(np.max(np.abs(ab - ba.T)))
                    passed = err <= 1e-10 * gscale
                    ok = ok and passed
                    if not passed:
                        print(f"{'hessian':>12}  [{a}][{b}] not symmetric: {err:.2e}")
        for what, product in products.items():
            for name in WRT:
                numeric = (np.asarray(up[name]) - down[name]) / (2.0 * h)
                analytic = np.asarray(product[name], dtype=np.float64)
                err = float(np.max(np.abs(analytic - numeric)))
                passed = err <= 1e-5 * max(float(np.max(np.abs(numeric))), gscale)
                ok = ok and passed
                verdict = "ok" if passed else "FAIL"
                print(f"{what + ' ' + name:>12}  max abs error {err:.2e}  {verdict}")
    if every and ("vjp" in ENTRY_POINTS or "jacobian" in ENTRY_POINTS):
        # the outputs' change along the direction, by central differences
        d = step
        ahead = {n: arrays[n] + d * direction[n] for n in WRT}
        behind = {n: arrays[n] - d * direction[n] for n in WRT}
        out_up = forward(**{**arrays, **ahead})[1]
        out_down = forward(**{**arrays, **behind})[1]
        moved = {o: (np.asarray(out_up[o]) - out_down[o]) / (2.0 * d) for o in OUTPUTS}
        oscale = max([1.0] + [float(np.max(np.abs(moved[o]))) for o in OUTPUTS])
        if "vjp" in ENTRY_POINTS:  # <c, J d> two ways: vjp(c) . d and c . (differences)
            cot = {o: rng.standard_normal(np.shape(moved[o])) for o in OUTPUTS}
            pulled = vjp(**arrays, cotangents=cot)[1]
            exact = sum(float(np.sum(pulled[n] * direction[n])) for n in WRT)
            numeric = sum(float(np.sum(cot[o] * moved[o])) for o in OUTPUTS)
            err = abs(exact - numeric)
            passed = err <= 1e-5 * max(oscale, abs(numeric))
            ok = ok and passed
            verdict = "ok" if passed else "FAIL"
            print(f"{'vjp':>12}  <vjp(c), d> vs <c, J d>: error {err:.2e}  {verdict}")
        if "jacobian" in ENTRY_POINTS:
            jac = jacobian(**arrays)
            for o in OUTPUTS:
                exact = sum(
                    np.tensordot(jac[o][n], direction[n], np.ndim(direction[n]))
                    for n in WRT
                )
                err = float(np.max(np.abs(exact - moved[o])))
                passed = err <= 1e-5 * oscale
                ok = ok and passed
                verdict = "ok" if passed else "FAIL"
                print(f"{'jacobian ' + o:>12}  J @ d max error {err:.2e}  {verdict}")
    print("gradients match finite differences" if ok else "GRADIENT MISMATCH")
    return ok


if __name__ == "__main__":
    raise SystemExit(0 if _self_check() else 1)'''
# Finite differences of a float32 computation need a larger step and looser
# tolerances: rounding error grows as eps / step (eps = 1.2e-7 in float32).
_F32_CHECK = {
    "step=1e-6": "step=1e-3",
    # (float32 differences are noisy: this catches wrong rules, which are off by
    # O(1); `bpc check --dtype float32` compares with float64 at 1e-4.)
    "within 1e-6 relative (+1e-8 absolute)": "within 5e-2 relative (+1e-3 absolute)",
    "1e-6 * size + 1e-8 * scale": "5e-2 * size + 1e-3 * scale",
    # (float32: jvp against the float32 gradient; hvp by differences of a
    # float32 gradient at a float32 step)
    "err <= 1e-10 * max(1.0, abs(dot))": "err <= 1e-4 * max(1.0, abs(dot))",
    "        h = step * 0.1\n": "        h = step\n",
    "err <= 1e-5 * max(float(np.max(np.abs(numeric))), gscale)": "err <= 5e-2 * max(float(np.max(np.abs(numeric))), gscale)",
    "passed = err <= 1e-10 * gscale": "passed = err <= 1e-4 * gscale",
    "        d = step\n": "        d = step * 10.0\n",
    "passed = err <= 1e-5 * max(oscale, abs(numeric))": "passed = err <= 5e-2 * max(oscale, abs(numeric))",
    "passed = err <= 1e-5 * oscale": "passed = err <= 5e-2 * oscale",
    # At that step, relu-like kinks fall between x - h and x + h: such an
    # element (a second difference as large as the first) is not checked.
    "            numeric[k] = (np.sum(up) - np.sum(down)) / (2.0 * h)\n": (
        "            numeric[k] = (np.sum(up) - np.sum(down)) / (2.0 * h)\n"
        "            bend = abs(np.sum(up) + np.sum(down) - 2.0 * np.sum(loss))\n"
        "            if bend > 0.01 * abs(np.sum(up) - np.sum(down)) + 1e-6 * scale:\n"
        "                numeric[k] = analytic_all[i]  # a kink: not checked\n"
    ),
    "        numeric = np.empty(picks.size)\n": (
        "        numeric = np.empty(picks.size)\n"
        "        analytic_all = np.asarray(grads[name], dtype=np.float64).reshape(-1)\n"
    ),
}


def self_check_source(dtype: str = "f64") -> str:
    """The ``_self_check`` appendix for modules of ``dtype``."""
    text = SELF_CHECK
    if dtype == "f32":
        for old, new in _F32_CHECK.items():
            assert text.count(old) == 1, old
            text = text.replace(old, new)
    return text


def templates(dtype: str = "f64", target=None) -> dict[str, str]:
    """The fixed blocks of a module (for the output whitelist)."""
    from .workspace import workspace_templates

    check, main = self_check_source(dtype).split("\n\n\nif __name__")
    labels = getattr(target, "labels_check", None) or LABELS_CHECK
    return {"_self_check": check, "_bpc_labels": labels, "__main__": "if __name__" + main, **workspace_templates(dtype)}


TEMPLATES = templates("f64")


def _init_function(g: Graph, m: ModuleInfo) -> str:
    uses_rng = False
    items = []
    texts: list[str] = []
    for p in g.params:
        shape = pyval(tuple(g.shape(p)))
        dt = g.dtype(p)
        kw = ", dtype=np.float32" if dt == "f32" else ""
        if p in m.values:
            v = m.values[p]
            if v.size > TEXT_ARRAY_ELEMENTS and dt != "i64" and not np.all(v == v.flat[0]):
                texts.append(_text_array(v, dt))  # laid out below, not by black (too slow)
                items.append(f"{json.dumps(p)}: _bpc_text_{len(texts) - 1}")
                continue
            items.append(f"{json.dumps(p)}: {_array_literal(v, dt)}")
            continue
        init = m.inits[p]
        kind = init.kind
        key = json.dumps(p)
        if kind == "zeros":
            items.append(f"{key}: np.zeros({shape}{kw})")
        elif kind == "ones":
            items.append(f"{key}: np.ones({shape}{kw})")
        else:
            if init.seed is None:
                uses_rng = True
                rng = "rng"
            else:  # its own generator: fixed values
                rng = f"np.random.default_rng({int(init.seed)})"
            if kind == "normal":
                draw = f"{rng}.normal(0.0, {float(init.std)!r}, size={shape})"
            elif kind == "uniform":
                draw = f"{rng}.uniform({float(init.low)!r}, {float(init.high)!r}, size={shape})"
            elif kind == "glorot_uniform":
                s = g.shape(p)
                fan_in, fan_out = (s[-2], s[-1]) if len(s) >= 2 else (s[0] if s else 1, s[0] if s else 1)
                limit = float(np.sqrt(6.0 / (fan_in + fan_out)))
                draw = f"{rng}.uniform({-limit!r}, {limit!r}, size={shape})"
            else:
                raise AssertionError(kind)
            items.append(f"{key}: {_as_dtype(draw, dt)}")
    doc = [
        "Initial parameters: the spec's values, or its initializers drawn",
        "in declaration order from np.random.default_rng(seed) (an initializer",
        "with a seed of its own always draws the same values).",
    ]
    body = ["rng = np.random.default_rng(seed)"] if uses_rng else []
    if texts:  # black's layout of the dict around placeholders (a trailing comma: one item a line)
        laid = _black("def _bpc_f():\n    return {" + ", ".join(items) + ",}\n").splitlines()[1:]
        body.append("\n".join(ln[4:] for ln in laid))
    else:
        body.append(_explode("return {", items, "}", indent=4) or "return {" + ", ".join(items) + "}")
    source = _function("init_params", [f"seed={int(m.seed)}"], doc, body)
    for k, text in enumerate(texts):
        key = f": _bpc_text_{k},\n"
        assert source.count(key) == 1
        source = source.replace(key, ": " + text.replace("\n", "\n        ") + ",\n")
    return source


def _inputs_function(g: Graph, m: ModuleInfo) -> str:
    items = []
    uses_rng = False
    for i in g.inputs:
        key = json.dumps(i)
        if i in m.values:
            items.append(f"{key}: {_array_literal(m.values[i], g.dtype(i))}")
            continue
        uses_rng = True
        dims = [str(d) if isinstance(d, int) else f"dims[{json.dumps(d)}]" for d in g.shape(i)]
        shape = f"({dims[0]},)" if len(dims) == 1 else f"({', '.join(dims)})"
        if i in m.classes:
            draw = f"rng.integers(0, {int(m.classes[i])}, size={shape})"
        else:
            draw = _as_dtype(f"rng.standard_normal({shape})", g.dtype(i))
        items.append(f"{key}: {draw}")
    doc = [
        "Example inputs: the spec's values, or random draws from",
        "np.random.default_rng(seed) for inputs the spec gives no value.",
    ]
    body = []
    if m.dims:
        doc += ["", "dims: sizes of symbolic dims (default DIMS)."]
        body.append("dims = {**DIMS, **(dims or {})}")
        sig = "seed=0, dims=None"
    else:
        sig = "seed=0"
    if uses_rng:
        body.append("rng = np.random.default_rng(seed)")
    body.append(_explode("return {", items, "}", indent=4) or "return {" + ", ".join(items) + "}")
    return _function("example_inputs", sig.split(", "), doc, body)
