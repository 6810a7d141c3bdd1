"""The accounting a run is charged with, as one frozen record: facility and water factors and where the
grid's carbon intensity comes from (a region's table value, a constant, or a time series).

:class:`Accounting` is what the tracker, the report builder and the carbon curve take: none of them
reads another's attributes for a factor.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from carbonstep.accounting import footprint, regions
from carbonstep.accounting.footprint import DEFAULT_WATER_L_PER_KWH, check_factor
from carbonstep.errors import ConfigError

if TYPE_CHECKING:
    from carbonstep.accounting.regions import Region
    from carbonstep.accounting.timeseries import IntensitySeries

#: Uptime Institute Global Data Center Survey: the industry's average PUE was 2.5 in 2007 and 1.58 in 2023
#: (Uptime Intelligence update "Large data centers are mostly more efficient, analysis confirms", Nov 2023;
#: the 2007 figure as summarised from the 2018 survey by datacenter.com). A PUE above 2.5 is worse than the
#: average of 2007, and far more (pue=1000) is no facility at all.
PUE_WARN_ABOVE = 2.5
#: The highest average site WUE we found reported: 1.8–1.9 L/kWh across data centres (unanswered.io's WUE guide;
#: evaporatively cooled hyperscale sites 1.0–1.8 L/kWh in Milton Roy's data-centre water benchmarks). Warned
#: at ten times that: a margin of our choosing, for a slip of unit (L/MWh) rather than a hot climate.
WUE_HIGH_AVERAGE_L_PER_KWH = 1.9
WUE_WARN_ABOVE_L_PER_KWH = 10 * WUE_HIGH_AVERAGE_L_PER_KWH


@dataclass(frozen=True)
class IntensitySource:
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


@dataclass(frozen=True)
class Accounting:
    """Factors from IT energy to facility energy, CO2e and water, and the intensity source."""

    pue: float
    wue_l_per_kwh: float
    water_intensity_l_per_kwh: float
    intensity: IntensitySource

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


def build_accounting(region: str | None, pue: Any, wue: Any, intensity: Any,
                     water_intensity_l_per_kwh: Any) -> tuple[Accounting, list[str]]:
    """The accounting for a run from a tracker's arguments (``CARBONSTEP_PUE`` / ``CARBONSTEP_WUE`` when not
    given), and the warnings found on the way (a guessed region). Bad values raise a ConfigError."""
    if region is not None and not isinstance(region, str):
        raise ConfigError(f"region must be a region code or name such as 'FR' or 'US-CA' (list them with "
                          f"'carbonstep regions'), got {type(region).__name__} {region!r}")
    pue_value = factor("pue", pue if pue is not None else _env("CARBONSTEP_PUE") or 1.0, 1.0,
                       "power usage effectiveness, 1.0 = no overhead; CARBONSTEP_PUE")
    wue_value = factor("wue", wue if wue is not None else _env("CARBONSTEP_WUE") or 0.0, 0.0,
                       "site water usage effectiveness in L/kWh; CARBONSTEP_WUE")
    water = factor("water_intensity_l_per_kwh",
                   DEFAULT_WATER_L_PER_KWH if water_intensity_l_per_kwh is None else water_intensity_l_per_kwh,
                   0.0, "litres consumed per kWh generated")
    source, warnings = resolve_intensity(region, intensity)
    accounting = Accounting(pue_value, wue_value, water, source)
    return accounting, warnings + implausible(accounting)


def factor(name: str, value: Any, minimum: float, meaning: str) -> float:
    """``value`` as a float ≥ ``minimum``; a bool (``pue=True``) is refused rather than read as 1.0."""
    if isinstance(value, bool):
        raise ConfigError(f"{name} must be a number ({meaning}), got the boolean {value!r}")
    return check_factor(name, value, minimum, meaning)


def implausible(accounting: Accounting) -> list[str]:
    """Warnings for factors outside published ranges: valid numbers, but likely a slip of unit or digit."""
    warnings = []
    if accounting.pue > PUE_WARN_ABOVE:
        warnings.append(f"pue={accounting.pue:g} is above {PUE_WARN_ABOVE:g}, the industry's average PUE in 2007 "
                        f"(1.58 in 2023; Uptime Institute Global Data Center Survey): check the value")
    if accounting.wue_l_per_kwh > WUE_WARN_ABOVE_L_PER_KWH:
        warnings.append(f"wue={accounting.wue_l_per_kwh:g} L/kWh is more than ten times the highest reported "
                        f"average site WUE ({WUE_HIGH_AVERAGE_L_PER_KWH:g} L/kWh): is it in L/kWh (not L/MWh)?")
    constant = accounting.intensity.constant_g_per_kwh
    if constant is not None:
        warnings += _implausible_intensity(constant)
    return warnings


def _implausible_intensity(g_per_kwh: float) -> list[str]:
    table = [r.g_per_kwh for r in regions.regions().values()]
    low, high = min(table), max(table)
    if g_per_kwh > high:
        return [f"intensity={g_per_kwh:g} g CO2e/kWh is above every region in carbonstep's table (highest "
                f"{high:g} g/kWh; coal power's lifecycle median is 820 g/kWh, IPCC AR5 WGIII Annex III): check "
                "the unit (g CO2e per kWh)"]
    if 0 < g_per_kwh < low:
        grams = g_per_kwh * 1000
        unit = (f": it looks like kg/kWh; in g/kWh that is intensity={grams:g}" if low <= grams <= high
                else ": check the unit (g CO2e per kWh)")
        return [f"intensity={g_per_kwh:g} g CO2e/kWh is below every region in carbonstep's table (lowest "
                f"{low:g} g/kWh){unit}"]
    return []


def resolve_intensity(region: str | None, intensity: Any) -> tuple[IntensitySource, list[str]]:
    """Where the intensity comes from: ``intensity`` (g/kWh, or a CSV time series path) over ``region``'s
    table value; without either, the region resolved from the environment (see :func:`regions.resolve`)."""
    if intensity is None:
        found, chosen, warnings = regions.resolve(region)
        return IntensitySource(found, chosen), warnings
    named = regions.lookup(region) if region else None
    if isinstance(intensity, (str, os.PathLike)) and not _is_number(intensity):
        from carbonstep.accounting.timeseries import read_series

        return IntensitySource(named, "time series", series=read_series(os.fspath(intensity))), []
    value = factor("intensity", intensity, 0.0, "grid carbon intensity in g CO2e/kWh, or a CSV path")
    return IntensitySource(named, "constant", constant_g_per_kwh=value), []


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


__all__ = ["Accounting", "IntensitySource", "build_accounting", "resolve_intensity"]
