"""``CarbonCallback`` for Keras 3 on any backend (extra ``keras``).

Training: energy and CO2 go into Keras ``logs`` (progress bar, ``History``) and into MLflow at
step = epoch, the step Keras and ``mlflow.keras.autolog()`` use for epoch and ``val_*`` metrics.
With autolog on, the values reach MLflow through autolog (from ``logs``), not twice.
Inference: passed to ``predict()`` / ``evaluate()``, it measures joules per batch and per sample
(through the framework-free :class:`~carbonstep.training.inference.InferenceSession`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from carbonstep.callbacks.common import make_session, mlflow_sink, progress_units, wants_mlflow
from carbonstep.errors import MissingExtraError
from carbonstep.report.record import RunReport
from carbonstep.training.budget import Budget
from carbonstep.training.inference import InferenceSession

try:
    import keras
except ImportError as exc:
    raise MissingExtraError("keras", "keras") from exc

Callback: Any = keras.callbacks.Callback


def _autolog_active() -> bool:
    from carbonstep.mlflow_io.client import autologging_disabled

    return not autologging_disabled("keras")


def _leading_dim(value: Any) -> int | None:
    while isinstance(value, (list, tuple, dict)) and value:
        value = next(iter(value.values())) if isinstance(value, dict) else value[0]
    shape = getattr(value, "shape", None)
    return int(shape[0]) if shape else None


class CarbonCallback(Callback):
    """Energy, CO2e and water per epoch, MLflow logging, a carbon budget, and inference energy."""

    def __init__(self, region: str | None = None, budget: Budget | None = None, log_every_n_steps: int | None = None,
                 output_dir: str | os.PathLike[str] | None = None, mlflow: bool | None = None,
                 training_type: str = "pre-training", **tracker_options: Any) -> None:
        super().__init__()
        self.session = make_session(region, budget, log_every_n_steps or 10, output_dir, training_type,
                                    tracker_options)
        self.mlflow = mlflow
        self._global_step = self._epoch = 0
        self._log_here = True
        self._inference: InferenceSession | None = None
        self.inference_reports: list[RunReport] = []

    @property
    def report(self) -> RunReport | None:
        """The run's report once training has ended (None before)."""
        return self.session.report

    def _output_dir(self) -> Path:
        return Path(self.session.output_dir or "carbonstep")

    def _sink(self) -> Any:
        if not wants_mlflow(self.mlflow):
            return None
        return mlflow_sink(self._output_dir())

    # -- training ---------------------------------------------------------------------------
    def on_train_begin(self, logs: dict | None = None) -> None:
        """Start measuring the training run."""
        sink = self._sink()
        self._log_here = sink is not None and not _autolog_active()
        self.session.begin(sink, str(self._output_dir()), self.session.log_every_n_steps or 10)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        """Remember the epoch for the step marks."""
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """Mark a step; show energy and CO2 in the progress bar at the logging cadence."""
        self._global_step += 1
        metrics = self.session.step(self._global_step, self._epoch, log=False)
        if metrics and logs is not None:
            logs.update(progress_units(metrics))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        """Close the epoch: totals into ``logs``, validation metrics recorded, the budget."""
        validation = {k: float(v) for k, v in (logs or {}).items() if k.startswith("val_")}
        if validation:  # at step = epoch, like Keras and autolog; epoch_end logs the totals at that step
            self.session.validation(epoch, validation, log=False)
        metrics, decision = self.session.epoch_end(epoch, epoch, log=self._log_here)
        sink = self.session.sink
        if logs is not None:
            own_run = getattr(sink, "owns_run", False)  # a run of our own: Keras' metrics go there too
            if self._log_here and sink is not None and own_run:
                sink.log_metrics({k: float(v) for k, v in logs.items() if isinstance(v, (int, float))}, epoch)
            logs.update(metrics)
        if decision is not None and decision.stop:  # the job's decision, the same on every rank
            self.model.stop_training = True

    def on_train_end(self, logs: dict | None = None) -> None:
        """End the run and write the report."""
        if self.session.tracker.running:
            self.session.end("completed")

    # -- inference ----------------------------------------------------------------------------
    def _begin_inference(self, mode: str) -> None:
        if self.session.tracker.running:
            return  # validation inside fit(): part of training
        self._inference = InferenceSession(mode, self.session.options.tracker_arguments(), self._output_dir()).begin()

    def _inference_batch(self, batch: int, count: int | None) -> None:
        if self._inference is not None:
            self._inference.batch(batch, count)

    def _end_inference(self) -> None:
        inference, self._inference = self._inference, None
        if inference is not None:
            self.inference_reports.append(inference.end(self._sink(), step=len(self.inference_reports)))

    def on_predict_begin(self, logs: dict | None = None) -> None:
        """Start measuring a ``predict()`` pass."""
        self._begin_inference("predict")

    def on_predict_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """Count a predicted batch and its samples."""
        self._inference_batch(batch, _leading_dim((logs or {}).get("outputs")))

    def on_predict_end(self, logs: dict | None = None) -> None:
        """End the ``predict()`` pass: its report and joules per batch and sample."""
        self._end_inference()

    def on_test_begin(self, logs: dict | None = None) -> None:
        """Start measuring an ``evaluate()`` pass (not the validation inside ``fit()``)."""
        self._begin_inference("evaluate")

    def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """Count an evaluated batch."""
        self._inference_batch(batch, None)  # Keras does not pass the batch to evaluate's hooks

    def on_test_end(self, logs: dict | None = None) -> None:
        """End the ``evaluate()`` pass: its report and joules per batch."""
        self._end_inference()


__all__ = ["CarbonCallback"]
