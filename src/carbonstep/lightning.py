"""``CarbonCallback`` for PyTorch Lightning's ``lightning.pytorch`` namespace (extra ``lightning``)."""

from __future__ import annotations

from typing import Any

from carbonstep.callbacks.lightning import LightningHooks
from carbonstep.errors import MissingExtraError

try:
    import lightning.pytorch
except ImportError as exc:
    raise MissingExtraError("lightning", "lightning") from exc

Callback: Any = lightning.pytorch.Callback


class CarbonCallback(LightningHooks, Callback):
    """Energy, CO2e and water per step and epoch, MLflow logging and a carbon budget (see ``LightningHooks``)."""


__all__ = ["CarbonCallback"]
