"""Framework adapters (hooks in, session calls out) and the framework-free :class:`TrainingSession`.

Import a framework's callback from its public path: ``carbonstep.lightning``, ``carbonstep.pytorch_lightning``,
``carbonstep.transformers`` or ``carbonstep.keras``.
"""
