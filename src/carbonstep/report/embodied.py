"""The report's embodied footprint as sinks and views show it: summary lines, MLflow params, a model-card
line, a usage/compare row. All read ``RunReport.embodied``; none adds it into ``co2_kg``."""

from __future__ import annotations

import re
from typing import Any

from carbonstep.report.formatting import format_mass, format_volume
from carbonstep.report.record import RunReport


def _span(block: dict[str, Any], field: str, fmt: Any = format_mass) -> str:
    low, high = block[f"{field}_low"], block[f"{field}_high"]
    return fmt(block[field]) + ("" if abs(high - low) <= 1e-12 * max(1.0, high) else f" ({fmt(low)}–{fmt(high)})")


def summary_lines(report: RunReport) -> list[str]:
    """Lines for the end-of-run summary: the embodied CO2e and its range beside the operational figure,
    the labelled total, depletion and water where a source gives them, and the notes."""
    block = report.embodied
    if not block:
        return []
    lines = []
    if "co2_kg" in block:
        parts = ", ".join(p["name"] for p in block["parts"])
        lines.append(f"  embodied   {_span(block, 'co2_kg')} CO2e over {block['hours']:.3g} h ({parts}); "
                     "not in the carbon above")
        lines.append(f"  total      {_span(block, 'total_co2_kg')} CO2e, operational + embodied")
        if "kg_sb_eq" in block:
            covers = ", ".join(block["kg_sb_eq_covers"])
            lines.append(f"  depletion  {block['kg_sb_eq']:.3g} kg Sb eq (abiotic; {covers})")
        if "water_l" in block:
            lines.append(f"  mfg water  {_span(block, 'water_l', format_volume)} "
                         f"({', '.join(block['water_l_covers'])})")
    lines += [f"  · embodied: {note}" for note in block.get("notes", ())]
    return lines


def _param_name(device: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", device)


def embodied_params(report: RunReport) -> dict[str, float]:
    """MLflow params: ``embodied_co2_kg`` (and its low/high), the labelled total, depletion and water where
    known, and ``embodied_co2_kg.<part>`` per device and server part. Empty when the report has none."""
    block = report.embodied or {}
    if "co2_kg" not in block:
        return {}
    params = {f"embodied_co2_kg{s}": block[f"co2_kg{s}"] for s in ("", "_low", "_high")}
    params["total_co2_kg_operational_plus_embodied"] = block["total_co2_kg"]
    for field in ("kg_sb_eq", "water_l"):
        if field in block:
            params[f"embodied_{field}"] = block[field]
    for part in block["parts"]:
        params[f"embodied_co2_kg.{_param_name(part['name'])}"] = part["co2_kg"]
    return params


def model_card_line(report: RunReport) -> str | None:
    """One sentence for a model card on the embodied emissions, kept apart from ``co2_eq_emissions``."""
    block = report.embodied or {}
    if "co2_kg" not in block:
        return None
    sources = sorted({p["source"].split(" (http")[0] for p in block["parts"]})
    low, mid, high = block["parts"][0]["life_years"]
    life = f"{mid:g} years" if low == high else f"{mid:g} years (range {low:g}–{high:g})"
    return (f"Embodied (manufacturing) emissions of the hardware used, not included in the figure above: "
            f"{_span(block, 'co2_kg')} CO2e, the hardware's cradle-to-gate footprint spread over a service "
            f"life of {life}; sources: {'; '.join(sources)}.")


def usage_row(report: RunReport) -> dict[str, float | None]:
    """The figures a usage table or compare view shows in their own columns (None: not known)."""
    block = report.embodied or {}
    return {"embodied_co2_kg": block.get("co2_kg"), "embodied_co2_kg_low": block.get("co2_kg_low"),
            "embodied_co2_kg_high": block.get("co2_kg_high"), "total_co2_kg": block.get("total_co2_kg"),
            "embodied_kg_sb_eq": block.get("kg_sb_eq"), "embodied_water_l": block.get("water_l")}


__all__ = ["embodied_params", "model_card_line", "summary_lines", "usage_row"]
