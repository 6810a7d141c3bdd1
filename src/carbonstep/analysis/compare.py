"""Compare runs on CO2 per unit of a quality metric (the eco2AI GELU study's Figure 5, as a tool).

A run is an MLflow run (id or name) or a saved report file. For each run: final and best
metric, totals, and the CO2 spent to first reach its best value. For each metric level that
every run reaches: the CO2 each run needed, and the difference relative to the first run.
"""

from __future__ import annotations

import bisect
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from carbonstep.analysis.compare_sources import is_run_id, load_series
from carbonstep.analysis.plot import comparison_figure
from carbonstep.analysis.records import LevelRow, Points, RunSeries, RunSummary
from carbonstep.errors import ConfigError


@dataclass
class Comparison:
    """The result of :func:`compare`: ``table()``, ``verdict``, ``figure()``, ``to_dict()``."""

    metric: str
    mode: str
    runs: list[RunSummary]
    levels: list[LevelRow]
    verdict: str
    notes: list[str] = field(default_factory=list)
    series: list[RunSeries] = field(default_factory=list, repr=False)
    reached: list[list[tuple[float, float]]] = field(default_factory=list, repr=False)  #: per run: (metric, CO2)

    def to_dict(self) -> dict[str, Any]:
        """The comparison as JSON-ready data (without the per-step series)."""
        return {"metric": self.metric, "mode": self.mode, "runs": [asdict(r) for r in self.runs],
                "levels": [asdict(row) for row in self.levels], "verdict": self.verdict, "notes": self.notes}

    def table(self) -> str:
        """The comparison as a text table, with levels, notes and the verdict."""
        names = [r.name for r in self.runs]
        lines = [f"{'run':<28} {'final':>10} {'best':>10} {'kWh':>11} {'kg CO2e':>11} {'L water':>10} "
                 f"{'kg CO2e to best':>16}"]
        for r in self.runs:
            lines.append(f"{r.name[:28]:<28} {r.final:>10.4g} {r.best:>10.4g} {r.energy_kwh:>11.4g} {r.co2_kg:>11.4g} "
                         f"{r.water_l:>10.4g} {r.co2_to_best_kg:>16.4g}{'  *' if r.interpolated else ''}")
        if self.levels:
            lines += ["", f"CO2e to first reach {self.metric} {'≤' if self.mode == 'min' else '≥'} level "
                      f"(difference vs {names[0]}):"]
            for row in self.levels:
                cells = [f"{c:.4g} kg" + ("" if i == 0 else f" ({d:+.3g} kg, {p:+.1f} %)")
                         for i, (c, d, p) in enumerate(zip(row.co2_kg, row.diff_kg, row.diff_pct))]
                lines.append(f"  {row.level:>10.4g}: " + " | ".join(cells))
        lines += [f"* {n}" for n in self.notes] + ["", self.verdict]
        return "\n".join(lines)

    def figure(self) -> Any:
        """Three panels: (a) metric per step, (b) cumulative CO2 per step, (c) CO2 against the metric reached."""
        return comparison_figure(self.metric, self.mode, self.series, self.reached, self.levels)

    def save_plot(self, path: str | os.PathLike[str]) -> Path:
        """Save :meth:`figure` as an image (PNG, SVG or PDF by the suffix of ``path``)."""
        figure = self.figure()
        figure.savefig(path, dpi=110)
        return Path(path)
        return Path(path)


def _interp(points: Points, step: float) -> tuple[float, bool]:
    steps = [s for s, _ in points]
    i = bisect.bisect_left(steps, step)
    if i < len(steps) and steps[i] == step:
        return points[i][1], False
    if i == 0:
        return points[0][1], True
    if i == len(steps):
        return points[-1][1], True
    (s0, v0), (s1, v1) = points[i - 1], points[i]
    return v0 + (v1 - v0) * (step - s0) / (s1 - s0), True


def _better(a: float, b: float, mode: str) -> bool:
    return a <= b if mode == "min" else a >= b


def _summarise(series: RunSeries, mode: str) -> tuple[RunSummary, list[tuple[float, float]]]:
    """The summary, and (metric value, CO2 at that step) for every metric point."""
    reached: list[tuple[float, float]] = []
    interpolated = False
    for step, value in series.metric:
        co2, guessed = _interp(series.co2, step)
        interpolated |= guessed
        reached.append((value, co2))
    values = [v for v, _ in reached]
    best = min(values) if mode == "min" else max(values)
    co2_to_best = next(c for v, c in reached if v == best)
    summary = RunSummary(series.name, series.source, values[-1], best, series.energy_kwh, series.co2_kg,
                         series.water_l, co2_to_best, interpolated)
    return summary, reached


def _levels(reached: list[list[tuple[float, float]]], summaries: list[RunSummary], mode: str,
            count: int) -> list[LevelRow]:
    common = max(s.best for s in summaries) if mode == "min" else min(s.best for s in summaries)
    start = max(r[0][0] for r in reached) if mode == "min" else min(r[0][0] for r in reached)
    if not _better(common, start, mode) or count < 2:
        start = common
    steps = [i / max(count - 1, 1) for i in range(count)]
    if start > 0 and common > 0 and max(start, common) / min(start, common) > 10:  # e.g. losses: geometric
        grid = {start * (common / start) ** f for f in steps}
    else:
        grid = {start + (common - start) * f for f in steps}
    levels = sorted(grid, reverse=(mode == "min"))
    rows = []
    for level in levels:
        needed = tuple(next(c for v, c in points if _better(v, level, mode)) for points in reached)
        diff = tuple(c - needed[0] for c in needed)
        pct = tuple((d / needed[0] * 100) if needed[0] else 0.0 for d in diff)
        rows.append(LevelRow(level, needed, diff, pct))
    return rows


def _verdict(metric: str, mode: str, summaries: list[RunSummary], levels: list[LevelRow]) -> str:
    if len(summaries) == 1:
        s = summaries[0]
        return f"{s.name}: {s.co2_to_best_kg:.4g} kg CO2e to reach its best {metric} {s.best:.4g}."
    row = levels[-1]
    sign = "≤" if mode == "min" else "≥"
    parts = []
    for summary, co2, pct in zip(summaries[1:], row.co2_kg[1:], row.diff_pct[1:]):
        more = "less" if pct < 0 else "more"
        parts.append(f"{summary.name} reaches {metric} {sign} {row.level:.4g} with {abs(pct):.1f} % {more} CO2e "
                     f"than {summaries[0].name} ({co2:.4g} vs {row.co2_kg[0]:.4g} kg)")
    return "; ".join(parts) + "."


def compare(runs: Sequence[str | os.PathLike[str]], metric: str = "val_loss", mode: str = "min",
            experiment: str | None = None, tracking_uri: str | None = None, levels: int = 5) -> Comparison:
    """Compare ``runs`` (MLflow run ids or names, or report files) on CO2 against ``metric``."""
    if mode not in ("min", "max"):
        raise ConfigError(f"mode must be 'min' or 'max', got {mode!r}")
    if not runs:
        raise ConfigError("give at least one run (an MLflow run id or name, or a report file)")
    series = [load_series(str(ref), metric, experiment, tracking_uri) for ref in runs]
    pairs = [_summarise(s, mode) for s in series]
    summaries = [p[0] for p in pairs]
    reached = [p[1] for p in pairs]
    rows = _levels(reached, summaries, mode, levels)
    notes = [f"{s.name}: {metric} and co2_kg were logged at different steps; CO2 interpolated between steps"
             for s in summaries if s.interpolated]
    return Comparison(metric, mode, summaries, rows, _verdict(metric, mode, summaries, rows), notes, series, reached)


def dump_json(result: Comparison, path: str | os.PathLike[str]) -> Path:
    """Write :meth:`Comparison.to_dict` as JSON to ``path``."""
    Path(path).write_text(json.dumps(result.to_dict(), indent=2))
    return Path(path)


__all__ = ["Comparison", "LevelRow", "Points", "RunSeries", "RunSummary", "compare", "dump_json", "is_run_id"]
