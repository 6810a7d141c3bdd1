"""Public path for merging one job's reports;
the code lives in :mod:`carbonstep.analysis.merge`."""

from carbonstep.analysis.merge import *  # noqa: F401,F403
from carbonstep.analysis.merge import __all__  # noqa: F401
