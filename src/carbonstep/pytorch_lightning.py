"""``CarbonCallback`` for the ``pytorch_lightning`` namespace (extra ``lightning``)."""

from __future__ import annotations

from carbonstep.callbacks.lightning import LightningHooks
from carbonstep.errors import require

Callback = require("pytorch_lightning", "lightning").Callback


class CarbonCallback(LightningHooks, Callback):
    __doc__ = LightningHooks.__doc__


__all__ = ["CarbonCallback"]
