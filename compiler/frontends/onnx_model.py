"""The ONNX front end: an ONNX model (a ``.onnx`` file or a ``ModelProto``) to a spec.

Needs the ``onnx`` package (``pip install 'bpc[onnx]'``); nothing else in bpc
does. The model is read as data only:

* the file is read like a spec (a regular file, at most ``MAX_MODEL_BYTES``)
  and parsed with ``ModelProto.ParseFromString``; ``onnx.load`` is never
  called, so no external data is read behind bpc's back;
* external tensor data is read by bpc itself, only from regular files inside
  the model's folder (``..``, absolute paths and links leading out are errors);
* every declared shape is checked against bpc's limits before anything is
  allocated, and a tensor's bytes must match its declared shape;
* ONNX names become identifiers by a fixed rule (:class:`Namer`), never code;
  original names reach the module only as escaped text (``ascii``) in comments
  and docstrings.

Each ONNX node becomes one expression string of the spec (an op node where an
attribute holds a symbolic dim), with the node's op type and name in a comment,
so the generated module's comments say which node a line comes from.
Initializers become params with their values (differentiated by default);
``Constant`` nodes and integer initializers are static values, used where ONNX
wants constants (shapes, axes, slice bounds) or as fixed params. Shapes are
tracked in a scratch IR graph with bpc's own shape rules as nodes are added,
so a shape error names the ONNX node. See ``docs/onnx.md``.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import stat
from pathlib import Path
from typing import Any

import numpy as np

try:
    import onnx
    from onnx import TensorProto, helper, numpy_helper
except ImportError as e:  # pragma: no cover - the front end's own message
    raise ImportError(f"{e.msg}; install it with pip install 'bpc[onnx]'") from None

from ..errors import BpcError, SpecError
from ..ir import MAX_ELEMENTS, Graph
from ..lower import LOSS_KINDS, loss_expression
from ..names import display, name_problem
from ..ops.registry import INT, broadcast
from ..options import CompileOptions
from ..spec import OpNode, Spec, TensorDecl, read_bytes
from . import Source

MAX_MODEL_BYTES = 1024 * 1024 * 1024
MAX_NAME_CHARS = 56  # room for the _2, _t suffixes within the 64-character rule
MAX_SHOWN = 60
MAX_DOC_CHARS = 2000

SUPPORTED = (
    "Abs", "Add", "Cast", "Clip", "Concat", "Constant", "Cos", "Div", "Elu", "Equal", "Erf", "Exp",
    "Expand", "Flatten", "Gelu", "Gemm", "Greater", "Identity", "LeakyRelu", "Less", "Log",
    "LogSoftmax", "MatMul", "Max", "Mean", "Min", "Mul", "Neg", "NegativeLogLikelihoodLoss", "Pow",
    "ReduceLogSumExp", "ReduceMax", "ReduceMean", "ReduceMin", "ReduceSum", "Relu", "Reshape",
    "Sigmoid", "Sin", "Slice", "Softmax", "SoftmaxCrossEntropyLoss", "Softplus", "Sqrt", "Squeeze",
    "Sub", "Sum", "Tanh", "Transpose", "Unsqueeze", "Where",
)

FLOAT_TYPES = {TensorProto.FLOAT: "float32", TensorProto.DOUBLE: "float64"}
INT_TYPES = {
    TensorProto.INT64: np.int64, TensorProto.INT32: np.int32, TensorProto.INT16: np.int16,
    TensorProto.INT8: np.int8, TensorProto.UINT8: np.uint8,
}
ELEM_BYTES = {
    TensorProto.FLOAT: 4, TensorProto.DOUBLE: 8, TensorProto.FLOAT16: 2, TensorProto.INT64: 8,
    TensorProto.INT32: 4, TensorProto.INT16: 2, TensorProto.INT8: 1, TensorProto.UINT8: 1,
    TensorProto.BOOL: 1,
}


class Unsupported(SpecError):
    """A supported op used with an attribute, dtype or form bpc does not compile.

    ``reason`` is a short key (the conformance run groups skipped cases by it).
    """

    def __init__(self, reason: str, message: str, location: str | None = None):
        super().__init__(message, location)
        self.reason = reason


# ------------------------------------------------------------------ names


def readable(name: str) -> str:
    """An ONNX name as a readable identifier stem (not yet unique or checked).

    ``/net/net.0/Gemm_output_0`` -> ``net_0_Gemm``; ``net.0.weight`` ->
    ``net_0_weight``: PyTorch's scope prefixes repeated in the next path part are
    dropped, then ``_output_0``, then every run of other characters becomes ``_``.
    """
    parts = [p for p in name.split("/") if p]
    parts = [p for i, p in enumerate(parts) if not (i + 1 < len(parts) and parts[i + 1].startswith(p + "."))]
    text = re.sub(r"_output_0$", "", "_".join(parts))
    text = re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")
    if text and not ("A" <= text[0] <= "Z" or "a" <= text[0] <= "z"):
        text = "v" + text if text[0] == "_" else "v_" + text
    return text[:MAX_NAME_CHARS].rstrip("_")


class Namer:
    """ONNX names to valid, unique bpc names, deterministically (first come first named)."""

    def __init__(self) -> None:
        self.used: set[str] = set()
        self.of: dict[str, str] = {}

    def fresh(self, stem: str, fallback: str = "v") -> str:
        stem = readable(stem) or fallback
        if name_problem(stem) is not None:  # a keyword, builtin or np: one '_' more
            stem = stem + "_"
        name, k = stem, 2
        while name in self.used:
            name = f"{stem}_{k}"
            k += 1
        self.used.add(name)
        return name

    def name(self, onnx_name: str, fallback: str = "v") -> str:
        if onnx_name not in self.of:
            self.of[onnx_name] = self.fresh(onnx_name, fallback)
        return self.of[onnx_name]


def shown(name: str) -> str:
    """An ONNX name as escaped, quoted, one-line ASCII text (for messages and comments)."""
    text = name if len(name) <= MAX_SHOWN else name[: MAX_SHOWN - 3] + "..."
    return ascii(text)


# ------------------------------------------------------------------ reading


def parse_model(data: bytes, where: str) -> "onnx.ModelProto":
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as e:  # google.protobuf.message.DecodeError and friends
        raise SpecError(f"not a valid ONNX model (truncated or corrupt protobuf: {display(str(e), 80)})", where) from None
    if not model.HasField("graph") or not model.graph.output:
        raise SpecError("not a valid ONNX model (no graph with outputs)", where)
    return model


def _tensor_where(kind: str, i: int, name: str) -> str:
    return f"{kind} {i} {shown(name)}"


def _check_dims(dims, where: str) -> tuple[int, ...]:
    if len(dims) > 8:
        raise SpecError(f"more than 8 dimensions ({len(dims)})", where)
    size = 1
    for d in dims:
        if d < 0:
            raise SpecError(f"negative size {d} in shape {list(dims)}", where)
        size *= d
        if size > MAX_ELEMENTS:
            raise SpecError(f"shape {list(dims)} declares more than {MAX_ELEMENTS:,} elements", where)
    return tuple(int(d) for d in dims)


def _external_bytes(t: "onnx.TensorProto", base_dir: Path | None, where: str, expected: int) -> bytes:
    """A tensor's external data, read from a regular file inside ``base_dir`` only."""
    if base_dir is None:
        raise SpecError("external tensor data needs the model's file (compile the .onnx path)", where)
    info = {e.key: e.value for e in t.external_data}
    location = info.get("location", "")
    try:
        offset = int(info.get("offset", "0") or 0)
        length = int(info.get("length", str(expected)) or expected)
    except ValueError:
        raise SpecError("external data offset or length is not a number", where) from None
    if not location or "\x00" in location or os.path.isabs(location) or location.startswith(("/", "\\")):
        raise SpecError(f"external data location {shown(location)} must be a relative path inside the model's folder", where)
    if ".." in re.split(r"[\\/]", location):
        raise SpecError(f"external data location {shown(location)} leads outside the model's folder", where)
    root = os.path.realpath(base_dir)
    full = os.path.realpath(os.path.join(root, location))
    if os.path.commonpath([root, full]) != root:
        raise SpecError(f"external data location {shown(location)} leads outside the model's folder", where)
    if offset < 0 or length != expected:
        raise SpecError(f"external data length {length} does not match the shape ({expected} bytes)", where)
    try:
        st = os.stat(full)
        if not stat.S_ISREG(st.st_mode):
            raise SpecError(f"external data {shown(location)} is not a regular file", where)
        if offset + length > st.st_size:
            raise SpecError(f"external data {shown(location)} is shorter than offset + length", where)
        fd = os.open(full, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise SpecError(f"external data {shown(location)} is not a regular file", where)
            f.seek(offset)
            data = f.read(length)
    except FileNotFoundError:
        raise SpecError(f"external data {shown(location)}: no such file", where) from None
    except OSError as e:
        raise SpecError(f"cannot read external data {shown(location)}: {e.strerror or e}", where) from None
    if len(data) != length:
        raise SpecError(f"external data {shown(location)} is shorter than declared", where)
    return data


def tensor_array(t: "onnx.TensorProto", where: str, base_dir: Path | None) -> np.ndarray:
    """A TensorProto's values, with its shape and size checked before any allocation."""
    dims = _check_dims(list(t.dims), where)
    n = math.prod(dims)
    if t.data_type not in ELEM_BYTES:
        name = TensorProto.DataType.Name(t.data_type) if t.data_type in TensorProto.DataType.values() else t.data_type
        raise Unsupported("tensor dtype", f"tensor type {name} is not supported", where)
    expected = n * ELEM_BYTES[t.data_type]
    if t.data_location == TensorProto.EXTERNAL:
        raw = _external_bytes(t, base_dir, where, expected)
        t = onnx.TensorProto.FromString(t.SerializeToString())
        t.ClearField("external_data")
        t.data_location = TensorProto.DEFAULT
        t.raw_data = raw
    if t.HasField("raw_data"):
        if len(t.raw_data) != expected:
            raise SpecError(f"tensor holds {len(t.raw_data)} bytes, its shape {list(dims)} needs {expected}", where)
    else:
        fields = ("float_data", "double_data", "int32_data", "int64_data")
        count = sum(len(getattr(t, f)) for f in fields)
        if count != n:
            raise SpecError(f"tensor holds {count} values, its shape {list(dims)} needs {n}", where)
    try:
        return np.array(numpy_helper.to_array(t))
    except Exception as e:
        raise SpecError(f"cannot read tensor: {display(str(e), 80)}", where) from None


# ------------------------------------------------------------------ conversion


def _opset(model) -> int:
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx"):
            return int(o.version)
    return 1


def _literal(v: float, where: str) -> str:
    v = float(v)
    if not math.isfinite(v):
        raise Unsupported("non-finite constant", "infinite or NaN constants are not supported", where)
    return repr(v)


class _Converter:
    def __init__(self, model, options: CompileOptions, base_dir: Path | None, source: str):
        self.model = model
        self.options = options
        self.base_dir = base_dir
        self.source = source
        self.opset = _opset(model)
        self.g = Graph(options.ir_dtype)  # scratch graph: shapes by bpc's rules
        self.names = Namer()
        self.dims = Namer()
        self.env: dict[str, str] = {}  # ONNX value -> bpc name
        self.static: dict[str, np.ndarray] = {}  # ONNX value -> constant array
        self.trainable: set[str] = set()  # initializers (ONNX names): params in wrt
        self.inputs: list[dict] = []
        self.params: list[TensorDecl] = []
        self.nodes: list[Any] = []
        self.labels: dict[str, int | None] = {}  # integer inputs (bpc names) -> classes
        self.lines: list[str] = []
        self.where = source

    # ---- errors
    def err(self, msg: str) -> SpecError:
        return SpecError(msg, self.where)

    def unsupported(self, reason: str, msg: str) -> Unsupported:
        return Unsupported(reason, msg, self.where)

    # ---- sources
    def declare_inputs(self) -> None:
        graph = self.model.graph
        for i, t in enumerate(graph.initializer):
            self.where = f"{self.source}: {_tensor_where('initializer', i, t.name)}"
            self.static[t.name] = tensor_array(t, self.where, self.base_dir)
            if t.data_type in FLOAT_TYPES or t.data_type == TensorProto.FLOAT16:
                self.trainable.add(t.name)
        for i, v in enumerate(graph.input):
            if v.name in self.static:  # older models list initializers as inputs too
                continue
            self.where = f"{self.source}: {_tensor_where('input', i, v.name)}"
            tt = v.type.tensor_type if v.type.HasField("tensor_type") else None
            if tt is None:
                raise self.unsupported("input type", "inputs must be tensors")
            name = self.names.name(v.name, "x")
            shape: list[int | str] = []
            if not tt.HasField("shape"):
                raise self.err("the input has no declared shape")
            for k, d in enumerate(tt.shape.dim):
                if d.HasField("dim_value"):
                    if d.dim_value == 0:
                        raise self.unsupported("empty tensor", f"size 0 at axis {k} (bpc needs sizes of at least 1)")
                    if d.dim_value < 0:
                        raise self.err(f"size {d.dim_value} at axis {k}")
                    shape.append(int(d.dim_value))
                else:
                    shape.append(self.dims.name(d.dim_param or f"{name}_dim{k}", "dim"))
            static = [d for d in shape if isinstance(d, int)]
            _check_dims(static, self.where)
            if len(shape) > 8:
                raise self.err("more than 8 dimensions")
            if tt.elem_type in FLOAT_TYPES or tt.elem_type in (TensorProto.FLOAT16, TensorProto.BOOL):
                dtype = None
                doc = f"ONNX input {shown(v.name)}" + (" (bool, as 0.0/1.0)" if tt.elem_type == TensorProto.BOOL else "")
            elif tt.elem_type in INT_TYPES:
                dtype = INT  # class labels: only losses may use them
                self.labels[name] = None
                doc = f"ONNX input {shown(v.name)} (integer class labels)"
            else:
                raise self.unsupported("input dtype", f"input type {TensorProto.DataType.Name(tt.elem_type)} is not supported")
            self.g.add("input", [], {"shape": tuple(shape)}, name=name, named=True, dtype=dtype)
            self.env[v.name] = name
            self.inputs.append({"name": name, "shape": shape, "doc": doc})

    def param(self, onnx_name: str, arr: np.ndarray, doc: str) -> str:
        name = self.names.name(onnx_name, "w")
        if arr.size > 1_000_000:
            raise self.err(f"a constant of {arr.size:,} elements is over bpc's limit of 1,000,000")
        arr = arr.astype(np.float64) if arr.dtype.kind in "biu" else arr
        if not np.all(np.isfinite(arr)):
            raise self.unsupported("non-finite constant", f"{doc} holds NaN or infinity")
        # nested lists: the spec stays JSON (bpc ir --stage spec); float32 values stay exact
        self.params.append(TensorDecl(name=name, shape=list(arr.shape), value=arr.tolist(), doc=doc))
        self.g.add("param", [], {"shape": tuple(arr.shape)}, name=name, named=True)
        self.env[onnx_name] = name
        return name

    # ---- operands
    def v(self, x: str, rank: int | None = None) -> str:
        """A data operand as expression text: a name, or a literal for a one-element
        constant (not an initializer: those are params) that does not raise the rank."""
        if x in self.env:
            name = self.env[x]
            if name in self.labels:
                raise self.unsupported("integer data", f"integer input {shown(x)} used as data (bpc computes in floats)")
            return name
        if x in self.static:
            arr = self.static[x]
            if arr.dtype.kind in "iu" and x not in self.trainable:
                raise self.unsupported("integer data", f"integer tensor {shown(x)} used as data (bpc computes in floats)")
            if x not in self.trainable and arr.size == 1 and (arr.ndim == 0 or (rank is not None and arr.ndim <= rank)):
                text = _literal(arr.reshape(()), self.where)
                return f"({text})" if text.startswith("-") else text
            what = "initializer" if x in self.trainable else "constant"
            return self.param(x, arr, f"ONNX {what} {shown(x)}")
        raise self.err(f"unknown value {shown(x)}")

    def const(self, x: str, what: str) -> np.ndarray:
        if x in self.static:
            return self.static[x]
        raise self.unsupported(f"non-constant {what}", f"{what} must be a constant (an initializer or Constant node)")

    def shape(self, x: str) -> tuple:
        if x in self.env:
            return tuple(self.g.shape(self.env[x]))
        return tuple(self.static[x].shape)

    def out(self, node, k: int = 0) -> str:
        return self.names.name(node.output[k], "y")

    def comment(self, node) -> str:
        label = f"ONNX {node.op_type}"
        return f"{label} {shown(node.name)}" if node.name else label

    # ---- emitting
    def expr(self, node, text: str, k: int = 0, name: str | None = None) -> str:
        from .. import expr as ex

        name = name or self.out(node, k)
        line = f"{name} = {text}"
        self.add_line(f"{line}  # {self.comment(node)}")
        parsed = ex.parse(line, self.where)
        self._lower(lambda: ex.lower(parsed, self.g, self.where))
        self.nodes.append(f"{line}  # {self.comment(node)}")
        if k is not None and name == self.names.of.get(node.output[k]):
            self.env[node.output[k]] = name
        return name

    def opnode(self, node, op: str, inputs: list[str], attrs: dict, k: int = 0) -> str:
        name = self.out(node, k)
        self._lower(lambda: self.g.add(op, inputs, attrs, name=name, named=True))
        n = OpNode(name=name, op=op, inputs=inputs, attrs=attrs, doc=self.comment(node))
        self.nodes.append(n)
        self.add_line(f"{name} = {op}({', '.join(inputs)}, {attrs})  # {self.comment(node)}")
        self.env[node.output[k]] = name
        return name

    def add_line(self, text: str) -> None:
        self.lines.append(text)

    def _lower(self, fn) -> None:
        try:
            fn()
        except Unsupported:
            raise
        except BpcError as e:
            raise SpecError(e.message, self.where) from None

    def alias(self, node, x: str, k: int = 0) -> str:
        """``y = x`` (Identity, a float Cast, a no-op reshape)."""
        if x in self.static and x not in self.env:
            self.static[node.output[k]] = self.static[x]
            return ""
        return self.expr(node, self.v(x), k)

    def reshape(self, node, x: str, shape: tuple) -> str:
        if tuple(shape) == self.shape(x):
            return self.alias(node, x)
        if x in self.static and x not in self.env:
            self.static[node.output[0]] = self.static[x].reshape(shape)
            return ""
        if all(isinstance(d, int) for d in shape):
            return self.expr(node, f"reshape({self.v(x)}, shape={tuple(shape)!r})")
        return self.opnode(node, "reshape", [self.v(x)], {"shape": list(shape)})

    # ---- the graph
    def convert(self) -> None:
        self.declare_inputs()
        graph = self.model.graph
        for i, node in enumerate(graph.node):
            self.where = f"{self.source}: node {i} {shown(node.name)} ({display(node.op_type, 40)})"
            if node.domain not in ("", "ai.onnx"):
                raise self.err(f"op {display(node.domain, 40)}.{display(node.op_type, 40)} is not supported "
                               f"(supported: the ai.onnx ops {', '.join(SUPPORTED)})")
            handler = getattr(self, f"op_{node.op_type}", None)
            if node.op_type not in SUPPORTED or handler is None:
                raise self.err(f"op {display(node.op_type, 40)} is not supported (supported: {', '.join(SUPPORTED)})")
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            for a in attrs.values():
                if isinstance(a, float) and not math.isfinite(a):
                    raise self.unsupported("non-finite attribute", "an attribute is infinite or NaN")
            handler(node, [x for x in node.input], attrs)

    # ---- elementwise
    def _unary(fn):  # noqa: N805
        def handler(self, node, ins, attrs):
            return self.expr(node, fn(self.v(ins[0]), attrs))

        return handler

    op_Neg = _unary(lambda x, a: f"-{x}")
    op_Sqrt = _unary(lambda x, a: f"sqrt({x})")
    op_Exp = _unary(lambda x, a: f"exp({x})")
    op_Log = _unary(lambda x, a: f"log({x})")
    op_Abs = _unary(lambda x, a: f"abs({x})")
    op_Sin = _unary(lambda x, a: f"sin({x})")
    op_Cos = _unary(lambda x, a: f"cos({x})")
    op_Tanh = _unary(lambda x, a: f"tanh({x})")
    op_Sigmoid = _unary(lambda x, a: f"sigmoid({x})")
    op_Relu = _unary(lambda x, a: f"relu({x})")
    op_Softplus = _unary(lambda x, a: f"softplus({x})")
    def op_Erf(self, node, ins, attrs):
        self._need_erf()
        return self.expr(node, f"erf({self.v(ins[0])})")

    def _need_erf(self) -> None:
        from ..ops.registry import all_ops

        if "erf" not in all_ops():
            raise self.unsupported("erf", "erf is not a bpc op yet (Erf, Gelu with approximate='none')")
    op_LeakyRelu = _unary(lambda x, a: f"leaky_relu({x}, alpha={float(a.get('alpha', 0.01))!r})")
    op_Elu = _unary(lambda x, a: f"elu({x}, alpha={float(a.get('alpha', 1.0))!r})")

    def op_Gelu(self, node, ins, attrs):
        approx = attrs.get("approximate", b"none")
        approx = approx.decode() if isinstance(approx, bytes) else str(approx)
        x = self.v(ins[0])
        if approx == "tanh":
            return self.expr(node, f"gelu({x})")
        if approx != "none":
            raise self.unsupported("Gelu approximate", f"approximate={approx!r} (expected 'none' or 'tanh')")
        self._need_erf()
        return self.expr(node, f"0.5 * {x} * (1.0 + erf({x} * 0.7071067811865476))")

    def _binary(symbol):  # noqa: N805
        def handler(self, node, ins, attrs):
            ra, rb = len(self.shape(ins[0])), len(self.shape(ins[1]))
            a, b = self.v(ins[0], rb), self.v(ins[1], ra)
            return self.expr(node, f"{a} {symbol} {b}")

        return handler

    op_Add = _binary("+")
    op_Sub = _binary("-")
    op_Mul = _binary("*")
    op_Div = _binary("/")
    op_Greater = _binary(">")
    op_Less = _binary("<")
    op_Equal = _binary("==")
    op_MatMul = _binary("@")

    def op_Pow(self, node, ins, attrs):
        x = self.v(ins[0], len(self.shape(ins[1])))
        if ins[1] in self.static and self.static[ins[1]].size == 1 and ins[1] not in self.env:
            p = self.static[ins[1]]
            if p.ndim <= len(self.shape(ins[0])):
                return self.expr(node, f"{x} ** {_literal(p.reshape(()), self.where)}")
        return self.expr(node, f"pow({x}, {self.v(ins[1], len(self.shape(ins[0])))})")

    def op_Identity(self, node, ins, attrs):
        return self.alias(node, ins[0])

    def op_Cast(self, node, ins, attrs):
        to = int(attrs.get("to", 0))
        if ins[0] in self.static and ins[0] not in self.env:  # shape arithmetic on constants
            if to in INT_TYPES:
                self.static[node.output[0]] = self.static[ins[0]].astype(INT_TYPES[to])
                return ""
            if to in FLOAT_TYPES:
                self.static[node.output[0]] = self.static[ins[0]].astype(FLOAT_TYPES[to])
                return ""
        if to not in FLOAT_TYPES:
            raise self.unsupported("Cast to", f"Cast to {TensorProto.DataType.Name(to) if to in TensorProto.DataType.values() else to} "
                                   "(bpc casts between float types only)")
        x = self.env.get(ins[0])
        if x is not None and (x in self.labels or self.g.dtype(x) not in ("f64", "f32")):
            raise self.unsupported("Cast from", "Cast of a non-float value")
        return self.alias(node, ins[0])

    def op_Constant(self, node, ins, attrs):
        if "value" in attrs:
            arr = tensor_array(attrs["value"], self.where, self.base_dir)
        elif "value_float" in attrs:
            arr = np.array(attrs["value_float"], dtype=np.float32)
        elif "value_floats" in attrs:
            arr = np.array(attrs["value_floats"], dtype=np.float32)
        elif "value_int" in attrs:
            arr = np.array(attrs["value_int"], dtype=np.int64)
        elif "value_ints" in attrs:
            arr = np.array(attrs["value_ints"], dtype=np.int64)
        else:
            raise self.unsupported("Constant kind", f"Constant with {', '.join(sorted(attrs)) or 'no value'}")
        self.static[node.output[0]] = arr

    def op_Clip(self, node, ins, attrs):
        rank = len(self.shape(ins[0]))
        lo = hi = None
        if self.opset < 11:
            lo, hi = attrs.get("min"), attrs.get("max")
            lo = None if lo is None else _literal(lo, self.where)
            hi = None if hi is None else _literal(hi, self.where)
        else:
            if len(ins) > 1 and ins[1]:
                lo = self.v(ins[1], rank)
            if len(ins) > 2 and ins[2]:
                hi = self.v(ins[2], rank)
        text = self.v(ins[0])
        if lo is not None:
            text = f"maximum({text}, {lo})"
        if hi is not None:
            text = f"minimum({text}, {hi})"
        return self.expr(node, text)

    def _variadic(self, node, ins, fn):
        ranks = max(len(self.shape(x)) for x in ins)
        ops = [self.v(x, ranks) for x in ins]
        text = ops[0]
        for o in ops[1:]:
            text = fn(text, o)
        return text

    def op_Max(self, node, ins, attrs):
        return self.expr(node, self._variadic(node, ins, lambda a, b: f"maximum({a}, {b})"))

    def op_Min(self, node, ins, attrs):
        return self.expr(node, self._variadic(node, ins, lambda a, b: f"minimum({a}, {b})"))

    def op_Sum(self, node, ins, attrs):
        return self.expr(node, self._variadic(node, ins, lambda a, b: f"{a} + {b}"))

    def op_Mean(self, node, ins, attrs):
        text = self._variadic(node, ins, lambda a, b: f"{a} + {b}")
        return self.expr(node, f"({text}) / {float(len(ins))!r}" if len(ins) > 1 else text)

    def op_Where(self, node, ins, attrs):
        rank = max(len(self.shape(x)) for x in ins)
        c, a, b = (self.v(x, rank) for x in ins)
        return self.expr(node, f"where({c}, {a}, {b})")

    # ---- linear algebra
    def op_Gemm(self, node, ins, attrs):
        alpha, beta = float(attrs.get("alpha", 1.0)), float(attrs.get("beta", 1.0))
        a, b = self.v(ins[0]), self.v(ins[1])
        if attrs.get("transA", 0):
            a = f"{a}.T"
        if attrs.get("transB", 0):
            b = f"{b}.T"
        text = f"{a} @ {b}"
        if alpha != 1.0:
            text = f"{_literal(alpha, self.where)} * ({text})"
        if len(ins) > 2 and ins[2] and beta != 0.0:
            c = self.v(ins[2], 2)
            text += f" + {c}" if beta == 1.0 else f" + {_literal(beta, self.where)} * {c}"
        return self.expr(node, text)

    # ---- shapes
    def _axis(self, axis: int, rank: int) -> int:
        if not -rank <= axis < rank:
            raise self.err(f"axis {axis} is out of range for {rank} dimensions")
        return axis % rank

    def op_Transpose(self, node, ins, attrs):
        perm = attrs.get("perm")
        x = self.v(ins[0])
        if perm is None:
            return self.expr(node, f"transpose({x})")
        return self.expr(node, f"transpose({x}, axes={tuple(int(p) for p in perm)!r})")

    def _size(self, dims, what: str):
        sym = [d for d in dims if not isinstance(d, int)]
        n = math.prod(d for d in dims if isinstance(d, int))
        if not sym:
            return n
        if len(sym) == 1 and n == 1:
            return sym[0]
        raise self.unsupported("symbolic reshape", f"{what} mixes the symbolic dim '{sym[0]}' with other sizes")

    def op_Reshape(self, node, ins, attrs):
        target = [int(d) for d in self.const(ins[1], "the shape of Reshape").reshape(-1)]
        xs = self.shape(ins[0])
        allowzero = int(attrs.get("allowzero", 0))
        shape: list = []
        for i, d in enumerate(target):
            if d == 0 and not allowzero:
                if i >= len(xs):
                    raise self.err(f"shape entry {i} copies a dimension the input lacks")
                shape.append(xs[i])
            else:
                shape.append(d)
        if any(d == 0 for d in shape):
            raise self.unsupported("empty tensor", "a shape with a zero size")
        if shape.count(-1) > 1 or any(isinstance(d, int) and d < -1 for d in shape):
            raise self.err(f"invalid shape {target}")
        if -1 in shape:
            k = shape.index(-1)
            rest = [d for d in shape if d != -1]
            sym_x = [d for d in xs if not isinstance(d, int)]
            sym_r = [d for d in rest if not isinstance(d, int)]
            nx_ = math.prod(d for d in xs if isinstance(d, int))
            nr = math.prod(d for d in rest if isinstance(d, int))
            if sym_x == sym_r:
                if nr == 0 or nx_ % nr:
                    raise self.err(f"cannot reshape {list(xs)} into {target}")
                shape[k] = nx_ // nr
            elif len(sym_x) == 1 and not sym_r and nr == nx_:
                shape[k] = sym_x[0]
            else:
                raise self.unsupported("symbolic reshape", f"cannot infer -1 in {target} for input shape {list(xs)}")
        return self.reshape(node, ins[0], tuple(shape))

    def op_Flatten(self, node, ins, attrs):
        xs = self.shape(ins[0])
        axis = int(attrs.get("axis", 1))
        axis = axis + len(xs) if axis < 0 else axis
        if not 0 <= axis <= len(xs):
            raise self.err(f"axis {axis} is out of range for {len(xs)} dimensions")
        return self.reshape(node, ins[0], (self._size(xs[:axis], "Flatten"), self._size(xs[axis:], "Flatten")))

    def _axes(self, node, ins, attrs, k: int = 1):
        if "axes" in attrs:
            return [int(a) for a in attrs["axes"]]
        if len(ins) > k and ins[k]:
            return [int(a) for a in self.const(ins[k], "axes").reshape(-1)]
        return None

    def op_Squeeze(self, node, ins, attrs):
        xs = self.shape(ins[0])
        axes = self._axes(node, ins, attrs)
        if axes is None:
            keep = [d for d in xs if d != 1]
        else:
            ax = {self._axis(a, len(xs)) for a in axes}
            for a in ax:
                if xs[a] != 1:
                    raise self.err(f"cannot squeeze axis {a} of size {xs[a]}")
            keep = [d for i, d in enumerate(xs) if i not in ax]
        return self.reshape(node, ins[0], tuple(keep))

    def op_Unsqueeze(self, node, ins, attrs):
        xs = list(self.shape(ins[0]))
        axes = self._axes(node, ins, attrs)
        if axes is None:
            raise self.err("Unsqueeze needs axes")
        rank = len(xs) + len(axes)
        ax = sorted(self._axis(a, rank) for a in axes)
        for a in ax:
            xs.insert(a, 1)
        return self.reshape(node, ins[0], tuple(xs))

    def op_Expand(self, node, ins, attrs):
        target = tuple(int(d) for d in self.const(ins[1], "the shape of Expand").reshape(-1))
        xs = self.shape(ins[0])
        if any(d < 1 for d in target):
            raise self.unsupported("empty tensor", f"Expand to {list(target)}")
        try:
            shape = broadcast(xs, target)
        except BpcError as e:
            raise self.err(e.message) from None
        if shape == tuple(xs):
            return self.alias(node, ins[0])
        if all(isinstance(d, int) for d in shape):
            return self.expr(node, f"broadcast_to({self.v(ins[0])}, shape={tuple(shape)!r})")
        return self.opnode(node, "broadcast_to", [self.v(ins[0])], {"shape": list(shape)})

    def op_Concat(self, node, ins, attrs):
        rank = len(self.shape(ins[0]))
        axis = self._axis(int(attrs.get("axis", 0)), rank)
        items = [self.v(x, rank) for x in ins if x]
        if len(items) == 1:
            return self.expr(node, items[0])
        return self.expr(node, f"concat([{', '.join(items)}], axis={axis})")

    def op_Slice(self, node, ins, attrs):
        xs = self.shape(ins[0])
        if self.opset < 10:
            starts, ends = list(attrs.get("starts", [])), list(attrs.get("ends", []))
            axes = list(attrs["axes"]) if "axes" in attrs else None
            steps = None
        else:
            starts = [int(v) for v in self.const(ins[1], "starts of Slice").reshape(-1)]
            ends = [int(v) for v in self.const(ins[2], "ends of Slice").reshape(-1)]
            axes = [int(v) for v in self.const(ins[3], "axes of Slice").reshape(-1)] if len(ins) > 3 and ins[3] else None
            steps = [int(v) for v in self.const(ins[4], "steps of Slice").reshape(-1)] if len(ins) > 4 and ins[4] else None
        axes = list(range(len(starts))) if axes is None else axes
        steps = [1] * len(starts) if steps is None else steps
        if not len(starts) == len(ends) == len(axes) == len(steps):
            raise self.err("starts, ends, axes and steps differ in length")
        if any(s != 1 for s in steps):
            raise self.unsupported("Slice step", f"Slice with steps {steps} (bpc slices with step 1)")
        index: list[str] = [":"] * len(xs)
        for st, en, ax in zip(starts, ends, axes):
            a = self._axis(ax, len(xs))
            d = xs[a]
            if not isinstance(d, int):
                if st == 0 and en >= 2**31 - 1:
                    continue
                raise self.unsupported("symbolic slice", f"Slice of the symbolic dim '{d}'")
            lo = max(0, min(st + d if st < 0 else st, d))
            hi = max(0, min(en + d if en < 0 else en, d))
            if hi <= lo:
                raise self.unsupported("empty tensor", f"an empty slice {st}:{en} of size {d}")
            index[a] = ":" if (lo, hi) == (0, d) else f"{lo}:{hi}"
        if all(i == ":" for i in index):
            return self.alias(node, ins[0])
        while index and index[-1] == ":":
            index.pop()
        return self.expr(node, f"{self.v(ins[0])}[{', '.join(index)}]")

    # ---- softmax, reductions
    def _softmax(self, node, ins, attrs, fn: str):
        xs = self.shape(ins[0])
        x = self.v(ins[0])
        if self.opset >= 13:
            axis = self._axis(int(attrs.get("axis", -1)), len(xs))
            return self.expr(node, f"{fn}({x}, axis={axis})")
        axis = self._axis(int(attrs.get("axis", 1)), len(xs)) if xs else 0
        if axis == len(xs) - 1 or not xs:
            return self.expr(node, f"{fn}({x}, axis=-1)")
        # before opset 13: over the axes from `axis` on, as one flattened axis
        if not all(isinstance(d, int) for d in xs):
            raise self.unsupported("symbolic softmax", "Softmax before opset 13 over symbolic dims")
        flat = (math.prod(xs[:axis]), math.prod(xs[axis:]))
        return self.expr(node, f"reshape({fn}(reshape({x}, shape={flat!r}), axis=-1), shape={tuple(xs)!r})")

    def op_Softmax(self, node, ins, attrs):
        return self._softmax(node, ins, attrs, "softmax")

    def op_LogSoftmax(self, node, ins, attrs):
        return self._softmax(node, ins, attrs, "log_softmax")

    def _reduce(self, node, ins, attrs, fn: str):
        xs = self.shape(ins[0])
        axes = self._axes(node, ins, attrs)
        keepdims = bool(attrs.get("keepdims", 1))
        if not axes and int(attrs.get("noop_with_empty_axes", 0)):
            return self.alias(node, ins[0])  # no axes given: the input as it is
        if not xs:
            return self.alias(node, ins[0])  # a scalar: nothing to reduce
        axis = tuple(sorted(self._axis(a, len(xs)) for a in axes)) if axes else None
        return self.expr(node, f"{fn}({self.v(ins[0])}, axis={axis!r}, keepdims={keepdims})")

    def op_ReduceSum(self, node, ins, attrs):
        return self._reduce(node, ins, attrs, "sum")

    def op_ReduceMean(self, node, ins, attrs):
        return self._reduce(node, ins, attrs, "mean")

    def op_ReduceMax(self, node, ins, attrs):
        return self._reduce(node, ins, attrs, "max")

    def op_ReduceMin(self, node, ins, attrs):
        return self._reduce(node, ins, attrs, "min")

    def op_ReduceLogSumExp(self, node, ins, attrs):
        return self._reduce(node, ins, attrs, "logsumexp")

    # ---- losses
    def _nll(self, node, ins, attrs, logp: str, k_out: int = 0):
        """ONNX's NLL of log-probabilities ``logp`` (class axis 1) against labels ``ins[1]``.

        Constant labels (and ``ignore_index``) become a constant masked one-hot
        ``T`` of ``logp``'s shape; class weights (constant or not) are gathered
        as ``sum(T * w, axis=1)``. Labels given at run time (an integer input)
        go through ``one_hot`` and need ``[N, C]`` scores.
        """
        reduction = attrs.get("reduction", b"mean")
        reduction = reduction.decode() if isinstance(reduction, bytes) else str(reduction)
        if reduction not in ("mean", "sum", "none"):
            raise self.err(f"reduction {reduction!r} (expected mean, sum or none)")
        xs = tuple(self.g.shape(logp))
        if len(xs) < 2 or not isinstance(xs[1], int):
            raise self.unsupported("loss shape", f"scores of shape {list(xs)} (need [N, C, ...] with a fixed C)")
        c = xs[1]
        ignore = attrs.get("ignore_index")
        base = self.out(node, 0)
        has_w = len(ins) > 2 and bool(ins[2])
        if ins[1] in self.static and ins[1] not in self.env:
            labels = self.static[ins[1]].astype(np.int64)
            if labels.shape != xs[:1] + xs[2:]:
                raise self.err(f"labels of shape {list(labels.shape)} do not fit scores {list(xs)}")
            valid = labels != ignore if ignore is not None else np.ones(labels.shape, bool)
            if np.any((labels[valid] < 0) | (labels[valid] >= c)):
                raise self.err(f"labels outside [0, {c})")
            onehot = np.moveaxis(np.eye(c)[np.where(valid, labels, 0)], -1, 1) * np.expand_dims(valid, 1)
            t = self.param(f"{node.output[0]}/targets", onehot, f"{self.comment(node)}: one-hot labels (constant)")
            count = float(valid.sum())
        else:
            lab = self.env.get(ins[1])
            if lab not in self.labels:
                raise self.unsupported("loss labels", "labels must be integer inputs or constants")
            if len(xs) != 2 or ignore is not None:
                raise self.unsupported("loss labels", "labels given at run time need [N, C] scores and no ignore_index")
            if self.labels[lab] not in (None, c):
                raise self.err(f"labels {lab} feed {self.labels[lab]}- and {c}-class losses")
            self.labels[lab] = c
            t = f"one_hot({lab}, num_classes={c})"
            count = None
        per = f"-sum({logp} * {t}, axis=1)"
        denominator: str | None = None if count is None else repr(count)
        if has_w:
            w = self.v(ins[2])
            if self.shape(ins[2]) != (c,):
                raise self.err(f"weights of shape {list(self.shape(ins[2]))}, expected [{c}]")
            wshape = (1, c) + (1,) * (len(xs) - 2)
            wl = self.expr(node, f"sum({t} * reshape({w}, shape={wshape!r}), axis=1)", name=self.names.fresh(base + "_weight"))
            per = f"{per} * {wl}"
            denominator = f"sum({wl})"
        if reduction == "none":
            return self.expr(node, per, k_out)
        if reduction == "sum":
            return self.expr(node, f"sum({per})", k_out)
        if denominator is None:
            return self.expr(node, f"mean({per})", k_out)
        if denominator == "0.0":
            raise self.unsupported("loss weights", "every label is ignored")
        return self.expr(node, f"sum({per}) / {denominator}", k_out)

    def op_NegativeLogLikelihoodLoss(self, node, ins, attrs):
        return self._nll(node, ins, attrs, self.v(ins[0]))

    def op_SoftmaxCrossEntropyLoss(self, node, ins, attrs):
        x = self.v(ins[0])
        if len(self.g.shape(x)) < 2:
            raise self.unsupported("loss shape", "scores need [N, C, ...]")
        if len(node.output) > 1 and node.output[1]:
            logp = self.expr(node, f"log_softmax({x}, axis=1)", 1)
        else:
            logp = self.expr(node, f"log_softmax({x}, axis=1)", name=self.names.fresh(self.out(node) + "_log_prob"))
        return self._nll(node, ins, attrs, logp)

    # ---- the result
    def spec(self) -> Spec:
        graph = self.model.graph
        self.where = f"{self.source}: outputs"
        outs: list[str] = []
        for v in graph.output:
            if v.name not in self.env:
                if v.name in self.static:
                    raise self.unsupported("constant output", f"output {shown(v.name)} is a constant")
                raise self.err(f"output {shown(v.name)} is computed by no node")
            outs.append(self.env[v.name])
        kind = self.options.loss
        first = outs[0]
        loss: str
        inputs = list(self.inputs)
        if kind is None:
            shape = self.g.shape(first)
            if not all(isinstance(d, int) for d in shape) or math.prod(shape) != 1:
                raise SpecError(
                    f"the model's output {first} has shape {list(shape)}, not one element: choose a loss with "
                    f"--loss ({', '.join(LOSS_KINDS)}) against a new target input",
                    "--loss",
                )
            loss = first
            outputs = [o for o in outs[1:] if o != loss]
        else:
            if kind not in LOSS_KINDS:
                raise SpecError(f"unknown loss {kind!r} for an ONNX model (expected {', '.join(LOSS_KINDS)})", "--loss")
            shape = list(self.g.shape(first))
            target = self.names.fresh("target")
            classes = None
            if kind == "softmax_cross_entropy":
                if not shape or not isinstance(shape[-1], int):
                    raise SpecError(f"softmax_cross_entropy needs class scores with a fixed last axis, {first} has shape {shape}", "--loss")
                tshape, classes = shape[:-1], shape[-1]
            else:
                tshape = shape
            inputs.append({"name": target, "shape": tshape, "classes": classes,
                           "doc": f"the target of the {kind} loss (added by bpc)"})
            loss = self.names.fresh("loss")
            self.nodes.append(f"{loss} = {loss_expression(kind, first, target)}  # the --loss {kind} (added by bpc)")
            outputs = list(dict.fromkeys(outs))
        for d in inputs:
            if d["name"] in self.labels:
                if self.labels[d["name"]] is None:
                    self.where = f"{self.source}: inputs"
                    raise self.unsupported("integer data", f"integer input {d['name']} is used by no loss")
                d["classes"] = self.labels[d["name"]]
        # --wrt takes bpc names, or the model's own names (net.0.weight)
        wrt = [self.env.get(w, w) for w in self.options.wrt] if self.options.wrt is not None else None
        if wrt is None:
            wrt = [p.name for p in self.params if any(o for o, n in self.env.items() if n == p.name and o in self.trainable)]
            if not wrt:
                wrt = [d["name"] for d in self.inputs if d["name"] not in self.labels]
        model = self.model
        about = f"Compiled from the ONNX model {display(self.source, 120)}"
        producer = " ".join(x for x in (model.producer_name, model.producer_version) if x)
        about += f" (opset {self.opset}" + (f", made by {display(producer, 60)})." if producer else ").")
        about += " ONNX names are in the comments and in the Args of each function."
        doc = (graph.doc_string or model.doc_string or "").strip()
        if doc:
            about += "\n\n" + display(doc, MAX_DOC_CHARS)
        return Spec(
            description=about,
            inputs=[TensorDecl(**d) for d in inputs],
            params=self.params,
            nodes=self.nodes,
            loss=loss,
            outputs=[o for o in outputs if o != loss],
            wrt=wrt,
        )


def source_from_model(model, options: CompileOptions, path: str = "<memory>", base_dir: Path | None = None,
                      digest: str | None = None, names: dict[str, str] | None = None) -> Source:
    """The spec of a parsed ``ModelProto``; ``path`` labels it in messages and the header.

    ``names``, when given, receives the map of ONNX value names to bpc names.
    """
    c = _Converter(model, options, base_dir, path)
    c.convert()
    spec = c.spec()
    if names is not None:
        names.update(c.env)
    if digest is None:
        digest = hashlib.sha256(model.SerializeToString()).hexdigest()
    text = "\n".join([f"# ONNX model {display(path, 200)} sha256 {digest}"] + c.lines) + "\n"
    if path == "<memory>":
        name = readable(model.graph.name or "")
        spec = spec.model_copy(update={"name": name if name and name_problem(name) is None else "model"})
    return Source(spec, text, path)


def load(path: Path, options: CompileOptions) -> Source:
    """The ONNX front end's entry point (``compiler.frontends.FRONTENDS``)."""
    from ..pipeline import _display_path

    where = display(str(path))
    data = read_bytes(path, "ONNX model", MAX_MODEL_BYTES)
    model = parse_model(data, where)
    return source_from_model(model, options, _display_path(path), Path(path).parent, hashlib.sha256(data).hexdigest())
