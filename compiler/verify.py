"""The last check before a generated module is written: its syntax tree against
a whitelist.

Codegen builds code from syntax trees and puts spec text into source only as
string literals (made by ``ast.unparse``) or as comment lines with every
non-printable character replaced. This module is the backstop that makes any
future slip there fail loudly instead of writing code that runs on import: the
finished source is parsed, and every statement and expression must be one the
contract (``docs/generated.md``) allows. Anything else is an internal error and
nothing is written. ``docs/security.md`` lists what this guarantees.
"""

from __future__ import annotations

import ast
import builtins
import textwrap

from .errors import OutputError

# Module-level names a generated module may assign, and functions it may define.
CONSTANTS = frozenset({"PARAMS", "INPUTS", "WRT", "OUTPUTS", "LOSS", "DIMS", "ENTRY_POINTS"})
FUNCTIONS = frozenset(
    {"init_params", "example_inputs", "forward", "value_and_grad", "jvp", "vjp", "hvp", "jacobian", "hessian"}
)
# Entry points a composite function (jacobian, hessian) may call, and the
# module's fixed helper (a template) that checks class labels.
CALLABLE = frozenset({"jvp", "vjp", "hvp", "_bpc_labels", "_bpc_workspace", "_bpc_out"})
# -O3: the one mutable module-level value, the workspace of each entry point
# (an empty dict; ``compiler/workspace.py``).
WORKSPACE_DICT = "_BPC_WORKSPACE"
_BUILTINS = frozenset(dir(builtins))

_EXPR_NODES = (
    ast.Name,
    ast.Constant,
    ast.BinOp,
    ast.UnaryOp,
    ast.Compare,
    ast.BoolOp,
    ast.Call,
    ast.Attribute,
    ast.Subscript,
    ast.Slice,
    ast.Tuple,
    ast.List,
    ast.Dict,
    ast.keyword,
    # operators and contexts
    ast.operator,
    ast.unaryop,
    ast.cmpop,
    ast.boolop,
    ast.expr_context,
)


class _Reject(Exception):
    pass


def verify_module(source: str, templates: dict[str, str] | None = None, target=None) -> None:
    """Raise OutputError unless ``source`` is a module the whitelist allows.

    ``templates`` maps a top-level function name (or ``"__main__"`` for the
    ``if __name__ == "__main__":`` block) to its fixed source text; such
    blocks must equal the template's text exactly (they hold no spec text).
    ``target`` (default NumPy) says which imports, namespaces and methods the
    module may use.
    """
    from .targets import NUMPY

    target = target or NUMPY
    fixed = {name: text.strip() for name, text in (templates or {}).items()}
    try:
        tree = ast.parse(source)
    except SyntaxError as e:
        raise OutputError(f"generated module does not parse (line {e.lineno}): {e.msg}") from None
    try:
        _module(tree, source, fixed, target)
    except _Reject as e:
        raise OutputError(f"generated module fails the output whitelist: {e}") from None


def verify_statements(text: str, target=None) -> None:
    """Raise OutputError unless ``text`` (indented function-body lines) holds only
    statements a generated function body may have."""
    try:
        tree = ast.parse(textwrap.dedent(text))
    except SyntaxError as e:
        raise OutputError(f"generated statement does not parse: {e.msg}") from None
    from .targets import NUMPY

    try:
        for st in tree.body:
            _statement(st, target or NUMPY)
    except _Reject as e:
        raise OutputError(f"generated module fails the output whitelist: {e}") from None


def _where(node: ast.AST) -> str:
    return f"line {getattr(node, 'lineno', '?')}"


def _import_text(imports) -> str:
    return "; ".join(f"import {m}" + (f" as {a}" if a else "") for m, a in imports)


def _segment(lines: list[str], node: ast.stmt) -> str:
    """The source of a top-level statement (``ast.get_source_segment`` splits
    the whole source again on every call: seconds for a module of large literals)."""
    first, last = node.lineno - 1, node.end_lineno - 1
    if first == last:
        return lines[first].encode()[node.col_offset : node.end_col_offset].decode()
    head = lines[first].encode()[node.col_offset :].decode()
    tail = lines[last].encode()[: node.end_col_offset].decode()
    return "".join([head] + lines[first + 1 : last] + [tail])


def _module(tree: ast.Module, source: str, fixed: dict[str, str], target) -> None:
    lines = source.splitlines(keepends=True)
    body = tree.body
    if not body or not _is_docstring(body[0]):
        raise _Reject("the module must start with its docstring")
    imports = list(target.imports)
    seen = 0
    for node in body[1:]:
        if isinstance(node, ast.Import):
            if seen >= len(imports) or [(a.name, a.asname) for a in node.names] != [imports[seen]]:
                raise _Reject(f"{_where(node)}: only {_import_text(imports)!r} is allowed")
            seen += 1
        elif isinstance(node, ast.Assign):
            names = [t.id for t in node.targets if isinstance(t, ast.Name)]
            if names == [WORKSPACE_DICT] and len(node.targets) == 1:
                if not (isinstance(node.value, ast.Dict) and not node.value.keys):
                    raise _Reject(f"{_where(node)}: {WORKSPACE_DICT} must be an empty dict")
                continue
            if len(names) != 1 or len(node.targets) != 1 or names[0] not in CONSTANTS:
                raise _Reject(f"{_where(node)}: module-level assignment to {ast.unparse(node.targets[0])}")
            try:
                ast.literal_eval(node.value)
            except ValueError:
                raise _Reject(f"{_where(node)}: {names[0]} must be a literal") from None
        elif isinstance(node, ast.FunctionDef) and node.name in fixed:
            if _segment(lines, node) != fixed[node.name]:
                raise _Reject(f"{_where(node)}: {node.name} differs from its template")
        elif isinstance(node, ast.If) and "__main__" in fixed:
            if _segment(lines, node) != fixed["__main__"]:
                raise _Reject(f"{_where(node)}: the __main__ block differs from its template")
        elif isinstance(node, ast.FunctionDef) and node.name in FUNCTIONS:
            _function(node, target)
        else:
            raise _Reject(f"{_where(node)}: {type(node).__name__} is not allowed at module level")
    if seen != len(imports):
        raise _Reject(f"missing {_import_text(imports[seen:])!r}")


def _is_docstring(node: ast.stmt) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def _function(fn: ast.FunctionDef, target) -> None:
    a = fn.args
    if fn.decorator_list or fn.returns or a.vararg or a.kwarg or a.posonlyargs or a.kwonlyargs:
        raise _Reject(f"{_where(fn)}: {fn.name} has a signature the contract does not allow")
    for arg in a.args:
        _name(arg.arg, arg)
        if arg.annotation is not None:
            raise _Reject(f"{_where(arg)}: annotations are not allowed")
    for d in a.defaults:
        try:
            ast.literal_eval(d)
        except ValueError:
            raise _Reject(f"{_where(d)}: defaults must be literals") from None
    body = fn.body[1:] if fn.body and _is_docstring(fn.body[0]) else fn.body
    for st in body:
        _statement(st, target)


def _statement(st: ast.stmt, target) -> None:
    if isinstance(st, ast.Assign):
        if len(st.targets) != 1 or not isinstance(st.targets[0], ast.Name):
            raise _Reject(f"{_where(st)}: only 'name = expression' assignments are allowed")
        _name(st.targets[0].id, st)
        _expr(st.value, target)
    elif isinstance(st, ast.AugAssign):
        if not isinstance(st.target, ast.Name):
            raise _Reject(f"{_where(st)}: only 'name += expression' is allowed")
        _name(st.target.id, st)
        _expr(st.value, target)
    elif isinstance(st, ast.Delete):
        # black wraps a long ``del a, b`` as ``del (a, b)``: a tuple of names
        targets = [e for t in st.targets for e in (t.elts if isinstance(t, ast.Tuple) else [t])]
        for t in targets:
            if not isinstance(t, ast.Name):
                raise _Reject(f"{_where(st)}: only names can be deleted")
            _name(t.id, st)
    elif isinstance(st, ast.Expr) and _writes_out(st.value):
        _expr(st.value, target)  # -O3: np.copyto(out["w"], g), np.matmul(a, b, out=out["w"])
    elif isinstance(st, ast.Return):
        if st.value is not None:
            _expr(st.value, target)
    else:
        raise _Reject(f"{_where(st)}: {type(st).__name__} statements are not allowed in functions")


def _writes_out(node: ast.AST) -> bool:
    """A call whose only effect is writing an array (-O3): ``np.copyto(...)``,
    or a function or method given ``out=``."""
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
        return False
    f = node.func
    copyto = f.attr == "copyto" and isinstance(f.value, ast.Name) and f.value.id == "np"
    return copyto or any(k.arg == "out" for k in node.keywords)


def _name(name: str, node: ast.AST) -> None:
    if name.startswith("__") or name in _BUILTINS:
        raise _Reject(f"{_where(node)}: the name {name!r} is not allowed")


def _expr(node: ast.AST, target) -> None:
    for sub in ast.walk(node):
        if not isinstance(sub, _EXPR_NODES):
            raise _Reject(f"{_where(sub)}: {type(sub).__name__} is not allowed in an expression")
        if isinstance(sub, ast.Name):
            _name(sub.id, sub)
        elif isinstance(sub, ast.Attribute):
            if isinstance(sub.value, ast.Name) and sub.value.id in target.names:
                if sub.attr not in target.names[sub.value.id]:
                    raise _Reject(f"{_where(sub)}: {sub.value.id}.{sub.attr} is not on the list of allowed names")
            elif sub.attr not in target.methods:
                raise _Reject(f"{_where(sub)}: .{sub.attr} is not on the list of allowed methods")
        elif isinstance(sub, ast.Call):
            if isinstance(sub.func, ast.Name) and sub.func.id in CALLABLE:
                pass  # the module's own entry points
            elif not isinstance(sub.func, ast.Attribute):
                raise _Reject(f"{_where(sub)}: only namespace functions and array methods may be called")
            if any(k.arg is None for k in sub.keywords):
                raise _Reject(f"{_where(sub)}: ** arguments are not allowed")
        elif isinstance(sub, ast.Constant) and not isinstance(sub.value, (int, float, str, bool, type(None))):
            raise _Reject(f"{_where(sub)}: constant {sub.value!r} is not allowed")
