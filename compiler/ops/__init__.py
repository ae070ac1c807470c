"""The op registry. Importing this package declares every op."""

from . import core, nn  # noqa: F401  (declare the ops)
from .registry import (  # noqa: F401
    V,
    OpDef,
    Sample,
    all_ops,
    broadcast,
    get_op,
    public_ops,
)
