"""The comparison figure (extra ``plot``: matplotlib)."""

from __future__ import annotations

import textwrap
from typing import Any, Sequence

from carbonstep.analysis.compare.records import LevelRow, RecipeSummary, RunSeries, RunSummary
from carbonstep.errors import require
from carbonstep.report.units import mass_unit


def _best_so_far(reached: list[tuple[float, float]], mode: str) -> list[tuple[float, float]]:
    better = min if mode == "min" else max
    best, pairs = None, []
    for value, co2 in reached:
        best = value if best is None else better(best, value)
        pairs.append((best, co2))
    return pairs


def _label(metric: str, mode: str, row: LevelRow, names: list[str]) -> str:
    """The verdict at the common best level, per recipe against the reference, wrapped to fit the panel."""
    lines = [f"at {metric} {'≤' if mode == 'min' else '≥'} {row.level:.4g}, against {names[0]}:"]
    for i in range(1, len(names)):
        interval = (f" [{row.diff_pct_low[i]:+.0f}, {row.diff_pct_high[i]:+.0f}] %"
                    if row.diff_pct_high[i] > row.diff_pct_low[i] else "")
        lines.append(f"{names[i]}: {row.diff_pct[i]:+.1f} % CO2e{interval} — {row.outcome[i]}")
    return "\n".join(textwrap.fill(line, 46, subsequent_indent="  ") for line in lines)


def _panel_c(axis: Any, metric: str, mode: str, runs: Sequence[RunSummary],
             reached: Sequence[Sequence[tuple[float, float]]], levels: Sequence[LevelRow],
             recipes: Sequence[RecipeSummary], colours: dict[str, Any], scale: float) -> None:
    for summary, points in zip(runs, reached):
        pairs = _best_so_far(list(points), mode)
        axis.plot([p[0] for p in pairs], [p[1] * scale for p in pairs], color=colours[summary.recipe], alpha=0.25,
                  linewidth=0.8)
    for i, recipe in enumerate(recipes):
        centre = [row.co2_kg[i] * scale for row in levels]
        below = [(row.co2_kg[i] - row.low_kg[i]) * scale for row in levels]
        above = [(row.high_kg[i] - row.co2_kg[i]) * scale for row in levels]
        axis.errorbar([row.level for row in levels], centre, yerr=[below, above], color=colours[recipe.name],
                      marker="o", capsize=4, linewidth=2,
                      label=f"{recipe.name} (mean of {len(recipe.runs)}, 95 % interval)")
    if levels and len(recipes) > 1:
        axis.axvline(levels[-1].level, color="grey", linestyle=":")
        axis.text(0.02, 0.98, _label(metric, mode, levels[-1], [r.name for r in recipes]), transform=axis.transAxes,
                  va="top", ha="left", fontsize=7.5,
                  bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.85, "edgecolor": "grey"})


def comparison_figure(metric: str, mode: str, series: Sequence[RunSeries],
                      reached: Sequence[Sequence[tuple[float, float]]], levels: Sequence[LevelRow],
                      runs: Sequence[RunSummary], recipes: Sequence[RecipeSummary]) -> Any:
    """(a) metric per step, (b) cumulative CO2e per step, (c) CO2e against the metric reached, with intervals.

    ``reached`` holds, per run, (metric value, CO2 so far) at each metric step; ``runs`` the runs' summaries (their
    recipes colour the lines); ``levels`` and ``recipes`` the comparison's rows and recipes (the first is the
    reference; the last level is marked on panel c with each recipe's difference and its interval).
    """
    matplotlib = require("matplotlib", "plot")
    matplotlib.use("Agg")
    require("matplotlib.ticker", "plot")
    pyplot = require("matplotlib.pyplot", "plot")
    palette = pyplot.rcParams["axes.prop_cycle"].by_key()["color"]
    colours = {r.name: palette[i % len(palette)] for i, r in enumerate(recipes)}
    unit, scale = mass_unit(max((v for s in series for _, v in s.co2), default=0.0))
    figure, (a, b, c) = pyplot.subplots(1, 3, figsize=(16, 4.8))
    labelled: set[str] = set()
    for run, summary in zip(series, runs):
        label = None if summary.recipe in labelled else summary.recipe
        labelled.add(summary.recipe)
        a.plot(*zip(*run.metric), marker=".", color=colours[summary.recipe], alpha=0.6, label=label)
        b.plot([s for s, _ in run.co2], [v * scale for _, v in run.co2], color=colours[summary.recipe],
               alpha=0.6, label=label)
    _panel_c(c, metric, mode, runs, reached, levels, recipes, colours, scale)
    a.set(title=f"(a) {metric} per step (each line a run)", xlabel="step", ylabel=metric)
    b.set(title="(b) cumulative CO2e per step", xlabel="step", ylabel=f"{unit} CO2e")
    c.set(title=f"(c) CO2e to reach {metric}", xlabel=f"{metric} (best so far)", ylabel=f"{unit} CO2e")
    values = [v for s in series for _, v in s.metric]
    if min(values) > 0 and max(values) / min(values) > 10:
        a.set_yscale("log")
        c.set_xscale("log")
        c.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # minor labels overlap on a short range
    if mode == "min":
        c.invert_xaxis()
    for axis in (a, b, c):
        axis.grid(alpha=0.3)
    a.legend(fontsize=8)
    b.legend(fontsize=8)
    c.legend(fontsize=7.5, loc="lower right")
    figure.tight_layout()
    return figure
