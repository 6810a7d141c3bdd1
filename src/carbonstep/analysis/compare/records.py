"""The records a comparison is made of: a run's series and summary, a recipe's summary, and the CO2e each recipe
needed to reach each level, with intervals."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Points = list[tuple[float, float]]  # (step, value)


@dataclass(frozen=True)
class RunSeries:
    """One run's metric and cumulative CO2, by step, with what identifies its recipe and its methods."""

    name: str
    source: str
    metric: Points
    co2: Points
    energy_kwh: float
    co2_kg: float
    water_l: float
    run_id: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    methods: dict[str, str] = field(default_factory=dict)  #: domain → method, e.g. {"cpu": "estimate"}
    embodied_co2_kg: float | None = None  #: the hardware's embodied CO2e for the run (None: not recorded)
    energy_kwh_cpu: float = 0.0
    cpu_estimate: dict[str, Any] | None = None  #: an estimated CPU's w_per_thread, w_low, w_high and basis


@dataclass(frozen=True)
class RunSummary:
    """One run: final and best metric, totals, CO2e to its best value, and its recipe."""

    name: str
    source: str
    final: float
    best: float
    energy_kwh: float
    co2_kg: float
    water_l: float
    co2_to_best_kg: float
    interpolated: bool  #: CO2 was not logged at every metric step: interpolated between steps
    recipe: str = ""
    methods: dict[str, str] = field(default_factory=dict)
    embodied_co2_kg: float | None = None  #: beside co2_kg, never added into it


@dataclass(frozen=True)
class LevelRow:
    """One metric level every run reaches: per recipe (in :attr:`Comparison.recipes` order)."""

    level: float
    co2_kg: tuple[float, ...]  #: mean over the recipe's runs of the CO2e to first reach the level
    diff_kg: tuple[float, ...]  #: relative to the reference (first) recipe
    diff_pct: tuple[float, ...]
    low_kg: tuple[float, ...] = ()  #: 95 % interval of the mean (bootstrap over runs)
    high_kg: tuple[float, ...] = ()
    diff_pct_low: tuple[float, ...] = ()  #: 95 % interval of the difference, in %
    diff_pct_high: tuple[float, ...] = ()
    runs: tuple[int, ...] = ()
    outcome: tuple[str, ...] = ()  #: reference, less, more, indistinguishable, no variation, no interval (a value
    #: not positive), not comparable (methods whose error is unknown), or context (not the verdict's level)
    runs_needed: tuple[int | None, ...] = ()  #: per recipe: runs each for 80 % power on the difference seen


@dataclass(frozen=True)
class RecipeSummary:
    """One recipe at the strictest level every run reaches (the common best)."""

    name: str
    runs: tuple[str, ...]
    methods: str  #: e.g. "cpu: estimate, ram: estimate", or "" when the runs do not say
    co2_kg: float
    low_kg: float
    high_kg: float
    energy_kwh: float
    low_kwh: float
    high_kwh: float


__all__ = ["LevelRow", "Points", "RecipeSummary", "RunSeries", "RunSummary"]
