"""Sinks: where figures go (the :class:`~carbonstep.sinks.base.Sink` protocol, MLflow with its local ledger).

Sinks consume snapshots and reports; they never read hardware and never run on the sampler thread.
"""
