"""Expression strings (``"X1 = sigmoid(W1 @ X0 + beta1)"``) to IR nodes.

Parsed with Python's :mod:`ast` and walked against a whitelist; nothing from a
spec is ever passed to ``eval`` or ``exec``. Accepted syntax:

* one assignment ``name = expression``;
* names of declared values, and int/float literals;
* binary ``+ - * / ** @``, unary ``-`` and ``+`` (``x ** y`` with a tensor
  exponent is ``pow``);
* ``x.T`` (transpose);
* NumPy spellings, rewritten to the ops they are before the whitelist applies
  (:func:`_normalize`): ``np.``/``numpy.`` functions (``np.dot``,
  ``np.maximum``, ``np.clip``, ``np.concatenate([a, b], 1)``, ... see
  ``NP_FUNCS``), array methods (``.dot``, ``.sum(axis=0)``, ``.mean()``,
  ``.clip(0.0)``, ``.reshape(2, 3)``, ``.transpose()``), positional attributes
  (``leaky_relu(x, 0.1)``, ``sum(x, 0)``) and lists of operands
  (``concat([x, y], axis=1)``);
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
    value = _normalize(stmt.value, where, 0)
    _check(value, where, names, 0)
    return Parsed(stmt.targets[0].id, value, names)


# ------------------------------------------------------------------ NumPy spellings

# np.<name> (and numpy.<name>) -> the op it is
NP_FUNCS = {
    **{n: n for n in ("matmul", "maximum", "minimum", "exp", "log", "log1p", "sqrt", "square", "sin", "cos",
                      "tanh", "abs", "where", "sum", "mean", "max", "min", "transpose", "reshape", "stack",
                      "broadcast_to")},
    "dot": "matmul", "absolute": "abs", "amax": "max", "amin": "min", "concatenate": "concat",
    "negative": "neg", "add": "add", "subtract": "sub", "multiply": "mul", "divide": "div",
    "true_divide": "div", "power": "pow", "clip": "clip",
}
# x.<name>(...) -> the op it is
METHOD_OPS = {"dot": "matmul", "sum": "sum", "mean": "mean", "max": "max", "min": "min", "reshape": "reshape",
              "transpose": "transpose", "clip": "clip"}
LIST_OPS = {"concat", "stack"}  # take their operands as one list, as NumPy does


def _call(op: str, args: list, keywords: list, like: ast.AST) -> ast.Call:
    return ast.copy_location(ast.Call(func=ast.copy_location(ast.Name(id=op, ctx=ast.Load()), like), args=args,
                                      keywords=keywords), like)


def _normalize(node: ast.AST, where: str, depth: int) -> ast.AST:
    """NumPy spellings -> bpc's canonical calls (``np.dot(a, b)`` ->
    ``matmul(a, b)``, ``x.sum(0)`` -> ``sum(x, axis=0)``, ``x ** y`` ->
    ``pow(x, y)``, positional attributes -> keywords). Only rewrites the
    syntax tree; :func:`_check` then applies the whitelist to the result."""
    if depth > MAX_EXPR_DEPTH:
        raise _err(f"expression nested deeper than {MAX_EXPR_DEPTH}", where, node)
    d = depth + 1
    if isinstance(node, ast.BinOp):
        node.left, node.right = _normalize(node.left, where, d), _normalize(node.right, where, d)
        if isinstance(node.op, ast.Pow) and _const_value(node.right) is None:
            return _call("pow", [node.left, node.right], [], node)  # a tensor exponent
        return node
    if isinstance(node, ast.UnaryOp):
        node.operand = _normalize(node.operand, where, d)
        return node
    if isinstance(node, ast.Compare):
        node.left = _normalize(node.left, where, d)
        node.comparators = [_normalize(c, where, d) for c in node.comparators]
        return node
    if isinstance(node, ast.Subscript):
        node.value = _normalize(node.value, where, d)
        return node
    if isinstance(node, ast.Attribute):
        if isinstance(node.value, ast.Name) and node.value.id in ("np", "numpy"):
            raise _err(f"np.{node.attr} is not a value bpc knows (use np.<function>(...) calls)", where, node)
        node.value = _normalize(node.value, where, d)
        return node
    if not isinstance(node, ast.Call):
        if isinstance(node, (ast.List, ast.Tuple)):
            raise _err("a list or tuple of values is only allowed as the first argument of concat or stack "
                       "(or as the value of an attribute)", where, node)
        return node
    func = node.func
    is_dot = isinstance(func, ast.Attribute) and func.attr == "dot"
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id in ("np", "numpy"):
        op = NP_FUNCS.get(func.attr)
        if op is None:
            known = ", ".join(f"np.{k}" for k in sorted(NP_FUNCS))
            raise _err(f"np.{func.attr} is not supported (NumPy functions bpc knows: {known})", where, func)
        operands, args = [], list(node.args)
    elif isinstance(func, ast.Attribute):  # a method of a value
        op = METHOD_OPS.get(func.attr)
        if op is None:
            known = ", ".join(f".{k}()" for k in sorted(METHOD_OPS))
            raise _err(f"method .{func.attr}() is not supported (methods: .T, {known})", where, func)
        operands, args = [func.value], list(node.args)
        if op in ("reshape", "transpose") and len(args) > 1:  # x.reshape(2, 3), x.transpose(1, 0)
            args = [ast.copy_location(ast.Tuple(elts=args, ctx=ast.Load()), args[0])]
    elif isinstance(func, ast.Name):
        op, operands, args = func.id, [], list(node.args)
    else:
        raise _err("only registered ops can be called, by plain name", where, node)
    keywords = list(node.keywords)
    listed = op in LIST_OPS and bool(args) and isinstance(args[0], (ast.List, ast.Tuple))
    if op in LIST_OPS and not listed and isinstance(func, ast.Attribute):
        # np.concatenate(x) would join the rows of x: only the list form means one thing
        raise _err(f"np.{func.attr} takes a list of arrays: np.{func.attr}([a, b], axis=0)", where, node)
    if listed:
        operands, args = list(args[0].elts), args[1:]
    if op == "clip":  # clip(x, lo, hi) = minimum(maximum(x, lo), hi)
        allx = operands + args
        if len(allx) < 2 or len(allx) > 3 or keywords:
            raise _err("clip takes x, a lower bound and an optional upper bound (numbers or None)", where, node)
        x = _normalize(allx[0], where, d)
        for bound, name in zip(allx[1:], ("maximum", "minimum")):
            if isinstance(bound, ast.Constant) and bound.value is None:
                continue
            if _const_value(bound) is None:
                raise _err("clip bounds must be numbers or None", where, bound)
            x = _call(name, [x, bound], [], node)
        return x
    if op in all_ops() and all_ops()[op].public:
        opdef = all_ops()[op]
        if opdef.arity is not None:
            take = max(0, opdef.arity - len(operands))
            operands, extra = operands + args[:take], args[take:]
        elif listed:  # concat([x, y], 1)
            extra = args
        else:  # concat(x, y, axis=1)
            operands, extra = operands + args, []
        given = {k.arg for k in keywords}
        free = [a.name for a in opdef.attrs if a.name not in given]
        if len(extra) > len(free):
            takes = f"{opdef.arity} operand(s)" if opdef.arity is not None else "a list of operands"
            attrs = ", ".join(a.name for a in opdef.attrs) or "none"
            raise _err(f"{op} takes {takes} and the attributes {attrs}; got {len(extra)} more positional argument(s)",
                       where, node)
        for name, value in zip(free, extra):
            keywords.append(ast.copy_location(ast.keyword(arg=name, value=value), value))
        node = _call(op, [_normalize(o, where, d) for o in operands], keywords, node)
        if is_dot:
            node._bpc_dot = True  # checked against operand ranks when lowered
        return node
    node.args = [_normalize(a, where, d) for a in node.args]
    return node


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
            if getattr(node, "_bpc_dot", False) and any(len(graph.shape(a)) > 2 for a in args):
                # np.dot of N-D arrays contracts a's last axis with b's second to
                # last over all pairs of batches: not matmul
                raise _err("np.dot of arrays with more than 2 dimensions is not matmul: write matmul(a, b) "
                           "or a @ b for batched products", src, node)
            attrs = {kw.arg: _literal(kw.value, src) for kw in node.keywords}
            return add(node.func.id, args, attrs)
        raise AssertionError(type(node))

    return build(parsed.tree, target)
