"""A time-series intensity costs O(1) per logged step and agrees with the whole-run integral; a series that
does not cover the run is said in the report; the "wasted" hint counts from the last complete epoch."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from carbonstep.accounting.curve import CarbonCurve
from carbonstep.accounting.timeseries import IntensitySeries, read_series
from carbonstep.measure.tracker import Tracker
from carbonstep.report.builder import curve_of
from carbonstep.report.hints import wasted
from carbonstep.report.record import Epoch, RunReport
from carbonstep.report.summary import format_energy
from carbonstep.testing import CounterReader


def _series(path: Path, start_s: float, rows: int, step_s: float = 1.0) -> Path:
    path.write_text("timestamp,carbon_intensity\n" + "".join(f"{start_s + i * step_s:.3f},{100 + 50 * (i % 7)}\n"
                                                           for i in range(rows)))
    return path


def _running(intensity: Path) -> Tracker:
    reader = CounterReader("c", "gpu", lambda: time.monotonic() * 50.0)
    return Tracker(intensity=str(intensity), readers=[reader], interval_s=0.005).start()


def _wait_points(tracker: Tracker, n: int) -> None:
    deadline = time.monotonic() + 60
    while len(tracker.view.totals.timeline) < n and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(tracker.view.totals.timeline) >= n


def test_a_logged_step_integrates_only_the_points_sampled_since_the_last(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    tracker = _running(_series(tmp_path / "s.csv", time.time() - 5, 600, 0.05))
    _wait_points(tracker, 200)
    tracker.snapshot(refresh=False)
    charged: list[float] = []
    original = CarbonCurve._charge
    monkeypatch.setattr(CarbonCurve, "_charge", lambda self, a, b, j: charged.append(b) or original(self, a, b, j))
    tracker.view.sampler.stop()  # nothing new is sampled: a logged step must integrate nothing
    tracker.snapshot(refresh=False)
    seen = len(charged)
    for _ in range(100):
        tracker.snapshot(refresh=False)
    assert len(charged) == seen  # 100 logged steps, no interval integrated again (was: the whole timeline each)
    accounting = tracker.config.accounting
    curve = curve_of(accounting, tracker.view.totals, tracker.view.started_wall)
    t0 = tracker.view.totals.t0
    whole = accounting.intensity.series.cumulative_j_g([(tracker.view.started_wall + t - t0, sum(v))
                                                        for t, v in tracker.view.totals.timeline])
    assert curve.weighted_j_g[-1] == pytest.approx(whole[-1], rel=1e-12)  # the same integral as the whole-run one


def test_the_report_agrees_with_the_last_logged_step(tmp_path: Path) -> None:
    tracker = _running(_series(tmp_path / "s.csv", time.time() - 5, 600, 0.05))
    _wait_points(tracker, 50)
    tracker.view.sampler.stop()
    logged = tracker.snapshot(refresh=False)
    report = tracker.stop()
    assert report.co2_kg == pytest.approx(logged.co2_kg, rel=1e-9)
    assert not [w for w in report.warnings if "outside the intensity series" in w]


def test_a_series_that_ends_before_the_run_is_said_in_the_report(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = _series(tmp_path / "short.csv", time.time() - 10, 4, 1.0)  # ends about 6 s ago
    tracker = _running(path)
    _wait_points(tracker, 20)
    report = tracker.stop()
    warning = [w for w in report.warnings if "outside the intensity series" in w]
    assert len(warning) == 1 and str(path) in warning[0] and "charged at its first or last value" in warning[0]
    said = [line for line in capsys.readouterr().err.splitlines() if "outside the intensity series" in line]
    assert len(said) == 1 and said[0].startswith("carbonstep: warning:")  # on the console too, once
    series = read_series(path)
    assert not series.covers(time.time() - 1, time.time())


def test_span_is_the_first_time_to_one_step_after_the_last() -> None:
    series = IntensitySeries((0.0, 10.0, 20.0), (1.0, 2.0, 3.0), "s")
    assert series.span() == (0.0, 30.0) and series.covers(0.0, 30.0) and not series.covers(0.0, 30.1)


def _report(epochs: tuple[Epoch, ...], energy_kwh: float) -> RunReport:
    from carbonstep.report.record import Intensity

    return RunReport("r", "2026-01-01T00:00:00+00:00", 100.0, "interrupted", "process", "h", energy_kwh, energy_kwh,
                     0, 0, energy_kwh, 0.1, 0.0, 1.0, 0.0, 0.0, Intensity(100, None, "x", "s", None, "user"), {},
                     (), epochs=epochs, wasted=True)


def test_wasted_counts_from_the_end_of_the_last_complete_epoch() -> None:
    done = Epoch(0, 0.0, 40.0, 0.4, 0.04, 0.0, 10, 80, complete=True)
    partial = Epoch(1, 40.0, 70.0, 0.3, 0.03, 0.0, 7, 56, complete=False)  # interrupted mid-epoch
    hint = wasted(_report((done, partial), 1.0))[0]
    # 1.0 − 0.4 kWh after epoch 0, not 1.0 − 0.7 kWh after the last step mark
    assert f"{format_energy(0.6)} of it after epoch 0 ended" in hint.text
    hint = wasted(_report((partial,), 1.0))[0]
    assert "no epoch completed" in hint.text


def test_epochs_record_whether_they_completed() -> None:
    steps = [0]
    tracker = Tracker(intensity=100.0, readers=[CounterReader("c", "gpu", lambda: steps[0] * 10.0)],
                      interval_s=0.005).start()
    for step in range(1, 9):
        steps[0] = step
        tracker.mark("step", step, 0 if step <= 4 else 1, 1)
        if step == 4:
            tracker.mark("epoch_end", step, 0)
        time.sleep(0.01)
    report = tracker.stop("interrupted")
    assert [(e.epoch, e.complete) for e in report.epochs] == [(0, True), (1, False)]
    assert RunReport.from_json(report.to_json()).epochs == report.epochs
