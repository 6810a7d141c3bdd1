"""Faults that must lose nothing: signals, Ctrl-C, forked workers, a tracking server that dies."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from carbonstep.report.record import RunReport

HERE = Path(__file__).parent
KWH = 3.6e6


def _run(mode: str, out: Path, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(HERE / "fault_session.py"), mode, str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _only_report(out: Path) -> RunReport:
    files = sorted(out.glob("carbonstep-*.json"))
    assert len(files) == 1, files
    assert not list(out.glob(".carbonstep-*"))  # no temporary file left behind: the write was atomic
    return RunReport.load(files[0])  # parses: never a truncated JSON


def test_sigterm_writes_the_partial_report_marked_wasted_then_terminates(tmp_path: Path) -> None:
    process = _run("sigterm", tmp_path)
    deadline = time.monotonic() + 60
    while not (tmp_path / "ready").exists():
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)
    time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGTERM  # the signal still does what it did before
    report = _only_report(tmp_path)
    assert report.status == "interrupted" and report.wasted
    assert report.energy_kwh * KWH >= 50  # at least the 5 steps before "ready", 10 J each


def test_uncaught_keyboard_interrupt_is_an_interrupted_wasted_report(tmp_path: Path) -> None:
    process = _run("keyboard", tmp_path)
    _, err = process.communicate(timeout=60)
    assert "KeyboardInterrupt" in err
    report = _only_report(tmp_path)
    assert report.status == "interrupted" and report.wasted
    assert report.energy_kwh * KWH == pytest.approx(500)  # 50 steps × 10 J, read at the exit


def test_a_forked_worker_neither_counts_twice_nor_ends_the_run(tmp_path: Path) -> None:
    process = _run("fork", tmp_path)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    child = json.loads((tmp_path / "child.json").read_text())
    assert "forked copy" in child["stop"] and child["running"] is False
    report = _only_report(tmp_path)  # the child's exit wrote no second report
    assert report.status == "completed" and not report.wasted
    assert report.energy_kwh * KWH == pytest.approx(400)  # 40 steps × 10 J: nothing counted twice


@pytest.mark.slow
def test_tracking_server_killed_and_restarted_mid_training_loses_no_point(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import lightning.pytorch as pl
    from mlflow import MlflowClient

    from carbonstep.lightning import CarbonCallback

    from .lightning_model import loaders, make_module
    from .mlflow_server import MlflowServer

    server = MlflowServer(tmp_path / "server").start()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.uri)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "outage")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")  # fail fast on a dead server, do not back off
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    carbon = CarbonCallback(region="FR", interval_s=0.05, output_dir=tmp_path / "out")
    seen: dict[str, bool] = {}

    class Outage(pl.Callback):
        def on_train_batch_end(self, trainer, *args) -> None:
            sink = carbon.session.sink
            if trainer.global_step == 4:
                assert sink.flush()  # up: sent
                server.stop()
            if trainer.global_step == 8:
                seen["down"] = not sink.flush()  # a send attempted while the server is dead keeps the points
            if trainer.global_step == 12:
                seen["still_down"] = not sink.flush()
                server.start()

    try:
        trainer = pl.Trainer(max_epochs=3, logger=False, callbacks=[carbon, Outage()], log_every_n_steps=1,
                             enable_checkpointing=False, default_root_dir=tmp_path, enable_progress_bar=False,
                             enable_model_summary=False)
        trainer.fit(make_module(pl), *loaders())
        assert seen == {"down": True, "still_down": True}
        assert carbon.report.status == "completed" and carbon.session.messages == []
        ledger = tmp_path / "out" / "carbonstep-mlflow-ledger.jsonl"
        logged = [json.loads(line) for line in ledger.read_text().splitlines()]
        metrics = [r for r in logged if r["type"] == "metric"]
        client = MlflowClient(server.uri)
        run = client.get_run(carbon.session.sink.run_id)
        points = {(m.key, m.step, m.value) for key in run.data.metrics for m in client.get_metric_history(
            run.info.run_id, key)}
        assert {(m["key"], m["step"], m["value"]) for m in metrics} == points  # every point, outage included
        assert any(m["step"] in range(5, 12) for m in metrics)  # points were logged during the outage
        assert run.info.status == "FINISHED"
    finally:
        server.stop()
