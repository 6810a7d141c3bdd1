"""``Tracker``: the façade that wires readers → sampler → totals → accounting → report."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Sequence

from carbonstep.accounting import footprint, regions
from carbonstep.accounting.footprint import DEFAULT_WATER_L_PER_KWH, J_PER_KWH, check_factor
from carbonstep.errors import CarbonstepError, ConfigError

if TYPE_CHECKING:  # imported when a tracker starts or stops, to keep `import carbonstep` light
    from carbonstep.measure.distributed import Place
    from carbonstep.measure.readers.base import Reader, Unavailable
    from carbonstep.measure.sampler import Sampler
    from carbonstep.measure.totals import EnergyTotals
    from carbonstep.report.record import Intensity, RunReport

log = logging.getLogger("carbonstep")
logging.getLogger("carbonstep").addHandler(logging.NullHandler())

RAPL_MAX_W = 1000.0  # upper bound on a package's power, to keep two reads within one wrap
ATTRIBUTIONS = ("process", "machine")


@dataclass(frozen=True)
class Snapshot:
    """Cumulative totals so far (``Tracker.snapshot()``)."""

    duration_s: float
    energy_kwh: float
    energy_kwh_gpu: float
    energy_kwh_cpu: float
    energy_kwh_ram: float
    facility_kwh: float
    co2_kg: float
    water_l: float

    @property
    def power_w(self) -> float:
        return self.energy_kwh * J_PER_KWH / self.duration_s if self.duration_s > 0 else 0.0

    def metrics(self) -> dict[str, float]:
        """The metric names every sink and callback uses."""
        return {
            "energy_kwh": self.energy_kwh, "co2_kg": self.co2_kg, "water_l": self.water_l,
            "energy_kwh_gpu": self.energy_kwh_gpu, "energy_kwh_cpu": self.energy_kwh_cpu,
            "energy_kwh_ram": self.energy_kwh_ram, "power_w": self.power_w,
        }


def _env_float(name: str) -> str | None:
    return os.environ.get(name) or None


class Tracker:
    """Measures the energy, carbon and water of this process (or a whole machine).

    ``with Tracker(region="FR") as t: ...`` or ``start()`` / ``stop()``. ``mark()`` is
    cheap enough for every training step. ``intensity`` (g CO2e/kWh, or a CSV time
    series path) overrides the region's table value. ``readers`` replaces hardware
    discovery (see :mod:`carbonstep.testing`); ``pid`` measures another process tree.
    ``place`` (:class:`~carbonstep.measure.distributed.Place`, default: from ``RANK``/``LOCAL_RANK``/Slurm
    variables) says which rank this is, so node-level sources are read once per node.
    ``count_unit`` names what ``mark(count=...)`` counts (samples, tokens…) in the hints.
    """

    def __init__(
        self,
        region: str | None = None,
        pue: float | None = None,
        wue: float | None = None,
        intensity: float | str | os.PathLike[str] | None = None,
        interval_s: float = 1.0,
        attribution: str = "process",
        output_dir: str | os.PathLike[str] | None = None,
        *,
        water_intensity_l_per_kwh: float | None = None,
        readers: Sequence[Reader] | None = None,
        pid: int | None = None,
        name: str | None = None,
        place: Place | None = None,
        count_unit: str = "sample",
    ) -> None:
        if attribution not in ATTRIBUTIONS:
            raise ConfigError(f"attribution must be 'process' or 'machine', got {attribution!r}")
        self.pue = check_factor("pue", pue if pue is not None else _env_float("CARBONSTEP_PUE") or 1.0, 1.0,
                                "power usage effectiveness, 1.0 = no overhead; CARBONSTEP_PUE")
        self.wue = check_factor("wue", wue if wue is not None else _env_float("CARBONSTEP_WUE") or 0.0, 0.0,
                                "site water usage effectiveness in L/kWh; CARBONSTEP_WUE")
        self.water_intensity = check_factor(
            "water_intensity_l_per_kwh",
            DEFAULT_WATER_L_PER_KWH if water_intensity_l_per_kwh is None else water_intensity_l_per_kwh,
            0.0, "litres consumed per kWh generated")
        self.interval_s = check_factor("interval_s", interval_s, 1e-3, "seconds between samples")
        self.attribution = attribution
        self.output_dir = Path(output_dir) if output_dir is not None else None
        self.name = name
        self.pid = pid
        self.place = place
        self.count_unit = count_unit
        self._given_readers = list(readers) if readers is not None else None
        self.warnings: list[str] = []
        self.region, self._series, self._constant, chosen = self._resolve_intensity(region, intensity)
        self._chosen_by = chosen
        self.run_id = os.urandom(6).hex()
        self.unavailable: list[Unavailable] = []
        self._readers: list[Reader] = []
        self._totals: EnergyTotals | None = None
        self._sampler: Sampler | None = None
        self._started_wall = 0.0
        self._report: RunReport | None = None
        self._owner_pid = os.getpid()

    def _resolve_intensity(self, region: str | None, intensity: Any) -> tuple[Any, Any, float | None, str]:
        if intensity is None:
            found, chosen, warnings = regions.resolve(region)
            self.warnings += warnings
            return found, None, None, chosen
        found = regions.lookup(region) if region else None
        if isinstance(intensity, (str, os.PathLike)) and not _is_number(intensity):
            from carbonstep.accounting.timeseries import read_series

            return found, read_series(intensity), None, "time series"
        value = check_factor("intensity", intensity, 0.0, "grid carbon intensity in g CO2e/kWh, or a CSV path")
        return found, None, value, "constant"

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> "Tracker":
        """Find the devices, take a first sample and start the sampler thread."""
        if self._report is not None:
            raise CarbonstepError("this Tracker has stopped; a Tracker measures one run: create a new one")
        if self._sampler is not None:
            return self
        from carbonstep.measure.distributed import environment_place

        self.place = self.place or environment_place()
        if self._given_readers is not None:
            self._readers = list(self._given_readers)
        else:
            from carbonstep.measure.readers import discover

            found = discover(self.attribution, self.pid, place=self.place)
            self._readers, self.unavailable = found.readers, found.unavailable
            self.warnings += found.warnings
        self._leave_node_sources_to_leader()
        self._owner_pid = os.getpid()
        from carbonstep.measure.sampler import Sampler
        from carbonstep.measure.totals import EnergyTotals

        interval = self._safe_interval()
        self._totals = EnergyTotals(self._readers)
        self._sampler = Sampler(self._readers, self._totals.ingest, interval)
        self._started_wall = time.time()
        self._sampler.start()
        return self

    def _leave_node_sources_to_leader(self) -> None:
        """Drop node-level sources unless this process is its node's leader: each node counted once."""
        from carbonstep.measure.readers.base import Scope, Unavailable

        if self.place.node_leader:
            return
        for reader in [r for r in self._readers if Scope(getattr(r, "scope", Scope.PROCESS)) is Scope.NODE]:
            self._readers.remove(reader)
            reader.close()
            self.unavailable.append(Unavailable(
                reader.name, f"node-level source, counted once per node by its leader process (local rank 0 on "
                f"{self.place.host}), not by rank {self.place.rank}"))

    def _safe_interval(self) -> float:
        wraps = [r.wrap_j for r in self._readers if r.wrap_j]
        limit = min(wraps) / RAPL_MAX_W / 2 if wraps else float("inf")
        if self.interval_s > limit:
            self.warnings.append(f"interval_s lowered from {self.interval_s:g} to {limit:.0f} s so that a RAPL "
                                 "counter cannot wrap twice between two reads")
            return limit
        return self.interval_s

    def mark(self, name: str = "step", step: int | None = None, epoch: int | None = None,
             count: float | None = None) -> None:
        """Record a point in the run (no hardware read, no lock; about a microsecond)."""
        totals = self._totals
        if totals is not None:
            totals.pending.append((name, step, epoch, count, totals.clock()))

    def snapshot(self, refresh: bool = True) -> Snapshot:
        """Cumulative totals so far; ``refresh`` takes a fresh sample first."""
        totals, sampler = self._require_started()
        if refresh and sampler.running:
            sampler.poll()
        t, joules = totals.latest or (0.0, (0.0, 0.0, 0.0))
        duration = t - (totals.t0 or t)
        return self._snapshot(duration, joules)

    def _snapshot(self, duration_s: float, joules: tuple[float, float, float]) -> Snapshot:
        kwh = [j / J_PER_KWH for j in joules]
        total = sum(kwh)
        return Snapshot(duration_s, total, kwh[0], kwh[1], kwh[2], footprint.facility_kwh(total, self.pue),
                        self._co2_kg(total, duration_s), self._water_l(total))

    def stop(self, status: str = "completed") -> RunReport:
        """Stop measuring and return the report (idempotent: later calls return the same one)."""
        if self._report is not None:
            return self._report
        totals, sampler = self._require_started()
        if os.getpid() != self._owner_pid:
            raise CarbonstepError(f"this Tracker was started in process {self._owner_pid}; process {os.getpid()} "
                                  "is a forked copy (a DataLoader worker?) and cannot stop it")
        sampler.stop()
        for reader in self._readers:
            try:
                reader.close()
            except Exception:  # noqa: BLE001 - closing must not hide the report
                log.debug("carbonstep: closing %s failed", reader.name, exc_info=True)
        self._report = self._build_report(totals, sampler, status)
        if self.output_dir is not None:
            self._report.save(self.report_path)
        return self._report

    @property
    def report_path(self) -> Path:
        """Where ``stop()`` writes the report (``output_dir``/carbonstep-<run id>.json)."""
        return (self.output_dir or Path.cwd()) / f"carbonstep-{self.run_id}.json"

    @property
    def running(self) -> bool:
        return self._sampler is not None and self._report is None and os.getpid() == self._owner_pid

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
        if self._constant is not None:
            return self._constant
        if self._series is None:
            return self.region.g_per_kwh
        if self._totals is None:
            return self._series.at(time.time())
        from carbonstep.report.builder import CarbonCurve

        return CarbonCurve.of(self, self._totals).g_per_kwh_until(upto_s)

    def _co2_kg(self, kwh: float, upto_s: float = float("inf")) -> float:
        return footprint.co2_kg(kwh, self.pue, self._g_per_kwh(upto_s))

    def _water_l(self, kwh: float) -> float:
        return footprint.water_l(kwh, self.pue, self.wue, self.water_intensity)

    def _intensity_record(self) -> Intensity:
        from carbonstep.report.record import Intensity

        region = self.region
        if self._series is not None:
            note = f" ({self._series.unit_note})" if self._series.unit_note else ""
            return Intensity(self._g_per_kwh(), region.code if region else None,
                             region.name if region else "time series", f"time series {self._series.source}{note}",
                             None, "user", "", "time series, energy-weighted over the run")
        if self._constant is not None:
            return Intensity(self._constant, region.code if region else None,
                             region.name if region else "unspecified", "constant given by the user", None,
                             "user", "", "constant")
        return Intensity(region.g_per_kwh, region.code, region.name, region.source, region.year,
                         region.basis, region.licence, self._chosen_by)

    def _build_report(self, totals: EnergyTotals, sampler: Sampler, status: str) -> RunReport:
        from carbonstep.report.builder import build_report

        return build_report(self, totals, sampler, status)


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def utc_iso(unix_s: float) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(unix_s, tz=timezone.utc).isoformat(timespec="milliseconds")


def host_name() -> str:
    import socket

    return socket.gethostname()


__all__ = ["Snapshot", "Tracker"]
