"""Prometheus wired into ``carbonstep run`` (--pushgateway, --textfile, --metrics-port, --json per rank) and into the
training callbacks (TrainingOptions pushgateway, textfile_dir, metrics_port), against a real Pushgateway."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from carbonstep.report.record import RunReport
from carbonstep.testing import ScriptedReader
from carbonstep.training.options import TrainingOptions
from carbonstep.training.session import TrainingSession
from tests.mlflow_server import free_port
from tests.prometheus_servers import BINARIES, Server

pytest.importorskip("prometheus_client")
ROOT = Path(__file__).parents[1]
J_PER_KWH = 3.6e6
needs_gateway = pytest.mark.skipif(shutil.which(BINARIES["pushgateway"]) is None,
                                   reason="needs the Debian package prometheus-pushgateway")


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("pushgateway")
    port = free_port()
    server = Server("pushgateway", [BINARIES["pushgateway"], f"--web.listen-address=127.0.0.1:{port}",
                                    f"--persistence.file={root / 'pushgateway.data'}"],
                    port, "/-/ready", root / "pushgateway.log").start()
    yield server
    server.stop()


def _samples(text: str, job_id: str) -> dict[tuple[str, str], tuple[float, dict[str, str]]]:
    """(sample name, device) → (value, labels) of one job's series in an exposition text."""
    from prometheus_client.parser import text_string_to_metric_families

    return {(s.name, s.labels.get("device", "")): (s.value, s.labels)
            for family in text_string_to_metric_families(text) for s in family.samples
            if s.labels.get("job_id") == job_id}


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as reply:
        return str(reply.read().decode())


def _held(text: str, report: RunReport, rank: str) -> None:
    """The series of ``report`` in ``text`` hold its own figures, labelled with its rank."""
    found = _samples(text, report.run_id)
    assert found, f"no series of {report.run_id}"
    for device, kwh in (("gpu", report.energy_kwh_gpu), ("cpu", report.energy_kwh_cpu),
                        ("ram", report.energy_kwh_ram)):
        assert found[("carbonstep_energy_joules_total", device)][0] == pytest.approx(kwh * J_PER_KWH, rel=1e-9)
    assert found[("carbonstep_co2_grams_total", "")][0] == pytest.approx(report.co2_kg * 1000.0, rel=1e-9)
    assert all(labels["rank"] == rank for _, labels in found.values())


def _run_cli(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "carbonstep.cli", "run", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}", **env})


BUSY = "import time\nend = time.time() + 2.5\nwhile time.time() < end: pass"


@pytest.mark.slow
@needs_gateway
def test_run_pushes_serves_writes_a_textfile_and_its_rank_s_own_report(gateway: Server, tmp_path: Path) -> None:
    port = free_port()
    child = _run_cli(["--intensity", "300", "--interval", "0.1", "--json", str(tmp_path / "r.json"),
                      "--pushgateway", gateway.url, "--push-every", "0.2", "--textfile", str(tmp_path / "prom"),
                      "--metrics-port", str(port), "--", sys.executable, "-c", BUSY],
                     {"RANK": "1", "WORLD_SIZE": "2", "SLURM_RESTART_COUNT": "0"})  # the second task of an srun
    live = ""
    deadline = time.monotonic() + 60
    while child.poll() is None and time.monotonic() < deadline and "carbonstep_energy_joules_total" not in live:
        try:
            live = _get(f"http://127.0.0.1:{port}/metrics")  # the endpoint while the command runs
        except OSError:
            time.sleep(0.1)
    out, err = child.communicate(timeout=120)
    assert child.returncode == 0, out + err
    assert "carbonstep_energy_joules_total{" in live and 'rank="1"' in live
    assert not (tmp_path / "r.json").exists()  # rank 1 of 2: its own file, never rank 0's
    report = RunReport.load(tmp_path / "r-rank1.json")
    assert report.energy_kwh > 0 and "warning" not in err
    _held(_get(gateway.url + "/metrics"), report, "1")  # the final push is the report's figures
    (textfile,) = (tmp_path / "prom").glob("*.prom")
    assert textfile.name == f"carbonstep-{report.run_id}-rank1-a0.prom"
    _held(textfile.read_text(), report, "1")
    with pytest.raises(OSError):
        _get(f"http://127.0.0.1:{port}/metrics")  # shut down with the command


def test_a_dead_gateway_is_one_warning_line_never_a_failure(tmp_path: Path) -> None:
    child = _run_cli(["--intensity", "300", "--interval", "0.1", "--pushgateway", f"127.0.0.1:{free_port()}",
                      "--push-every", "0.1", "--json", str(tmp_path / "r.json"), "--", sys.executable, "-c",
                      "import time; time.sleep(0.6)"], {})
    out, err = child.communicate(timeout=120)
    assert child.returncode == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("carbonstep: warning:")]
    assert len(warnings) == 1 and "could not push to the Pushgateway" in warnings[0], err
    assert "pushes failed)" in warnings[0] and RunReport.load(tmp_path / "r.json").energy_kwh >= 0


def test_bad_prometheus_options_are_refused_before_the_command_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    child = _run_cli(["--metrics-port", "70000", "--", sys.executable, "-c", f"open({str(marker)!r}, 'w')"], {})
    _, err = child.communicate(timeout=60)
    assert child.returncode == 2 and "--metrics-port 70000" in err and "Traceback" not in err
    assert not marker.exists()
    with pytest.raises(ValueError, match="metrics_port"):
        TrainingOptions(metrics_port=0)
    with pytest.raises(TypeError, match="pushgateway"):
        TrainingOptions(pushgateway="")


def test_adapters_keywords_reach_the_options_unchanged() -> None:
    options = TrainingOptions.of("FR", pushgateway="gw:9091", textfile_dir="/tmp/t", metrics_port=9400,
                                 interval_s=0.5)
    assert (options.pushgateway, options.textfile_dir, options.metrics_port) == ("gw:9091", "/tmp/t", 9400)
    assert dict(options.tracker) == {"interval_s": 0.5}  # not handed to the Tracker
    assert "pushgateway" not in options.tracker_arguments()


@pytest.mark.slow
@needs_gateway
def test_a_training_session_pushes_its_own_segment_never_the_resumed_totals(gateway: Server,
                                                                           tmp_path: Path) -> None:
    port = free_port()
    options = TrainingOptions(intensity=250, summary=False, pushgateway=gateway.url, textfile_dir=tmp_path / "prom",
                              metrics_port=port, tracker={"interval_s": 0.05, "readers": [
                                  ScriptedReader("gpu:0", "gpu", watts=lambda t: 200.0),
                                  ScriptedReader("cpu", "cpu", watts=lambda t: 30.0)]})
    session = TrainingSession(options)
    earlier = {"energy_kwh": 5.0, "co2_kg": 1.25, "water_l": 10.0, "energy_kwh_gpu": 4.0, "energy_kwh_cpu": 1.0,
               "energy_kwh_ram": 0.0}
    session.load_state_dict({"offset": earlier, "epoch_costs": []})  # resumed from a checkpoint
    session.begin(None, tmp_path, log_every_n_steps=1)
    for step in range(1, 6):
        time.sleep(0.1)
        session.step(step, 0, count=8)
    live = _samples(_get(f"http://127.0.0.1:{port}/metrics"), session.tracker.run_id)
    assert live[("carbonstep_energy_joules_total", "gpu")][0] < 4.0 * J_PER_KWH  # the segment only, while it runs
    report = session.end()
    own = session.rank_report
    assert own is not None and report.extra["cumulative_with_resume"]["energy_kwh"] == pytest.approx(
        own.energy_kwh + 5.0)
    pushed = _get(gateway.url + "/metrics")
    _held(pushed, own, "0")  # this segment's own figures: the earlier attempt's 5 kWh are not pushed again
    assert _samples(pushed, own.run_id)[("carbonstep_energy_joules_total", "gpu")][0] < 4.0 * J_PER_KWH
    (textfile,) = (tmp_path / "prom").glob("*.prom")
    _held(textfile.read_text(), own, "0")
    assert session.messages == []
    with pytest.raises(OSError):
        _get(f"http://127.0.0.1:{port}/metrics")
