"""Neural-network ops: activations, softmax family, losses.

Several are *composite*: declared with a ``decompose`` rule that builds them from
primitive ops (stable forms included), so their derivatives come from the
primitives' rules and the generated code shows every step. Their ``impl`` is an
independent NumPy reference used by the registry-driven tests.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ShapeError
from .core import _unary, _reduce_shape, same, unary_samples
from .registry import Attr, Sample, broadcast, defop, norm_axes

REDUCTION = Attr("reduction", "choice", "mean", "'mean' or 'sum' over examples", ("mean", "sum"))


# ------------------------------------------------------------------ activations

_unary(
    "leaky_relu",
    impl=lambda x, alpha: np.where(x > 0, x, alpha * x),
    vjp=lambda g, out, x, alpha: [g * x.apply("gt", 0.0).apply("where", 1.0, alpha)],
    derivative="dx = g * where(x > 0, 1, alpha)",
    doc="x where x > 0, else alpha * x.",
    attrs=[Attr("alpha", "float", 0.01)],
    kinks=(0.0,),
    samples=unary_samples() + [Sample(((2, 3),), {"alpha": 0.2})],
)
_unary(
    "elu",
    impl=lambda x, alpha: np.where(x > 0, x, alpha * (np.exp(np.minimum(x, 0.0)) - 1.0)),
    vjp=lambda g, out, x, alpha: [g * x.apply("gt", 0.0).apply("where", 1.0, out + alpha)],
    derivative="dx = g * where(x > 0, 1, y + alpha)  (reuses y)",
    doc="x where x > 0, else alpha * (exp(x) - 1); no overflow for large x.",
    attrs=[Attr("alpha", "float", 1.0)],
    kinks=(0.0,),
    samples=unary_samples() + [Sample(((2, 3),), {"alpha": 0.5})],
)
_unary(
    "softplus",
    traits={"analytic"},
    impl=lambda x: np.where(x > 0, x + np.log1p(np.exp(-np.abs(x))), np.log1p(np.exp(-np.abs(x)))),
    vjp=lambda g, out, x: [g * x.apply("sigmoid")],
    derivative="dx = g * sigmoid(x)",
    doc="log(1 + exp(x)), computed as logaddexp(0, x): no overflow.",
    domain=(-4.0, 4.0),
)

_erf = np.frompyfunc(math.erf, 1, 1)
_unary(
    "erf",
    impl=lambda x: np.asarray(_erf(x), dtype=np.float64),
    vjp=lambda g, out, x: [g * ((2.0 / math.sqrt(math.pi)) * (-(x * x)).apply("exp"))],
    derivative="dx = g * 2 / sqrt(pi) * exp(-x**2)",
    doc="The error function; NumPy has none, so the module spells it with np.polyval "
    "(a series for |x| < 2, an asymptotic fit beyond; error below 1e-15).",
    domain=(-3.0, 3.0),
)

GELU_C = math.sqrt(2.0 / math.pi)


def _gelu(x):
    inner = GELU_C * (x + 0.044715 * x ** 3.0)
    return 0.5 * x * (1.0 + inner.apply("tanh"))


defop(
    "gelu",
    arity=1,
    shape=same,
    impl=lambda x: 0.5 * x * (1.0 + np.tanh(GELU_C * (x + 0.044715 * x**3))),
    vjp=None,
    decompose=_gelu,
    derivative="from its decomposition 0.5 x (1 + tanh(c (x + 0.044715 x^3)))",
    doc="Gaussian error linear unit, tanh approximation (composite).",
    samples=unary_samples(),
    domain=(-3.0, 3.0),
)

# ------------------------------------------------------------------ softmax family


def _shifted(x, axis):
    """x - max(x) along axis (the max is a constant for differentiation)."""
    return x - x.apply("max", axis=axis, keepdims=True).apply("stop_gradient")


def _logsumexp(x, axis, keepdims):
    m = x.apply("max", axis=axis, keepdims=True).apply("stop_gradient")
    s = (x - m).apply("exp").apply("sum", axis=axis, keepdims=True).apply("log") + m
    return s if keepdims else s.reshape(_reduce_shape(x.shape, axis, False))


def _np_lse(x, axis, keepdims):
    m = np.max(x, axis=axis, keepdims=True)
    s = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return s if keepdims else np.squeeze(s, axis=axis) if axis is not None else s.reshape(())


def _softmax(x, axis):
    e = _shifted(x, axis).apply("exp")
    return e / e.apply("sum", axis=axis, keepdims=True)


def _log_softmax(x, axis):
    s = _shifted(x, axis)
    return s - s.apply("exp").apply("sum", axis=axis, keepdims=True).apply("log")


def _np_log_softmax(x, axis):
    s = x - np.max(x, axis=axis, keepdims=True)
    return s - np.log(np.sum(np.exp(s), axis=axis, keepdims=True))


AXIS_SAMPLES = [Sample(((2, 5),), {"axis": -1}), Sample(((3, 4),), {"axis": 0}), Sample(((5,),), {"axis": -1})]

defop(
    "logsumexp",
    arity=1,
    shape=_reduce_shape,
    impl=_np_lse,
    vjp=None,
    decompose=_logsumexp,
    attrs=[Attr("axis", "axis", None), Attr("keepdims", "bool", False)],
    derivative="dx = g * softmax(x)  (from the decomposition max + log(sum(exp(x - max))))",
    doc="log(sum(exp(x))) over axes, shifted by the max: no overflow (composite).",
    category="reduction",
    samples=[
        Sample(((2, 3),), {"axis": None, "keepdims": False}),
        Sample(((2, 3),), {"axis": 1, "keepdims": False}),
        Sample(((2, 3),), {"axis": 0, "keepdims": True}),
    ],
)
defop(
    "softmax",
    arity=1,
    shape=lambda x, axis: (norm_axes(axis, len(x)), x)[1],
    impl=lambda x, axis: np.exp(_np_log_softmax(x, axis)),
    vjp=None,
    decompose=_softmax,
    attrs=[Attr("axis", "int", -1)],
    derivative="dx = y * (g - sum(g * y, axis))  (from the decomposition)",
    doc="exp(x - max) / sum(exp(x - max)) along an axis (composite).",
    category="softmax",
    samples=AXIS_SAMPLES,
)
defop(
    "log_softmax",
    arity=1,
    shape=lambda x, axis: (norm_axes(axis, len(x)), x)[1],
    impl=_np_log_softmax,
    vjp=None,
    decompose=_log_softmax,
    attrs=[Attr("axis", "int", -1)],
    derivative="dx = g - softmax(x) * sum(g, axis)  (from the decomposition)",
    doc="x - max - log(sum(exp(x - max))) along an axis (composite).",
    category="softmax",
    samples=AXIS_SAMPLES,
)


def _one_hot_shape(labels, num_classes):
    return tuple(labels) + (num_classes,)


defop(
    "one_hot",
    traits={"constant"},
    value_operands=(),
    arity=1,
    shape=_one_hot_shape,
    impl=lambda labels, num_classes: np.eye(num_classes)[np.asarray(labels).astype(np.intp)],
    vjp=lambda g, out, labels, num_classes: [None],
    attrs=[Attr("num_classes", "int", min=1)],
    derivative="no gradient (labels are integers)",
    doc="Integer class labels (stored as floats) to one-hot rows along a new last axis.",
    category="loss",
    samples=[Sample(((4,),), {"num_classes": 3}, ((0.0, 2.0),), integer=(0,))],
)

# ------------------------------------------------------------------ losses


def _reduce(per, reduction):
    return per.apply("mean" if reduction == "mean" else "sum", axis=None, keepdims=False)


def _np_reduce(per, reduction):
    return np.mean(per) if reduction == "mean" else np.sum(per)


def _pair_shape(a, b, reduction="mean"):
    broadcast(a, b)
    return ()


def _labels_kind(logits, labels, axis):
    """'onehot' when labels match logits, 'index' when they lack the class axis."""
    ax = norm_axes(axis, len(logits))[0]
    if tuple(labels) == tuple(logits):
        return "onehot"
    if ax == len(logits) - 1 and tuple(labels) == tuple(logits[:-1]):
        return "index"
    raise ShapeError(
        f"labels of shape {list(labels)} fit neither one-hot targets {list(logits)} "
        f"nor integer labels {list(logits[:-1])} (class axis last)"
    )


def _ce_shape(logits, labels, axis, reduction):
    _labels_kind(logits, labels, axis)
    return ()


def _targets(logits, labels, axis):
    if _labels_kind(logits.shape, labels.shape, axis) == "onehot":
        return labels
    return labels.apply("one_hot", num_classes=logits.shape[-1])


def _np_targets(logits, labels, axis):
    if labels.shape == logits.shape:
        return labels
    return np.eye(logits.shape[-1])[labels.astype(np.intp)]


defop(
    "mse",
    arity=2,
    shape=_pair_shape,
    impl=lambda p, t, reduction: _np_reduce((p - t) ** 2, reduction),
    vjp=None,
    decompose=lambda p, t, reduction: _reduce((p - t).apply("square"), reduction),
    attrs=[REDUCTION],
    derivative="dp = 2 (p - t) / n  (from the decomposition)",
    doc="Mean (or summed) squared error between prediction and target (composite).",
    category="loss",
    samples=[Sample(((4, 2), (4, 2))), Sample(((3, 1), (3, 1)), {"reduction": "sum"})],
)
defop(
    "sse",
    arity=2,
    shape=_pair_shape,
    impl=lambda p, t: np.sum((p - t) ** 2),
    vjp=None,
    decompose=lambda p, t: (p - t).apply("square").apply("sum", axis=None, keepdims=False),
    derivative="dp = 2 (p - t)  (from the decomposition)",
    doc="Sum of squared errors (composite).",
    category="loss",
    samples=[Sample(((4, 2), (4, 2))), Sample(((1, 1), (1, 1)))],
)
defop(
    "softmax_cross_entropy",
    arity=2,
    shape=_ce_shape,
    impl=lambda z, y, axis, reduction: _np_reduce(
        -np.sum(_np_targets(z, y, axis) * _np_log_softmax(z, axis), axis=axis), reduction
    ),
    vjp=None,
    decompose=lambda z, y, axis, reduction: _reduce(
        -(_targets(z, y, axis) * _log_softmax(z, axis)).apply("sum", axis=axis, keepdims=False), reduction
    ),
    attrs=[Attr("axis", "int", -1), REDUCTION],
    derivative="dlogits = (softmax(logits) - targets) / n  (from the decomposition)",
    doc="Cross-entropy of softmax(logits) against integer labels (shape without the "
    "class axis) or one-hot/probability targets (same shape), stable (composite).",
    category="loss",
    samples=[
        Sample(((4, 3), (4,)), {}, ((-3.0, 3.0), (0.0, 2.0)), integer=(1,)),
        Sample(((4, 3), (4, 3)), {"reduction": "sum"}, ((-3.0, 3.0), (0.0, 1.0))),
    ],
)
defop(
    "nll",
    arity=2,
    shape=_ce_shape,
    impl=lambda lp, y, axis, reduction: _np_reduce(-np.sum(_np_targets(lp, y, axis) * lp, axis=axis), reduction),
    vjp=None,
    decompose=lambda lp, y, axis, reduction: _reduce(
        -(_targets(lp, y, axis) * lp).apply("sum", axis=axis, keepdims=False), reduction
    ),
    attrs=[Attr("axis", "int", -1), REDUCTION],
    derivative="dlogp = -targets / n  (from the decomposition)",
    doc="Negative log-likelihood of log-probabilities against labels (composite).",
    category="loss",
    samples=[
        Sample(((4, 3), (4,)), {}, ((-3.0, -0.1), (0.0, 2.0)), integer=(1,)),
        Sample(((2, 3), (2, 3)), {"reduction": "sum"}, ((-3.0, -0.1), (0.0, 1.0))),
    ],
)
defop(
    "bce_with_logits",
    arity=2,
    shape=_pair_shape,
    impl=lambda z, t, reduction: _np_reduce(np.logaddexp(0.0, z) - t * z, reduction),
    vjp=None,
    decompose=lambda z, t, reduction: _reduce(z.apply("softplus") - t * z, reduction),
    attrs=[REDUCTION],
    derivative="dlogits = (sigmoid(logits) - t) / n  (from the decomposition)",
    doc="Binary cross-entropy from logits: softplus(z) - t * z, stable (composite).",
    category="loss",
    samples=[
        Sample(((4, 1), (4, 1)), {}, ((-3.0, 3.0), (0.0, 1.0))),
        Sample(((2, 3), (2, 3)), {"reduction": "sum"}, ((-3.0, 3.0), (0.0, 1.0))),
    ],
)
