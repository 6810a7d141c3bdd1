"""A study's carbon budget and totals over the trials in its storage (every worker's): framework-free, the
Optuna adapter (:mod:`carbonstep.callbacks.optuna`) calls them with a study it holds."""

from __future__ import annotations

import itertools
import logging
import math
import operator
from typing import Any, Callable, Mapping, Sequence

from carbonstep.analysis.study.study import TrialCost, totals
from carbonstep.mlflow_io import names
from carbonstep.report.formatting import format_energy, format_mass, format_volume
from carbonstep.report.record import RunReport
from carbonstep.training.budget import PROJECTION_WINDOW, Budget, Decision

PREFIX = names.PREFIX
ATTR = "carbonstep"  #: the one trial user attr holding every figure (a JSON dict): one storage write per trial
FINISHED = ("COMPLETE", "PRUNED", "FAIL")  #: Optuna's finished trial states (TrialState.is_finished)
FIGURES = ("energy_kwh", "energy_kwh_gpu", "energy_kwh_cpu", "energy_kwh_ram", "co2_kg", "water_l", "duration_s")
BUDGET_QUANTITIES = {"co2_kg": "co2_kg", "kwh": "energy_kwh", "water_l": "water_l"}  # Budget's name → attr's
FORMATS: dict[str, Callable[[float], str]] = {
    "co2_kg": lambda kg: f"{format_mass(kg)} CO2e", "kwh": format_energy, "water_l": format_volume}


def figures_of(parts: Sequence[tuple[str, RunReport]]) -> dict[str, Any]:
    """The trial's figures (stored as one user attr, :data:`ATTR`): each figure summed over the parts that
    measured it, methods, who measured."""
    out: dict[str, Any] = {k: float(sum(getattr(r, k) for _, r in parts)) for k in FIGURES}
    methods: dict[str, set[str]] = {}
    for _, report in parts:
        for domain, method in report.methods.items():
            methods.setdefault(domain, set()).update(m.strip() for m in str(method).split(","))
    out["methods"] = {d: ", ".join(sorted(m)) for d, m in sorted(methods.items())}
    out["measured_by"] = sorted({who.split(" ")[0] for who, _ in parts})
    out["intensity_g_per_kwh"] = sorted({round(r.intensity.g_per_kwh, 3) for _, r in parts})
    return out


def figures_in(user_attrs: Mapping[str, Any]) -> dict[str, Any]:
    """A trial's carbonstep figures from its user attrs: the one :data:`ATTR` dict, or, in a study written by an
    older carbonstep, the per-figure ``carbonstep.*`` attrs (keys without the prefix either way)."""
    stored = user_attrs.get(ATTR)
    if isinstance(stored, dict):
        return stored
    return {k[len(PREFIX):]: v for k, v in user_attrs.items() if k.startswith(PREFIX)}


def trial_costs(study: Any, states: Sequence[Any] | None = None) -> list[TrialCost]:
    """Every trial of ``study`` (from its storage: every worker's) as a :class:`TrialCost`."""
    return costs_of(study.get_trials(deepcopy=False, states=states))


def costs_of(trials: Sequence[Any]) -> list[TrialCost]:
    """Optuna ``FrozenTrial`` s as :class:`TrialCost` s (no storage read)."""
    return [_cost(trial) for trial in trials]


def _cost(trial: Any) -> TrialCost:
    attrs = figures_in(trial.user_attrs)
    measured = "co2_kg" in attrs
    value = trial.values[0] if trial.values else None
    finished = trial.datetime_complete.timestamp() if trial.datetime_complete else None
    return TrialCost(trial.number, trial.state.name, value,
                     attrs.get("co2_kg") if measured else None,
                     attrs.get("energy_kwh") if measured else None,
                     attrs.get("water_l") if measured else None,
                     finished, dict(trial.params), bool(attrs.get("skipped", False)))


class FinishedCosts:
    """:func:`costs_of` for a worker that checks the budget at every trial: a finished trial never changes
    (Optuna refuses to update it), and Optuna's storages hand back the same ``FrozenTrial`` for it at every read
    (``get_trials(deepcopy=False)``), so its :class:`TrialCost` is made once and kept while the storage keeps
    returning that object. Only the trials of the last read are kept; running trials are converted every time."""

    def __init__(self) -> None:
        self._known: dict[int, tuple[Any, TrialCost]] = {}  #: id(FrozenTrial) → (that trial, its cost)

    def of(self, trials: Sequence[Any]) -> list[TrialCost]:
        """The trials' costs, as :func:`costs_of` gives them."""
        known, self._known = self._known, {}
        out = []
        for trial in trials:
            hit = known.get(id(trial))
            if hit is None or hit[0] is not trial:
                hit = (trial, _cost(trial))  # holding the trial: its id is not reused while kept
                if not trial.state.is_finished():
                    out.append(hit[1])
                    continue
            self._known[id(trial)] = hit
            out.append(hit[1])
        return out


class StudyReads:
    """The trials a worker's budget checks read from the study's storage: one read a check, each finished
    trial's cost made once (:class:`FinishedCosts`), and the read of a trial's end check kept for the next trial's
    start check when it is exactly what a new read would find.

    It is when every trial it holds had finished and the new trial's number is their count: Optuna numbers a new
    trial by the trials created before it, so no trial was created between the read and this one (none is in
    flight before it), and a finished trial never changes. What the start check counts, the trials numbered
    below its own, is then the kept read, as the storage held it when the trial was created. With a trial running
    elsewhere, waiting, or created meanwhile (another worker), the start check reads the storage again."""

    def __init__(self) -> None:
        self._costs = FinishedCosts()
        self._kept: tuple[Any, list[TrialCost]] | None = None  #: (the study, its trials) at the last end check

    def read(self, study: Any, keep: bool = False) -> list[TrialCost]:
        """The study's trials from its storage (``keep``: for the next start check, if they may serve it)."""
        trials = self._costs.of(study.get_trials(deepcopy=False))
        self._kept = (study, trials) if keep and all(t.state in FINISHED for t in trials) else None
        return trials

    def kept_for(self, study: Any, number: int) -> list[TrialCost] | None:
        """The kept read if it is what trial ``number``'s start check would read now, else None (read again)."""
        kept, self._kept = self._kept, None
        return kept[1] if kept is not None and kept[0] is study and number == len(kept[1]) else None


def in_flight(trials: Sequence[TrialCost], before: int | None) -> int:
    """Trials running now whose figures are not in the storage yet (each worker's), numbered below ``before``
    (None: all). A trial checking its own start counts only the trials before it: a later one is either at its
    own check, which counts this one, or admitted having counted it. A trial whose figures are stored (finished,
    or refused at its start) is spent, not in flight; a trial failed by the heartbeat is not RUNNING."""
    return len([t for t in trials if t.state == "RUNNING" and not t.measured and (before is None or t.number < before)])


def study_totals(study: Any) -> dict[str, Any]:
    """The study's footprint so far, over every worker's finished trials: CO2e, kWh, litres, trials by state."""
    return totals(trial_costs(study))


def check_study_budget(budget: Budget, trials: Sequence[TrialCost], running_elsewhere: int,
                       after_trial: int) -> Decision:
    """The :class:`Budget` rule applied to a study, trials for epochs: stop once spent ≥ limit, or (``predict``)
    when what is spent, the trials running on other workers and one more trial would overrun it, each trial
    projected at the Budget's rule (the mean cost of the last finished trials)."""
    finished = sorted((t for t in trials if t.measured), key=lambda t: (t.finished_at_s or math.inf, t.number))
    spent = {q: sum([float(v or 0.0) for v in map(operator.attrgetter(attr), finished)])
             for q, attr in BUDGET_QUANTITIES.items()}  # as _figure, in the same order: the same sums
    last = list(itertools.islice((t for t in reversed(finished) if not t.skipped), PROJECTION_WINDOW))[::-1]
    recent = [{q: _figure(t, attr) for q, attr in BUDGET_QUANTITIES.items()} for t in last]  # all the rule reads
    next_cost = {q: sum(c[q] for c in recent) / len(recent) if recent else 0.0 for q in BUDGET_QUANTITIES}
    in_flight = running_elsewhere if budget.predict else 0
    committed = {q: spent[q] + in_flight * next_cost[q] for q in BUDGET_QUANTITIES}
    decision = budget.check(after_trial, committed, recent)  # the Budget's rule on what is spent or committed
    quantity, limit = decision.quantity, decision.limit
    used, show = spent[quantity], FORMATS[quantity]
    if decision.stop and used >= limit:
        reason = f"study budget spent: {show(used)} ≥ {show(limit)} after trial {after_trial}"
    elif decision.stop:
        reason = (f"study budget would be exceeded: {show(used)} spent + {in_flight} trial(s) running on other "
                  f"workers and the next one at {show(next_cost[quantity])} each (mean of the last {len(recent)} "
                  f"trials) > {show(limit)}; stopped after trial {after_trial}")
    else:
        reason = f"study: {show(used)} of {show(limit)} spent ({used / limit:.0%})"
    return Decision(decision.stop, after_trial, quantity, used, decision.projected, limit, reason)


def _figure(trial: TrialCost, attr: str) -> float:
    return float(getattr(trial, attr) or 0.0)  # attr: one of TrialCost's co2_kg, energy_kwh, water_l


def stale_trial(study: Any, trial: Any) -> None:
    """For ``RDBStorage(heartbeat_stale_trial_callback=…)`` (Optuna < 5: ``failed_trial_callback``): Optuna has
    marked ``trial`` FAIL because its worker stopped beating (killed); say that its energy was not recorded."""
    logging.getLogger("carbonstep").warning(
        "carbonstep: trial %d of study %r failed: its worker stopped (killed?) before the trial's end, so the energy "
        "it spent was not recorded and is missing from the study's totals", trial.number, study.study_name)


__all__ = [
    "ATTR", "FinishedCosts", "StudyReads", "check_study_budget", "costs_of", "figures_in", "figures_of", "in_flight",
    "stale_trial", "study_totals", "trial_costs",
]
