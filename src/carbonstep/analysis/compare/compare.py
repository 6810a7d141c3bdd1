"""Compare training recipes on CO2e per unit of a quality metric (the eco2AI GELU study's Figure 5, as a tool).

A run is an MLflow run (id or name) or a saved report file; runs are grouped into recipes (several
seeds of one recipe; see :mod:`carbonstep.analysis.compare.stats` for the rule and the statistics).
For each run: final and best metric, totals, and the CO2e spent to first reach its best value. For
each metric level that every run reaches: each recipe's geometric-mean CO2e to reach it with a 95 %
interval, and its ratio to the reference recipe with that ratio's interval. The verdict is stated at one
level fixed before looking (the strictest every run reaches, or ``level``), the last row; the other rows
are context. It names a winner only when the ratio's interval excludes no difference (docs/STATISTICS.md).
"""

from __future__ import annotations

import bisect
import dataclasses
import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from carbonstep.analysis.compare import stats
from carbonstep.analysis.compare.plot import comparison_figure
from carbonstep.analysis.compare.records import LevelRow, Points, RecipeSummary, RunSeries, RunSummary
from carbonstep.analysis.compare.sources import experiment_refs, is_run_id, load_series
from carbonstep.errors import ConfigError, require


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
    recipes: list[RecipeSummary] = field(default_factory=list)
    group_by: str = "auto"
    measurement: list[dict[str, Any]] = field(default_factory=list)  #: per method used: its error and source

    @property
    def reference(self) -> str:
        """The recipe the others are compared with."""
        return self.recipes[0].name if self.recipes else ""

    def to_dict(self) -> dict[str, Any]:
        """Everything but the raw series, JSON-ready."""
        return {"metric": self.metric, "mode": self.mode, "group_by": self.group_by, "reference": self.reference,
                "recipes": [asdict(r) for r in self.recipes], "runs": [asdict(r) for r in self.runs],
                "levels": [asdict(row) for row in self.levels], "measurement": self.measurement,
                "verdict": self.verdict, "notes": self.notes,
                "method": {"interval": "95 % Student t on log CO2e (ratio of geometric means; Welch-Satterthwaite "
                                       "degrees of freedom when run counts differ)", "level": stats.LEVEL,
                           "power_for_runs_needed": stats.POWER, "min_runs_for_a_winner": stats.MIN_RUNS,
                           "calibration": "docs/STATISTICS.md"}}

    def table(self) -> str:
        """The runs, the recipes, the level rows (with headers), the measurement notes and the verdict."""
        from carbonstep.analysis.compare.text import render

        return render(self)

    def figure(self) -> Any:
        """Three panels: (a) metric per step, (b) cumulative CO2 per step, (c) CO2 against the metric reached."""
        return comparison_figure(self.metric, self.mode, self.series, self.reached, self.levels, self.runs,
                                 self.recipes)

    def save_plot(self, path: str | os.PathLike[str]) -> Path:
        """Save :meth:`figure` as an image (PNG, SVG or PDF by the suffix of ``path``)."""
        figure = self.figure()
        figure.savefig(path, dpi=110)
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


def _summarise(series: RunSeries, mode: str, recipe: str) -> tuple[RunSummary, list[tuple[float, float]]]:
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
                         series.water_l, co2_to_best, interpolated, recipe, dict(series.methods),
                         series.embodied_co2_kg)
    return summary, reached


def _verdict_level(summaries: list[RunSummary], mode: str, level: float | None, metric: str) -> float:
    """The strictest level every run reaches, or ``level`` once every run is checked to reach it."""
    common = max(s.best for s in summaries) if mode == "min" else min(s.best for s in summaries)
    if level is None:
        return common
    short = [f"{s.name} (best {s.best:.4g})" for s in summaries if not _better(s.best, level, mode)]
    if short:
        raise ConfigError(f"--level {level:g}: not every run reaches {metric} {'≤' if mode == 'min' else '≥'} "
                          f"{level:g}: {', '.join(short)}; the strictest level all reach is {common:.4g}")
    return level


def _grid(reached: list[list[tuple[float, float]]], common: float, mode: str, count: int) -> list[float]:
    """``count`` levels from the weakest first value to ``common`` (the verdict's level, exactly, last)."""
    start = max(r[0][0] for r in reached) if mode == "min" else min(r[0][0] for r in reached)
    if not _better(common, start, mode) or count < 2:
        start = common
    steps = [i / max(count - 1, 1) for i in range(count - 1)]
    if start > 0 and common > 0 and max(start, common) / min(start, common) > 10:  # e.g. losses: geometric
        grid = {start * (common / start) ** f for f in steps}
    else:
        grid = {start + (common - start) * f for f in steps}
    return sorted((at for at in grid if not _better(at, common, mode)), reverse=(mode == "min")) + [common]


def _needed(points: list[tuple[float, float]], level: float, mode: str) -> float:
    return next(c for v, c in points if _better(v, level, mode))


def _method_errors(methods: str) -> list[float | None]:
    return [stats.MEASUREMENT[m].relative if m in stats.MEASUREMENT else None
            for m in {part.split(":")[-1].strip() for part in methods.split(",") if part.strip()}]


def _outcome(reference: list[float], other: list[float], low: float, high: float, comparable: bool) -> str:
    if min(len(reference), len(other)) < stats.MIN_RUNS:
        return "no variation"
    if min(reference + other) <= 0:
        return "no interval"
    if not comparable:
        return "not comparable"
    if low > 0:
        return "more"
    if high < 0:
        return "less"
    return "indistinguishable"


def _row(level: float, groups: list[list[list[tuple[float, float]]]], mode: str, methods: list[str],
         decides: bool) -> LevelRow:
    """One level's row; only the verdict's row (``decides``) states outcomes, the others are context."""
    values = [[_needed(points, level, mode) for points in group] for group in groups]
    means = [stats.mean_interval(v) for v in values]
    centre = tuple(m[0] for m in means)
    diff = tuple(c - centre[0] for c in centre)
    pct, low, high, outcome = [0.0], [0.0], [0.0], ["reference"]
    needed: list[int | None] = [None]
    for v, method in zip(values[1:], methods[1:]):
        p, lo, hi, n = stats.ratio_interval(values[0], v)
        comparable = True
        if method != methods[0]:
            errors = _method_errors(method) + _method_errors(methods[0])
            known = [e for e in errors if e is not None]
            comparable = bool(known) and len(known) == len(errors)
            if comparable:
                lo, hi = stats.widen(p, lo, hi, [max(known)] * 2)
        pct.append(p)
        low.append(lo)
        high.append(hi)
        outcome.append(_outcome(values[0], v, lo, hi, comparable) if decides else "context")
        needed.append(n if comparable else None)
    return LevelRow(level, centre, diff, tuple(pct), tuple(m[1] for m in means), tuple(m[2] for m in means),
                    tuple(low), tuple(high), tuple(len(v) for v in values), tuple(outcome), tuple(needed))


def _spread_notes(names: list[str], values: list[list[float]]) -> list[str]:
    """A note per recipe whose run-to-run spread at the verdict's level is far from the reference's."""
    notes = []
    for name, other in zip(names[1:], values[1:]):
        ratio = stats.spread_ratio(values[0], other)
        if ratio is not None and ratio >= stats.SPREAD_NOTE:
            notes.append(f"{name} and {names[0]}: their runs' spreads differ {ratio:.1f}× at the verdict's level; the "
                         f"5 % false-winner rate is measured for equal spreads, and is higher when they truly differ "
                         f"(about 6-9 % at 4× apart: docs/STATISTICS.md, 'Outside the calibrated design')")
    return notes


def _recipe_summary(name: str, members: list[int], summaries: list[RunSummary],
                    reached: list[list[tuple[float, float]]], level: float, mode: str, methods: str) -> RecipeSummary:
    co2 = [_needed(reached[i], level, mode) for i in members]
    per_kwh = [summaries[i].energy_kwh / summaries[i].co2_kg if summaries[i].co2_kg else 0.0 for i in members]
    energy = [c * k for c, k in zip(co2, per_kwh)]
    c = stats.mean_interval(co2)
    e = stats.mean_interval(energy)
    return RecipeSummary(name, tuple(summaries[i].name for i in members), methods, *c, *e)


def _energy_span(series: RunSeries) -> float | None:
    """How many times a run's energy could differ between its CPU estimate's range ends (its CPU kWh scaled
    from the figure used to the range's low and high W per thread); None: no estimated CPU."""
    found = series.cpu_estimate
    if not found or found["w_per_thread"] <= 0 or found["w_low"] <= 0 or series.energy_kwh <= 0:
        return None
    cpu = min(series.energy_kwh_cpu, series.energy_kwh)
    rest = series.energy_kwh - cpu
    low = rest + cpu * found["w_low"] / found["w_per_thread"]
    high = rest + cpu * found["w_high"] / found["w_per_thread"]
    return high / low if low > 0 else None


def estimate_notes(series: list[RunSeries], verdict_row: LevelRow) -> list[str]:
    """A note when a CPU estimate's range spans more than the widest 95 % interval of a recipe's ratio to the
    reference at the verdict's level: then the absolute figures are rough, and only the ratio holds (when every
    run shares one estimate, which shifts all alike)."""
    spans = [span for span in map(_energy_span, series) if span is not None]
    if not spans or len(verdict_row.co2_kg) < 2:
        return []
    widest = 1.0
    for low, high in zip(verdict_row.diff_pct_low[1:], verdict_row.diff_pct_high[1:]):
        if low > -100:
            widest = max(widest, (100 + high) / (100 + low))
    if max(spans) <= widest:
        return []
    estimates = {(s.cpu_estimate["w_low"], s.cpu_estimate["w_high"], s.cpu_estimate["basis"]) if s.cpu_estimate
                 else None for s in series}
    low, high = min(e[0] for e in estimates if e), max(e[1] for e in estimates if e)
    rough = (f"the CPU estimate's range ({low:.2f}–{high:.2f} W per thread) makes the absolute kWh and CO2e rough "
             f"(a run's energy up to {max(spans):.2f}× between the range's ends, wider than any ratio's 95 % interval, "
             f"{widest:.2f}×)")
    if len(estimates) == 1:
        return [f"{rough}; the ratio between recipes holds because all runs share the same estimate"]
    return [f"{rough}; the runs do not share one CPU estimate, so the ratio between recipes carries the "
            f"estimates' ranges as well"]


def _methods_text(run_methods: list[dict[str, str]]) -> str:
    found = sorted({f"{d}: {m}" for methods in run_methods for d, m in methods.items()})
    return ", ".join(found)


def finite_runs(series: list[RunSeries], metric: str) -> tuple[list[RunSeries], list[str]]:
    """The runs with their non-finite metric values (a diverged seed's NaN or ±inf losses) left out, runs with
    none finite dropped, and a note naming each; ConfigError when no run is left."""
    kept: list[RunSeries] = []
    notes: list[str] = []
    for run in series:
        finite = [(step, value) for step, value in run.metric if math.isfinite(value)]
        bad = len(run.metric) - len(finite)
        if not finite:
            notes.append(f"{run.name}: DROPPED from the comparison: none of its {len(run.metric)} {metric} values is "
                         "a finite number (the run diverged?)")
            continue
        if bad:
            first = next(step for step, value in run.metric if not math.isfinite(value))
            notes.append(f"{run.name}: {bad} of its {len(run.metric)} {metric} values are not finite (NaN or "
                         f"infinite, first at step {first:g}): left out; the run diverged?")
            run = dataclasses.replace(run, metric=finite)
        kept.append(run)
    if not kept:
        raise ConfigError(f"no run has a finite {metric} value: nothing to compare ({'; '.join(notes)})")
    return kept, notes


def compare(runs: Sequence[str | os.PathLike[str]], metric: str = "val_loss", mode: str = "min",
            experiment: str | None = None, tracking_uri: str | None = None, levels: int = 5,
            group_by: str = "auto", reference: str | None = None, level: float | None = None,
            run_filter: str | None = None) -> Comparison:
    """Compare ``runs`` (MLflow run ids or names, or report files), grouped into recipes, on CO2e against ``metric``.

    With no ``runs`` and an ``experiment``, every finished run of that experiment is compared.
    ``group_by`` is the recipe rule (``auto``, ``name``, ``name:REGEX``, ``tag:KEY``, ``param:KEY``);
    ``reference`` names the recipe the others are compared with (default: the first run's). ``level`` is the
    metric level the verdict is stated at, fixed before looking (default: the strictest every run reaches);
    the other ``levels`` rows, up to it, are context. ``run_filter`` narrows ``experiment``'s runs with an
    MLflow search filter (e.g. ``tags.study = '…'``).
    """
    if mode not in ("min", "max"):
        raise ConfigError(f"mode must be 'min' or 'max', got {mode!r}")
    if isinstance(levels, bool) or not isinstance(levels, int) or levels < 1:
        raise ConfigError(f"levels must be a whole number ≥ 1 (how many metric levels to tabulate), got {levels!r}")
    if level is not None and not math.isfinite(level):
        raise ConfigError(f"level must be a finite number (the metric level of the verdict), got {level!r}")
    stats.check_rule(group_by)
    require("scipy.stats", "stats")  # the intervals' t quantiles: one clear line now if the extra is missing
    refs = [str(ref) for ref in runs] or (experiment_refs(experiment, tracking_uri, run_filter)
                                                  if experiment else [])
    if not refs:
        raise ConfigError("give at least one run (an MLflow run id or name, or a report file), or --experiment")
    series, dropped = finite_runs([load_series(ref, metric, experiment, tracking_uri) for ref in refs], metric)
    recipes = [stats.recipe_of(s.name, s.tags, s.params, group_by, s.source) for s in series]
    order = list(dict.fromkeys(recipes))
    if reference is not None:
        if reference not in order:
            raise ConfigError(f"--reference {reference!r} is not one of the recipes: {', '.join(order)}")
        order.remove(reference)
        order.insert(0, reference)
    pairs = [_summarise(s, mode, r) for s, r in zip(series, recipes)]
    summaries = [p[0] for p in pairs]
    reached = [p[1] for p in pairs]
    members = [[i for i, r in enumerate(recipes) if r == name] for name in order]
    methods = [_methods_text([series[i].methods for i in group]) for group in members]
    grid = _grid(reached, _verdict_level(summaries, mode, level, metric), mode, levels)
    rows = [_row(at, [[reached[i] for i in group] for group in members], mode, methods, at == grid[-1])
            for at in grid]
    recipe_rows = [_recipe_summary(name, group, summaries, reached, grid[-1], mode, m)
                   for name, group, m in zip(order, members, methods)]
    notes = dropped + [f"{s.name}: {metric} and co2_kg were logged at different steps; CO2 interpolated between steps"
             for s in summaries if s.interpolated]
    notes += _spread_notes(order, [[_needed(reached[i], grid[-1], mode) for i in group] for group in members])
    notes += estimate_notes(series, rows[-1])
    from carbonstep.analysis.compare.text import measurement_notes, verdict

    result = Comparison(metric, mode, summaries, rows, "", notes, series, reached, recipe_rows, group_by,
                        measurement_notes(methods))
    result.verdict = verdict(result)
    gone = sum("DROPPED" in note for note in dropped)
    if gone:
        result.verdict += (f" ({gone} of {len(refs)} runs dropped: no finite {metric}; the verdict is over the "
                           "others, see the notes)")
    elif dropped:
        result.verdict += f" (non-finite {metric} values left out of {len(dropped)} runs: see the notes)"
    return result


def dump_json(result: Comparison, path: str | os.PathLike[str]) -> Path:
    """Write :meth:`Comparison.to_dict` to ``path``."""
    Path(path).write_text(json.dumps(result.to_dict(), indent=2))
    return Path(path)


__all__ = ["Comparison", "LevelRow", "Points", "RecipeSummary", "RunSeries", "RunSummary", "compare", "dump_json",
           "is_run_id"]
