"""The shipped grid carbon-intensity table, region lookup and region resolution.

Resolution order: the argument → ``CARBONSTEP_REGION`` → a hint from the machine's time
zone (tzdata ``zone.tab``) → the world average, with a warning. No network lookups.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from carbonstep.accounting import DATA_DIR
from carbonstep.errors import ConfigError

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: a run imports no typing
if TYPE_CHECKING:
    from typing import Sequence

WORLD = "WORLD"


@dataclass(frozen=True)
class Region:
    """One row of the intensity table, with its provenance."""

    code: str
    name: str
    level: str
    g_per_kwh: float
    year: int
    basis: str  #: "lifecycle" or "direct"
    source: str
    licence: str


@lru_cache(maxsize=1)
def regions() -> dict[str, Region]:
    """Every shipped region, by upper-case code."""
    import csv

    text = (DATA_DIR / "intensity.csv").read_text()
    table = {}
    for row in csv.DictReader(text.splitlines()):
        table[row["code"].upper()] = Region(
            row["code"], row["name"], row["level"], float(row["g_per_kwh"]), int(row["year"]),
            row["basis"], row["source"], row["licence"],
        )
    return table


def search(query: str | Sequence[str] = "") -> list[Region]:
    """Regions whose code or name contains ``query`` (case-insensitive), or any of several queries (each region
    once). A query that is a region's code (``FR``, ``US-TX``) names that region alone: ``FR`` is France, not
    also South Africa for the "fr" in "Africa"."""
    if not isinstance(query, str):
        return list({r.code: r for q in (query or [""]) for r in search(q)}.values())
    table = regions()
    if query.strip().upper() in table:
        return [table[query.strip().upper()]]
    q = query.lower()
    return [r for r in table.values() if q in r.code.lower() or q in r.name.lower()]


def format_listing(rows: list[Region]) -> str:
    """The ``carbonstep regions`` table: carbon value, year, basis and source, then the grid's water intensity
    (L/kWh, range) and its basis, per row; then where to check them."""
    from carbonstep.accounting.water import water_of

    lines = [f"{'code':<8} {'g/kWh':>6} {'year':>5} {'basis':<9} name — source (licence)",
             f"{'':<8} {'L/kWh':>6} {'range':>11} water basis"]
    for r in sorted(rows, key=lambda r: (r.code != WORLD, r.code)):
        lines.append(f"{r.code:<8} {r.g_per_kwh:>6.0f} {r.year:>5} {r.basis:<9} {r.name} — {r.source} "
                     f"({r.licence})")
        water = water_of(r.code)
        span = f"{water.low:g}-{water.high:g}" if water.low is not None and water.high is not None else "-"
        lines.append(f"{'':<8} {water.l_per_kwh:>6.2f} {span:>11} water: {water.basis}")
    plural = "s" if len(rows) != 1 else ""
    lines.append(f"{len(rows)} region{plural}. Inputs, checksums and rules: {DATA_DIR / 'SOURCES.md'}, "
                 f"{DATA_DIR / 'WATER_SOURCES.md'}")
    return "\n".join(lines)


def lookup(region: str) -> Region:
    """The region with this code or name; an unknown one raises with close matches."""
    table = regions()
    key = region.strip().upper()
    if key in table:
        return table[key]
    candidates = {**{r.name.upper(): r for r in table.values()}, **table}
    if key in candidates:
        return candidates[key]
    import difflib

    close = difflib.get_close_matches(key, candidates, n=5, cutoff=0.6)
    if len(key) >= 3:
        close += [c for c in candidates if key in c]
    suggestions = list(dict.fromkeys(f"{candidates[c].code} ({candidates[c].name})" for c in close))
    hint = f"; did you mean {', '.join(suggestions[:5])}?" if suggestions else ""
    raise ConfigError(
        f"unknown region {region!r}{hint} (list them with 'carbonstep regions', "
        "or pass intensity=<g/kWh> for a constant)"
    )


def timezone_name() -> str | None:
    """The machine's IANA time zone: ``TZ``, /etc/timezone, or the /etc/localtime link."""
    tz = os.environ.get("TZ", "").lstrip(":")
    if tz and "/" in tz:
        return tz
    try:
        return Path("/etc/timezone").read_text().strip() or None
    except OSError:
        pass
    try:
        target = os.readlink("/etc/localtime")
    except OSError:
        return None
    return target.split("zoneinfo/", 1)[1] if "zoneinfo/" in target else None


def country_of_timezone(tz: str, zone_tab: Path = Path("/usr/share/zoneinfo/zone.tab")) -> str | None:
    """The ISO country code tzdata's ``zone.tab`` gives for ``tz``."""
    try:
        lines = zone_tab.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) >= 3 and fields[2] == tz:
            return fields[0]
    return None


def resolve(region: str | None) -> tuple[Region, str, list[str]]:
    """The region to use, how it was chosen, and warnings."""
    if region:
        return lookup(region), "argument", []
    env = os.environ.get("CARBONSTEP_REGION")
    if env:
        return lookup(env), "CARBONSTEP_REGION", []
    tz = timezone_name()
    country = country_of_timezone(tz) if tz else None
    if country and country.upper() in regions():
        found = regions()[country.upper()]
        return found, f"time zone {tz}", [
            f"region guessed from the time zone {tz} as {found.code} ({found.name}); "
            "pass region= or set CARBONSTEP_REGION to be sure"
        ]
    world = regions()[WORLD]
    return world, "world average", [
        f"no region given and none could be inferred (time zone: {tz or 'unknown'}); using the world "
        f"average {world.g_per_kwh:g} g/kWh ({world.year}): pass region= or set CARBONSTEP_REGION"
    ]
