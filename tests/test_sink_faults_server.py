"""Sink faults against a real ``mlflow server`` on 127.0.0.1: behind TLS with a CA of its own; killed and
restarted while two runs share one output directory; an output directory that is read-only, removed or full
while a tiny Lightning model trains. Training ends, the report is valid JSON, no point is lost or doubled."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from carbonstep.mlflow_io.sink import MlflowSink
from carbonstep.mlflow_io.sync import sync_ledger_details
from carbonstep.report.record import RunReport
from carbonstep.report.summary import render

from .mlflow_server import MlflowServer
from .tls_proxy import TlsProxy, make_ca_and_server_cert

pytestmark = pytest.mark.slow
FIT_BOUND_S = 120  #: a tiny model's fit, MLflow included, on a loaded 2-core machine


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    running = MlflowServer(tmp_path_factory.mktemp("server")).start()
    yield running
    running.stop()


def all_points(client: MlflowClient, run_id: str) -> set[tuple[str, int, float]]:
    run = client.get_run(run_id)
    return {(m.key, m.step, m.value) for key in run.data.metrics for m in client.get_metric_history(run_id, key)}


def test_https_with_a_custom_ca_receives_points_when_mlflow_settings_say_how(
        server: MlflowServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ca, cert, key = make_ca_and_server_cert(tmp_path / "tls")
    proxy = TlsProxy(server.port, cert, key)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    try:
        outcomes = {}
        for setting in ("none", "MLFLOW_TRACKING_SERVER_CERT_PATH", "MLFLOW_TRACKING_INSECURE_TLS"):
            monkeypatch.delenv("MLFLOW_TRACKING_SERVER_CERT_PATH", raising=False)
            monkeypatch.delenv("MLFLOW_TRACKING_INSECURE_TLS", raising=False)
            if setting != "none":
                monkeypatch.setenv(setting, str(ca) if setting.endswith("CERT_PATH") else "true")
            run_id = MlflowClient(server.uri).create_run("0").info.run_id  # the run exists; reach it over TLS
            sink = MlflowSink(run_id=run_id, tracking_uri=proxy.uri, ledger_path=tmp_path / f"{setting}.jsonl",
                              flush_interval_s=0.1, close_timeout_s=15)
            for step in range(1, 8):
                sink.log_metrics({"co2_kg": step / 10}, step)
            started = time.monotonic()
            message = sink.close()
            outcomes[setting] = (len(all_points(MlflowClient(server.uri), run_id)), message,
                                 time.monotonic() - started)
        sent, message, took = outcomes["none"]
        assert sent == 0 and message and "TLS verification failed" in message and took < 15
        assert outcomes["MLFLOW_TRACKING_SERVER_CERT_PATH"][:2] == (7, None)
        assert outcomes["MLFLOW_TRACKING_INSECURE_TLS"][:2] == (7, None)
    finally:
        proxy.close()


def test_server_killed_and_restarted_with_two_runs_in_one_directory(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    own = MlflowServer(tmp_path / "server").start()
    ledger = tmp_path / "out" / "carbonstep-mlflow-ledger.jsonl"
    try:
        a = MlflowSink(tracking_uri=own.uri, experiment="two", ledger_path=ledger, flush_interval_s=0.1)
        for step in range(1, 5):
            a.log_metrics({"energy_kwh": float(step)}, step)
        assert a.flush()  # run A: 4 points sent
        own.stop()
        for step in range(5, 9):
            a.log_metrics({"energy_kwh": float(step)}, step)  # run A: 4 points kept
        b = MlflowSink(tracking_uri=own.uri, experiment="two", ledger_path=ledger, flush_interval_s=0.1)
        assert b.run_id is None  # run B could not even be created
        for step in range(1, 9):
            b.log_metrics({"energy_kwh": 100.0 + step}, step)  # run B: 8 points kept
        assert "carbonstep sync" in (a.close() or "") and "carbonstep sync" in (b.close() or "")
        own.start()
        done = subprocess.run([sys.executable, "-m", "carbonstep.cli", "sync", str(ledger), "--tracking-uri", own.uri],
                              capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        client = MlflowClient(own.uri)
        runs = client.search_runs([client.get_experiment_by_name("two").experiment_id]) + \
            client.search_runs([client.get_experiment_by_name("Default").experiment_id])
        run_b = next(r.info.run_id for r in runs if r.info.run_id != a.run_id)
        assert all_points(client, a.run_id) == {("energy_kwh", s, float(s)) for s in range(1, 9)}
        assert all_points(client, run_b) == {("energy_kwh", s, 100.0 + s) for s in range(1, 9)}
        assert sync_ledger_details(ledger, own.uri).sent == 0  # a second sync sends nothing twice
    finally:
        own.stop()


def _callback(out: Path):
    from carbonstep.lightning import CarbonCallback

    return CarbonCallback(region="FR", interval_s=0.05, output_dir=out)


def _fit(carbon, tmp_path: Path, during_training=None):
    import lightning.pytorch as pl

    from .lightning_model import loaders, make_module

    class Fault(pl.Callback):
        def on_train_batch_end(self, trainer, *args) -> None:
            if trainer.global_step == 3 and during_training is not None:
                during_training()

    trainer = pl.Trainer(max_epochs=2, logger=False, callbacks=[carbon, Fault()], log_every_n_steps=1,
                         enable_checkpointing=False, default_root_dir=tmp_path, enable_progress_bar=False,
                         enable_model_summary=False)
    started = time.monotonic()
    trainer.fit(make_module(pl), *loaders())
    return time.monotonic() - started


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def _check_fit(carbon, took: float, client: MlflowClient, ledger_written: bool) -> RunReport:
    report = carbon.report
    assert took < FIT_BOUND_S and report.status == "completed" and report.energy_kwh > 0
    saved = RunReport.load(carbon.session.report_path)  # valid JSON wherever it went
    assert saved.energy_kwh == report.energy_kwh
    run = carbon.session.sink.run_id
    history = client.get_metric_history(run, "energy_kwh")
    # none twice: a point sent again repeats its timestamp (two logs at one step with one value do not)
    assert len({(m.step, m.value, m.timestamp) for m in history}) == len(history) > 3
    assert client.get_run(run).info.status == "FINISHED"
    if not ledger_written:
        assert any("cannot write the ledger" in e for e in saved.sink_errors)
        assert "! sink: cannot write the ledger" in render(saved)  # the end-of-run summary shows it
    return saved


@pytest.mark.parametrize("fault", ["read-only", "removed", "full"])
def test_output_dir_faults_never_stop_training_nor_lose_a_point(
        fault: str, server: MlflowServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capfd: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.uri)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", f"disk-{fault}")
    (tmp_path / "tmp").mkdir()  # the temporary directory the report falls back to: this test's, not /tmp
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "tmp"))
    client = MlflowClient(server.uri)
    mount = tmp_path / "disk"
    mounted = fault != "removed" and _mount_tmpfs(mount, "300k")
    try:
        if fault == "read-only":
            out = mount / "out" if mounted else tmp_path / "a-file" / "out"  # root ignores permission bits
            if mounted:
                subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
            else:
                (tmp_path / "a-file").write_text("")
            carbon = _callback(out)
            took = _fit(carbon, tmp_path)
            saved = _check_fit(carbon, took, client, ledger_written=False)
            assert carbon.session.report_path.parent == Path(tempfile.gettempdir())
            assert any("could not write" in w and "the report is in" in w for w in saved.warnings)
            assert any("the report is in" in m for m in carbon.session.messages)
            assert f"the report is in {carbon.session.report_path}" in capfd.readouterr().err  # said on stderr
        elif fault == "removed":
            out = tmp_path / "out"
            def remove() -> None:
                carbon.session.sink.flush()  # the ledger exists, with a header and sent records
                shutil.rmtree(out)

            carbon = _callback(out)
            took = _fit(carbon, tmp_path, remove)
            _check_fit(carbon, took, client, ledger_written=True)
            assert carbon.session.report_path.parent == out  # written where asked: the directory is made again
        else:
            if not mounted:
                pytest.skip("cannot mount a tmpfs here (not root?); the ledger's ENOSPC path is tested on /dev/full")
            out = mount / "out"

            def fill() -> None:
                carbon.session.sink.flush()  # the ledger exists, mid-run
                for name, chunk in (("filler", b"\0" * 4096), ("out/carbonstep-mlflow-ledger.jsonl", b"\n")):
                    with (mount / name).open("ab", buffering=0) as handle:  # blank lines: the ledger's last page
                        try:
                            while handle.write(chunk):
                                pass
                        except OSError:
                            pass  # the disk is full now, to the last byte

            carbon = _callback(out)
            took = _fit(carbon, tmp_path, fill)
            saved = _check_fit(carbon, took, client, ledger_written=False)
            assert carbon.session.report_path.parent == Path(tempfile.gettempdir())
            assert "No space left" in " ".join(saved.sink_errors)
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(mount)], capture_output=True)
