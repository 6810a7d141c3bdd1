#!/usr/bin/env python3
"""Build accounting/data/water.csv and WATER_SOURCES.md: grid water-consumption intensity by region (L/kWh).

Maintainers only (needs ``pycountry``, in the ``dev`` extra). Inputs, kept in ``scripts/data_inputs/``:

* ``codecarbon-3.3.2/global_energy_mix.json``: electricity generation by source (TWh) per country and year,
  from the ``codecarbon==3.3.2`` wheel (MIT); ``pip download --no-deps codecarbon==3.3.2``,
  ``codecarbon/data/private_infra/global_energy_mix.json``.
* ``macknick-2012-water-consumption.csv``: operational water-consumption factors (gal/MWh) of Macknick et al.
  2012, as transcribed in Lucas-Doctorate-Project/env_research_scripts ``intensity-factors/intensities.json``.

Rule: a country's intensity is its generation mix × each source's factor; the range uses the lowest and
highest factor of that source's cooling technologies (plants with carbon capture left out). ``WORLD`` is
the mix of all countries in the file added up. US states: no state mix is held, so each carries the US
figure, said in its basis. ``--check`` writes nothing and exits 1 if the shipped files differ.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
INPUTS = REPO / "scripts" / "data_inputs"
MIX_JSON = INPUTS / "codecarbon-3.3.2" / "global_energy_mix.json"
FACTORS_CSV = INPUTS / "macknick-2012-water-consumption.csv"
EGRID_JSON = INPUTS / "codecarbon-3.3.2" / "usa_emissions.json"  #: only for the list of US states
DATA_DIR = REPO / "src" / "carbonstep" / "accounting" / "data"
TABLE = DATA_DIR / "water.csv"
SOURCES = DATA_DIR / "WATER_SOURCES.md"

L_PER_GAL = 3.785411784  #: the US liquid gallon, exactly; gal/MWh × 3.785411784 / 1000 = L/kWh
FIELDS = ["code", "name", "level", "l_per_kwh", "low", "high", "year", "basis"]
#: each source in the mix → (the file's default key, the prefix of its cooling technologies' keys)
SOURCES_TO_FACTORS = {
    "coal_TWh": ("coal-default", "coal-"),
    "gas_TWh": ("gas-default", "gas-"),
    "oil_TWh": ("gas-default", "gas-"),  # no oil factor in the source: oil plants taken as gas plants
    "nuclear_TWh": ("nuclear-default", "nuclear-"),
    "hydroelectricity_TWh": ("hydro-default", "hydro"),
    "wind_TWh": ("wind-default", "wind"),
    "solar_TWh": ("solar-pv-default", "solar-pv"),  # the high end adds concentrating solar (csp-*)
    "biofuel_TWh": ("biopower-default", "biopower-"),
    "other_renewable_exc_biofuel_TWh": ("geothermal-default", "geothermal-"),
}
BASIS = ("operational consumption at the plant, generation mix × Macknick et al. 2012 factors "
         "(Environ. Res. Lett. 7 045802)")


@dataclass(frozen=True)
class WaterRow:
    """One row of water.csv."""

    code: str
    name: str
    level: str
    l_per_kwh: float
    low: float
    high: float
    year: int
    basis: str

    def cells(self) -> list[str]:
        return [self.code, self.name, self.level, f"{self.l_per_kwh:.2f}", f"{self.low:.2f}", f"{self.high:.2f}",
                str(self.year), self.basis]


def sha256(path: Path) -> str:
    """Hex sha256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def factors(factors_csv: Path) -> dict[str, tuple[float, float, float]]:
    """Per mix source: (central, low, high) in L/kWh."""
    with factors_csv.open(newline="", encoding="utf-8") as handle:
        gal = {row["key"]: float(row["gal_per_mwh"]) for row in csv.DictReader(handle)}
    out = {}
    for source, (default, prefix) in SOURCES_TO_FACTORS.items():
        options = [v for k, v in gal.items() if k.startswith(prefix) and "-ccs-" not in k and k != default]
        if source == "solar_TWh":
            options += [v for k, v in gal.items() if k.startswith("csp-")]
        options = options or [gal[default]]
        out[source] = tuple(v * L_PER_GAL / 1000 for v in (gal[default], min(options), max(options)))
    return out  # type: ignore[return-value]


def _mix_row(code: str, name: str, level: str, mix: dict[str, float], year: int,
             per_source: dict[str, tuple[float, float, float]], basis: str) -> WaterRow | None:
    total = sum(mix.get(s) or 0.0 for s in SOURCES_TO_FACTORS)
    if total <= 0:
        return None
    central, low, high = (sum((mix.get(s) or 0.0) * per_source[s][k] for s in SOURCES_TO_FACTORS) / total
                          for k in range(3))
    return WaterRow(code, name, level, round(central, 2), round(low, 2), round(high, 2), year, basis)


def build(mix_json: Path = MIX_JSON, factors_csv: Path = FACTORS_CSV,
          egrid_json: Path = EGRID_JSON) -> tuple[str, str, list[WaterRow], list[str]]:
    """The table text, the sources text, the rows and notes on what was left out."""
    import pycountry

    per_source = factors(factors_csv)
    data = json.loads(mix_json.read_text(encoding="utf-8"))
    rows: list[WaterRow] = []
    notes: list[str] = []
    world = {s: 0.0 for s in SOURCES_TO_FACTORS}
    years = set()
    for iso3, entry in sorted(data.items()):
        country = pycountry.countries.get(alpha_3=iso3)
        if country is None:
            notes.append(f"{entry.get('country_name', iso3)} ({iso3}): no ISO 3166 code; left out")
            continue
        row = _mix_row(country.alpha_2, entry["country_name"], "country", entry, int(entry["year"]), per_source,
                       f"{BASIS}; mix of {entry['year']}")
        if row is None:
            notes.append(f"{entry['country_name']} ({iso3}): no generation in the file; left out")
            continue
        rows.append(row)
        years.add(int(entry["year"]))
        for s in world:
            world[s] += entry.get(s) or 0.0
    world_row = _mix_row("WORLD", "World", "country", world, max(years), per_source,
                         f"{BASIS}; the mixes of the {len(rows)} countries added up ({min(years)}-{max(years)})")
    assert world_row is not None
    us = next(r for r in rows if r.code == "US")
    states = json.loads(egrid_json.read_text(encoding="utf-8"))
    for state, entry in states.items():
        if state.startswith("_") or not (len(entry["regionCode"]) == 2 and entry["regionCode"].isupper()):
            continue
        rows.append(WaterRow(f"US-{entry['regionCode']}", f"{state.title()} (US state)", "state", us.l_per_kwh,
                             us.low, us.high, us.year, f"the US national figure: no state generation mix is held "
                             f"(US {us.year} mix × Macknick et al. 2012)"))
    rows = [world_row] + sorted(rows, key=lambda r: r.code)
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(FIELDS)
    writer.writerows(r.cells() for r in rows)
    return table.getvalue(), sources_text(rows, notes), rows, notes


def sources_text(rows: list[WaterRow], notes: list[str]) -> str:
    """WATER_SOURCES.md."""
    per_source = factors(FACTORS_CSV)
    lines = [
        "# Water data sources", "",
        "Generated by `scripts/build_water_data.py` from the inputs below; do not edit by hand. A test rebuilds",
        "`water.csv` from them and compares it byte for byte.", "",
        f"## `water.csv`: grid water-consumption intensity, {sum(r.level == 'country' for r in rows) - 1} "
        f"countries, `WORLD` and {sum(r.level == 'state' for r in rows)} US states and DC", "",
        "- input: `codecarbon-3.3.2/global_energy_mix.json`, electricity generation by source (TWh) per country",
        "  (`pip download --no-deps codecarbon==3.3.2`, `codecarbon/data/private_infra/global_energy_mix.json`;",
        "  its fields are those of Our World in Data's energy dataset, owid/energy-data, CC BY 4.0, whose",
        "  `owid-energy-data.csv` could not be read here; the package does not state its source)",
        f"  - sha256: `{sha256(MIX_JSON)}`",
        "  - licence: MIT (Copyright (c) 2019 Mila, BCG Gamma, CometML, Haverford College; (c) 2023 Code Carbon NGO)",
        "- input: `macknick-2012-water-consumption.csv`, operational water-consumption factors in gal/MWh from",
        "  Macknick, Newmark, Heath and Hallett, \"Operational water consumption and withdrawal factors for",
        "  electricity generating technologies: a review of existing literature\", Environ. Res. Lett. 7 (2012)",
        "  045802, as transcribed (the `water` block, verbatim) in GitHub",
        "  Lucas-Doctorate-Project/env_research_scripts, `intensity-factors/intensities.json` at commit",
        "  19c2e8b0ddef54e4cfbd70944edc44eeb58791fb (that repository states no licence; the figures are the",
        "  paper's; its `<fuel>-default` entries are that file's choice for an unknown technology)",
        f"  - sha256: `{sha256(FACTORS_CSV)}`",
        "- rule: L/kWh = Σ share of each source × its factor (gal/MWh × 3.785411784 / 1000). Factors per source",
        "  (central, low-high, L/kWh; central is the file's `<fuel>-default`, the range the lowest and highest",
        "  of that fuel's cooling technologies, carbon capture left out):",
    ]
    for source, (default, prefix) in SOURCES_TO_FACTORS.items():
        central, low, high = per_source[source]
        lines.append(f"  - {source.removesuffix('_TWh')}: {central:.2f} ({low:.2f}-{high:.2f}) from `{default}` "
                     f"and `{prefix}*`")
    lines += [
        "- assumptions: oil-fired plants are taken as gas plants (the source has no oil factor); solar's high end",
        "  is concentrating solar (`csp-*`); \"other renewables\" (geothermal, tidal, waste) take geothermal's",
        "  factors; hydro counts reservoir evaporation (4,491 gal/MWh, no range in the file), which is why",
        "  hydro-rich grids (Norway) read high: read the basis before comparing them",
        "- `WORLD`: the mixes of every country in the file added up (each at its own latest year)",
        "- US states: no state generation mix is held (the eGRID file carries emission rates only), so each state",
        "  carries the US figure, with that basis on its row",
        "- basis: operational consumption (water evaporated at the plant), not withdrawal and not the fuel's",
        "  supply chain. The previous single figure, 3.14 L/kWh (Reig et al., WRI 2020, US average), is a",
        "  different method and is no longer applied to every region",
    ]
    if notes:
        lines += ["- left out:"] + [f"  - {n}" for n in notes]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write (or ``--check``) water.csv and WATER_SOURCES.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the shipped files differ; write nothing")
    args = parser.parse_args(argv)
    table, sources, rows, _ = build()
    if args.check:
        stale = [p.name for p, text in ((TABLE, table), (SOURCES, sources))
                 if not p.exists() or p.read_text(encoding="utf-8") != text]
        if stale:
            print(f"out of date: {', '.join(stale)}; run scripts/build_water_data.py", file=sys.stderr)
            return 1
        return 0
    TABLE.write_text(table, encoding="utf-8")
    SOURCES.write_text(sources, encoding="utf-8")
    print(f"wrote {len(rows)} rows to {TABLE.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
