"""Public path for the Optuna integration (extra ``optuna``); the code lives in :mod:`carbonstep.callbacks.optuna`."""

from carbonstep.callbacks.optuna import *  # noqa: F401,F403
from carbonstep.callbacks.optuna import __all__  # noqa: F401
