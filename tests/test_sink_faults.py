"""Sink faults that must neither hurt training nor lose or double a point: a ledger shared by two runs, a line
cut by a crash, a ledger that cannot be written, a hung server, a fork while the sink's lock is held, a ledger
naming files it did not write, a dead server for ``sync`` and ``compare``.

MLflow runs here are real (a SQLite tracking store, or a socket that never answers); see
``test_sink_faults_server.py`` for the same against a real ``mlflow server``, over TLS too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from mlflow import MlflowClient

from carbonstep.errors import CarbonstepError, ConfigError, SinkError
from carbonstep.mlflow_io.ledger import read_ledger
from carbonstep.mlflow_io.sink import MlflowSink
from carbonstep.mlflow_io.sync import sync_ledger, sync_ledger_details
from carbonstep.report.record import RunReport

from .mlflow_server import free_port


@pytest.fixture()
def store(tmp_path: Path) -> tuple[str, MlflowClient, str]:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(uri)
    return uri, client, client.create_experiment("faults")


def dead_uri() -> str:
    return f"http://127.0.0.1:{free_port()}"  # nothing listens there


def points(client: MlflowClient, run_id: str) -> set[tuple[str, int, float]]:
    run = client.get_run(run_id)
    return {(m.key, m.step, m.value) for key in run.data.metrics for m in client.get_metric_history(run_id, key)}


def offline_sink(ledger: Path, run_id: str | None, **kw) -> MlflowSink:
    """A sink whose server is down: everything stays in its ledger."""
    return MlflowSink(run_id=run_id, tracking_uri=dead_uri(), ledger_path=ledger, flush_interval_s=0.05,
                      close_timeout_s=10, **kw)


def test_two_runs_in_one_ledger_each_point_goes_to_its_own_run_once(store, tmp_path: Path) -> None:
    uri, client, exp = store
    run_a, run_b = (client.create_run(exp).info.run_id for _ in range(2))
    ledger = tmp_path / "out" / "carbonstep-mlflow-ledger.jsonl"
    a, b = offline_sink(ledger, run_a), offline_sink(ledger, run_b)
    for step in range(1, 9):  # both runs write at once, sequence numbers overlapping
        a.log_metrics({"energy_kwh": step * 1.0}, step)
        b.log_metrics({"energy_kwh": step * 10.0}, step)
        time.sleep(0.01)
    assert "carbonstep sync" in (a.close() or "") and "carbonstep sync" in (b.close() or "")
    result = sync_ledger_details(ledger, uri)
    assert result.sent == 16 and sorted(result.runs) == sorted([run_a, run_b])
    assert result.target == uri and len(result.ledger_uris) == 2  # the dead servers the ledger named: not used
    assert points(client, run_a) == {("energy_kwh", s, s * 1.0) for s in range(1, 9)}
    assert points(client, run_b) == {("energy_kwh", s, s * 10.0) for s in range(1, 9)}
    assert sync_ledger(ledger, uri) == 0  # nothing twice


def test_a_cut_last_line_and_a_cut_line_another_writer_followed_lose_only_themselves(store, tmp_path: Path) -> None:
    uri, client, exp = store
    run_a, run_b = (client.create_run(exp).info.run_id for _ in range(2))
    ledger = tmp_path / "carbonstep-mlflow-ledger.jsonl"
    a = offline_sink(ledger, run_a)
    a.log_metrics({"co2_kg": 1.0}, 1)
    a.close()
    with ledger.open("a") as handle:
        handle.write('{"type": "metric", "key": "co2_kg", "val')  # a crash mid-write: no newline
    b = offline_sink(ledger, run_b)  # another process appends right after the cut
    b.log_metrics({"co2_kg": 2.0}, 1)
    b.close()
    with ledger.open("a") as handle:
        handle.write('{"type": "metric", "key": "co2_kg", "value": 3.0, "tim')  # the last line, cut
    result = sync_ledger_details(ledger, uri)
    assert result.sent == 2 and len(result.damaged_lines) == 2
    assert points(client, run_a) == {("co2_kg", 1, 1.0)} and points(client, run_b) == {("co2_kg", 1, 2.0)}
    cli = subprocess.run([sys.executable, "-m", "carbonstep.cli", "sync", str(ledger), "--tracking-uri", uri],
                         capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0 and "nothing left to send" in cli.stdout and "damaged line" in cli.stderr


def test_sync_sends_only_where_the_user_says_never_where_the_ledger_says(store, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    uri, client, exp = store
    run_id = client.create_run(exp).info.run_id
    ledger = tmp_path / "carbonstep-mlflow-ledger.jsonl"
    sink = offline_sink(ledger, run_id)  # the ledger names a dead server
    sink.log_metrics({"co2_kg": 1.0}, 1)
    sink.close()
    named = read_ledger(ledger).sinks.popitem()[1].tracking_uri
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(ConfigError, match="pass --tracking-uri URL or set MLFLOW_TRACKING_URI"):
        sync_ledger(ledger)  # no target: refused, nothing read from the ledger's URI
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    cli = subprocess.run([sys.executable, "-m", "carbonstep.cli", "sync", str(ledger)], capture_output=True,
                         text=True, timeout=120, env=env)
    assert cli.returncode == 2 and "pass --tracking-uri" in cli.stderr and len(cli.stderr.strip().splitlines()) == 1
    cli = subprocess.run([sys.executable, "-m", "carbonstep.cli", "sync", str(ledger)], capture_output=True,
                         text=True, timeout=120, env={**env, "MLFLOW_TRACKING_URI": uri})  # the environment's
    assert cli.returncode == 0, cli.stderr
    assert f"the ledger named {named}; sent to {uri} instead" in cli.stderr and "1 record sent" in cli.stdout
    assert points(client, run_id) == {("co2_kg", 1, 1.0)}


def test_a_garbage_or_nul_line_in_the_middle_is_skipped_by_name_and_every_good_record_is_sent(
        store, tmp_path: Path) -> None:
    uri, client, exp = store
    run_id = client.create_run(exp).info.run_id
    ledger = tmp_path / "carbonstep-mlflow-ledger.jsonl"
    sink = offline_sink(ledger, run_id)
    sink.log_metrics({"co2_kg": 1.0}, 1)
    sink.close()
    with ledger.open("ab") as handle:  # a bad disk block, a stray editor: whole bad lines, not a cut last line
        handle.write(b"\x00" * 64 + b"\n" + b"garbage, not a record\n" + b'{"type": "metric", "key": 5}\n')
    sink = offline_sink(ledger, run_id)
    sink.log_metrics({"co2_kg": 2.0}, 2)
    sink.close()
    result = sync_ledger_details(ledger, uri)
    bad = [n for n, line in enumerate(ledger.read_bytes().split(b"\n"), start=1)
           if line.startswith((b"\x00", b"garbage", b'{"type": "metric", "key": 5'))]
    assert len(bad) == 3 and result.damaged_lines[:3] == bad
    assert result.sent == 2 and points(client, run_id) == {("co2_kg", 1, 1.0), ("co2_kg", 2, 2.0)}
    assert [w.split(": ")[0] for w in result.warnings[:3]] == [f"{ledger}, line {n}" for n in bad]
    assert "not JSON" in result.warnings[1] and "metric record's 'key' is 5" in result.warnings[2]
    assert all(w.endswith("line skipped") and "\n" not in w for w in result.warnings[:3])
    cli = subprocess.run([sys.executable, "-m", "carbonstep.cli", "sync", str(ledger), "--tracking-uri", uri],
                         capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0 and "nothing left to send" in cli.stdout
    assert f"line {bad[1]}: not JSON" in cli.stderr and "Traceback" not in cli.stderr


def test_a_file_that_is_no_ledger_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.jsonl"
    path.write_text('{"a": 1}\n')
    with pytest.raises(ConfigError, match="notes.jsonl, line 1: unknown record type.*is this a carbonstep ledger"):
        read_ledger(path)


def test_sync_uploads_only_reports_the_sink_wrote_unchanged_beside_its_ledger(store, tmp_path: Path) -> None:
    uri, client, exp = store
    run_id = client.create_run(exp).info.run_id
    out = tmp_path / "out"
    out.mkdir()
    report, changed = out / "carbonstep-aa.json", out / "carbonstep-bb.json"
    report.write_text('{"ok": 1}')
    changed.write_text('{"ok": 2}')
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the server")
    sink = offline_sink(out / "carbonstep-mlflow-ledger.jsonl", run_id)
    for path in (report, changed):
        sink.log_artifact(path)
    sink.close()
    changed.write_text('{"ok": "edited after the run"}')
    with (out / "carbonstep-mlflow-ledger.jsonl").open("a") as handle:  # a ledger is data, not instructions
        handle.write(json.dumps({"type": "artifact", "path": str(secret), "sha256": "0" * 64, "seq": 99,
                                 "sink": sink.sink_id}) + "\n")
    result = sync_ledger_details(out / "carbonstep-mlflow-ledger.jsonl", uri)
    assert sorted(result.refused) == sorted([str(changed.resolve()), str(secret)])
    assert [a.path for a in client.list_artifacts(run_id)] == [report.name]


def test_an_unwritable_ledger_loses_nothing_that_can_be_sent_and_says_so(store, tmp_path: Path) -> None:
    uri, client, exp = store
    run_id = client.create_run(exp).info.run_id
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    sink = MlflowSink(run_id=run_id, tracking_uri=uri, ledger_path=blocker / "ledger.jsonl", flush_interval_s=0.05)
    for step in range(1, 21):
        sink.log_metrics({"energy_kwh": float(step)}, step)  # never raises into the loop
    assert sink.close() is None
    assert points(client, run_id) == {("energy_kwh", s, float(s)) for s in range(1, 21)}  # every drained point
    assert any("cannot write the ledger" in str(e) for e in sink.errors)


def test_a_full_ledger_and_a_dead_server_say_the_points_are_lost(tmp_path: Path) -> None:
    sink = offline_sink(Path("/dev/full"), "0" * 32)  # every write: ENOSPC
    sink.log_metrics({"co2_kg": 1.0}, 1)
    message = sink.close()
    assert message and "could not be written, so they are lost" in message
    texts = [str(e) for e in sink.errors]
    assert any("No space left" in t for t in texts) and any("not sent to MLflow" in t for t in texts)


class _HangingApi(BaseHTTPRequestHandler):
    """Answers /health, then never answers the API: a server stuck behind a proxy."""

    def do_GET(self) -> None:  # noqa: N802
        if self.path.endswith("/health"):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"OK")
        else:
            time.sleep(60)

    do_POST = do_GET  # noqa: N815

    def log_message(self, *args: object) -> None:
        pass


def test_a_hung_server_delays_close_by_its_bound_only_and_sync_sends_later(store, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    uri, client, exp = store
    run_id = client.create_run(exp).info.run_id
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HangingApi)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    ledger = tmp_path / "carbonstep-mlflow-ledger.jsonl"
    try:
        sink = MlflowSink(run_id=run_id, tracking_uri=f"http://127.0.0.1:{server.server_port}", ledger_path=ledger,
                          flush_interval_s=0.05, close_timeout_s=1.5)
        sink.log_metrics({"energy_kwh": 1.0}, 1)
        time.sleep(0.3)  # the sink's thread is now stuck in the send
        sink.log_metrics({"energy_kwh": 2.0}, 2)
        started = time.monotonic()
        message = sink.close()
        assert time.monotonic() - started < 5  # bounded (1.5 s + the ledger), not MLflow's 120 s timeout
        assert message and "carbonstep sync" in message
        assert any("did not answer within 1.5 s" in str(e) for e in sink.errors)
    finally:
        server.shutdown()
    assert sync_ledger(ledger, uri) == 2  # the stuck record and the one queued after it: both in the ledger
    assert points(client, run_id) == {("energy_kwh", 1, 1.0), ("energy_kwh", 2, 2.0)}


FORK_SCRIPT = r"""
import json, os, sys, time
from mlflow import MlflowClient
from carbonstep.mlflow_io.sink import MlflowSink
uri, ledger, out = sys.argv[1:4]
sink = MlflowSink(tracking_uri=uri, experiment="fork", ledger_path=ledger, flush_interval_s=0.05)
sink.log_metrics({"energy_kwh": 1.0}, 1)
time.sleep(0.3)
sink.log_metrics({"energy_kwh": 2.0}, 2)
sink._ledger_lock.acquire(); sink._send_lock.acquire()  # held at the fork, as by the sink's thread mid-send
child = os.fork()
if child == 0:
    sink.log_metrics({"energy_kwh": 99.0}, 99)  # a worker's stray record stays in the worker
    sys.exit(0)  # a normal exit: atexit hooks run in the child
deadline = time.monotonic() + 20
while time.monotonic() < deadline and os.waitpid(child, os.WNOHANG) == (0, 0):
    time.sleep(0.05)
hung = os.waitpid(child, os.WNOHANG) == (0, 0) if deadline < time.monotonic() else False
status = MlflowClient(uri).get_run(sink.run_id).info.status
sink._ledger_lock.release(); sink._send_lock.release()
sink.close()
json.dump({"child_hung": hung, "status_after_child": status, "run": sink.run_id}, open(out, "w"))
"""


def test_a_forked_child_neither_hangs_nor_resends_nor_ends_the_parents_run(store, tmp_path: Path) -> None:
    uri, client, _ = store
    ledger = tmp_path / "carbonstep-mlflow-ledger.jsonl"
    out = tmp_path / "fork.json"
    done = subprocess.run([sys.executable, "-c", FORK_SCRIPT, uri, str(ledger), str(out)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    assert result == {"child_hung": False, "status_after_child": "RUNNING", "run": result["run"]}
    assert client.get_run(result["run"]).info.status == "FINISHED"
    assert points(client, result["run"]) == {("energy_kwh", 1, 1.0), ("energy_kwh", 2, 2.0)}  # once each, no 99
    sequences = [(r["sink"], r["seq"]) for r in map(json.loads, ledger.read_text().splitlines()) if "seq" in r]
    assert len(sequences) == len(set(sequences)) == 2


def test_sync_and_compare_against_a_dead_server_answer_within_seconds(tmp_path: Path) -> None:
    from carbonstep.analysis.compare.compare import compare

    ledger = tmp_path / "carbonstep-mlflow-ledger.jsonl"
    sink = offline_sink(ledger, "0" * 32)
    sink.log_metrics({"co2_kg": 1.0}, 1)
    sink.close()
    started = time.monotonic()
    with pytest.raises(SinkError, match="is not reachable"):
        sync_ledger(ledger, dead_uri())
    with pytest.raises(CarbonstepError, match="is not reachable"):
        compare(["some-run"], tracking_uri=dead_uri())
    assert time.monotonic() - started < 15  # two probes, not MLflow's minutes of retries


def test_a_report_goes_to_the_temporary_directory_when_its_own_cannot_be_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from carbonstep.measure.tracker import Tracker
    from carbonstep.testing import CounterReader

    temporary = tmp_path / "tmp"  # the temporary directory, this test's own: the report must not stay in /tmp
    temporary.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(temporary))
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with Tracker(intensity=100.0, readers=[CounterReader("c", "cpu", lambda: 1.0)]) as t:
        pass
    report = t.view.report
    written, message = report.save_or_fallback(blocker / "out" / "r.json")
    assert written is not None and written.exists() and message and str(written) in message
    assert written.parent == temporary
    saved = RunReport.load(written)
    assert any(f"could not write {blocker / 'out' / 'r.json'}" in w for w in saved.warnings)  # the copy says so
    with pytest.raises(OSError):
        report.save(blocker / "r.json")
    assert not os.path.exists(blocker / "out")



def test_an_unwritable_output_dir_says_on_stderr_where_the_report_went(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from carbonstep.measure.tracker import Tracker
    from carbonstep.testing import CounterReader

    out = tmp_path / "out"
    out.mkdir()
    with Tracker(intensity=100.0, readers=[CounterReader("c", "cpu", lambda: 1.0)], output_dir=out / "sub") as t:
        out.rmdir()
        out.write_text("")  # mid-run, a file where the output directory was: unwritable even for root
    err = capsys.readouterr().err
    assert t.saved_path is not None and t.saved_path.exists() and t.saved_path != t.report_path
    assert not t.report_path.exists()
    assert f"could not write {t.report_path}" in err and f"the report is in {t.saved_path}" in err
    assert RunReport.load(t.saved_path).run_id == t.run_id
    t.saved_path.unlink()
    with Tracker(intensity=100.0, readers=[CounterReader("c", "cpu", lambda: 1.0)], output_dir=tmp_path) as ok:
        pass
    assert ok.saved_path == ok.report_path and ok.report_path.exists() and capsys.readouterr().err == ""
