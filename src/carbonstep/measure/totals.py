"""Cumulative energy per device, a bounded timeline, and marks resolved against it.

Fed by the sampler (one :class:`~carbonstep.measure.sampler.Sample` at a time). ``mark()`` is the
hot path of every training step: it appends a tuple to a deque and returns; marks are
placed on the energy curve by interpolation when the next sample arrives.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

from carbonstep.measure.readers.base import Reader, counter_delta
from carbonstep.measure.sampler import Sample
from carbonstep.vocabulary import DOMAINS, Domain, Kind

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: a run imports no typing
if TYPE_CHECKING:
    from typing import Callable, Sequence

MAX_PENDING_MARKS = 100_000  # marks waiting for a sample (a stuck sampler): beyond this the oldest are dropped
Vector = tuple[float, float, float]  # joules for (gpu, cpu, ram)


@dataclass(frozen=True, slots=True)
class ResolvedMark:
    name: str
    step: int | None
    epoch: int | None
    count: float | None
    t_s: float  #: seconds since the tracker started
    energy_j: Vector  #: cumulative joules per domain at the mark


@dataclass(slots=True)
class EpochTotals:
    epoch: int
    start_s: float
    end_s: float
    start_j: Vector
    end_j: Vector
    steps: int = 0
    count: float = 0.0
    complete: bool = False  #: an ``epoch_end`` mark closed it


def _lerp(t: float, t0: float, v0: Vector, t1: float, v1: Vector) -> Vector:
    if t1 <= t0 or t >= t1:
        return v1
    if t <= t0:
        return v0
    f = (t - t0) / (t1 - t0)
    return (v0[0] + f * (v1[0] - v0[0]), v0[1] + f * (v1[1] - v0[1]), v0[2] + f * (v1[2] - v0[2]))


class EnergyTotals:
    """Turns samples into cumulative joules per reader and per domain."""

    def __init__(
        self,
        readers: Sequence[Reader],
        max_points: int = 4096,
        max_marks: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.readers = tuple(readers)
        self.clock = clock
        self.t0: float | None = None
        self.joules = [0.0] * len(self.readers)
        self.degraded_at: list[float | None] = [None] * len(self.readers)
        self._domain_index = [DOMAINS.index(r.domain) for r in self.readers]
        self._domain_j = [0.0, 0.0, 0.0]  # joules per domain, kept up to date with ``joules``
        self._last_t = [0.0] * len(self.readers)  # per reader: time and value of its last good read
        self._last_value: list[float | None] = [None] * len(self.readers)
        # per reader: None for power, else the counter's wrap in joules (0.0: none)
        self._counter_wraps = [(r.wrap_j or 0.0) if r.kind is Kind.COUNTER else None for r in self.readers]
        self._gpu_util = [(i, r) for i, r in enumerate(self.readers) if r.domain is Domain.GPU]
        self.utilisation = {r.name: [0.0, 0.0, 0.0] for _, r in self._gpu_util}  # weighted sum, seconds, idle s
        self.max_points = max_points
        self.timeline: list[tuple[float, Vector]] = []
        self._point_stride = 1
        self._points_to_skip = 0  # samples to pass over before the next timeline point
        self.latest: tuple[float, Vector] | None = None
        self.pending: deque[tuple[str, int | None, int | None, float | None, float]] = deque(
            maxlen=MAX_PENDING_MARKS)
        self.marks_dropped = False  #: the pending queue was full once: its oldest marks were lost
        self.max_marks = max_marks
        self.marks: list[ResolvedMark] = []
        self.mark_stride = 1
        self._marks_seen = 0
        self.epochs: dict[int, EpochTotals] = {}
        self._last_epoch: EpochTotals | None = None

    def elapsed_s(self, t: float) -> float:
        """Seconds from the first sample to ``t`` (0 before any sample; a clock may start at 0.0)."""
        return t - self.t0 if self.t0 is not None else 0.0

    @property
    def duration_s(self) -> float:
        """Seconds from the first sample to the latest."""
        return self.elapsed_s(self.latest[0]) if self.latest is not None else 0.0

    # -- hot path -------------------------------------------------------------------------
    def mark(self, name: str, step: int | None, epoch: int | None, count: float | None) -> None:
        self.pending.append((name, step, epoch, count, self.clock()))

    # -- sampler side ---------------------------------------------------------------------
    def ingest(self, sample: Sample) -> None:
        """Add one sample (the sampler thread's only call here).

        It runs cold every time (the thread slept since the last one), so it is kept to few kinds of
        operation: an index loop over flat lists, no per-reader tuples, no helper calls on the common path.
        """
        t, values = sample
        if self.t0 is None:
            self.t0 = t
        last_t, last_value, joules, domain_j = self._last_t, self._last_value, self.joules, self._domain_j
        wraps, domains = self._counter_wraps, self._domain_index
        i = 0
        for value in values:
            before = last_value[i]
            if value is None or before is None:
                self._ingest_value(i, t, value)  # the rare paths: a failed read, the first read
            else:
                wrap = wraps[i]
                if wrap is None:  # power: trapezoid
                    j = (value + before) / 2 * (t - last_t[i])
                elif value >= before:
                    j = value - before
                else:
                    j = counter_delta(before, value, wrap or None)
                joules[i] += j
                domain_j[domains[i]] += j
                last_t[i] = t
                last_value[i] = value
            i += 1
        previous = self.latest
        self.latest = point = (t, (domain_j[0], domain_j[1], domain_j[2]))
        self._points_to_skip -= 1
        if self._points_to_skip < 0:  # every ``_point_stride``-th sample becomes a timeline point
            self._points_to_skip = self._point_stride - 1
            self.timeline.append(point)
            if len(self.timeline) > self.max_points:
                self._thin_timeline()
        if self._gpu_util:
            self._record_utilisation(t, previous)
        if self.pending:
            self._resolve_marks(previous)

    def _ingest_value(self, i: int, t: float, value: float | None) -> None:
        if value is None:
            if self.degraded_at[i] is None:
                self.degraded_at[i] = self.elapsed_s(t)
            return
        before = self._last_value[i]
        if before is not None:
            reader = self.readers[i]
            if reader.kind is Kind.COUNTER:
                j = counter_delta(before, value, reader.wrap_j)
            else:
                j = (value + before) / 2 * (t - self._last_t[i])
            self.joules[i] += j
            self._domain_j[self._domain_index[i]] += j
        self._last_t[i] = t
        self._last_value[i] = value

    def domain_joules(self) -> Vector:
        """Cumulative joules per domain (gpu, cpu, ram)."""
        domain_j = self._domain_j
        return (domain_j[0], domain_j[1], domain_j[2])

    def _thin_timeline(self) -> None:
        """Keep memory bounded: halve the timeline's resolution (every other point, then every other sample)."""
        self.timeline = self.timeline[::2]
        self._point_stride *= 2
        self._points_to_skip = self._point_stride - 1

    def _record_utilisation(self, t: float, previous: tuple[float, Vector] | None) -> None:
        if previous is None:
            return
        dt = t - previous[0]
        for _, reader in self._gpu_util:
            pct = getattr(reader, "last_utilisation_pct", None)
            if pct is None:
                continue
            stats = self.utilisation[reader.name]
            stats[0] += pct * dt
            stats[1] += dt
            stats[2] += dt if pct < 10 else 0.0

    def _resolve_marks(self, previous: tuple[float, Vector] | None) -> None:
        assert self.latest is not None and self.t0 is not None
        t1, v1 = self.latest
        t0, v0 = previous if previous is not None else self.latest
        if len(self.pending) == self.pending.maxlen:
            self.marks_dropped = True
        while self.pending and self.pending[0][4] <= t1:
            name, step, epoch, count, t = self.pending.popleft()
            energy = _lerp(t, t0, v0, t1, v1)
            self._add_mark(ResolvedMark(name, step, epoch, count, t - self.t0, energy))

    def _add_mark(self, mark: ResolvedMark) -> None:
        if mark.epoch is not None:
            self._add_to_epoch(mark)
        self._marks_seen += 1
        if self._marks_seen % self.mark_stride:
            return
        self.marks.append(mark)
        if len(self.marks) > self.max_marks:  # keep memory bounded: keep every other mark
            self.marks = self.marks[::2]
            self.mark_stride *= 2

    def _add_to_epoch(self, mark: ResolvedMark) -> None:
        row = self.epochs.get(mark.epoch)  # type: ignore[arg-type]
        if row is None:
            before = self._last_epoch
            start_s, start_j = (before.end_s, before.end_j) if before else (0.0, (0.0, 0.0, 0.0))
            row = EpochTotals(mark.epoch, start_s, mark.t_s, start_j, mark.energy_j)  # type: ignore[arg-type]
            self.epochs[mark.epoch] = row  # type: ignore[index]
        row.end_s, row.end_j = mark.t_s, mark.energy_j
        row.steps += mark.name == "step"
        row.count += mark.count or 0.0
        row.complete = row.complete or mark.name == "epoch_end"
        self._last_epoch = row
