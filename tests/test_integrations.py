"""The runnable examples under integrations/ run end to end (small settings) in a scratch directory."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
SCIENTIFIC = re.compile(r"\d(\.\d+)?e[+-]\d+ ?(J|Wh|kWh|g|kg|mg|L|mL|W)\b")  # a figure in scientific notation


@pytest.mark.parametrize(
    ("script", "args", "expect", "summary"),
    [
        ("lightning/train.py", ["--epochs", "1"], "x-axis to 'Metric'", True),
        ("transformers/train.py", ["--epochs", "1"], "co2_eq_emissions", True),
        ("keras/train.py", ["--epochs", "1"], "J per sample", True),
        ("ddp/train.py", ["--epochs", "1"], "= the sum of 2 ranks", True),
        ("gelu_study/study.py", ["--epochs", "1", "--seeds", "1", "--samples", "2048"], "CO2e than gelu", False),
    ],
)
def test_example_runs(tmp_path: Path, script: str, args: list[str], expect: str, summary: bool) -> None:
    env = {**os.environ, "KERAS_BACKEND": "torch", "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db"}
    work = tmp_path / "work"  # the directory the example is started from: it must leave nothing there
    work.mkdir()
    out = ["--output-dir", str(tmp_path / "out")] if "gelu_study" not in script else ["--out", str(tmp_path / "out")]
    result = subprocess.run([sys.executable, str(ROOT / "integrations" / script), *args, *out], cwd=work, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert expect in result.stdout
    assert ("carbonstep · run" in result.stderr) == summary  # the one-screen summary
    assert list((tmp_path / "out").rglob("carbonstep-*.json"))
    left = {p.name for p in work.iterdir()} - {"mlruns"}  # MLflow's own artifact folder (ignored by git)
    assert not left, f"the example left {left} where it was started"
    assert not SCIENTIFIC.search(result.stdout + result.stderr), SCIENTIFIC.search(result.stdout + result.stderr)
