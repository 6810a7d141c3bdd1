"""The accounting a run is charged with, as one frozen record: facility and water factors and where the
grid's carbon intensity comes from (a region's table value, a constant, or a time series).

:class:`Accounting` is what the tracker, the report builder and the carbon curve take: none of them
reads another's attributes for a factor.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from carbonstep._record import DataclassMethods
from carbonstep.accounting import footprint
from carbonstep.validate import INTENSITY_G_PER_KWH, PUE, WUE_L_PER_KWH, check_text, parse_number

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: a run imports no typing
if TYPE_CHECKING:
    from typing import Any

    from carbonstep.accounting.regions import Region
    from carbonstep.accounting.timeseries import IntensitySeries
    from carbonstep.accounting.water import WaterIntensity


@dataclass(frozen=True, repr=False, eq=False)  # repr, == and hash: DataclassMethods
class IntensitySource(DataclassMethods):
    """The grid's carbon intensity for a run: exactly one of a constant, a time series or a region's value.

    ``region`` is also kept beside a constant or a series, to name where the run was.
    """

    region: Region | None
    chosen_by: str  #: how it was chosen: "argument", "CARBONSTEP_REGION", "time zone …", "constant", "time series"
    constant_g_per_kwh: float | None = None
    series: IntensitySeries | None = None

    @property
    def fixed_g_per_kwh(self) -> float | None:
        """The one value used for the whole run, or None for a time series."""
        if self.constant_g_per_kwh is not None:
            return self.constant_g_per_kwh
        if self.series is None and self.region is not None:
            return self.region.g_per_kwh
        return None

    def at(self, unix_s: float) -> float:
        """The intensity in force at ``unix_s`` (g CO2e/kWh)."""
        fixed = self.fixed_g_per_kwh
        if fixed is not None:
            return fixed
        assert self.series is not None  # neither fixed nor a series cannot be built by resolve_intensity
        return self.series.at(unix_s)


@dataclass(frozen=True, repr=False, eq=False)  # repr, == and hash: DataclassMethods
class Accounting(DataclassMethods):
    """Factors from IT energy to facility energy, CO2e and water, and the intensity source."""

    pue: float
    wue_l_per_kwh: float
    water_intensity_l_per_kwh: float
    intensity: IntensitySource
    water: WaterIntensity | None = None  #: the grid water intensity's range and basis (None: not recorded)

    def facility_kwh(self, it_kwh: float) -> float:
        """Energy at the meter."""
        return footprint.facility_kwh(it_kwh, self.pue)

    def co2_kg(self, it_kwh: float, g_per_kwh: float) -> float:
        """kg CO2e of ``it_kwh`` at ``g_per_kwh``, facility overhead included."""
        return footprint.co2_kg(it_kwh, self.pue, g_per_kwh)

    def water_l(self, it_kwh: float) -> float:
        """Litres of water: the site's WUE plus the grid's water intensity at the meter."""
        return footprint.water_l(it_kwh, self.pue, self.wue_l_per_kwh, self.water_intensity_l_per_kwh)


def _env(name: str) -> str | None:
    return os.environ.get(name) or None


def build_accounting(region: Any, pue: Any, wue: Any, intensity: Any,
                     water_intensity_l_per_kwh: Any) -> tuple[Accounting, list[str]]:
    """The accounting for a run from a tracker's arguments (``CARBONSTEP_PUE`` / ``CARBONSTEP_WUE`` when not
    given), and the warnings found on the way: a guessed region, a factor outside its published range
    (:mod:`carbonstep.validate`). Bad values raise a ConfigError naming the argument."""
    if region is not None:
        region = check_text("region", region, meaning="a region code or name such as 'FR' or 'US-CA'",
                            fix="list them with 'carbonstep regions'")
    pue_value, warnings = parse_number(
        "pue", pue if pue is not None else _env("CARBONSTEP_PUE") or 1.0, low=1.0, plausible=PUE,
        meaning="power usage effectiveness, 1.0 = no overhead; CARBONSTEP_PUE")
    wue_value, wue_warnings = parse_number(
        "wue", wue if wue is not None else _env("CARBONSTEP_WUE") or 0.0, low=0.0, plausible=WUE_L_PER_KWH,
        meaning="site water usage effectiveness in L/kWh; CARBONSTEP_WUE")
    from carbonstep.accounting import water as grid_water

    if water_intensity_l_per_kwh is not None:
        value, _ = parse_number("water_intensity_l_per_kwh", water_intensity_l_per_kwh, low=0.0,
                                meaning="litres consumed per kWh generated")
        water = grid_water.given(value)
    source, intensity_warnings = resolve_intensity(region, intensity)
    if water_intensity_l_per_kwh is None:  # the region's own figure (the world's where there is none)
        water = grid_water.water_of(source.region.code if source.region else None)
    return (Accounting(pue_value, wue_value, water.l_per_kwh, source, water),
            intensity_warnings + warnings + wue_warnings)


def resolve_intensity(region: str | None, intensity: Any) -> tuple[IntensitySource, list[str]]:
    """Where the intensity comes from: ``intensity`` (g/kWh, or a CSV time series path) over ``region``'s
    table value; without either, the region resolved from the environment (see :func:`regions.resolve`).
    The region table is read only when a region is named or resolved."""
    if region or intensity is None:
        from carbonstep.accounting import regions
    if intensity is None:
        found, chosen, warnings = regions.resolve(region)
        return IntensitySource(found, chosen), warnings
    named = regions.lookup(region) if region else None
    if isinstance(intensity, (str, os.PathLike)) and not _is_number(intensity):
        from carbonstep.accounting.timeseries import read_series

        series = read_series(os.fspath(intensity))
        return IntensitySource(named, "time series", series=series), list(series.warnings)
    value, warnings = parse_number("intensity", intensity, low=0.0, plausible=INTENSITY_G_PER_KWH,
                                   meaning="grid carbon intensity in g CO2e/kWh, or a CSV path")
    return IntensitySource(named, "constant", constant_g_per_kwh=value), warnings


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


__all__ = ["Accounting", "IntensitySource", "build_accounting", "resolve_intensity"]
