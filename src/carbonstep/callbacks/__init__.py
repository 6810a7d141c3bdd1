"""Framework adapters: hooks in, session calls out. Import them from ``carbonstep.lightning``,
``carbonstep.pytorch_lightning``, ``carbonstep.transformers`` and ``carbonstep.keras``."""
