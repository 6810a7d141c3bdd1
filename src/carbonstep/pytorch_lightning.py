"""``CarbonCallback`` for the ``pytorch_lightning`` namespace (extra ``lightning``)."""

from __future__ import annotations

from .callbacks.lightning_hooks import LightningHooks
from .errors import require

Callback = require("pytorch_lightning", "lightning").Callback


class CarbonCallback(LightningHooks, Callback):
    __doc__ = LightningHooks.__doc__


__all__ = ["CarbonCallback"]
