import os

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

import sys  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _no_global_mlflow_state():
    """A test that sets MLflow's process-wide tracking URI or leaves a run active must not leak it."""
    yield
    mlflow = sys.modules.get("mlflow")
    if mlflow is None:
        return
    while mlflow.active_run():
        mlflow.end_run()
    from mlflow.tracking._tracking_service import utils

    utils._tracking_uri = None  # MLflow has no public way to forget a set_tracking_uri()
