"""Public path for a process's place in a job;
the code lives in :mod:`carbonstep.measure.distributed`."""

from carbonstep.measure.distributed import *  # noqa: F401,F403
from carbonstep.measure.distributed import __all__  # noqa: F401
