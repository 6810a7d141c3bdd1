"""Public path for the MLflow sink, its local ledger and ``sync`` (extra ``mlflow``); the code lives in
:mod:`carbonstep.mlflow_io` (internal)."""

from carbonstep.mlflow_io.sink import MlflowSink
from carbonstep.mlflow_io.sync import SyncResult, send, sync_ledger, sync_ledger_details, trusted_artifacts

__all__ = ["MlflowSink", "SyncResult", "send", "sync_ledger", "sync_ledger_details", "trusted_artifacts"]
