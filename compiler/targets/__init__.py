"""Targets: how the scheduled IR is spelled in a generated module.

A target owns the array namespace and its import, the float dtype, and the
per-op emission table (ops keep shape, dtype and derivative rules; targets keep
spellings, as tinygrad's renderers own ``code_for_op``). It also owns the few
spellings codegen needs outside the op table (argument casts, scalars of the
compile dtype, copies, the per-function prologue, the pieces of jacobian and
hessian) and what the output whitelist allows (imports, namespaces, methods).

Two targets: ``numpy`` (the default; the module imports only numpy) and
``array-api`` (the module takes its namespace from its arguments through
``array_api_compat`` and calls only the Python array API standard; see
``docs/array-api.md``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from . import numpy as _np
from .pyexpr import NP, E


@dataclass(frozen=True)
class Target:
    name: str
    import_line: str
    namespace: str
    emit_table: dict[str, Callable]
    reuses_operands: frozenset
    dtype: str = "f64"
    # The output whitelist: ``import module as alias`` lines in order (alias
    # None: ``import module``), the names callable on each namespace, and the
    # attributes and methods allowed on any other value.
    imports: tuple = (("numpy", "np"),)
    names: dict = field(default_factory=lambda: {"np": _np.NP_NAMES})
    methods: frozenset = _np.METHODS
    # Names the generated functions use for themselves (a spec may not use them).
    reserved: frozenset = frozenset()
    # What the argument casts accept, for their comment.
    cast_what: str = "arrays (ints, lists)"
    # The function that checks class labels on entry (None: codegen's NumPy one).
    labels_check: str | None = None

    def emit(self, op: str, args, attrs: dict, shape: tuple, dtype: str, dtypes=None, pynum=None) -> E:
        try:
            rule = self.emit_table[op]
        except KeyError:
            raise AssertionError(f"target {self.name} has no spelling for op '{op}'") from None
        return rule(_np.EmitArgs(args, attrs, shape, dtype, dtypes, pynum))

    # ------------------------------------------------ spellings outside the op table

    def scalar(self, e: E, ftype: str) -> E:
        """A Python number as a value of the float dtype ``ftype`` ("float64")."""
        return NP.attr(ftype)(e)

    def cast_arg(self, e: E, ftype: str) -> E:
        """An argument (array, list or number) as an array of ``ftype``."""
        return NP.asarray(e, dtype=NP.attr(ftype))

    def copy(self, name: str) -> str:
        return f"{name}.copy()"

    def prologue(self, args: list[str], body: list[str]) -> list[str]:
        """Statements that open every entry point (before the argument casts)."""
        return []

    def eye(self, n: int, ftype: str) -> str:
        return f"np.eye({n})" if ftype == "float64" else f"np.eye({n}, dtype=np.{ftype})"

    def reshape(self, expr: str, shape: str) -> str:
        return f"{expr}.reshape({shape})"

    def stack(self, terms: str, axis: int) -> str:
        return f"np.stack([{terms}], axis={axis})"


NUMPY = Target(
    name="numpy",
    import_line="import numpy as np",
    namespace="np",
    emit_table=_np.EMIT,
    reuses_operands=_np.REUSES_OPERANDS,
)


def _targets() -> dict[str, Target]:
    from .array_api import ARRAY_API

    return {"numpy": NUMPY, "array-api": ARRAY_API}


TARGETS = _targets()


def get_target(name: str) -> Target:
    return TARGETS[name]
