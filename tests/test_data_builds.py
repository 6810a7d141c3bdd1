"""The shipped data tables are exactly what the maintainer scripts make from their recorded inputs."""

from __future__ import annotations

import csv
import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]
try:
    import pycountry  # noqa: F401  (the intensity build maps ISO alpha-3 to alpha-2 with it)
except ImportError:
    HAS_PYCOUNTRY = False
else:
    HAS_PYCOUNTRY = True
NEEDS_PYCOUNTRY = pytest.mark.skipif(not HAS_PYCOUNTRY, reason="the intensity build needs pycountry (dev extra)")


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


intensity_build = _script("build_intensity_data")
cpu_build = _script("build_cpu_data")


def _recorded_sha256(sources: Path) -> list[str]:
    return re.findall(r"sha256 of the input: `([0-9a-f]{64})`", sources.read_text())


@pytest.mark.parametrize("script", [pytest.param(intensity_build, marks=NEEDS_PYCOUNTRY), cpu_build],
                         ids=["intensity", "cpu"])
def test_shipped_tables_are_rebuilt_byte_for_byte(script: ModuleType) -> None:
    result = script.build()
    assert script.TABLE.read_bytes() == result.table.encode()
    assert script.SOURCES.read_bytes() == result.sources.encode()
    for path, text in getattr(result, "others", {}).items():  # the CPU build's other tables
        assert path.read_bytes() == text.encode(), path.name


def test_sources_record_the_inputs_checksums() -> None:
    assert _recorded_sha256(intensity_build.SOURCES) == [intensity_build.sha256(intensity_build.OWID_CSV),
                                                          intensity_build.sha256(intensity_build.EGRID_JSON)]
    assert _recorded_sha256(cpu_build.SOURCES) == [cpu_build.sha256(path) for path, *_ in cpu_build.INPUTS]


def test_the_recorded_owid_input_is_the_shared_reference_file() -> None:
    shared = REPO.parent / "shared" / "data" / "owid-carbon-intensity-electricity.csv"
    if not shared.exists():
        pytest.skip(f"no reference copy beside the clone ({shared.relative_to(REPO.parent)})")
    assert intensity_build.sha256(shared) == intensity_build.sha256(intensity_build.OWID_CSV)


def _owid_latest() -> dict[str, tuple[int, float]]:
    latest: dict[str, tuple[int, float]] = {}
    with intensity_build.OWID_CSV.open(newline="") as handle:
        for row in csv.DictReader(handle):
            value = row["Carbon intensity of electricity - gCO2/kWh"]
            if row["Code"] and (row["Code"] not in latest or int(row["Year"]) > latest[row["Code"]][0]):
                latest[row["Code"]] = (int(row["Year"]), float(value) if value else 0.0)
    return latest


@NEEDS_PYCOUNTRY
def test_countries_take_the_source_s_latest_year_and_world_its_world_row() -> None:
    rows = {r.code: r for r in intensity_build.build().rows}
    latest = _owid_latest()
    assert (rows["WORLD"].g_per_kwh, rows["WORLD"].year) == (473, 2024)  # World 2024: 473.0065
    countries = [r for r in rows.values() if r.level == "country" and r.code != "WORLD"]
    assert 200 <= len(countries) <= 220
    by_name = {r.name: r for r in countries}
    for name, code in [("Belgium", "BEL"), ("Turkey", "TUR"), ("Mexico", "MEX"), ("Taiwan", "TWN"),
                       ("Switzerland", "CHE"), ("Singapore", "SGP"), ("Iceland", "ISL")]:
        year, value = latest[code]
        assert (by_name[name].year, by_name[name].g_per_kwh) == (year, round(value)), name
    assert all(r.g_per_kwh > 0 for r in rows.values())
    assert "CF" not in rows  # the source's latest figure for the Central African Republic is 0


@NEEDS_PYCOUNTRY
def test_us_states_are_egrid2023_converted_from_lb_per_mwh() -> None:
    data = json.loads(intensity_build.EGRID_JSON.read_text())
    states = {r.code: r for r in intensity_build.build().rows if r.code.startswith("US-")}
    assert len(states) == 51  # 50 states and DC; the file's national total is not a state
    for entry in (v for k, v in data.items() if not k.startswith("_") and v["regionCode"] != "usa"):
        row = states[f"US-{entry['regionCode']}"]
        assert row.g_per_kwh == round(entry["emissions"] * 0.45359237)
        assert (row.year, row.basis) == (2023, "direct")


def _write_owid(path: Path, rows: list[tuple[str, str, int, str]]) -> Path:
    path.write_text("Entity,Code,Year,Carbon intensity of electricity - gCO2/kWh\n"
                    + "".join(f"{e},{c},{y},{v}\n" for e, c, y, v in rows))
    return path


@NEEDS_PYCOUNTRY
def test_build_refuses_an_input_without_a_world_row(tmp_path: Path) -> None:
    owid = _write_owid(tmp_path / "owid.csv", [("France", "FRA", 2024, "21.7")])
    with pytest.raises(intensity_build.InputError, match="no World row"):
        intensity_build.build(owid, intensity_build.EGRID_JSON)


@NEEDS_PYCOUNTRY
def test_build_takes_each_country_s_own_latest_year_and_drops_zero_rows(tmp_path: Path) -> None:
    owid = _write_owid(tmp_path / "owid.csv", [
        ("World", "OWID_WRL", 2023, "480.4"), ("World", "OWID_WRL", 2024, "473.0"),
        ("France", "FRA", 2021, "58.1"), ("France", "FRA", 2024, "21.7"),
        ("Chad", "TCD", 2022, "650"), ("Nowhere", "CAF", 2022, "0"), ("Europe", "", 2024, "300"),
    ])
    result = intensity_build.build(owid, intensity_build.EGRID_JSON)
    countries = {r.code: (r.g_per_kwh, r.year) for r in result.rows if r.level == "country"}
    assert countries == {"WORLD": (473, 2024), "FR": (22, 2024), "TD": (650, 2022)}
    assert any("CAF" in note and "left out" in note for note in result.notes)
    assert "CAF" in result.sources  # the table's SOURCES.md names what was left out


water_build = _script("build_water_data")


@NEEDS_PYCOUNTRY
def test_shipped_water_table_is_rebuilt_byte_for_byte() -> None:
    table, sources, _, _ = water_build.build()
    assert water_build.TABLE.read_bytes() == table.encode()
    assert water_build.SOURCES.read_bytes() == sources.encode()
    recorded = re.findall(r"sha256: `([0-9a-f]{64})`", water_build.SOURCES.read_text())
    assert recorded == [water_build.sha256(water_build.MIX_JSON), water_build.sha256(water_build.FACTORS_CSV)]


@NEEDS_PYCOUNTRY
def test_water_rows_follow_the_mix_and_state_their_range() -> None:
    _, _, rows, _ = water_build.build()
    by_code = {r.code: r for r in rows}
    mix = json.loads(water_build.MIX_JSON.read_text())["FRA"]
    per_source = water_build.factors(water_build.FACTORS_CSV)
    total = sum(mix[s] for s in water_build.SOURCES_TO_FACTORS)
    by_hand = sum(mix[s] * per_source[s][0] for s in water_build.SOURCES_TO_FACTORS) / total
    assert by_code["FR"].l_per_kwh == pytest.approx(by_hand, abs=0.005)
    for row in rows:
        assert 0 <= row.low <= row.l_per_kwh <= row.high, row
    assert by_code["US-TX"].l_per_kwh == by_code["US"].l_per_kwh and "no state generation mix" in by_code["US-TX"].basis
    assert len({by_code[c].l_per_kwh for c in ("FR", "IN", "NO", "US-TX")}) == 4
