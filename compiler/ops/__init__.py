"""The op registry. Importing this package declares every op."""

from . import core  # noqa: F401  (declares the ops)
from .registry import (  # noqa: F401
    V,
    Expr,
    OpDef,
    Sample,
    all_ops,
    broadcast,
    get_op,
    public_ops,
)
