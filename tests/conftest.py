import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.json"))

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture(autouse=True)
def _repo_cwd(monkeypatch):
    """Spec paths in generated headers are relative to the repo root."""
    monkeypatch.chdir(ROOT)
