"""The grid's water-consumption intensity by region (L/kWh), with its range and basis.

Built by ``scripts/build_water_data.py`` into ``data/water.csv`` (see ``data/WATER_SOURCES.md``): each
country's generation mix × per-source operational consumption factors (Macknick et al. 2012); US states carry
the US figure (no state mix is held); ``WORLD`` is all countries' mixes added up.
"""

from __future__ import annotations

from functools import lru_cache

from carbonstep._record import NamedTuple
from carbonstep.accounting import DATA_DIR
from carbonstep.validate import table_record

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: a run imports no typing
if TYPE_CHECKING:
    from typing import Any, Mapping, Protocol

WORLD = "WORLD"


class WaterIntensity(NamedTuple):
    """Litres of water consumed per kWh generated, its low-high range and where it comes from."""

    l_per_kwh: float
    low: float | None
    high: float | None
    basis: str

    def label(self) -> str:
        """``2.75 L/kWh (1.44-3.92; basis)`` for reports and listings."""
        span = f"{self.low:g}-{self.high:g}; " if self.low is not None and self.high is not None else ""
        return f"{self.l_per_kwh:g} L/kWh ({span}{self.basis})"


if TYPE_CHECKING:
    class Accounting(Protocol):
        """What the water records read of :class:`carbonstep.accounting.factors.Accounting`."""

        @property
        def water_intensity_l_per_kwh(self) -> float: ...

        @property
        def water(self) -> WaterIntensity | None: ...


@lru_cache(maxsize=1)
def water_table() -> dict[str, WaterIntensity]:
    """Every shipped region's water intensity, by upper-case code."""
    import csv

    rows = csv.DictReader((DATA_DIR / "water.csv").read_text(encoding="utf-8").splitlines())
    return {row["code"].upper(): _intensity(row) for row in rows}


def _intensity(row: Mapping[str, str]) -> WaterIntensity:
    region = f"{row['name']} ({row['code']})" if row["level"] == "country" else row["name"]
    return WaterIntensity(float(row["l_per_kwh"]), float(row["low"]), float(row["high"]), f"{region}: {row['basis']}")


def _row(code: str) -> WaterIntensity | None:
    """One region's row of the table (codes are upper-case there), without parsing the others."""
    found = table_record(DATA_DIR / "water.csv", code.upper())
    return _intensity(found) if found is not None else None


def water_of(code: str | None) -> WaterIntensity:
    """The water intensity of the region ``code``; the world figure, said so, for None or a region not in the
    table. Reads the table's row for ``code`` (and the world's), not the whole table."""
    found = _row(code) if code else None
    if found is not None:
        return found
    world = _row(WORLD)
    assert world is not None  # the build script always writes the world's row
    why = f"no water figure for {code}" if code else "no region"
    return WaterIntensity(world.l_per_kwh, world.low, world.high, f"{why}; world average: {world.basis}")


def given(l_per_kwh: float) -> WaterIntensity:
    """A water intensity passed as an argument (no range known)."""
    return WaterIntensity(l_per_kwh, None, None, "given as water_intensity_l_per_kwh")


def _water(accounting: Accounting) -> WaterIntensity:
    return accounting.water or given(accounting.water_intensity_l_per_kwh)


def water_record(accounting: Accounting) -> dict[str, object]:
    """The report's record of the grid water intensity used: figure, range and basis."""
    water = _water(accounting)
    return {"l_per_kwh": accounting.water_intensity_l_per_kwh, "low": water.low, "high": water.high,
            "basis": water.basis}


def mlflow_water_params(accounting: Accounting) -> dict[str, str]:
    """The MLflow run params that state the water intensity used and its basis."""
    water = _water(accounting)
    return {"carbonstep.water_l_per_kwh": f"{accounting.water_intensity_l_per_kwh:g}",
            "carbonstep.water_basis": water.label()}


def water_basis(extra: Mapping[str, Any]) -> str:
    """``"; range 2.43-3.89, basis"`` from a report's ``extra["water"]`` (empty for reports without it)."""
    from collections.abc import Mapping

    water = extra.get("water")
    if not isinstance(water, Mapping) or not water.get("basis"):
        return ""
    low, high = water.get("low"), water.get("high")
    span = f" (range {low:g}-{high:g})" if isinstance(low, (int, float)) and isinstance(high, (int, float)) else ""
    return f"{span}; {water['basis']}"
