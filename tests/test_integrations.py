"""The runnable examples under integrations/ run end to end (small settings) in a scratch directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("script", "args", "expect", "summary"),
    [
        ("lightning/train.py", ["--epochs", "1"], "x-axis to 'Metric'", True),
        ("transformers/train.py", ["--epochs", "1"], "co2_eq_emissions", True),
        ("keras/train.py", ["--epochs", "1"], "mJ per sample", True),
        ("ddp/train.py", ["--epochs", "1"], "= the sum of 2 ranks", True),
        ("gelu_study/study.py", ["--epochs", "1", "--seeds", "1", "--samples", "2048"], "CO2e than gelu", False),
    ],
)
def test_example_runs(tmp_path: Path, script: str, args: list[str], expect: str, summary: bool) -> None:
    env = {**os.environ, "KERAS_BACKEND": "torch", "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db"}
    result = subprocess.run([sys.executable, str(ROOT / "integrations" / script), *args], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert expect in result.stdout
    assert ("carbonstep · run" in result.stderr) == summary  # the one-screen summary
    assert list(tmp_path.rglob("carbonstep-*.json"))
