"""Faults that must lose nothing: signals, Ctrl-C, forked workers, a tracking server that dies."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from carbonstep.report.record import RunReport

HERE = Path(__file__).parent
KWH = 3.6e6
TRIES = 20  # per signal, on the framework-free loop
SIGNAL_BOUND_S = 10.0  # a signalled run has ended (report written) within this after the signal
FAULT_BOUND_S = 15.0  # a run with a hung or raising device ends within this in all

# fault (as named in docs/FAULTS.md) -> the tests that inject it
FAULTS = {
    "SIGTERM at a random point (slow device, validation)": [
        "test_sigterm_at_random_points_with_a_slow_device"],
    "SIGINT at a random point (slow device, validation)": [
        "test_sigint_at_random_points_with_a_slow_device"],
    "SIGTERM during training": ["test_sigterm_writes_the_partial_report_marked_wasted_then_terminates"],
    "uncaught KeyboardInterrupt": ["test_uncaught_keyboard_interrupt_is_an_interrupted_wasted_report"],
    "hung device read": ["test_a_hung_device_costs_a_bounded_wait_and_is_named_in_the_report"],
    "raising device read": ["test_a_raising_device_keeps_its_energy_to_the_last_good_read"],
    "fork": ["test_a_forked_worker_neither_counts_twice_nor_ends_the_run"],
    "DataLoader workers": ["test_dataloader_workers_neither_count_twice_nor_end_the_run"],
    "second fit()": ["test_a_second_fit_is_a_fresh_measurement_with_its_own_report"],
    "gradient accumulation": ["test_gradient_accumulation_logs_and_reduces_once_per_optimizer_step"],
    "SIGTERM while end() writes the report": ["test_sigterm_while_ending_waits_for_the_report"],
    "two threads call stop()": ["test_two_threads_stopping_at_once_get_one_report"],
}


def ctrl_c_as_in_a_terminal() -> None:
    """In the child before it starts: SIGINT's default action, which Python turns into KeyboardInterrupt. A process
    started in the background by a shell without job control (``cmd &``, as CI may run the suite) inherits SIGINT
    ignored, and Python then leaves it ignored: the Ctrl-C these tests send would do nothing."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _run(mode: str, out: Path, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(HERE / "fault_session.py"), mode, str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=ctrl_c_as_in_a_terminal, **kw)


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


def _wait_ready(process: subprocess.Popen, out: Path, limit_s: float = 60.0) -> None:
    deadline = time.monotonic() + limit_s
    while not (out / "ready").exists():
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.02)


def _progress(out: Path) -> int:
    return int((out / "progress").read_text())


def _check_signalled_report(out: Path, status: str = "interrupted", steps_unwritten: int = 0) -> RunReport:
    """Valid JSON, one report, nothing counted twice: never more than 10 J per step taken (the progress file may
    lag the device by ``steps_unwritten`` steps)."""
    report = _only_report(out)
    assert report.status == status and report.wasted == (status != "completed")
    energy_j = report.energy_kwh * KWH
    assert 0 < energy_j <= (_progress(out) + steps_unwritten) * 10 + 1e-6
    assert energy_j / 10 == pytest.approx(round(energy_j / 10), abs=1e-6)  # whole steps: no half-counted sample
    assert sum(e.energy_kwh for e in report.epochs) <= report.energy_kwh * (1 + 1e-9)
    return report


def _signal_tries(tmp_path: Path, signum: int, tries: int, batch: int = 20) -> list[str]:
    """``tries`` runs of the slow-device loop, each signalled at a random moment; the outcome of each."""
    rng = random.Random(signum)
    outcomes = []
    for first in range(0, tries, batch):
        runs = []
        for i in range(first, min(first + batch, tries)):
            out = tmp_path / f"try{i}"
            out.mkdir()
            runs.append((out, _run("signals", out), rng.uniform(0.0, 1.5)))
        for out, process, _ in runs:
            _wait_ready(process, out)
        start = time.monotonic()
        sent, ended = {}, {}
        for out, process, delay in sorted(runs, key=lambda r: r[2]):
            time.sleep(max(0.0, start + delay - time.monotonic()))
            process.send_signal(signum)
            sent[out] = time.monotonic()
        while len(ended) < len(runs) and time.monotonic() - start < 2 + SIGNAL_BOUND_S + 20:
            for out, process, _ in runs:
                if out not in ended and process.poll() is not None:
                    ended[out] = time.monotonic()
            time.sleep(0.01)
        for out, process, _ in runs:
            _, err = process.communicate(timeout=5)
            took_s = ended[out] - sent[out]
            assert took_s < SIGNAL_BOUND_S, f"ended {took_s:.1f} s after the signal"
            if signum == signal.SIGTERM:
                assert process.returncode == -signal.SIGTERM, err
            else:
                assert "KeyboardInterrupt" in err, err
            report = _check_signalled_report(out)
            outcomes.append(f"{report.status} {took_s:.2f} s, {report.energy_kwh * KWH:.0f}/{_progress(out) * 10} J")
    print(f"\n{signal.Signals(signum).name}: {len(outcomes)} tries: " + "; ".join(outcomes))
    return outcomes


def test_sigterm_at_random_points_with_a_slow_device(tmp_path: Path) -> None:
    outcomes = _signal_tries(tmp_path, signal.SIGTERM, TRIES)
    assert len(outcomes) == TRIES


def test_sigint_at_random_points_with_a_slow_device(tmp_path: Path) -> None:
    outcomes = _signal_tries(tmp_path, signal.SIGINT, TRIES)
    assert len(outcomes) == TRIES


def test_a_hung_device_costs_a_bounded_wait_and_is_named_in_the_report(tmp_path: Path) -> None:
    started = time.monotonic()
    process = _run("hung", tmp_path)
    _, err = process.communicate(timeout=FAULT_BOUND_S + 30)
    assert process.returncode == 0, err
    assert time.monotonic() - started < FAULT_BOUND_S
    report = _check_signalled_report(tmp_path, status="completed")
    device = report.devices[0]
    assert device.first_error.startswith("hung") and device.degraded_at_s is not None
    assert report.energy_kwh * KWH >= 10  # the energy up to the last good read is kept
    assert any("hung" in w for w in report.warnings)


def test_a_raising_device_keeps_its_energy_to_the_last_good_read(tmp_path: Path) -> None:
    started = time.monotonic()
    process = _run("raising", tmp_path)
    _, err = process.communicate(timeout=FAULT_BOUND_S + 30)
    assert process.returncode == 0, err
    assert time.monotonic() - started < FAULT_BOUND_S
    report = _check_signalled_report(tmp_path, status="completed")
    device = report.devices[0]
    assert "GPU is lost" in device.first_error and device.failures >= 1
    assert report.energy_kwh * KWH >= 10
    assert any("GPU is lost" in w for w in report.warnings)


def _doc_rows(path: Path) -> dict[str, list[str]]:
    rows = {}
    for line in path.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) == 5 and cells[0] not in ("fault", "---"):
            rows[cells[0]] = [t.strip() for t in cells[1].split(",")]
    return rows


def test_the_fault_table_in_the_docs_lists_the_tested_faults() -> None:
    import importlib

    rows = _doc_rows(HERE.parent / "docs" / "FAULTS.md")
    assert rows == {fault: sorted(set(tests)) for fault, tests in FAULTS.items()}
    modules = [importlib.import_module(f"tests.{name}") for name in ("test_faults", "test_lifecycle")]
    for tests in FAULTS.values():
        for name in tests:
            assert any(callable(getattr(m, name, None)) for m in modules), f"{name}: no such test"
