"""Optuna: the energy, CO2e and water of every trial, a study-wide carbon budget (extra ``optuna``).

::

    carbon = CarbonCallback(region="FR", budget=Budget(co2_kg=0.05))
    study.optimize(carbon.track(objective), n_trials=200, callbacks=[carbon])

``track`` measures each trial's objective with a :class:`~carbonstep.Tracker`. When the objective trains with
one of carbonstep's framework callbacks, the callback's session measures the training and the trial takes its
report; the trial's own Tracker measures only what runs outside the session (set-up, evaluation), so nothing is
counted twice (:mod:`carbonstep.training.scope`). The figures go into ``trial.user_attrs["carbonstep"]`` (one
JSON dict, one storage write per trial; studies written by older versions, with one ``carbonstep.*`` attr per
figure, are read too), that is into the study's storage, where every worker sees them: the study's totals and
the budget are sums over ``study.get_trials()``, whatever worker ran each trial. Pruned and failed trials count.

**Budget.** After each trial (the callback) the worker stops its optimize loop (``study.stop()``: no trial is cut
short) when the study has spent the budget, or when it would overrun it with the trials now running on other
workers and one more from this worker, each projected at the :class:`~carbonstep.Budget` rule (the mean cost of
the last three finished trials). The same check runs when a trial starts: a worker that finds the budget spent
or committed (another worker spent it meanwhile, or it joined late) prunes that trial at once, at no cost, marked
``skipped``, and stops. In flight counts what the other trials are doing: a trial whose figures are stored is
spent, not in flight; a trial still at its own start check is in flight only for the trials after it (trials
are admitted in number order: the earlier one takes the last place that fits, the later one counts it), so two
workers starting at once never both refuse the last trial that fits. ``carbon.decision`` keeps the decision that
stopped this worker. Each check reads the study's trials once; a start check right after this worker's end check
reuses that read when nothing can have changed for it (:class:`~carbonstep.callbacks.study_budget.StudyReads`).

**A killed worker.** Its trial stays RUNNING in the storage, and would be counted in flight by every later
check. Give the storage a heartbeat, ``optuna.storages.RDBStorage(url, heartbeat_interval=10,
heartbeat_stale_trial_callback=carbonstep.optuna.stale_trial)`` (Optuna < 5: ``failed_trial_callback``): Optuna
then marks a trial whose worker stopped beating FAIL (at each trial start; the budget checks do it too, with
``optuna.storages.fail_stale_trials``), it leaves the in-flight count, and :func:`stale_trial` says in the log that
its energy is lost (nothing of it was stored: the trial's figures are written once, at its end).

**MLflow** (``mlflow=True``) follows Optuna's own ``MLflowCallback``: one run per trial, named after the trial's
number, in an experiment named after the study, with the trial's params, the objective as ``value`` (or
``metric_name``), tags ``number``, ``state``, ``direction``, and carbonstep's ``co2_kg``, ``energy_kwh``,
``water_l`` at the run's last step. The run is active while the objective runs, so a framework callback inside
logs its per-step figures into it, and the run id is kept under ``mlflow_run_id`` in the trial's system attrs,
where Optuna's ``MLflowCallback`` looks for it. With a run already active (a study run you opened) the trial runs
are nested under it.

One process measures one trial at a time: a Tracker measures a process, not a thread, so
``study.optimize(n_jobs>1)`` is refused; run several worker processes on one storage instead.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

from carbonstep.analysis.study.study import StudyAnalysis, TrialCost, analyse
from carbonstep.callbacks.study_budget import (
    ATTR,
    StudyReads,
    check_study_budget,
    figures_in,
    figures_of,
    in_flight,
    stale_trial,
    study_totals,
    trial_costs,
)
from carbonstep.errors import ConfigError, MissingExtraError
from carbonstep.measure.tracker import Tracker
from carbonstep.mlflow_io import names
from carbonstep.mlflow_io.trial import TrialRun, objective_metrics
from carbonstep.report.record import RunReport
from carbonstep.training import scope
from carbonstep.training.budget import Budget, Decision

log = logging.getLogger("carbonstep")
PREFIX = names.PREFIX
SESSION_STATUS = {"completed": "completed", "pruned": "interrupted", "failed": "failed", "interrupted": "interrupted"}


def _optuna() -> Any:
    try:
        import optuna
    except ImportError as exc:
        raise MissingExtraError("optuna", "optuna") from exc
    return optuna


class TrialMeter:
    """Measures one trial: its own Tracker between framework sessions, each session's report during them."""

    def __init__(self, new_tracker: Callable[[], Tracker]) -> None:
        self.new_tracker = new_tracker
        self.pid = os.getpid()
        self.parts: list[tuple[str, RunReport]] = []  #: (what measured it, its report)
        self.sessions: list[Any] = []
        self.last_step = 0  #: the last step a session logged (the trial's figures go at or after it)
        self.tracker: Tracker | None = None
        self.reports: list[str] = []  #: the sessions' report files
        self.error: str | None = None  #: why a part of the trial could not be measured
        self.finishing = False

    def start(self) -> None:
        try:
            self.tracker = self.new_tracker().start()
        except Exception as exc:  # noqa: BLE001 - measuring must never fail the trial
            self.error = f"the trial's Tracker could not start: {exc}"
            log.warning("carbonstep: %s", self.error)

    def _stop_tracker(self, status: str) -> None:
        if self.tracker is not None and self.tracker.running:
            self.parts.append(("tracker", self.tracker.stop(status)))
        self.tracker = None

    def session_began(self, session: Any) -> None:
        if os.getpid() != self.pid:  # a forked child (a DDP rank, a DataLoader worker): not this trial's
            return
        self._stop_tracker("completed")
        self.sessions.append(session)

    def session_ended(self, session: Any) -> None:
        if os.getpid() != self.pid or session not in self.sessions:
            return
        self.sessions.remove(session)
        self.parts.append((f"{type(session).__name__} {session.tracker.run_id}", session.report))
        if session.report_path is not None:
            self.reports.append(str(session.report_path))
        self.last_step = max(self.last_step, session.last_step)
        if not self.sessions and not self.finishing:
            self.start()

    def finish(self, status: str) -> dict[str, Any]:
        """Stop measuring (ending any session left open) and return the trial's figures."""
        self.finishing = True
        for session in list(self.sessions):
            try:
                session.end(status)  # e.g. Keras, which has no exception hook: the trial is over, so is its run
            except Exception:  # noqa: BLE001 - a session that cannot end must not lose the rest
                log.warning("carbonstep: could not end a training session left open by the trial", exc_info=True)
                self.sessions.remove(session)
        self._stop_tracker(status)
        figures = {**figures_of(self.parts), "reports": self.reports}
        return figures if self.error is None else {"error": self.error}  # partial figures: none at all


class _OneTrialPerProcess:
    """A Tracker measures a process: two trials measured at once in one process would each count both."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.active: int | None = None

    def claim(self, number: int) -> None:
        with self._lock:
            if self.active is not None:
                raise ConfigError(
                    f"trial {number} started while trial {self.active} runs in the same process: carbonstep measures "
                    "a process, not a thread, so each would be charged both. Use study.optimize(n_jobs=1) and run "
                    "several worker processes on one storage (e.g. sqlite:///study.db) instead")
            self.active = number

    def release(self) -> None:
        with self._lock:
            self.active = None


_ONE_AT_A_TIME = _OneTrialPerProcess()


class CarbonCallback:
    """Measures each trial of an Optuna study and stops the study on a carbon budget.

    ``study.optimize(carbon.track(objective), callbacks=[carbon])``. ``budget``: a :class:`~carbonstep.Budget`
    for the whole study (every worker's trials). ``mlflow``: one MLflow run per trial (see the module's text);
    ``tracking_uri`` is set as MLflow's tracking URI, as Optuna's ``MLflowCallback`` does; ``experiment``
    defaults to the study's name. ``output_dir``: where MLflow's local ledger is kept. Other keyword arguments
    go to each trial's :class:`~carbonstep.Tracker` (``interval_s``, ``intensity``, ``readers``…).
    """

    def __init__(
        self,
        region: str | None = None,
        budget: Budget | None = None,
        mlflow: bool = False,
        tracking_uri: str | None = None,
        experiment: str | None = None,
        metric_name: str | Sequence[str] = "value",
        output_dir: str | os.PathLike[str] | None = None,
        **tracker_options: Any,
    ) -> None:
        if budget is not None and not isinstance(budget, Budget):
            raise ConfigError(f"budget must be a carbonstep.Budget, e.g. Budget(co2_kg=0.5), got {budget!r}")
        self.tracker_options = {"region": region, **tracker_options}
        Tracker(**self.tracker_options)  # validates the configuration at once
        self.budget = budget
        self.mlflow = mlflow
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.metric_name = metric_name
        self.output_dir = Path(output_dir) if output_dir is not None else None
        self.decision: Decision | None = None  #: the decision that stopped this worker, else its last check's
        self._refused: int | None = None  #: the trial this worker pruned at its start (its decision stands)
        self._warned_no_heartbeat = False
        self._reads = StudyReads()  #: the budget checks' reads of the study's trials
        self._warned_untracked = False
        if mlflow:
            from carbonstep.mlflow_io.client import load_mlflow

            load_mlflow()  # a missing extra is said now, not at the first trial

    # -- measuring a trial ----------------------------------------------------------------
    def track(self, objective: Callable[[Any], Any]) -> Callable[[Any], Any]:
        """``objective`` measured: each trial's figures go into its user attrs (and MLflow run)."""

        @functools.wraps(objective)
        def measured(trial: Any) -> Any:
            self._refuse_if_spent(trial)
            _ONE_AT_A_TIME.claim(trial.number)
            try:
                return self._run_measured(objective, trial)
            finally:
                _ONE_AT_A_TIME.release()

        return measured

    def _run_measured(self, objective: Callable[[Any], Any], trial: Any) -> Any:
        run = TrialRun.start(trial, self.tracking_uri, self.experiment) if self.mlflow else None
        meter = TrialMeter(lambda: Tracker(**{**self.tracker_options, "name": f"trial {trial.number}"}))
        meter.start()
        token = scope.enter(meter)
        outcome, value = "failed", None
        try:
            value = objective(trial)
            outcome = "completed"
            return value
        except BaseException as exc:
            pruned = isinstance(exc, _optuna().TrialPruned)
            outcome = "pruned" if pruned else "failed" if isinstance(exc, Exception) else "interrupted"
            raise
        finally:
            scope.leave(token)
            self._close_trial(trial, meter, run, outcome, value)

    def _close_trial(self, trial: Any, meter: TrialMeter, run: TrialRun | None, outcome: str, value: Any) -> None:
        """Stop measuring, store the figures, finish the MLflow run: never raising over the objective's outcome."""
        try:
            figures = meter.finish(SESSION_STATUS[outcome])
        except Exception as exc:  # noqa: BLE001
            log.warning("carbonstep: could not finish measuring trial %d", trial.number, exc_info=True)
            figures = {"error": f"measuring could not finish: {exc}"}
        self._record(trial, figures)
        if run is None:
            return
        try:
            self._log_trial_run(run, trial, value, outcome, figures, meter.last_step)
        except Exception:  # noqa: BLE001
            log.warning("carbonstep: could not log trial %d to MLflow", trial.number, exc_info=True)

    def _log_trial_run(self, run: TrialRun, trial: Any, value: Any, outcome: str, figures: dict[str, Any],
                       step: int) -> None:
        """The trial's figures, objective, params and Optuna's tags on its MLflow run, which then ends."""
        from carbonstep.callbacks.common import LEDGER_FILE

        metrics = {k: v for k, v in figures.items() if isinstance(v, float)}
        metrics.update(objective_metrics(self.metric_name, value) if outcome == "completed" else {})
        state = {"completed": "COMPLETE", "pruned": "PRUNED"}.get(outcome, "FAIL")
        directions = [d.name for d in trial.study.directions]
        tags = {"number": trial.number, "state": state,
                "direction": directions[0] if len(directions) == 1 else directions,
                PREFIX + "methods": figures.get("methods", figures.get("error"))}
        ledger = self.output_dir / LEDGER_FILE if self.output_dir is not None else None
        run.finish(metrics, dict(trial.params), tags, step, "FINISHED" if outcome in ("completed", "pruned")
                   else "FAILED", ledger)

    def _record(self, trial: Any, figures: dict[str, Any]) -> None:
        try:
            trial.set_user_attr(ATTR, figures)  # one attribute: one storage write (one commit on an RDB)
        except Exception:  # noqa: BLE001 - a storage hiccup must not fail the trial
            log.warning("carbonstep: could not store trial %d's figures in the study", trial.number, exc_info=True)
        if "co2_kg" in figures:
            log.info("carbonstep: trial %d: %.6g kg CO2e, %.6g kWh", trial.number, figures["co2_kg"],
                     figures["energy_kwh"])

    # -- the study budget -------------------------------------------------------------------
    def __call__(self, study: Any, trial: Any) -> None:
        """Optuna's callback, after each trial of this worker: stop the study here if the budget says so."""
        if not figures_in(trial.user_attrs) and not self._warned_untracked:
            self._warned_untracked = True
            log.warning("carbonstep: trial %d has no carbonstep figures: pass carbon.track(objective) to "
                        "study.optimize, not the bare objective", trial.number)
        if self.budget is None or trial.number == self._refused:  # a refused trial's decision stands
            return
        try:
            decision = self._decide(study, trial.number, before=None)
        except Exception:  # noqa: BLE001 - a storage error must not end the search; the next trial checks again
            log.warning("carbonstep: could not read the study's trials to check the budget", exc_info=True)
            return
        if decision.stop:
            self._stop(study, decision)

    def _decide(self, study: Any, after_trial: int | None, before: int | None) -> Decision:
        """The budget's decision on the study as its storage holds it now (``after_trial`` None: at trial
        ``before``'s start, after the last finished trial), counting in flight the trials numbered below ``before``
        (None: all; see :func:`in_flight`). One storage read: what is spent and what is in flight come from the same
        trials; at a start, none if the last end check's read is exactly what it would find (:class:`StudyReads`)."""
        assert self.budget is not None
        trials = self._reads.kept_for(study, before) if after_trial is None and before is not None else None
        if trials is None:
            self._fail_stale_trials(study)
            trials = self._reads.read(study, keep=after_trial is not None)
        if after_trial is None:
            finished = [t for t in trials if t.measured]
            after_trial = max(finished, key=lambda t: t.finished_at_s or 0.0).number if finished else -1
        decision = check_study_budget(self.budget, trials, in_flight(trials, before), after_trial)
        self.decision = decision
        return decision

    def _fail_stale_trials(self, study: Any) -> None:
        """With a storage heartbeat: fail the trials whose worker died (they are no longer in flight). Without one,
        say once that such a trial would be counted in flight for ever."""
        from optuna.storages._heartbeat import is_heartbeat_enabled

        if is_heartbeat_enabled(study._storage):
            optuna = _optuna()
            with warnings.catch_warnings():  # as Optuna calls it itself, at each trial's start
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(study)
        elif not self._warned_no_heartbeat and type(study._storage).__name__ != "InMemoryStorage":
            self._warned_no_heartbeat = True
            log.warning("carbonstep: the study's storage has no heartbeat: a worker killed mid-trial leaves its trial "
                        "RUNNING, counted in flight by the budget for ever. Use optuna.storages.RDBStorage(url, "
                        "heartbeat_interval=10, heartbeat_stale_trial_callback=carbonstep.optuna.stale_trial)")

    def _stop(self, study: Any, decision: Decision) -> None:
        log.warning("carbonstep: %s", decision.reason)
        try:
            study.set_user_attr(PREFIX + "budget", decision.to_dict())
        except Exception:  # noqa: BLE001
            log.debug("carbonstep: could not record the budget decision in the study", exc_info=True)
        study.stop()

    def _refuse_if_spent(self, trial: Any) -> None:
        """At a trial's start: if the study's budget is already spent (or committed), prune this trial at once."""
        if self.budget is None:
            return
        study = trial.study
        try:
            decision = self._decide(study, None, before=trial.number)
        except Exception:  # noqa: BLE001 - as in __call__
            log.warning("carbonstep: could not read the study's trials to check the budget", exc_info=True)
            return
        if not decision.stop:
            return
        self._record(trial, {**figures_of([]), "skipped": True})  # it spends nothing: zeros, counted
        self._refused = trial.number
        self._stop(study, decision)
        raise _optuna().TrialPruned(f"carbonstep: not started, {decision.reason}")

    def totals(self, study: Any) -> dict[str, Any]:
        """The study's footprint so far (every worker's trials): see :func:`study_totals`."""
        return study_totals(study)


# -- reading a finished study (for `carbonstep study`) -------------------------------------
def load_trials(storage: str, study_name: str | None) -> tuple[list[TrialCost], str, str]:
    """The trials, direction and name of a study in an Optuna RDB storage (``sqlite:///study.db``,
    ``postgresql://…``)."""
    optuna = _optuna()
    if storage.startswith("sqlite:///") and not Path(storage[len("sqlite:///"):]).is_file():
        raise ConfigError(f"{storage}: no such SQLite file (reading a study never creates one); give the "
                          "--storage the search wrote, e.g. sqlite:///optuna-search.db")
    try:
        summaries = optuna.get_all_study_summaries(storage)
    except Exception as exc:  # noqa: BLE001 - the storage's own error, said plainly
        raise ConfigError(f"cannot open the Optuna storage {storage!r}: {exc}") from None
    study_names = [s.study_name for s in summaries]
    if study_name is None:
        if len(study_names) != 1:
            raise ConfigError(f"{storage} holds {len(study_names)} studies ({', '.join(study_names) or 'none'}): "
                              "name one with --study NAME")
        study_name = study_names[0]
    if study_name not in study_names:
        raise ConfigError(f"no study {study_name!r} in {storage}; there are: {', '.join(study_names) or 'none'}")
    study = optuna.load_study(study_name=study_name, storage=storage)
    if len(study.directions) > 1:
        raise ConfigError(f"study {study_name!r} has {len(study.directions)} objectives; carbonstep study "
                          "analyses single-objective studies (the Pareto front is objective against CO2e)")
    return trial_costs(study), study.direction.name.lower(), study_name


__all__ = [
    "CarbonCallback", "StudyAnalysis", "TrialCost", "analyse", "check_study_budget", "figures_in", "load_trials",
    "stale_trial", "study_totals", "trial_costs",
]
