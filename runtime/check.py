"""Check a compiled spec end to end: generated code vs finite differences."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..compiler.pipeline import Compiled

from . import interpreter
from .gradcheck import ATOL, RTOL, TensorCheck, check_module, compare
from .loader import load_source
from .localise import Culprit, localise


@dataclass
class CheckResult:
    name: str
    loss: float
    tensors: list[TensorCheck]
    interpreter_max_diff: float  # generated code vs reference interpreter
    culprit: Culprit | None = None  # when a gradient is off: the first node whose rule is
    notes: tuple[str, ...] = ()  # zero gradients and why
    passed: bool = field(init=False)

    def __post_init__(self):
        self.passed = all(t.passed for t in self.tensors) and self.interpreter_max_diff <= 1e-9

    @property
    def max_rel(self) -> float:
        return max((t.max_rel for t in self.tensors), default=0.0)

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "loss": self.loss,
            "passed": self.passed,
            "interpreter_max_diff": self.interpreter_max_diff,
            "tensors": [t.as_dict() for t in self.tensors],
            "culprit": self.culprit.as_dict() if self.culprit else None,
            "notes": list(self.notes),
        }


def example_arrays(module, seed: int | None = None, dims: dict | None = None) -> dict[str, np.ndarray]:
    params = module.init_params() if seed is None else module.init_params(seed)
    kw = {"dims": dims} if dims and hasattr(module, "DIMS") else {}
    inputs = module.example_inputs(**kw) if seed is None else module.example_inputs(seed, **kw)
    return {**params, **inputs}


def check_compiled(
    c: Compiled,
    seed: int | None = None,
    dims: dict | None = None,
    rtol: float = RTOL,
    atol: float = ATOL,
    progress: Callable[[str], None] | None = None,
    max_elements: int | None = 256,
    order: int = 1,
    namespace: str | None = None,
) -> CheckResult:
    """Gradients of ``c`` against central differences; with ``order=2`` also
    its ``hvp`` against differences of the gradient and its ``jvp`` by the
    dot-product test. A failure names the first node whose rule is off.

    ``namespace`` (an array-API module only): also run it on arrays of that
    namespace (``numpy``, ``array_api_strict``, ``torch``) and compare loss
    and gradients with the same module on NumPy arrays (which the other
    checks hold to finite differences and the reference interpreter)."""
    if namespace is not None and c.options.target != "array-api":
        from ..compiler.errors import SpecError

        raise SpecError("--namespace checks an array-API module (compile with --target array-api)", "--namespace")
    functions = c.options.functions
    if functions is not None and "value_and_grad" not in functions:
        # the checks call value_and_grad: check the same spec with it added
        from ..compiler.errors import SpecError
        from ..compiler.pipeline import compile_spec

        if c.spec is None:
            raise SpecError("bpc check needs value_and_grad in the module (add it to --emit)", "--emit")
        c = compile_spec(c.spec, options=c.options.but(functions=tuple(functions) + ("value_and_grad",)))
    if c.forward.dtype == "f32":
        return _check_f32(c, seed, dims, progress, max_elements)
    result = _check_f64(c, seed, dims, rtol, atol, progress, max_elements)
    if is_analytic(c.forward.graph):
        module = load_source(c.source, c.name)
        arrays = example_arrays(module, seed, dims)
        grads = module.value_and_grad(**arrays)[1]
        rows = complex_step(c, arrays, grads, max_elements, seed or 0)
        result = CheckResult(result.name, result.loss, result.tensors + rows, result.interpreter_max_diff)
    if order >= 2:
        result = CheckResult(result.name, result.loss, result.tensors + second_order(c, seed, dims), result.interpreter_max_diff)
    if namespace is not None:
        rows = namespace_rows(c, namespace, seed, dims)
        result = CheckResult(result.name, result.loss, result.tensors + rows, result.interpreter_max_diff)
    if not result.passed:
        module = load_source(c.source, c.name)
        result.culprit = localise(c.forward.graph, example_arrays(module, seed, dims), seed or 0)
    result.notes = c.joint.notes
    return result


def _check_f64(c, seed, dims, rtol, atol, progress, max_elements) -> CheckResult:
    module = load_source(c.source, c.name)
    arrays = example_arrays(module, seed, dims)

    def intermediate(name: str):
        x0 = interpreter.evaluate(fwd, arrays, [name])[name]
        return interpreter.loss_fn(fwd, arrays, at=name), x0

    # stop_gradient: finite differences hold its value fixed, which only the
    # interpreter can do (the module's forward recomputes it).
    fwd = c.forward.graph
    module_fd = not any(fwd.op(n) == "stop_gradient" for n in fwd.nx.nodes)
    loss, tensors = check_module(module, arrays, intermediate, rtol, atol, progress, max_elements, module_fd)

    # The oracle: the reference interpreter on the unoptimized joint graph.
    gl, gg = module.value_and_grad(**arrays)
    il, ig = interpreter.value_and_grad(c.joint.graph, arrays)
    diffs = [float(np.max(np.abs(np.asarray(gl) - il)))]
    for w in ig:
        scale = max(1.0, float(np.max(np.abs(ig[w]))))
        diffs.append(float(np.max(np.abs(np.asarray(gg[w]) - ig[w]))) / scale)
    return CheckResult(c.name, loss, tensors, max(diffs))


# A float32 module against its float64 twin: float32 rounding (eps 1.2e-7)
# through a network stays far below these.
F32_RTOL, F32_ATOL = 1e-4, 1e-6


def _check_f32(c: Compiled, seed, dims, progress, max_elements) -> CheckResult:
    """Finite differences are too noisy in float32 to check a gradient well:
    check the float64 twin by finite differences, then the float32 module's
    gradients against the twin's on the same arrays."""
    from ..compiler.errors import SpecError
    from ..compiler.pipeline import compile_spec

    if c.spec is None:
        raise SpecError("a float32 check needs the spec (not an IR dump): it compiles a float64 twin", "--dtype")
    twin = compile_spec(c.spec, options=c.options.but(dtype="float64"))
    base = check_compiled(twin, seed, dims, progress=progress, max_elements=max_elements)
    m32, m64 = load_source(c.source, c.name), load_source(twin.source, twin.name)
    arrays = example_arrays(m32, seed, dims)
    l32, g32 = m32.value_and_grad(**arrays)
    l64, g64 = m64.value_and_grad(**arrays)
    scale = max(1.0, abs(float(np.sum(l64))))
    tensors = list(base.tensors)
    for name in g64:
        if np.asarray(g32[name]).dtype != np.float32:
            raise AssertionError(f"float32 module returned a {np.asarray(g32[name]).dtype} gradient for {name}")
        t = compare(f"{name} (f32)", np.asarray(g32[name], dtype=np.float64), g64[name], scale, F32_RTOL, F32_ATOL)
        tensors.append(t)
    return CheckResult(c.name, float(np.sum(l32)), tensors, base.interpreter_max_diff)


# The same module on another namespace: the same operations in the same order,
# so only a library's own rounding (a different matmul kernel) may differ.
NS_RTOL, NS_ATOL = 1e-9, 1e-12


def namespace_rows(c: Compiled, namespace: str, seed=None, dims=None) -> list[TensorCheck]:
    """Loss and gradients of the array-API module on ``namespace`` arrays
    against the same module on NumPy arrays (one row each)."""
    import array_api_compat

    from .namespaces import from_numpy, get_namespace, to_numpy

    xp = get_namespace(namespace)
    module = load_source(c.source, c.name)
    arrays = example_arrays(module, seed, dims)
    l_np, g_np = module.value_and_grad(**arrays)
    converted = from_numpy(arrays, xp)
    l_xp, g_xp = module.value_and_grad(**converted)
    want = array_api_compat.array_namespace(*converted.values())
    f32 = c.forward.dtype == "f32"
    rtol, atol = (F32_RTOL, F32_ATOL) if f32 else (NS_RTOL, NS_ATOL)
    scale = max(1.0, float(np.max(np.abs(to_numpy(l_np)))))
    rows = [compare(f"loss (on {namespace})", to_numpy(l_xp), to_numpy(l_np), scale, rtol, atol)]
    for name in g_np:
        if array_api_compat.array_namespace(g_xp[name]) is not want:
            raise AssertionError(f"the gradient of {name} on {namespace} is a {type(g_xp[name]).__name__}")
        rows.append(compare(f"{name} (on {namespace})", to_numpy(g_xp[name]), to_numpy(g_np[name]), scale, rtol, atol))
    return rows


# Second order: h is small so that a relu kink is rarely inside the step.
HVP_STEP, HVP_RTOL, HVP_ATOL = 1e-7, 1e-5, 1e-7
DOT_RTOL = 1e-10


def second_order(c: Compiled, seed: int | None = None, dims: dict | None = None) -> list[TensorCheck]:
    """``hvp`` against central differences of ``value_and_grad`` along a random
    direction (one row per wrt value), and ``jvp`` against the gradient by the
    dot-product test (``d_loss = <grad, t>``: no step size)."""
    from ..compiler.errors import SpecError
    from ..compiler.pipeline import compile_spec

    if c.spec is None:
        raise SpecError("a second-order check needs the spec (not an IR dump)", "--order")
    functions = ("forward", "value_and_grad", "jvp", "hvp")
    cc = compile_spec(c.spec, options=c.options.but(functions=functions))
    m = load_source(cc.source, cc.name)
    arrays = example_arrays(m, seed, dims)
    rng = np.random.default_rng(seed or 0)
    t = {w: rng.standard_normal(np.shape(arrays[w])) for w in m.WRT}
    loss, grads = m.value_and_grad(**arrays)
    d_loss = float(np.sum(m.jvp(**arrays, tangents=t)[1]))
    dot = sum(float(np.sum(np.asarray(grads[w]) * t[w])) for w in m.WRT)
    err = abs(d_loss - dot)
    size = max(abs(d_loss), abs(dot))
    rows = [TensorCheck("jvp (dot-product test)", (), err, err / max(size, 1e-12), err <= DOT_RTOL * max(size, 1.0), 1)]
    hv = m.hvp(**arrays, vectors=t)[2]
    if any(c.forward.graph.op(n) == "stop_gradient" for n in c.forward.graph.nx.nodes):
        # differences of the module's gradient cannot hold stop_gradient fixed
        # (the gradient recomputes it): check hvp by symmetry instead,
        # <u, H t> = <t, H u>, which needs no step
        u = {w: rng.standard_normal(np.shape(arrays[w])) for w in m.WRT}
        hu = m.hvp(**arrays, vectors=u)[2]
        a = sum(float(np.sum(u[w] * hv[w])) for w in m.WRT)
        b = sum(float(np.sum(t[w] * hu[w])) for w in m.WRT)
        err = abs(a - b)
        rows.append(TensorCheck("hvp (symmetry: stop_gradient)", (), err, err / max(abs(a), 1e-12), err <= 1e-9 * max(1.0, abs(a)), 1))
        return rows
    h = HVP_STEP
    _, gp = m.value_and_grad(**{**arrays, **{w: arrays[w] + h * t[w] for w in m.WRT}})
    _, gm = m.value_and_grad(**{**arrays, **{w: arrays[w] - h * t[w] for w in m.WRT}})
    scale = max([1.0] + [float(np.max(np.abs(grads[w]))) for w in m.WRT])
    for w in m.WRT:
        fd = (np.asarray(gp[w]) - np.asarray(gm[w])) / (2 * h)
        rows.append(compare(f"hvp {w}", hv[w], fd, scale, HVP_RTOL, HVP_ATOL))
    return rows


# The complex step: f(x + ih e_k).imag / h is df/dx_k to rounding, for any h
# small enough (no subtraction, so no step-size trade-off).
CS_STEP, CS_RTOL, CS_ATOL = 1e-30, 1e-10, 1e-13


def is_analytic(g) -> bool:
    """Whether every op of ``g`` is analytic (see the ``analytic`` trait)."""
    from ..compiler.ops import get_op
    from ..compiler.ops.registry import ANALYTIC

    return all(get_op(g.op(n)).has(ANALYTIC) for n in g.nx.nodes)


def complex_step(c: Compiled, arrays: dict, grads: dict, max_elements: int | None = 256, seed: int = 0) -> list[TensorCheck]:
    """The module's gradients against the complex step of the reference
    interpreter (one row per wrt value), for graphs of analytic ops only."""
    from .gradcheck import sample_indices

    fwd = c.forward.graph
    loss = fwd.loss
    rows = []
    for w in c.forward.wrt:
        x0 = interpreter.evaluate(fwd, arrays, [w])[w] if w not in fwd.params + fwd.inputs else np.asarray(arrays[w], dtype=np.float64)
        flat = np.array(x0, dtype=np.complex128, order="C").reshape(-1)
        idx = sample_indices(flat.size, max_elements, seed)
        numeric = np.full(flat.size, np.nan)
        for k in idx:
            x = flat.copy()
            x[k] += CS_STEP * 1j
            x = x.reshape(np.shape(x0))
            if w in fwd.params or w in fwd.inputs:
                val = interpreter.evaluate(fwd, {**arrays, w: x}, [loss], dtype=np.complex128)[loss]
            else:
                val = interpreter.evaluate(fwd, arrays, [loss], overrides={w: x}, dtype=np.complex128)[loss]
            numeric[k] = float(np.sum(val).imag) / CS_STEP
        shown = fwd.names()[w]
        scale = max(1.0, float(np.max(np.abs(np.asarray(grads[shown], dtype=np.float64)))))
        rows.append(compare(f"{shown} (complex step)", grads[shown], numeric.reshape(np.shape(x0)), scale, CS_RTOL, CS_ATOL))
    return rows
