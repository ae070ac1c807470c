"""The op table, from the registry: for ``bpc ops`` and ``docs/ops.md``."""

from __future__ import annotations

from .registry import REQUIRED, OpDef, all_ops

OPERAND_NAMES = {1: ["x"], 2: ["a", "b"], 3: ["cond", "a", "b"]}
CATEGORY_ORDER = ["elementwise", "comparison", "linalg", "shape", "reduction", "softmax", "loss"]


def signature(op: OpDef) -> str:
    names = OPERAND_NAMES.get(op.arity, ["*xs"]) if op.arity != 0 else []
    attrs = [
        a.name if a.default is REQUIRED else f"{a.name}={a.default!r}" for a in op.attrs
    ]
    return f"{op.name}({', '.join(names + attrs)})"


def rows(public_only: bool = True) -> list[tuple[str, str, str, str]]:
    ops = [o for o in all_ops().values() if o.category != "source" and (o.public or not public_only)]
    ops.sort(key=lambda o: (CATEGORY_ORDER.index(o.category) if o.category in CATEGORY_ORDER else 99, o.name))
    return [(o.category, signature(o), o.doc, o.derivative) for o in ops]


def markdown() -> str:
    out = [
        "# Ops",
        "",
        "Generated from the op registry by `python -m bpc.compiler.ops.docs` (a test keeps it",
        "current). In the derivative column `g` is the gradient flowing back from the op's",
        "output and `y` the op's output. Every op is tested by the registry-driven suite",
        "(`tests/test_ops.py`): shape rule, forward value against NumPy, and the derivative",
        "against central finite differences, on each of its samples.",
        "",
        "Composite ops are defined by a decomposition into other ops (their derivative",
        "follows from the parts, and the generated code shows each step).",
        "",
        "## Conventions at kinks",
        "",
        "- `relu`: derivative 0 at x = 0 (`g * (y > 0)`).",
        "- `abs`: derivative `sign(x)`, so 0 at x = 0.",
        "- `leaky_relu`, `elu`: the x <= 0 branch at x = 0.",
        "- `maximum(a, b)` / `minimum(a, b)`: on ties the whole gradient goes to `a`.",
        "- `max` / `min` reductions: ties share the gradient equally.",
        "- comparisons, `where`'s condition, `sign`, `stop_gradient`: no gradient.",
        "",
        "## Stable forms",
        "",
        "`sigmoid` is `exp(-logaddexp(0, -x))`, `softplus` is `logaddexp(0, x)`,",
        "`logsumexp`/`softmax`/`log_softmax` subtract the max first, `softmax_cross_entropy`",
        "uses `log_softmax`, `bce_with_logits` is `softplus(z) - t * z`, `elu` evaluates",
        "`expm1` on `min(x, 0)`: all finite, without NumPy warnings, for |x| up to 1e3",
        "(`tests/test_numerics.py`).",
        "",
        "| category | op | what | derivative |",
        "| --- | --- | --- | --- |",
    ]
    for cat, sig, doc, der in rows():
        out.append(f"| {cat} | `{sig}` | {doc} | {der} |")
    out.append("")
    out.append("Expressions also accept `a + b`, `a - b`, `a * b`, `a / b`, `a @ b`, `-a`,")
    out.append("`a ** 2` (`square`), `a ** p` (`pow_const`), `a > b` (`gt`, likewise `>= < <= ==`),")
    out.append("`a.T` (`transpose`) and `a[0, 1:3]` (`slice`).")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    from pathlib import Path

    p = Path(__file__).resolve().parents[2] / "docs" / "ops.md"
    p.write_text(markdown())
    print(f"wrote {p}")
