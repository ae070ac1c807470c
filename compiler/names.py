"""The one rule for names that reach generated code or the file system.

Every name a user (or an IR dump) gives becomes a Python identifier in a
generated module, and the module name becomes a file name. One rule covers
them all: spec inputs, params, nodes, dims, outputs and ``wrt``; the module
name (spec ``name``, ``--name``, or the spec's file name); and in IR dumps every
node id and every name in params, inputs, wrt, outputs, grads, loss, dims and
classes. A valid name

* matches ``[A-Za-z][A-Za-z0-9_]*`` as a whole (``re.fullmatch``, ASCII only:
  no trailing newline, no unicode look-alikes, no leading underscore);
* is not a Python keyword or soft keyword (``match``, ``case``, ``type``, ``_``);
* is not the name of a builtin (``print``, ``sum``, ``input``, ...);
* is not ``np`` or ``numpy`` (generated code imports NumPy as ``np``; a module
  named ``numpy`` would shadow NumPy beside it);
* does not start with ``_bpc`` (reserved for the compiler);
* has at most 64 characters.

Names the compiler derives from user names (``g_<name>`` gradients,
``<name>_<op>_2`` temporaries) keep the rule's form; in IR dumps, node ids may
be up to :data:`MAX_NODE_ID_LENGTH` characters for that reason.
"""

from __future__ import annotations

import builtins
import keyword
import re

from .errors import SpecError

NAME_PATTERN = r"[A-Za-z][A-Za-z0-9_]*"
_NAME_RE = re.compile(NAME_PATTERN, re.ASCII)
MAX_NAME_LENGTH = 64
# Node ids in IR dumps: derived names (g_<64-char name>_<op>_<k>) are longer.
MAX_NODE_ID_LENGTH = 255

KEYWORDS = frozenset(keyword.kwlist)
# keyword.softkwlist varies by Python version (3.12 added 'type').
SOFT_KEYWORDS = frozenset(keyword.softkwlist) | {"_", "case", "match", "type"}
BUILTIN_NAMES = frozenset(dir(builtins))
RESERVED_NAMES = frozenset({"np", "numpy"})
RESERVED_PREFIX = "_bpc"


def name_problem(name: object, max_length: int = MAX_NAME_LENGTH) -> str | None:
    """Why ``name`` breaks the rule, or None when it is a valid name."""
    if not isinstance(name, str):
        return f"a name must be a string, got {type(name).__name__}"
    if len(name) > max_length:
        return f"name {name[:20]!r}... is longer than {max_length} characters"
    if not _NAME_RE.fullmatch(name):
        return (
            f"invalid name {name!r}: expected an ASCII letter followed by ASCII letters, "
            "digits or '_'"
        )
    if name in KEYWORDS or name in SOFT_KEYWORDS:
        return f"name {name!r} is reserved (a Python keyword)"
    if name in BUILTIN_NAMES:
        return f"name {name!r} is reserved (a Python builtin)"
    if name in RESERVED_NAMES:
        return f"name {name!r} is reserved (generated code imports NumPy as np)"
    if name.startswith(RESERVED_PREFIX):
        return f"name {name!r} is reserved (the prefix {RESERVED_PREFIX} is the compiler's)"
    return None


def is_valid_name(name: object, max_length: int = MAX_NAME_LENGTH) -> bool:
    return name_problem(name, max_length) is None


def check_name(name: object, where: str | None, max_length: int = MAX_NAME_LENGTH) -> str:
    """``name`` if it follows the rule; else a :class:`SpecError` at ``where``."""
    problem = name_problem(name, max_length)
    if problem is not None:
        raise SpecError(problem, where)
    return name  # type: ignore[return-value]


def module_name_from_file(path: str) -> str:
    """The module name a spec file gives by default: its stem, as is.

    Raises a SpecError (suggesting ``--name``) when the stem is not a valid
    name: a file called ``numpy.json`` or ``my-net.json`` needs an explicit name.
    """
    from pathlib import PurePath

    stem = PurePath(path).stem
    problem = name_problem(stem)
    if problem is not None:
        shown = display(path)
        raise SpecError(
            f"the module name taken from the file name is not usable ({problem}); "
            "give one with --name NAME or the spec's \"name\" key",
            shown,
        )
    return stem


def display(text: str, limit: int = 200) -> str:
    """``text`` (a path, a key) shown on one line: control characters escaped."""
    out = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))
    return out if len(out) <= limit else out[: limit - 3] + "..."
