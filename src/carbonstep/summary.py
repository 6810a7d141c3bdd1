"""A one-screen text summary of a run (printed at the end of runs, ``carbonstep report``)."""

from __future__ import annotations

from .report import RunReport


def _energy(kwh: float) -> str:
    if kwh >= 1:
        return f"{kwh:.3f} kWh"
    if kwh >= 1e-3:
        return f"{kwh * 1e3:.3f} Wh"
    return f"{kwh * 3.6e6:.3g} J"


def _mass(kg: float) -> str:
    return f"{kg:.3f} kg" if kg >= 1 else f"{kg * 1e3:.3f} g" if kg >= 1e-3 else f"{kg * 1e6:.3g} mg"


def _volume(litres: float) -> str:
    return f"{litres:.3f} L" if litres >= 1 else f"{litres * 1e3:.3g} mL"


def render(report: RunReport, hints: list[str] | None = None) -> str:
    """The summary as text, about 20 lines."""
    r = report
    i = r.intensity
    status = r.status + (" — energy wasted (no result)" if r.wasted else "")
    lines = [
        f"carbonstep · run {r.run_id}{' · ' + r.name if r.name else ''} · {status}",
        f"  duration   {r.duration_s:,.1f} s   average power {r.power_w:.1f} W   attribution: {r.attribution}",
        f"  energy     {_energy(r.energy_kwh)} IT, {_energy(r.facility_kwh)} at the meter (PUE {r.pue:g})",
    ]
    for domain in ("gpu", "cpu", "ram"):
        kwh = getattr(r, f"energy_kwh_{domain}")
        if domain in r.methods or kwh:
            lines.append(f"    {domain:<4} {_energy(kwh):>14}   by {r.methods.get(domain, '-')}")
    year = f", {i.year}" if i.year else ""
    lines += [
        f"  carbon     {_mass(r.co2_kg)} CO2e   at {i.g_per_kwh:.0f} g/kWh: {i.region_name} "
        f"({i.basis}{year}; {i.source})",
        f"  water      {_volume(r.water_l)}   (WUE {r.wue_l_per_kwh:g} + PUE × {r.water_intensity_l_per_kwh:g} L/kWh)",
    ]
    for device in r.devices:
        lines.append(f"  · {device.name}: {device.description}")
    if r.epochs:
        per = sum(e.co2_kg for e in r.epochs) / len(r.epochs)
        lines.append(f"  epochs     {len(r.epochs)}, {_mass(per)} CO2e each on average")
    if r.budget:
        lines.append(f"  budget     {r.budget.get('reason', '')}")
    for text in list(r.warnings) + list(hints or []):
        lines.append(f"  ! {text}")
    return "\n".join(lines)
