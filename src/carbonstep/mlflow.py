"""Public path for the MLflow sink and its local ledger (extra ``mlflow``);
the code lives in :mod:`carbonstep.sinks.mlflow`."""

from carbonstep.sinks.mlflow import *  # noqa: F401,F403
from carbonstep.sinks.mlflow import __all__  # noqa: F401
