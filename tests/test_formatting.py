"""One formatter for every figure: auto-scaled, three significant digits, never scientific, never zero."""

from __future__ import annotations

import math
import re

import pytest

from carbonstep.report.formatting import (
    format_energy,
    format_joules,
    format_mass,
    format_power,
    format_volume,
    significant,
)
from carbonstep.report.units import format_mass_interval, mass_unit

SCIENTIFIC = re.compile(r"\d[eE][+-]?\d")


@pytest.mark.parametrize(("kwh", "text"), [
    (4.09e-3, "4.09 Wh"), (1510 / 3.6e6, "1,510 J"), (0.42, "420 Wh"), (1.0, "1.00 kWh"), (999.6, "1.00 MWh"),
    (12_345.0, "12.3 MWh"), (1e-7, "360 mJ"), (-0.002, "-2.00 Wh"), (0.0, "0 kWh")])
def test_energy_is_scaled_to_a_readable_unit(kwh: float, text: str) -> None:
    assert format_energy(kwh) == text


@pytest.mark.parametrize(("kg", "text"), [
    (180e-6, "180 mg"), (2.96e-10, "296 ng"), (3.8442e-06, "3.84 mg"), (1234.0, "1.23 t"), (12_300e3, "12,300 t"),
    (0.999_96, "1.00 kg")])
def test_mass_is_scaled_to_a_readable_unit(kg: float, text: str) -> None:
    assert format_mass(kg) == text


def test_volume_power_and_joules() -> None:
    assert format_volume(0.0128) == "12.8 mL"
    assert format_volume(2.5) == "2.50 L"
    assert format_power(212.3) == "212 W"
    assert format_joules(1130.0) == "1,130 J"
    assert format_joules(2140.0) == "2,140 J"


def test_non_finite_values_are_words() -> None:
    assert format_energy(math.nan) == "n/a"
    assert format_mass(math.inf) == "∞ kg"
    assert significant(-math.inf) == "-∞"


@pytest.mark.parametrize("exponent", range(-24, 25))
def test_never_scientific_and_never_zero(exponent: int) -> None:
    for mantissa in (1.0, 2.96, 9.996):
        value = mantissa * 10.0 ** exponent
        for text in (format_energy(value), format_mass(value), format_volume(value), format_power(value),
                     significant(value)):
            assert not SCIENTIFIC.search(text), text
            number = float(text.split(" ")[0].replace(",", ""))
            assert number != 0, text


def test_three_significant_digits_in_the_readable_range() -> None:
    for value in (1.234, 12.34, 123.4, 0.01234):
        digits = significant(value).replace(".", "").replace(",", "").lstrip("0")
        assert len(digits) == 3


def test_an_interval_is_written_in_its_centre_unit() -> None:
    assert mass_unit(3e-10) == ("ng", 1e12)
    assert format_mass_interval(12.3e-6, 9.8e-6, 15.1e-6) == "12.3 mg (95 % interval 9.80–15.1 mg)"
