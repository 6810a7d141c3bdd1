"""Public path for merging one job's reports;
the code lives in :mod:`carbonstep.report.merge`."""

from carbonstep.report.merge import *  # noqa: F401,F403
from carbonstep.report.merge import __all__  # noqa: F401
