"""Framework adapters (hooks in, session calls out); the session itself is in :mod:`carbonstep.training`.

Import a framework's callback from its public path: ``carbonstep.lightning``, ``carbonstep.pytorch_lightning``,
``carbonstep.transformers`` or ``carbonstep.keras``.
"""
