import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.json"))
# The seed notebooks' code as written (examples/notebooks/), with the flags each needs.
NOTEBOOK_FLAGS = json.loads((ROOT / "examples" / "notebooks" / "notebooks.json").read_text())
NOTEBOOKS = [ROOT / "examples" / "notebooks" / f for f in NOTEBOOK_FLAGS]


def notebook_options(path: Path):
    from bpc.compiler.options import CompileOptions

    return CompileOptions(**{k: tuple(v) if isinstance(v, list) else v for k, v in NOTEBOOK_FLAGS[path.name].items()})

# bpc is imported as installed (pip install -e '.[test]' or '.[test]'): one name,
# bpc.compiler / bpc.runtime / bpc.cli, never the folders themselves.


@pytest.fixture(autouse=True)
def _repo_cwd(monkeypatch):
    """Spec paths in generated headers are relative to the repo root."""
    monkeypatch.chdir(ROOT)

try:  # hypothesis profiles: fast in CI, long on request (--hypothesis-profile=long)
    from hypothesis import HealthCheck, settings

    settings.register_profile(
        "default", max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    settings.register_profile(
        "long", max_examples=10_000, deadline=None, suppress_health_check=list(HealthCheck)
    )
    settings.load_profile("default")
except ImportError:  # pragma: no cover
    pass
