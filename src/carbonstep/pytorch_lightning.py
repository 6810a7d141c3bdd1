"""``CarbonCallback`` for the ``pytorch_lightning`` namespace (extra ``lightning``)."""

from __future__ import annotations

from typing import Any

from carbonstep.callbacks.lightning import LightningHooks
from carbonstep.errors import MissingExtraError

try:
    import pytorch_lightning
except ImportError as exc:
    raise MissingExtraError("pytorch_lightning", "lightning") from exc

Callback: Any = pytorch_lightning.Callback


class CarbonCallback(LightningHooks, Callback):
    """Energy, CO2e and water per step and epoch, MLflow logging and a carbon budget (see ``LightningHooks``)."""


__all__ = ["CarbonCallback"]
