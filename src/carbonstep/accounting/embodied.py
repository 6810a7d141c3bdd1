"""Embodied (manufacturing) footprint figures: the shipped table, the user's fleet CSV, service life.

The shipped table (``data/embodied.csv``, built by ``scripts/build_embodied_data.py`` from cited
inputs, see ``data/EMBODIED_SOURCES.md`` and docs/EMBODIED.md) holds per-device cradle-to-gate
figures with a low and a high value (equal where the source gives one figure), and the coarse
rest-of-server coefficients. ``data/service_life.csv`` holds the useful lives the sources give; their
lowest, median and highest make the default service-life range.

Users add their own figures (their vendor's sheet) in a CSV named by ``CARBONSTEP_EMBODIED_CSV``::

    model,kg_co2e,life_years,source[,kg_co2e_low,kg_co2e_high,units,kind,gpus,kg_sb_eq,water_l]

``model`` is the device name as the report shows it (e.g. ``NVIDIA H100 80GB HBM3``), or for
``kind=server`` the machine's DMI product name or host name; ``units`` divides the row's figures
(a baseboard of 8 GPUs: ``units=8``). ``CARBONSTEP_SERVICE_LIFE_YEARS`` sets the service life for
every device without its own. The run's share of each figure is computed in
:mod:`carbonstep.accounting.embodied_run`.
"""

from __future__ import annotations

import math
import os
from functools import lru_cache
from pathlib import Path

from carbonstep._record import NamedTuple
from carbonstep.accounting import DATA_DIR
from carbonstep.errors import ConfigError
from carbonstep.validate import shown

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: a run imports no typing
if TYPE_CHECKING:
    from typing import Mapping

HOURS_PER_YEAR = 8766.0  #: 365.25 days
FLEET_ENV = "CARBONSTEP_EMBODIED_CSV"
LIFE_ENV = "CARBONSTEP_SERVICE_LIFE_YEARS"
HOW_TO_ADD = f"add a row (model,kg_co2e,life_years,source) to a CSV named by {FLEET_ENV} (docs/EMBODIED.md)"
KINDS = ("gpu", "server")


class Figure(NamedTuple):
    """One row: a device's (or a server part's) embodied footprint per unit, low and high."""

    key: str
    kind: str  #: gpu, server (a user's whole server), server_base, server_cpu_socket, server_dram_gb
    match: str  #: the device or server name it applies to ("" for the shipped server coefficients)
    kg_co2e_low: float
    kg_co2e_high: float
    source: str
    licence: str = ""
    threshold: float | None = None  #: server coefficients: sockets or GB not charged
    kg_sb_eq: tuple[float, float] | None = None  #: abiotic depletion, low and high; None: no source gives it
    water_l: tuple[float, float] | None = None  #: manufacturing water, low and high; None: no source gives it
    life_years: float | None = None  #: the row's own service life (user rows)
    gpus: int | None = None  #: GPUs in a user's server (its GPU share)
    user: bool = False


class ServiceLife(NamedTuple):
    """Service life in years: the lowest, central and highest the sources give, and where from."""

    low: float
    central: float
    high: float
    source: str


class EmbodiedSettings(NamedTuple):
    """The user's part: their fleet figures and their service life (None: the cited range)."""

    fleet: tuple[Figure, ...] = ()
    fleet_path: str | None = None
    life_years: float | None = None


def normalise(name: str) -> str:
    """A device or server name as rows are matched: case and runs of spaces ignored."""
    return " ".join(name.split()).casefold()


def _float(text: str) -> float | None:
    return float(text) if text.strip() else None


def _pair(low: str, high: str) -> tuple[float, float] | None:
    a, b = _float(low), _float(high)
    return None if a is None or b is None else (a, b)


@lru_cache(maxsize=1)
def shipped_figures() -> tuple[Figure, ...]:
    """The rows of the shipped ``embodied.csv``."""
    import csv

    with (DATA_DIR / "embodied.csv").open(newline="", encoding="utf-8") as handle:
        return tuple(Figure(
            row["key"], row["kind"], row["match"], float(row["kg_co2e_low"]), float(row["kg_co2e_high"]),
            row["source"], row["licence"], _float(row["threshold"]), _pair(row["kg_sb_eq_low"], row["kg_sb_eq_high"]),
            _pair(row["water_l_low"], row["water_l_high"]),
        ) for row in csv.DictReader(handle))


@lru_cache(maxsize=1)
def service_life() -> ServiceLife:
    """The default service-life range: lowest, median and highest useful life the sources give."""
    import csv
    import statistics

    with (DATA_DIR / "service_life.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    years = [float(r["years"]) for r in rows]
    who = ", ".join(f"{r['who']} {float(r['years']):g}" for r in rows)
    return ServiceLife(min(years), statistics.median(years), max(years),
                       f"useful lives of servers in years ({who}); data/EMBODIED_SOURCES.md")


def _positive(path: str, line: int, column: str, text: str | None, required: bool) -> float | None:
    if text is None or not text.strip():
        if required:
            raise ConfigError(f"{path} line {line}: {column} is empty; {HOW_TO_ADD}")
        return None
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{path} line {line}: {column} must be a number, got {shown(text)}") from None
    if not math.isfinite(value) or value < 0 or (column in ("life_years", "units") and value == 0):
        raise ConfigError(f"{path} line {line}: {column} must be a positive number, got {shown(text)}")
    return value


def _fleet_row(path: str, line: int, row: Mapping[str, str | None]) -> Figure:
    def number(column: str, required: bool = False) -> float | None:
        return _positive(path, line, column, row.get(column), required)

    model = (row.get("model") or "").strip()
    source = (row.get("source") or "").strip()
    if not model or not source:
        raise ConfigError(f"{path} line {line}: model and source must not be empty; {HOW_TO_ADD}")
    kind = (row.get("kind") or "gpu").strip().lower()
    if kind not in KINDS:
        raise ConfigError(f"{path} line {line}: kind must be 'gpu' or 'server', got {shown(kind)}")
    units = number("units") or 1.0
    kg = number("kg_co2e", required=True)
    low, high = number("kg_co2e_low"), number("kg_co2e_high")
    low, high = (low if low is not None else kg), (high if high is not None else kg)
    assert kg is not None and low is not None and high is not None
    if not low <= kg <= high:
        raise ConfigError(f"{path} line {line}: kg_co2e_low ≤ kg_co2e ≤ kg_co2e_high does not hold "
                          f"({low:g}, {kg:g}, {high:g})")
    sb, water, gpus = number("kg_sb_eq"), number("water_l"), number("gpus")
    return Figure(
        f"user:{path}:{line}", kind, model, low / units, high / units, source, "the user's figure",
        kg_sb_eq=(sb / units, sb / units) if sb is not None else None,
        water_l=(water / units, water / units) if water is not None else None,
        life_years=number("life_years", required=True), gpus=int(gpus) if gpus else None, user=True)


def read_fleet(path: str | os.PathLike[str]) -> tuple[Figure, ...]:
    """The user's fleet CSV as figures; anything malformed raises one clear ConfigError naming the line."""
    import csv

    where = str(path)
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = {"model", "kg_co2e", "life_years", "source"} - set(reader.fieldnames or ())
            if missing:
                raise ConfigError(f"{where}: no column {', '.join(sorted(missing))}; the header must include "
                                  "model,kg_co2e,life_years,source (docs/EMBODIED.md)")
            return tuple(_fleet_row(where, i, row) for i, row in enumerate(reader, start=2))
    except OSError as exc:
        raise ConfigError(f"{FLEET_ENV}={where}: cannot read it ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"{where}: not a readable CSV ({exc})") from None


def settings_from_environment(environ: Mapping[str, str] | None = None) -> EmbodiedSettings:
    """The user's settings from ``CARBONSTEP_EMBODIED_CSV`` and ``CARBONSTEP_SERVICE_LIFE_YEARS``;
    a bad value raises ConfigError with one line naming it."""
    env = os.environ if environ is None else environ
    path = env.get(FLEET_ENV, "").strip() or None
    life_text = env.get(LIFE_ENV, "").strip()
    life = _positive(LIFE_ENV, 0, "life_years", life_text, False) if life_text else None
    return EmbodiedSettings(read_fleet(path) if path else (), path, life)


def find_device(name: str, settings: EmbodiedSettings) -> Figure | None:
    """The figure for a device name: the user's row first, then the shipped table; None: unknown."""
    key = normalise(name)
    for row in (*settings.fleet, *shipped_figures()):
        if row.kind == "gpu" and normalise(row.match) == key:
            return row
    return None


def find_server(names: tuple[str, ...], settings: EmbodiedSettings) -> Figure | None:
    """The user's whole-server row matching one of ``names`` (DMI product name, host name), or None."""
    keys = {normalise(n) for n in names if n}
    return next((row for row in settings.fleet if row.kind == "server" and normalise(row.match) in keys), None)


def server_coefficients() -> dict[str, Figure]:
    """The shipped rest-of-server coefficients by kind (server_base, server_cpu_socket, server_dram_gb)."""
    return {row.kind: row for row in shipped_figures() if row.kind.startswith("server_")}


def read_text(path: Path) -> str | None:
    """A one-line sysfs file's text, or None when it cannot be read."""
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip() or None
    except OSError:
        return None


__all__ = ["EmbodiedSettings", "FLEET_ENV", "Figure", "HOURS_PER_YEAR", "HOW_TO_ADD", "LIFE_ENV", "ServiceLife",
           "find_device", "find_server", "normalise", "read_fleet", "server_coefficients", "service_life",
           "settings_from_environment", "shipped_figures"]
