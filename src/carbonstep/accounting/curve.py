"""Cumulative CO2e over a run's energy curve, for a constant or a time-varying grid intensity."""

from __future__ import annotations

import bisect
from typing import Sequence

from carbonstep.accounting.factors import Accounting


class CarbonCurve:
    """Cumulative CO2 as a function of run time.

    ``timeline`` holds (seconds since the start, cumulative joules) points; ``start_wall_s`` is the
    run's start in UNIX seconds, where a time series of intensity is looked up.
    """

    def __init__(self, accounting: Accounting, timeline: Sequence[tuple[float, float]], start_wall_s: float) -> None:
        self.accounting = accounting
        self.start_wall_s = start_wall_s
        self.times = [t for t, _ in timeline]
        self.joules = [j for _, j in timeline]
        self.weighted_j_g: list[float] = []  # running joules × g/kWh
        series = accounting.intensity.series
        if accounting.intensity.fixed_g_per_kwh is None and series is not None:
            points = [(start_wall_s + t, j) for t, j in zip(self.times, self.joules)]
            self.weighted_j_g = series.cumulative_j_g(points)

    def g_per_kwh_until(self, t_s: float) -> float:
        """Energy-weighted mean intensity from the start to ``t_s``."""
        fixed = self.accounting.intensity.fixed_g_per_kwh
        if fixed is not None:
            return fixed
        i = max(bisect.bisect_right(self.times, t_s) - 1, 0)
        if not self.joules or self.joules[i] - self.joules[0] <= 0:
            return self.accounting.intensity.at(self.start_wall_s)
        return self.weighted_j_g[i] / (self.joules[i] - self.joules[0])

    def co2_kg(self, kwh: float, t_s: float) -> float:
        """kg CO2e of ``kwh`` of IT energy, at the mean intensity up to ``t_s``."""
        return self.accounting.co2_kg(kwh, self.g_per_kwh_until(t_s))


__all__ = ["CarbonCurve"]
