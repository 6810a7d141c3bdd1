"""Public path for planning sites and start times;
the code lives in :mod:`carbonstep.analysis.plan.plan`."""

from carbonstep.analysis.plan.plan import *  # noqa: F401,F403
from carbonstep.analysis.plan.plan import __all__  # noqa: F401
