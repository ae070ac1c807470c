"""The JSON spec model (format v1) and its validation.

A spec declares inputs and parameters, the computation (op nodes, expression
strings, or the ``mlp`` shorthand), the loss, extra outputs and ``wrt``: the
names to differentiate with respect to. See ``docs/spec.md``.

Validation happens in two layers:

* structure (types, required keys, unknown keys) by the pydantic models below;
  their errors are turned into :class:`SpecError` with a JSON path such as
  ``nodes[3].inputs[1]``;
* meaning (names resolve, shapes fit, no cycles) while lowering to IR, in
  :mod:`compiler.lower`, which reports the same kind of paths.

The JSON Schema published in ``compiler/schema/spec.schema.json`` is generated
from these models (``python -m bpc.compiler.spec --schema``).
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PlainValidator,
    StrictBool,
    StrictInt,
    Tag,
    ValidationError,
    WithJsonSchema,
    model_validator,
)

from .errors import SpecError
from .names import MAX_NAME_LENGTH, NAME_PATTERN, check_name, display, name_problem

__all__ = ["MAX_NAME_LENGTH", "check_name"]  # re-exported: the rule lives in compiler.names

MAX_SEED = 2**63 - 1
MAX_CLASSES = 100_000_000
MAX_DIM_SIZE = 1_000_000  # example size of a symbolic dim


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Initializer(_Model):
    """A named initializer; random ones draw from ``init_params(seed)``'s generator."""

    kind: Literal["zeros", "ones", "normal", "uniform", "glorot_uniform"]
    std: float = Field(1.0, gt=0, description="standard deviation for 'normal'", allow_inf_nan=False)
    low: float = Field(-1.0, description="lower bound for 'uniform'", allow_inf_nan=False)
    high: float = Field(1.0, description="upper bound for 'uniform'", allow_inf_nan=False)
    seed: Optional[Annotated[StrictInt, Field(ge=0, le=MAX_SEED)]] = Field(
        None,
        description="a seed of this initializer's own: its values are then fixed, whatever "
        "seed init_params is given (default: draw from init_params' generator)",
    )

    @model_validator(mode="after")
    def _bounds(self) -> "Initializer":
        if not self.low < self.high:
            raise ValueError("'low' must be less than 'high'")
        return self


Dim = Annotated[StrictInt, Field(ge=1)]


def _valid_name(v: str) -> str:
    problem = name_problem(v)
    if problem is not None:
        raise ValueError(problem)
    return v


def _shape_entry(v: Any) -> Any:
    """A size (a positive int) or a symbolic dim name (the name rule)."""
    if isinstance(v, bool) or not isinstance(v, (int, str)):
        raise ValueError("expected a positive size or a dim name")
    if isinstance(v, int):
        if v < 1:
            raise ValueError("a size must be greater than or equal to 1")
        return v
    return _valid_name(v)


_NAME_SCHEMA = {"type": "string", "pattern": f"^{NAME_PATTERN}$", "maxLength": MAX_NAME_LENGTH}
# A name following the rule of compiler.names (checked by a validator; the
# schema's pattern is the rule's shape, without the reserved words).
Name = Annotated[str, AfterValidator(_valid_name), WithJsonSchema(_NAME_SCHEMA)]
ShapeEntry = Annotated[
    Union[int, str],
    PlainValidator(_shape_entry),
    WithJsonSchema({"anyOf": [{"type": "integer", "minimum": 1}, _NAME_SCHEMA]}),
]


class TensorDecl(_Model):
    """An input or a parameter: a named array of a fixed shape."""

    name: str
    shape: list[ShapeEntry] = Field(
        description="array shape; [] for a scalar; inputs may use a named (symbolic) "
        "dimension such as \"batch\" whose size is set at run time"
    )
    value: Any = Field(
        None,
        description="initial value: a number, or nested lists of the declared shape "
        "(a flat list of the same size is accepted and reshaped)",
    )
    init: Initializer | None = Field(None, description="named initializer (params)")
    classes: Annotated[StrictInt, Field(ge=1, le=MAX_CLASSES)] | None = Field(
        None, description="inputs holding integer class labels in [0, classes): example "
        "inputs draw labels instead of normal values"
    )
    doc: str = ""


class OpNode(_Model):
    """One op applied to named values: ``{"name": "z1", "op": "matmul", "inputs": ["W1", "x"]}``."""

    name: str
    op: str
    inputs: list[str]
    attrs: dict[str, Any] = Field(default_factory=dict)
    doc: str = ""


def _node_kind(v: Any) -> str:
    return "expression" if isinstance(v, str) else "op-node"


NodeItem = Annotated[
    Union[Annotated[str, Tag("expression")], Annotated[OpNode, Tag("op-node")]],
    Discriminator(_node_kind),
]
_UNION_TAGS = {"expression", "op-node"}


class MLP(_Model):
    """Shorthand for a fully connected network; lowers to ordinary nodes.

    Row layout: ``h = act(h @ w_k + b_k)`` with ``x`` of shape ``[batch, n0]``,
    ``w_k`` ``[n_{k-1}, n_k]`` and ``b_k`` ``[n_k]``. Column layout:
    ``h = act(w_k @ h + b_k)`` with ``x`` ``[n0, batch]``, ``w_k``
    ``[n_k, n_{k-1}]`` and ``b_k`` ``[n_k, 1]``.
    """

    sizes: list[Dim] = Field(min_length=2)
    activation: str = "sigmoid"
    output_activation: str = "linear"
    loss: Literal["sse", "mse", "softmax_cross_entropy", "bce"] = "sse"
    labels: Literal["index", "onehot"] = Field(
        "index", description="softmax_cross_entropy targets: integer class labels or one-hot rows"
    )
    layout: Literal["row", "column"] = "row"
    batch: ShapeEntry = 1
    bias: StrictBool = True
    input: str = "x"
    target: str = "y"
    weight_prefix: str = "w"
    bias_prefix: str = "b"
    init: Initializer = Initializer(kind="glorot_uniform")


class Spec(_Model):
    """A network: what it computes, its loss, and what to differentiate."""

    bpc: Literal[1] = Field(1, description="spec format version")
    name: str | None = Field(None, description="module name; defaults to the file name")
    description: str = ""
    inputs: list[TensorDecl] = Field(default_factory=list)
    params: list[TensorDecl] = Field(default_factory=list)
    mlp: MLP | None = None
    nodes: list[NodeItem] = Field(default_factory=list)
    loss: str | None = Field(
        None, description="name of the loss value (exactly one element)"
    )
    outputs: list[str] = Field(default_factory=list)
    wrt: list[str] | None = Field(
        None, description="names to differentiate; default: every param"
    )
    seed: StrictInt = Field(0, ge=0, le=MAX_SEED, description="default seed of init_params")
    emit: list[Literal["forward", "value_and_grad", "jvp", "vjp", "hvp", "jacobian", "hessian"]] | None = Field(
        None,
        description="functions the module has (forward is always there); default: forward and value_and_grad",
    )
    dims: dict[Name, Annotated[StrictInt, Field(ge=1, le=MAX_DIM_SIZE)]] = Field(
        default_factory=dict,
        description="example sizes of symbolic dims, used by example_inputs (default 1)",
    )


# ---------------------------------------------------------------- loading


def _reject_constant(token: str) -> float:
    raise ValueError(f"{token} is not a valid JSON number")


_IDENT_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)


def json_path(parts) -> str:
    """A location from JSON path parts, always one printable line.

    Keys that are not plain identifiers (user keys: a dims name, a dump's
    values key) are quoted and escaped: ``dims["a\\n"]``.
    """
    out = ""
    for p in parts:
        if isinstance(p, int) and not isinstance(p, bool):
            out += f"[{p}]"
        elif isinstance(p, str) and _IDENT_KEY.fullmatch(p) and len(p) <= 64:
            out += ("." if out else "") + p
        else:
            key = json.dumps(str(p))
            if len(key) > 40:
                key = key[:36] + '..."'
            out += f"[{key}]"
    return out


# JSON numbers bpc refuses: integers of more than 300 digits (no float holds
# them) and floats that overflow to infinity (1e400).
MAX_JSON_INT_DIGITS = 300
_SUSPICIOUS_NUMBER = re.compile(r"\d{%d,}|[eE][+-]?\d{3,}" % (MAX_JSON_INT_DIGITS + 1))


class _OutOfRange:
    """Stands for an out-of-range JSON number while its location is found."""

    __slots__ = ("token",)

    def __init__(self, token: str):
        self.token = token


def _find(obj: Any, parts: tuple = ()) -> tuple | None:
    stack = [(obj, parts)]
    while stack:
        o, at = stack.pop()
        if isinstance(o, _OutOfRange):
            return at
        if isinstance(o, dict):
            stack.extend((v, at + (k,)) for k, v in reversed(list(o.items())))
        elif isinstance(o, list):
            stack.extend((v, at + (i,)) for i, v in reversed(list(enumerate(o))))
    return None


def parse_json(text: str, source: str = "spec") -> Any:
    """Parse JSON text; errors carry the line and column (or the JSON path).

    NaN/Infinity tokens, integers of more than 300 digits and floats that
    overflow (``1e400``) are errors: every number bpc reads is a finite float.
    """
    source = display(source)
    out_of_range: list[str] = []
    hooks: dict[str, Any] = {}
    if _SUSPICIOUS_NUMBER.search(text):  # rare: parse with checking hooks

        def parse_int(s: str) -> Any:
            if len(s.lstrip("-")) > MAX_JSON_INT_DIGITS:
                out_of_range.append(s)
                return _OutOfRange(s)
            return int(s)

        def parse_float(s: str) -> Any:
            f = float(s)
            if not math.isfinite(f):
                out_of_range.append(s)
                return _OutOfRange(s)
            return f

        hooks = {"parse_int": parse_int, "parse_float": parse_float}
    try:
        data = json.loads(text, parse_constant=_reject_constant, **hooks)
    except json.JSONDecodeError as e:
        raise SpecError(
            f"invalid JSON: {e.msg}", f"{source}: line {e.lineno}, column {e.colno}"
        ) from None
    except ValueError as e:  # NaN / Infinity tokens
        raise SpecError(f"invalid JSON: {e}", source) from None
    except RecursionError:
        raise SpecError("invalid JSON: nested too deeply", source) from None
    if out_of_range:
        token = out_of_range[0]
        shown = token if len(token) <= 24 else f"{token[:12]}...({len(token)} characters)"
        at = _find(data)
        raise SpecError(
            f"number {shown} is out of range (bpc reads numbers as finite 64-bit floats)",
            json_path(at) if at else source,
        )
    return data


def _format_validation_error(err: ValidationError, top: str = "spec") -> SpecError:
    errors = err.errors()
    # Prefer the most specific error (deepest location).
    e = max(errors, key=lambda x: len(x["loc"]))
    loc = [p for p in e["loc"] if p not in _UNION_TAGS]
    msg = e["msg"]
    if loc and loc[-1] == "[key]":  # a dict key: the location names the key
        loc = loc[:-1]
    where = json_path(loc) if loc else top
    if e["type"] == "extra_forbidden":
        msg = f"unknown key {display(loc[-1], 40)!r}"
        where = json_path(loc[:-1]) if len(loc) > 1 else top
    elif e["type"] == "missing":
        msg = f"missing required key '{loc[-1]}'"
        where = json_path(loc[:-1]) if len(loc) > 1 else top
    elif e["type"] == "literal_error":
        msg = f"expected {e['ctx'].get('expected')}, got {display(repr(e['input']), 60)}"
    elif e["type"] == "value_error" and "error" in e.get("ctx", {}):
        msg = str(e["ctx"]["error"])
    return SpecError(msg, where)


def spec_from_data(data: Any) -> Spec:
    if not isinstance(data, dict):
        raise SpecError("a spec must be a JSON object", "spec")
    try:
        return Spec.model_validate(data)
    except ValidationError as e:
        raise _format_validation_error(e) from None
    except RecursionError:
        raise SpecError("nested too deeply", "spec") from None


MAX_SPEC_BYTES = 64 * 1024 * 1024
_BOMS = {b"\xff\xfe\x00\x00": "UTF-32", b"\x00\x00\xfe\xff": "UTF-32", b"\xff\xfe": "UTF-16", b"\xfe\xff": "UTF-16"}


def read_bytes(file: str | Path, what: str = "spec", limit: int | None = None) -> bytes:
    """The bytes of a regular file, at most ``limit`` (default MAX_SPEC_BYTES)
    whatever the file system says.

    Only regular files are read (a device such as /dev/zero or a FIFO is an
    error, never a hang).
    """
    limit = MAX_SPEC_BYTES if limit is None else limit
    name = os.fspath(file)
    shown = display(name)
    try:
        st = os.stat(name)
        if stat.S_ISDIR(st.st_mode):
            raise SpecError(f"is a directory, expected a {what} file", shown)
        if not stat.S_ISREG(st.st_mode):
            raise SpecError(f"not a regular file (a device, FIFO or socket), expected a {what} file", shown)
        if st.st_size > limit:
            raise SpecError(f"{what} larger than {limit // 2**20} MiB", shown)
        # O_NONBLOCK: should the path become a FIFO after the check, open does not wait.
        fd = os.open(name, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise SpecError(f"not a regular file, expected a {what} file", shown)
            data = f.read(limit + 1)
    except (FileNotFoundError, NotADirectoryError):
        raise SpecError("no such file", shown) from None
    except ValueError:  # e.g. an embedded NUL in the path
        raise SpecError("invalid file name", shown) from None
    except OSError as e:
        raise SpecError(f"cannot read {what}: {e.strerror or e}", shown) from None
    if len(data) > limit:
        raise SpecError(f"{what} larger than {limit // 2**20} MiB", shown)
    return data


def read_text(file: str | Path, what: str = "spec") -> str:
    """The text of a spec (or IR dump) file: a regular file of UTF-8 text
    (see :func:`read_bytes`), at most MAX_SPEC_BYTES. A UTF-8 byte order mark
    is skipped.
    """
    shown = display(os.fspath(file))
    data = read_bytes(file, what)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    for bom, enc in _BOMS.items():
        if data.startswith(bom):
            raise SpecError(f"not UTF-8 text (a {enc} byte order mark): save the file as UTF-8", shown)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SpecError(f"not UTF-8 text ({e.reason} at byte {e.start})", shown) from None


def load_spec(file: str | Path) -> tuple[Spec, str]:
    """Read and validate a spec file. Returns the spec and its text."""
    text = read_text(file)
    spec = spec_from_data(parse_json(text, str(file)))
    return spec, text


MAX_LITERAL_ELEMENTS = 1_000_000


def literal_array(value: Any, shape: tuple[int, ...], where: str):
    """Turn a spec literal into a float64 array of ``shape``."""
    import numpy as np

    if math.prod(shape) > MAX_LITERAL_ELEMENTS:
        raise SpecError(
            f"a literal value of {math.prod(shape):,} elements is over the limit of "
            f"{MAX_LITERAL_ELEMENTS:,}; use 'init' or pass the array at run time",
            where,
        )

    def bad(msg: str):
        return SpecError(msg, where)

    def check(v: Any, depth: int) -> None:
        if depth > 32:
            raise bad("literal nested too deeply")
        if isinstance(v, list):
            for x in v:
                check(x, depth + 1)
        elif isinstance(v, bool) or not isinstance(v, (int, float)):
            raise bad(f"expected a number or a list of numbers, got {v!r:.40}")
        elif isinstance(v, int) and abs(v) > 1e308:
            raise bad("number out of range (bpc reads numbers as finite 64-bit floats)")
        elif not math.isfinite(v):
            raise bad("NaN and infinity are not allowed in values")

    check(value, 0)
    try:
        arr = np.asarray(value, dtype=np.float64)
    except ValueError:
        raise bad("ragged nested lists: rows of different lengths") from None
    if arr.shape == tuple(shape):
        return arr
    size = math.prod(shape)
    if arr.ndim <= 1 and arr.size == size:
        return arr.reshape(shape)
    if arr.ndim == 0:
        return np.full(shape, float(arr))
    raise bad(f"value has shape {list(arr.shape)}, expected {list(shape)}")


def json_schema() -> dict:
    schema = Spec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "bpc network spec (format v1)"
    return schema


SCHEMA_PATH = Path(__file__).parent / "schema" / "spec.schema.json"


def schema_text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":  # python -m bpc.compiler.spec --schema
    import sys

    if sys.argv[1:] == ["--schema"]:
        SCHEMA_PATH.parent.mkdir(exist_ok=True)
        SCHEMA_PATH.write_text(schema_text())
        print(f"wrote {SCHEMA_PATH}")
