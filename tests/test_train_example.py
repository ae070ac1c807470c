"""examples/train_mlp_2_10_10_1.py learns at its defaults: its final test loss
ends well below the loss of the best constant predictor, which it computes and
prints; it saves a loss curve when matplotlib is there and says so when not."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "examples" / "train_mlp_2_10_10_1.py"


def _has_matplotlib() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def test_training_at_the_defaults_ends_far_below_the_constant_mean_predictor(tmp_path):
    png = tmp_path / "curve.png"
    r = subprocess.run(
        [sys.executable, str(SCRIPT), "--plot", str(png)], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert r.returncode == 0, r.stderr
    m = re.search(r"test loss: ([0-9.]+) -> ([0-9.]+) \(constant-mean predictor: ([0-9.]+)", r.stdout)
    first, last, baseline = map(float, m.groups())
    assert 0.02 < baseline < 0.08  # Var((x1^2 + x2^2) / 2) = 2/45 for x uniform in [-1, 1]
    assert last < baseline / 10 < first, r.stdout
    if _has_matplotlib():
        assert f"loss curve: {png}" in r.stdout
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    else:
        assert "matplotlib is not installed" in r.stdout and not png.exists()


def test_without_matplotlib_it_says_so(tmp_path, monkeypatch, capsys):
    spec = importlib.util.spec_from_file_location("train_example", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    assert mod.main(["--steps", "20", "--quiet", "--plot", str(tmp_path / "c.png")]) == 0
    out = capsys.readouterr().out
    assert "loss curve: not drawn, matplotlib is not installed" in out
    assert not (tmp_path / "c.png").exists()


@pytest.mark.skipif(not _has_matplotlib(), reason="matplotlib not installed (optional: the example only plots with it)")
def test_with_matplotlib_the_curve_is_a_png(tmp_path):
    spec = importlib.util.spec_from_file_location("train_example2", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    curve, baseline = mod.train(steps=20, verbose=False, tests=10)
    assert len(curve) == 21 and curve[0][0] == 0 and curve[-1][0] == 20
    assert mod.plot(curve, baseline, tmp_path / "c.png")
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
