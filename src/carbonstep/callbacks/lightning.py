"""The Lightning callback's hooks, shared by ``lightning.pytorch`` and ``pytorch_lightning``.

No framework is imported here: each namespace module mixes this class with its own
``Callback`` base. Hooks only translate Lightning's events into TrainingSession calls.
"""

from __future__ import annotations

import os
from typing import Any

from carbonstep.callbacks.common import batch_size, make_session, mlflow_sink, progress_units, wants_mlflow
from carbonstep.report.record import RunReport
from carbonstep.training.budget import Budget


class LightningHooks:
    """Energy, CO2e and water per step and epoch, MLflow logging and a carbon budget."""

    def __init__(
        self,
        region: str | None = None,
        budget: Budget | None = None,
        log_every_n_steps: int | None = None,
        output_dir: str | os.PathLike[str] | None = None,
        mlflow: bool | None = None,
        progress_bar: bool = True,
        training_type: str = "pre-training",
        **tracker_options: Any,
    ) -> None:
        super().__init__()
        self.session = make_session(region, budget, log_every_n_steps, output_dir, training_type, tracker_options)
        self.mlflow = mlflow
        self.progress_bar = progress_bar
        self._to_framework_logger = True

    @property
    def report(self) -> RunReport | None:
        """The run's report once training has ended (None before)."""
        return self.session.report

    def _sink(self, trainer: Any) -> Any:
        if not trainer.is_global_zero or not wants_mlflow(self.mlflow):
            return None
        output_dir = self._output_dir(trainer)
        for logger in trainer.loggers:
            if type(logger).__name__ == "MLFlowLogger":
                self._to_framework_logger = False  # we log into its run ourselves, at exact steps
                return mlflow_sink(output_dir, run_id=logger.run_id, client=logger.experiment)
        return mlflow_sink(output_dir)

    def _output_dir(self, trainer: Any) -> str:
        return str(self.session.output_dir or os.path.join(trainer.default_root_dir, "carbonstep"))

    @staticmethod
    def _step(trainer: Any) -> int:
        """The step Lightning gives its loggers (optimizer steps taken)."""
        return int(getattr(trainer.fit_loop.epoch_loop, "_batches_that_stepped", trainer.global_step))

    @staticmethod
    def _accumulating(trainer: Any) -> bool:
        """This micro-batch only accumulated gradients: no optimizer step (Lightning's own rule)."""
        should_accumulate = getattr(trainer.fit_loop.epoch_loop, "_should_accumulate", None)
        return bool(should_accumulate()) if callable(should_accumulate) else False

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        """Start measuring (every rank; rank zero logs)."""
        self._to_framework_logger = bool(trainer.loggers)
        self.session.begin(self._sink(trainer), self._output_dir(trainer), trainer.log_every_n_steps,
                           trainer.global_rank, trainer.world_size)

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        """Mark a step; log the totals at Lightning's logging cadence."""
        metrics = self.session.step(self._step(trainer), trainer.current_epoch, batch_size(batch),
                                    optimizer_stepped=not self._accumulating(trainer))
        if metrics:
            pl_module.log_dict(metrics, logger=self._to_framework_logger, on_step=True, on_epoch=False, batch_size=1)
            if self.progress_bar:  # readable units: the bar rounds to 3 decimals
                pl_module.log_dict(progress_units(metrics), prog_bar=True, logger=False, on_step=True,
                                   on_epoch=False, batch_size=1)

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        """Record validation metrics with the energy and CO2 so far."""
        if not trainer.sanity_checking and self.session.tracker.running:
            metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val")}
            self.session.validation(self._step(trainer), metrics)

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        """Close the epoch, log its cost, and stop when the job's budget says so."""
        metrics, decision = self.session.epoch_end(trainer.current_epoch, self._step(trainer))
        # job totals, the same on every rank: Lightning's mean over ranks (sync_dist) leaves them as they are
        pl_module.log_dict(metrics, prog_bar=False, logger=self._to_framework_logger, on_step=False,
                           on_epoch=True, batch_size=1, sync_dist=self.session.distributed)
        if decision is not None and decision.stop:  # the job's decision, the same on every rank
            trainer.should_stop = True

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        """A crash or Ctrl-C: write the report marked wasted."""
        if self.session.tracker.running:
            self.session.end("interrupted" if isinstance(exception, KeyboardInterrupt) else "failed")

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        """End the run and write the report."""
        if self.session.tracker.running:
            self.session.end("completed")

    def state_dict(self) -> dict[str, Any]:
        """The session's state, saved in Lightning's checkpoint."""
        return self.session.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Resume the footprint and budget from a checkpoint."""
        self.session.load_state_dict(state_dict)
