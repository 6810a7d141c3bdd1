"""Turns a stopped run's totals into a :class:`RunReport` (accounting applied).

The builder sees a run only through what it is given: the run's facts (:class:`RunFacts`), its
:class:`~carbonstep.accounting.factors.Accounting`, and read-only views of the energy totals and the
sampler (:class:`TotalsView`, :class:`SamplerView`). It imports nothing from :mod:`carbonstep.measure`.
"""

from __future__ import annotations

import math
import time
import weakref

from carbonstep._record import NamedTuple
from carbonstep._version import __version__
from carbonstep.accounting.curve import CarbonCurve
from carbonstep.accounting.factors import Accounting
from carbonstep.accounting.footprint import J_PER_KWH
from carbonstep.accounting.water import water_record
from carbonstep.report.context import host_name, run_context
from carbonstep.report.hints import with_hints
from carbonstep.report.record import Device, Epoch, Intensity, Mark, RunReport
from carbonstep.vocabulary import DOMAINS, Charged, Domain, Method, Scope, charged_of

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: a run imports no typing
if TYPE_CHECKING:
    from typing import Any, Mapping, Protocol, Sequence, TypeVar

    from carbonstep.accounting.embodied import EmbodiedSettings
    from carbonstep.accounting.embodied_run import Host

    T = TypeVar("T")
else:  # at run time the views are plain classes (they document what the builder reads): no typing imported
    Protocol = object

TIMELINE_POINTS = 256
Vector = tuple[float, float, float]  # joules for (gpu, cpu, ram)


class DeviceView(Protocol):
    """A reader as the report sees it."""

    @property
    def name(self) -> str:
        """The reader's name, e.g. ``gpu:0``."""

    @property
    def domain(self) -> Domain:
        """The component it measures."""

    @property
    def method(self) -> Method:
        """How its energy is obtained."""

    @property
    def description(self) -> str:
        """One line on the device and method."""


class TotalsView(Protocol):
    """What the report reads of the energy totals (:class:`carbonstep.measure.totals.EnergyTotals`)."""

    @property
    def readers(self) -> Sequence[DeviceView]:
        """The readers, in the order of the per-reader lists."""

    @property
    def t0(self) -> float | None:
        """Clock time of the first sample (None before one)."""

    @property
    def latest(self) -> tuple[float, Vector] | None:
        """(clock time, joules per domain) of the last sample."""

    @property
    def timeline(self) -> Sequence[tuple[float, Vector]]:
        """(clock time, cumulative joules per domain), thinned."""

    @property
    def joules(self) -> Sequence[float]:
        """Cumulative joules per reader."""

    @property
    def utilisation(self) -> Mapping[str, Sequence[float]]:
        """Per GPU reader: weighted utilisation sum, seconds, idle seconds."""

    @property
    def degraded_at(self) -> Sequence[float | None]:
        """Per reader: seconds since the start when it began to fail, or None."""

    @property
    def marks(self) -> Sequence[Any]:
        """Resolved marks (name, step, epoch, count, t_s, energy_j)."""

    @property
    def epochs(self) -> Mapping[int, Any]:
        """Per epoch: start/end time and joules, steps, count."""

    @property
    def mark_stride(self) -> int:
        """Every n-th mark was kept."""


class SamplerView(Protocol):
    """What the report reads of the sampler: failures per reader."""

    @property
    def failures(self) -> Sequence[int]:
        """Failed reads per reader."""

    @property
    def first_failure(self) -> Sequence[str | None]:
        """The first error text per reader."""


class RunFacts(NamedTuple):
    """What a report says about the run itself, beside its energy."""

    run_id: str
    started_wall_s: float  #: UNIX seconds
    attribution: str
    name: str | None = None
    count_unit: str = "sample"
    place: Mapping[str, Any] | None = None  #: :class:`~carbonstep.measure.distributed.Place` as a dict
    warnings: tuple[str, ...] = ()  #: configuration and discovery warnings
    unavailable: tuple[str, ...] = ()  #: sources not used that the user can fix: "source: reason — fix: …"


_CURVES: "weakref.WeakKeyDictionary[Any, CarbonCurve]" = weakref.WeakKeyDictionary()


def curve_of(accounting: Accounting, totals: TotalsView, start_wall_s: float) -> CarbonCurve:
    """The CO2 curve of ``totals`` (seconds since the start, cumulative joules). A running tracker's curve is
    kept between calls and extended by the points sampled since the last one: O(1) per logged step."""
    t0 = totals.t0 if totals.t0 is not None else 0.0
    try:
        curve = _CURVES.get(totals)
    except TypeError:  # a view that cannot be weakly referenced: build it whole
        curve = None
    if curve is None or curve.accounting is not accounting or curve.start_wall_s != start_wall_s:
        curve = CarbonCurve(accounting, [(t - t0, sum(vector)) for t, vector in totals.timeline], start_wall_s)
        try:
            _CURVES[totals] = curve
        except TypeError:
            pass
        return curve
    timeline = totals.timeline
    last = curve.times[-1] + t0 if curve.times else float("-inf")
    first_new = len(timeline)
    while first_new > 0 and timeline[first_new - 1][0] > last:
        first_new -= 1
    curve.extend((t - t0, sum(vector)) for t, vector in timeline[first_new:])
    return curve


def intensity_record(accounting: Accounting, g_per_kwh: float) -> Intensity:
    """The report's account of the intensity used (``g_per_kwh``: the run's mean) and where it came from."""
    source = accounting.intensity
    region = source.region
    if source.series is not None:
        note = f" ({source.series.unit_note})" if source.series.unit_note else ""
        return Intensity(g_per_kwh, region.code if region else None, region.name if region else "time series",
                         f"time series {source.series.source}{note}", None, "user", "",
                         "time series, energy-weighted over the run")
    if source.constant_g_per_kwh is not None:
        return Intensity(source.constant_g_per_kwh, region.code if region else None,
                         region.name if region else "unspecified", "constant given by the user", None,
                         "user", "", "constant")
    assert region is not None  # an intensity source is a series, a constant or a region
    return Intensity(region.g_per_kwh, region.code, region.name, region.source, region.year,
                     region.basis, region.licence, source.chosen_by)


def _devices(totals: TotalsView, sampler: SamplerView) -> tuple[Device, ...]:
    devices = []
    for i, reader in enumerate(totals.readers):
        stats = totals.utilisation.get(reader.name)
        scope = Scope(getattr(reader, "scope", Scope.PROCESS))
        charged = Charged(getattr(reader, "charged", None) or charged_of(scope))
        util = idle = None
        if stats and stats[1] > 0:
            util, idle = stats[0] / stats[1], stats[2] / stats[1]
        devices.append(Device(
            reader.name, reader.domain.value, reader.method.value, reader.description,
            totals.joules[i] / J_PER_KWH, sampler.failures[i], totals.degraded_at[i],
            sampler.first_failure[i], util, idle, scope.value, charged.value,
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
    from bisect import bisect_right

    i = bisect_right([p[0] for p in points], t)
    (t0, v0), (t1, v1) = points[i - 1], points[i]
    return v0 + (v1 - v0) * (t - t0) / (t1 - t0) if t1 > t0 else v1


def _timeline(totals: TotalsView) -> tuple[tuple[float, float], ...]:
    t0 = totals.t0 or 0.0
    return tuple((round(t - t0, 3), sum(j) / J_PER_KWH) for t, j in thin(totals.timeline))


def build_report(facts: RunFacts, accounting: Accounting, totals: TotalsView, sampler: SamplerView,
                 status: str, embodied: "EmbodiedSettings | None" = None) -> RunReport:
    """The report of a stopped run, with its hints. ``embodied``: the user's embodied-footprint settings
    (None: from the environment, see :mod:`carbonstep.accounting.embodied`)."""
    curve = curve_of(accounting, totals, facts.started_wall_s)
    t_end, joules = totals.latest or (0.0, (0.0, 0.0, 0.0))
    duration = t_end - totals.t0 if totals.t0 is not None else 0.0  # a clock may start at 0.0
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
            accounting.water_l(end_kwh - start_kwh), row.steps, row.count, getattr(row, "complete", None),
        ))
    devices = _devices(totals, sampler)
    warnings = list(facts.warnings)
    warnings += [f"{d.name} failed from {d.degraded_at_s:.1f} s ({d.first_error}); its energy after that is missing"
                 for d in devices if d.degraded_at_s is not None]
    warnings += facts.unavailable
    warnings += [text for text in (curve.outside_warning(),) if text]
    extra: dict[str, Any] = {"place": dict(facts.place)} if facts.place else {}
    extra["water"] = water_record(accounting)  # the grid water intensity's range and basis
    extra.update(run_context())  # the user and the Slurm job: `carbonstep usage` groups by them
    if facts.count_unit != "sample":
        extra["count_unit"] = facts.count_unit
    figures = (getattr(r, "figures", None) for r in totals.readers)  # the estimated CPU's reader has them
    estimate = next((f() for f in figures if callable(f)), None)
    if estimate:
        extra["cpu_estimate"] = estimate  # figure, range, source and basis of the estimated CPU
    report = with_hints(RunReport(
        run_id=facts.run_id, started_at=utc_iso(facts.started_wall_s), duration_s=duration, status=status,
        attribution=facts.attribution, host=host_name(), energy_kwh=total, energy_kwh_gpu=kwh[0],
        energy_kwh_cpu=kwh[1], energy_kwh_ram=kwh[2], facility_kwh=accounting.facility_kwh(total),
        co2_kg=curve.co2_kg(total, duration), water_l=accounting.water_l(total), pue=accounting.pue,
        wue_l_per_kwh=accounting.wue_l_per_kwh, water_intensity_l_per_kwh=accounting.water_intensity_l_per_kwh,
        intensity=intensity_record(accounting, curve.g_per_kwh_until(float("inf"))), methods=methods_of(devices),
        devices=devices, marks=marks, marks_stride=totals.mark_stride, epochs=tuple(epochs),
        timeline=_timeline(totals), warnings=tuple(dict.fromkeys(warnings)), wasted=status in ("failed", "interrupted"),
        name=facts.name, carbonstep_version=__version__, extra=extra,
    ))
    return with_embodied(report, embodied)


def with_embodied(report: RunReport, settings: "EmbodiedSettings | None" = None,
                  host: "Host | None" = None) -> RunReport:
    """``report`` with its ``embodied`` block (beside co2_kg, never in it). A fault here costs the block
    and adds one warning: it never loses the report."""
    from carbonstep.accounting.embodied import settings_from_environment
    from carbonstep.accounting.embodied_run import embodied_record

    try:
        settings = settings if settings is not None else settings_from_environment()
        record = embodied_record(report.devices, report.duration_s, report.attribution, report.co2_kg, settings,
                                 host)  # None: this machine's, read only if a server part is charged
    except Exception as exc:  # noqa: BLE001 - the embodied block is optional; the run's report is not
        return report.with_changes(warnings=(*report.warnings, f"embodied footprint left out: {exc}"))
    return report.with_changes(embodied=record)


def utc_iso(unix_s: float) -> str:
    """``unix_s`` as an ISO 8601 UTC time with milliseconds: what ``datetime.fromtimestamp(unix_s, timezone.utc)
    .isoformat(timespec="milliseconds")`` gives (microseconds rounded half to even, then truncated to
    milliseconds), without importing ``datetime``."""
    fraction, whole = math.modf(unix_s)
    micro = round(fraction * 1e6)
    seconds = int(whole)
    if micro >= 1_000_000:
        seconds, micro = seconds + 1, micro - 1_000_000
    elif micro < 0:
        seconds, micro = seconds - 1, micro + 1_000_000
    at = time.gmtime(seconds)
    return (f"{at.tm_year:04d}-{at.tm_mon:02d}-{at.tm_mday:02d}T{at.tm_hour:02d}:{at.tm_min:02d}:"
            f"{min(at.tm_sec, 59):02d}.{micro // 1000:03d}+00:00")


__all__ = ["RunFacts", "SamplerView", "TotalsView", "build_report", "interpolate", "methods_of", "thin",
           "with_embodied"]
