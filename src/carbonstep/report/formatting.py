"""Quantities as short text with a readable unit: one formatter for every figure carbonstep prints.

Every figure is auto-scaled to the unit that puts it between 1 and 1,000 where such a unit exists, written with
three significant digits, never in scientific notation and never rounded to zero: ``1,510 J``, ``4.09 Wh``,
``180 mg``, ``296 ng``, ``12.8 mL``. A value too small for the smallest unit keeps its digits in that unit
(``0.000120 ng``); one too large for the largest gets thousands separators (``12,300 t``). A value that is not a
number reads ``n/a``, an infinite one ``∞``.
"""

from __future__ import annotations

import math

from carbonstep.accounting.footprint import J_PER_KWH

#: units for energy, largest first, each with how many of it make one kWh
ENERGY_UNITS: tuple[tuple[str, float], ...] = (
    ("MWh", 1e-3), ("kWh", 1.0), ("Wh", 1e3), ("J", J_PER_KWH), ("mJ", J_PER_KWH * 1e3))
#: units for mass, largest first, each with how many of it make one kg
MASS_UNITS: tuple[tuple[str, float], ...] = (
    ("t", 1e-3), ("kg", 1.0), ("g", 1e3), ("mg", 1e6), ("µg", 1e9), ("ng", 1e12))
#: units for water, largest first, each with how many of it make one litre
VOLUME_UNITS: tuple[tuple[str, float], ...] = (("L", 1.0), ("mL", 1e3), ("µL", 1e6))
#: units for power, largest first, each with how many of it make one watt
POWER_UNITS: tuple[tuple[str, float], ...] = (("MW", 1e-6), ("kW", 1e-3), ("W", 1.0), ("mW", 1e3))


def significant(value: float, digits: int = 3) -> str:
    """``value`` to ``digits`` significant digits in plain notation: ``1,510``, ``4.09``, ``0.000296``, ``0``."""
    if math.isnan(value):
        return "n/a"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    if value == 0:
        return "0"
    exponent = math.floor(math.log10(abs(value)))
    decimals = digits - 1 - exponent
    rounded = round(value, decimals)
    if rounded != 0 and math.floor(math.log10(abs(rounded))) > exponent:  # 999.6 → 1,000: one digit fewer
        decimals -= 1
        rounded = round(value, decimals)
    return f"{rounded:,.{max(decimals, 0)}f}"


def pick_unit(value: float, units: tuple[tuple[str, float], ...]) -> tuple[str, float]:
    """The unit of ``units`` (largest first, ``(name, per base unit)``) that writes ``value`` with at least one
    whole digit, else the smallest; for zero and non-finite values, the base unit (factor 1) or the first."""
    magnitude = abs(value)
    if magnitude == 0 or not math.isfinite(magnitude):
        return next(((name, f) for name, f in units if f == 1.0), units[0])
    for name, factor in units:
        if float(significant(magnitude * factor).replace(",", "")) >= 1:
            return name, factor
    return units[-1]


def format_quantity(value: float, units: tuple[tuple[str, float], ...]) -> str:
    """``value`` (in the unit whose factor is 1) in the readable unit of ``units``, three significant digits."""
    if math.isnan(value):
        return "n/a"
    name, factor = pick_unit(value, units)
    return f"{significant(value * factor)} {name}"


def format_energy(kwh: float) -> str:
    """``kwh`` in MWh, kWh, Wh, J or mJ: ``4.09 Wh``, ``1,510 J``."""
    return format_quantity(kwh, ENERGY_UNITS)


def format_joules(joules: float) -> str:
    """``joules`` as :func:`format_energy` writes them."""
    return format_energy(joules / J_PER_KWH)


def format_mass(kg: float) -> str:
    """``kg`` in t, kg, g, mg, µg or ng: ``180 mg``, ``296 ng``."""
    return format_quantity(kg, MASS_UNITS)


def format_volume(litres: float) -> str:
    """``litres`` in L, mL or µL: ``12.8 mL``."""
    return format_quantity(litres, VOLUME_UNITS)


def format_power(watts: float) -> str:
    """``watts`` in MW, kW, W or mW: ``212 W``."""
    return format_quantity(watts, POWER_UNITS)


__all__ = ["ENERGY_UNITS", "MASS_UNITS", "POWER_UNITS", "VOLUME_UNITS", "format_energy", "format_joules",
           "format_mass", "format_power", "format_quantity", "format_volume", "pick_unit", "significant"]
