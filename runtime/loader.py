"""Load a generated module from a path or from source text."""

from __future__ import annotations

import hashlib
import importlib.util
import types
from pathlib import Path


def load_module(path: str | Path, name: str | None = None) -> types.ModuleType:
    """Import the generated module at ``path`` (not added to ``sys.modules``)."""
    p = Path(path)
    mod_name = name or f"bpc_generated_{p.stem}"
    spec = importlib.util.spec_from_file_location(mod_name, p)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {p}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_source(source: str, name: str = "model") -> types.ModuleType:
    """Execute generated source (from our own codegen) as a fresh module."""
    digest = hashlib.sha256(source.encode()).hexdigest()[:12]
    module = types.ModuleType(f"bpc_generated_{name}_{digest}")
    module.__file__ = f"<bpc:{name}>"
    code = compile(source, module.__file__, "exec")
    exec(code, module.__dict__)  # noqa: S102 - our codegen's output, not spec text
    return module

