"""Prometheus, on real servers: a tiny training job pushes to a Pushgateway while it trains, node-exporter reads a
textfile, Prometheus scrapes both (and a live endpoint), and its HTTP API holds the reports' figures. Every query of
the Grafana dashboard (integrations/grafana/carbonstep.json) returns series from that data."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator

import pytest

from carbonstep import Tracker
from carbonstep.report.record import RunReport
from carbonstep.testing import ScriptedReader
from tests.prometheus_servers import Stack, missing

pytest.importorskip("prometheus_client")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    bool(missing()), reason=f"needs the Debian packages {', '.join(missing())} (.ci/run installs them)")]

ROOT = Path(__file__).parents[1]
DASHBOARD = ROOT / "integrations" / "grafana" / "carbonstep.json"
FIGURES = {"carbonstep_energy_joules_total": lambda r: r.energy_kwh * 3.6e6,
           "carbonstep_co2_grams_total": lambda r: r.co2_kg * 1000.0,
           "carbonstep_water_litres_total": lambda r: r.water_l}


class _Env:
    """Set environment variables (the Slurm job a process belongs to) and put them back."""

    def __init__(self, **values: str) -> None:
        self.values, self.saved = values, {k: os.environ.get(k) for k in values}

    def __enter__(self) -> None:
        os.environ.update(self.values)

    def __exit__(self, *_: Any) -> None:
        for key, value in self.saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _scripted_job(stack: Stack, status: str, seconds: float, gpu_w: float, idle: bool) -> RunReport:
    """A job pushed live every 0.3 s (ScriptedReader power: the NVML path is tested elsewhere); ``idle``: its GPU
    is recorded as under 10 % use for 90 % of the run, as NVML's utilisation would show it."""
    from carbonstep.sinks.prometheus import LivePusher

    readers = [ScriptedReader("gpu:0", "gpu", watts=lambda t: gpu_w),
               ScriptedReader("cpu", "cpu", watts=lambda t: 20.0)]
    tracker = Tracker(intensity=250, readers=readers, interval_s=0.1).start()
    pusher = LivePusher(stack.gateway, tracker, every_s=0.3, project="physics-sim", timeout_s=10.0).start()
    time.sleep(seconds)
    report = tracker.stop(status)
    if idle:
        report = report.with_changes(devices=tuple(replace(d, idle_fraction=0.9) if d.domain == "gpu" else d
                                                   for d in report.devices))
    assert pusher.finish(report) == []
    return report


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    servers = Stack(tmp_path_factory.mktemp("prometheus")).start()
    yield servers
    servers.stop()


@pytest.fixture(scope="module")
def jobs(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, RunReport]:
    """The tiny training job (a subprocess, real readers), a failed job with an idle GPU of another user and
    account (pushed live), and a job written as a node-exporter textfile."""
    out = tmp_path_factory.mktemp("reports")
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
    run = subprocess.run([sys.executable, str(ROOT / "tests" / "prometheus_job.py"), stack.gateway, str(out),
                          "vision"], capture_output=True, text=True, timeout=180, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    trained = RunReport.load(run.stdout.splitlines()[0])
    with _Env(SLURM_JOB_ID="4242", SLURM_JOB_USER="ben", SLURM_JOB_ACCOUNT="physics", SLURM_JOB_PARTITION="gpu"):
        failed = _scripted_job(stack, "failed", 2.5, 150.0, idle=True)
    from carbonstep.sinks.prometheus import write_textfile

    textfile = _scripted_job(stack, "completed", 0.3, 50.0, idle=False).with_changes(run_id="textfile-job")
    write_textfile(stack.textfiles, textfile, project="nlp")
    return {"trained": trained, "failed": failed, "textfile": textfile}


def _job_value(stack: Stack, metric: str, job_id: str, expected: float, scrape_job: str = "carbonstep") -> float:
    """The job's value once Prometheus holds it (``job``: the Pushgateway's push job, kept by honor_labels)."""
    return stack.wait_for(f'sum({metric}{{job_id="{job_id}", job="{scrape_job}"}})', expected)


def test_prometheus_holds_the_training_jobs_report_within_a_thousandth(stack: Stack,
                                                                       jobs: dict[str, RunReport]) -> None:
    report = jobs["trained"]
    assert report.energy_kwh > 0
    for metric, of in FIGURES.items():
        expected = of(report)
        held = _job_value(stack, metric, report.run_id, expected)
        print(f"{metric}: Prometheus {held!r}, report {expected!r}, difference {held / expected - 1:+.2e}")
        assert held == pytest.approx(expected, rel=1e-3)
    devices = stack.query(f'carbonstep_energy_joules_total{{job_id="{report.run_id}"}}')
    assert {s["metric"]["device"] for s in devices} == {"gpu", "cpu", "ram"}
    labels = devices[0]["metric"]
    assert labels["project"] == "vision" and labels["rank"] == "0" and labels["attempt"] == "0"
    assert labels["user"] == report.extra.get("user", "unknown") and labels["host"] == report.host


def test_a_failed_jobs_energy_is_wasted_and_its_idle_gpu_counted(stack: Stack, jobs: dict[str, RunReport]) -> None:
    report = jobs["failed"]
    assert _job_value(stack, "carbonstep_wasted_energy_joules_total", "4242", report.energy_kwh * 3.6e6) \
        == pytest.approx(report.energy_kwh * 3.6e6, rel=1e-3)
    assert _job_value(stack, "carbonstep_gpu_idle_energy_joules_total", "4242", report.energy_kwh_gpu * 3.6e6) \
        == pytest.approx(report.energy_kwh_gpu * 3.6e6, rel=1e-3)
    (series,) = stack.query('carbonstep_co2_grams_total{job_id="4242"}')
    assert {k: series["metric"][k] for k in ("user", "account", "partition", "project")} == {
        "user": "ben", "account": "physics", "partition": "gpu", "project": "physics-sim"}


def test_a_textfile_is_read_by_node_exporter(stack: Stack, jobs: dict[str, RunReport]) -> None:
    report = jobs["textfile"]
    for metric, of in FIGURES.items():
        assert _job_value(stack, metric, "textfile-job", of(report), scrape_job="node") == \
            pytest.approx(of(report), rel=1e-3)
    (path,) = stack.textfiles.glob("carbonstep-textfile-job-rank0-a0.prom")
    assert oct(path.stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    from carbonstep.report.record import current_umask

    return current_umask()


def test_pushing_again_or_restarting_never_counts_twice(stack: Stack, jobs: dict[str, RunReport]) -> None:
    from carbonstep.sinks.prometheus import push_report

    report = jobs["trained"]
    joules = report.energy_kwh * 3.6e6
    query = f'sum(carbonstep_energy_joules_total{{job_id="{report.run_id}"}})'
    assert push_report(stack.gateway, report, project="vision") is None  # the same figures again (a retry)
    time.sleep(2.5)  # two scrapes
    assert stack.wait_for(query, joules) == pytest.approx(joules, rel=1e-3)
    second = report.with_changes(energy_kwh_cpu=report.energy_kwh_cpu / 2, energy_kwh_gpu=report.energy_kwh_gpu / 2,
                                 energy_kwh_ram=report.energy_kwh_ram / 2, energy_kwh=report.energy_kwh / 2)
    with _Env(SLURM_RESTART_COUNT="1"):  # Slurm requeued the job: a new attempt with its own energy
        assert push_report(stack.gateway, second, project="vision") is None
    assert stack.wait_for(query, joules * 1.5) == pytest.approx(joules * 1.5, rel=1e-3)
    attempts = stack.query(f'sum by (attempt) (carbonstep_energy_joules_total{{job_id="{report.run_id}"}})')
    assert sorted(s["metric"]["attempt"] for s in attempts) == ["0", "1"]
    resets = stack.query(f'resets(carbonstep_energy_joules_total{{job_id="{report.run_id}"}}[5m])')
    assert resets and all(float(s["value"][1]) == 0 for s in resets)  # counters only went up


def test_a_long_jobs_endpoint_is_scraped_while_it_runs(stack: Stack) -> None:
    from carbonstep.sinks.prometheus import serve

    tracker = Tracker(intensity=100, readers=[ScriptedReader("gpu:0", "gpu", watts=lambda t: 100.0)],
                      interval_s=0.1).start()
    server = serve(tracker, stack.endpoint_port)
    try:
        query = f'sum(carbonstep_energy_joules_total{{job="carbonstep-endpoint", job_id="{tracker.run_id}"}})'
        deadline, values = time.monotonic() + 20, []
        while time.monotonic() < deadline and len(set(values)) < 2:
            values += [float(s["value"][1]) for s in stack.query(query)]
            time.sleep(0.5)
        assert len(set(values)) >= 2 and values == sorted(values) and values[-1] > 0  # rising while it runs
    finally:
        server.shutdown()
        tracker.stop()


def _grafana(expr: str) -> str:
    """The query as Grafana sends it: its variables replaced ("All" is ".*", the allValue of the dashboard)."""
    for name, value in (("$__rate_interval", "1m"), ("$__interval", "1h"), ("$__range", "1h"),
                        ("$user", ".*"), ("$project", ".*")):
        expr = expr.replace(name, value)
    return expr


def test_every_dashboard_query_returns_series(stack: Stack, jobs: dict[str, RunReport]) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(queries) >= 10
    for variable in dashboard["templating"]["list"][1:]:  # label_values(METRIC, LABEL): the variable's choices
        metric, label = variable["definition"].removeprefix("label_values(").removesuffix(")").split(", ")
        queries.append(f"count by ({label}) ({metric})")
    time.sleep(2.0)  # the last pushes scraped
    for expr in queries:
        result = stack.query(_grafana(expr))
        assert result, f"no series for {expr}"
        values = [float(s["value"][1]) for s in result]
        assert all(math.isfinite(v) for v in values), expr
        print(f"{len(result)} series, {values[:3]}: {expr[:90]}")
    wasted = stack.query(_grafana(queries[6]))
    assert 0 < float(wasted[0]["value"][1]) < 1  # the failed job's share of all the energy
    users = {s["metric"]["user"] for s in stack.query(_grafana(queries[4]))}
    assert "ben" in users and len(users) >= 2


def test_the_dashboard_file_is_what_its_script_writes(tmp_path: Path) -> None:
    sys.path.insert(0, str(DASHBOARD.parent))
    try:
        import build_dashboard
    finally:
        sys.path.remove(str(DASHBOARD.parent))
    assert json.loads(DASHBOARD.read_text()) == build_dashboard.dashboard()
