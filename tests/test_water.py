"""Grid water intensity by region: the run's figure, its range and basis, in reports, listings and params."""

from __future__ import annotations

import subprocess
import sys

import pytest

from carbonstep import Tracker
from carbonstep.accounting.regions import search
from carbonstep.accounting.water import mlflow_water_params, water_of, water_table
from carbonstep.report.summary import render
from carbonstep.testing import CounterReader

KWH = 3.6e6


def test_each_region_is_charged_its_own_water_intensity() -> None:
    figures = {code: Tracker(region=code).water_intensity for code in ("FR", "IN", "NO", "US-TX")}
    assert figures == {code: water_table()[code].l_per_kwh for code in figures}
    assert len(set(figures.values())) == 4
    assert Tracker(intensity=100).water_intensity == water_table()["WORLD"].l_per_kwh  # no region: the world's
    assert "no region; world average" in Tracker(intensity=100).accounting.water.basis


def test_an_argument_overrides_the_region_and_says_so() -> None:
    tracker = Tracker(region="FR", water_intensity_l_per_kwh=1.5)
    assert tracker.water_intensity == 1.5
    assert mlflow_water_params(tracker.accounting) == {
        "carbonstep.water_l_per_kwh": "1.5", "carbonstep.water_basis": "1.5 L/kWh (given as water_intensity_l_per_kwh)"}


def test_the_report_records_the_water_figure_range_and_basis() -> None:
    joules = [0.0]
    reader = CounterReader("c", "gpu", lambda: joules[0])
    tracker = Tracker(region="IN", readers=[reader], interval_s=10).start()
    joules[0] = KWH  # one kWh
    report = tracker.stop()
    water = water_of("IN")
    assert report.water_intensity_l_per_kwh == water.l_per_kwh
    assert report.water_l == pytest.approx(water.l_per_kwh)  # PUE 1, WUE 0
    assert report.extra["water"] == {"l_per_kwh": water.l_per_kwh, "low": water.low, "high": water.high,
                                     "basis": water.basis}
    assert water.low < water.l_per_kwh < water.high and "Macknick" in water.basis
    assert f"range {water.low:g}-{water.high:g}" in render(report) and "India (IN)" in render(report)


def test_mlflow_params_name_the_figure_and_its_basis() -> None:
    params = mlflow_water_params(Tracker(region="NO").accounting)
    assert params["carbonstep.water_l_per_kwh"] == f"{water_of('NO').l_per_kwh:g}"
    assert params["carbonstep.water_basis"].startswith(f"{water_of('NO').l_per_kwh:g} L/kWh (")
    assert "Norway (NO)" in params["carbonstep.water_basis"]


def test_a_region_code_names_that_region_alone() -> None:
    assert [r.code for r in search("FR")] == ["FR"]  # was FR and ZA: "fr" in "South Africa"
    assert [r.code for r in search("fr")] == ["FR"]
    assert "ZA" in [r.code for r in search("africa")]
    assert sorted(r.code for r in search(["FR", "IN", "NO", "US-TX"])) == ["FR", "IN", "NO", "US-TX"]


def test_carbonstep_regions_lists_four_water_intensities_with_their_basis() -> None:
    out = subprocess.run([sys.executable, "-m", "carbonstep.cli", "regions", "FR", "IN", "NO", "US-TX"],
                         capture_output=True, text=True, check=True).stdout
    water_lines = [line for line in out.splitlines() if "water:" in line]
    assert len(water_lines) == 4
    for code, line in zip(("FR", "IN", "NO", "US-TX"), water_lines):
        assert f"{water_of(code).l_per_kwh:.2f}" in line and water_of(code).basis in line
    assert "South Africa" not in out and "4 regions" in out


def test_one_row_look_ups_agree_with_the_whole_table() -> None:
    """A run reads its region's row (and the world's) only: the same figures as parsing the whole table."""
    table = water_table()
    for code, water in table.items():
        assert water_of(code) == water and water_of(code.lower()) == water, code
    world = table["WORLD"]
    for missing in (None, "", "ZZ", "FR ", "F,R", 'F"R'):
        found = water_of(missing)
        assert (found.l_per_kwh, found.low, found.high) == (world.l_per_kwh, world.low, world.high)
        assert found.basis.endswith(f"world average: {world.basis}")
