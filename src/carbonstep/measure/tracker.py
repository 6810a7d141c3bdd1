"""``Tracker``: the façade that wires readers → sampler → totals → accounting → report.

Its read-only records are in :mod:`~carbonstep.measure.view` (``Snapshot``, ``Tracker.view``), its stop path
(faults, closing, the report and where it is written) in :mod:`~carbonstep.measure.stopping`.
"""

from __future__ import annotations

import math
import os
import threading
import time
import weakref

from carbonstep.errors import CarbonstepError, ConfigError
from carbonstep.measure.view import Snapshot, TrackerView

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: `from carbonstep import Tracker` imports neither typing nor
if TYPE_CHECKING:  # dataclasses; the configuration loads at construction, the readers at start, the report at stop
    from pathlib import Path
    from types import TracebackType
    from typing import Any, Callable, Sequence

    from carbonstep.accounting.factors import Accounting
    from carbonstep.accounting.regions import Region
    from carbonstep.measure.config import TrackerConfig
    from carbonstep.measure.distributed import Place
    from carbonstep.measure.readers.base import Reader, Unavailable
    from carbonstep.measure.sampler import Sampler
    from carbonstep.measure.totals import EnergyTotals
    from carbonstep.report.record import Intensity, RunReport

RAPL_MAX_W = 1000.0  # upper bound on a package's power, to keep two reads within one wrap
STOP_WAIT_S = 10.0  # a second stop() (another thread) waits this long for the first one's report
_RUNNING: "weakref.WeakSet[Tracker]" = weakref.WeakSet()


def _forget_in_forked_child() -> None:
    """A forked child (a DataLoader worker) inherits running trackers: its marks go nowhere."""
    for tracker in list(_RUNNING):
        tracker._marking = None
    _RUNNING.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_forked_child)


class Tracker:
    """Measures the energy, carbon and water of this process (or a whole machine).

    ``with Tracker(region="FR") as t: ...`` or ``start()`` / ``stop()``. ``mark()`` is
    cheap enough for every training step. ``intensity`` (g CO2e/kWh, or a CSV time
    series path) overrides the region's table value. ``readers`` replaces hardware
    discovery (see :mod:`carbonstep.testing`); ``pid`` measures another process tree.
    ``place`` (:class:`~carbonstep.measure.distributed.Place`, default: from ``RANK``/``LOCAL_RANK``/Slurm
    variables) says which rank this is, so node-level sources are read once per node.
    ``count_unit`` names what ``mark(count=...)`` counts (samples, tokens…) in the hints.
    ``clock`` (monotonic seconds) and ``wall_clock`` (UNIX seconds) replace the system's clocks, for tests.
    The arguments are validated at once into a frozen :class:`~carbonstep.measure.config.TrackerConfig`
    (``config``); :meth:`from_config` builds a Tracker from one.
    """

    _marking: EnergyTotals | None = None  # the totals that mark() feeds: only while running, in this process
    _tree: Any = None  # the process tree the estimates read (its /proc files are closed at stop)
    _stop_claim: threading.Lock | None = None  # taken once, by the stop() that builds the report
    _stopped: threading.Event | None = None
    _stopping_thread: int | None = None
    _bad_count_seen = False  #: a mark(count=…) was left out (warned once)
    saved_path: Path | None = None  #: the report file stop() actually wrote (report_path, or the fallback); None

    def __init__(
        self,
        region: str | None = None,
        pue: float | None = None,
        wue: float | None = None,
        intensity: float | str | os.PathLike[str] | None = None,
        interval_s: float = 5.0,  # config.DEFAULT_INTERVAL_S (not imported with the class)
        attribution: str = "process",
        output_dir: str | os.PathLike[str] | None = None,
        *,
        water_intensity_l_per_kwh: float | None = None,
        readers: Sequence[Reader] | None = None,
        pid: int | None = None,
        name: str | None = None,
        place: Place | None = None,
        count_unit: str = "sample",
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        from carbonstep.measure.config import tracker_config

        config = tracker_config(region, pue, wue, intensity, interval_s, attribution, output_dir,
                                water_intensity_l_per_kwh=water_intensity_l_per_kwh, pid=pid, name=name,
                                place=place, count_unit=count_unit, clock=clock, wall_clock=wall_clock)
        self._setup(config, readers)

    @classmethod
    def from_config(cls, config: TrackerConfig, readers: Sequence[Reader] | None = None) -> "Tracker":
        """A Tracker for an already validated configuration."""
        tracker = cls.__new__(cls)
        tracker._setup(config, readers)
        return tracker

    def _setup(self, config: TrackerConfig, readers: Sequence[Reader] | None) -> None:
        self.config = config
        self._given_readers = list(readers) if readers is not None else None
        self.warnings: list[str] = list(config.warnings)
        self.run_id = os.urandom(6).hex()
        self.place: Place | None = config.place
        self.unavailable: list[Unavailable] = []
        self._readers: list[Reader] = []
        self._totals: EnergyTotals | None = None
        self._sampler: Sampler | None = None
        self._started_wall = 0.0
        self._report: RunReport | None = None
        self._owner_pid = os.getpid()

    # -- configuration, read-only -------------------------------------------------------
    @property
    def accounting(self) -> Accounting:
        """PUE, WUE, water and carbon intensity this run is charged with."""
        return self.config.accounting

    @property
    def region(self) -> Region | None:
        """The region of the intensity table in use or named (None for an unnamed constant or series)."""
        return self.config.accounting.intensity.region

    @property
    def pue(self) -> float:
        """Power usage effectiveness of the facility."""
        return self.config.accounting.pue

    @property
    def wue(self) -> float:
        """The site's water usage effectiveness (L/kWh)."""
        return self.config.accounting.wue_l_per_kwh

    @property
    def water_intensity(self) -> float:
        """Litres consumed per kWh generated on the grid."""
        return self.config.accounting.water_intensity_l_per_kwh

    @property
    def attribution(self) -> str:
        """"process" or "machine"."""
        return self.config.attribution

    @property
    def interval_s(self) -> float:
        """Seconds between samples (as asked; the sampler may use less, see the report's warnings)."""
        return self.config.interval_s

    @property
    def output_dir(self) -> Path | None:
        """Where ``stop()`` writes the report; None: not written."""
        return self.config.output_dir

    @property
    def name(self) -> str | None:
        """The run's name in the report."""
        return self.config.name

    @property
    def devices(self) -> list[tuple[str, str, str]]:
        """(name, domain, method) of each source being read (empty before ``start()``)."""
        return [(r.name, r.domain.value, r.method.value) for r in self._readers]

    @property
    def view(self) -> TrackerView:
        """A live, read-only view of what this Tracker holds (readers, totals, sampler, interval in use, report…)."""
        return TrackerView(self)

    # -- lifecycle ----------------------------------------------------------------------
    def start(self, place: Place | None = None, run_id: str | None = None) -> "Tracker":
        """Find the devices, take a first sample and start the sampler thread.

        ``place`` and ``run_id`` join the Tracker to a job (a rank's place, the job's run id, as agreed by
        :func:`~carbonstep.measure.distributed.job_place`); a ``place`` given to the constructor wins.
        """
        if self._report is not None:
            raise CarbonstepError("this Tracker has stopped; a Tracker measures one run: create a new one")
        if self._sampler is not None:
            return self
        from carbonstep.measure.distributed import environment_place

        self.place = self.place or place or environment_place()
        self.run_id = run_id or self.run_id
        if self._given_readers is not None:
            self._readers = list(self._given_readers)
        else:
            from carbonstep.measure.readers import discover

            found = discover(self.attribution, self.config.pid, place=self.place)
            self._readers, self.unavailable, self._tree = found.readers, found.unavailable, found.tree
            self.warnings += found.warnings
        self._leave_node_sources_to_leader()
        self._owner_pid = os.getpid()
        from carbonstep.measure.sampler import Sampler
        from carbonstep.measure.totals import EnergyTotals

        interval = self._safe_interval()
        self._totals = EnergyTotals(self._readers, clock=self.config.clock)
        self._sampler = Sampler(self._readers, self._totals.ingest, interval, clock=self.config.clock)
        self._started_wall = self.config.wall_clock()
        self._stop_claim, self._stopped = threading.Lock(), threading.Event()
        self._sampler.start()
        self._marking = self._totals
        _RUNNING.add(self)
        return self

    def _leave_node_sources_to_leader(self) -> None:
        """Drop node-level sources unless this process is its node's leader: each node counted once."""
        from carbonstep.measure.readers.base import Scope, Unavailable

        place = self.place
        if place is None or place.node_leader:
            return
        for reader in [r for r in self._readers if Scope(getattr(r, "scope", Scope.PROCESS)) is Scope.NODE]:
            self._readers.remove(reader)
            reader.close()
            self.unavailable.append(Unavailable(
                reader.name, f"node-level source, counted once per node by its leader process (local rank 0 on "
                f"{place.host}), not by rank {place.rank}"))

    def _safe_interval(self) -> float:
        wraps = [r.wrap_j for r in self._readers if r.wrap_j]
        limit = min(wraps) / RAPL_MAX_W / 2 if wraps else float("inf")
        if self.interval_s > limit:
            self.warnings.append(f"interval_s lowered from {self.interval_s:g} to {limit:.3g} s so that a RAPL "
                                 "counter cannot wrap twice between two reads")
            return limit
        return self.interval_s

    def mark(self, name: str = "step", step: int | None = None, epoch: int | None = None,
             count: float | None = None) -> None:
        """Record a point in the run (no hardware read, no lock; about a microsecond). Ignored once stopped. A
        ``count`` that is not a finite number ≥ 0 is left out, with one warning in the report; the run goes on."""
        totals = self._marking
        if totals is not None:
            if count is not None:
                count = self._usable_count(count)
            totals.pending.append((name, step, epoch, count, totals.clock()))

    def _usable_count(self, count: Any) -> float | None:
        try:
            number = float(count)
        except (TypeError, ValueError, OverflowError):
            number = math.nan
        if isinstance(count, bool) or not 0 <= number < math.inf:
            if not self._bad_count_seen:
                from carbonstep.validate import shown

                self._bad_count_seen = True
                self.warnings.append(f"mark(count={shown(count)}) and later such counts were left out: count "
                                     f"must be a finite number ≥ 0 (of {self.config.count_unit}s)")
            return None
        return number

    def list_processes_again(self) -> None:
        """Make the next sample list the measured process tree again (it is listed every few seconds).

        A child started after ``start()`` enters the totals with all its CPU time from its first instant once
        listed; call this right after starting one, so that the timeline shows it from the next sample.
        """
        if self._tree is not None:
            self._tree.expire_listing()

    def snapshot(self, refresh: bool = True) -> Snapshot:
        """Cumulative totals so far; ``refresh`` takes a fresh sample first."""
        totals, sampler = self._require_started()
        if refresh and sampler.running:
            sampler.poll()
        joules = totals.latest[1] if totals.latest is not None else (0.0, 0.0, 0.0)
        return self._snapshot(totals.duration_s, joules)

    def _snapshot(self, duration_s: float, joules: tuple[float, float, float]) -> Snapshot:
        from carbonstep.accounting.footprint import J_PER_KWH

        kwh = [j / J_PER_KWH for j in joules]
        total = sum(kwh)
        accounting = self.config.accounting
        return Snapshot(duration_s, total, kwh[0], kwh[1], kwh[2], accounting.facility_kwh(total),
                        accounting.co2_kg(total, self._g_per_kwh(duration_s)), accounting.water_l(total))

    def stop(self, status: str = "completed") -> RunReport:
        """Stop measuring and return the report (idempotent: later calls return the same one).

        Bounded: the sampler's last read is waited for at most a few seconds (a hung device is named in the
        report, its energy kept up to its last good read). Two threads stopping at once get the same report.
        """
        if self._report is not None:
            return self._report
        totals, sampler = self._require_started()
        if os.getpid() != self._owner_pid:
            raise CarbonstepError(f"this Tracker was started in process {self._owner_pid}; process {os.getpid()} "
                                  "is a forked copy (a DataLoader worker?) and cannot stop it")
        assert self._stop_claim is not None and self._stopped is not None
        if not self._stop_claim.acquire(blocking=False):
            return self._report_of_the_first_stop()
        self._stopping_thread = threading.get_ident()
        from carbonstep.measure import stopping

        try:
            self._marking = None
            _RUNNING.discard(self)
            if self._tree is not None:
                self._tree.expire_listing()  # the last sample counts children reaped since the last listing
            sampler.stop()
            stopping.note_faults(totals, sampler, self.warnings)
            stopping.close_sources(self._readers, self._tree, sampler)
            self._report = stopping.build_report(
                (self.run_id, self._started_wall, self.attribution, self.name, self.config.count_unit), self.place,
                self.warnings, self.unavailable, self.config.accounting, totals, sampler, status,
                self.config.embodied)
        finally:
            self._stopped.set()
        if self.config.output_dir is not None:
            self.saved_path = stopping.write_report(self._report, self.report_path)
        return self._report

    def _report_of_the_first_stop(self) -> RunReport:
        assert self._stopped is not None
        if self._stopping_thread == threading.get_ident():
            raise CarbonstepError("stop() was called again while this thread is stopping the Tracker (from a signal "
                                  "handler?): the first call returns the report")
        if not self._stopped.wait(STOP_WAIT_S) or self._report is None:
            raise CarbonstepError(f"another thread's stop() gave no report within {STOP_WAIT_S:g} s")
        return self._report

    @property
    def report_path(self) -> Path:
        """Where ``stop()`` writes the report: ``output_dir``/carbonstep-<run id>.json, or, for one rank of several
        (``place``: torch.distributed, torchrun or Slurm variables), carbonstep-<run id>-rank<N>.json."""
        from carbonstep.measure.stopping import report_path

        return report_path(self.config.output_dir, self.run_id, self.place)

    @property
    def running(self) -> bool:
        """Measuring: started, not stopping or stopped, and this is the process that started it (not a fork)."""
        return self._marking is not None and os.getpid() == self._owner_pid

    def __getstate__(self) -> dict[str, Any]:
        """A Tracker that has started holds threads and open devices: it cannot be pickled."""
        if self._sampler is not None:
            raise ConfigError("a started Tracker cannot be pickled (e.g. passed to a spawned process): "
                              "create the Tracker in the process that trains, or pass its settings instead")
        return self.__dict__.copy()

    def __enter__(self) -> "Tracker":
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if kind is None:
            self.stop()
        else:
            self.stop("interrupted" if issubclass(kind, KeyboardInterrupt) else "failed")

    def _require_started(self) -> tuple[EnergyTotals, Sampler]:
        if self._totals is None or self._sampler is None:
            raise CarbonstepError("the Tracker has not started: call start() or use 'with Tracker(...)'")
        return self._totals, self._sampler

    # -- accounting ---------------------------------------------------------------------
    def _g_per_kwh(self, upto_s: float = float("inf")) -> float:
        """The intensity in use; for a time series, energy-weighted from the start to ``upto_s``."""
        source = self.config.accounting.intensity
        fixed = source.fixed_g_per_kwh
        if fixed is not None:
            return fixed
        if self._totals is None:
            return source.at(self.config.wall_clock())
        from carbonstep.report.builder import curve_of

        return curve_of(self.config.accounting, self._totals, self._started_wall).g_per_kwh_until(upto_s)

    def intensity(self) -> Intensity:
        """The intensity in use so far and where it comes from (as the report records it)."""
        from carbonstep.report.builder import intensity_record

        return intensity_record(self.config.accounting, self._g_per_kwh())


__all__ = ["Snapshot", "Tracker"]
