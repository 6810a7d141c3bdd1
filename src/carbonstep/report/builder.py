"""Turns a stopped tracker's totals into a :class:`RunReport` (accounting applied)."""

from __future__ import annotations

import bisect
import logging
from typing import TYPE_CHECKING, Sequence, TypeVar

from carbonstep._version import __version__
from carbonstep.accounting import footprint
from carbonstep.accounting.footprint import J_PER_KWH
from carbonstep.measure.readers.base import Scope
from carbonstep.measure.totals import DOMAINS
from carbonstep.report.record import Device, Epoch, Mark, RunReport

if TYPE_CHECKING:
    from carbonstep.measure.sampler import Sampler
    from carbonstep.measure.totals import EnergyTotals
    from carbonstep.measure.tracker import Tracker

log = logging.getLogger("carbonstep")
TIMELINE_POINTS = 256
T = TypeVar("T")


class CarbonCurve:
    """Cumulative CO2 as a function of run time, for constant or time-varying intensity.

    With a time series, the energy-weighted intensity is integrated incrementally: each call takes only the
    timeline points sampled since the last one (O(1) per logged step, whatever the run's length); cumulative
    sums stay exact at the points kept when the curve is thinned. Seconds of the run that fall outside the
    series are counted (``outside_s``) and said in the report's warnings: they are charged at its first or
    last value.
    """

    def __init__(self, tracker: "Tracker", totals: "EnergyTotals") -> None:
        self.pue = tracker.pue
        self.series = tracker._series
        self.constant = tracker._g_per_kwh() if self.series is None else None
        self.start_wall = tracker._started_wall
        self.totals = totals
        self.times: list[float] = []  # seconds since the start
        self.joules: list[float] = []
        self.weighted_j_g: list[float] = []  # running joules × g/kWh
        self.outside_s = 0.0
        self.update()

    @classmethod
    def of(cls, tracker: "Tracker", totals: "EnergyTotals") -> "CarbonCurve":
        """The tracker's curve, brought up to date (kept on the tracker between calls)."""
        curve = tracker.__dict__.get("_carbon_curve")
        if curve is None or curve.totals is not totals or curve.series is not tracker._series:
            curve = cls(tracker, totals)
            tracker.__dict__["_carbon_curve"] = curve
        else:
            curve.update()
        return curve

    def update(self) -> None:
        """Integrate the timeline points sampled since the last call."""
        totals = self.totals
        if self.series is None or totals.t0 is None:
            return
        timeline, t0 = totals.timeline, totals.t0
        last = self.times[-1] if self.times else float("-inf")
        first_new = len(timeline)
        while first_new > 0 and timeline[first_new - 1][0] - t0 > last:
            first_new -= 1
        for t, vector in timeline[first_new:]:
            self._add(t - t0, sum(vector))
        if len(self.times) > 2 * TIMELINE_POINTS * 16:  # bounded memory: keep every other point, and the last
            keep = thin(range(len(self.times)), len(self.times) // 2)
            self.times, self.joules, self.weighted_j_g = ([v[i] for i in keep]
                                                          for v in (self.times, self.joules, self.weighted_j_g))

    def _add(self, t_s: float, joules: float) -> None:
        if self.times:
            charge = self._charge(self.times[-1], t_s, joules - self.joules[-1])
            self.weighted_j_g.append(self.weighted_j_g[-1] + charge)
        else:
            self.weighted_j_g.append(0.0)
        self.times.append(t_s)
        self.joules.append(joules)

    def _charge(self, a_s: float, b_s: float, joules: float) -> float:
        """joules × g/kWh for an interval, at the intensity in force at its midpoint."""
        series = self.series
        assert series is not None
        mid = self.start_wall + (a_s + b_s) / 2
        first, end = series.span()
        if not first <= mid < end:
            if self.outside_s == 0.0:
                log.warning("carbonstep: the run at %s is outside the intensity series %s (%s to %s); its first or "
                            "last value is used", _iso(mid), series.source, _iso(first), _iso(end))
            self.outside_s += b_s - a_s
        return joules * series.at(mid)

    def g_per_kwh_until(self, t_s: float) -> float:
        """Energy-weighted mean intensity from the start to ``t_s``."""
        if self.constant is not None:
            return self.constant
        assert self.series is not None
        self.update()
        if not self.joules:
            return self.series.at(self.start_wall)
        i = max(bisect.bisect_right(self.times, t_s) - 1, 0)
        weighted, joules = self.weighted_j_g[i], self.joules[i]
        latest = self.totals.latest
        if i == len(self.times) - 1 and latest is not None and self.totals.t0 is not None:
            t_latest = min(latest[0] - self.totals.t0, t_s)  # sampled after the last timeline point
            if t_latest > self.times[-1]:
                end_j = sum(latest[1])
                weighted += self._charge_quietly(self.times[-1], t_latest, end_j - joules)
                joules = end_j
        if joules - self.joules[0] <= 0:
            return self.series.at(self.start_wall)
        return weighted / (joules - self.joules[0])

    def _charge_quietly(self, a_s: float, b_s: float, joules: float) -> float:
        assert self.series is not None
        return joules * self.series.at(self.start_wall + (a_s + b_s) / 2)

    def outside_warning(self) -> str | None:
        """The report's warning when part of the run fell outside the intensity series."""
        if self.series is None or self.outside_s <= 0:
            return None
        first, end = self.series.span()
        return (f"{self.outside_s:,.0f} s of the run fell outside the intensity series {self.series.source} "
                f"({_iso(first)} to {_iso(end)}) and were charged at its first or last value")

    def co2_kg(self, kwh: float, t_s: float) -> float:
        return footprint.co2_kg(kwh, self.pue, self.g_per_kwh_until(t_s))


def _iso(unix_s: float) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(unix_s, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _devices(totals: "EnergyTotals", sampler: "Sampler") -> tuple[Device, ...]:
    devices = []
    for i, reader in enumerate(totals.readers):
        stats = totals.utilisation.get(reader.name)
        util = idle = None
        if stats and stats[1] > 0:
            util, idle = stats[0] / stats[1], stats[2] / stats[1]
        devices.append(Device(
            reader.name, reader.domain.value, reader.method.value, reader.description,
            totals.joules[i] / J_PER_KWH, sampler.failures[i], totals.degraded_at[i],
            sampler.first_failure[i], util, idle, Scope(getattr(reader, "scope", Scope.PROCESS)).value,
        ))
    return tuple(devices)


def methods_of(devices: Sequence[Device]) -> dict[str, str]:
    """Domain → the methods its devices used, e.g. {"cpu": "counter+estimate"}."""
    methods: dict[str, str] = {}
    for domain in DOMAINS:
        used = sorted({d.method for d in devices if d.domain == domain.value})
        if used:
            methods[domain.value] = "+".join(used)
    return methods


def thin(points: Sequence[T], limit: int = TIMELINE_POINTS) -> list[T]:
    """Every n-th point so that at most about ``limit`` are kept, and always the last one."""
    stride = max(1, -(-len(points) // limit))
    return list(points[::stride]) + ([points[-1]] if points and (len(points) - 1) % stride else [])


def interpolate(points: Sequence[tuple[float, float]], t: float) -> float:
    """A cumulative curve at ``t``, linear between points: 0 before the first, the last value after it."""
    if not points or t < points[0][0]:
        return 0.0
    if t >= points[-1][0]:
        return points[-1][1]
    i = bisect.bisect_right([p[0] for p in points], t)
    (t0, v0), (t1, v1) = points[i - 1], points[i]
    return v0 + (v1 - v0) * (t - t0) / (t1 - t0) if t1 > t0 else v1


def _timeline(totals: "EnergyTotals") -> tuple[tuple[float, float], ...]:
    t0 = totals.t0 or 0.0
    return tuple((round(t - t0, 3), sum(j) / J_PER_KWH) for t, j in thin(totals.timeline))


def build_report(tracker: "Tracker", totals: "EnergyTotals", sampler: "Sampler", status: str) -> RunReport:
    from carbonstep.measure.tracker import host_name, utc_iso

    curve = CarbonCurve.of(tracker, totals)
    t_end, joules = totals.latest or (0.0, (0.0, 0.0, 0.0))
    duration = t_end - (totals.t0 or t_end)
    kwh = [j / J_PER_KWH for j in joules]
    total = sum(kwh)
    marks = tuple(
        Mark(m.name, m.step, m.epoch, m.count, round(m.t_s, 6), sum(m.energy_j) / J_PER_KWH,
             curve.co2_kg(sum(m.energy_j) / J_PER_KWH, m.t_s))
        for m in totals.marks
    )
    epochs = []
    for row in totals.epochs.values():
        start_kwh, end_kwh = sum(row.start_j) / J_PER_KWH, sum(row.end_j) / J_PER_KWH
        epochs.append(Epoch(
            row.epoch, row.start_s, row.end_s, end_kwh - start_kwh,
            curve.co2_kg(end_kwh, row.end_s) - curve.co2_kg(start_kwh, row.start_s),
            tracker._water_l(end_kwh - start_kwh), row.steps, row.count, row.complete,
        ))
    devices = _devices(totals, sampler)
    warnings = list(tracker.warnings)
    warnings += [f"{d.name} failed from {d.degraded_at_s:.1f} s ({d.first_error}); its energy after that is missing"
                 for d in devices if d.degraded_at_s is not None]
    warnings += [f"{u.source}: {u.reason} — fix: {u.fix}" for u in tracker.unavailable if u.fix]
    warnings += [text for text in (curve.outside_warning(),) if text]
    from carbonstep.report.hints import with_hints

    extra = {"place": tracker.place.to_dict()} if tracker.place else {}
    if tracker.count_unit != "sample":
        extra["count_unit"] = tracker.count_unit
    return with_hints(RunReport(
        run_id=tracker.run_id, started_at=utc_iso(tracker._started_wall), duration_s=duration, status=status,
        attribution=tracker.attribution, host=host_name(), energy_kwh=total, energy_kwh_gpu=kwh[0],
        energy_kwh_cpu=kwh[1], energy_kwh_ram=kwh[2], facility_kwh=footprint.facility_kwh(total, tracker.pue),
        co2_kg=curve.co2_kg(total, duration), water_l=tracker._water_l(total), pue=tracker.pue,
        wue_l_per_kwh=tracker.wue, water_intensity_l_per_kwh=tracker.water_intensity,
        intensity=tracker._intensity_record(), methods=methods_of(devices), devices=devices, marks=marks,
        marks_stride=totals.mark_stride, epochs=tuple(epochs), timeline=_timeline(totals),
        warnings=tuple(dict.fromkeys(warnings)), wasted=status in ("failed", "interrupted"), name=tracker.name,
        carbonstep_version=__version__, extra=extra,
    ))
