"""The study figure (extra ``plot``: matplotlib, imported on use)."""

from __future__ import annotations

from typing import Any

from carbonstep.errors import require

UNITS = ((1e-3, 1e6, "mg"), (1.0, 1e3, "g"), (float("inf"), 1.0, "kg"))  # (up to kg, scale from kg, label)
COLOURS = {"pareto front": "tab:green", "dominated": "tab:grey", "pruned": "tab:orange", "failed": "tab:red"}


def study_figure(result: Any) -> Any:
    """For a :class:`~carbonstep.analysis.study.StudyAnalysis` (not imported: it imports this module):
    (a) objective against CO2e with the Pareto front, (b) where the carbon went, (c) best so far against
    cumulative CO2e, with the cost of the last 10 % and 1 % of improvement and what came after the best shaded."""
    matplotlib = require("matplotlib", "plot")
    matplotlib.use("Agg")
    pyplot = require("matplotlib.pyplot", "plot")
    figure, (a, b, c) = pyplot.subplots(1, 3, figsize=(16, 4.6))
    scale, unit = next((k, u) for upto, k, u in UNITS if result.totals["co2_kg"] < upto)
    _front_panel(a, result, scale, unit)
    _where_panel(b, result, scale, unit)
    _curve_panel(c, result, scale, unit)
    for axis in (a, c):
        axis.grid(alpha=0.3)
    figure.suptitle(f"study {result.name!r}: {result.totals['co2_kg'] * scale:.4g} {unit} CO2e over "
                    f"{result.totals['trials']} trials", fontsize=11)
    figure.tight_layout()
    return figure


def _front_panel(axis: Any, result: Any, scale: float, unit: str) -> None:
    on_front = {t.number for t in result.front}
    done = [t for t in result.trials if t.state == "COMPLETE" and t.measured and t.value is not None]
    others = [t for t in done if t.number not in on_front]
    if others:
        axis.scatter([t.kg * scale for t in others], [t.objective for t in others], color=COLOURS["dominated"],
                     label="dominated", s=18)
    if result.front:
        axis.plot([t.kg * scale for t in result.front], [t.objective for t in result.front], marker="o",
                  color=COLOURS["pareto front"], label="Pareto front", drawstyle="steps-post")
        for trial in result.front:
            axis.annotate(str(trial.number), (trial.kg * scale, trial.objective), textcoords="offset points",
                          xytext=(4, 4), fontsize=7)
    for state, kind in (("PRUNED", "pruned"), ("FAIL", "failed")):
        cheap = [t.kg * scale for t in result.trials if t.state == state and t.measured]
        if cheap:  # not comparable on the objective: a rug along the bottom
            axis.plot(cheap, [0] * len(cheap), "|", color=COLOURS[kind], markersize=12, label=kind,
                      transform=axis.get_xaxis_transform())
    values = [t.objective for t in done]
    if values and min(values) > 0 and max(values) / min(values) > 100:
        axis.set_yscale("log")
    axis.set(title="(a) objective against CO2e per trial", xlabel=f"{unit} CO2e", ylabel="objective")
    axis.legend(fontsize=8)


def _where_panel(axis: Any, result: Any, scale: float, unit: str) -> None:
    left = 0.0
    for kind, share in result.where.items():
        grams = share.co2_kg * scale
        axis.barh([0], [grams], left=left, color=COLOURS[kind], label=f"{kind}: {share.share:.0%} ({share.trials})")
        left += grams
    axis.set(title="(b) where the carbon went", xlabel=f"{unit} CO2e", yticks=[])
    axis.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)


def _curve_panel(axis: Any, result: Any, scale: float, unit: str) -> None:
    points = [p for p in result.curve if p.best is not None]
    if points:
        axis.plot([0.0] + [p.co2_kg * scale for p in points], [points[0].best] + [p.best for p in points],
                  drawstyle="steps-post", color="tab:blue", label="best so far")
    marks = {m.pct: m for m in result.milestones}
    if 90.0 in marks and 100.0 in marks and result.last_10pct_kg is not None:
        axis.axvspan(marks[90.0].co2_kg * scale, marks[100.0].co2_kg * scale, color="tab:orange", alpha=0.12,
                     label=f"last 10 % of improvement: {result.last_10pct_kg * scale:.3g} {unit}")
    if 99.0 in marks and 100.0 in marks and result.last_1pct_kg is not None:
        start, end = marks[99.0].co2_kg * scale, marks[100.0].co2_kg * scale
        axis.axvspan(start, end, color="tab:red", alpha=0.15,
                     label=f"last 1 % of improvement: {result.last_1pct_kg * scale:.3g} {unit}")
    if result.curve and 100.0 in marks:
        axis.axvspan(marks[100.0].co2_kg * scale, result.curve[-1].co2_kg * scale, color="tab:grey", alpha=0.15,
                     label=f"after the best: {(result.after_best_kg or 0.0) * scale:.3g} {unit}")
    axis.set(title="(c) best value so far against cumulative CO2e", xlabel=f"{unit} CO2e (cumulative)",
             ylabel="best objective")
    axis.legend(fontsize=8)
