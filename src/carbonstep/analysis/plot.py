"""The comparison figure (extra ``plot``: matplotlib)."""

from __future__ import annotations

from typing import Any, Sequence

from carbonstep.analysis.records import LevelRow, RunSeries
from carbonstep.errors import require


def comparison_figure(metric: str, mode: str, series: Sequence[RunSeries],
                      reached: Sequence[Sequence[tuple[float, float]]], levels: Sequence[LevelRow]) -> Any:
    """(a) metric per step, (b) cumulative CO2 per step, (c) CO2 against the metric reached.

    ``reached`` holds, per run, (metric value, CO2 so far) at each metric step; ``levels`` the
    comparison's level rows (the last one is marked on panel c).
    """
    matplotlib = require("matplotlib", "plot")
    matplotlib.use("Agg")
    pyplot = require("matplotlib.pyplot", "plot")
    better = min if mode == "min" else max
    figure, (a, b, c) = pyplot.subplots(1, 3, figsize=(15, 4.4))
    for run, points in zip(series, reached):
        a.plot(*zip(*run.metric), marker=".", label=run.name)
        b.plot(*zip(*run.co2), label=run.name)
        best, pairs = None, []
        for value, co2 in points:
            best = value if best is None else better(best, value)
            pairs.append((best, co2))
        c.plot([p[0] for p in pairs], [p[1] * 1e3 for p in pairs], marker=".", label=run.name)
    if levels and len(series) > 1:
        row = levels[-1]
        c.axvline(row.level, color="grey", linestyle=":")
        c.annotate(f"{row.diff_pct[-1]:+.1f} % CO2e\nat {metric} {row.level:.4g}",
                   (row.level, max(row.co2_kg) * 1e3), textcoords="offset points", xytext=(6, -24))
    a.set(title=f"(a) {metric} per step", xlabel="step", ylabel=metric)
    b.set(title="(b) cumulative CO2e per step", xlabel="step", ylabel="kg CO2e")
    c.set(title=f"(c) CO2e spent against {metric} reached", xlabel=f"{metric} (best so far)",
          ylabel="g CO2e")
    values = [v for s in series for _, v in s.metric]
    if min(values) > 0 and max(values) / min(values) > 10:
        c.set_xscale("log")
    if mode == "min":
        c.invert_xaxis()
    for axis in (a, b, c):
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.tight_layout()
    return figure
