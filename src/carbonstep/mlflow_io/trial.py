"""The MLflow run of one hyperparameter trial, as Optuna's own ``MLflowCallback`` (optuna-integration) keeps it.

One run per trial, named after the trial's number, in an experiment named after the study (or the one given);
nested under the active run when there is one. The run is active in the objective's thread while the objective
runs, so a framework callback inside logs into it; its id is kept in the trial's system attrs under
``mlflow_run_id``, where Optuna's callback looks for it. MLflow is imported on use (extra ``mlflow``).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

log = logging.getLogger("carbonstep")
RUN_ID_KEY = "mlflow_run_id"  #: the trial system attr where Optuna's MLflowCallback finds the trial's run


class TrialRun:
    """The MLflow run of one trial: ``start`` before the objective, ``finish`` after it; never raises."""

    def __init__(self, run_id: str, mlflow: Any) -> None:
        self.run_id = run_id
        self.mlflow = mlflow

    @classmethod
    def start(cls, trial: Any, tracking_uri: str | None, experiment: str | None) -> "TrialRun | None":
        """Open the trial's run and make it active; None (and a warning) when MLflow cannot be reached."""
        from carbonstep.mlflow_io.client import experiment_id, load_mlflow
        from carbonstep.mlflow_io.probe import reachable

        mlflow = load_mlflow()
        try:
            if tracking_uri is not None:
                mlflow.set_tracking_uri(tracking_uri)  # as Optuna's MLflowCallback does
            if not reachable(mlflow.get_tracking_uri()):
                raise ConnectionError(f"{mlflow.get_tracking_uri()} is not reachable")
            found = experiment_id(mlflow.MlflowClient(), experiment or trial.study.study_name)
            run = mlflow.start_run(experiment_id=found, run_name=str(trial.number),
                                   nested=mlflow.active_run() is not None)
            trial.storage.set_trial_system_attr(trial._trial_id, RUN_ID_KEY, run.info.run_id)
        except Exception as exc:  # noqa: BLE001 - no MLflow must not stop the search
            log.warning("carbonstep: no MLflow run for trial %d (%s); its figures are in the study's storage",
                        trial.number, exc)
            return None
        return cls(run.info.run_id, mlflow)

    def finish(self, metrics: Mapping[str, float], params: Mapping[str, Any], tags: Mapping[str, Any], step: int,
               status: str, ledger: str | os.PathLike[str] | None) -> None:
        """Log through an :class:`~carbonstep.mlflow_io.sink.MlflowSink` (batched, bounded, kept in ``ledger`` when
        the server is gone) at ``step``, then end the run with ``status``."""
        from carbonstep.mlflow_io.probe import reachable
        from carbonstep.mlflow_io.sink import MlflowSink

        sink = MlflowSink(run_id=self.run_id, ledger_path=Path(ledger) if ledger is not None else None)
        sink.log_metrics(metrics, step)  # at the last step a framework callback logged: the run's latest co2_kg
        sink.log_params(params)
        sink.set_tags(tags)
        message = sink.close()
        if message:
            log.warning("carbonstep: %s", message)
        try:
            if reachable(self.mlflow.get_tracking_uri()):
                self.mlflow.end_run(status)
            else:
                forget_active_run(self.mlflow)
        except Exception:  # noqa: BLE001
            log.warning("carbonstep: could not end the trial's MLflow run %s", self.run_id, exc_info=True)


def objective_metrics(metric_name: str | Sequence[str], value: Any) -> dict[str, float]:
    """The objective value(s) under Optuna MLflowCallback's names (``value``, or ``value_0``, ``value_1``…)."""
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    try:
        numbers = [float(v) for v in values]
    except (TypeError, ValueError):
        return {}
    if isinstance(metric_name, str):
        names = [metric_name] if len(numbers) == 1 else [f"{metric_name}_{i}" for i in range(len(numbers))]
    else:
        names = list(metric_name)
    return dict(zip(names, numbers))


def forget_active_run(mlflow: Any) -> None:
    """The server is gone: leave the run open there, but not active here (MLflow's end_run would retry for
    minutes); the records wait in the ledger."""
    stack = getattr(getattr(mlflow.tracking, "fluent", None), "_active_run_stack", None)
    if stack is not None and stack.get():
        stack.get().pop()
