"""Measurement: hardware readers, the sampler thread, energy totals and the :class:`Tracker` that wires them.

Data flows one way: ``readers`` -> ``sampler`` -> ``totals`` -> ``tracker`` (which hands its totals to
:mod:`carbonstep.accounting` and :mod:`carbonstep.report`).
"""
