"""The framework-free training session below the adapters (internal): logging cadence, budget, checkpoints and
resume, the sink. An adapter (Lightning, Keras, Transformers, …) only translates its framework's hooks into
calls on :class:`~carbonstep.training.session.TrainingSession`; a new adapter adds one module beside them.
"""
