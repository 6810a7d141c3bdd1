"""Public path for the MLflow sink, its local ledger and ``sync`` (extra ``mlflow``); the code lives in
:mod:`carbonstep.mlflow_io` (internal).
``save_chart_view`` saves a UI view of a metric against co2_kg on an experiment."""

from carbonstep.mlflow_io.chart_view import save_chart_view
from carbonstep.mlflow_io.sink import MlflowSink
from carbonstep.mlflow_io.sync import SyncResult, send, sync_ledger, sync_ledger_details, trusted_artifacts

__all__ = ["MlflowSink", "SyncResult", "save_chart_view", "send", "sync_ledger", "sync_ledger_details",
           "trusted_artifacts"]
