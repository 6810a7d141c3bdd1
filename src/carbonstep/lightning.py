"""``CarbonCallback`` for PyTorch Lightning's ``lightning.pytorch`` namespace (extra ``lightning``)."""

from __future__ import annotations

from .callbacks.lightning_hooks import LightningHooks
from .errors import require

Callback = require("lightning.pytorch", "lightning").Callback


class CarbonCallback(LightningHooks, Callback):
    __doc__ = LightningHooks.__doc__


__all__ = ["CarbonCallback"]
