"""Array namespaces for array-API modules: by name, and NumPy copies back.

Used by ``bpc check --namespace`` and the tests of the array-API target. The
namespaces are optional extras; asking for one that is not installed is a
clear ``BpcError``, never an ImportError.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from ..compiler.errors import BpcError

# name -> (module to import, pip extra that brings it)
NAMESPACES = {
    "numpy": ("numpy", None),
    "array_api_strict": ("array_api_strict", "bpc[array-api]"),
    "torch": ("torch", "torch; it is no dependency of bpc"),
}


def get_namespace(name: str) -> Any:
    """The module ``name`` (numpy, array_api_strict or torch)."""
    if name not in NAMESPACES:
        raise BpcError(f"unknown namespace {name!r} (expected {', '.join(NAMESPACES)})", "--namespace")
    module, extra = NAMESPACES[name]
    try:
        return importlib.import_module(module)
    except ImportError:
        raise BpcError(f"namespace {name!r} is not installed (install {extra})", "--namespace") from None


def from_numpy(arrays: dict[str, Any], xp: Any) -> dict[str, Any]:
    """Each value as an array of ``xp`` (dtypes kept; a copy where needed)."""
    return {k: xp.asarray(np.asarray(v)) for k, v in arrays.items()}


def to_numpy(x: Any) -> np.ndarray:
    """A NumPy copy of an array of any namespace (through DLPack), or of a number."""
    if isinstance(x, (np.ndarray, np.generic, int, float, bool)):
        return np.asarray(x)
    if hasattr(x, "__dlpack__"):
        if hasattr(x, "detach"):  # a torch tensor: off the autograd graph and the GPU
            x = x.detach().cpu()
        return np.from_dlpack(x)
    return np.asarray(x)
