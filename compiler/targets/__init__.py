"""Targets: how the scheduled IR is spelled in a generated module.

A target owns the array namespace and its import, the float dtype, and the
per-op emission table (ops keep shape, dtype and derivative rules; targets keep
spellings, as tinygrad's renderers own ``code_for_op``). Today there is one:
NumPy, in float64.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from . import numpy as _np
from .pyexpr import E


@dataclass(frozen=True)
class Target:
    name: str
    import_line: str
    namespace: str
    emit_table: dict[str, Callable]
    reuses_operands: frozenset
    dtype: str = "f64"

    def emit(self, op: str, args, attrs: dict, shape: tuple, dtype: str) -> E:
        try:
            rule = self.emit_table[op]
        except KeyError:
            raise AssertionError(f"target {self.name} has no spelling for op '{op}'") from None
        return rule(_np.EmitArgs(args, attrs, shape, dtype))


NUMPY = Target(
    name="numpy",
    import_line="import numpy as np",
    namespace="np",
    emit_table=_np.EMIT,
    reuses_operands=_np.REUSES_OPERANDS,
)


TARGETS = {"numpy": NUMPY}


def get_target(name: str) -> Target:
    return TARGETS[name]
