"""The records a comparison is made of: a run's series, its summary, and the CO2 to reach each level."""

from __future__ import annotations

from dataclasses import dataclass

Points = list[tuple[float, float]]  # (step, value)


@dataclass(frozen=True)
class RunSeries:
    """One run's metric and cumulative CO2, by step."""

    name: str
    source: str
    metric: Points
    co2: Points
    energy_kwh: float
    co2_kg: float
    water_l: float
    run_id: str | None = None


@dataclass(frozen=True)
class RunSummary:
    """One run's final and best metric, totals, and the CO2 spent to first reach its best."""
    name: str
    source: str
    final: float
    best: float
    energy_kwh: float
    co2_kg: float
    water_l: float
    co2_to_best_kg: float
    interpolated: bool  #: CO2 was not logged at every metric step: interpolated between steps


@dataclass(frozen=True)
class LevelRow:
    """The CO2 each run spent to first reach one metric level, and the differences."""
    level: float
    co2_kg: tuple[float, ...]  #: per run, to first reach the level
    diff_kg: tuple[float, ...]  #: relative to the first run
    diff_pct: tuple[float, ...]


__all__ = ["LevelRow", "Points", "RunSeries", "RunSummary"]
