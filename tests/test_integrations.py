"""The runnable examples under integrations/ run end to end (small settings) in a scratch directory."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]  # on a loaded 2-CPU machine an example took 320 s
ROOT = Path(__file__).resolve().parents[1]
SCIENTIFIC = re.compile(r"\d(\.\d+)?e[+-]\d+ ?(J|Wh|kWh|g|kg|mg|L|mL|W)\b")  # a figure in scientific notation


@pytest.mark.parametrize(
    ("script", "args", "expect", "summary", "view"),
    [
        ("lightning/train.py", ["--epochs", "1"], "scripts/mlflow-ui carbonstep-lightning", True,
         ("carbonstep-lightning", "val_loss")),
        ("transformers/train.py", ["--epochs", "1"], "co2_eq_emissions", True,
         ("carbonstep-transformers", "eval_loss")),
        ("keras/train.py", ["--epochs", "1"], "J per sample", True, ("carbonstep-keras", "val_loss")),
        ("torch/train.py", ["--epochs", "1"], "scripts/mlflow-ui carbonstep-torch", True,
         ("carbonstep-torch", "val_loss")),
        ("ddp/train.py", ["--epochs", "1"], "= the sum of 2 ranks", True, None),
        ("gelu_study/study.py", ["--epochs", "1", "--seeds", "1", "--samples", "2048"], "CO2e than gelu", False,
         ("carbonstep-gelu-study", "val_loss")),
    ],
)
def test_example_runs(tmp_path: Path, script: str, args: list[str], expect: str, summary: bool,
                      view: tuple[str, str] | None) -> None:
    env = {**os.environ, "KERAS_BACKEND": "torch", "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db"}
    work = tmp_path / "work"  # the directory the example is started from: it must leave nothing there
    work.mkdir()
    out = ["--output-dir", str(tmp_path / "out")] if "gelu_study" not in script else ["--out", str(tmp_path / "out")]
    result = subprocess.run([sys.executable, str(ROOT / "integrations" / script), *args, *out], cwd=work, env=env,
                            capture_output=True, text=True, timeout=840)
    assert result.returncode == 0, result.stderr[-3000:]
    assert expect in result.stdout
    assert ("carbonstep · run" in result.stderr) == summary  # the one-screen summary
    assert list((tmp_path / "out").rglob("carbonstep-*.json"))
    left = {p.name for p in work.iterdir()} - {"mlruns"}  # MLflow's own artifact folder (ignored by git)
    assert not left, f"the example left {left} where it was started"
    assert not SCIENTIFIC.search(result.stdout + result.stderr), SCIENTIFIC.search(result.stdout + result.stderr)
    if view is not None:
        experiment, metric = view
        assert f"scripts/mlflow-ui {experiment}" in result.stdout or "scripts/mlflow-ui sqlite" in result.stdout
        assert_view_saved(env["MLFLOW_TRACKING_URI"], experiment, metric)


def assert_view_saved(tracking_uri: str, experiment: str, metric: str) -> None:
    """The experiment carries the saved view: its JSON charts ``metric`` against co2_kg."""
    from mlflow import MlflowClient

    from carbonstep.mlflow_io.chart_view import VIEW_TAG

    found = MlflowClient(tracking_uri).get_experiment_by_name(experiment)
    assert found is not None, experiment
    state = json.loads(found.tags[VIEW_TAG])
    chart = state["compareRunCharts"][0]
    assert (chart["metricKey"], chart["xAxisKey"], chart["selectedXAxisMetricKey"]) == (metric, "metric", "co2_kg")
    runs = MlflowClient(tracking_uri).search_runs([found.experiment_id])
    assert any(metric in run.data.metrics and "co2_kg" in run.data.metrics for run in runs)  # the chart has data
