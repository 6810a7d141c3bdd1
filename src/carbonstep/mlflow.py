"""Public path for the MLflow sink and its local ledger (extra ``mlflow``);
the code lives in :mod:`carbonstep.mlflow_io.sink`."""

from carbonstep.mlflow_io.sink import *  # noqa: F401,F403
from carbonstep.mlflow_io.sink import __all__  # noqa: F401
