"""The comparison figure (extra ``plot``: matplotlib)."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING, Any

from carbonstep.errors import require
from carbonstep.report.units import mass_unit

if TYPE_CHECKING:
    from carbonstep.analysis.compare import Comparison


def _best_so_far(reached: list[tuple[float, float]], mode: str) -> list[tuple[float, float]]:
    better = min if mode == "min" else max
    best, pairs = None, []
    for value, co2 in reached:
        best = value if best is None else better(best, value)
        pairs.append((best, co2))
    return pairs


def _label(result: "Comparison") -> str:
    """The verdict at the common best level, per recipe against the reference, wrapped to fit the panel."""
    row, names = result.levels[-1], [r.name for r in result.recipes]
    lines = [f"at {result.metric} {'≤' if result.mode == 'min' else '≥'} {row.level:.4g}, against {names[0]}:"]
    for i in range(1, len(names)):
        interval = (f" [{row.diff_pct_low[i]:+.0f}, {row.diff_pct_high[i]:+.0f}] %"
                    if row.diff_pct_high[i] > row.diff_pct_low[i] else "")
        lines.append(f"{names[i]}: {row.diff_pct[i]:+.1f} % CO2e{interval} — {row.outcome[i]}")
    return "\n".join(textwrap.fill(line, 46, subsequent_indent="  ") for line in lines)


def _panel_c(axis: Any, result: "Comparison", colours: dict[str, Any], scale: float) -> None:
    for summary, reached in zip(result.runs, result.reached):
        pairs = _best_so_far(reached, result.mode)
        axis.plot([p[0] for p in pairs], [p[1] * scale for p in pairs], color=colours[summary.recipe], alpha=0.25,
                  linewidth=0.8)
    for i, recipe in enumerate(result.recipes):
        levels = [row.level for row in result.levels]
        centre = [row.co2_kg[i] * scale for row in result.levels]
        below = [(row.co2_kg[i] - row.low_kg[i]) * scale for row in result.levels]
        above = [(row.high_kg[i] - row.co2_kg[i]) * scale for row in result.levels]
        axis.errorbar(levels, centre, yerr=[below, above], color=colours[recipe.name], marker="o", capsize=4,
                      linewidth=2, label=f"{recipe.name} (mean of {len(recipe.runs)}, 95 % interval)")
    if result.levels and len(result.recipes) > 1:
        axis.axvline(result.levels[-1].level, color="grey", linestyle=":")
        axis.text(0.02, 0.98, _label(result), transform=axis.transAxes, va="top", ha="left", fontsize=7.5,
                  bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.85, "edgecolor": "grey"})


def comparison_figure(result: "Comparison") -> Any:
    """(a) metric per step, (b) cumulative CO2e per step, (c) CO2e against the metric reached, with intervals."""
    matplotlib = require("matplotlib", "plot")
    matplotlib.use("Agg")
    require("matplotlib.ticker", "plot")
    pyplot = require("matplotlib.pyplot", "plot")
    palette = pyplot.rcParams["axes.prop_cycle"].by_key()["color"]
    colours = {r.name: palette[i % len(palette)] for i, r in enumerate(result.recipes)}
    unit, scale = mass_unit(max((v for s in result.series for _, v in s.co2), default=0.0))
    figure, (a, b, c) = pyplot.subplots(1, 3, figsize=(16, 4.8))
    labelled: set[str] = set()
    for series, summary in zip(result.series, result.runs):
        label = None if summary.recipe in labelled else summary.recipe
        labelled.add(summary.recipe)
        a.plot(*zip(*series.metric), marker=".", color=colours[summary.recipe], alpha=0.6, label=label)
        b.plot([s for s, _ in series.co2], [v * scale for _, v in series.co2], color=colours[summary.recipe],
               alpha=0.6, label=label)
    _panel_c(c, result, colours, scale)
    a.set(title=f"(a) {result.metric} per step (each line a run)", xlabel="step", ylabel=result.metric)
    b.set(title="(b) cumulative CO2e per step", xlabel="step", ylabel=f"{unit} CO2e")
    c.set(title=f"(c) CO2e to reach {result.metric}", xlabel=f"{result.metric} (best so far)",
          ylabel=f"{unit} CO2e")
    values = [v for s in result.series for _, v in s.metric]
    if min(values) > 0 and max(values) / min(values) > 10:
        a.set_yscale("log")
        c.set_xscale("log")
        c.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # minor labels overlap on a short range
    if result.mode == "min":
        c.invert_xaxis()
    for axis in (a, b, c):
        axis.grid(alpha=0.3)
    a.legend(fontsize=8)
    b.legend(fontsize=8)
    c.legend(fontsize=7.5, loc="lower right")
    figure.tight_layout()
    return figure
