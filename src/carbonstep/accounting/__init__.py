"""Accounting: pure functions and data from energy to carbon and water.

Modules: ``footprint`` (carbon and water formulas), ``regions`` (the shipped intensity table and
region resolution), ``timeseries`` (intensity over time from CSV). Imported on use, to keep
``import carbonstep`` light.
"""

from __future__ import annotations

from pathlib import Path

DATA_DIR = Path(__file__).with_name("data")
