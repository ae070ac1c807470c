"""Compile options: one value threaded from the CLI and the Python API to codegen."""

from __future__ import annotations

from dataclasses import dataclass, replace

from .errors import SpecError

DTYPES = {"float64": "f64", "float32": "f32"}
TARGETS = ("numpy", "array-api")
FUNCTIONS = ("forward", "value_and_grad", "jvp", "vjp", "hvp", "jacobian", "hessian")  # entry points, in order
DEFAULT_FUNCTIONS = ("forward", "value_and_grad")
OPT_LEVELS = (0, 2, 3)


@dataclass(frozen=True)
class CompileOptions:
    """How to compile a spec.

    ``dtype``: ``"float64"`` (default) or ``"float32"``: every array, constant,
    initializer and gradient of the module. ``passes``: the optimisation passes
    to run (``None``: all; an empty set: none, as ``bpc compile -O0``).
    ``comments``: the chain-rule comments in the backward pass. ``name``: the
    module name (default: the spec's ``name``, else its file name).
    ``opt_level``: 0 (no passes), 2 (default) or 3 (buffers and ``out=``).
    ``target``: the array library of the generated module. ``functions``: the
    entry points to emit (default: all; the ``_self_check`` appendix comes
    with ``forward`` and ``value_and_grad`` together). ``wrt``: the names to
    differentiate (replaces the spec's). ``loss``, ``fn``, ``shapes``: what a
    front end compiles (``compiler/frontends``).
    """

    dtype: str = "float64"
    passes: frozenset[str] | None = None
    comments: bool = True
    name: str | None = None
    target: str = "numpy"
    functions: tuple[str, ...] | None = None  # None: the spec's "emit", else DEFAULT_FUNCTIONS
    # What to differentiate, for every front end (a JSON spec's "wrt" is replaced).
    wrt: tuple[str, ...] | None = None
    # The loss: a JSON spec's node name; a Python file's function or returned
    # value; an ONNX model's loss kind (mse, sse, ...). See each front end.
    loss: str | None = None
    # Front-end only: the Python function to compile, and shapes of its arguments.
    fn: str | None = None
    shapes: tuple[tuple[str, tuple[int | str, ...]], ...] = ()
    # 0: no optimisation pass (as passes=set()); 2: the default; 3: also
    # intermediates in reused buffers and value_and_grad(..., out=) (numpy
    # target; compiler/workspace.py, docs/performance.md).
    opt_level: int = 2

    def __post_init__(self):
        if self.functions is None:
            functions = None
        elif isinstance(self.functions, str):
            functions = tuple(f.strip() for f in self.functions.split(","))
        else:
            functions = tuple(self.functions)
        if functions is not None:
            self._set_functions(functions)
        if isinstance(self.wrt, str):
            object.__setattr__(self, "wrt", tuple(w.strip() for w in self.wrt.split(",") if w.strip()))
        elif self.wrt is not None:
            object.__setattr__(self, "wrt", tuple(self.wrt))
        if isinstance(self.shapes, dict):
            object.__setattr__(self, "shapes", tuple((k, tuple(v)) for k, v in self.shapes.items()))
        self._check()

    def _set_functions(self, functions: tuple[str, ...]) -> None:
        for f in functions:
            if f not in FUNCTIONS:
                raise SpecError(f"unknown function {f!r} (expected {', '.join(FUNCTIONS)})", "functions")
        if not functions:
            raise SpecError("no function to emit", "functions")
        # forward is always there: the self-check and bpc check call it.
        object.__setattr__(self, "functions", tuple(f for f in FUNCTIONS if f in functions or f == "forward"))

    def _check(self) -> None:
        if self.dtype not in DTYPES:
            raise SpecError(f"unknown dtype {self.dtype!r} (expected {' or '.join(DTYPES)})", "dtype")
        if self.target not in TARGETS:
            raise SpecError(f"unknown target {self.target!r} (expected {', '.join(TARGETS)})", "target")
        if self.opt_level not in OPT_LEVELS:
            raise SpecError(f"unknown optimisation level {self.opt_level!r} (expected 0, 2 or 3)", "-O")
        if self.opt_level == 0 and self.passes is None:
            object.__setattr__(self, "passes", frozenset())
        if self.passes is not None:
            object.__setattr__(self, "passes", frozenset(self.passes))

    @property
    def ir_dtype(self) -> str:
        """The IR's name for the float dtype (``"f64"``/``"f32"``)."""
        return DTYPES[self.dtype]

    def but(self, **changes) -> "CompileOptions":
        return replace(self, **changes)
