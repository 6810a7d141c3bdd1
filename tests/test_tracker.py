"""Sampler, totals and Tracker: real threads, scripted readers with known integrals."""

from __future__ import annotations

import math
import threading
import time

import pytest

from carbonstep import CarbonstepError, ConfigError, Tracker
from carbonstep.measure.sampler import Sampler
from carbonstep.measure.totals import EnergyTotals
from carbonstep.testing import ManualClock, ScriptedReader


def wave(t: float) -> float:
    return 200.0 + 100.0 * math.sin(2 * math.pi * t / 2.0)


def wave_integral(a: float, b: float) -> float:
    k = 2 * math.pi / 2.0
    return 200.0 * (b - a) - 100.0 / k * (math.cos(k * b) - math.cos(k * a))


def test_power_trace_integral_within_half_a_percent_on_a_real_thread() -> None:
    gpu = ScriptedReader("gpu:0", "gpu", wave)
    totals = EnergyTotals([gpu])
    sampler = Sampler([gpu], totals.ingest, 0.02)
    sampler.start()
    time.sleep(1.5)
    sampler.stop()
    first, last = totals.timeline[0][0] - gpu.t0, totals.latest[0] - gpu.t0
    exact = wave_integral(first, last)
    assert totals.joules[0] == pytest.approx(exact, rel=0.005)
    assert sampler.samples > 30 and not sampler.running


def test_counter_reader_is_exact_and_wraps() -> None:
    clock = ManualClock()
    cpu = ScriptedReader("rapl", "cpu", lambda t: 50.0, kind="counter", clock=clock, wrap_j=120.0)
    totals = EnergyTotals([cpu], clock=clock)
    sampler = Sampler([cpu], totals.ingest, 1.0, clock=clock)
    for _ in range(6):
        sampler.poll()
        clock.advance(1.0)  # 50 J per read: wraps every 2.4 s
    assert totals.joules[0] == pytest.approx(250.0)


def test_marks_are_interpolated_and_grouped_into_epochs() -> None:
    clock = ManualClock()
    gpu = ScriptedReader("gpu", "gpu", lambda t: 100.0, clock=clock)
    totals = EnergyTotals([gpu], clock=clock)
    sampler = Sampler([gpu], totals.ingest, 1.0, clock=clock)
    sampler.poll()
    clock.advance(0.25)
    totals.mark("step", 1, 0, 32)
    clock.advance(0.75)
    totals.mark("step", 2, 0, 32)
    sampler.poll()  # t = 1 s, 100 J
    clock.advance(0.5)
    totals.mark("step", 3, 1, 32)
    clock.advance(0.5)
    sampler.poll()  # t = 2 s, 200 J
    assert [m.energy_j[0] for m in totals.marks] == pytest.approx([25.0, 100.0, 150.0])
    e0, e1 = totals.epochs[0], totals.epochs[1]
    assert (e0.steps, e0.count, e0.end_j[0]) == (2, 64, pytest.approx(100.0))
    assert e1.start_j[0] - 0 == pytest.approx(100.0) and e1.end_j[0] == pytest.approx(150.0)


def test_memory_stays_bounded_over_a_long_run() -> None:
    clock = ManualClock()
    gpu = ScriptedReader("gpu", "gpu", lambda t: 100.0, clock=clock)
    totals = EnergyTotals([gpu], max_points=64, max_marks=100, clock=clock)
    sampler = Sampler([gpu], totals.ingest, 1.0, clock=clock)
    for i in range(5000):  # a long run: 5000 samples, 10 marks each
        for j in range(10):
            totals.mark("step", i * 10 + j, i // 500, None)
        clock.advance(1.0)
        sampler.poll()
    assert len(totals.timeline) <= 64 and len(totals.marks) <= 100
    assert totals.mark_stride > 1 and len(totals.pending) == 0
    assert totals.joules[0] == pytest.approx(4999 * 100.0)  # 4999 intervals of 1 s: nothing lost by thinning
    assert sum(e.steps for e in totals.epochs.values()) == 50_000


def test_tracker_report_with_scripted_devices() -> None:
    gpu = ScriptedReader("gpu:0", "gpu", lambda t: 300.0)
    cpu = ScriptedReader("cpu", "cpu", lambda t: 50.0, kind="counter")
    with Tracker(intensity=400.0, pue=1.2, wue=0.5, readers=[gpu, cpu], interval_s=0.01,
                 water_intensity_l_per_kwh=2.0) as tracker:
        for epoch in range(2):
            for step in range(5):
                time.sleep(0.01)
                tracker.mark(step=epoch * 5 + step, epoch=epoch, count=8)
        snap = tracker.snapshot()
    report = tracker.stop()
    assert snap.energy_kwh > 0 and snap.energy_kwh <= report.energy_kwh
    assert report.energy_kwh_gpu == pytest.approx(300.0 * report.duration_s / 3.6e6, rel=0.02)
    assert report.energy_kwh_cpu == pytest.approx(50.0 * report.duration_s / 3.6e6, rel=0.05)
    assert report.energy_kwh == pytest.approx(report.energy_kwh_gpu + report.energy_kwh_cpu + report.energy_kwh_ram)
    assert report.co2_kg == pytest.approx(report.energy_kwh * 1.2 * 400.0 / 1000)
    assert report.water_l == pytest.approx(report.energy_kwh * (0.5 + 1.2 * 2.0))
    assert report.methods == {"gpu": "power", "cpu": "counter"}
    assert [e.steps for e in report.epochs] == [5, 5] and len(report.marks) == 10
    assert sum(e.energy_kwh for e in report.epochs) <= report.energy_kwh
    assert report.intensity.chosen_by == "constant" and report.status == "completed"
    assert gpu.closed and cpu.closed


def test_stop_is_idempotent_and_start_after_stop_is_refused() -> None:
    tracker = Tracker(intensity=100, readers=[ScriptedReader("g", "gpu", lambda t: 1.0)], interval_s=0.01)
    tracker.start()
    first = tracker.stop()
    assert tracker.stop() is first
    with pytest.raises(CarbonstepError, match="create a new one"):
        tracker.start()
    assert not any(t.name == "carbonstep-sampler" for t in threading.enumerate())


def test_the_view_reads_the_tracker_live_and_cannot_be_written() -> None:
    gpu = ScriptedReader("g", "gpu", lambda t: 1.0)
    tracker = Tracker(intensity=100, readers=[gpu], interval_s=0.01, name="v")
    view = tracker.view
    assert view.readers == () and view.totals is None and view.sampler is None and view.interval_s is None
    assert view.started_wall is None and view.report is None and not view.running and view.config is tracker.config
    with pytest.raises(AttributeError, match="read-only"):
        view.report = None  # type: ignore[misc]
    tracker.start()
    assert view.readers == (gpu,) and view.running and view.interval_s == pytest.approx(0.01)
    assert view.totals is not None and view.sampler is not None and view.sampler.running
    assert view.started_wall is not None and abs(view.started_wall - time.time()) < 60
    tracker.mark(count=-1)  # a bad count: one warning, seen through the view at once
    assert len(view.warnings) == 1 and "count" in view.warnings[0] and view.run_id == tracker.run_id
    report = tracker.stop()
    assert view.report is report and not view.running and "stopped" in repr(view)


def test_exception_in_block_marks_the_energy_wasted() -> None:
    tracker = Tracker(intensity=100, readers=[ScriptedReader("g", "gpu", lambda t: 10.0)], interval_s=0.01)
    with pytest.raises(RuntimeError):
        with tracker:
            time.sleep(0.02)
            raise RuntimeError("diverged")
    report = tracker.stop()
    assert report.status == "failed" and report.wasted and report.energy_kwh > 0


def test_two_trackers_at_once_count_independently() -> None:
    a = Tracker(intensity=100, readers=[ScriptedReader("a", "gpu", lambda t: 100.0)], interval_s=0.01).start()
    time.sleep(0.05)
    b = Tracker(intensity=100, readers=[ScriptedReader("b", "gpu", lambda t: 100.0)], interval_s=0.01).start()
    time.sleep(0.05)
    ra, rb = a.stop(), b.stop()
    assert ra.energy_kwh == pytest.approx(100 * ra.duration_s / 3.6e6, rel=0.02)
    assert rb.energy_kwh == pytest.approx(100 * rb.duration_s / 3.6e6, rel=0.02)
    assert ra.duration_s > rb.duration_s
    assert not any(t.name == "carbonstep-sampler" for t in threading.enumerate())  # no thread leaked


def test_failing_reader_is_isolated_and_reported() -> None:
    good = ScriptedReader("good", "gpu", lambda t: 100.0)
    bad = ScriptedReader("bad", "cpu", lambda t: 10.0, fail_after_s=0.05)
    with Tracker(intensity=100, readers=[good, bad], interval_s=0.01) as tracker:
        time.sleep(0.15)
    report = tracker.stop()
    bad_device = next(d for d in report.devices if d.name == "bad")
    assert bad_device.degraded_at_s is not None and bad_device.failures > 0
    assert any("bad failed from" in w for w in report.warnings)
    assert report.energy_kwh_gpu == pytest.approx(100 * report.duration_s / 3.6e6, rel=0.02)


def test_real_discovery_on_this_machine_measures_cpu_and_ram(tmp_path) -> None:
    with Tracker(region="DE", interval_s=0.05, output_dir=tmp_path) as tracker:
        x = 0
        deadline = time.monotonic() + 0.3
        while time.monotonic() < deadline:
            x += 1
    report = tracker.stop()
    assert report.energy_kwh_cpu > 0 and report.energy_kwh_ram > 0
    assert set(report.methods) >= {"cpu", "ram"}
    assert tracker.report_path.exists()
    assert report.intensity.region == "DE" and report.intensity.g_per_kwh > 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pue": 0.9}, "pue must be a finite number ≥ 1"),
        ({"wue": -1}, "wue must be a finite number ≥ 0"),
        ({"intensity": float("nan")}, "intensity must be a finite number"),
        ({"intensity": -5}, "intensity must be a finite number ≥ 0"),
        ({"attribution": "node"}, "attribution must be 'process' or 'machine'"),
        ({"interval_s": 0}, "interval_s must be"),
        ({"region": "Frnace"}, r"did you mean FR \(France\)"),
        ({"intensity": "/no/such.csv"}, "cannot read"),
    ],
)
def test_bad_configuration_is_a_clear_error(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Tracker(**kwargs)


def test_environment_configures_region_pue_and_wue(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARBONSTEP_REGION", "SE")
    monkeypatch.setenv("CARBONSTEP_PUE", "1.4")
    monkeypatch.setenv("CARBONSTEP_WUE", "0.3")
    tracker = Tracker()
    assert (tracker.region.code, tracker.pue, tracker.wue) == ("SE", 1.4, 0.3)
    monkeypatch.setenv("CARBONSTEP_PUE", "0.5")
    with pytest.raises(ConfigError, match="CARBONSTEP_PUE"):
        Tracker()
