"""ONNX conformance: every backend node test case whose ops bpc supports is a test.

The cases are built in memory by ``onnx.backend.test.case.node`` (about 1,900;
building them takes about 20 s, so the module is marked slow; CI runs it).
Each case is compiled by the ONNX front end and checked by
``tests/onnx_conformance.py``: forward outputs against the expected outputs,
gradients against central differences. A case skipped for an unsupported
attribute or dtype says why (``pytest -rs`` lists them).
"""

from __future__ import annotations

import pytest

pytest.importorskip("onnx", reason="the ONNX front end needs the onnx extra: pip install '.[onnx]'")

from . import onnx_conformance as oc  # noqa: E402

CASES = [c for c in oc.cases() if oc.all_supported(c)]

pytestmark = pytest.mark.slow


def test_the_supported_cases_are_many():
    # A broken collection (or a front end that lost ops) must not pass as "no cases".
    assert len(CASES) >= 400


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case(case):
    try:
        checked = oc.run(case)
    except oc.Skip as e:
        pytest.skip(f"{e.reason}: {e.detail}")
    assert checked["outputs"] >= 1
