"""Expression strings (``"X1 = sigmoid(W1 @ X0 + beta1)"``) to IR nodes.

Parsed with Python's :mod:`ast` and walked against a whitelist; nothing from a
spec is ever passed to ``eval`` or ``exec``. Accepted syntax:

* one assignment ``name = expression``;
* names of declared values, and int/float literals;
* binary ``+ - * / ** @``, unary ``-`` and ``+``;
* ``x.T`` (transpose), and no other attribute access;
* single comparisons ``a > b`` (``>= < <= ==``), for ``where``;
* static indexing ``x[0]``, ``x[1:3, :]`` (integer literals, step 1);
* calls of registered ops by name, with keyword arguments for attributes whose
  values are literals (numbers, True/False/None, tuples or lists of ints).

Anything else is an :class:`ExprError` naming the column where it starts.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from .errors import ExprError
from .ops import get_op
from .ops.registry import all_ops

MAX_EXPR_LENGTH = 10_000
MAX_EXPR_DEPTH = 100

_CMPOPS = {ast.Gt: "gt", ast.GtE: "ge", ast.Lt: "lt", ast.LtE: "le", ast.Eq: "eq"}

_BINOPS = {
    ast.Add: "add",
    ast.Sub: "sub",
    ast.Mult: "mul",
    ast.Div: "div",
    ast.MatMult: "matmul",
}


@dataclass
class Parsed:
    target: str
    tree: ast.expr
    names: list[tuple[str, int]]  # referenced names with their columns (1-based)


def _err(msg: str, where: str, node: ast.AST | None = None) -> ExprError:
    col = getattr(node, "col_offset", None)
    loc = f"{where}, column {col + 1}" if col is not None else where
    return ExprError(msg, loc)


def parse(text: str, where: str) -> Parsed:
    """Parse ``"name = expr"`` and check it against the whitelist."""
    if len(text) > MAX_EXPR_LENGTH:
        raise ExprError(f"expression longer than {MAX_EXPR_LENGTH} characters", where)
    if "\n" in text or "\r" in text:
        raise ExprError("an expression must be on one line", where)
    try:
        module = ast.parse(text, mode="exec")
    except SyntaxError as e:
        loc = f"{where}, column {e.offset}" if e.offset else where
        raise ExprError(f"invalid expression: {e.msg}", loc) from None
    except (RecursionError, MemoryError, ValueError):
        raise ExprError("expression nested too deeply", where) from None
    if len(module.body) != 1 or not isinstance(module.body[0], ast.Assign):
        raise ExprError("expected one assignment 'name = expression'", where)
    stmt = module.body[0]
    if len(stmt.targets) != 1 or not isinstance(stmt.targets[0], ast.Name):
        raise _err("the left side must be a single name", where, stmt.targets[0])
    names: list[tuple[str, int]] = []
    _check(stmt.value, where, names, 0)
    return Parsed(stmt.targets[0].id, stmt.value, names)


def _check(node: ast.AST, where: str, names: list, depth: int) -> None:
    if depth > MAX_EXPR_DEPTH:
        raise _err(f"expression nested deeper than {MAX_EXPR_DEPTH}", where, node)
    d = depth + 1
    if isinstance(node, ast.Name):
        if node.id.startswith("__"):
            raise _err(f"dunder name '{node.id}' is not allowed", where, node)
        names.append((node.id, node.col_offset + 1))
    elif isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise _err(f"only numbers are allowed as literals, got {node.value!r:.30}", where, node)
        if abs(node.value) > 1e308 or node.value != node.value:  # 1e400 is inf; 10**400 no float
            raise _err("number out of range (literals are finite 64-bit floats)", where, node)
    elif isinstance(node, ast.BinOp):
        if type(node.op) not in _BINOPS and not isinstance(node.op, ast.Pow):
            raise _err(f"operator {type(node.op).__name__} is not allowed", where, node)
        _check(node.left, where, names, d)
        _check(node.right, where, names, d)
    elif isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, (ast.USub, ast.UAdd)):
            raise _err(f"operator {type(node.op).__name__} is not allowed", where, node)
        _check(node.operand, where, names, d)
    elif isinstance(node, ast.Compare):
        if len(node.ops) != 1 or type(node.ops[0]) not in _CMPOPS:
            raise _err("only single comparisons < <= > >= == are allowed", where, node)
        _check(node.left, where, names, d)
        _check(node.comparators[0], where, names, d)
    elif isinstance(node, ast.Subscript):
        _check(node.value, where, names, d)
        _static_index(node.slice, where)
    elif isinstance(node, ast.Attribute):
        if node.attr != "T":
            raise _err(f"attribute '.{node.attr}' is not allowed (only .T)", where, node)
        _check(node.value, where, names, d)
    elif isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name):
            raise _err("only registered ops can be called, by plain name", where, node)
        fname = node.func.id
        if fname.startswith("__"):
            raise _err(f"dunder name '{fname}' is not allowed", where, node.func)
        op = all_ops().get(fname)
        if op is None:
            try:
                get_op(fname)  # raises with suggestions
            except ExprError:
                raise
            except Exception as e:
                raise _err(getattr(e, "message", str(e)), where, node.func) from None
        if not op.public:
            raise _err(f"'{fname}' is not an op usable in specs", where, node.func)
        for a in node.args:
            if isinstance(a, ast.Starred):
                raise _err("*arguments are not allowed", where, a)
            _check(a, where, names, d)
        for kw in node.keywords:
            if kw.arg is None:
                raise _err("**arguments are not allowed", where, kw.value)
            _literal(kw.value, where)
    else:
        raise _err(f"{type(node).__name__} is not allowed in an expression", where, node)


def _static_index(node: ast.AST, where: str) -> tuple:
    """x[1, 0:2, :] -> (1, (0, 2), (None, None)); ints and step-1 slices only."""
    items = node.elts if isinstance(node, ast.Tuple) else [node]
    out = []
    for it in items:
        if isinstance(it, ast.Slice):
            if it.step is not None:
                raise _err("slices with a step are not supported", where, it)
            bounds = []
            for b in (it.lower, it.upper):
                v = None if b is None else _int_const(b)
                if b is not None and v is None:
                    raise _err("slice bounds must be integer literals", where, b)
                bounds.append(v)
            out.append(tuple(bounds))
        else:
            v = _int_const(it)
            if v is None:
                raise _err("indices must be integer literals or a:b slices", where, it)
            out.append(v)
    return tuple(out)


def _int_const(node: ast.AST) -> int | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        v = _int_const(node.operand)
        return None if v is None else -v
    return None


def _literal(node: ast.AST, where: str):
    """An attribute value: number, string, True/False/None, or a tuple of ints."""
    if isinstance(node, ast.Constant) and (
        node.value is None or isinstance(node.value, (bool, int, float, str))
    ):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        v = _literal(node.operand, where)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return -v
    if isinstance(node, (ast.Tuple, ast.List)):
        vals = [_literal(e, where) for e in node.elts]
        if all(isinstance(v, int) and not isinstance(v, bool) for v in vals):
            return tuple(vals)
    raise _err("attribute values must be literals (numbers, strings, True/False/None, tuples of ints)", where, node)


def _const_value(node: ast.AST) -> float | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return float(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        v = _const_value(node.operand)
        return None if v is None else -v
    return None


def lower(parsed: Parsed, graph, where: str) -> str:
    """Add the nodes of a parsed expression to ``graph``; returns the target's node."""
    target = parsed.target
    src = where.split(",")[0]

    def build(node: ast.expr, name: str | None) -> str:
        def add(op, args, attrs=None):
            kw = {"name": name, "named": True} if name else {"hint": f"{target}_{op}"}
            try:
                return graph.add(op, args, attrs or {}, **kw)
            except ExprError:
                raise
            except Exception as e:  # BpcError: add the column
                if hasattr(e, "message"):
                    raise type(e)(e.message, f"{src}, column {node.col_offset + 1}") from None
                raise

        if isinstance(node, ast.Name):
            if name:  # an alias: y = x
                return add("identity", [node.id])
            return node.id
        if isinstance(node, ast.Constant):
            return add("const", [], {"value": float(node.value), "shape": ()})
        if isinstance(node, ast.UnaryOp):
            c = _const_value(node)
            if c is not None:
                return add("const", [], {"value": c, "shape": ()})
            x = build(node.operand, None)
            if isinstance(node.op, ast.UAdd):
                return add("identity", [x]) if name else x
            return add("neg", [x])
        if isinstance(node, ast.BinOp):
            if isinstance(node.op, ast.Pow):
                p = _const_value(node.right)
                if p is None:
                    raise _err("the exponent must be a number", src, node.right)
                x = build(node.left, None)
                if p == 2.0:
                    return add("square", [x])
                return add("pow_const", [x], {"exponent": p})
            a = build(node.left, None)
            b = build(node.right, None)
            return add(_BINOPS[type(node.op)], [a, b])
        if isinstance(node, ast.Compare):
            a = build(node.left, None)
            b = build(node.comparators[0], None)
            return add(_CMPOPS[type(node.ops[0])], [a, b])
        if isinstance(node, ast.Subscript):
            return add("slice", [build(node.value, None)], {"index": _static_index(node.slice, src)})
        if isinstance(node, ast.Attribute):  # .T
            return add("transpose", [build(node.value, None)], {"axes": None})
        if isinstance(node, ast.Call):
            args = [build(a, None) for a in node.args]
            attrs = {kw.arg: _literal(kw.value, src) for kw in node.keywords}
            return add(node.func.id, args, attrs)
        raise AssertionError(type(node))

    return build(parsed.tree, target)
