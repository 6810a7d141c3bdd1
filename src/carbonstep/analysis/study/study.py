"""What a hyperparameter search bought with its carbon.

A pure function of the trials (:class:`TrialCost`: number, state, objective value, CO2e, energy, water,
completion time), wherever they come from (an Optuna storage through :mod:`carbonstep.callbacks.optuna`, or
the MLflow runs it logged, :func:`trials_from_mlflow`):

- the **Pareto front** of objective against CO2e: the completed trials that no other completed trial beats on
  both (as good or better an objective for as little or less CO2e, better on one);
- **where the carbon went**: on the front, on dominated trials, on pruned and on failed trials; everything
  but the front is *spent without improving*;
- the **best value so far against cumulative CO2e** (trials in the order they finished, every state counted)
  and the CO2e at which the search first reached 50, 90, 99 and 100 % of its improvement (from the first
  completed trial's value to the best one): *the last 1 % of improvement* is what the search spent between the
  99 % and the 100 % marks, and *after the best* what it spent once the best was found.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Sequence

from carbonstep.errors import ConfigError
from carbonstep.mlflow_io import names
from carbonstep.report.formatting import format_energy, format_mass, format_volume

MILESTONES_PCT = (50.0, 90.0, 99.0, 100.0)
FINISHED = ("COMPLETE", "PRUNED", "FAIL")
DIRECTIONS = ("minimize", "maximize")


@dataclass(frozen=True)
class TrialCost:
    """One trial: its Optuna state, objective value and footprint (None: not measured by carbonstep)."""

    number: int
    state: str  #: COMPLETE / PRUNED / FAIL / RUNNING / WAITING
    value: float | None
    co2_kg: float | None
    energy_kwh: float | None
    water_l: float | None
    finished_at_s: float | None = None  #: unix time the trial finished (orders the cumulative curve)
    params: dict[str, Any] = field(default_factory=dict)
    skipped: bool = False  #: pruned at its start because the study's budget was spent

    @property
    def measured(self) -> bool:
        """Whether carbonstep measured this trial (it carries energy figures)."""
        return self.co2_kg is not None

    @property
    def kg(self) -> float:
        """CO2e in kg; 0 when not measured (select ``measured`` trials first)."""
        return self.co2_kg or 0.0

    @property
    def objective(self) -> float:
        """The objective value; NaN when the trial has none (select trials with a value first)."""
        return self.value if self.value is not None else math.nan


@dataclass(frozen=True)
class Share:
    """The trials of one kind and what they spent."""

    trials: int
    co2_kg: float
    energy_kwh: float
    share: float  #: of the study's CO2e


@dataclass(frozen=True)
class CurvePoint:
    """The study after a trial finished: cumulative CO2e and the best value so far (None: none yet)."""

    number: int
    state: str
    co2_kg: float
    best: float | None


@dataclass(frozen=True)
class Milestone:
    """The CO2e spent when the best value first reached ``pct`` % of the search's improvement."""

    pct: float
    value: float
    co2_kg: float
    trial: int


@dataclass
class StudyAnalysis:
    """The result of :func:`analyse`: ``table()``, ``to_dict()``, ``figure()``, ``save_plot()``."""

    name: str
    direction: str
    totals: dict[str, Any]
    front: list[TrialCost]
    where: dict[str, Share]
    spent_without_improving_kg: float
    curve: list[CurvePoint]
    milestones: list[Milestone]
    last_10pct_kg: float | None  #: CO2e between reaching 90 % and 100 % of the improvement
    last_1pct_kg: float | None  #: CO2e between reaching 99 % and 100 % of the improvement
    after_best_kg: float | None  #: CO2e spent after the best trial finished
    notes: list[str] = field(default_factory=list)
    trials: list[TrialCost] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The analysis as plain JSON-ready data."""
        return {"study": self.name, "direction": self.direction, "totals": self.totals,
                "pareto_front": [asdict(t) for t in self.front],
                "where": {k: asdict(v) for k, v in self.where.items()},
                "spent_without_improving_kg": self.spent_without_improving_kg,
                "best_so_far": [asdict(p) for p in self.curve],
                "milestones": [asdict(m) for m in self.milestones],
                "last_10pct_kg": self.last_10pct_kg, "last_1pct_kg": self.last_1pct_kg,
                "after_best_kg": self.after_best_kg, "notes": self.notes}

    def table(self) -> str:
        """The one-screen text: totals, where the carbon went, the front, the cost of the last percent."""
        return "\n".join(_table_lines(self))

    def figure(self) -> Any:
        """Three panels: objective against CO2e (the front), where the carbon went, best so far against CO2e."""
        from carbonstep.analysis.study.plot import study_figure

        return study_figure(self)

    def save_plot(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`figure` to ``path`` (.png or .svg)."""
        self.figure().savefig(path, dpi=110)
        return Path(path)


def totals(trials: Iterable[TrialCost]) -> dict[str, Any]:
    """The study's footprint: every measured trial once, in any state; trial counts by state."""
    trials = list(trials)
    measured = [t for t in trials if t.measured]
    states: dict[str, int] = {}
    for trial in trials:
        states[trial.state] = states.get(trial.state, 0) + 1
    return {"trials": len(trials), "states": states, "measured": len(measured),
            "co2_kg": sum(t.co2_kg or 0.0 for t in measured), "energy_kwh": sum(t.energy_kwh or 0.0 for t in measured),
            "water_l": sum(t.water_l or 0.0 for t in measured)}


def _better(a: float, b: float, direction: str) -> bool:
    return a < b if direction == "minimize" else a > b


def has_value(trial: TrialCost) -> bool:
    """Whether a trial completed with a finite objective value (±inf or NaN cannot rank or be improved on)."""
    return trial.state == "COMPLETE" and trial.value is not None and math.isfinite(trial.value)


def pareto_front(trials: Iterable[TrialCost], direction: str = "minimize") -> list[TrialCost]:
    """Completed, measured trials that no other beats on both objective and CO2e, cheapest first (of equal
    trials, the lowest-numbered one); trials without a finite value are left out."""
    done = [t for t in trials if has_value(t) and t.measured]
    sign = 1.0 if direction == "minimize" else -1.0
    done.sort(key=lambda t: (t.kg, sign * t.objective, t.number))
    front: list[TrialCost] = []
    for trial in done:
        if not front or _better(trial.objective, front[-1].objective, direction):
            front.append(trial)
    return front


def _order(trials: Iterable[TrialCost]) -> list[TrialCost]:
    finished = [t for t in trials if t.state in FINISHED and t.measured]
    return sorted(finished, key=lambda t: (t.finished_at_s if t.finished_at_s is not None else math.inf, t.number))


def best_so_far(trials: Iterable[TrialCost], direction: str = "minimize") -> list[CurvePoint]:
    """Cumulative CO2e and best value after each finished trial, in the order the trials finished."""
    spent, best, points = 0.0, None, []
    for trial in _order(trials):
        spent += trial.co2_kg or 0.0
        if has_value(trial) and (best is None or _better(trial.objective, best, direction)):
            best = trial.objective
        points.append(CurvePoint(trial.number, trial.state, spent, best))
    return points


def milestones(curve: Sequence[CurvePoint], direction: str = "minimize") -> list[Milestone]:
    """The CO2e at which the best value first reached each of :data:`MILESTONES_PCT` % of the improvement."""
    reached = [(p, p.best) for p in curve if p.best is not None]
    if not reached:
        return []
    first, final = reached[0][1], reached[-1][1]
    out = []
    for pct in MILESTONES_PCT:
        target = first + (final - first) * pct / 100.0
        tolerance = abs(final - first) * 1e-9
        point, best = next((p, b) for p, b in reached if (b <= target + tolerance if direction == "minimize"
                                                          else b >= target - tolerance))
        out.append(Milestone(pct, best, point.co2_kg, point.number))
    return out


def analyse(trials: Iterable[TrialCost], direction: str = "minimize", name: str = "") -> StudyAnalysis:
    """Everything :class:`StudyAnalysis` holds, from the trials of one study."""
    if direction not in DIRECTIONS:
        raise ConfigError(f"direction must be 'minimize' or 'maximize', got {direction!r}")
    trials, unreadable = _finite_figures(sorted(trials, key=lambda t: t.number))
    total = totals(trials)
    front = pareto_front(trials, direction)
    on_front = {t.number for t in front}
    groups = {"pareto front": [t for t in trials if t.number in on_front],
              "dominated": [t for t in trials if t.state == "COMPLETE" and t.measured and t.number not in on_front],
              "pruned": [t for t in trials if t.state == "PRUNED" and t.measured],
              "failed": [t for t in trials if t.state == "FAIL" and t.measured]}
    spent = total["co2_kg"]
    where = {k: Share(len(v), sum(t.kg for t in v), sum(t.energy_kwh or 0.0 for t in v),
                      sum(t.kg for t in v) / spent if spent > 0 else 0.0) for k, v in groups.items()}
    without = sum(where[k].co2_kg for k in ("dominated", "pruned", "failed"))
    curve = best_so_far(trials, direction)
    marks = milestones(curve, direction)
    at = {m.pct: m.co2_kg for m in marks}
    last_10 = at[100.0] - at[90.0] if marks else None
    last_1 = at[100.0] - at[99.0] if marks else None
    after = curve[-1].co2_kg - at[100.0] if marks else None
    notes = _notes(trials, curve)
    if unreadable:
        notes.insert(0, f"{len(unreadable)} trial(s) with a CO2e, energy or water figure that is not a finite number: "
                        f"{_numbers(unreadable)}; counted as unmeasured")
    return StudyAnalysis(name, direction, total, front, where, without, curve, marks, last_10, last_1, after,
                         notes, trials)


def _finite_figures(trials: list[TrialCost]) -> tuple[list[TrialCost], list[int]]:
    """The trials, those with a NaN or infinite figure (an MLflow metric may be) made unmeasured; their numbers."""
    out, bad = [], []
    for trial in trials:
        figures = (trial.co2_kg, trial.energy_kwh, trial.water_l)
        if any(f is not None and not math.isfinite(f) for f in figures):
            bad.append(trial.number)
            trial = replace(trial, co2_kg=None, energy_kwh=None, water_l=None)
        out.append(trial)
    return out, bad


def _notes(trials: list[TrialCost], curve: list[CurvePoint]) -> list[str]:
    notes = []
    unmeasured = [t.number for t in trials if t.state in FINISHED and not t.measured]
    if unmeasured:
        notes.append(f"{len(unmeasured)} finished trial(s) carry no carbonstep figures (objective not wrapped with "
                     f"CarbonCallback.track?): {_numbers(unmeasured)}; not counted")
    running = [t.number for t in trials if t.state not in FINISHED]
    if running:
        notes.append(f"{len(running)} trial(s) still running or waiting: {_numbers(running)}; not counted")
    skipped = [t.number for t in trials if t.skipped]
    if skipped:
        notes.append(f"{len(skipped)} trial(s) pruned at their start because the carbon budget was spent: "
                     f"{_numbers(skipped)}")
    endless = [t.number for t in trials if t.state == "COMPLETE" and t.value is not None and not has_value(t)]
    if endless:
        notes.append(f"{len(endless)} completed trial(s) with a value that is not a finite number (±inf or NaN): "
                     f"{_numbers(endless)}; left out of the front and the best-so-far curve, their CO2e counted")
    bests = [p.best for p in curve if p.best is not None]
    if bests and bests[0] == bests[-1]:
        notes.append("no trial improved on the first completed one")
    return notes


def _numbers(numbers: list[int]) -> str:
    shown = ", ".join(str(n) for n in numbers[:10])
    return shown + (f" … (+{len(numbers) - 10})" if len(numbers) > 10 else "")


def _table_lines(a: StudyAnalysis) -> list[str]:
    t = a.totals
    states = ", ".join(f"{n} {s.lower()}" for s, n in sorted(t["states"].items()))
    lines = [f"study {a.name!r} ({a.direction}): {t['trials']} trials ({states}); "
             f"{format_mass(t['co2_kg'])} CO2e, {format_energy(t['energy_kwh'])}, {format_volume(t['water_l'])} water",
             "", "where the carbon went:"]
    for kind, share in a.where.items():
        lines.append(f"  {kind:<13} {share.trials:>4} trials  {format_mass(share.co2_kg):>10}  {share.share:>6.1%}")
    spent = t["co2_kg"]
    lines.append(f"  spent without improving (dominated + pruned + failed): {format_mass(a.spent_without_improving_kg)}"
                 f" ({a.spent_without_improving_kg / spent if spent > 0 else 0.0:.1%})")
    if a.front:
        lines += ["", "Pareto front, objective against CO2e (cheapest first):",
                  f"  {'trial':>5} {'value':>12} {'CO2e':>10} {'energy':>10}  params"]
        for trial in a.front:
            params = ", ".join(f"{k}={_short(v)}" for k, v in trial.params.items())
            lines.append(f"  {trial.number:>5} {trial.objective:>12.6g} {format_mass(trial.kg):>10} "
                         f"{format_energy(trial.energy_kwh or 0.0):>10}  {params}")
    if a.milestones and a.last_10pct_kg is not None and a.last_1pct_kg is not None and a.after_best_kg is not None:
        lines += ["", "best value so far against CO2e spent (share of the improvement from the first completed "
                  "trial to the best):"]
        for mark in a.milestones:
            lines.append(f"  {mark.pct:>5.0f} %  {mark.value:>12.6g}  after {format_mass(mark.co2_kg):>10}"
                         f"  (trial {mark.trial})")
        lines.append(f"  the last 10 % of improvement cost {format_mass(a.last_10pct_kg)} CO2e "
                     f"({_of(a.last_10pct_kg, spent)} of the study), the last 1 % {format_mass(a.last_1pct_kg)} "
                     f"({_of(a.last_1pct_kg, spent)}); {format_mass(a.after_best_kg)} ({_of(a.after_best_kg, spent)}) "
                     "was spent after the best trial")
    return lines + [f"* {note}" for note in a.notes]


def _of(part_kg: float, whole_kg: float) -> str:
    return f"{part_kg / whole_kg if whole_kg > 0 else 0.0:.1%}"


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def dump_json(result: StudyAnalysis, path: str | os.PathLike[str]) -> Path:
    """Write ``result.to_dict()`` as JSON."""
    Path(path).write_text(json.dumps(result.to_dict(), indent=2))
    return Path(path)


def trials_from_mlflow(experiment: str, tracking_uri: str | None = None,
                       metric: str = "value") -> tuple[list[TrialCost], str]:
    """The trials of a study from its MLflow runs (one run per trial, tagged ``number``, ``state`` and
    ``direction``, with ``metric`` and ``co2_kg``: what :class:`~carbonstep.optuna.CarbonCallback` logs) and the
    study's direction."""
    from carbonstep.mlflow_io.client import client as mlflow_client
    from carbonstep.mlflow_io.client import find_experiment, iter_runs

    client = mlflow_client(tracking_uri)
    found = find_experiment(client, experiment)
    runs = [r for r in iter_runs(client, [found.experiment_id], limit=50000) if "number" in r.data.tags]
    if not runs:
        raise ConfigError(f"MLflow experiment {experiment!r} has no trial runs (runs tagged 'number'): was it "
                          "logged by carbonstep's Optuna CarbonCallback(mlflow=True)?")
    trials = [_trial_of_run(run, metric) for run in runs]
    directions = {run.data.tags.get("direction", "MINIMIZE").lower() for run in runs}
    return trials, ("maximize" if directions == {"maximize"} else "minimize")


def _trial_of_run(run: Any, metric: str) -> TrialCost:
    tags, metrics = run.data.tags, run.data.metrics
    end_ms = run.info.end_time
    return TrialCost(int(tags["number"]), tags.get("state", "COMPLETE"), metrics.get(metric), metrics.get("co2_kg"),
                     metrics.get("energy_kwh"), metrics.get("water_l"), end_ms / 1000.0 if end_ms else None,
                     dict(run.data.params), tags.get(names.SKIPPED) == "true")
