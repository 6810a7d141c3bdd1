"""The MLflow sink against a real ``mlflow server`` process on 127.0.0.1, up and down."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import lightning.pytorch as pl
import pytest
from mlflow import MlflowClient

from carbonstep.lightning import CarbonCallback
from carbonstep.report.record import RunReport
from carbonstep.report.summary import render

from .lightning_model import loaders, make_module
from .mlflow_server import MlflowServer, free_port

pytestmark = pytest.mark.slow


def fit(tmp_path: Path, epochs: int = 2) -> CarbonCallback:
    callback = CarbonCallback(region="FR", interval_s=0.05, output_dir=tmp_path / "out")
    trainer = pl.Trainer(max_epochs=epochs, logger=False, callbacks=[callback], log_every_n_steps=2,
                         enable_checkpointing=False, default_root_dir=tmp_path, enable_progress_bar=False,
                         enable_model_summary=False)
    trainer.fit(make_module(pl), *loaders())
    return callback


def test_remote_server_receives_a_run_of_its_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = MlflowServer(tmp_path / "server").start()
    try:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", server.uri)
        monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "remote")
        callback = fit(tmp_path)
        client = MlflowClient(server.uri)
        runs = client.search_runs([client.get_experiment_by_name("remote").experiment_id])
        assert len(runs) == 1 and runs[0].info.status == "FINISHED"
        history = client.get_metric_history(runs[0].info.run_id, "co2_kg")
        assert history and history[-1].value == pytest.approx(callback.report.co2_kg, rel=1e-9)
        assert callback.session.messages == []
    finally:
        server.stop()


def test_unreachable_server_never_stops_training_and_sync_sends_later(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")  # nothing listens there
    callback = fit(tmp_path)
    report = callback.report
    assert report.status == "completed" and report.energy_kwh > 0  # training and the local report are whole
    assert (tmp_path / "out" / f"carbonstep-{report.run_id}.json").exists()
    message = callback.session.messages[0]
    assert "not sent to MLflow" in message and "carbonstep sync" in message and "metric" in message
    saved = RunReport.load(callback.session.report_path)  # the report and its summary say it too
    assert any("carbonstep sync" in e for e in saved.sink_errors) and "carbonstep sync" in render(saved)
    ledger = tmp_path / "out" / "carbonstep-mlflow-ledger.jsonl"
    unsent = sum(1 for line in ledger.read_text().splitlines() if '"type": "metric"' in line)
    assert unsent > 10

    server = MlflowServer(tmp_path / "server", port).start()
    try:
        result = subprocess.run([sys.executable, "-m", "carbonstep.cli", "sync", str(ledger),
                                 "--tracking-uri", server.uri],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        assert "records sent" in result.stdout
        client = MlflowClient(server.uri)
        runs = client.search_runs([client.get_experiment_by_name("Default").experiment_id])
        assert len(runs) == 1
        points = sum(len(client.get_metric_history(runs[0].info.run_id, key)) for key in runs[0].data.metrics)
        assert points == unsent  # every point arrived
        again = subprocess.run([sys.executable, "-m", "carbonstep.cli", "sync", str(ledger),
                                "--tracking-uri", server.uri],
                               capture_output=True, text=True, timeout=120)
        assert "nothing left to send" in again.stdout
    finally:
        server.stop()
