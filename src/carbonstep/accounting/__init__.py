"""Accounting: pure functions and data from energy to carbon and water."""

from .footprint import DEFAULT_WATER_L_PER_KWH, co2_kg, facility_kwh, water_l
from .regions import Region, lookup, resolve, search
from .timeseries import IntensitySeries, read_series

__all__ = [
    "DEFAULT_WATER_L_PER_KWH", "IntensitySeries", "Region", "co2_kg", "facility_kwh", "lookup",
    "read_series", "resolve", "search", "water_l",
]
