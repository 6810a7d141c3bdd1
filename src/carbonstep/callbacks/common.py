"""Small pieces the framework adapters share (no framework imported here)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from carbonstep.training.budget import Budget
from carbonstep.training.options import TrainingOptions
from carbonstep.training.session import TrainingSession


def make_session(
    region: str | None, budget: Budget | None, log_every_n_steps: int | None,
    output_dir: str | os.PathLike[str] | None, training_type: str, options: dict[str, Any],
) -> TrainingSession:
    """A TrainingSession from a callback's arguments, gathered once into a :class:`TrainingOptions` that the
    session receives unchanged (``options``: ``pue``, ``wue``, ``intensity``, ``summary=False`` to skip the
    end-of-run summary, the Prometheus outputs ``pushgateway``, ``textfile_dir`` and ``metrics_port`` of every
    rank, and further Tracker arguments)."""
    return TrainingSession(TrainingOptions.of(region, budget, log_every_n_steps, output_dir, training_type,
                                              **options))


def wants_mlflow(mlflow: bool | None) -> bool:
    """None: log to MLflow when it is installed. True: it must be. False: never."""
    if mlflow is False:
        return False
    if mlflow is True:
        return True
    from carbonstep.mlflow_io.client import installed

    return installed()


def batch_size(batch: Any) -> int | None:
    """The number of samples in a batch (tensor, sequence of tensors, or dict of tensors)."""
    if hasattr(batch, "shape") and len(batch.shape) > 0:
        return int(batch.shape[0])
    if isinstance(batch, dict):
        batch = next(iter(batch.values()), None)
        return batch_size(batch) if batch is not None else None
    if isinstance(batch, (list, tuple)) and batch:
        return batch_size(batch[0])
    return None


def progress_units(metrics: dict[str, float]) -> dict[str, float]:
    """Energy in Wh and CO2 in g, for progress bars that show three decimals."""
    return {"energy_wh": metrics["energy_kwh"] * 1e3, "co2_g": metrics["co2_kg"] * 1e3}


LEDGER_FILE = "carbonstep-mlflow-ledger.jsonl"


def mlflow_sink(output_dir: str | os.PathLike[str], **options: Any) -> Any:
    """An MlflowSink whose local ledger lives in ``output_dir`` (MLflow is imported only here, on use)."""
    from carbonstep.mlflow_io.sink import MlflowSink

    return MlflowSink(ledger_path=Path(output_dir) / LEDGER_FILE, **options)
