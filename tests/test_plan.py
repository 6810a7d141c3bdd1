"""Acting on a footprint: sites, start times and hints, against hand-computed answers and real files."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carbonstep import ConfigError, Tracker
from carbonstep.accounting.regions import lookup
from carbonstep.accounting.timeseries import read_series
from carbonstep.analysis.plan.plan import best_start, parse_duration, rank_sites, read_sites
from carbonstep.cli import main as cli
from carbonstep.errors import DataFileError
from carbonstep.measure.readers.nvml import discover_nvml
from carbonstep.report.hints import CAR_G_PER_KM, KETTLE_KWH_PER_L, hints_for
from carbonstep.report.record import Epoch, RunReport
from carbonstep.report.summary import render

from .fake_nvml import FakeGpu, FakeNvml
from .test_scale import _report

SITES = """site,pue,wue,region,intensity,water_intensity
nordic,1.1,0.2,,30,
paris,1.3,1.0,FR,,
texas,1.5,2.0,,400,1.5
"""
HOUR = 3600.0
T0 = 1_767_225_600.0  # 2026-01-01 00:00 UTC


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_sites_ranked_by_co2_and_by_water(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fr = lookup("FR").g_per_kwh
    costs = rank_sites(read_sites(_write(tmp_path / "sites.csv", SITES)), 100.0)
    assert [c.site.name for c in costs] == ["nordic", "paris", "texas"]
    assert [c.co2_kg for c in costs] == pytest.approx([100 * 1.1 * 30 / 1e3, 100 * 1.3 * fr / 1e3,
                                                       100 * 1.5 * 400 / 1e3])
    assert [c.water_l for c in costs] == pytest.approx([100 * (0.2 + 1.1 * 3.14), 100 * (1.0 + 1.3 * 3.14),
                                                        100 * (2.0 + 1.5 * 1.5)])
    assert [c.water_rank for c in costs] == [1, 3, 2]  # texas uses less water than paris, more CO2e
    assert "FR" in costs[1].site.intensity_source
    assert cli(["plan", "--sites", str(tmp_path / "sites.csv"), "--kwh", "100"]) == 0
    out = capsys.readouterr().out
    assert out.index("nordic") < out.index("paris") < out.index("texas") and "Best for water: nordic" in out


@pytest.mark.parametrize(("text", "line", "problem"), [
    ("site,pue,wue,region\nparis,1.3,0.5,Frnace\n", 2, "did you mean FR"),
    ("site,pue,wue,intensity\na,0.9,0,100\n", 2, "pue must be a finite number ≥ 1"),
    ("site,pue,wue,intensity\na,1.2,-1,100\n", 2, "wue must be a finite number ≥ 0"),
    ("site,pue,wue,intensity\na,1.2,0,nan\n", 2, "intensity must be a finite number"),
    ("site,pue,wue,intensity\na,1.2,0\n", 2, "3 cells for 4 columns"),
    ("site,pue,wue,intensity\na,1.2,0,\n", 2, "needs a region or an intensity"),
    ("site,power,region\na,1,FR\n", 1, "must name site, pue"),
])
def test_bad_sites_file_names_the_line(tmp_path: Path, text: str, line: int, problem: str) -> None:
    with pytest.raises(DataFileError, match=problem) as info:
        read_sites(_write(tmp_path / "bad.csv", text))
    assert info.value.line == line and f"line {line}" in str(info.value)


def test_sites_file_level_errors(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="site named twice: a"):
        read_sites(_write(tmp_path / "twice.csv", "site,pue,intensity\na,1.1,5\na,1.2,6\n"))
    with pytest.raises(DataFileError, match="no sites"):
        read_sites(_write(tmp_path / "empty.csv", "site,pue,intensity\n"))
    with pytest.raises(DataFileError, match="cannot read"):
        read_sites(tmp_path / "missing.csv")


def _forecast(tmp_path: Path) -> Path:
    values = [300, 100, 50, 400, 200, 100]  # hourly from 00:00; the last holds until 06:00
    rows = "\n".join(f"2026-01-01T{h:02d}:00Z,{v}" for h, v in enumerate(values))
    return _write(tmp_path / "forecast.csv", "datetime,carbon_intensity\n" + rows + "\n")


def test_best_start_for_a_flat_job(tmp_path: Path) -> None:
    series = read_series(_forecast(tmp_path))
    plan = best_start(series, 2 * HOUR, kwh=10.0, now_s=T0)
    # 5 kWh in each hour: 00:00 → (300+100)/2 × 10 kWh = 2.0 kg; 01:00 → 0.75; 02:00 → 2.25; 03:00 → 3.0; 04:00 → 1.5
    assert plan.best.start_s == T0 + HOUR and plan.best.co2_kg == pytest.approx(0.75)
    assert plan.now.co2_kg == pytest.approx(2.0) and plan.saving_kg == pytest.approx(1.25)
    assert plan.saving_fraction == pytest.approx(0.625)
    assert sorted(round(c.co2_kg, 9) for c in plan.candidates) == [0.75, 1.5, 2.0, 2.25, 3.0]
    half = best_start(series, 2 * HOUR, kwh=10.0, now_s=T0 + HOUR / 2)  # now between two values
    assert half.now.co2_kg == pytest.approx((2.5 * 300 + 5 * 100 + 2.5 * 50) / 1e3)
    assert half.best.start_s == T0 + HOUR
    assert best_start(series, 2 * HOUR, 10.0, T0 + HOUR, pue=1.5).best.co2_kg == pytest.approx(1.125)


def test_best_start_follows_the_report_power_profile(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # all of the energy in the first of two hours: a start at 02:00 puts it in the 50 g/kWh hour
    report = replace(_report("h", "2026-01-01T00:00:00+00:00", 2 * HOUR, [("g", "gpu", "device", 10.0)], 100),
                     timeline=((0.0, 0.0), (HOUR, 10.0), (2 * HOUR, 10.0)))
    path = report.save(tmp_path / "run.json")
    assert cli(["plan", "--forecast", str(_forecast(tmp_path)), "--report", str(path),
                "--now", "2026-01-01T00:00:00+00:00"]) == 0
    out = capsys.readouterr().out
    assert "best start     2026-01-01 02:00 UTC  500 g CO2e" in out and "saves 2.50 kg (83%)" in out
    assert "power profile of the report's run" in out


def test_now_already_best_and_forecast_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    series = read_series(_write(tmp_path / "rising.csv", "timestamp,carbon_intensity\n"
                                "2026-01-01T00:00Z,10\n2026-01-01T01:00Z,20\n2026-01-01T02:00Z,30\n"))
    plan = best_start(series, HOUR, 1.0, T0)
    assert plan.best is plan.now and plan.saving_kg == 0
    with pytest.raises(ConfigError, match="does not fit"):
        best_start(series, 4 * HOUR, 1.0, T0)
    with pytest.raises(ConfigError, match="outside the forecast"):
        best_start(series, HOUR, 1.0, T0 - 10 * HOUR)
    for bad in ("6", "h", "-1h", "0h", "6 hours", ""):
        with pytest.raises(ConfigError, match="duration"):
            parse_duration(bad)
    assert parse_duration("1h30m") == 5400 and parse_duration("2d") == 172800 and parse_duration("45s") == 45
    assert cli(["plan", "--forecast", str(tmp_path / "rising.csv"), "--duration", "1h"]) == 2
    assert "--kwh N or --report" in capsys.readouterr().err
    assert cli(["plan", "--kwh", "1"]) == 2
    assert cli(["plan", "--forecast", str(tmp_path / "rising.csv"), "--kwh", "1", "--duration", "1h",
                "--now", "2026-01-01T00:00:00", "--pue", "0.5"]) == 2
    assert "--pue must be" in capsys.readouterr().err


# -- hints ------------------------------------------------------------------------------
def _kinds(report: RunReport) -> list[str]:
    return [h.kind for h in hints_for(report)]


def test_idle_gpu_hint_only_when_mostly_idle() -> None:
    base = _report("h", "2026-01-01T00:00:00+00:00", 100, [("gpu:0", "gpu", "device", 0.01)], 100)
    gpu = base.devices[0]
    idle = replace(base, devices=(replace(gpu, utilisation_pct=4.0, idle_fraction=0.8),))
    busy = replace(base, devices=(replace(gpu, utilisation_pct=90.0, idle_fraction=0.05),))
    unknown = base  # no utilisation readings at all
    assert "idle_gpu" in _kinds(idle) and "80%" in hints_for(idle)[0].text
    assert "idle_gpu" not in _kinds(busy) and "idle_gpu" not in _kinds(unknown)


def test_idle_gpu_end_to_end_from_nvml_utilisation(tmp_path: Path) -> None:
    readers, _, _ = discover_nvml(FakeNvml([FakeGpu("GPU-aaaa", utilisation=3)], time.monotonic), visible="0")
    with Tracker(intensity=100, readers=readers, interval_s=0.01, output_dir=tmp_path) as tracker:
        time.sleep(0.1)
    report = tracker.stop()
    assert [h["kind"] for h in report.hints][0] == "idle_gpu"
    assert "input pipeline" in render(RunReport.load(tracker.report_path))


def test_wasted_energy_hint_only_for_a_failed_run() -> None:
    epochs = (Epoch(0, 0, 40, 0.004, 0.0004, 0.01, 10, 320.0), Epoch(1, 40, 80, 0.004, 0.0004, 0.01, 10, 320.0))
    failed = replace(_report("h", "2026-01-01T00:00:00+00:00", 100, [("gpu:0", "gpu", "device", 0.01)], 100),
                     status="failed", wasted=True, epochs=epochs)
    text = next(h.text for h in hints_for(failed) if h.kind == "wasted")
    assert "failed after 100 s" in text and "after epoch 1 ended" in text
    assert "2.00 Wh of it" in text  # 10 Wh − 2 epochs × 4 Wh
    assert "wasted" not in _kinds(replace(failed, status="completed", wasted=False))


def test_energy_per_sample_or_token_when_counts_are_marked() -> None:
    epochs = (Epoch(0, 0, 50, 0.005, 0.0005, 0.01, 10, 1000.0), Epoch(1, 50, 100, 0.005, 0.0005, 0.01, 10, 1000.0))
    base = _report("h", "2026-01-01T00:00:00+00:00", 100, [("gpu:0", "gpu", "device", 0.01)], 100)
    counted = replace(base, epochs=epochs)
    hint = next(h for h in hints_for(counted) if h.kind == "per_item")
    assert hint.value == pytest.approx(0.01 * 3.6e6 / 2000)  # 18 J per sample
    assert "per sample (2,000 samples counted" in hint.text
    tokens = replace(counted, extra={"count_unit": "token"})
    assert "per token" in next(h.text for h in hints_for(tokens) if h.kind == "per_item")
    assert "per_item" not in _kinds(base)  # nothing counted


def test_equivalents_with_sources() -> None:
    base = _report("h", "2026-01-01T00:00:00+00:00", 100, [("gpu:0", "gpu", "device", 1.0)], 400)
    hint = next(h for h in hints_for(base) if h.kind == "equivalents")
    assert hint.value == pytest.approx(400 / (400 / 1.609344))  # 0.4 kg at 248.5 g/km → 1.61 km
    assert "EPA" in hint.text and f"{1.0 / KETTLE_KWH_PER_L:.3g} L of water" in hint.text
    assert CAR_G_PER_KM == pytest.approx(248.55, rel=1e-4)
    zero = replace(base, co2_kg=0.0)
    assert "equivalents" not in _kinds(zero)


def test_summary_is_one_screen_even_for_a_large_job() -> None:
    devices = [(f"gpu:{i}", "gpu", "device", 0.001) for i in range(64)]
    report = _report("h", "2026-01-01T00:00:00+00:00", 100, devices, 100)
    text = render(report)
    assert len(text.splitlines()) <= 24 and "and 59 more devices" in text
    for needle in ("energy", "by counter", "carbon", "g/kWh", "water", "by an average passenger car"):
        assert needle in text


# -- cost of planning on long forecasts ---------------------------------------------------
def _reference_co2_kg(series, start_s: float, duration_s: float, kwh: float, profile) -> float:
    """The job cost cut at every change of intensity and of the profile (the former algorithm, quadratic)."""
    from carbonstep.report.builder import interpolate

    end = start_s + duration_s
    cuts = sorted({start_s, end, *(t for t in series.times if start_s < t < end),
                   *(start_s + x * duration_s for x, _ in profile)})
    g_kwh = 0.0
    for a, b in zip(cuts, cuts[1:]):
        share = interpolate(profile, (b - start_s) / duration_s) - interpolate(profile, (a - start_s) / duration_s)
        g_kwh += share * kwh * series.at((a + b) / 2)
    return g_kwh / 1000.0


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0, 900), min_size=2, max_size=30), st.floats(0.05, 0.95), st.floats(0.0, 0.9),
       st.lists(st.floats(0.01, 1.0), min_size=1, max_size=5))
def test_the_running_integral_costs_a_job_as_the_cuts_did(values, duration_share, start_share, weights) -> None:
    from carbonstep.accounting.timeseries import IntensitySeries
    from carbonstep.analysis.plan.plan import job_co2_kg

    series = IntensitySeries(tuple(1.7e9 + 300.0 * i for i in range(len(values))), tuple(values), "h")
    span = 300.0 * len(values)
    duration = duration_share * span
    start = 1.7e9 + start_share * (span - duration)
    energy = [0.0, *[sum(weights[:i + 1]) / sum(weights) for i in range(len(weights))]]
    profile = [(i / len(weights), e) for i, e in enumerate(energy)]
    assert job_co2_kg(series, start, duration, 3.0, 1.0, profile) == pytest.approx(
        _reference_co2_kg(series, start, duration, 3.0, profile), rel=1e-6, abs=1e-12)  # cuts lose digits at 1.7e9 s


def test_planning_is_linear_in_the_forecast_and_reports_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    from carbonstep.accounting.timeseries import IntensitySeries
    from carbonstep.analysis.plan import plan

    reads: list[int] = []
    original = plan.SeriesIntegral.at
    monkeypatch.setattr(plan.SeriesIntegral, "at", lambda self, t: reads.append(1) or original(self, t))
    monkeypatch.setattr(plan, "PROGRESS_STARTS", 1000)
    counts = {}
    for rows in (2000, 8000):
        reads.clear()
        series = IntensitySeries(tuple(1.7e9 + 300.0 * i for i in range(rows)),
                                 tuple(100.0 + (i * 37 % 101) for i in range(rows)), "h")
        progress: list[tuple[int, int]] = []
        chosen = plan.best_start(series, 6 * HOUR, 1.0, 1.7e9, progress=lambda d, t, seen=progress: seen.append((d, t)))
        counts[rows] = len(reads)
        assert chosen.considered > 0.9 * rows and len(chosen.candidates) == plan.KEEP_CANDIDATES
        assert progress and progress[-1][1] == chosen.considered
    assert counts[8000] <= 5 * counts[2000]  # 4× the forecast, about 4× the reads (quadratic: 16×)


def test_cli_plan_says_its_progress_on_a_long_forecast(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from carbonstep.accounting import timeseries
    from carbonstep.analysis.plan import plan

    monkeypatch.setattr(timeseries, "PROGRESS_ROWS", 500)
    monkeypatch.setattr(plan, "PROGRESS_STARTS", 500)
    rows = "".join(f"{1.7e9 + 300 * i:.0f},{100 + i % 50}\n" for i in range(1200))
    path = _write(tmp_path / "long.csv", "timestamp,carbon_intensity\n" + rows)
    assert cli(["plan", "--forecast", str(path), "--kwh", "1", "--duration", "2h", "--now", "1700000000"]) == 0
    captured = capsys.readouterr()
    assert "reading" in captured.err and "1,000 rows" in captured.err and "starts costed" in captured.err
    assert "best start" in captured.out


def test_a_site_with_both_a_region_and_an_intensity_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "sites.csv"
    path.write_text("site,pue,region,intensity\nparis,1.2,FR,50\n", encoding="utf-8")
    with pytest.raises(DataFileError, match="line 2: gives both a region .* and an intensity"):
        read_sites(path)


def test_a_job_too_large_to_cost_is_one_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "sites.csv"
    path.write_text("site,pue,intensity\na,1.2,50\nb,1.1,60\n", encoding="utf-8")
    assert cli(["plan", "--sites", str(path), "--kwh", "1.7e308"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "overflows" in err and "nan" not in err
