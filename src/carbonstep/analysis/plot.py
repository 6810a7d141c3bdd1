"""The comparison figure (extra ``plot``: matplotlib)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from carbonstep.errors import require

if TYPE_CHECKING:
    from carbonstep.analysis.compare import Comparison


def comparison_figure(result: "Comparison") -> Any:
    """(a) metric per step, (b) cumulative CO2 per step, (c) CO2 against the metric reached."""
    matplotlib = require("matplotlib", "plot")
    matplotlib.use("Agg")
    pyplot = require("matplotlib.pyplot", "plot")
    better = min if result.mode == "min" else max
    figure, (a, b, c) = pyplot.subplots(1, 3, figsize=(15, 4.4))
    for series, reached in zip(result.series, result.reached):
        a.plot(*zip(*series.metric), marker=".", label=series.name)
        b.plot(*zip(*series.co2), label=series.name)
        best, pairs = None, []
        for value, co2 in reached:
            best = value if best is None else better(best, value)
            pairs.append((best, co2))
        c.plot([p[0] for p in pairs], [p[1] * 1e3 for p in pairs], marker=".", label=series.name)
    if result.levels and len(result.runs) > 1:
        row = result.levels[-1]
        c.axvline(row.level, color="grey", linestyle=":")
        c.annotate(f"{row.diff_pct[-1]:+.1f} % CO2e\nat {result.metric} {row.level:.4g}",
                   (row.level, max(row.co2_kg) * 1e3), textcoords="offset points", xytext=(6, -24))
    a.set(title=f"(a) {result.metric} per step", xlabel="step", ylabel=result.metric)
    b.set(title="(b) cumulative CO2e per step", xlabel="step", ylabel="kg CO2e")
    c.set(title=f"(c) CO2e spent against {result.metric} reached", xlabel=f"{result.metric} (best so far)",
          ylabel="g CO2e")
    values = [v for s in result.series for _, v in s.metric]
    if min(values) > 0 and max(values) / min(values) > 10:
        c.set_xscale("log")
    if result.mode == "min":
        c.invert_xaxis()
    for axis in (a, b, c):
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.tight_layout()
    return figure
