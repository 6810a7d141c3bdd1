"""The Prometheus exposition carbonstep writes, without servers: names, units, labels and values of a report."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from carbonstep import Tracker
from carbonstep.report.record import RunReport
from carbonstep.testing import ManualClock, ScriptedReader

pytest.importorskip("prometheus_client")

from carbonstep.sinks.prometheus import (  # noqa: E402
    MAX_LABEL,
    grouping_key,
    labels_for,
    push_report,
    textfile_path,
    write_textfile,
)

SLURM = {"SLURM_JOB_ID": "777", "SLURM_JOB_USER": "ana", "SLURM_JOB_ACCOUNT": "vision lab/α",
         "SLURM_JOB_PARTITION": "gpu", "SLURM_PROCID": "1", "SLURM_NTASKS": "2", "SLURM_RESTART_COUNT": "2"}


def _report(monkeypatch: pytest.MonkeyPatch, status: str = "completed") -> RunReport:
    for key, value in SLURM.items():
        monkeypatch.setenv(key, value)
    clock = ManualClock()
    readers = [ScriptedReader("gpu:0", "gpu", watts=lambda t: 200.0, clock=clock),
               ScriptedReader("cpu", "cpu", watts=lambda t: 40.0, clock=clock)]
    tracker = Tracker(intensity=100, readers=readers, clock=clock, wall_clock=lambda: 1.8e9).start()
    clock.advance(30)
    tracker.snapshot()
    return tracker.stop(status)


def _families(path: Path) -> dict[str, list]:
    from prometheus_client.parser import text_string_to_metric_families

    return {f.name: f.samples for f in text_string_to_metric_families(path.read_text())}


def test_a_textfile_holds_the_reports_figures_in_base_units(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    report = _report(monkeypatch, "failed")
    path = write_textfile(tmp_path, report, project="x" * 200)
    assert path == tmp_path / "carbonstep-777-rank1-a2.prom"
    families = _families(path)
    energy = {s.labels["device"]: s.value for s in families["carbonstep_energy_joules"]}
    assert energy == pytest.approx({"gpu": 6000.0, "cpu": 1200.0, "ram": 0.0})
    (co2,) = families["carbonstep_co2_grams"]
    assert co2.name == "carbonstep_co2_grams_total" and co2.value == pytest.approx(report.co2_kg * 1000)
    assert families["carbonstep_wasted_energy_joules"][0].value == pytest.approx(7200.0)  # a failed run
    assert families["carbonstep_gpu_seconds"][0].value == pytest.approx(30.0)
    assert families["carbonstep_run_start_timestamp_seconds"][0].value == pytest.approx(1.8e9)
    labels = co2.labels
    assert labels == {"job_id": "777", "user": "ana", "project": "x" * MAX_LABEL, "account": "vision_lab__",
                      "partition": "gpu", "host": report.host, "rank": "1", "attempt": "2"}
    assert grouping_key(labels) == {"job_id": "777", "rank": "1", "attempt": "2"}
    assert oct(path.stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_labels_without_slurm_fall_back_to_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in SLURM:
        monkeypatch.delenv(key, raising=False)
    clock = ManualClock()
    tracker = Tracker(intensity=100, readers=[ScriptedReader("gpu:0", "gpu", watts=lambda t: 1.0, clock=clock)],
                      clock=clock).start()
    report = tracker.stop()
    labels = labels_for(report)
    assert labels["job_id"] == report.run_id and labels["rank"] == "0" and labels["attempt"] == "0"
    assert labels["account"] == "unknown" and labels["project"] == "unknown"
    assert textfile_path("d", labels).name == f"carbonstep-{report.run_id}-rank0-a0.prom"


def test_an_unreachable_gateway_is_one_line_and_quick(monkeypatch: pytest.MonkeyPatch) -> None:
    report = _report(monkeypatch)
    message = push_report("127.0.0.1:9", report, timeout_s=1.0)  # port 9 (discard): nothing listens here
    assert message is not None and message.startswith("could not push to the Pushgateway 127.0.0.1:9")
    assert "\n" not in message
