"""``carbonstep usage --html``: one self-contained page (inline CSS and SVG; no script, no network).

The page shows the totals (the operational CO2e and, in a tile of its own, the hardware's embodied CO2e with its
range and the number of runs that had a figure, and their total labelled operational + embodied), a stacked bar
chart of energy per period by the first grouping, the top consumers, where energy was wasted, the grid intensity
used per region, the grouped table and the largest runs (with what each was charged for: its scope).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from html import escape
from typing import Iterable, Sequence

from carbonstep.analysis.usage.usage import GROUPS, PERIODS, Group, Usage, summarise
from carbonstep.report.formatting import ENERGY_UNITS, format_energy, format_mass, format_volume, pick_unit, significant
from carbonstep.report.usage_record import UsageRecord

#: Tableau 10, a palette designed to keep categories apart
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
           "#86bcb6")
OTHER_COLOUR = "#bab0ac"
STATUS_COLOURS = {"completed": "#59a14f", "running": "#76b7b2", "failed": "#e15759", "interrupted": "#f28e2b"}
STACKS = 8  #: groups drawn in the chart; the rest are "other"
CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0;background:#f5f6f8;
color:#1d2330}
header{background:#1d2b3a;color:#fff;padding:22px 32px 18px}header h1{margin:0 0 4px;font-size:22px;font-weight:600}
header p{margin:0;color:#c6d0db;font-size:13px}header{overflow-wrap:anywhere}
main{padding:20px 32px 40px;max-width:1280px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:12px;margin-bottom:18px}
.card{background:#fff;border-radius:8px;padding:12px 14px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
.card b{display:block;font-size:22px;font-weight:600;margin-top:2px;overflow-wrap:anywhere}
.card span{color:#5b6675;font-size:12px}
.card.warn b{color:#c0392b}section{background:#fff;border-radius:8px;padding:16px 20px;margin-bottom:18px;
box-shadow:0 1px 2px rgba(0,0,0,.08);overflow-x:auto}h2{font-size:16px;margin:0 0 10px;font-weight:600}
.row{display:grid;grid-template-columns:1fr 1fr;gap:18px}.row section{margin-bottom:0}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{padding:5px 8px;border-bottom:1px solid #e7e9ee;
text-align:right;white-space:nowrap}th{color:#5b6675;font-weight:600;background:#fafbfc;white-space:normal}
td.l,th.l{text-align:left}td.wrap{white-space:normal;min-width:260px;overflow-wrap:anywhere}
div.name{overflow:hidden;text-overflow:ellipsis;white-space:nowrap}.row>section{min-width:0}
tr.total td{font-weight:600;border-top:2px solid #1d2330}
.legend{display:flex;flex-wrap:wrap;gap:6px 16px;font-size:12px;margin-top:6px}.legend i{display:inline-block;
width:11px;height:11px;border-radius:2px;margin-right:5px;vertical-align:-1px}.muted{color:#5b6675;font-size:12px}
svg text{font-family:inherit}ul{margin:6px 0 0;padding-left:20px}
"""


_kwh = format_energy
_kg = format_mass
NAME_CHARS = 40  #: characters of a name shown in a chart label; the whole name is in its tooltip


def _name_cell(text: str, width_px: int = 200) -> str:
    """A table cell for a name of any length: at most ``width_px`` wide, cut with an ellipsis, whole in its tooltip."""
    return (f'<td class="l"><div class="name" style="max-width:{width_px}px" title="{escape(text)}">{escape(text)}'
            "</div></td>")


def _short(text: str, chars: int = NAME_CHARS) -> str:
    return text if len(text) <= chars else text[:chars - 1] + "…"


def _nice_step(top: float, ticks: int = 5) -> float:
    raw = top / ticks if top > 0 else 1.0
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)


def _period_of(usage: Usage, period: str | None) -> str:
    if period:
        return period
    if not usage.records:
        return "day"
    span_days = (max(r.started_s for r in usage.records) - min(r.started_s for r in usage.records)) / 86400
    return "day" if span_days <= 62 else "week" if span_days <= 26 * 7 else "month"


def chart_group(usage: Usage) -> str:
    """The grouping the charts stack by: the first non-period one asked for, else ``status``."""
    return next((name for name in usage.by if name not in PERIODS), "status")


def _colours(names: Sequence[str], group: str) -> dict[str, str]:
    if group == "status":
        return {n: STATUS_COLOURS.get(n, OTHER_COLOUR) for n in names}
    return {n: (PALETTE[i % len(PALETTE)] if n != "other" else OTHER_COLOUR) for i, n in enumerate(names)}


def stacked_chart(records: Iterable[UsageRecord], period: str, group: str, width: int = 1180,
                  height: int = 300) -> tuple[str, dict[str, str]]:
    """An SVG of kWh per ``period`` stacked by ``group`` (top groups, the rest as "other"), and its colours."""
    by_period: dict[str, dict[str, float]] = {}
    totals: dict[str, float] = {}
    for r in records:
        label, name = GROUPS[period](r), GROUPS[group](r)
        cell = by_period.setdefault(label, {})
        cell[name] = cell.get(name, 0.0) + r.energy_kwh
        totals[name] = totals.get(name, 0.0) + r.energy_kwh
    top = [n for n, _ in sorted(totals.items(), key=lambda kv: -kv[1])[:STACKS]]
    names = top + (["other"] if len(totals) > len(top) else [])
    colours = _colours(names, group)
    periods = sorted(by_period)
    peak = max((sum(c.values()) for c in by_period.values()), default=0.0)
    step = _nice_step(peak)
    y_max = step * max(1, math.ceil(peak / step))
    unit, per_kwh = pick_unit(y_max, ENERGY_UNITS)  # one unit for the whole axis, the top tick's
    ticks = [significant(i * step * per_kwh) for i in range(int(round(y_max / step)) + 1)]
    left, right, top_m, bottom = 34 + 7 * max(len(t) for t in ticks), 10, 12, 44  # room for the longest tick
    plot_w, plot_h = width - left - right, height - top_m - bottom
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" role="img" '
             f'aria-label="energy per {period} by {group}">']
    for i, tick in enumerate(ticks):
        y = top_m + plot_h - plot_h * i * step / y_max
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e7e9ee"/>'
                     f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" fill="#5b6675">'
                     f'{tick}</text>')
    parts.append(f'<text x="12" y="{top_m + plot_h / 2:.0f}" font-size="11" fill="#5b6675" '
                 f'transform="rotate(-90 12 {top_m + plot_h / 2:.0f})" text-anchor="middle">{unit}</text>')
    slot = plot_w / max(1, len(periods))
    bar_w = max(2.0, slot * 0.78)
    every = max(1, math.ceil(len(periods) / 16))
    for i, label in enumerate(periods):
        x = left + i * slot + (slot - bar_w) / 2
        y = top_m + plot_h
        cell = by_period[label]
        for name in names:
            value = cell.get(name, 0.0) if name != "other" else sum(v for n, v in cell.items() if n not in top)
            if value <= 0:
                continue
            h = plot_h * value / y_max
            y -= h
            tip = f"{escape(label)} · {escape(name)}: {_kwh(value)}"
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                         f'fill="{colours[name]}"><title>{tip}</title></rect>')
        if i % every == 0:
            short = label[5:] if period == "day" else _short(label, 12)
            parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{top_m + plot_h + 16}" font-size="11" '
                         f'text-anchor="middle" fill="#5b6675">{escape(short)}</text>')
    parts.append(f'<line x1="{left}" x2="{width - right}" y1="{top_m + plot_h}" y2="{top_m + plot_h}" '
                 'stroke="#9aa3ae"/></svg>')
    return "".join(parts), colours


def bar_list(groups: Sequence[Group], label: str, width: int = 560, limit: int = 10) -> str:
    """Horizontal bars of the largest groups' kWh with their shares (an SVG)."""
    shown = sorted(groups, key=lambda g: -g.energy_kwh)[:limit]
    row_h, label_w, value_w = 24, 170, 130
    height = row_h * len(shown) + 6
    peak = max((g.energy_kwh for g in shown), default=1.0) or 1.0
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" role="img" '
             f'aria-label="top consumers by {escape(label)}">']
    for i, g in enumerate(shown):
        y = 3 + i * row_h
        w = (width - label_w - value_w) * g.energy_kwh / peak
        name = " · ".join(g.key)
        parts.append(f'<text x="{label_w - 8}" y="{y + 15}" font-size="12" text-anchor="end">{escape(_short(name, 22))}'
                     f'<title>{escape(name)}</title></text>'
                     f'<rect x="{label_w}" y="{y + 3}" width="{max(w, 1):.1f}" height="{row_h - 8}" rx="2" '
                     f'fill="{PALETTE[0]}"><title>{escape(name)}: {_kwh(g.energy_kwh)}</title></rect>'
                     f'<text x="{label_w + w + 6:.1f}" y="{y + 15}" font-size="12" fill="#1d2330">'
                     f'{_kwh(g.energy_kwh)} · {g.share:.0%}</text>')
    parts.append("</svg>")
    return "".join(parts)


def waste_bar(records: Sequence[UsageRecord], width: int = 560) -> str:
    """One 100 % bar of the energy by run status (an SVG), with its legend."""
    energy = {s: 0.0 for s in STATUS_COLOURS}
    for r in records:
        energy[r.status] = energy.get(r.status, 0.0) + r.energy_kwh
    total = sum(energy.values()) or 1.0
    x = 0.0
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} 34" width="100%" role="img" '
             'aria-label="energy by run status">']
    for status, value in energy.items():
        w = width * value / total
        if w <= 0:
            continue
        colour = STATUS_COLOURS.get(status, OTHER_COLOUR)
        parts.append(f'<rect x="{x:.1f}" y="2" width="{w:.1f}" height="30" fill="{colour}">'
                     f'<title>{status}: {_kwh(value)} ({value / total:.1%})</title></rect>')
        if w > 46:
            parts.append(f'<text x="{x + w / 2:.1f}" y="22" font-size="12" text-anchor="middle" fill="#fff">'
                         f'{value / total:.0%}</text>')
        x += w
    parts.append("</svg>")
    legend = "".join(f'<span><i style="background:{STATUS_COLOURS[s]}"></i>{s} {_kwh(v)}</span>'
                     for s, v in energy.items() if v > 0)
    return "".join(parts) + f'<div class="legend">{legend}</div>'


@dataclass
class RegionRow:
    """One region's runs, energy, CO2e and water, and the grid intensity its runs recorded."""

    region: str
    runs: int = 0
    energy_kwh: float = 0.0
    co2_kg: float = 0.0
    water_l: float = 0.0
    intensity_kwh: float = 0.0  #: energy of the runs that recorded an intensity
    intensity_x_kwh: float = 0.0  #: Σ g/kWh × kWh over those runs
    sources: set[str] = field(default_factory=set)

    @property
    def grid_g_per_kwh(self) -> float | None:
        """The recorded grid intensity, energy-weighted; None when no run recorded one."""
        return self.intensity_x_kwh / self.intensity_kwh if self.intensity_kwh > 0 else None


def region_rows(records: Iterable[UsageRecord]) -> list[RegionRow]:
    """Per region (largest energy first): runs, kWh, CO2e, water, the grid intensity used and its sources."""
    rows: dict[str, RegionRow] = {}
    for r in records:
        row = rows.setdefault(r.region, RegionRow(r.region))
        row.runs += 1
        row.energy_kwh += r.energy_kwh
        row.co2_kg += r.co2_kg
        row.water_l += r.water_l
        if r.intensity_g_per_kwh is not None:
            row.intensity_x_kwh += r.intensity_g_per_kwh * r.energy_kwh
            row.intensity_kwh += r.energy_kwh
        if r.intensity_source:
            row.sources.add(r.intensity_source)
    return sorted(rows.values(), key=lambda row: -row.energy_kwh)


def _region_table(records: Sequence[UsageRecord]) -> str:
    lines = ['<table><tr><th class="l">region</th><th>runs</th><th>energy</th><th>CO2e</th>'
             '<th>grid g CO2e/kWh used</th><th>g CO2e per IT kWh (with PUE)</th><th>water L/kWh</th>'
             '<th class="l">intensity source</th></tr>']
    for row in region_rows(records):
        kwh = row.energy_kwh
        grid = row.grid_g_per_kwh
        effective = row.co2_kg * 1e3 / kwh if kwh > 0 else 0.0
        water = row.water_l / kwh if kwh > 0 else 0.0
        lines.append(f'<tr>{_name_cell(row.region)}<td>{row.runs:,}</td><td>{_kwh(kwh)}</td>'
                     f'<td>{_kg(row.co2_kg)}</td><td>{"-" if grid is None else significant(grid)}</td>'
                     f'<td>{significant(effective)}</td><td>{significant(water)}</td>'
                     f'<td class="l wrap">{escape("; ".join(sorted(row.sources)))}</td></tr>')
    return "".join(lines) + "</table>"


def _group_table(usage: Usage) -> str:
    head = "".join(f'<th class="l">{escape(n)}</th>' for n in usage.by)
    lines = [f'<table><tr>{head}<th>runs</th><th>GPU-h</th><th>energy</th><th>CO2e</th><th>water</th>'
             '<th>share</th><th>wasted</th><th>after last epoch</th><th>idle GPUs</th>'
             '<th>energy per sample</th><th>embodied CO2e</th><th>CO2e operational + embodied</th></tr>']
    for group, cls in [*((g, "") for g in usage.groups), (usage.total, ' class="total"')]:
        per = group.kwh_per_sample
        labels = "".join(_name_cell(k) for k in group.key)
        lines.append(f'<tr{cls}>{labels}<td>{group.runs:,}</td><td>{significant(group.gpu_hours)}</td>'
                     f'<td>{_kwh(group.energy_kwh)}</td><td>{_kg(group.co2_kg)}</td>'
                     f'<td>{format_volume(group.water_l)}</td><td>{group.share:.1%}</td>'
                     f'<td>{_kwh(group.wasted_kwh)}</td><td>{_kwh(group.after_last_epoch_kwh)}</td>'
                     f'<td>{_kwh(group.idle_gpu_kwh)}</td><td>{"-" if per is None else _kwh(per)}</td>'
                     f"{_embodied_cells(group)}</tr>")
    return "".join(lines) + "</table>"


def _embodied_cells(group: Group) -> str:
    """The embodied CO2e (with its range in the tooltip) and the total operational + embodied; ``-`` when no run
    of the group has an embodied figure."""
    if not group.embodied_runs:
        return "<td>-</td><td>-</td>"
    span = f"{_kg(group.embodied_co2_kg_low)}–{_kg(group.embodied_co2_kg_high)}, {group.embodied_runs:,} runs"
    return (f'<td title="{escape(span)}">{_kg(group.embodied_co2_kg)}</td>'
            f"<td>{_kg(group.operational_plus_embodied_co2_kg)}</td>")


def _top_runs(records: Sequence[UsageRecord], limit: int = 10) -> str:
    lines = ['<table><tr><th class="l">run</th><th class="l">user</th><th class="l">project</th>'
             '<th class="l">GPU</th><th class="l">scope</th><th class="l">status</th><th class="l">started (UTC)</th>'
             '<th>GPU-h</th><th>energy</th><th>CO2e</th><th>embodied CO2e</th></tr>']
    for r in sorted(records, key=lambda r: -r.energy_kwh)[:limit]:
        started = datetime.fromtimestamp(r.started_s, timezone.utc).strftime("%Y-%m-%d %H:%M")
        lines.append(f'<tr>{_name_cell(r.name, 140)}{_name_cell(r.user, 100)}{_name_cell(r.experiment, 110)}'
                     f'{_name_cell(r.gpu_model, 110)}{_name_cell(r.scope, 110)}{_name_cell(r.status, 80)}'
                     f'<td class="l">{started}</td><td>{significant(r.gpu_hours)}</td><td>{_kwh(r.energy_kwh)}</td>'
                     f'<td>{_kg(r.co2_kg)}</td><td>{"-" if r.embodied_co2_kg is None else _kg(r.embodied_co2_kg)}'
                     "</td></tr>")
    return "".join(lines) + "</table>"


def _cards(usage: Usage) -> str:
    t = usage.total
    wasted_share = t.wasted_kwh / t.energy_kwh if t.energy_kwh > 0 else 0.0
    embodied_range = f" ({_kg(t.embodied_co2_kg_low)}–{_kg(t.embodied_co2_kg_high)})" if t.embodied_runs else ""
    cards = [("runs", f"{t.runs:,}", ""), ("GPU-hours", significant(t.gpu_hours), ""),
             ("energy (IT)", _kwh(t.energy_kwh), ""), ("CO2e operational", _kg(t.co2_kg), ""),
             (f"CO2e embodied{embodied_range}: {t.embodied_runs:,} of {t.runs:,} runs had a figure",
              _kg(t.embodied_co2_kg) if t.embodied_runs else "-", " embodied"),
             ("CO2e operational + embodied", _kg(t.operational_plus_embodied_co2_kg) if t.embodied_runs else "-", ""),
             ("water", format_volume(t.water_l), ""),
             ("wasted: failed + interrupted", f"{wasted_share:.1%}", " warn"),
             ("idle-GPU energy", _kwh(t.idle_gpu_kwh), "")]
    return '<div class="cards">' + "".join(f'<div class="card{cls}"><span>{escape(label)}</span><b>{value}</b></div>'
                                           for label, value, cls in cards) + "</div>"


def page(usage: Usage, period: str | None = None) -> str:
    """The whole page as one HTML string."""
    chosen = _period_of(usage, period)
    group = chart_group(usage)
    chart, colours = stacked_chart(usage.records, chosen, group)
    legend = "".join(f'<span title="{escape(n)}"><i style="background:{c}"></i>{escape(_short(n))}</span>'
                     for n, c in colours.items())
    by_group = summarise(usage.records, [group], usage.filters).groups
    t = usage.total
    after_share = t.after_last_epoch_kwh / t.wasted_kwh if t.wasted_kwh > 0 else 0.0
    failed_runs = t.failed + t.interrupted
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    notes = [*usage.notes, *(f"skipped {w}" for w in usage.warnings)]
    return "".join([
        '<!doctype html><html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>carbonstep usage: {escape(usage.filters.describe())}</title><style>{CSS}</style></head><body>",
        f"<header><h1>Training footprint: {t.runs:,} runs by {escape(', '.join(usage.by))}</h1>",
        f"<p>{escape(usage.filters.describe())} · sources: {escape(', '.join(usage.sources) or '-')} · "
        f"generated {generated} by carbonstep usage</p></header><main>",
        _cards(usage),
        f"<section><h2>Energy per {chosen} by {escape(group)}</h2>{chart}",
        f'<div class="legend">{legend}</div></section>',
        '<div class="row">',
        f"<section><h2>Top consumers by {escape(group)}</h2>{bar_list(by_group, group)}</section>",
        "<section><h2>Where energy was wasted</h2>",
        waste_bar(usage.records),
        f'<ul><li><b>{_kwh(t.wasted_kwh)}</b> ({t.wasted_kwh / t.energy_kwh if t.energy_kwh else 0:.1%} of all) went '
        f"to {failed_runs:,} failed or interrupted runs; <b>{_kwh(t.after_last_epoch_kwh)}</b> of it "
        f"({after_share:.0%}) after their last completed epoch: lost even with a checkpoint per epoch.</li>",
        f"<li><b>{_kwh(t.idle_gpu_kwh)}</b> drawn by GPUs that were idle (under 10 % utilisation) for more than "
        "half of their run.</li></ul></section></div>",
        f"<section><h2>Grid intensity used, by region</h2>{_region_table(usage.records)}</section>",
        f"<section><h2>By {escape(', '.join(usage.by))}</h2>{_group_table(usage)}</section>",
        f"<section><h2>Largest runs</h2>{_top_runs(usage.records)}</section>",
        (f'<section><h2>Notes</h2><ul class="muted">{"".join(f"<li>{escape(n)}</li>" for n in notes)}</ul></section>'
         if notes else ""),
        "</main></body></html>\n",
    ])
