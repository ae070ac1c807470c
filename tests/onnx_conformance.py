"""The ONNX backend node test cases, run through bpc (used by test_onnx_conformance.py).

``cases()`` builds the cases in memory (``onnx.backend.test.case.node``);
``run(case)`` compiles one with the ONNX front end and checks it:

* forward: every output equals the expected output (float32 data: rtol 1e-5,
  atol 1e-6 of the output's scale, since bpc computes in float64; float64 data:
  rtol 1e-10); a bool output is compared through ``Where(out, 1, 0)``;
* gradients (float inputs, loss ``sse`` against a random target, or the output
  itself when it is a scalar): central differences in float64 on up to
  ``SAMPLES`` elements per input, skipping kinks (elements whose left and right
  differences disagree: ties of max, relu at 0, clip bounds).

A case bpc cannot compile for a documented reason (an attribute, a dtype, an
integer tensor used as data) raises :class:`Skip` with that reason; anything
else is a failure.
"""

from __future__ import annotations

import warnings

import numpy as np

SAMPLES = 24


class Skip(Exception):
    def __init__(self, reason: str, detail: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


_CASES = None


def cases():
    """Every node test case, built once (about 20 s)."""
    global _CASES
    if _CASES is None:
        from onnx.backend.test.case.node import collect_testcases

        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            _CASES = [c for c in collect_testcases() if c.model is not None]
    return _CASES


def all_supported(case) -> bool:
    from bpc.compiler.frontends.onnx_model import SUPPORTED

    return all(n.op_type in SUPPORTED and n.domain in ("", "ai.onnx") for n in case.model.graph.node)


def _prepare(case):
    """The case's model with integer inputs made initializers, bool outputs made 0/1 floats."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.ModelProto()
    model.CopyFrom(case.model)
    g = model.graph
    inputs, expected = case.data_sets[0]
    feeds, floats = {}, []
    keep = []
    for vi, arr in zip(list(g.input), inputs):
        if not vi.type.HasField("tensor_type"):
            raise Skip("input type", "a sequence or optional input")
        arr = numpy_helper.to_array(arr) if isinstance(arr, TensorProto) else np.asarray(arr)
        if arr.dtype.kind in "iu":  # shapes, axes, labels: constants of the test
            g.initializer.append(numpy_helper.from_array(arr, vi.name))
            continue
        if arr.dtype == np.float16 or arr.dtype.kind not in "fb":
            raise Skip("input dtype", f"{arr.dtype} input")
        keep.append(vi)
        feeds[vi.name] = arr.astype(np.float64)
        if arr.dtype.kind == "f":
            floats.append(vi.name)
    del g.input[:]
    g.input.extend(keep)
    outs = []
    for k, vi in enumerate(list(g.output)):
        exp = expected[k]
        exp = numpy_helper.to_array(exp) if isinstance(exp, TensorProto) else np.asarray(exp)
        if exp.dtype == np.bool_:
            name = vi.name + "_as_float"
            one = numpy_helper.from_array(np.array(1.0, np.float32), vi.name + "_one")
            zero = numpy_helper.from_array(np.array(0.0, np.float32), vi.name + "_zero")
            g.node.append(helper.make_node("Constant", [], [one.name], value=one))
            g.node.append(helper.make_node("Constant", [], [zero.name], value=zero))
            g.node.append(helper.make_node("Where", [vi.name, one.name, zero.name], [name]))
            g.output[k].name = name
            outs.append((name, exp.astype(np.float64), "bool"))
        elif exp.dtype.kind == "f" and exp.dtype != np.float16:
            outs.append((vi.name, exp.astype(np.float64), str(exp.dtype)))
        else:
            raise Skip("output dtype", f"{exp.dtype} output")
    return model, feeds, floats, outs


def run(case) -> dict:
    """Compile and check one case; returns what was checked. Raises Skip or AssertionError."""
    from bpc.compiler.frontends.onnx_model import Unsupported, source_from_model
    from bpc.compiler.options import CompileOptions
    from bpc.compiler.pipeline import compile_spec
    from bpc.runtime.loader import load_source

    model, feeds, floats, outs = _prepare(case)
    names: dict[str, str] = {}
    first = outs[0]
    scalar = first[1].size == 1 and first[2] != "bool"
    loss = None if scalar else "sse"
    try:
        from bpc.compiler.frontends import onnx_model

        src = source_from_model(model, CompileOptions(loss=loss, wrt=()), names=names)
        wrt = [names[f] for f in floats if f in names]
        if first[2] == "bool" or not wrt:
            wrt = []
        spec = src.spec.model_copy(update={"wrt": wrt or None})
        if not wrt and not spec.params:
            spec = spec.model_copy(update={"wrt": [spec.loss]})  # nothing to differentiate: forward only
        c = compile_spec(spec, spec_path=src.path, spec_text=src.text, options=CompileOptions(comments=False))
    except Unsupported as e:
        raise Skip(e.reason, e.message) from None
    m = load_source(c.source, c.name)
    params = m.init_params()
    args = {names[k]: v for k, v in feeds.items()}
    rng = np.random.default_rng(0)
    target = None
    if loss is not None:
        tname = next(n for n in m.INPUTS if n not in args)
        target = rng.standard_normal(m.INPUTS[tname] if all(isinstance(d, int) for d in m.INPUTS[tname]) else first[1].shape)
        target = rng.standard_normal(first[1].shape)
        args[tname] = target
    with np.errstate(all="ignore"):
        res = m.forward(**params, **args)
    value, outputs = (res if isinstance(res, tuple) else (res, {}))
    for name, exp, kind in outs:
        got = value if names[name] == m.LOSS else outputs[names[name]]
        got = np.asarray(got, dtype=np.float64)
        assert got.shape == exp.shape or got.size == exp.size == 1, f"{name}: shape {got.shape}, expected {exp.shape}"
        got = got.reshape(exp.shape)
        scale = max(1.0, float(np.max(np.abs(exp[np.isfinite(exp)]), initial=0.0)))
        rtol, atol = {"float64": (1e-10, 1e-12), "bool": (0, 0)}.get(kind, (1e-5, 1e-6 * scale))
        np.testing.assert_allclose(got, exp, rtol=rtol, atol=atol, equal_nan=True, err_msg=f"output {name}")
    checked = 0
    if wrt:
        checked = _check_grads(m, params, args, [w for w in wrt if w in args])
    return {"outputs": len(outs), "grad_elements": checked}


def _loss(m, params, args) -> float:
    with np.errstate(all="ignore"):
        r = m.forward(**params, **args)
    return float(np.sum(r[0] if isinstance(r, tuple) else r))


def _check_grads(m, params, args, wrt) -> int:
    with np.errstate(all="ignore"):
        loss, grads = m.value_and_grad(**params, **args)
    if not np.isfinite(loss):
        return 0
    rng = np.random.default_rng(1)
    checked = 0
    for w in wrt:
        x = np.array(args[w], dtype=np.float64)
        flat = x.reshape(-1)
        g = np.asarray(grads[w], dtype=np.float64).reshape(-1)
        picks = np.arange(flat.size) if flat.size <= SAMPLES else rng.choice(flat.size, SAMPLES, replace=False)
        f0 = _loss(m, params, args)
        for i in picks:
            old = flat[i]
            h = 1e-6 * max(1.0, abs(old))
            flat[i] = old + h
            up = _loss(m, params, {**args, w: x})
            flat[i] = old - h
            down = _loss(m, params, {**args, w: x})
            flat[i] = old
            if not (np.isfinite(up) and np.isfinite(down)):
                continue
            right, left = (up - f0) / h, (f0 - down) / h
            if abs(right - left) > 1e-3 * (abs(right) + abs(left)) + 1e-4 * max(1.0, abs(f0)):
                continue  # a kink: no derivative to compare with
            numeric = (up - down) / (2 * h)
            tol = 1e-5 * max(1.0, abs(numeric)) + 1e-7 * max(1.0, abs(f0))
            assert abs(g[i] - numeric) <= tol, (
                f"d loss / d {w}[{i}]: bpc {g[i]!r}, central differences {numeric!r}"
            )
            checked += 1
    return checked
