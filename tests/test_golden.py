"""generated/ is a golden copy: byte-identical to a fresh compile, formatted, numpy-only."""

from __future__ import annotations

import ast

import black
import pytest

from bpc.compiler.pipeline import compile_file

from .conftest import EXAMPLES, ROOT

IDS = [p.stem for p in EXAMPLES]


@pytest.mark.parametrize("spec", EXAMPLES, ids=IDS)
def test_generated_is_up_to_date(spec):
    fresh = compile_file(spec.relative_to(ROOT)).source
    committed = (ROOT / "generated" / f"{spec.stem}.py").read_text()
    assert committed == fresh, f"regenerate: bpc compile examples/*.json ({spec.stem} differs)"


@pytest.mark.parametrize("spec", EXAMPLES, ids=IDS)
def test_compile_is_deterministic(spec):
    a = compile_file(spec.relative_to(ROOT)).source
    b = compile_file(spec.relative_to(ROOT)).source
    assert a == b


@pytest.mark.parametrize("spec", EXAMPLES, ids=IDS)
def test_generated_is_black_formatted_and_imports_only_numpy(spec):
    src = (ROOT / "generated" / f"{spec.stem}.py").read_text()
    assert black.format_str(src, mode=black.Mode()) == src
    tree = ast.parse(src)
    imports = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert [ast.unparse(n) for n in imports] == ["import numpy as np"]
    assert "timestamp" not in src.lower()


@pytest.mark.parametrize("spec", EXAMPLES, ids=IDS)
def test_generated_has_no_unused_assignments(spec):
    """Every local assigned in a function is read later in it (no dead code)."""
    tree = ast.parse((ROOT / "generated" / f"{spec.stem}.py").read_text())
    for fn in [n for n in tree.body if isinstance(n, ast.FunctionDef)]:
        stored = {n.id for n in ast.walk(fn) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        loaded = {n.id for n in ast.walk(fn) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        assert stored <= loaded, f"{fn.name}: unused {sorted(stored - loaded)}"


def test_schema_file_is_up_to_date():
    from bpc.compiler.spec import SCHEMA_PATH, schema_text

    assert SCHEMA_PATH.read_text() == schema_text(), "run: python -m bpc.compiler.spec --schema"


def test_ops_doc_is_up_to_date():
    from bpc.compiler.ops.docs import markdown

    assert (ROOT / "docs" / "ops.md").read_text() == markdown(), "run: python -m bpc.compiler.ops.docs"


O3_GOLDEN = sorted((ROOT / "generated" / "o3").glob("*.py"))


def test_o3_goldens_exist():
    assert [p.stem for p in O3_GOLDEN] == ["deep_tanh", "mnist_mlp"]


@pytest.mark.parametrize("golden", O3_GOLDEN, ids=[p.stem for p in O3_GOLDEN])
def test_o3_generated_is_up_to_date(golden):
    from bpc.compiler.options import CompileOptions

    spec = ROOT / "examples" / f"{golden.stem}.json"
    fresh = compile_file(spec.relative_to(ROOT), options=CompileOptions(opt_level=3)).source
    assert golden.read_text() == fresh, f"regenerate: bpc compile examples/{golden.stem}.json -O3 -o generated/o3"
    assert black.format_str(fresh, mode=black.Mode()) == fresh
    tree = ast.parse(fresh)
    assert [ast.unparse(n) for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))] == ["import numpy as np"]
    for fn in [n for n in tree.body if isinstance(n, ast.FunctionDef)]:
        stored = {n.id for n in ast.walk(fn) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        loaded = {n.id for n in ast.walk(fn) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        assert stored <= loaded, f"{fn.name}: unused {sorted(stored - loaded)}"
