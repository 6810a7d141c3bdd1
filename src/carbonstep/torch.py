"""``CarbonLoop`` for a plain PyTorch training loop: a context manager and a step function with MLflow logging
and a carbon budget (no extra beyond torch itself; MLflow through the ``mlflow`` extra)."""

from carbonstep.callbacks.torch_loop import CarbonLoop

__all__ = ["CarbonLoop"]
