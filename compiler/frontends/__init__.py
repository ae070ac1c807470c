"""Front ends: every way into bpc ends as a :class:`~compiler.spec.Spec`.

A front end reads one kind of source (a Python file, an ONNX model) and
returns a :class:`Source`: the spec it lowers to, the text shown in the
generated module's header and comments, and the path to print. The rest of the
pipeline (lowering, autodiff, passes, codegen, checks) is the same for all.

Front ends are chosen by file suffix (``FRONTENDS``) and imported only when
used, so an optional front end's library (``onnx``) is needed only by its
users. JSON specs and IR dumps are the pipeline's own format and need none.

A front end's signature::

    load(path: Path, options: CompileOptions) -> Source

It must never execute the source, and every mistake in it is a ``BpcError``
whose location names the file and, where there is one, ``line:col``.
Options that only front ends read: ``options.fn`` (which function of a Python
file), ``options.loss``, ``options.wrt`` and ``options.shapes``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SpecError

# suffix -> "module:function", imported on first use
FRONTENDS: dict[str, str] = {".py": ".python:load", ".onnx": ".onnx_model:load"}


@dataclass(frozen=True)
class Source:
    """What a front end gives the pipeline."""

    spec: Any  # compiler.spec.Spec
    text: str  # the source text, for the module header and statement comments
    path: str  # the path as shown in messages and headers
    # for each of spec.nodes: (location such as "net.py:12", the source text shown for it)
    node_sources: tuple[tuple[str, str], ...] = ()


def frontend_for(path: str | Path):
    """The ``load`` function for ``path``'s suffix, or ``None`` (a JSON spec or IR dump)."""
    target = FRONTENDS.get(Path(path).suffix.lower())
    if target is None:
        return None
    module, _, func = target.partition(":")
    try:
        mod = importlib.import_module(module, __name__)
    except ImportError as e:  # an optional front end whose library is missing
        raise SpecError(f"cannot read {Path(path).suffix} files: {e}", str(path)) from None
    return getattr(mod, func)
