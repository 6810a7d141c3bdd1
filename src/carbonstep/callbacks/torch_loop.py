"""``CarbonLoop`` for a plain PyTorch training loop (no framework): a context manager and a step function
over :class:`~carbonstep.training.session.TrainingSession`, with MLflow logging and a carbon budget.

No framework and no torch is imported here: the loop hands in its batches (a tensor, a tuple or a dict of
tensors: only their leading dimension is read) and its metrics (floats or 0-d tensors, read only at the
logging cadence, so the loop does not wait on the device at every step).
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType
from typing import Any, Mapping

from carbonstep.callbacks.common import batch_size, make_session, mlflow_sink, wants_mlflow
from carbonstep.measure.distributed import environment_place
from carbonstep.report.record import RunReport
from carbonstep.training.budget import Budget, Decision

DEFAULT_LOG_EVERY_N_STEPS = 10


def _floats(metrics: Mapping[str, Any] | None) -> dict[str, float]:
    return {name: float(value) for name, value in (metrics or {}).items()}


class CarbonLoop:
    """Measure a hand-written training loop::

        with CarbonLoop(region="FR", budget=Budget(co2_kg=0.01), experiment="my-exp") as carbon:
            for epoch in range(epochs):
                for x, y in loader:
                    loss = ...; loss.backward(); optimizer.step()
                    carbon.step(x, {"train_loss": loss})
                carbon.validation({"val_loss": evaluate(model)})
                if carbon.epoch_end():  # True: the budget is spent (or the next epoch would overrun it)
                    break
        print(carbon.report.co2_kg)

    Energy, CO2e and water go to MLflow (the active run, else a run of its own in ``experiment``) at every
    ``log_every_n_steps``-th step with the metrics given to :meth:`step`, and at each validation with its
    metrics; the report is written to ``output_dir`` (default ``./carbonstep``) when the block ends. An exception
    in the block ends the run as failed (Ctrl-C: interrupted) and is raised on unchanged.
    """

    def __init__(self, region: str | None = None, budget: Budget | None = None,
                 log_every_n_steps: int = DEFAULT_LOG_EVERY_N_STEPS,
                 output_dir: str | os.PathLike[str] | None = None, mlflow: bool | None = None,
                 experiment: str | None = None, run_name: str | None = None, tracking_uri: str | None = None,
                 training_type: str = "pre-training", **tracker_options: Any) -> None:
        self.session = make_session(region, budget, log_every_n_steps, output_dir, training_type, tracker_options)
        self.mlflow = mlflow
        self._mlflow_target = {"experiment": experiment, "run_name": run_name, "tracking_uri": tracking_uri}
        self.global_step = 0  #: optimizer steps taken (the MLflow step)
        self.epoch = 0  #: the epoch under way

    @property
    def report(self) -> RunReport | None:
        """The run's report once the block has ended (None before)."""
        return self.session.report

    @property
    def decision(self) -> Decision | None:
        """The budget's stopping decision, once it stopped the run (None otherwise)."""
        return self.session.decision

    @property
    def run_id(self) -> str | None:
        """The MLflow run the figures go to (None without MLflow)."""
        sink = self.session.sink
        return getattr(sink, "run_id", None) if sink is not None else None

    def _output_dir(self) -> Path:
        return Path(self.session.output_dir or "carbonstep")

    def __enter__(self) -> CarbonLoop:
        """Start measuring (every rank of a torchrun job measures; rank zero logs to MLflow)."""
        place = environment_place()
        sink = None
        if place.rank == 0 and wants_mlflow(self.mlflow):
            sink = mlflow_sink(self._output_dir(), **self._mlflow_target)
        self.session.begin(sink, str(self._output_dir()), self.session.log_every_n_steps or 1, place.rank,
                           place.world_size)
        return self

    def step(self, batch: Any = None, metrics: Mapping[str, Any] | None = None, samples: int | None = None,
             optimizer_stepped: bool = True) -> dict[str, float] | None:
        """Mark one training step (``batch``: to count its samples, or give ``samples``); every
        ``log_every_n_steps`` steps log the totals with ``metrics`` (e.g. ``{"train_loss": loss}``) and return
        the totals. Under gradient accumulation pass ``optimizer_stepped=False`` for the micro-batches that did
        not step."""
        count = samples if samples is not None else batch_size(batch) if batch is not None else None
        if optimizer_stepped:
            self.global_step += 1
        totals = self.session.step(self.global_step, self.epoch, count, optimizer_stepped=optimizer_stepped)
        if totals is not None and metrics and self.session.sink is not None:
            self.session.sink.log_metrics(_floats(metrics), self.global_step)
        return totals

    def validation(self, metrics: Mapping[str, Any]) -> dict[str, float]:
        """Record validation ``metrics`` (e.g. ``{"val_loss": 0.3}``) with the energy and CO2e so far; both go to
        MLflow at the current step, so the UI can chart the metric against ``co2_kg``."""
        values = _floats(metrics)
        if self.session.sink is not None:
            self.session.sink.log_metrics(values, self.global_step)
        return self.session.validation(self.global_step, values)

    def epoch_end(self) -> bool:
        """Close the epoch: its cost and the totals logged; True when the budget says to stop training now."""
        _, decision = self.session.epoch_end(self.epoch, self.global_step)
        self.epoch += 1
        return decision is not None and decision.stop

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        """End the run and write the report (failed or interrupted when the block raised)."""
        if not self.session.tracker.running:
            return
        status = "completed" if exc_type is None else (
            "interrupted" if issubclass(exc_type, KeyboardInterrupt) else "failed")
        self.session.end(status)


__all__ = ["CarbonLoop"]
