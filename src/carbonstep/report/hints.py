"""Efficiency hints from a report: idle GPUs, energy a crash wasted, energy per sample, equivalents.

Each hint is a pure function of the report, so a saved report gives the same hints later
(``carbonstep report``). Thresholds and equivalence factors are constants below, with sources.
"""

from __future__ import annotations

from carbonstep._record import NamedTuple
from carbonstep.accounting.footprint import J_PER_KWH
from carbonstep.report.formatting import format_energy, format_joules, format_mass, format_quantity, format_volume
from carbonstep.report.record import RunReport

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: a run imports no typing
if TYPE_CHECKING:
    from typing import Any

IDLE_UTILISATION_PCT = 10  #: a GPU under this utilisation counts as idle (the tracker's threshold)
IDLE_SHARE = 0.5  #: hint when a GPU is idle for more than this share of the run
#: EPA, "Greenhouse Gas Emissions from a Typical Passenger Vehicle" (EPA-420-F-23-014, 2023):
#: about 400 g CO2 per mile for the average US passenger vehicle.
CAR_G_PER_KM = 400.0 / 1.609344
#: Heating 1 L of water from 20 °C to 100 °C: 4.186 kJ/(kg·K) × 80 K = 334.9 kJ (no losses counted).
KETTLE_KWH_PER_L = 4.186 * 80 / 3600


class Hint(NamedTuple):
    """One hint: a kind (``idle_gpu``, ``wasted``, ``per_item``, ``equivalents``), its text, its figure."""

    kind: str
    text: str
    value: float

    def to_dict(self) -> dict[str, Any]:
        """The hint as a plain dict (stored in the report)."""
        return self._asdict()


def idle_gpus(report: RunReport) -> list[Hint]:
    """GPUs idle for most of the run: the input pipeline is likely the bottleneck."""
    hints = []
    for d in report.devices:
        if d.domain != "gpu" or d.idle_fraction is None or d.idle_fraction <= IDLE_SHARE:
            continue
        hints.append(Hint("idle_gpu", (
            f"{d.name} was idle (under {IDLE_UTILISATION_PCT} % utilisation) for {d.idle_fraction:.0%} of the run "
            f"(mean {d.utilisation_pct or 0:.0f} %) while drawing {format_energy(d.energy_kwh)}: the input pipeline is "
            "likely the bottleneck — more DataLoader workers, pin_memory, prefetching, or a larger batch"),
            d.idle_fraction))
    return hints


def wasted(report: RunReport) -> list[Hint]:
    """The energy a failed or interrupted run spent for nothing, and how much came after its last complete
    epoch (what a checkpoint per epoch would not have saved)."""
    if not report.wasted:
        return []
    text = (f"the run {report.status} after {report.duration_s:,.0f} s: {format_energy(report.energy_kwh)} and "
            f"{format_mass(report.co2_kg)} CO2e bought no result")
    if report.epochs:
        done = [i for i, e in enumerate(report.epochs) if e.complete is not False]  # None: older reports
        if done:
            last = report.epochs[done[-1]]
            kept_kwh = sum(e.energy_kwh for e in report.epochs[:done[-1] + 1])
            since = max(0.0, report.energy_kwh - kept_kwh)
            text += (f"; {format_energy(since)} of it after epoch {last.epoch} ended, lost even with a checkpoint "
                     "per epoch" if since > 0 else "")
        else:
            text += "; no epoch completed: a checkpoint every few hundred steps would have kept some of it"
    else:
        text += "; checkpoint (e.g. every epoch) so that a restart resumes instead of repeating"
    return [Hint("wasted", text, report.energy_kwh)]


def per_item(report: RunReport) -> list[Hint]:
    """Joules and CO2e per counted item (sample, token…)."""
    unit = str(report.extra.get("count_unit") or "sample")
    count = sum(e.count for e in report.epochs)
    if count <= 0 and report.marks_stride == 1:
        count = sum(m.count for m in report.marks if m.count)
    if count <= 0 or report.energy_kwh <= 0:
        return []
    joules = report.energy_kwh * J_PER_KWH / count
    return [Hint("per_item", f"{format_joules(joules)} and {format_mass(report.co2_kg / count)} CO2e per {unit} "
                             f"({count:,.0f} {unit}s counted, all of the run's energy)", joules)]


_DISTANCE_UNITS = (("km", 1.0), ("m", 1e3), ("mm", 1e6), ("µm", 1e9))


def equivalents(report: RunReport) -> list[Hint]:
    """The CO2e as car distance and the energy as water brought to the boil."""
    if report.co2_kg <= 0:
        return []
    km = report.co2_kg * 1e3 / CAR_G_PER_KM
    litres = report.facility_kwh / KETTLE_KWH_PER_L
    distance = format_quantity(km, _DISTANCE_UNITS)
    water = format_volume(litres)
    return [Hint("equivalents", f"about {distance} by an average passenger car (EPA: 400 g CO2/mile); "
                                f"the energy would bring {water} of water to the boil (from 20 °C)", km)]


def hints_for(report: RunReport) -> list[Hint]:
    """Every hint that applies to ``report``, most actionable first."""
    return [*idle_gpus(report), *wasted(report), *per_item(report), *equivalents(report)]


def with_hints(report: RunReport) -> RunReport:
    """``report`` with its hints recorded in it (``RunReport.hints``)."""
    return report.with_changes(hints=tuple(h.to_dict() for h in hints_for(report)))


__all__ = ["Hint", "hints_for", "with_hints"]
