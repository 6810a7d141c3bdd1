"""Turns a stopped tracker's totals into a :class:`RunReport` (accounting applied)."""

from __future__ import annotations

import bisect
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

TIMELINE_POINTS = 256
T = TypeVar("T")


class CarbonCurve:
    """Cumulative CO2 as a function of run time, for constant or time-varying intensity."""

    def __init__(self, tracker: "Tracker", totals: "EnergyTotals") -> None:
        self.pue = tracker.pue
        self.series = tracker._series
        self.constant = tracker._g_per_kwh() if self.series is None else None
        self.start_wall = tracker._started_wall
        t0 = totals.t0 or 0.0
        self.times = [t - t0 for t, _ in totals.timeline]  # seconds since the start
        self.joules = [sum(vector) for _, vector in totals.timeline]
        self.weighted_j_g: list[float] = []  # running joules × g/kWh
        if self.series is not None:
            points = [(self.start_wall + t, j) for t, j in zip(self.times, self.joules)]
            self.weighted_j_g = self.series.cumulative_j_g(points)

    def g_per_kwh_until(self, t_s: float) -> float:
        """Energy-weighted mean intensity from the start to ``t_s``."""
        if self.constant is not None:
            return self.constant
        i = max(bisect.bisect_right(self.times, t_s) - 1, 0)
        if not self.joules or self.joules[i] - self.joules[0] <= 0:
            return self.series.at(self.start_wall)  # type: ignore[union-attr]
        return self.weighted_j_g[i] / (self.joules[i] - self.joules[0])

    def co2_kg(self, kwh: float, t_s: float) -> float:
        return footprint.co2_kg(kwh, self.pue, self.g_per_kwh_until(t_s))


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

    curve = CarbonCurve(tracker, totals)
    t_end, joules = totals.latest or (0.0, (0.0, 0.0, 0.0))
    duration = totals.duration_s
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
            tracker._water_l(end_kwh - start_kwh), row.steps, row.count,
        ))
    devices = _devices(totals, sampler)
    warnings = list(tracker.warnings)
    warnings += [f"{d.name} failed from {d.degraded_at_s:.1f} s ({d.first_error}); its energy after that is missing"
                 for d in devices if d.degraded_at_s is not None]
    warnings += [f"{u.source}: {u.reason} — fix: {u.fix}" for u in tracker.unavailable if u.fix]
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
