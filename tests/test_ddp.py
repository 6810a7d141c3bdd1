"""Distributed runs as subprocess scripts (2 CPU processes, gloo), each with a timeout."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

pytestmark = pytest.mark.slow
HERE = Path(__file__).parent


def test_lightning_ddp_stops_both_ranks_at_one_epoch_and_logs_once(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    result = subprocess.run([sys.executable, str(HERE / "ddp_lightning.py"), str(tmp_path), uri],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["epochs_run"] == ranks[1]["epochs_run"] == 2  # rank 1 spent 1600 J ≥ 1000 J after epoch 1
    assert ranks[1]["budget"]["reason"].startswith("budget spent")
    assert "another rank" in ranks[0]["budget"]["reason"]
    assert [r["logged"] for r in ranks] == [True, False]  # only global rank zero logs
    assert sorted(p.name.rsplit("-", 1)[1] for p in (tmp_path / "reports").glob("carbonstep-*-rank*.json")) == \
        ["rank0.json", "rank1.json"]
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("ddp").experiment_id])
    assert len(runs) == 1
    steps = [m.step for m in client.get_metric_history(runs[0].info.run_id, "epoch_co2_kg")]
    assert steps == sorted(set(steps)) and len(steps) == 2  # one point per epoch: nobody logged twice
