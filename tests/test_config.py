"""The Tracker's configuration: one frozen record, validated at construction, with clocks a test can drive."""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from carbonstep import ConfigError, Tracker
from carbonstep.accounting.curve import CarbonCurve
from carbonstep.accounting.factors import build_accounting
from carbonstep.measure.config import TrackerConfig, tracker_config
from carbonstep.measure.distributed import Place
from carbonstep.report.builder import RunFacts, build_report, utc_iso
from carbonstep.testing import CounterReader, ManualClock, ScriptedReader
from carbonstep.training.budget import Budget
from carbonstep.training.inference import InferenceSession
from carbonstep.training.options import TrainingOptions
from carbonstep.training.session import TrainingSession
from carbonstep.vocabulary import Domain, Method

J_PER_KWH = 3.6e6


def _gpu(clock: ManualClock, watts: float = 300.0) -> ScriptedReader:
    return ScriptedReader("gpu:0", "gpu", lambda t: watts, clock=clock)


def _run(**options: object):
    """A two-second scripted run on a manual clock; returns its report."""
    clock = ManualClock()
    tracker = Tracker(readers=[_gpu(clock)], interval_s=3600, clock=clock, **options).start()
    clock.advance(2.0)
    return tracker.stop()


# -- refused at construction -----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["pue", "wue", "intensity", "interval_s", "water_intensity_l_per_kwh"])
@pytest.mark.parametrize("flag", [True, False])
def test_a_boolean_is_not_a_number(name: str, flag: bool) -> None:
    with pytest.raises(ConfigError, match=rf"{name} must be a number .*got {flag} \(a boolean\)"):
        Tracker(region="FR", **{name: flag})


def test_a_region_must_be_text() -> None:
    with pytest.raises(ConfigError, match=r"region must be text \(a region code or name .*got 123 \(int\)"):
        Tracker(region=123)  # type: ignore[arg-type]


@pytest.mark.parametrize(("pid", "message"), [
    (999_999_999, r"pid=999999999: no such process"),
    ("abc", r"pid must be a whole number from 1 to 2147483647 \(a process id\), got 'abc' \(str\)"),
    (True, r"pid must be a whole number from 1 to 2147483647 \(a process id\), got True \(a boolean\)"),
    (-1, r"pid must be a whole number from 1 to 2147483647"),
    (2**63, r"pid must be a whole number from 1 to 2147483647 \(a process id\), got 9223372036854775808:"),
    (2**31, r"pid must be a whole number from 1 to 2147483647"),  # pid_t is 32-bit: the OS call would overflow
])
def test_a_pid_must_name_a_running_process(pid: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Tracker(region="FR", pid=pid)  # type: ignore[arg-type]


def test_this_process_is_a_valid_pid() -> None:
    assert Tracker(region="FR", pid=os.getpid()).config.pid == os.getpid()


def test_an_output_dir_that_is_a_file_is_refused_before_the_run(tmp_path: Path) -> None:
    file = tmp_path / "report.json"
    file.write_text("{}")
    with pytest.raises(ConfigError, match=r"output_dir .*report.json' is a file, not a directory"):
        Tracker(region="FR", output_dir=file)
    with pytest.raises(ConfigError, match=r"output_dir .*lies under the file .*report.json"):
        Tracker(region="FR", output_dir=file / "reports")
    with pytest.raises(ConfigError, match=r"output_dir must be a path, got 5 \(int\)"):
        Tracker(region="FR", output_dir=5)  # type: ignore[arg-type]
    assert Tracker(region="FR", output_dir=tmp_path / "new").output_dir == tmp_path / "new"  # created at stop


# -- accepted, but warned about in the report ------------------------------------------------------
@pytest.mark.parametrize(("options", "warning"), [
    ({"pue": 1000, "intensity": 100}, r"pue=1000 is above the highest published value \(2\.5, .*Uptime Institute"),
    ({"wue": 1e9, "intensity": 100}, r"wue=1e\+09 L/kWh is above the highest published value \(2 L/kWh"),
    ({"intensity": 1e12}, r"intensity=1e\+12 g/kWh is above the highest published value \(1306 g/kWh"),
    ({"intensity": 0.045}, r"intensity=0\.045 g/kWh is below the lowest published value \(1.306 g/kWh.*check the unit"),
])
def test_implausible_factors_are_warned_in_the_report(options: dict, warning: str) -> None:
    report = _run(**options)
    assert any(re.search(warning, w) for w in report.warnings), report.warnings


@pytest.mark.parametrize("options", [
    {"pue": 1.2, "wue": 0.5, "intensity": 50}, {"pue": 2.5, "wue": 2.0, "intensity": 1141}, {"region": "FR"},
])
def test_plausible_factors_are_not_warned_about(options: dict) -> None:
    warnings = " | ".join(_run(**options).warnings)
    assert "pue=" not in warnings and "wue=" not in warnings and "intensity=" not in warnings


# -- one frozen record -------------------------------------------------------------------------------
def test_the_configuration_is_frozen_and_the_tracker_only_reads_it() -> None:
    tracker = Tracker(region="SE", pue=1.3, wue=0.2, interval_s=0.5, attribution="machine", name="run")
    config = tracker.config
    assert isinstance(config, TrackerConfig)
    assert (config.accounting.pue, config.accounting.wue_l_per_kwh, config.interval_s) == (1.3, 0.2, 0.5)
    assert (config.attribution, config.name, config.accounting.intensity.region.code) == ("machine", "run", "SE")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.interval_s = 2.0  # type: ignore[misc]
    with pytest.raises(AttributeError):
        tracker.pue = 2.0  # type: ignore[misc]


def test_a_tracker_from_a_config_measures_like_one_from_arguments() -> None:
    clock = ManualClock()
    config = tracker_config(intensity=200, pue=1.5, interval_s=3600, clock=clock, wall_clock=ManualClock(1.7e9))
    tracker = Tracker.from_config(config, readers=[_gpu(clock, 100.0)]).start()
    clock.advance(36.0)
    report = tracker.stop()
    assert report.energy_kwh == pytest.approx(3600 / J_PER_KWH, rel=1e-12)
    assert report.co2_kg == pytest.approx(3600 / J_PER_KWH * 1.5 * 200 / 1000, rel=1e-12)


# -- clocks a test can drive -------------------------------------------------------------------------
def test_an_injected_clock_makes_the_facade_exact() -> None:
    clock, wall = ManualClock(), ManualClock(1.7e9)
    tracker = Tracker(intensity=400, pue=1.5, readers=[_gpu(clock)], interval_s=3600, clock=clock,
                      wall_clock=wall).start()
    clock.advance(10.0)
    tracker.mark(step=1, epoch=0, count=8)
    clock.advance(10.0)
    snap = tracker.snapshot()
    report = tracker.stop()
    assert snap.duration_s == 20.0 and snap.energy_kwh == pytest.approx(6000 / J_PER_KWH, rel=1e-12)
    assert report.duration_s == 20.0 and report.started_at == utc_iso(1.7e9)
    assert report.energy_kwh_gpu == pytest.approx(6000 / J_PER_KWH, rel=1e-12)  # 300 W × 20 s
    assert report.co2_kg == pytest.approx(6000 / J_PER_KWH * 1.5 * 400 / 1000, rel=1e-12)
    (mark,) = report.marks
    assert mark.t_s == 10.0 and mark.energy_kwh == pytest.approx(3000 / J_PER_KWH, rel=1e-12)


# -- the report builder needs no Tracker -------------------------------------------------------------
def test_the_report_is_built_from_plain_records() -> None:
    accounting, _ = build_accounting(None, 1.25, 0.0, 100, 0.0)
    reader = SimpleNamespace(name="gpu:0", domain=Domain.GPU, method=Method.COUNTER, description="a counter")
    totals = SimpleNamespace(
        readers=[reader], t0=5.0, latest=(15.0, (7200.0, 0.0, 0.0)), timeline=[(5.0, (0.0, 0.0, 0.0)),
                                                                              (15.0, (7200.0, 0.0, 0.0))],
        joules=[7200.0], utilisation={}, degraded_at=[None], marks=[], epochs={}, mark_stride=1)
    sampler = SimpleNamespace(failures=[0], first_failure=[None])
    facts = RunFacts("abc123", 1.7e9, "process", name="plain", warnings=("given",),
                     unavailable=("rapl: no access — fix: chmod",))
    report = build_report(facts, accounting, totals, sampler, "completed")
    assert (report.run_id, report.name, report.duration_s, report.energy_kwh) == ("abc123", "plain", 10.0, 0.002)
    assert report.co2_kg == pytest.approx(0.002 * 1.25 * 100 / 1000)
    assert report.warnings == ("given", "rapl: no access — fix: chmod")
    assert report.intensity.chosen_by == "constant" and report.methods == {"gpu": "counter"}


def test_the_carbon_curve_weights_a_time_series_by_energy(tmp_path: Path) -> None:
    csv = tmp_path / "series.csv"
    csv.write_text("timestamp,carbon_intensity\n2024-01-01T00:00:00Z,100\n2024-01-01T01:00:00Z,300\n")
    accounting, _ = build_accounting(None, 1.0, 0.0, str(csv), 0.0)
    start = accounting.intensity.series.times[0]
    curve = CarbonCurve(accounting, [(0.0, 0.0), (3600.0, 1000.0), (7200.0, 4000.0)], start)
    assert curve.g_per_kwh_until(3600.0) == pytest.approx(100.0)
    assert curve.g_per_kwh_until(7200.0) == pytest.approx((1000 * 100 + 3000 * 300) / 4000)


# -- sessions: joined to a job at start, inference without a framework, one budget reduction --------
def test_the_training_session_joins_the_job_without_assigning_tracker_attributes(tmp_path: Path) -> None:
    options = TrainingOptions(intensity=100, tracker={"readers": [CounterReader("c", "cpu", lambda: 1.0)]},
                              output_dir=tmp_path, summary=False)
    session = TrainingSession(options)
    proposed = session.tracker.run_id
    session.begin(None, tmp_path, 1)
    assert session.tracker.run_id == proposed and session.tracker.place is not None
    assert session.tracker.output_dir is None  # the session writes the report itself
    report = session.end()
    assert session.report_path == tmp_path / f"carbonstep-{report.run_id}.json"


def test_tracker_start_takes_the_jobs_place_and_run_id() -> None:
    place = Place(rank=1, local_rank=1, world_size=2, local_world_size=2, host="h", node_leader=False)
    node_wide = CounterReader("rapl", "cpu", lambda: 5.0, scope="node")
    tracker = Tracker(intensity=100, readers=[node_wide], interval_s=3600).start(place, "jobrunid")
    report = tracker.stop()
    assert report.run_id == "jobrunid" and report.extra["place"]["rank"] == 1
    assert report.devices == () and "counted once per node" in tracker.unavailable[0].reason


def test_inference_session_without_a_framework(tmp_path: Path) -> None:
    clock = ManualClock()
    session = InferenceSession("serve", {"intensity": 100, "readers": [_gpu(clock, 50.0)], "interval_s": 3600,
                                         "clock": clock}, tmp_path).begin()
    for index in range(4):
        clock.advance(1.0)
        session.batch(index, count=25)
    report = session.end()
    info = report.extra["inference"]
    assert (info["mode"], info["inference_batches"], info["inference_samples"]) == ("serve", 4, 100)
    assert info["inference_joules_per_batch"] == pytest.approx(50.0)  # 50 W × 4 s over 4 batches
    assert info["inference_joules_per_sample"] == pytest.approx(2.0)
    assert session.report_path == tmp_path / f"carbonstep-{report.run_id}-serve.json"
    assert session.end() is report


def test_the_session_decides_and_records_the_budget_stop(tmp_path: Path) -> None:
    joules = [0.0]
    options = TrainingOptions(intensity=100, tracker={"readers": [CounterReader("c", "cpu", lambda: joules[0])]},
                              budget=Budget(kwh=1500 / J_PER_KWH, predict=False), output_dir=tmp_path,
                              summary=False)
    session = TrainingSession(options)
    session.begin(None, tmp_path, 1)
    joules[0] = 1000.0
    _, first = session.epoch_end(0, 1)
    assert first is not None and not first.stop and session.decision is None
    joules[0] = 2000.0
    _, second = session.epoch_end(1, 2)
    assert second is not None and second.stop and session.decision is second
    assert session.end().budget["epoch"] == 1


def test_the_default_interval_is_the_measured_one() -> None:
    import inspect

    from carbonstep.measure.config import DEFAULT_INTERVAL_S

    assert inspect.signature(Tracker).parameters["interval_s"].default == DEFAULT_INTERVAL_S
    assert Tracker(region="FR").interval_s == DEFAULT_INTERVAL_S
