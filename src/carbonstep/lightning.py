"""``CarbonCallback`` for PyTorch Lightning's ``lightning.pytorch`` namespace (extra ``lightning``)."""

from __future__ import annotations

from typing import Any

from carbonstep.callbacks.lightning import LightningHooks
from carbonstep.errors import require

Callback: Any = require("lightning.pytorch", "lightning").Callback


class CarbonCallback(LightningHooks, Callback):
    __doc__ = LightningHooks.__doc__


__all__ = ["CarbonCallback"]
