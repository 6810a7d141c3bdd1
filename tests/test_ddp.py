"""Distributed runs as subprocess scripts (2 CPU processes, gloo), each with a timeout.

In both scripts rank 0 charges 100 J per step, rank 1 200 J, and a node-level counter 50 J
per step that only the node's leader may count: a 4-step epoch costs the job 1400 J, and the
2000 J budget is spent after the second epoch (2800 J).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from carbonstep.report.record import RunReport

pytestmark = pytest.mark.slow
HERE = Path(__file__).parent
KWH = 3.6e6


def _check_job(tmp_path: Path, uri: str, experiment: str, device_name: str) -> dict:
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    own = [RunReport.from_dict(r["rank_report"]) for r in ranks]
    # each rank measured its own share; the node counter only on the node's leader
    assert [sorted(d.name for d in r.devices) for r in own] == [["node-energy", device_name], [device_name]]
    assert own[0].energy_kwh * KWH == pytest.approx(8 * (100 + 50))
    assert own[1].energy_kwh * KWH == pytest.approx(8 * 200)
    # one job report, written by rank zero: the sum of the ranks, nothing twice
    job = RunReport.load(ranks[0]["report"])
    assert ranks[1]["report"].endswith("-rank1.json") and not ranks[0]["report"].endswith("-rank0.json")
    assert job.energy_kwh == pytest.approx(own[0].energy_kwh + own[1].energy_kwh)
    assert job.energy_kwh * KWH == pytest.approx(2800)
    assert job.co2_kg == pytest.approx(own[0].co2_kg + own[1].co2_kg)
    assert [p["label"] for p in job.extra["parts"]] == ["rank0", "rank1"]
    assert len(job.extra["nodes"]) == 1 and job.extra["nodes"][0]["processes"] == 2
    # epoch rows come from marks placed between samples (0.05 s apart): interpolated, so within 2 %
    assert [e.energy_kwh * KWH for e in job.epochs] == pytest.approx([1400, 1400], rel=0.02)
    # the budget saw the job's total, so both ranks stopped after the same epoch for the same reason
    for r in ranks:
        assert r["budget"]["reason"].startswith("budget spent") and r["budget"]["epoch"] == 1
    assert [r["logged"] for r in ranks] == [True, False]  # only global rank zero logs
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    assert len(runs) == 1
    history = client.get_metric_history(runs[0].info.run_id, "epoch_energy_kwh")
    assert [m.value * KWH for m in sorted(history, key=lambda m: m.step)] == pytest.approx([1400, 1400])
    final = max(client.get_metric_history(runs[0].info.run_id, "energy_kwh"), key=lambda m: (m.step, m.timestamp))
    assert final.value == pytest.approx(job.energy_kwh)
    return ranks[0]


def test_lightning_ddp_sums_ranks_counts_the_node_once_and_stops_together(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    result = subprocess.run([sys.executable, str(HERE / "ddp_lightning.py"), str(tmp_path), uri],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    rank0 = _check_job(tmp_path, uri, "ddp", "step-energy")
    assert rank0["epochs_run"] == 2


def test_torchrun_hf_trainer_sums_ranks_counts_the_node_once_and_stops_together(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                             str(HERE / "ddp_transformers.py"), str(tmp_path), uri],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    rank0 = _check_job(tmp_path, uri, "hf-ddp", "step-energy")
    assert rank0["global_step"] == 8
