"""The Python front end: a NumPy function (or a notebook script) to a spec.

``bpc compile net.py --fn forward`` reads ``net.py`` **without executing it**:
the file is parsed with :mod:`ast` and walked by a small interpreter that knows
a whitelisted subset of Python and NumPy. It runs in two modes:

* **constant evaluation** of module-level code: numbers, lists, dicts, tuples,
  ``np.array(...)``, ``np.ones``/``np.zeros``/``np.full``, ``.reshape``,
  arithmetic, ``for`` over ``range``, and ``np.random.seed(s)`` followed by
  ``np.random.normal/randn/rand/random/uniform`` draws, reproduced exactly in
  the file's order (NumPy's legacy ``RandomState``). A statement outside the
  subset (``print``, ``import timeit``, a call of the network at module level)
  is skipped; the names it assigns are *unknown*, an error only if the
  compiled code reads them.
* **tracing** of the compiled function, and of the helper functions it calls
  (inlined): an operation on an array becomes a spec expression node
  (``all_f_2 = all_biases_2 + np.matmul(all_weights_2, all_h_2)``) whose
  shape is checked as it is made; Python values (loop counters, sizes, lists
  and dicts of arrays) are evaluated. ``for`` loops over ``range`` are
  unrolled; ``if`` needs a condition known at compile time.

Arguments of the compiled function become params (what is differentiated by
default); their shapes and values come from ``--shape``, else a module-level
value of the same name, else a default value. A list or dict argument becomes
one param per element (``all_weights_0``, ..., or the dict's keys). Arrays
defined at module level and read by the function become inputs with their
values. In **script mode** (``--loss NAME`` naming a module-level variable and
no ``--fn``) the module-level code itself is traced: its arrays are the params.

Every error is one line at ``file.py:line:col`` naming the construct.
"""

from __future__ import annotations

import ast
import builtins
import collections
import functools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import expr
from ..errors import BpcError, SpecError
from ..names import name_problem
from ..spec import read_text, spec_from_data
from . import Source

MAX_STEPS = 200_000  # statements and loop iterations, all together
MAX_RANGE = 100_000
MAX_LIST = 100_000
MAX_ARRAY = 1_000_000  # elements of one constant array
MAX_CALL_DEPTH = 64
MAX_NODES = 20_000
MAX_INT = 10**18
MAX_TREE_DEPTH = 40  # of one expression node (the spec parser allows 100)
MAX_WORK = 200_000_000  # element operations of constant evaluation, all together

NUMPY_MODULES = {"numpy", "autograd.numpy", "jax.numpy"}


class PyError(SpecError):
    """A construct of the Python source that bpc does not compile."""


# ------------------------------------------------------------------ values


class Unknown:
    """A module-level name whose statement bpc did not evaluate."""

    def __init__(self, why: str, where: str):
        self.why, self.where = why, where


class Module:
    """A module name: ``np``, ``np.random``, or a module bpc does not know."""

    def __init__(self, name: str):
        self.name = name


@dataclass
class Func:
    node: ast.FunctionDef
    defaults: dict[str, Any] = field(default_factory=dict)  # evaluated when `def` ran
    closure: dict | None = None  # the enclosing function's names (a nested def)


@dataclass
class Tensor:
    """A traced value: canonical expression ``tree`` (leaves are spec names),
    the scratch-graph node that gives its shape, and its shape."""

    tree: ast.expr
    node: str
    shape: tuple

    @property
    def name(self) -> str | None:
        return self.tree.id if isinstance(self.tree, ast.Name) else None


class Unseeded(np.ndarray):
    """An array drawn from ``np.random`` without ``np.random.seed``: bpc keeps
    its shape but not its values (they cannot be reproduced)."""


@dataclass
class Leaf:
    """An array bound to a module-level name: a param or an input once used."""

    name: str
    value: np.ndarray
    where: str
    seq: int = 0  # order of definition


class _Return(Exception):
    def __init__(self, value):
        self.value = value


# ------------------------------------------------------------------ the front end


def load(path: Path, options) -> Source:
    from ..pipeline import _display_path

    text = read_text(path, "Python source")
    shown = _display_path(path)
    fe = PythonFrontend(text, shown)
    try:
        return fe.compile(options)
    except RecursionError:
        raise PyError("nested too deeply (expressions or calls)", shown) from None
    except MemoryError:
        raise PyError("too large to evaluate", shown) from None


class PythonFrontend:
    def __init__(self, text: str, path: str):
        self.text, self.path = text, path
        self.lines = text.splitlines()
        try:
            self.tree = ast.parse(text, filename=path)
        except SyntaxError as e:
            raise PyError(f"invalid Python: {e.msg}", f"{path}:{e.lineno or 1}:{e.offset or 1}") from None
        except (RecursionError, MemoryError, ValueError) as e:
            raise PyError(f"cannot parse: {type(e).__name__}", path) from None
        self.steps = 0
        self.rng: np.random.RandomState | None = None
        self.env: dict[str, Any] = {}  # module-level names
        self.symbolic = False  # tracing (True) or constant evaluation (False)
        self.leaf_role = "input"
        # spec being built
        self.used: set[str] = set()
        self.decls: dict[str, dict] = {}  # name -> TensorDecl data
        self.param_order: list[str] = []
        self.input_order: list[str] = []
        self.nodes: list[str] = []
        self.sources: list[tuple[str, str]] = []
        self.leaf_tensor: dict[int, Tensor] = {}  # id(Leaf or array) -> its tensor
        from ..ir import Graph

        self.scratch = Graph("f64")
        self.tmp = 0
        self.depth = 0
        self.context: list[str] = []  # "layer=2" while unrolling
        self.weak: set[str] = set()  # values named by a helper's local variable
        self.renamed: dict[str, str] = {}
        self.leaf_seq = 0
        self.alive: list[Any] = []
        self.entry_depth = 1  # the compiled function's own body (0: script mode)
        self.order_key: dict[str, int] = {}  # declared leaf -> definition order
        self.arg_names: set[str] = set()
        self.desynced: str | None = None
        self.work = 0
        self.last_return: ast.stmt | None = None  # spec names of the compiled function's arguments

    # -------------------------------------------------------------- helpers

    def at(self, node: ast.AST) -> str:
        return f"{self.path}:{getattr(node, 'lineno', 1)}:{getattr(node, 'col_offset', 0) + 1}"

    def err(self, msg: str, node: ast.AST) -> PyError:
        return PyError(msg, self.at(node))

    def step(self, node: ast.AST) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise self.err(f"more than {MAX_STEPS:,} statements to evaluate (loops are unrolled)", node)

    def fresh(self, base: str) -> str:
        """A spec name from ``base``: valid by bpc's name rule, unused."""
        base = re.sub(r"[^A-Za-z0-9_]", "_", base)[:48].strip("_") or "v"
        if not base[0].isalpha():
            base = "v_" + base
        if name_problem(base) is not None:
            base = base + "_"
            if name_problem(base) is not None:
                base = "v_" + base
        name, k = base, 2
        while name in self.used or name_problem(name) is not None:
            name, k = f"{base}_{k}", k + 1
        self.used.add(name)
        return name

    # -------------------------------------------------------------- entry

    def compile(self, options) -> Source:
        self.want = set(options.wrt or ())
        funcs: dict[str, ast.FunctionDef] = {}
        for stmt in self.tree.body:
            if isinstance(stmt, ast.FunctionDef):
                funcs[stmt.name] = stmt
        # module-level code, constant evaluation: values and helper functions
        self.run_module(self.tree.body)
        fn, loss = options.fn, options.loss
        if fn is None and loss is not None and loss not in funcs and loss in self.env:
            return self.script(options)
        if fn is None:
            cands = [f for f in funcs if f != loss]
            if len(cands) != 1:
                known = ", ".join(cands) or "none"
                raise PyError(f"name the function to compile with --fn (top-level functions: {known}), or the "
                              "loss variable of module-level code with --loss", self.path)
            fn = cands[0]
        if fn not in funcs:
            known = ", ".join(funcs) or "none"
            raise PyError(f"no top-level function '{fn}' (functions: {known})", "--fn")
        return self.function(funcs[fn], options)

    # -------------------------------------------------------------- function mode

    def function(self, f: ast.FunctionDef, options) -> Source:
        shapes = dict(options.shapes)
        self.symbolic, self.leaf_role = True, "input"
        a = f.args
        if a.vararg or a.kwarg or a.kwonlyargs or a.posonlyargs:
            raise self.err("the compiled function takes plain arguments only (no *args, **kwargs, keyword-only)", f)
        defaults = self.env[f.name].defaults if isinstance(self.env.get(f.name), Func) else {}
        local: dict[str, Any] = {}
        arg_names: list[str] = []
        for arg in a.args:
            name = arg.arg
            if name in shapes:
                shape = shapes.pop(name)
                if any(not isinstance(d, int) for d in shape):
                    raise PyError(f"'{name}': params need sizes, not dim names", "--shape")
                local[name] = self.new_param(name, tuple(shape), None, self.at(arg))
            elif arg.annotation is not None and self.annotated_shape(arg) is not None:
                shape, value = self.annotated_shape(arg), self.env.get(name)
                value = value.value if isinstance(value, Leaf) and value.value.shape == shape else None
                local[name] = self.new_param(name, shape, value, self.at(arg))
            elif name in self.env and not isinstance(self.env[name], (Unknown, Module, Func)):
                local[name] = self.bind_arg(name, self.env[name], arg)
            elif name in defaults:
                value = defaults[name]
                if isinstance(value, Unknown):
                    raise self.err(f"the default of '{name}' is not known at compile time ({value.why})", arg)
                local[name] = self.bind_arg(name, value, arg)
            else:
                if isinstance(self.env.get(name), Unknown):
                    u = self.env[name]
                    raise self.err(
                        f"cannot tell the shape of argument '{name}': its module-level value is not known "
                        f"({u.why} at {u.where}); give --shape {name}=D1,D2", arg)
                raise self.err(f"cannot tell the shape of argument '{name}': give --shape {name}=D1,D2 or a "
                               "module-level value of that name", arg)
            arg_names.append(name)
        if shapes:
            raise PyError(f"'{next(iter(shapes))}' is not an argument of {f.name}()", "--shape")
        # what is differentiated: the arguments as passed in, whatever the body
        # rebinds later (x = x.reshape(-1, 1) is a new value, not the param)
        given = {n: _tensors([local[n]]) for n in arg_names}
        self.arg_names = {t.name for ts in given.values() for t in ts}
        result = self.call_body(f, local)
        if isinstance(result, tuple) and result:
            result = result[0]
        if options.loss is not None:
            lf = self.env.get(options.loss)
            if not isinstance(lf, Func):
                raise PyError(f"'{options.loss}' is not a top-level function of {self.path}", "--loss")
            # its first argument is the function's result; the others are
            # module-level values of the same names (the targets: inputs)
            rest = {a.arg: self.env[a.arg] for a in lf.node.args.args[1:]
                    if a.arg in self.env and not isinstance(self.env[a.arg], Unknown)}
            result = self.call_user(lf, [result], rest, lf.node)
            if isinstance(result, tuple) and result:
                result = result[0]
        loss = self.as_loss(result, self.last_return or f)
        wrt = self.wrt(options.wrt, given)
        return self.finish(loss, wrt)

    def annotated_shape(self, arg: ast.arg) -> tuple | None:
        """``W: (3, 2)`` or ``W: "3,2"``: a shape; another annotation (``np.ndarray``): none."""
        ann = arg.annotation
        if isinstance(ann, ast.Constant) and isinstance(ann.value, str):
            text = ann.value.strip().strip("()[]").replace("x", ",")
            parts = [p.strip() for p in text.split(",") if p.strip()]
            if parts and all(p.isdigit() for p in parts):
                shape = tuple(int(p) for p in parts)
            else:
                return None
        elif isinstance(ann, (ast.Tuple, ast.List)):
            with self.constant():
                shape = self.eval(ann, {})
            shape = tuple(shape)
            if not all(isinstance(d, int) and not isinstance(d, bool) for d in shape):
                raise self.err("a shape annotation lists sizes: W: (3, 2)", ann)
        else:
            return None
        if any(d < 1 for d in shape) or math.prod(shape) > MAX_ARRAY or len(shape) > 8:
            raise self.err(f"shape {shape} is not a usable size", ann)
        return shape

    def bind_arg(self, name: str, value: Any, where: ast.AST, label: str | None = None) -> Any:
        """An argument's value: arrays become params (lists/dicts: one per element,
        documented as the element they are: ``all_weights[1]``, ``params['W1']``)."""
        if isinstance(value, Leaf):
            value = value.value
        if isinstance(value, np.ndarray):
            return self.new_param(name, value.shape, value, self.at(where), label)
        if isinstance(value, (list, tuple)):
            out = [self.bind_arg(f"{name}_{i}", v, where, f"{label or name}[{i}]") if v is not None else None
                   for i, v in enumerate(value)]
            return out if isinstance(value, list) else tuple(out)
        if isinstance(value, dict):
            return {k: self.bind_arg(k if isinstance(k, str) else f"{name}_{k}", v, where, f"{label or name}[{k!r}]")
                    for k, v in value.items()}
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value  # a number: a compile-time constant
        raise self.err(f"argument '{name}' must be an array, a number, or a list/dict of arrays", where)

    def new_param(self, name: str, shape: tuple, value: np.ndarray | None, where: str, label=None) -> Tensor:
        return self.declare("param", name, shape, value, where, label)

    def declare(self, role: str, name: str, shape: tuple, value, where: str, label: str | None = None) -> Tensor:
        spec_name = self.fresh(name)
        shape = tuple(int(d) if not isinstance(d, str) else d for d in shape)
        decl: dict[str, Any] = {"name": spec_name, "shape": list(shape)}
        if value is not None and not isinstance(value, Unseeded):
            v = np.asarray(value, dtype=np.float64)
            if not np.all(np.isfinite(v)):
                raise PyError(f"'{name}' has a value that is not finite", where)
            decl["value"] = v.reshape(-1).tolist() if v.ndim else float(v)
        if label is not None:  # an element of a list or dict argument
            decl["doc"] = label
        elif role == "input" or self.leaf_role == "param":  # a module-level array
            decl["doc"] = f"{name}, defined at {where}"
        self.decls[spec_name] = decl
        (self.param_order if role == "param" else self.input_order).append(spec_name)
        self.scratch.add(role, [], {"shape": shape}, name=spec_name, named=True)
        return Tensor(ast.Name(id=spec_name, ctx=ast.Load()), spec_name, shape)

    # -------------------------------------------------------------- script mode

    def script(self, options) -> Source:
        """Trace the module-level code itself; its arrays are the params."""
        self.env, self.rng, self.steps = {}, None, 0
        self.symbolic, self.leaf_role, self.entry_depth = True, "param", 0
        self.run_module(self.tree.body, tracing=True)
        value = self.env.get(options.loss)
        if isinstance(value, Unknown):
            raise PyError(f"'{options.loss}' is not known: {value.why} at {value.where}", "--loss")
        if isinstance(value, Leaf):
            value = self.tensor(value, self.tree)
        loss = self.as_loss(value, self.tree)
        return self.finish(loss, self.wrt(options.wrt, {}))

    # -------------------------------------------------------------- the result

    def as_loss(self, value: Any, where: ast.AST) -> str:
        if not isinstance(value, Tensor):
            raise self.err(f"the loss must be an array computed from the arguments, got {_kind(value)}", where)
        if math.prod(d if isinstance(d, int) else 1 for d in value.shape) != 1:
            raise self.err(f"the loss must have exactly one element, it has shape {list(value.shape)} "
                           "(name a loss function with --loss, or return a sum)", where)
        if value.name is None or value.name in self.decls:
            return self.materialize("loss", value, where).node
        return value.name

    def wrt(self, names, args: dict[str, Any]) -> list[str] | None:
        if names is None:
            if args:  # the function's arguments, flattened
                return [t.name for ts in args.values() for t in ts]
            return None  # every param
        out: list[str] = []
        for n in names:
            if n in args:
                got = [t.name for t in args[n]]
                if not got:
                    raise PyError(f"argument '{n}' holds no array", "--wrt")
                out += got
            else:
                out.append(n)  # a param, input or value by its spec name
        return out

    def finish(self, loss: str, wrt: list[str] | None) -> Source:
        def ordered(names):  # arguments first (in order), then module-level arrays as defined
            return sorted(names, key=lambda n: (n in self.order_key, self.order_key.get(n, 0)))

        if self.renamed:  # a helper's local took its caller's name: every reference follows
            subst = _Subst({old: ast.Name(id=new, ctx=ast.Load()) for old, new in self.renamed.items()})
            self.nodes = [f"{self.renamed.get(t, t)} = {ast.unparse(subst.visit(ast.parse(e, mode='eval').body))}"
                          for t, e in (n.split(" = ", 1) for n in self.nodes)]
            loss = self.renamed.get(loss, loss)
            wrt = None if wrt is None else [self.renamed.get(w, w) for w in wrt]
        data: dict[str, Any] = {
            "inputs": [self.decls[n] for n in ordered(self.input_order)],
            "params": [self.decls[n] for n in ordered(self.param_order)],
            "nodes": self.nodes,
            "loss": loss,
        }
        if wrt is not None:
            data["wrt"] = wrt
        try:
            spec = spec_from_data(data)
        except BpcError as e:
            raise PyError(e.message, self.path) from None
        return Source(spec, self.text, self.path, tuple(self.sources))

    # -------------------------------------------------------------- statements

    class _Const:
        def __init__(self, fe):
            self.fe = fe

        def __enter__(self):
            self.saved = self.fe.symbolic
            self.fe.symbolic = False

        def __exit__(self, *exc):
            self.fe.symbolic = self.saved

    def constant(self):
        return self._Const(self)

    def run_module(self, body: list[ast.stmt], tracing: bool = False) -> None:
        """Module-level statements in order; a statement outside the subset
        leaves the names it assigns unknown (an error only when read)."""
        for stmt in body:
            self.step(stmt)
            if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                self.import_(stmt)
                continue
            if isinstance(stmt, ast.FunctionDef):
                self.env[stmt.name] = self.define(stmt, None)
                continue
            if isinstance(stmt, ast.Expr):
                # np.random.seed(0) and list.append(...) matter; print(...), a bare
                # name, a docstring or a call of the network do not
                if isinstance(stmt.value, ast.Call):
                    try:
                        f = self.eval(stmt.value.func, self.env)
                    except PyError:
                        continue
                    if isinstance(f, (NpFunc, Method, BoundRng)):
                        try:
                            self.eval(stmt.value, self.env)
                        except PyError:
                            self.desync(stmt)
                            raise
                    else:
                        self.desync(stmt)
                continue
            try:
                self.exec(stmt, self.env, module=True)
            except _Return:
                raise self.err("'return' outside a function", stmt) from None
            except PyError as e:
                if tracing and not isinstance(stmt, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.For)):
                    raise
                for name in _assigned(stmt):
                    self.env[name] = Unknown(e.message, e.location or self.at(stmt))
                self.desync(stmt)

    def desync(self, stmt: ast.stmt) -> None:
        """A statement bpc skipped may have drawn from NumPy's global generator
        (``print(np.random.rand())``, a helper that draws): the file's later
        draws are then not reproducible, and are kept as shapes only."""
        calls = [n for n in ast.walk(stmt) if isinstance(n, ast.Call)]
        harmless = all(isinstance(c.func, ast.Name) and c.func.id == "print" for c in calls)
        if calls and not harmless and self.rng is not None:
            self.rng = None
            self.desynced = self.at(stmt)

    def import_(self, stmt) -> None:
        if isinstance(stmt, ast.Import):
            for a in stmt.names:
                if a.name in NUMPY_MODULES:
                    self.env[a.asname or a.name.split(".")[0]] = Module("numpy" if a.asname else a.name)
                else:
                    self.env[a.asname or a.name.split(".")[0]] = Unknown(f"module '{a.name}' is not NumPy",
                                                                          self.at(stmt))
        else:
            mod = stmt.module or ""
            for a in stmt.names:
                if mod in NUMPY_MODULES and a.name == "random":
                    self.env[a.asname or a.name] = Module("numpy.random")
                else:
                    self.env[a.asname or a.name] = Unknown(f"'{a.name}' from module '{mod}' is not NumPy",
                                                           self.at(stmt))

    def shared(self, value: Any, env) -> int:
        """How many names and containers hold this very array (``is``)."""
        seen: set[int] = set()

        def count(v, depth=0) -> int:
            if v is value:
                return 1
            if depth > 8 or id(v) in seen or not isinstance(v, (list, tuple, dict)):
                return 0
            seen.add(id(v))
            items = v.values() if isinstance(v, dict) else v
            return sum(count(x, depth + 1) for x in items)

        scopes = [env] if env is self.env else [env, self.env]
        if isinstance(env, collections.ChainMap):
            scopes = list(env.maps) + [self.env]
        return sum(count(v) for scope in scopes for v in list(scope.values()))

    def charge(self, work: int, node: ast.AST) -> None:
        """Constant evaluation costs at most MAX_WORK element operations in all."""
        self.work += work
        if self.work > MAX_WORK:
            raise self.err(f"constant arrays need more than {MAX_WORK:,} operations to evaluate", node)

    def define(self, stmt: ast.FunctionDef, closure: dict | None) -> Func:
        """A ``def``: its defaults are evaluated now, as Python does (once)."""
        a = stmt.args
        names = [x.arg for x in a.args]
        defaults: dict[str, Any] = {}
        for name, node in zip(names[len(names) - len(a.defaults):], a.defaults):
            try:
                with self.constant():
                    defaults[name] = self.eval(node, closure or {})
            except PyError as e:
                defaults[name] = Unknown(e.message, e.location or self.at(node))
        return Func(stmt, defaults, closure)

    def exec_body(self, body: list[ast.stmt], env: dict) -> None:
        for stmt in body:
            self.step(stmt)
            self.exec(stmt, env)

    def exec(self, stmt: ast.stmt, env: dict, module: bool = False) -> None:
        if isinstance(stmt, ast.Assign):
            value = self.eval(stmt.value, env)
            for t in stmt.targets:
                self.assign(t, value, env, stmt, module)
        elif isinstance(stmt, ast.AnnAssign):
            if stmt.value is None:
                return
            self.assign(stmt.target, self.eval(stmt.value, env), env, stmt, module)
        elif isinstance(stmt, ast.AugAssign):
            load = _as_load(stmt.target)
            current = self.eval(load, env)
            if _is_array(current) and self.shared(current, env) > 1:
                # NumPy would change the array in place, under every name it has
                for name in [k for k, v in self.env.items() if v is current] if module else []:
                    self.env[name] = Unknown("changed in place through another name", self.at(stmt))
                raise self.err(f"in-place '{_OPS_TEXT.get(type(stmt.op), 'op')}=' on an array that another name also "
                               f"holds (NumPy changes both): write {ast.unparse(stmt.target)} = "
                               f"{ast.unparse(stmt.target)} {_OPS_TEXT.get(type(stmt.op), 'op')} ...", stmt)
            value = self.binop(stmt.op, current, self.eval(stmt.value, env), stmt)
            self.assign(stmt.target, value, env, stmt, module)
        elif isinstance(stmt, ast.For):
            if stmt.orelse:
                raise self.err("for ... else is not supported", stmt)
            seq = self.eval(stmt.iter, env)
            if isinstance(seq, range):
                items = seq
            elif isinstance(seq, (list, tuple)):
                items = list(seq)
            elif isinstance(seq, dict):
                items = list(seq)
            else:
                raise self.err(f"for loops run over range(...), a list, a tuple or a dict, not {_kind(seq)}",
                               stmt.iter)
            for item in items:
                self.step(stmt)
                self.assign(stmt.target, item, env, stmt, module, bind_only=True)
                self.context.append(f"{ast.unparse(stmt.target)}={_short(item)}")
                try:
                    self.exec_body(stmt.body, env)
                finally:
                    self.context.pop()
        elif isinstance(stmt, ast.If):
            test = self.eval(stmt.test, env)
            if isinstance(test, Tensor):
                raise self.err("an if on an array's values is not supported (write np.where(cond, a, b))",
                               stmt.test)
            self.exec_body(stmt.body if _truth(test, self, stmt.test) else stmt.orelse, env)
        elif isinstance(stmt, ast.Return):
            self.last_return = stmt
            raise _Return(None if stmt.value is None else self.eval(stmt.value, env))
        elif isinstance(stmt, ast.Pass):
            pass
        elif isinstance(stmt, ast.Expr):
            if isinstance(stmt.value, ast.Constant):
                return  # a docstring
            if isinstance(stmt.value, ast.Call) and isinstance(stmt.value.func, ast.Name) and \
                    stmt.value.func.id == "print":
                return  # print(...) has no effect on the result
            self.eval(stmt.value, env)  # e.g. np.random.seed(0), list.append(...)
        elif isinstance(stmt, ast.FunctionDef):
            env[stmt.name] = self.define(stmt, None if module else env)
        else:
            raise self.err(f"{type(stmt).__name__} statements are not supported", stmt)

    def assign(self, target: ast.expr, value: Any, env: dict, stmt: ast.stmt, module: bool,
               bind_only: bool = False) -> None:
        if isinstance(target, ast.Name):
            if target.id.startswith("__"):
                raise self.err(f"dunder name '{target.id}' is not allowed", target)
            env[target.id] = self.bind(target.id, value, stmt, module, bind_only)
        elif isinstance(target, (ast.Tuple, ast.List)):
            if isinstance(value, Tensor):
                raise self.err("unpacking an array is not supported", target)
            if not isinstance(value, (tuple, list)) or len(value) != len(target.elts):
                raise self.err(f"cannot unpack {_kind(value)} into {len(target.elts)} names", target)
            for t, v in zip(target.elts, value):
                self.assign(t, v, env, stmt, module, bind_only)
        elif isinstance(target, ast.Subscript):
            container = self.eval(target.value, env)
            key = self.eval(target.slice, env)
            if isinstance(container, list):
                if not isinstance(key, int) or isinstance(key, bool):
                    raise self.err("list indices must be integers known at compile time", target.slice)
                if not -len(container) <= key < len(container):
                    raise self.err(f"index {key} is out of range for a list of {len(container)}", target.slice)
                key = key % len(container)
            elif isinstance(container, dict):
                if not isinstance(key, (int, str)):
                    raise self.err("dict keys must be ints or strings known at compile time", target.slice)
            elif isinstance(container, (np.ndarray, Leaf, Tensor)):
                raise self.err("assigning into an array's elements is not supported (build it with np.where or "
                               "np.concatenate)", target)
            else:
                raise self.err(f"cannot assign into {_kind(container)}", target)
            base = _base_name(target)
            label = str(key) if isinstance(container, list) else key
            name = label if isinstance(key, str) and re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", key) else \
                f"{base}_{label}"
            container[key] = self.bind(name, value, stmt, module, bind_only)
        elif isinstance(target, ast.Attribute):
            raise self.err("assigning to an attribute is not supported", target)
        else:
            raise self.err(f"cannot assign to {type(target).__name__}", target)

    def bind(self, name: str, value: Any, stmt: ast.stmt, module: bool, bind_only: bool) -> Any:
        """A value bound to a name: arrays get their name here (a node per statement)."""
        if bind_only:
            return value
        if isinstance(value, Unseeded) or (isinstance(value, np.ndarray) and module):
            _check_array(value, self, stmt)
            self.leaf_seq += 1
            return Leaf(name, value, self.at(stmt), self.leaf_seq)
        if isinstance(value, Tensor) and value.name is None:
            return self.materialize(name, value, stmt)
        if self.symbolic and not module and isinstance(value, Leaf) and name in self.want and name not in self.used:
            value = self.tensor(value, stmt)  # v = x (a module-level array), v asked for by --wrt
        if isinstance(value, Tensor) and name in self.want and name not in self.used:
            return self.materialize(name, value, stmt)  # an alias asked for by --wrt: its own value
        if isinstance(value, Tensor) and value.name in self.weak and self.nodes[-1].startswith(f"{value.name} = "):
            # a helper's local, just returned (``activation = ...; return activation``):
            # it takes the caller's name (``all_h[layer + 1] = ReLU(...)`` -> all_h_1)
            self.weak.discard(value.name)
            new = self.fresh(name)
            self.renamed[value.name] = new  # applied to every reference in finish()
            return Tensor(ast.Name(id=new, ctx=ast.Load()), value.node, value.shape)
        return value

    def materialize(self, name: str, t: Tensor, stmt: ast.AST) -> Tensor:
        if len(self.nodes) >= MAX_NODES:
            raise self.err(f"more than {MAX_NODES:,} values (loops are unrolled)", stmt)
        spec_name = self.fresh(name)
        text = f"{spec_name} = {ast.unparse(t.tree)}"
        self.nodes.append(text)
        line = getattr(stmt, "lineno", 1)
        src = self.lines[line - 1].strip() if 0 < line <= len(self.lines) else ""
        where = f"{self.path}:{line}" + (f" [{', '.join(self.context)}]" if self.context else "")
        taken = {w for w, _ in self.sources}
        base, k = where, 2
        while where in taken:  # the same line twice in one loop iteration (a helper called twice)
            where, k = f"{base} ({k})", k + 1
        self.sources.append((where, src))
        if self.depth > self.entry_depth:
            self.weak.add(spec_name)
        self.scratch.add("identity", [t.node], {}, name=spec_name, named=True)
        return Tensor(ast.Name(id=spec_name, ctx=ast.Load()), spec_name, t.shape)

    # -------------------------------------------------------------- expressions

    def eval(self, node: ast.expr, env: dict) -> Any:
        if isinstance(node, ast.Constant):
            v = node.value
            if isinstance(v, bool) or v is None or isinstance(v, str):
                return v
            if isinstance(v, int):
                if abs(v) > MAX_INT:
                    raise self.err("integer too large", node)
                return v
            if isinstance(v, float):
                if not math.isfinite(v):
                    raise self.err("number out of range", node)
                return v
            raise self.err(f"{type(v).__name__} literals are not supported", node)
        if isinstance(node, ast.Name):
            return self.lookup(node, env)
        if isinstance(node, (ast.List, ast.Tuple)):
            if any(isinstance(e, ast.Starred) for e in node.elts):
                raise self.err("*unpacking is not supported", node)
            vals = [self.eval(e, env) for e in node.elts]
            return vals if isinstance(node, ast.List) else tuple(vals)
        if isinstance(node, ast.Dict):
            if any(k is None for k in node.keys):
                raise self.err("**unpacking is not supported", node)
            return {self.key(k, env): self.eval(v, env) for k, v in zip(node.keys, node.values)}
        if isinstance(node, ast.BinOp):
            return self.binop(node.op, self.eval(node.left, env), self.eval(node.right, env), node)
        if isinstance(node, ast.UnaryOp):
            v = self.eval(node.operand, env)
            if isinstance(node.op, ast.USub):
                return self.binop(ast.Mult(), -1, v, node) if _is_array(v) else _num(lambda: -v, self, node)
            if isinstance(node.op, ast.UAdd):
                return v
            if isinstance(node.op, ast.Not) and not _is_array(v):
                return not _truth(v, self, node)
            raise self.err(f"operator {type(node.op).__name__} is not supported", node)
        if isinstance(node, ast.Compare):
            return self.compare(node, env)
        if isinstance(node, ast.BoolOp):
            # as Python: left to right, stopping at the first operand that decides, which is the value
            for v_node in node.values:
                v = self.eval(v_node, env)
                if _is_array(v):
                    raise self.err("'and'/'or' on arrays is not supported", v_node)
                if _truth(v, self, v_node) != isinstance(node.op, ast.And):
                    return v
            return v
        if isinstance(node, ast.IfExp):
            test = self.eval(node.test, env)
            if _is_array(test):
                raise self.err("a conditional on an array's values is not supported (np.where)", node.test)
            return self.eval(node.body if _truth(test, self, node) else node.orelse, env)
        if isinstance(node, ast.Subscript):
            return self.subscript(node, env)
        if isinstance(node, ast.Attribute):
            return self.attribute(node, env)
        if isinstance(node, ast.Call):
            return self.call(node, env)
        if isinstance(node, ast.Slice):
            parts = [None if p is None else self.eval(p, env) for p in (node.lower, node.upper, node.step)]
            if not all(p is None or (isinstance(p, int) and not isinstance(p, bool)) for p in parts):
                raise self.err("slice bounds must be integers known at compile time", node)
            return slice(*parts)
        if isinstance(node, (ast.ListComp, ast.DictComp)):
            return self.listcomp(node, env)
        raise self.err(f"{type(node).__name__} is not supported", node)

    def key(self, node: ast.expr, env: dict) -> Any:
        k = self.eval(node, env)
        if not isinstance(k, (int, str)) or isinstance(k, bool):
            raise self.err("dict keys must be ints or strings", node)
        return k

    def lookup(self, node: ast.Name, env: dict) -> Any:
        name = node.id
        if name.startswith("__"):
            raise self.err(f"dunder name '{name}' is not allowed", node)
        if name in env:
            v = env[name]
        elif name in self.env:
            v = self.env[name]
        elif name in BUILTINS:
            return Builtin(name)
        elif name in _public_ops():
            return OpFunc(name)  # a bpc op by name: sigmoid(z), softmax_cross_entropy(z, y)
        else:
            if hasattr(builtins, name):
                raise self.err(f"'{name}' is not supported (the subset: docs/python.md; loops run over range(...), "
                               "a list or a dict)", node)
            raise self.err(f"name '{name}' is not defined", node)
        if isinstance(v, Unknown):
            raise self.err(f"'{name}' is not known at compile time ({v.why} at {v.where})", node)
        return v

    def listcomp(self, node: ast.ListComp | ast.DictComp, env: dict) -> list | dict:
        if len(node.generators) != 1 or node.generators[0].ifs or node.generators[0].is_async:
            raise self.err("only [expr for x in seq] and {k: v for x in seq} comprehensions are supported", node)
        gen = node.generators[0]
        seq = self.eval(gen.iter, env)
        if not isinstance(seq, (range, list, tuple)):
            raise self.err("comprehensions run over range(...), a list or a tuple", gen.iter)
        out, local = [], dict(env)
        for item in seq:
            self.step(node)
            self.assign(gen.target, item, local, node, False, bind_only=True)
            if isinstance(node, ast.DictComp):
                out.append((self.key(node.key, local), self.eval(node.value, local)))
            else:
                out.append(self.eval(node.elt, local))
            if len(out) > MAX_LIST:
                raise self.err(f"more than {MAX_LIST:,} elements", node)
        return dict(out) if isinstance(node, ast.DictComp) else out

    # ---- arrays: concrete (NumPy) or traced (spec expression nodes)

    def tensor(self, v: Any, node: ast.AST) -> Tensor:
        """Any array-like as a traced tensor (module-level arrays become inputs or params)."""
        if isinstance(v, Tensor):
            return v
        if isinstance(v, Leaf):
            t = self.leaf_tensor.get(id(v))
            if t is None:
                _check_array(v.value, self, node)
                t = self.declare(self.leaf_role, v.name, v.value.shape, v.value, v.where)
                self.leaf_tensor[id(v)] = t
                self.order_key[t.node] = v.seq
            return t
        if isinstance(v, np.ndarray):
            t = self.leaf_tensor.get(id(v))
            if t is None:
                _check_array(v, self, node)
                if v.ndim == 0 and not isinstance(v, Unseeded):
                    return self.number(float(v), node)
                t = self.declare("input", "const", v.shape, v, self.at(node))
                self.leaf_tensor[id(v)] = t
                self.alive.append(v)  # its id must not be reused while it is a key
            return t
        raise self.err(f"expected an array, got {_kind(v)}", node)

    def number(self, v: float, node: ast.AST) -> Tensor:
        if not math.isfinite(v):
            raise self.err("number out of range", node)
        tree = ast.Constant(value=float(v)) if v >= 0 else ast.UnaryOp(op=ast.USub(), operand=ast.Constant(-float(v)))
        return self.op_tree(tree, [], node)

    def op_tree(self, tree: ast.expr, operands: list[Tensor], node: ast.AST) -> Tensor:
        """A NumPy-spelled expression over placeholder names ``_bpc_o<k>`` (the
        operands): normalized to bpc's canonical calls, checked against the
        whitelist and shape-inferred in the scratch graph; returns its tensor
        (the canonical tree, with the operands' own trees in place)."""
        self.tmp += 1
        target = f"_bpc_t{self.tmp}"
        by_id = {f"_bpc_o{k}": ast.Name(id=t.node, ctx=ast.Load()) for k, t in enumerate(operands)}
        text = f"{target} = {ast.unparse(_Subst(by_id).visit(tree))}"
        try:
            parsed = expr.parse(text, "x")
            node_id = expr.lower(parsed, self.scratch, "x")
        except BpcError as e:
            raise self.err(e.message, node) from None
        trees = {t.node: t.tree for t in operands}
        canonical = _Subst(trees).visit(parsed.tree)
        out = Tensor(canonical, node_id, tuple(self.scratch.shape(node_id)))
        if _depth(canonical) > MAX_TREE_DEPTH:  # W + W + ... (hundreds): a value of its own now and then
            return self.materialize("t", out, node)
        return out

    def sym(self, v: Any) -> bool:
        """Is ``v`` traced (a spec value) rather than a constant to compute now?"""
        return isinstance(v, Tensor) or (self.symbolic and isinstance(v, Leaf))

    def apply(self, np_tree: ast.expr, operands: list[Any], node: ast.AST) -> Tensor:
        ts = [self.tensor(o, node) for o in operands]
        return self.op_tree(np_tree, ts, node)

    def binop(self, op: ast.operator, a: Any, b: Any, node: ast.AST) -> Any:
        if not (_is_array(a) or _is_array(b)):
            return _python_binop(op, a, b, self, node)
        if not (self.sym(a) or self.sym(b)):
            return _numpy_binop(op, _arr(a), _arr(b), self, node)
        if type(op) not in (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.MatMult, ast.Pow):
            raise self.err(f"operator {type(op).__name__} on arrays is not supported", node)
        left = self.operand(a, 0, node)
        right = self.operand(b, len(left[1]), node)
        tree = ast.BinOp(left=left[0], op=op, right=right[0])
        return self.op_tree(tree, left[1] + right[1], node)

    def operand(self, v: Any, k: int, node: ast.AST) -> tuple[ast.expr, list[Tensor]]:
        """A placeholder for an array operand, or the literal for a number."""
        if isinstance(v, bool):
            v = int(v)  # W * True is W, as in NumPy
        if isinstance(v, (int, float)):
            if not math.isfinite(v):
                raise self.err("number out of range", node)
            c = ast.Constant(value=abs(float(v)) if isinstance(v, float) else abs(v))
            return (c if v >= 0 else ast.UnaryOp(op=ast.USub(), operand=c)), []
        t = self.tensor(v, node)
        return ast.Name(id=f"_bpc_o{k}", ctx=ast.Load()), [t]

    def operands(self, vals: list[Any], node: ast.AST) -> tuple[list[ast.expr], list[Tensor]]:
        trees, ts = [], []
        for v in vals:
            if isinstance(v, (list, tuple)) and any(_is_array(x) for x in v):
                inner, its = self.operands_at(list(v), len(ts), node)
                trees.append(ast.List(elts=inner, ctx=ast.Load()))
                ts += its
                continue
            if _is_array(v) or (isinstance(v, (int, float)) and not isinstance(v, bool)):
                t, got = self.operand(v, len(ts), node)
                trees.append(t)
                ts += got
            else:
                trees.append(_literal(v, self, node))
        return trees, ts

    def operands_at(self, vals, start, node):
        trees, ts = [], []
        for v in vals:
            t, got = self.operand(v, start + len(ts), node)
            trees.append(t)
            ts += got
        return trees, ts

    def compare(self, node: ast.Compare, env: dict) -> Any:
        vals = [self.eval(node.left, env)] + [self.eval(c, env) for c in node.comparators]  # each once
        if len(node.ops) != 1 and any(_is_array(v) for v in vals):
            raise self.err("chained comparisons of arrays are not supported", node)
        left, right = vals[0], vals[1]
        op = node.ops[0]
        if _is_array(left) or _is_array(right):
            if not (self.sym(left) or self.sym(right)):
                fn = {ast.Gt: np.greater, ast.GtE: np.greater_equal, ast.Lt: np.less, ast.LtE: np.less_equal,
                      ast.Eq: np.equal, ast.NotEq: np.not_equal}.get(type(op))
                if fn is None:
                    raise self.err(f"comparison {type(op).__name__} on arrays is not supported", node)
                return fn(_arr(left), _arr(right)).astype(np.float64)
            if type(op) not in (ast.Gt, ast.GtE, ast.Lt, ast.LtE, ast.Eq):
                raise self.err(f"comparison {type(op).__name__} on arrays is not supported (> >= < <= ==)", node)
            a, ta = self.operand(left, 0, node)
            b, tb = self.operand(right, len(ta), node)
            return self.op_tree(ast.Compare(left=a, ops=[op], comparators=[b]), ta + tb, node)
        for (x, y), o in zip(zip(vals, vals[1:]), node.ops):
            if not _python_compare(o, x, y, self, node):
                return False
        return True

    def subscript(self, node: ast.Subscript, env: dict) -> Any:
        container = self.eval(node.value, env)
        key = self.eval(node.slice, env)
        if isinstance(container, (list, tuple)):
            if isinstance(key, slice):
                return container[key]
            if not isinstance(key, int) or isinstance(key, bool):
                raise self.err("list indices must be integers known at compile time", node.slice)
            if not -len(container) <= key < len(container):
                raise self.err(f"index {key} is out of range for a list of {len(container)}", node.slice)
            return container[key]
        if isinstance(container, dict):
            if not isinstance(key, (int, str)) or isinstance(key, bool):
                raise self.err("dict keys must be ints or strings", node.slice)
            if key not in container:
                raise self.err(f"key {key!r:.40} is not in the dict", node.slice)
            return container[key]
        if _is_array(container):
            idx = key if isinstance(key, tuple) else (key,)
            for i in idx:
                ok = isinstance(i, int) and not isinstance(i, bool) or (isinstance(i, slice) and i.step in (None, 1))
                if not ok:
                    hint = " (add an axis with .reshape(...))" if i is None else ""
                    raise self.err("array indices must be integers or a:b slices known at compile time" + hint,
                                   node.slice)
            shape = _shape(container)
            if len(idx) > len(shape):
                raise self.err(f"too many indices for an array of shape {list(shape)}", node.slice)
            for i, d in zip(idx, shape):
                if isinstance(i, int) and isinstance(d, int) and not -d <= i < d:
                    raise self.err(f"index {i} is out of range for a dim of size {d}", node.slice)
            if not self.sym(container):
                return np.asarray(_arr(container)[key], dtype=np.float64)
            parts = []
            for i in idx:
                if isinstance(i, slice):
                    lo = "" if i.start is None else str(i.start)
                    hi = "" if i.stop is None else str(i.stop)
                    parts.append(f"{lo}:{hi}")
                else:
                    parts.append(str(i))
            tree = ast.parse(f"_bpc_o0[{', '.join(parts)}]", mode="eval").body
            return self.apply(tree, [container], node)
        if isinstance(container, str):
            raise self.err("strings cannot be indexed here", node)
        raise self.err(f"{_kind(container)} cannot be indexed", node)

    def attribute(self, node: ast.Attribute, env: dict) -> Any:
        base = self.eval(node.value, env)
        attr = node.attr
        if attr.startswith("_"):
            raise self.err(f"attribute '.{attr}' is not allowed", node)
        if isinstance(base, Module):
            full = f"{base.name}.{attr}"
            if full == "numpy.random":
                return Module("numpy.random")
            return NpFunc(full)
        if isinstance(base, NpFunc):  # np.linalg.norm: named in full, refused when called
            return NpFunc(f"{base.name}.{attr}")
        if isinstance(base, RandomGen):
            return BoundRng(base, attr)
        if _is_array(base):
            shape = _shape(base)
            if attr == "shape":
                return tuple(shape)
            if attr == "ndim":
                return len(shape)
            if attr == "size":
                if not all(isinstance(d, int) for d in shape):
                    raise self.err("the size of an array with a symbolic dim is not known", node)
                return math.prod(shape)
            if attr == "T":
                if not self.sym(base):
                    return _arr(base).T
                return self.apply(ast.parse("_bpc_o0.T", mode="eval").body, [base], node)
            return Method(base, attr)
        if isinstance(base, (list, dict)) and attr in ("append", "keys", "values", "items"):
            return Method(base, attr)
        raise self.err(f"attribute '.{attr}' of {_kind(base)} is not supported", node)

    # ---- calls

    def call(self, node: ast.Call, env: dict) -> Any:
        func = self.eval(node.func, env)
        for a in node.args:
            if isinstance(a, ast.Starred):
                raise self.err("*arguments are not supported", a)
        for k in node.keywords:
            if k.arg is None:
                raise self.err("**arguments are not supported", k.value)
        args = [self.eval(a, env) for a in node.args]
        kwargs = {k.arg: self.eval(k.value, env) for k in node.keywords}
        if isinstance(func, Func):
            if not self.symbolic:
                raise self.err(f"calls of '{func.node.name}' are not evaluated at module level", node)
            return self.call_user(func, args, kwargs, node)
        if isinstance(func, Builtin):
            return self.builtin(func.name, args, kwargs, node)
        if isinstance(func, NpFunc):
            return self.np_call(func.name, args, kwargs, node)
        if isinstance(func, OpFunc):
            if not any(self.sym(a) for a in args):
                raise self.err(f"bpc's op {func.name}() is only traced (call it on the function's arrays)", node)
            trees, ts = self.operands(list(args), node)
            kws = [ast.keyword(arg=k, value=_literal(v, self, node)) for k, v in kwargs.items()]
            return self.op_tree(ast.Call(func=ast.Name(id=func.name, ctx=ast.Load()), args=trees, keywords=kws),
                                ts, node)
        if isinstance(func, Method):
            return self.method(func, args, kwargs, node)
        if isinstance(func, BoundRng):
            if self.symbolic and self.depth > 0:
                raise self.err("random draws inside the compiled function are not supported: draw at module level",
                               node)
            return self.draw(func.rng.rng, func.name, args, kwargs, node, seeded=True)
        raise self.err(f"{_kind(func)} cannot be called", node)

    def call_user(self, f: Func, args: list, kwargs: dict, node: ast.AST) -> Any:
        a = f.node.args
        if a.vararg or a.kwarg or a.kwonlyargs or a.posonlyargs:
            raise self.err(f"'{f.node.name}' takes *args, **kwargs or keyword-only arguments: not supported",
                           f.node)
        names = [x.arg for x in a.args]
        if len(args) > len(names):
            raise self.err(f"{f.node.name}() takes {len(names)} arguments, got {len(args)}", node)
        local: dict[str, Any] = dict(zip(names, args))
        for k, v in kwargs.items():
            if k not in names or k in local:
                raise self.err(f"{f.node.name}() got an unexpected or repeated argument '{k}'", node)
            local[k] = v
        for n in names:
            if n not in local:
                if n not in f.defaults:
                    raise self.err(f"{f.node.name}() is missing the argument '{n}'", node)
                value = f.defaults[n]
                if isinstance(value, Unknown):
                    raise self.err(f"the default of '{n}' is not known at compile time ({value.why})", node)
                local[n] = value
        if f.closure is not None:  # a nested def reads its enclosing function's names
            local = collections.ChainMap(local, f.closure)
        return self.call_body(f.node, local)

    def call_body(self, f: ast.FunctionDef, local: dict) -> Any:
        if self.depth >= MAX_CALL_DEPTH:
            raise self.err(f"calls nested deeper than {MAX_CALL_DEPTH} (recursion is not supported)", f)
        if f.decorator_list:
            raise self.err("decorated functions are not supported", f.decorator_list[0])
        self.depth += 1
        try:
            self.exec_body(f.body, local)
        except _Return as r:
            return r.value
        finally:
            self.depth -= 1
        return None

    def builtin(self, name: str, args: list, kwargs: dict, node: ast.AST) -> Any:
        if kwargs:
            raise self.err(f"{name}() takes no keyword arguments here", node)
        if name == "range":
            if not 1 <= len(args) <= 3 or not all(isinstance(a, int) and not isinstance(a, bool) for a in args):
                raise self.err("range() takes 1 to 3 integers known at compile time", node)
            if any(abs(a) > MAX_INT for a in args):
                raise self.err("range() bounds out of range", node)
            r = range(*args)
            if len(r) > MAX_RANGE:
                raise self.err(f"range of {len(r):,} steps (at most {MAX_RANGE:,})", node)
            return r
        if name == "len":
            (v,) = _one(args, self, node, name)
            if isinstance(v, (list, tuple, dict, str)):
                return len(v)
            if _is_array(v):
                shape = _shape(v)
                if not shape or not isinstance(shape[0], int):
                    raise self.err("len() of a scalar or of a symbolic dim is not known", node)
                return shape[0]
            raise self.err(f"len() of {_kind(v)}", node)
        if name in ("int", "float"):
            (v,) = _one(args, self, node, name)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                if name == "int" and (not math.isfinite(v) or abs(v) > MAX_INT):
                    raise self.err("int() of a number out of range", node)
                return int(v) if name == "int" else float(v)
            raise self.err(f"{name}() of {_kind(v)} is not supported (arrays stay arrays)", node)
        if name == "str":
            (v,) = _one(args, self, node, name)
            if isinstance(v, (int, str)) and not isinstance(v, bool):
                return str(v)
            raise self.err(f"str() of {_kind(v)} is not supported", node)
        if name in ("list", "tuple"):
            (v,) = _one(args, self, node, name)
            if isinstance(v, (list, tuple, range)):
                return list(v) if name == "list" else tuple(v)
            raise self.err(f"{name}() of {_kind(v)}", node)
        if name == "dict":
            if args:
                raise self.err("dict() takes no arguments here ({} literals do)", node)
            return {}
        if name == "sum" and len(args) == 1 and isinstance(args[0], (list, tuple)) and any(
                _is_array(v) for v in args[0]):
            total: Any = args[0][0]
            for v in args[0][1:]:
                total = self.binop(ast.Add(), total, v, node)
            return total
        if name in ("abs", "min", "max", "sum") and all(not _is_array(a) for a in args):
            vals = args[0] if len(args) == 1 and isinstance(args[0], (list, tuple)) else args
            if not vals or (name == "abs" and len(args) != 1):
                raise self.err(f"{name}() needs {'one number' if name == 'abs' else 'numbers'}", node)
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
                raise self.err(f"{name}() of non-numbers", node)
            return {"abs": lambda: abs(vals[0]), "min": lambda: min(vals), "max": lambda: max(vals),
                    "sum": lambda: sum(vals)}[name]()
        raise self.err(f"{name}() of arrays is not supported (use np.{name})", node)

    def np_call(self, name: str, args: list, kwargs: dict, node: ast.AST) -> Any:
        short = name.split(".", 1)[1] if "." in name else name
        if short.startswith("random."):
            return self.random(short.split(".", 1)[1], args, kwargs, node)
        if short in ("array", "asarray"):
            (v,) = _one(args, self, node, short)
            if self.sym(v):
                return v
            for k in kwargs:
                if k != "dtype":
                    raise self.err(f"np.{short}() takes only dtype= here", node)
            return self.const_array(v, node)
        if short in ("ones", "zeros", "full", "empty"):
            shape = args[0] if args else kwargs.get("shape")
            shape = (shape,) if isinstance(shape, int) and not isinstance(shape, bool) else shape
            if not isinstance(shape, (tuple, list)) or not all(isinstance(d, int) and not isinstance(d, bool) and
                                                               d >= 0 for d in shape):
                raise self.err(f"np.{short}() needs a shape of non-negative integers known at compile time", node)
            if math.prod(shape) > MAX_ARRAY:
                raise self.err(f"more than {MAX_ARRAY:,} elements in a constant array", node)
            if short == "empty":
                raise self.err("np.empty has no defined values: use np.zeros", node)
            if short == "full":
                fill = args[1] if len(args) > 1 else kwargs.get("fill_value")
                if not isinstance(fill, (int, float)) or isinstance(fill, bool):
                    raise self.err("np.full() needs a number to fill with", node)
                return np.full(tuple(shape), float(fill))
            return (np.ones if short == "ones" else np.zeros)(tuple(shape))
        if short in ("ones_like", "zeros_like"):
            (v,) = _one(args, self, node, short)
            if not _is_array(v) or not all(isinstance(d, int) for d in _shape(v)):
                raise self.err(f"np.{short}() needs an array of known shape", node)
            return (np.ones if short == "ones_like" else np.zeros)(tuple(_shape(v)))
        if short == "eye":
            if not args or not all(isinstance(a, int) and not isinstance(a, bool) and a > 0 for a in args[:2]):
                raise self.err("np.eye() needs sizes known at compile time", node)
            if args[0] * (args[1] if len(args) > 1 else args[0]) > MAX_ARRAY:
                raise self.err(f"more than {MAX_ARRAY:,} elements in a constant array", node)
            return np.eye(*args[:2])
        if short == "seterr" or short == "set_printoptions":
            return None
        # an op on arrays: spelled as NumPy, normalized by the expression language
        if short not in expr.NP_FUNCS:
            known = ", ".join(f"np.{k}" for k in sorted(set(expr.NP_FUNCS) | {"array", "ones", "zeros", "full",
                                                                               "eye", "random.seed"}))
            raise self.err(f"np.{short} is not supported (NumPy functions bpc knows: {known})", node)
        if short == "reshape" and len(args) >= 2:
            args = [args[0], self.resolve_shape(args[0], args[1], node)] + list(args[2:])
        flat_args = list(args) + list(kwargs.values()) + [x for a in args if isinstance(a, (list, tuple)) for x in a]
        if not any(self.sym(a) for a in flat_args):  # constants: computed now, by the same NumPy function
            return self.np_now(short, args, kwargs, node)
        trees, ts = self.operands(list(args), node)
        kws = [ast.keyword(arg=k, value=_literal(v, self, node)) for k, v in kwargs.items()]
        tree = ast.Call(func=ast.Attribute(value=ast.Name(id="np", ctx=ast.Load()), attr=short, ctx=ast.Load()),
                        args=trees, keywords=kws)
        return self.op_tree(tree, ts, node)

    def np_now(self, short: str, args: list, kwargs: dict, node: ast.AST) -> Any:
        """A whitelisted NumPy function on constants (``short`` is in ``expr.NP_FUNCS``)."""
        def conv(v):
            if isinstance(v, (list, tuple)):
                return type(v)(conv(x) for x in v)
            if isinstance(v, Leaf):
                return v.value
            if isinstance(v, (np.ndarray, int, float, bool)) or v is None:
                return v
            raise self.err(f"np.{short}() of {_kind(v)} is not supported", node)

        cargs = [conv(a) for a in args]
        arrays = [np.shape(a) for a in cargs if isinstance(a, np.ndarray)] + [
            np.shape(x) for a in cargs if isinstance(a, (list, tuple)) for x in a if isinstance(x, np.ndarray)]
        if short in ("matmul", "dot") and len(arrays) >= 2:
            self.charge(_matmul_work(arrays[0], arrays[1]), node)
        else:
            self.charge(sum(math.prod(sh) for sh in arrays), node)
            if short not in ("concatenate", "stack", "sum", "mean", "max", "min", "amax", "amin", "transpose",
                             "reshape") and arrays:
                try:
                    size = math.prod(np.broadcast_shapes(*arrays))
                except ValueError:
                    size = 0
                if size > MAX_ARRAY:
                    raise self.err(f"more than {MAX_ARRAY:,} elements in a constant array", node)
        try:
            with np.errstate(all="ignore"):
                out = getattr(np, short)(*cargs, **{k: conv(v) for k, v in kwargs.items()})
        except (TypeError, ValueError) as e:
            raise self.err(f"np.{short}(): {str(e).splitlines()[0][:160]}", node) from None
        out = np.asarray(out, dtype=np.float64)
        _check_array(out, self, node)
        if out.ndim == 0 and not any(_is_array(a) for a in args):
            value = float(out)  # np.sqrt(2): a number, as in Python
            if not math.isfinite(value):
                raise self.err(f"np.{short}() is not finite here", node)
            return value
        unseeded = any(isinstance(conv(a), Unseeded) for a in args if not isinstance(a, (list, tuple)))
        return out.view(Unseeded) if unseeded else out

    def resolve_shape(self, x: Any, shape: Any, node: ast.AST) -> tuple:
        if isinstance(shape, int) and not isinstance(shape, bool):
            shape = (shape,)
        if not isinstance(shape, (tuple, list)) or not all(isinstance(d, int) and not isinstance(d, bool)
                                                           for d in shape):
            raise self.err("reshape needs sizes known at compile time", node)
        shape = list(shape)
        if shape.count(-1) > 1:
            raise self.err("reshape can infer one size (-1) at most", node)
        if -1 in shape:
            src = _shape(x)
            if not all(isinstance(d, int) for d in src):
                raise self.err("reshape with -1 of an array with a symbolic dim", node)
            known = math.prod(d for d in shape if d != -1)
            total = math.prod(src)
            if known == 0 or total % known:
                raise self.err(f"cannot reshape an array of {total} elements into {tuple(shape)}", node)
            shape[shape.index(-1)] = total // known
        return tuple(shape)

    def method(self, m: "Method", args: list, kwargs: dict, node: ast.AST) -> Any:
        base, name = m.base, m.name
        if isinstance(base, list):
            if name == "append":
                (v,) = _one(args, self, node, "append")
                if len(base) >= MAX_LIST:
                    raise self.err(f"more than {MAX_LIST:,} elements", node)
                base.append(v)
                return None
            raise self.err(f"list.{name}() is not supported", node)
        if isinstance(base, dict):
            return {"keys": lambda: list(base), "values": lambda: list(base.values()),
                    "items": lambda: list(base.items())}[name]()
        if name in ("reshape",):
            shape = args[0] if len(args) == 1 else tuple(args)
            shape = self.resolve_shape(base, shape, node)
            if not self.sym(base):
                arr = _arr(base)
                if math.prod(shape) != arr.size:
                    raise self.err(f"cannot reshape an array of {arr.size} elements into {shape}", node)
                out = arr.reshape(shape)
                return out.view(Unseeded) if isinstance(arr, Unseeded) else out
            return self.apply(ast.parse(f"_bpc_o0.reshape({shape!r})", mode="eval").body, [base], node)
        if name in ("copy", "astype", "flatten", "ravel") and name != "astype":
            if name == "copy":
                return base
            n = math.prod(_shape(base)) if all(isinstance(d, int) for d in _shape(base)) else None
            if n is None:
                raise self.err(f".{name}() of an array with a symbolic dim", node)
            return self.method(Method(base, "reshape"), [(n,)], {}, node)
        if name == "astype":
            return base
        if name not in expr.METHOD_OPS:
            known = ", ".join(f".{k}()" for k in sorted(set(expr.METHOD_OPS) | {"copy", "ravel", "flatten"}))
            raise self.err(f"method .{name}() is not supported (methods: .T, .shape, {known})", node)
        if not self.sym(base):
            arr = _arr(base)
            try:
                with np.errstate(all="raise"):
                    out = getattr(arr, name)(*args, **kwargs)
            except Exception as e:  # noqa: BLE001 - NumPy's own message, one line
                raise self.err(f".{name}(): {str(e).splitlines()[0][:200]}", node) from None
            return np.asarray(out, dtype=np.float64)
        trees, ts = self.operands([base] + list(args), node)
        kws = [ast.keyword(arg=k, value=_literal(v, self, node)) for k, v in kwargs.items()]
        tree = ast.Call(func=ast.Attribute(value=trees[0], attr=name, ctx=ast.Load()), args=trees[1:], keywords=kws)
        return self.op_tree(tree, ts, node)

    # ---- constants and random draws

    def const_array(self, v: Any, node: ast.AST) -> np.ndarray:
        budget = [MAX_ARRAY]

        def flat(x, depth=0):
            if depth > 32:
                raise self.err("array nested too deeply", node)
            budget[0] -= 1
            if budget[0] < 0:
                raise self.err(f"more than {MAX_ARRAY:,} elements in a constant array", node)
            if isinstance(x, (list, tuple)):
                return [flat(e, depth + 1) for e in x]
            if isinstance(x, bool) or not isinstance(x, (int, float, np.ndarray, Leaf)):
                raise self.err(f"np.array() of {_kind(x)}: numbers and nested lists only", node)
            return _arr(x) if isinstance(x, (np.ndarray, Leaf)) else x

        data = flat(v)
        try:
            arr = np.array(data, dtype=np.float64)
        except (ValueError, TypeError) as e:
            raise self.err(f"np.array(): {str(e).splitlines()[0][:120]}", node) from None
        if arr.size > MAX_ARRAY:
            raise self.err(f"more than {MAX_ARRAY:,} elements in a constant array", node)
        return arr

    def random(self, name: str, args: list, kwargs: dict, node: ast.AST) -> Any:
        if self.symbolic and self.depth > 0:
            raise self.err("random draws inside the compiled function are not supported: draw at module level",
                           node)
        if name == "seed":
            (s,) = _one(args, self, node, "np.random.seed")
            if not isinstance(s, int) or isinstance(s, bool) or not 0 <= s < 2**32:
                raise self.err("np.random.seed() takes an integer in [0, 2**32)", node)
            self.rng = np.random.RandomState(s)
            return None
        if name == "default_rng":
            s = args[0] if args else kwargs.get("seed")
            if not isinstance(s, int) or isinstance(s, bool) or s < 0 or s >= 2**63:
                raise self.err("np.random.default_rng() needs an integer seed to be reproducible", node)
            return RandomGen(np.random.default_rng(s))
        rng = self.rng
        return self.draw(rng if rng is not None else np.random.RandomState(0), name, args, kwargs, node,
                         seeded=rng is not None)

    def draw(self, rng, name: str, args: list, kwargs: dict, node: ast.AST, seeded: bool) -> np.ndarray:
        allowed = {"normal", "randn", "rand", "random", "random_sample", "uniform", "standard_normal"}
        if name not in allowed:
            raise self.err(f"np.random.{name} is not supported (draws: {', '.join(sorted(allowed))}, seed)", node)
        for v in list(args) + list(kwargs.values()):
            ok = v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) or (
                isinstance(v, (tuple, list)) and all(isinstance(d, int) and not isinstance(d, bool) for d in v))
            if not ok:
                raise self.err(f"np.random.{name}() arguments must be numbers and sizes known at compile time", node)
        size = kwargs.get("size")
        if name in ("randn", "rand"):
            size = tuple(args)
        elif name in ("random", "random_sample", "standard_normal") and args:
            size = args[0]
        elif name in ("normal", "uniform") and len(args) >= 3:
            size = args[2]
        dims = (size,) if isinstance(size, int) else tuple(size or ())
        if any(d < 0 for d in dims) or math.prod(dims) > MAX_ARRAY:
            raise self.err(f"np.random.{name}() size must be non-negative, at most {MAX_ARRAY:,} elements", node)
        if name == "random" and not hasattr(rng, "random"):
            name = "random_sample"
        if not hasattr(rng, name):
            raise self.err(f"{name}() is not a method of np.random.default_rng() (normal, random, uniform, "
                           "standard_normal)", node)
        try:
            out = np.asarray(getattr(rng, name)(*args, **kwargs), dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise self.err(f"np.random.{name}(): {str(e).splitlines()[0][:120]}", node) from None
        return out if seeded else out.view(Unseeded)


# ------------------------------------------------------------------ small pieces


BUILTINS = {"range", "len", "int", "float", "str", "list", "tuple", "dict", "abs", "min", "max", "sum", "print"}


@dataclass
class Builtin:
    name: str


@dataclass
class NpFunc:
    name: str


@dataclass
class OpFunc:
    name: str


@functools.lru_cache(maxsize=1)
def _public_ops() -> frozenset[str]:
    from ..ops.registry import public_ops

    return frozenset(public_ops())


@dataclass
class Method:
    base: Any
    name: str


@dataclass
class RandomGen:
    rng: Any


@dataclass
class BoundRng:
    rng: RandomGen
    name: str


class _Subst(ast.NodeTransformer):
    def __init__(self, mapping):
        self.mapping = mapping

    def visit_Name(self, node):
        return self.mapping.get(node.id, node)


def _kind(v: Any) -> str:
    if isinstance(v, Tensor):
        return f"an array of shape {list(v.shape)}"
    if isinstance(v, (np.ndarray, Leaf)):
        return f"an array of shape {list(_shape(v))}"
    if isinstance(v, Func):
        return f"the function {v.node.name}"
    if v is None:
        return "None"
    return f"a {type(v).__name__}"


def _is_array(v: Any) -> bool:
    return isinstance(v, (Tensor, np.ndarray, Leaf))


def _arr(v: Any) -> Any:
    if isinstance(v, Leaf):
        return v.value
    return v


def _shape(v: Any) -> tuple:
    if isinstance(v, Tensor):
        return tuple(v.shape)
    return tuple(_arr(v).shape)


def _check_array(v: np.ndarray, fe: PythonFrontend, node: ast.AST) -> None:
    if v.size > MAX_ARRAY:
        raise fe.err(f"more than {MAX_ARRAY:,} elements in a constant array", node)
    if v.ndim > 8:
        raise fe.err("more than 8 dimensions", node)


def _one(args: list, fe: PythonFrontend, node: ast.AST, name: str) -> list:
    if len(args) != 1:
        raise fe.err(f"{name}() takes one argument here, got {len(args)}", node)
    return args


def _truth(v: Any, fe: PythonFrontend, node: ast.AST) -> bool:
    if isinstance(v, (bool, int, float, str, type(None), list, tuple, dict)):
        return bool(v)
    raise fe.err(f"the truth of {_kind(v)} is not known at compile time", node)


def _num(fn, fe, node):
    try:
        return fn()
    except TypeError:
        raise fe.err("unsupported operand", node) from None


_OPS_TEXT = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.MatMult: "@", ast.Pow: "**",
             ast.FloorDiv: "//", ast.Mod: "%"}


def _python_binop(op, a, b, fe: PythonFrontend, node):
    ops = {ast.Add: lambda: a + b, ast.Sub: lambda: a - b, ast.Mult: lambda: a * b, ast.Div: lambda: a / b,
           ast.FloorDiv: lambda: a // b, ast.Mod: lambda: a % b, ast.Pow: lambda: a ** b}
    f = ops.get(type(op))
    if f is None:
        raise fe.err(f"operator {type(op).__name__} is not supported", node)
    for v in (a, b):
        if not isinstance(v, (int, float, list, tuple, str)) or v is None:
            raise fe.err(f"operator on {_kind(v)} is not supported", node)
    if isinstance(op, ast.Pow) and isinstance(a, (int, float)) and isinstance(b, (int, float)) and (
            abs(b) * math.log2(max(2.0, abs(a))) > 1000 or (isinstance(a, int) and isinstance(b, int) and b > 0
                                                           and b * math.log2(max(2, abs(a))) > 62)):
        raise fe.err("power too large", node)
    if isinstance(op, ast.Add) and isinstance(a, (list, tuple, str)) and isinstance(b, (list, tuple, str)):
        if len(a) + len(b) > MAX_LIST:
            raise fe.err(f"sequence of more than {MAX_LIST:,} elements", node)
    if isinstance(op, ast.Mult) and (isinstance(a, (list, tuple, str)) or isinstance(b, (list, tuple, str))):
        seq, n = (a, b) if isinstance(a, (list, tuple, str)) else (b, a)
        if not isinstance(n, int) or isinstance(n, bool) or len(seq) * max(n, 0) > MAX_LIST:
            raise fe.err(f"sequence repeated into more than {MAX_LIST:,} elements", node)
    try:
        out = f()
    except (ZeroDivisionError, OverflowError, TypeError, ValueError) as e:
        raise fe.err(f"cannot evaluate: {e}", node) from None
    if isinstance(out, int) and abs(out) > MAX_INT:
        raise fe.err("integer too large", node)
    if isinstance(out, float) and not math.isfinite(out):
        raise fe.err("number out of range", node)
    if isinstance(out, complex):
        raise fe.err("complex numbers are not supported", node)
    return out


def _numpy_binop(op, a, b, fe: PythonFrontend, node):
    ops = {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply, ast.Div: np.divide,
           ast.MatMult: np.matmul, ast.Pow: np.power}
    f = ops.get(type(op))
    if f is None:
        raise fe.err(f"operator {type(op).__name__} on arrays is not supported", node)
    for v in (a, b):
        if not (isinstance(v, np.ndarray) or (isinstance(v, (int, float)) and not isinstance(v, bool))):
            raise fe.err(f"operator on {_kind(v)} and an array is not supported", node)
    try:
        sa, sb = np.shape(a), np.shape(b)
        if isinstance(op, ast.MatMult):
            if not len(sa) or not len(sb):
                raise ValueError("matmul of a scalar")
            if sa[-1] != (sb[-2] if len(sb) > 1 else sb[0]):
                raise ValueError(f"matmul of shapes {sa} and {sb}")
            fe.charge(_matmul_work(sa, sb), node)
            out_shape = np.broadcast_shapes(sa[:-2], sb[:-2]) + sa[-2:-1] + sb[-1:] if len(sb) > 1 else sa[:-1]
        else:
            out_shape = np.broadcast_shapes(sa, sb)
            fe.charge(math.prod(out_shape), node)
        if math.prod(out_shape) > MAX_ARRAY:
            raise ValueError(f"more than {MAX_ARRAY:,} elements")
        with np.errstate(all="ignore"):
            out = f(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
    except ValueError as e:
        raise fe.err(f"cannot evaluate: {str(e).splitlines()[0][:120]}", node) from None
    unseeded = isinstance(a, Unseeded) or isinstance(b, Unseeded)
    return out.view(Unseeded) if unseeded else np.asarray(out)


def _depth(tree: ast.AST, limit: int = 1000) -> int:
    best, stack = 0, [(tree, 1)]
    while stack:
        n, d = stack.pop()
        best = max(best, d)
        if d < limit:
            stack += [(c, d + 1) for c in ast.iter_child_nodes(n)]
    return best


def _matmul_work(sa: tuple, sb: tuple) -> int:
    """Multiply-adds of a @ b (an upper bound; shapes not yet checked)."""
    if not sa or not sb:
        return math.prod(sa) * math.prod(sb)
    k = sa[-1]
    rows = math.prod(sa[:-1]) if len(sa) > 1 else 1
    cols = sb[-1] if len(sb) > 1 else 1
    batch = math.prod(sb[:-2]) if len(sb) > 2 else 1
    return rows * cols * k * batch


def _python_compare(op, x, y, fe, node) -> bool:
    ops = {ast.Gt: lambda: x > y, ast.GtE: lambda: x >= y, ast.Lt: lambda: x < y, ast.LtE: lambda: x <= y,
           ast.Eq: lambda: x == y, ast.NotEq: lambda: x != y, ast.Is: lambda: x is y,
           ast.IsNot: lambda: x is not y, ast.In: lambda: x in y, ast.NotIn: lambda: x not in y}
    f = ops.get(type(op))
    if f is None:
        raise fe.err(f"comparison {type(op).__name__} is not supported", node)
    try:
        return bool(f())
    except TypeError as e:
        raise fe.err(f"cannot compare: {e}", node) from None


def _literal(v: Any, fe: PythonFrontend, node: ast.AST) -> ast.expr:
    """A Python value as an attribute literal in an expression."""
    if v is None or isinstance(v, (bool, str)):
        return ast.Constant(value=v)
    if isinstance(v, (int, float)):
        c = ast.Constant(value=abs(v))
        return c if v >= 0 else ast.UnaryOp(op=ast.USub(), operand=c)
    if isinstance(v, (tuple, list)) and all(isinstance(x, int) and not isinstance(x, bool) for x in v):
        return ast.Tuple(elts=[_literal(x, fe, node) for x in v], ctx=ast.Load())
    raise fe.err(f"{_kind(v)} cannot be an argument here (numbers, sizes, True/False/None)", node)


def _as_load(target: ast.expr) -> ast.expr:
    return ast.fix_missing_locations(ast.copy_location(
        ast.parse(ast.unparse(target), mode="eval").body, target))


def _assigned(stmt: ast.stmt) -> list[str]:
    """The names a statement binds, and the containers it assigns into."""
    out = []
    for n in ast.walk(stmt):
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
            out.append(n.id)
        elif isinstance(n, ast.Subscript) and isinstance(n.ctx, ast.Store):
            out.append(_base_name(n))
    return out


def _base_name(target: ast.expr) -> str:
    while isinstance(target, ast.Subscript):
        target = target.value
    return target.id if isinstance(target, ast.Name) else "v"


def _short(v: Any) -> str:
    return repr(v)[:20] if isinstance(v, (int, float, str)) else type(v).__name__


def _tensors(vals: list) -> list[Tensor]:
    out: list[Tensor] = []
    for v in vals:
        if isinstance(v, Tensor):
            out.append(v)
        elif isinstance(v, (list, tuple)):
            out += _tensors(list(v))
        elif isinstance(v, dict):
            out += _tensors(list(v.values()))
    return out
