"""Public path for the Keras 3 callback (extra ``keras``);
the code lives in :mod:`carbonstep.callbacks.keras`."""

from carbonstep.callbacks.keras import *  # noqa: F401,F403
from carbonstep.callbacks.keras import __all__  # noqa: F401
