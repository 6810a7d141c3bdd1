"""A one-screen text summary of a run (printed at the end of runs, ``carbonstep report``)."""

from __future__ import annotations

from carbonstep.accounting.water import water_basis
from carbonstep.report.charged import charged_by_domain
from carbonstep.report.cpu_estimate import cpu_estimate, cpu_estimate_text
from carbonstep.report.embodied import summary_lines as embodied_lines
from carbonstep.report.formatting import format_energy, format_mass, format_volume
from carbonstep.report.hints import hints_for
from carbonstep.report.record import RunReport

MAX_ROWS = 6  #: devices or processes listed before "… and N more"


def _capped(lines: list[str], what: str) -> list[str]:
    if len(lines) <= MAX_ROWS:
        return lines
    return lines[:MAX_ROWS - 1] + [f"  · … and {len(lines) - MAX_ROWS + 1} more {what} (in the JSON report)"]


def render(report: RunReport) -> str:
    """The summary as text, about 20 lines: energy by component and method, CO2e with its intensity and
    source, water, processes of a multi-process job, warnings and hints."""
    r = report
    i = r.intensity
    status = r.status + (" — energy wasted (no result)" if r.wasted else "")
    lines = [
        f"carbonstep · run {r.run_id}{' · ' + r.name if r.name else ''} · {status}",
        f"  duration   {r.duration_s:,.1f} s   average power {r.power_w:.1f} W   attribution: {r.attribution}",
        f"  energy     {format_energy(r.energy_kwh)} IT, {format_energy(r.facility_kwh)} at the meter (PUE {r.pue:g})",
    ]
    charged = charged_by_domain(r.devices)
    for domain in ("gpu", "cpu", "ram"):
        kwh = getattr(r, f"energy_kwh_{domain}")
        if domain in r.methods or kwh:
            scope = f", charged: {charged[domain]}" if domain in charged else ""
            lines.append(f"    {domain:<4} {format_energy(kwh):>14}   by {r.methods.get(domain, '-')}{scope}")
    estimate = cpu_estimate(r)
    if estimate is not None:
        lines.append(f"    cpu estimate {cpu_estimate_text(estimate)}")
    year = f", {i.year}" if i.year else ""
    lines += [
        f"  carbon     {format_mass(r.co2_kg)} CO2e   at {i.g_per_kwh:.0f} g/kWh: {i.region_name} "
        f"({i.basis}{year}; {i.source})",
        f"  water      {format_volume(r.water_l)}   (WUE {r.wue_l_per_kwh:g} + PUE × "
        f"{r.water_intensity_l_per_kwh:g} L/kWh{water_basis(r.extra)})",
    ]
    lines += embodied_lines(r)
    parts = r.extra.get("parts") or []
    if parts:
        nodes = r.extra.get("nodes") or []
        lines.append(f"  processes  {len(parts)} on {len(nodes)} host{'s' if len(nodes) != 1 else ''}")
        lines += _capped([f"  · {p['label']} on {p['host']}: {format_energy(p['energy_kwh'])}, "
                          f"{format_mass(p['co2_kg'])} CO2e, {p['status']}"
                          + (f"; {format_energy(p['duplicate_kwh_dropped'])} read twice, counted once"
                             if p.get("duplicate_kwh_dropped") else "") for p in parts], "processes")
    else:
        lines += _capped([f"  · {d.name}: {d.description}" for d in r.devices], "devices")
    if r.epochs:
        per = sum(e.co2_kg for e in r.epochs) / len(r.epochs)
        lines.append(f"  epochs     {len(r.epochs)}, {format_mass(per)} CO2e each on average")
    if r.budget:
        lines.append(f"  budget     {r.budget.get('reason', '')}")
    lines += [f"  ! {text}" for text in r.warnings]
    lines += [f"  ! sink: {text}" for text in r.sink_errors]
    lines += [f"  → {hint.text}" for hint in hints_for(r)]
    return "\n".join(lines)


__all__ = ["format_energy", "format_mass", "format_volume", "render"]
