"""Carbon, water, regions and time-series intensity against hand-computed values."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carbonstep.accounting import regions as regions_module
from carbonstep.accounting.footprint import co2_kg, facility_kwh, water_l
from carbonstep.accounting.regions import lookup, search
from carbonstep.accounting.timeseries import read_series
from carbonstep.errors import ConfigError, DataFileError


def test_carbon_and_water_formulas() -> None:
    assert facility_kwh(2.0, 1.5) == 3.0
    assert co2_kg(2.0, 1.5, 400.0) == pytest.approx(1.2)  # 2 kWh × 1.5 × 400 g/kWh = 1.2 kg
    assert water_l(2.0, 1.5, 0.5, 3.0) == pytest.approx(2.0 * (0.5 + 1.5 * 3.0))


def test_every_row_has_provenance() -> None:
    rows = search("")
    assert len(rows) > 250
    for r in rows:
        assert r.g_per_kwh > 0 and r.year >= 2000 and r.basis in ("lifecycle", "direct")
        assert r.source and r.licence
    levels = {r.level for r in rows}
    assert levels == {"country", "state"}  # untraceable subregion/province rows left the table
    # Ember's World 2024 figure, 473.0 g/kWh, in Our World in Data's carbon-intensity CSV
    assert lookup("WORLD").g_per_kwh == 473 and lookup("WORLD").year == 2024


def test_lookup_by_code_or_name_and_close_matches() -> None:
    assert lookup("fr").name == "France"
    assert lookup("France").code == "FR"
    assert lookup("us-tx").basis == "direct"  # eGRID2023: 771.179 lb/MWh × 0.45359237 = 349.8 g/kWh
    assert lookup("us-tx").g_per_kwh == 350 and lookup("us-tx").year == 2023
    assert lookup("NO").g_per_kwh < 40
    with pytest.raises(ConfigError, match=r"did you mean FR \(France\)"):
        lookup("Frnace")
    with pytest.raises(ConfigError, match=r"Germany"):
        lookup("Germny")
    with pytest.raises(ConfigError, match="carbonstep regions"):
        lookup("Atlantis")


def test_region_resolution_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    zone_tab = tmp_path / "zone.tab"
    zone_tab.write_text("# comment\nFR\t+4852+00220\tEurope/Paris\nDE\t+5230+01322\tEurope/Berlin\n")
    real = regions_module.country_of_timezone
    monkeypatch.setattr(regions_module, "country_of_timezone", lambda tz: real(tz, zone_tab))
    monkeypatch.delenv("CARBONSTEP_REGION", raising=False)
    monkeypatch.setenv("TZ", "Europe/Berlin")
    region, how, warnings = regions_module.resolve(None)
    assert (region.code, how) == ("DE", "time zone Europe/Berlin") and "guessed" in warnings[0]
    monkeypatch.setenv("CARBONSTEP_REGION", "NO")
    assert regions_module.resolve(None)[0].code == "NO"
    assert regions_module.resolve("IS")[0].code == "IS"
    monkeypatch.delenv("CARBONSTEP_REGION")
    monkeypatch.setenv("TZ", "Etc/UTC")
    region, how, warnings = regions_module.resolve(None)
    assert (region.code, how) == ("WORLD", "world average") and "473 g/kWh (2024)" in warnings[0]


def test_zone_tab_lookup(tmp_path: Path) -> None:
    zone_tab = tmp_path / "zone.tab"
    zone_tab.write_text("# c\nFR\t+4852+00220\tEurope/Paris\nUS\t+404251-0740023\tAmerica/New_York\tEastern\n")
    assert regions_module.country_of_timezone("America/New_York", zone_tab) == "US"
    assert regions_module.country_of_timezone("Mars/Olympus", zone_tab) is None


FORMATS = {
    "plain": "timestamp,carbon_intensity\n2026-01-01T00:00:00Z,100\n2026-01-01T01:00:00Z,300\n",
    "electricitymaps": (
        "Datetime (UTC),Country,Zone Name,Zone Id,Carbon Intensity gCO₂eq/kWh (direct),"
        "Carbon Intensity gCO₂eq/kWh (Life cycle),Data Source\n"
        "2026-01-01 00:00:00,France,France,FR,80,100,x\n2026-01-01 01:00:00,France,France,FR,250,300,x\n"
    ),
    "watttime": "point_time,value,frequency,market,region\n"
                "2026-01-01T00:00:00+00:00,220.462,300,RTM,CAISO\n2026-01-01T01:00:00+00:00,661.387,300,RTM,CAISO\n",
    "uk": "from,to,forecast,actual,index\n2026-01-01T00:00Z,2026-01-01T00:30Z,90,100,low\n"
          "2026-01-01T01:00Z,2026-01-01T01:30Z,300,,high\n",
}


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_time_series_formats(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"{fmt}.csv"
    path.write_text(FORMATS[fmt])
    series = read_series(path)
    assert series.values == pytest.approx((100.0, 300.0), rel=1e-3)
    assert series.times[1] - series.times[0] == 3600


def test_energy_weighted_integration(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text(FORMATS["plain"])
    series = read_series(path)
    t0 = series.times[0]
    # 1 kWh in the first hour (100 g/kWh) and 3 kWh in the second (300 g/kWh)
    points = [(t0, 0.0), (t0 + 3600, 3.6e6), (t0 + 7200, 4 * 3.6e6)]
    assert series.weighted(points) == pytest.approx((1 * 100 + 3 * 300) / 4)


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("timestamp,carbon_intensity\n2026-01-01T00:00Z,100\nyesterday,200\n", 3, "bad timestamp"),
        ("timestamp,carbon_intensity\n2026-01-01T00:00Z,abc\n", 2, "not a number"),
        ("timestamp,carbon_intensity\n2026-01-01T00:00Z,nan\n", 2, "finite"),
        ("timestamp,carbon_intensity\n2026-01-01T00:00Z,-3\n", 2, "finite and ≥ 0"),
        ("timestamp,carbon_intensity\n2026-01-01T01:00Z,1\n2026-01-01T00:00Z,2\n", 3, "must increase"),
        ("when,what\n1,2\n", 1, "needs a time column"),
        ("timestamp,carbon_intensity\n2026-01-01T00:00Z,\n", 2, "missing intensity"),
    ],
)
def test_malformed_series_names_the_line(tmp_path: Path, text: str, line: int, problem: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(DataFileError, match=problem) as info:
        read_series(path)
    assert info.value.line == line and f"line {line}" in str(info.value)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=12), st.floats(allow_nan=True, allow_infinity=True).map(str)),
                min_size=1, max_size=6))
def test_series_parser_never_fails_unclearly(tmp_path_factory, cells: list[str]) -> None:
    path = tmp_path_factory.mktemp("h") / "s.csv"
    path.write_text("timestamp,carbon_intensity\n" + "\n".join(f"2026-01-01T00:0{i}:00Z,{c}" for i, c in
                                                                enumerate(cells)))
    try:
        series = read_series(path)
    except DataFileError as exc:
        assert exc.line is None or exc.line >= 2
    else:
        assert all(v >= 0 for v in series.values)
