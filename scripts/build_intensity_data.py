#!/usr/bin/env python3
"""Rebuild the country rows of accounting/data/intensity.csv from Our World in Data's download.

Maintainers only; never run in CI (it needs files downloaded by hand):

    # https://ourworldindata.org/grapher/carbon-intensity-electricity.csv  (Ember data, CC BY 4.0)
    pip install pycountry
    python scripts/build_intensity_data.py carbon-intensity-electricity.csv

Keeps the sub-national rows (eGRID, NIR, NGA) as they are; for each country takes the latest
year OWID publishes, and WORLD from the "World" entity. Prints what changed.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "src" / "carbonstep" / "accounting" / "data" / "intensity.csv"
SOURCE = "Ember Yearly Electricity Data via Our World in Data"
FIELDS = ["code", "name", "level", "g_per_kwh", "year", "basis", "source", "licence"]


def latest_by_country(owid_csv: Path) -> dict[str, tuple[str, float, int]]:
    import pycountry

    value_column = None
    latest: dict[str, tuple[str, float, int]] = {}
    with owid_csv.open(newline="") as handle:
        reader = csv.DictReader(handle)
        value_column = next(c for c in reader.fieldnames or [] if "gCO2" in c or "carbon" in c.lower())
        for row in reader:
            if not row[value_column]:
                continue
            if row["Entity"] == "World":
                code = "WORLD"
            else:
                country = pycountry.countries.get(alpha_3=row["Code"]) if row["Code"] else None
                if country is None:
                    continue  # aggregates (EU, continents) have no ISO code
                code = country.alpha_2
            year = int(row["Year"])
            if code not in latest or year > latest[code][2]:
                latest[code] = (row["Entity"], float(row[value_column]), year)
    return latest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("owid_csv", type=Path)
    args = parser.parse_args()
    rows = list(csv.DictReader(DATA.open()))
    keep = [r for r in rows if r["level"] != "country"]
    old = {r["code"]: r for r in rows if r["level"] == "country"}
    countries = []
    for code, (name, value, year) in sorted(latest_by_country(args.owid_csv).items()):
        countries.append({"code": code, "name": name, "level": "country", "g_per_kwh": f"{value:.0f}",
                          "year": str(year), "basis": "lifecycle", "source": SOURCE, "licence": "CC BY 4.0"})
        before = old.get(code)
        if before is None or (before["g_per_kwh"], before["year"]) != (f"{value:.0f}", str(year)):
            was = f"{before['g_per_kwh']} ({before['year']})" if before else "new"
            print(f"{code:6} {was:>12} -> {value:.0f} ({year})")
    with DATA.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, FIELDS)
        writer.writeheader()
        writer.writerows(countries + keep)
    print(f"wrote {len(countries)} countries and {len(keep)} sub-national rows to {DATA}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
