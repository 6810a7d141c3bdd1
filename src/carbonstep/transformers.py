"""Public path for the Hugging Face Trainer callback (extra ``transformers``);
the code lives in :mod:`carbonstep.callbacks.transformers`."""

from carbonstep.callbacks.transformers import *  # noqa: F401,F403
from carbonstep.callbacks.transformers import __all__  # noqa: F401
