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
from these models (``python -m compiler.spec --schema``).
"""

from __future__ import annotations

import json
import keyword
import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictInt,
    Tag,
    ValidationError,
    model_validator,
)

from .errors import SpecError, path

# Names that user text may not take because generated code refers to them.
RESERVED_NAMES = frozenset({"np", "numpy"})
NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
MAX_NAME_LENGTH = 64


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Initializer(_Model):
    """A named initializer; random ones draw from ``init_params(seed)``'s generator."""

    kind: Literal["zeros", "ones", "normal", "uniform", "glorot_uniform"]
    std: float = Field(1.0, gt=0, description="standard deviation for 'normal'", allow_inf_nan=False)
    low: float = Field(-1.0, description="lower bound for 'uniform'", allow_inf_nan=False)
    high: float = Field(1.0, description="upper bound for 'uniform'", allow_inf_nan=False)
    seed: Optional[Annotated[StrictInt, Field(ge=0)]] = Field(
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
SymDim = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,31}$")]


class TensorDecl(_Model):
    """An input or a parameter: a named array of a fixed shape."""

    name: str
    shape: list[Union[Dim, SymDim]] = Field(
        description="array shape; [] for a scalar; inputs may use a named (symbolic) "
        "dimension such as \"batch\" whose size is set at run time"
    )
    value: Any = Field(
        None,
        description="initial value: a number, or nested lists of the declared shape "
        "(a flat list of the same size is accepted and reshaped)",
    )
    init: Initializer | None = Field(None, description="named initializer (params)")
    classes: Dim | None = Field(
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
    batch: Union[Dim, SymDim] = 1
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
    seed: StrictInt = Field(0, ge=0, description="default seed of init_params")
    dims: dict[str, Annotated[StrictInt, Field(ge=1, le=1_000_000)]] = Field(
        default_factory=dict,
        description="example sizes of symbolic dims, used by example_inputs (default 1)",
    )


# ---------------------------------------------------------------- loading


def _reject_constant(token: str) -> float:
    raise ValueError(f"{token} is not a valid JSON number")


def parse_json(text: str, source: str = "spec") -> Any:
    """Parse JSON text; errors carry the line and column."""
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as e:
        raise SpecError(
            f"invalid JSON: {e.msg}", f"{source}: line {e.lineno}, column {e.colno}"
        ) from None
    except ValueError as e:  # NaN / Infinity tokens
        raise SpecError(f"invalid JSON: {e}", source) from None
    except RecursionError:
        raise SpecError("invalid JSON: nested too deeply", source) from None


def _format_validation_error(err: ValidationError) -> SpecError:
    errors = err.errors()
    # Prefer the most specific error (deepest location).
    e = max(errors, key=lambda x: len(x["loc"]))
    loc = [p for p in e["loc"] if p not in _UNION_TAGS]
    where = path(*loc) if loc else "spec"
    msg = e["msg"]
    if e["type"] == "extra_forbidden":
        msg = f"unknown key '{loc[-1]}'"
        where = path(*loc[:-1]) if len(loc) > 1 else "spec"
    elif e["type"] == "missing":
        msg = f"missing required key '{loc[-1]}'"
        where = path(*loc[:-1]) if len(loc) > 1 else "spec"
    elif e["type"] == "literal_error":
        msg = f"expected {e['ctx'].get('expected')}, got {e['input']!r}"
    return SpecError(msg, where)


def spec_from_data(data: Any) -> Spec:
    if not isinstance(data, dict):
        raise SpecError("a spec must be a JSON object", "spec")
    try:
        return Spec.model_validate(data)
    except ValidationError as e:
        raise _format_validation_error(e) from None


MAX_SPEC_BYTES = 64 * 1024 * 1024


def read_text(file: str | Path) -> str:
    p = Path(file)
    try:
        if p.is_dir():
            raise SpecError("is a directory, expected a spec file", str(file))
        if p.stat().st_size > MAX_SPEC_BYTES:
            raise SpecError(f"spec larger than {MAX_SPEC_BYTES // 2**20} MiB", str(file))
        return p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError("no such file", str(file)) from None
    except UnicodeDecodeError as e:
        raise SpecError(f"not UTF-8 text ({e.reason} at byte {e.start})", str(file)) from None
    except OSError as e:
        raise SpecError(f"cannot read spec: {e.strerror}", str(file)) from None


def load_spec(file: str | Path) -> tuple[Spec, str]:
    """Read and validate a spec file. Returns the spec and its text."""
    text = read_text(file)
    spec = spec_from_data(parse_json(text, str(file)))
    return spec, text


def check_name(name: str, where: str) -> str:
    """A user name becomes a Python identifier in generated code: check it."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise SpecError(
            f"invalid name {name!r}: expected a letter followed by letters, "
            "digits or '_' (ASCII)",
            where,
        )
    if len(name) > MAX_NAME_LENGTH:
        raise SpecError(f"name longer than {MAX_NAME_LENGTH} characters", where)
    if keyword.iskeyword(name) or name in RESERVED_NAMES:
        raise SpecError(f"name {name!r} is reserved", where)
    return name


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


if __name__ == "__main__":  # python -m compiler.spec --schema
    import sys

    if sys.argv[1:] == ["--schema"]:
        SCHEMA_PATH.parent.mkdir(exist_ok=True)
        SCHEMA_PATH.write_text(schema_text())
        print(f"wrote {SCHEMA_PATH}")
