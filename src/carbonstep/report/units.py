"""Readable units chosen by magnitude, for one value and for a value with its interval.

The unit of a value is the one the run summary picks (:func:`carbonstep.report.formatting.format_mass`,
:func:`~carbonstep.report.formatting.format_energy`). An interval is written in the unit of its central value, so
``12.3 mg (9.8–15.1 mg)`` reads at a glance.
"""

from __future__ import annotations

from carbonstep.report.formatting import ENERGY_UNITS, MASS_UNITS, pick_unit, significant

MASS_PER_KG = dict(MASS_UNITS)  #: units format_mass chooses from
ENERGY_PER_KWH = dict(ENERGY_UNITS)  #: units format_energy chooses from


def mass_unit(kg: float) -> tuple[str, float]:
    """The unit the summary writes ``kg`` in, and how many of that unit make one kg."""
    return pick_unit(kg, MASS_UNITS)


def energy_unit(kwh: float) -> tuple[str, float]:
    """The unit the summary writes ``kwh`` in, and how many of that unit make one kWh."""
    return pick_unit(kwh, ENERGY_UNITS)


_number = significant


def short_mass(kg: float) -> str:
    """``kg`` in the unit the summary would choose, to 3 significant digits: ``270 g``, ``7.6 mg``."""
    unit, scale = mass_unit(kg)
    return f"{_number(kg * scale)} {unit}"


def format_mass_interval(kg: float, low_kg: float, high_kg: float, compact: bool = False) -> str:
    """``12.3 mg (95 % interval 9.8–15.1 mg)``, or ``12.3 mg [9.8–15.1]`` when ``compact`` (table cells under a
    header that says what the brackets are); the bare value when the interval has no width."""
    unit, scale = mass_unit(kg)
    text = short_mass(kg)
    if high_kg > low_kg:
        span = f"{_number(low_kg * scale)}–{_number(high_kg * scale)}"
        text += f" [{span}]" if compact else f" (95 % interval {span} {unit})"
    return text


def format_energy_interval(kwh: float, low_kwh: float, high_kwh: float) -> str:
    """``41.2 J (95 % interval 35–47.9 J)``; the bare value when the interval has no width."""
    unit, scale = energy_unit(kwh)
    text = f"{_number(kwh * scale)} {unit}"
    if high_kwh > low_kwh:
        text += f" (95 % interval {_number(low_kwh * scale)}–{_number(high_kwh * scale)} {unit})"
    return text
