"""Pure functions from energy to carbon and water."""

from __future__ import annotations

import math

from carbonstep.errors import ConfigError

J_PER_KWH = 3.6e6  #: 1 kWh = 1000 W × 3600 s
#: Litres of water consumed per kWh generated, US grid average: 0.83 gal/kWh = 3.14 L/kWh in Reig et al.,
#: "Guidance for Calculating Water Use Embedded in Purchased Electricity" (World Resources Institute, 2020),
#: Appendix 2 (consumption, United States); the U.S. average EWIF that Li et al., "Making AI Less 'Thirsty'"
#: (arXiv:2304.03271, 2023) use. A tracker now charges its region's own figure (:mod:`carbonstep.accounting.water`);
#: this one remains the default of ``carbonstep plan`` sites and of synthetic usage data.
DEFAULT_WATER_L_PER_KWH = 3.14


def facility_kwh(it_kwh: float, pue: float) -> float:
    """Energy at the meter: IT energy × PUE."""
    return it_kwh * pue


def co2_kg(it_kwh: float, pue: float, g_per_kwh: float) -> float:
    """kg CO2e = IT kWh × PUE × grid intensity (g/kWh) / 1000."""
    return it_kwh * pue * g_per_kwh / 1000.0


def water_l(it_kwh: float, pue: float, wue_l_per_kwh: float, grid_water_l_per_kwh: float) -> float:
    """Litres = IT kWh × (site WUE + PUE × grid water intensity)."""
    return it_kwh * (wue_l_per_kwh + pue * grid_water_l_per_kwh)


def check_factor(name: str, value: float, minimum: float, meaning: str) -> float:
    """``value`` as a float, or a ConfigError saying what a valid one is."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number ({meaning}), got {value!r}") from None
    if not math.isfinite(number) or number < minimum:
        raise ConfigError(f"{name} must be a finite number ≥ {minimum:g} ({meaning}), got {value!r}")
    return number
