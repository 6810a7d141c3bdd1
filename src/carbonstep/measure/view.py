"""Read-only records of a Tracker: :class:`Snapshot` (its totals so far) and :class:`TrackerView` (its state).

Both import no ``typing`` and no ``dataclasses``: ``from carbonstep import Tracker`` stays cheap.
"""

from __future__ import annotations

from collections import namedtuple

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: see measure/tracker.py
if TYPE_CHECKING:
    from typing import Any

    from carbonstep.measure.config import TrackerConfig
    from carbonstep.measure.distributed import Place
    from carbonstep.measure.readers.base import Reader, Unavailable
    from carbonstep.measure.sampler import Sampler
    from carbonstep.measure.totals import EnergyTotals
    from carbonstep.report.record import RunReport


class Snapshot(namedtuple("Snapshot", ["duration_s", "energy_kwh", "energy_kwh_gpu", "energy_kwh_cpu",
                                       "energy_kwh_ram", "facility_kwh", "co2_kg", "water_l"])):
    """Cumulative totals so far (``Tracker.snapshot()``), floats: ``duration_s``, ``energy_kwh`` (and its ``_gpu``,
    ``_cpu``, ``_ram`` parts), ``facility_kwh``, ``co2_kg``, ``water_l``. Immutable (a named tuple, which
    imports less than a frozen dataclass)."""

    __slots__ = ()

    @property
    def power_w(self) -> float:
        """Average power over the run so far."""
        from carbonstep.accounting.footprint import J_PER_KWH

        return self.energy_kwh * J_PER_KWH / self.duration_s if self.duration_s > 0 else 0.0

    def metrics(self) -> dict[str, float]:
        """The metric names every sink and callback uses."""
        return {
            "energy_kwh": self.energy_kwh, "co2_kg": self.co2_kg, "water_l": self.water_l,
            "energy_kwh_gpu": self.energy_kwh_gpu, "energy_kwh_cpu": self.energy_kwh_cpu,
            "energy_kwh_ram": self.energy_kwh_ram, "power_w": self.power_w,
        }


class TrackerView:
    """What a Tracker holds, read-only and live (``Tracker.view``): for tests, diagnostics and integrations.

    Each property reads the Tracker's state at the time of the call; none can be assigned. The objects it hands
    out (``totals``, ``sampler``) are the Tracker's own, for reading: changing them changes the run.
    """

    __slots__ = ("_tracker",)
    _tracker: Any  # the Tracker (this module sits below measure.tracker in the layers: it cannot import it)

    def __init__(self, tracker: Any) -> None:
        object.__setattr__(self, "_tracker", tracker)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"TrackerView is read-only: cannot set {name!r}")

    def __repr__(self) -> str:
        state = "stopped" if self.report is not None else "running" if self.running else \
            "started" if self.sampler is not None else "not started"
        return f"<TrackerView run {self.run_id}: {state}, {len(self.readers)} reader(s)>"

    @property
    def config(self) -> TrackerConfig:
        """The validated configuration."""
        return self._tracker.config

    @property
    def run_id(self) -> str:
        """The run's id (the job's, once ``start(run_id=...)`` joined one)."""
        return self._tracker.run_id

    @property
    def place(self) -> Place | None:
        """This process's rank and node (None before ``start()`` unless given)."""
        return self._tracker.place

    @property
    def readers(self) -> tuple[Reader, ...]:
        """The sources being read (empty before ``start()``)."""
        return tuple(self._tracker._readers)

    @property
    def unavailable(self) -> tuple[Unavailable, ...]:
        """The sources found but not read, each with its reason."""
        return tuple(self._tracker.unavailable)

    @property
    def warnings(self) -> tuple[str, ...]:
        """The warnings so far, as the report will carry them."""
        return tuple(self._tracker.warnings)

    @property
    def totals(self) -> EnergyTotals | None:
        """The cumulative totals, timeline and pending marks (None before ``start()``)."""
        return self._tracker._totals

    @property
    def sampler(self) -> Sampler | None:
        """The sampler thread's controller (None before ``start()``)."""
        return self._tracker._sampler

    @property
    def interval_s(self) -> float | None:
        """Seconds between samples in use: the asked interval, or less (a RAPL counter's wrap); None before
        ``start()``."""
        sampler = self._tracker._sampler
        return sampler.interval_s if sampler is not None else None

    @property
    def started_wall(self) -> float | None:
        """UNIX time of ``start()`` (the configuration's wall clock), None before it."""
        return self._tracker._started_wall if self._tracker._sampler is not None else None

    @property
    def report(self) -> RunReport | None:
        """The report, once ``stop()`` has built it (None before)."""
        return self._tracker._report

    @property
    def running(self) -> bool:
        """As ``Tracker.running``: measuring, in the process that started it."""
        return self._tracker.running


__all__ = ["Snapshot", "TrackerView"]
