"""``CarbonCallback`` for the Hugging Face ``transformers`` Trainer (extra ``transformers``).

HF runs user callbacks after its ``MLflowCallback``, which starts the MLflow run in
``on_train_begin`` and ends it before a later callback's ``on_train_end``: the run id is
captured at ``on_train_begin`` and everything is logged through ``MlflowClient``.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
from pathlib import Path
from typing import Any

from carbonstep.callbacks.common import make_session, mlflow_sink, wants_mlflow
from carbonstep.errors import MissingExtraError
from carbonstep.report.embodied import model_card_line
from carbonstep.report.record import RunReport
from carbonstep.training.budget import Budget

try:
    import transformers
except ImportError as exc:
    raise MissingExtraError("transformers", "transformers") from exc

TrainerCallback: Any = transformers.TrainerCallback
log = logging.getLogger("carbonstep")
FOOTPRINT_FILE = "carbonstep_footprint.json"
EMBODIED_SENTENCE = "Embodied (manufacturing) emissions"  #: how :func:`model_card_line`'s sentence begins


class CarbonCallback(TrainerCallback):
    """Energy, CO2e and water per step and epoch, MLflow logging, a carbon budget, the model card."""

    def __init__(self, region: str | None = None, budget: Budget | None = None, log_every_n_steps: int | None = None,
                 output_dir: str | os.PathLike[str] | None = None, mlflow: bool | None = None,
                 training_type: str = "fine-tuning", **tracker_options: Any) -> None:
        self.session = make_session(region, budget, log_every_n_steps, output_dir, training_type, tracker_options)
        self.mlflow = mlflow

    @classmethod
    def install(cls, trainer: Any, **kwargs: Any) -> "CarbonCallback":
        """Add a callback to ``trainer`` and put the footprint into its model cards
        (``create_model_card()`` and ``push_to_hub()``)."""
        callback = cls(**kwargs)
        trainer.add_callback(callback)
        create = trainer.create_model_card

        def create_model_card(*args: Any, **kw: Any) -> None:
            create(*args, **kw)
            if callback.report is not None:
                add_co2_to_model_card(Path(trainer.args.output_dir) / "README.md", callback.report,
                                      callback.session.training_type)

        trainer.create_model_card = create_model_card
        return callback

    @property
    def report(self) -> RunReport | None:
        """The run's report once training has ended (None before)."""
        return self.session.report

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Start measuring (every process; the main one logs to MLflow)."""
        if "codecarbon" in args.report_to or ("all" in args.report_to and importlib.util.find_spec("codecarbon")):
            log.warning("carbonstep: HF's CodeCarbonCallback is active too (report_to includes codecarbon): "
                        "energy is measured twice; set report_to without 'codecarbon'")
        sink = None
        if state.is_world_process_zero and wants_mlflow(self.mlflow):
            sink = mlflow_sink(self._output_dir(args))
        every = args.logging_steps if args.logging_steps >= 1 else max(1, int(args.logging_steps * state.max_steps))
        self.session.begin(sink, self._output_dir(args), int(every), args.process_index, args.world_size)

    def _output_dir(self, args: Any) -> str:
        return str(self.session.output_dir or args.output_dir)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Mark an optimizer step with the samples it consumed."""
        count = args.per_device_train_batch_size * args.gradient_accumulation_steps
        # HF's state.epoch is fractional and already k+1 on the last step of epoch k
        self.session.step(state.global_step, max(0, math.ceil(state.epoch or 0) - 1), count)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **kwargs: Any) -> None:
        """Add the latest totals to the Trainer's logs and log history."""
        if logs is None or not self.session.tracker.running:
            return
        totals = self.session.latest_totals()  # never a collective: on_log need not run on every rank
        logs.update(totals)  # later reporters see them in logs; history below
        if state.log_history and state.log_history[-1].get("step") == state.global_step:
            state.log_history[-1].update(totals)

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: dict | None = None, **kwargs: Any) -> None:
        """Record evaluation metrics with the energy and CO2 so far."""
        if self.session.tracker.running:  # HF logs eval metrics at this global step
            values = {k: v for k, v in (metrics or {}).items() if isinstance(v, (int, float))}
            self.session.validation(state.global_step, values)

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Close the epoch and stop when the job's budget says so."""
        epoch = max(0, round(state.epoch or 0) - 1)
        _, decision = self.session.epoch_end(epoch, state.global_step)
        if decision is not None and decision.stop:  # the job's decision, the same on every rank
            control.should_training_stop = True

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """End the run, write the report and the footprint beside the model, update the card."""
        if not self.session.tracker.running:
            return
        report = self.session.end("completed")
        if state.is_world_process_zero:
            report.save(Path(args.output_dir) / FOOTPRINT_FILE)  # the footprint travels with the model
            card = Path(args.output_dir) / "README.md"
            if card.exists():
                add_co2_to_model_card(card, report, self.session.training_type)


def add_co2_to_model_card(path: str | os.PathLike[str], report: RunReport, training_type: str) -> None:
    """Set the ``co2_eq_emissions`` block of a model card (README.md with YAML metadata) and, in its text, the
    embodied emissions as a sentence of their own (never inside ``co2_eq_emissions``, whose figure is operational)."""
    from huggingface_hub import ModelCard

    card = ModelCard.load(os.fspath(path))
    card.data.co2_eq_emissions = report.co2_eq_emissions(training_type)
    card.text = with_embodied_sentence(card.text, model_card_line(report))
    card.save(os.fspath(path))


def with_embodied_sentence(text: str, line: str | None) -> str:
    """``text`` with ``line`` as its last paragraph, replacing the one a previous save wrote (none: removed)."""
    kept = [row for row in text.rstrip("\n").split("\n") if not row.startswith(EMBODIED_SENTENCE)]
    while kept and not kept[-1].strip():
        kept.pop()
    body = "\n".join(kept)
    return f"{body}\n\n{line}\n" if line else f"{body}\n"


__all__ = ["CarbonCallback", "add_co2_to_model_card", "with_embodied_sentence"]
