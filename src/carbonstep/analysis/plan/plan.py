"""Where and when to run a job: candidate sites ranked by CO2e and water, and the cleanest start time
in an intensity forecast (``carbonstep plan``).

A job's IT energy does not depend on where it runs; the site's PUE, WUE and grid do:
CO2e = kWh × PUE × g/kWh, water = kWh × (WUE + PUE × grid L/kWh), as everywhere in carbonstep.
"""

from __future__ import annotations

import bisect
import heapq
import math
import re
from array import array
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path
from typing import Callable, Iterator, Sequence

from carbonstep.accounting import footprint, regions
from carbonstep.accounting.footprint import DEFAULT_WATER_L_PER_KWH
from carbonstep.accounting.timeseries import IntensitySeries, read_csv_rows
from carbonstep.errors import ConfigError, DataFileError
from carbonstep.report.formatting import format_energy, format_mass, format_volume, significant
from carbonstep.validate import INTENSITY_G_PER_KWH, PUE, WUE_L_PER_KWH, PlausibleRange, check_text, parse_number, shown

MAX_DURATION_S = 366 * 86400.0  #: a plan is for a job, not a decade
SITE_COLUMNS = ("site", "pue", "wue", "region", "intensity", "water_intensity")


@dataclass(frozen=True)
class Site:
    """A candidate site: its name, PUE, WUE (L/kWh) and grid (g CO2e/kWh, L/kWh)."""

    name: str
    pue: float
    wue: float
    g_per_kwh: float
    intensity_source: str
    water_intensity: float = DEFAULT_WATER_L_PER_KWH
    warnings: tuple[str, ...] = ()  #: values outside published ranges (check the unit)


@dataclass(frozen=True)
class SiteCost:
    """A site's cost for the job: CO2e and water, from its PUE, WUE and grid intensity."""
    site: Site
    co2_kg: float
    water_l: float
    co2_rank: int
    water_rank: int


def _number(path: Path, line: int, column: str, text: str, minimum: float, meaning: str,
            plausible: PlausibleRange | None = None) -> tuple[float, list[str]]:
    try:
        value, warnings = parse_number(column, text, low=minimum, plausible=plausible, meaning=meaning)
    except ConfigError as exc:
        raise DataFileError(str(path), line, str(exc)) from None
    return value, [f"{path}, line {line}: {w}" for w in warnings]


def read_sites(path: str | Path, encoding: str | None = None) -> list[Site]:
    """Read a sites CSV (columns ``site,pue,wue,region`` or ``site,pue,wue,intensity``; optional
    ``water_intensity``; ``encoding`` as for intensity files). A bad file raises
    :class:`DataFileError` naming the line; values outside published ranges are kept, with a
    warning in the site's ``warnings``."""
    path = Path(path)
    rows = read_csv_rows(path, encoding)
    header = [h.strip().lower() for h in rows[0]]
    unknown = [h for h in header if h not in SITE_COLUMNS]
    if "site" not in header or "pue" not in header or not ({"region", "intensity"} & set(header)) or unknown \
            or len(set(header)) != len(header):
        raise DataFileError(str(path), 1, f"header {shown(rows[0])} must name site, pue, region or intensity, and "
                                          f"optionally wue and water_intensity, each once (unknown: "
                                          f"{shown(unknown) if unknown else 'none'})")
    sites = [site for line, row in enumerate(rows[1:], start=2)
             if (site := _site(path, line, header, row)) is not None]
    if not sites:
        raise DataFileError(str(path), None, "no sites")
    names = [s.name for s in sites]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise DataFileError(str(path), None, f"site named twice: {', '.join(twice)}")
    return sites


def _site(path: Path, line: int, header: list[str], row: list[str]) -> Site | None:
    """One row of a sites file as a Site (None for a blank row)."""
    if not any(cell.strip() for cell in row):
        return None
    if len(row) != len(header):
        raise DataFileError(str(path), line, f"{len(row)} cells for {len(header)} columns")
    cell = {h: c.strip() for h, c in zip(header, row)}
    if not cell["site"]:
        raise DataFileError(str(path), line, "empty site name")
    name = check_text_cell(path, line, "site", cell["site"])
    pue, warnings = _number(path, line, "pue", cell["pue"], 1.0, "power usage effectiveness, ≥ 1", PUE)
    wue, more = _number(path, line, "wue", cell.get("wue") or "0", 0.0, "site water L/kWh, ≥ 0", WUE_L_PER_KWH)
    warnings += more
    water, _ = _number(path, line, "water_intensity", cell.get("water_intensity") or str(DEFAULT_WATER_L_PER_KWH),
                       0.0, "grid water L/kWh, ≥ 0")
    if cell.get("intensity") and cell.get("region"):
        raise DataFileError(str(path), line, f"gives both a region ({shown(cell['region'])}) and an intensity "
                                             f"({shown(cell['intensity'])}): keep one of the two")
    if cell.get("intensity"):
        g, more = _number(path, line, "intensity", cell["intensity"], 0.0, "g CO2e/kWh, ≥ 0", INTENSITY_G_PER_KWH)
        warnings += more
        source = "given"
    elif cell.get("region"):
        try:
            region = regions.lookup(cell["region"])
        except ConfigError as exc:
            raise DataFileError(str(path), line, str(exc)) from None
        g, source = region.g_per_kwh, f"{region.code} {region.year} ({region.source})"
    else:
        raise DataFileError(str(path), line, "needs a region or an intensity")
    return Site(name, pue, wue, g, source, water, tuple(warnings))


def check_text_cell(path: Path, line: int, column: str, text: str) -> str:
    """A text cell as one short line, or DataFileError naming the line."""
    try:
        return check_text(column, text, max_chars=100)
    except ConfigError as exc:
        raise DataFileError(str(path), line, str(exc)) from None


def rank_sites(sites: Sequence[Site], kwh: float) -> list[SiteCost]:
    """Each site's CO2e and water for a job of ``kwh`` (IT energy), lowest CO2e first (water breaks ties)."""
    kwh = footprint.check_factor("kwh", kwh, 0.0, "the job's IT energy")
    costs = [(s, footprint.co2_kg(kwh, s.pue, s.g_per_kwh), footprint.water_l(kwh, s.pue, s.wue, s.water_intensity))
             for s in sites]
    if not all(math.isfinite(co2) and math.isfinite(water) for _, co2, water in costs):
        raise ConfigError(f"a job of {kwh:g} kWh overflows the CO2e or water of a site: give the job's IT energy in "
                          "kWh (e.g. --kwh 40)")
    by_water = sorted(costs, key=lambda c: (c[2], c[1]))
    water_rank = {c[0].name: i + 1 for i, c in enumerate(by_water)}
    by_co2 = sorted(costs, key=lambda c: (c[1], c[2]))
    return [SiteCost(s, co2, water, i + 1, water_rank[s.name]) for i, (s, co2, water) in enumerate(by_co2)]


# -- when: the start time in a forecast ---------------------------------------------------
def parse_duration(text: str) -> float:
    """Seconds in ``6h``, ``90m``, ``1h30m``, ``2d``, ``45s``."""
    units = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
    if not isinstance(text, str) or not re.fullmatch(r"(?:\s*\d+(?:\.\d+)?\s*[dhms])+\s*", text.lower()):
        raise ConfigError(f"duration {shown(text)} is not like 6h, 90m, 1h30m, 2d or 45s")
    seconds = sum(float(n) * units[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)\s*([dhms])", text.lower()))
    if seconds <= 0:
        raise ConfigError(f"duration {shown(text)} must be longer than zero")
    if seconds > MAX_DURATION_S:
        raise ConfigError(f"duration {shown(text)} is longer than a year: give the job's duration, e.g. 6h")
    return seconds


def flat_profile() -> list[tuple[float, float]]:
    """Constant power: (fraction of the time, fraction of the energy)."""
    return [(0.0, 0.0), (1.0, 1.0)]


def profile_of(timeline: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """A report's timeline ((s, cumulative kWh)) as (fraction of time, fraction of energy)."""
    points = [(float(t), float(e)) for t, e in timeline]
    if len(points) < 2 or points[-1][0] <= points[0][0] or points[-1][1] <= points[0][1]:
        return flat_profile()
    t0, e0 = points[0]
    span, energy = points[-1][0] - t0, points[-1][1] - e0
    return [((t - t0) / span, (e - e0) / energy) for t, e in points]


class SeriesIntegral:
    """The running integral ∫ g dt (g/kWh × s) of a step-wise intensity series, from its first timestamp:
    built once in O(n), read in O(log n). Before the first value and after the last, the end values hold."""

    def __init__(self, series: IntensitySeries) -> None:
        self.series = series
        self.times = series.times
        self.values = series.values
        widths = (b - a for a, b in zip(self.times, self.times[1:]))
        self.prefix = array("d", accumulate((v * w for v, w in zip(self.values, widths)), initial=0.0))

    def at(self, t: float) -> float:
        i = bisect.bisect_right(self.times, t) - 1
        if i < 0:
            return self.values[0] * (t - self.times[0])
        return self.prefix[i] + self.values[i] * (t - self.times[i])


def job_co2_kg(series: IntensitySeries, start_s: float, duration_s: float, kwh: float, pue: float,
               profile: Sequence[tuple[float, float]], integral: SeriesIntegral | None = None) -> float:
    """CO2e of a job started at ``start_s``: each segment of its energy profile (spread evenly over its time)
    charged at the mean intensity over that time (exact for a step-wise series). ``integral`` (of ``series``)
    saves building it again when many starts are costed."""
    integral = integral or SeriesIntegral(series)
    g_kwh = 0.0
    for (x0, e0), (x1, e1) in zip(profile, profile[1:]):
        share = e1 - e0
        if share == 0:
            continue
        a, b = start_s + x0 * duration_s, start_s + x1 * duration_s
        mean_g = (integral.at(b) - integral.at(a)) / (b - a) if b > a else series.at(a)
        g_kwh += share * kwh * mean_g
    return g_kwh * pue / 1000.0


@dataclass(frozen=True)
class StartChoice:
    start_s: float
    co2_kg: float


@dataclass(frozen=True)
class StartPlan:
    """The best start in a forecast window, against starting now."""

    now: StartChoice
    best: StartChoice
    candidates: tuple[StartChoice, ...]  #: the best starts considered (at most ``KEEP_CANDIDATES``), best first
    window_end_s: float
    considered: int = 0  #: how many starts were costed

    @property
    def saving_kg(self) -> float:
        """CO2e saved by starting at the best time instead of now."""
        return self.now.co2_kg - self.best.co2_kg

    @property
    def saving_fraction(self) -> float:
        """The saving as a fraction of starting now (0 when now is already best)."""
        return self.saving_kg / self.now.co2_kg if self.now.co2_kg > 0 else 0.0


KEEP_CANDIDATES = 100
PROGRESS_STARTS = 500_000  #: ``progress`` is called every this many starts costed


def best_start(series: IntensitySeries, duration_s: float, kwh: float, now_s: float, pue: float = 1.0,
               profile: Sequence[tuple[float, float]] | None = None,
               progress: Callable[[int, int], None] | None = None) -> StartPlan:
    """The start in [now, end of forecast − duration] with the least CO2e. Candidates are now, every
    change of intensity, and every change minus the duration: the optimum of a flat profile is
    always among them (the cost is piecewise linear in the start with breaks only there). Each start costs
    O(profile points × log n) on the series' running integral, so the plan is O(n log n) in the forecast;
    ``progress(done, total)`` is called every ``PROGRESS_STARTS`` starts."""
    profile = list(profile or flat_profile())
    step = series.times[-1] - series.times[-2] if len(series.times) > 1 else 3600.0
    window_end = series.times[-1] + step  # the last value holds for one more interval
    if not series.times[0] <= now_s < window_end:
        raise ConfigError(f"now ({_iso(now_s)}) is outside the forecast ({_iso(series.times[0])} to "
                          f"{_iso(window_end)}): pass --now, or a forecast that covers it")
    latest = window_end - duration_s
    if latest < now_s:
        raise ConfigError(f"the job ({duration_s / 3600:g} h) does not fit in the forecast: it covers only "
                          f"{(window_end - now_s) / 3600:g} h from now")
    starts = {now_s, latest, *(t for t in series.times if now_s <= t <= latest),
              *(t - duration_s for t in series.times if now_s <= t - duration_s <= latest)}
    integral = SeriesIntegral(series)

    def costed() -> Iterator[StartChoice]:
        for done, start in enumerate(starts, start=1):
            yield StartChoice(start, job_co2_kg(series, start, duration_s, kwh, pue, profile, integral))
            if progress is not None and done % PROGRESS_STARTS == 0:
                progress(done, len(starts))

    def order(c: StartChoice) -> tuple[float, float]:
        return (round(c.co2_kg, 15), c.start_s)

    choices = heapq.nsmallest(KEEP_CANDIDATES, costed(), key=order)
    now = StartChoice(now_s, job_co2_kg(series, now_s, duration_s, kwh, pue, profile, integral))
    if not math.isfinite(now.co2_kg):
        raise ConfigError(f"a job of {kwh:g} kWh overflows its CO2e: give the job's IT energy in kWh (e.g. --kwh 40)")
    best = choices[0] if choices[0].co2_kg < now.co2_kg else now
    return StartPlan(now, best, tuple(choices), window_end, len(starts))


def _iso(unix_s: float) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(unix_s, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def format_sites(costs: Sequence[SiteCost], kwh: float) -> str:
    """The sites table: rank, PUE, WUE, grid intensity, the job's CO2e and water, water rank and the grid's source."""
    lines = [f"Sites for a job of {format_energy(kwh)} (IT), lowest CO2e first:",
             f"  {'#':>2}  {'site':<18} {'PUE':>5} {'WUE':>5} {'g/kWh':>7} {'CO2e':>10} {'water':>10} "
             f"{'water #':>7}  grid"]
    for c in costs:
        s = c.site
        lines.append(f"  {c.co2_rank:>2}  {s.name:<18} {s.pue:>5.2f} {s.wue:>5.2f} {s.g_per_kwh:>7.0f} "
                     f"{format_mass(c.co2_kg):>10} {format_volume(c.water_l):>10} {c.water_rank:>7}  "
                     f"{s.intensity_source}")
    best, worst = costs[0], costs[-1]
    driest = min(costs, key=lambda c: c.water_rank)
    if worst.co2_kg > 0 and len(costs) > 1:
        lines.append(f"Best for CO2e: {best.site.name}, {1 - best.co2_kg / worst.co2_kg:.0%} less than "
                     f"{worst.site.name}. Best for water: {driest.site.name}.")
    return "\n".join(lines)


def format_start(plan: StartPlan, kwh: float, duration_s: float, shape: str, show: int = 5) -> str:
    """The best start, its CO2e and the saving against starting now, then the next best starts."""
    lines = [f"A job of {format_energy(kwh)} over {significant(duration_s / 3600)} h ({shape}), forecast until "
             f"{_iso(plan.window_end_s)}:",
             f"  start now      {_iso(plan.now.start_s)}  {format_mass(plan.now.co2_kg)} CO2e",
             f"  best start     {_iso(plan.best.start_s)}  {format_mass(plan.best.co2_kg)} CO2e"
             f"   saves {format_mass(plan.saving_kg)} ({plan.saving_fraction:.0%})"]
    if plan.best is plan.now:
        lines.append("  Starting now is already the cleanest choice in this forecast.")
    lines.append("  next best: " + ", ".join(f"{_iso(c.start_s)} {format_mass(c.co2_kg)}"
                                             for c in plan.candidates[1:show]))
    return "\n".join(lines)


__all__ = ["Site", "SiteCost", "StartPlan", "best_start", "job_co2_kg", "parse_duration", "rank_sites", "read_sites"]
