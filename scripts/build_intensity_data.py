#!/usr/bin/env python3
"""Build accounting/data/intensity.csv and its SOURCES.md from two recorded inputs.

Maintainers only (needs ``pycountry``, in the ``dev`` extra). Inputs, kept in
``scripts/data_inputs/`` with their licences (see the README there):

* ``owid-carbon-intensity-electricity.csv``: Our World in Data, "Carbon intensity of
  electricity generation" (Ember (2025); Energy Institute - Statistical Review of World Energy
  (2025)), CC BY 4.0. The same country rows ship in ``carbontracker==2.4.7``
  (``carbontracker/data/carbon-intensities.csv``).
* ``codecarbon-3.3.2/usa_emissions.json``: US EPA eGRID2023 state CO2e output emission rates
  in lb/MWh, from the ``codecarbon==3.3.2`` wheel (MIT); ``pip download --no-deps codecarbon==3.3.2``.

Usage: ``python scripts/build_intensity_data.py [--check]``.

Countries: every entity with an ISO 3166 alpha-3 code (and Kosovo), each at its own latest
year with a positive figure in the input, never an older one; an entity whose latest figure is
0 or missing is left out and named. ``WORLD`` is the input's "World" row at its latest year;
a missing World row is an error, not a silent omission. US states: eGRID2023, lb/MWh × 0.45359237.
``--check`` writes nothing and exits 1 if the shipped files differ from what the inputs give.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
INPUTS = REPO / "scripts" / "data_inputs"
OWID_CSV = INPUTS / "owid-carbon-intensity-electricity.csv"
EGRID_JSON = INPUTS / "codecarbon-3.3.2" / "usa_emissions.json"
DATA_DIR = REPO / "src" / "carbonstep" / "accounting" / "data"
TABLE = DATA_DIR / "intensity.csv"
SOURCES = DATA_DIR / "SOURCES.md"

FIELDS = ["code", "name", "level", "g_per_kwh", "year", "basis", "source", "licence"]
G_PER_LB = 453.59237  #: the international avoirdupois pound; lb/MWh × 0.45359237 = g/kWh
OWID_SOURCE = ("Ember (2025); Energy Institute - Statistical Review of World Energy (2025) - "
               "with major processing by Our World in Data")
OWID_LICENCE = "CC BY 4.0"
EGRID_SOURCE = "US EPA eGRID2023, state annual CO2e total output emission rate (STC2ERTA)"
EGRID_LICENCE = "Public domain (US Government work)"
OWID_SPECIAL_CODES = {"OWID_WRL": "WORLD", "OWID_KOS": "XK"}  #: XK: the user-assigned code used for Kosovo


class InputError(Exception):
    """An input file lacks what the table needs."""


@dataclass(frozen=True)
class Row:
    """One row of intensity.csv."""

    code: str
    name: str
    level: str
    g_per_kwh: int
    year: int
    basis: str
    source: str
    licence: str

    def cells(self) -> list[str]:
        return [self.code, self.name, self.level, str(self.g_per_kwh), str(self.year), self.basis, self.source,
                self.licence]


@dataclass(frozen=True)
class IntensityBuild:
    """The table text, the SOURCES.md text, and notes for the maintainer."""

    table: str
    sources: str
    rows: tuple[Row, ...]
    notes: tuple[str, ...]


def sha256(path: Path) -> str:
    """Hex sha256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _alpha2(owid_code: str) -> str | None:
    import pycountry

    if owid_code in OWID_SPECIAL_CODES:
        return OWID_SPECIAL_CODES[owid_code]
    country = pycountry.countries.get(alpha_3=owid_code)
    return country.alpha_2 if country is not None else None


def country_rows(owid_csv: Path) -> tuple[list[Row], list[str]]:
    """WORLD and one row per country at its latest positive year; notes on what was left out."""
    series: dict[str, dict[int, float | None]] = {}
    names: dict[str, str] = {}
    with owid_csv.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        value_column = next((c for c in reader.fieldnames or [] if "gCO2" in c), None)
        if value_column is None:
            raise InputError(f"{owid_csv.name}: no gCO2/kWh column in {reader.fieldnames}")
        for row in reader:
            if not row["Code"]:
                continue  # aggregates (continents, income groups, "(Ember)" regions) have no code
            text = row[value_column].strip()
            value = float(text) if text else None
            series.setdefault(row["Code"], {})[int(row["Year"])] = value
            names[row["Code"]] = row["Entity"]
    if "OWID_WRL" not in series:
        raise InputError(f"{owid_csv.name}: no World row (Code OWID_WRL); WORLD cannot be built")
    rows: list[Row] = []
    notes: list[str] = []
    for owid_code, by_year in series.items():
        code = _alpha2(owid_code)
        if code is None:
            notes.append(f"{names[owid_code]} ({owid_code}): no ISO 3166 code; left out")
            continue
        latest_year = max(by_year)
        value = by_year[latest_year]
        if value is None or not math.isfinite(value) or value <= 0:
            notes.append(f"{names[owid_code]} ({owid_code}): latest figure ({latest_year}) is {value}; left out")
            continue
        rows.append(Row(code, names[owid_code], "country", round(value), latest_year, "lifecycle", OWID_SOURCE,
                        OWID_LICENCE))
    rows.sort(key=lambda r: (r.code != "WORLD", r.code))
    return rows, notes


def us_state_rows(egrid_json: Path) -> list[Row]:
    """One row per US state and DC from eGRID2023's lb/MWh output rates (not its national total)."""
    data = json.loads(egrid_json.read_text(encoding="utf-8"))
    unit = data.get("_unit", {}).get("emissions")
    year = data.get("_source", {}).get("year")
    if unit != "lbs/MWh" or year != 2023:
        raise InputError(f"{egrid_json.name}: expected lbs/MWh for 2023, found {unit!r} for {year!r}")
    rows = []
    for state, entry in data.items():
        if state.startswith("_") or not (len(entry["regionCode"]) == 2 and entry["regionCode"].isupper()):
            continue  # metadata, and the national total (the country row covers the US)
        g_per_kwh = round(float(entry["emissions"]) * G_PER_LB / 1000)
        if g_per_kwh <= 0:
            raise InputError(f"{egrid_json.name}: {state} has {entry['emissions']} lb/MWh")
        rows.append(Row(f"US-{entry['regionCode']}", f"{state.title()} (US state)", "state", g_per_kwh, year,
                        "direct", EGRID_SOURCE, EGRID_LICENCE))
    return sorted(rows, key=lambda r: r.code)


def build(owid_csv: Path = OWID_CSV, egrid_json: Path = EGRID_JSON) -> IntensityBuild:
    """The shipped table and SOURCES.md as the inputs give them."""
    countries, notes = country_rows(owid_csv)
    states = us_state_rows(egrid_json)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(FIELDS)
    for row in countries + states:
        writer.writerow(row.cells())
    text = sources_text(owid_csv, egrid_json, len(countries) - 1, len(states), notes)
    return IntensityBuild(out.getvalue(), text, tuple(countries + states), tuple(notes))


def sources_text(owid_csv: Path, egrid_json: Path, countries: int, states: int, notes: list[str]) -> str:
    """SOURCES.md for intensity.csv: each input by name, version and checksum."""
    left_out = "\n".join(f"  - {note}" for note in notes) or "  - none"
    return f"""# Data sources

Generated by `scripts/build_intensity_data.py` from the inputs below; do not edit by hand.
The inputs are kept in `scripts/data_inputs/`, and a test rebuilds this table from them and
compares it byte for byte.

## `intensity.csv`, level `country`: {countries} countries and `WORLD`

- input: `{owid_csv.name}`, Our World in Data, "Carbon intensity of electricity generation"
  (gCO2e/kWh), the same rows as `carbontracker==2.4.7`'s `carbontracker/data/carbon-intensities.csv`
  (`pip download --no-deps carbontracker==2.4.7`)
- sha256 of the input: `{sha256(owid_csv)}`
- rule: each country at its own latest year with a positive figure; `WORLD` from the "World" row
- basis: lifecycle. Ember's emissions "aim to include full lifecycle emissions including upstream
  methane, supply chain and manufacturing emissions" (Global Electricity Review 2024, Supporting
  Material, Methodology, Emissions); Our World in Data titles the series "Lifecycle carbon
  intensity of electricity generation"
- licence: CC BY 4.0. Attribution: *{OWID_SOURCE}*; processed by carbonstep
- left out:
{left_out}

## `intensity.csv`, level `state` (`US-..`): {states - 1} US states and DC

- input: `codecarbon==3.3.2: codecarbon/data/private_infra/2023/usa_emissions.json`
  (`pip download --no-deps codecarbon==3.3.2`), which records its own source as US EPA eGRID2023,
  field STC2ERTA (state annual CO2 equivalent total output emission rate), in lb/MWh
- sha256 of the input: `{sha256(egrid_json)}`
- rule: lb/MWh × 0.45359237 = g/kWh, rounded to the gram; the file's national total is not
  shipped (the `US` country row covers the country)
- basis: direct (emissions at the plant; no upstream share), so lower than a lifecycle figure
  for the same grid
- licence: eGRID is a US Government work (public domain); the JSON file is MIT (Copyright (c)
  2019 Mila, BCG Gamma, CometML, Haverford College; (c) 2023 Code Carbon NGO)

eGRID subregions, Canadian provinces and Australian states are not shipped: no file that
carbonstep holds gives them. Pass `intensity=<g/kWh>` or a time-series CSV for such a grid.

**Basis.** Lifecycle intensities include upstream emissions of fuels and plants; direct
intensities count combustion only and are lower for the same grid. Every row and every report
carries its basis.

## `water.csv`: grid water-consumption intensity (L/kWh) by region

Built by `scripts/build_water_data.py` from `codecarbon-3.3.2/global_energy_mix.json` (codecarbon==3.3.2,
MIT) and `macknick-2012-water-consumption.csv` (Macknick et al. 2012, Environ. Res. Lett. 7 045802); their
sha256, licences, the rule and its assumptions are in `WATER_SOURCES.md`, written by that script.
"""


def main() -> int:
    """Write (or with --check, compare) intensity.csv and its SOURCES.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--owid", type=Path, default=OWID_CSV)
    parser.add_argument("--egrid", type=Path, default=EGRID_JSON)
    parser.add_argument("--check", action="store_true", help="compare, write nothing")
    args = parser.parse_args()
    try:
        result = build(args.owid, args.egrid)
    except (InputError, OSError, KeyError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    targets = {TABLE: result.table, SOURCES: result.sources}
    if args.check:
        stale = [str(p) for p, text in targets.items() if not p.exists() or p.read_text() != text]
        print("stale: " + ", ".join(stale) if stale else "up to date")
        return 1 if stale else 0
    for note in result.notes:
        print("left out:", note)
    for path, text in targets.items():
        path.write_text(text)
    print(f"wrote {TABLE.relative_to(REPO)} ({len(result.rows)} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
