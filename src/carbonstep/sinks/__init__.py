"""Sinks: where figures go (the :class:`~carbonstep.sinks.base.Sink` protocol; MLflow: :mod:`carbonstep.mlflow_io`).

Sinks consume snapshots and reports; they never read hardware and never run on the sampler thread.
"""
