"""The one exception hierarchy for user-facing errors.

Every error carries a *location*: a JSON path into the spec such as
``nodes[3].inputs[1]`` (or ``line 4, column 7`` for invalid JSON). The CLI
prints ``error: <location>: <message>`` and exits with code 2. Internal bugs
raise ordinary Python exceptions instead.
"""

from __future__ import annotations


class BpcError(Exception):
    """A user mistake, reported in one line with where it is."""

    def __init__(self, message: str, location: str | None = None):
        # One line, always: a newline in a message would break the contract,
        # and other control characters (terminal escapes) are shown escaped.
        self.message = _printable(" ".join(str(message).split()))
        self.location = None if location is None else _printable(str(location))
        super().__init__(self.one_line())

    def one_line(self) -> str:
        return f"{self.location}: {self.message}" if self.location else self.message


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class SpecError(BpcError):
    """The spec is not well formed (JSON, schema, names, references)."""


class ExprError(SpecError):
    """An expression string uses syntax outside the whitelisted grammar."""


class ShapeError(BpcError):
    """Shapes do not fit an op's rule (e.g. not broadcastable)."""


class GraphError(BpcError):
    """The dataflow graph is malformed (cycle, bad loss, bad wrt)."""


class OutputError(BpcError):
    """The output location cannot be written."""


def path(*parts: str | int) -> str:
    """Format a JSON path: path("nodes", 3, "inputs", 1) -> 'nodes[3].inputs[1]'."""
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + p
    return out
