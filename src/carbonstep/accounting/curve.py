"""Cumulative CO2e over a run's energy curve, for a constant or a time-varying grid intensity."""

from __future__ import annotations

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: a run's stop path imports no typing
if TYPE_CHECKING:
    from typing import Iterable, Sequence

    from carbonstep.accounting.factors import Accounting

MAX_POINTS = 8192  #: beyond this the curve keeps every other point (cumulative sums stay exact where kept)


class CarbonCurve:
    """Cumulative CO2 as a function of run time.

    ``timeline`` holds (seconds since the start, cumulative joules) points; ``start_wall_s`` is the
    run's start in UNIX seconds, where a time series of intensity is looked up. With a time series the
    curve is integrated incrementally: :meth:`extend` charges only the new points (O(1) per logged step,
    whatever the run's length). Seconds of the run outside the series are counted (``outside_s``): they are
    charged at its first or last value, logged once and said by :meth:`outside_warning`.
    """

    def __init__(self, accounting: Accounting, timeline: Sequence[tuple[float, float]], start_wall_s: float) -> None:
        self.accounting = accounting
        self.start_wall_s = start_wall_s
        self.series = accounting.intensity.series if accounting.intensity.fixed_g_per_kwh is None else None
        self.times: list[float] = []
        self.joules: list[float] = []
        self.weighted_j_g: list[float] = []  # running joules × g/kWh
        self.outside_s = 0.0
        self.extend(timeline)

    def extend(self, points: Iterable[tuple[float, float]]) -> None:
        """Add (seconds since the start, cumulative joules) points later than the last one."""
        for t_s, joules in points:
            if self.times and t_s <= self.times[-1]:
                continue
            charge = self._charge(self.times[-1], t_s, joules - self.joules[-1]) if self.times else 0.0
            self.weighted_j_g.append((self.weighted_j_g[-1] if self.weighted_j_g else 0.0) + charge)
            self.times.append(t_s)
            self.joules.append(joules)
        if len(self.times) > MAX_POINTS:  # bounded memory: every other point, and the last
            keep = [*range(0, len(self.times) - 1, 2), len(self.times) - 1]
            self.times, self.joules, self.weighted_j_g = ([v[i] for i in keep]
                                                          for v in (self.times, self.joules, self.weighted_j_g))

    def _charge(self, a_s: float, b_s: float, joules: float) -> float:
        """joules × g/kWh of an interval, at the intensity in force at its midpoint."""
        if self.series is None:
            return 0.0
        mid = self.start_wall_s + (a_s + b_s) / 2
        first, end = self.series.span()
        if not first <= mid < end:
            if self.outside_s == 0.0:  # said once, on the console as it happens (the report says it again)
                import sys

                print(f"carbonstep: warning: the run at {_iso(mid)} is outside the intensity series "
                      f"{self.series.source} ({_iso(first)} to {_iso(end)}); its first or last value is used",
                      file=sys.stderr)
            self.outside_s += b_s - a_s
        return joules * self.series.at(mid)

    def g_per_kwh_until(self, t_s: float) -> float:
        """Energy-weighted mean intensity from the start to ``t_s``."""
        fixed = self.accounting.intensity.fixed_g_per_kwh
        if fixed is not None:
            return fixed
        from bisect import bisect_right  # a time series only: a constant intensity never gets here

        i = max(bisect_right(self.times, t_s) - 1, 0)
        if not self.joules or self.joules[i] - self.joules[0] <= 0:
            return self.accounting.intensity.at(self.start_wall_s)
        return self.weighted_j_g[i] / (self.joules[i] - self.joules[0])

    def co2_kg(self, kwh: float, t_s: float) -> float:
        """kg CO2e of ``kwh`` of IT energy, at the mean intensity up to ``t_s``."""
        return self.accounting.co2_kg(kwh, self.g_per_kwh_until(t_s))

    def outside_warning(self) -> str | None:
        """The report's warning when part of the run fell outside the intensity series, else None."""
        if self.series is None or self.outside_s <= 0:
            return None
        first, end = self.series.span()
        return (f"{self.outside_s:,.0f} s of the run fell outside the intensity series {self.series.source} "
                f"({_iso(first)} to {_iso(end)}) and were charged at its first or last value")


def _iso(unix_s: float) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(unix_s, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


__all__ = ["CarbonCurve"]
