"""What a training run is measured with, as one typed, frozen record every adapter hands on unchanged.

An adapter (Lightning, Keras, Transformers, and any future one) builds a :class:`TrainingOptions` from its own
keyword arguments with :meth:`TrainingOptions.of` (or takes one ready-made) and gives it to
:class:`~carbonstep.training.session.TrainingSession`; nothing between them renames or reshapes an option.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    from carbonstep.training.budget import Budget

#: the Tracker arguments a training run may set besides the named fields (``interval_s``, ``readers`` …)
TRACKER_FIELDS = ("region", "pue", "wue", "intensity")
#: where every rank's totals also go, for Prometheus (:class:`carbonstep.sinks.prometheus.Outputs`)
PROMETHEUS_FIELDS = ("pushgateway", "textfile_dir", "metrics_port")


@dataclass(frozen=True)
class TrainingOptions:
    """How one training run is measured: where (region, PUE, WUE, intensity), within what budget, where the
    report goes, how often the totals are logged, and any further :class:`~carbonstep.Tracker` arguments."""

    region: str | None = None  #: grid region code (e.g. "FR"); None: guessed from the environment
    pue: float | None = None  #: the data centre's power usage effectiveness; None: the default
    wue: float | None = None  #: the data centre's water usage effectiveness (L/kWh); None: the default
    intensity: float | str | os.PathLike[str] | None = None  #: g CO2e/kWh, or a CSV time series
    budget: Budget | None = None  #: stop training when it is spent (or would be)
    output_dir: str | os.PathLike[str] | None = None  #: where the report goes; None: the framework's folder
    log_every_n_steps: int | None = None  #: None: the framework's own cadence
    training_type: str = "pre-training"  #: recorded in the report ("pre-training", "fine-tuning" …)
    summary: bool = True  #: print the end-of-run summary
    pushgateway: str | None = None  #: push every rank's totals to this Prometheus Pushgateway (host:port or URL)
    textfile_dir: str | os.PathLike[str] | None = None  #: write every rank's totals here for node-exporter at the end
    metrics_port: int | None = None  #: serve the running totals on this port (plus the local rank) at /metrics
    tracker: Mapping[str, Any] = field(default_factory=dict)  #: further Tracker keyword arguments

    def __post_init__(self) -> None:
        from carbonstep.training.budget import Budget

        if self.budget is not None and not isinstance(self.budget, Budget):
            raise TypeError(f"budget must be a carbonstep.Budget, got {type(self.budget).__name__}")
        self._check_prometheus()
        clash = sorted(set(self.tracker) & {*TRACKER_FIELDS, *PROMETHEUS_FIELDS, "output_dir"})
        if clash:
            raise TypeError(f"give {', '.join(clash)} as TrainingOptions fields, not in tracker")
        object.__setattr__(self, "tracker", MappingProxyType(dict(self.tracker)))

    def _check_prometheus(self) -> None:
        """Refuse Prometheus options that cannot work before training starts (a fault later is a warning)."""
        if self.pushgateway is not None and (not isinstance(self.pushgateway, str) or not self.pushgateway.strip()):
            raise TypeError(f"pushgateway must be a host:port or URL, got {self.pushgateway!r}")
        if self.metrics_port is not None and (isinstance(self.metrics_port, bool)
                                              or not isinstance(self.metrics_port, int)
                                              or not 0 < self.metrics_port < 65536):
            raise ValueError(f"metrics_port must be a TCP port from 1 to 65535, got {self.metrics_port!r}")
        if self.pushgateway or self.textfile_dir is not None or self.metrics_port is not None:
            from carbonstep.sinks.prometheus import INSTALL, installed

            if not installed():
                raise ImportError(f"pushgateway, textfile_dir and metrics_port need prometheus_client: {INSTALL}")

    @classmethod
    def of(cls, region: str | None = None, budget: Budget | None = None, log_every_n_steps: int | None = None,
           output_dir: str | os.PathLike[str] | None = None, training_type: str = "pre-training",
           **tracker_options: Any) -> TrainingOptions:
        """The options from an adapter's keyword arguments: the named ones, ``pue``, ``wue``, ``intensity``,
        ``summary`` and the Prometheus outputs when given, and every other keyword as a Tracker argument."""
        named = {k: tracker_options.pop(k) for k in ("pue", "wue", "intensity", "summary", *PROMETHEUS_FIELDS)
                 if k in tracker_options}
        return cls(region=region, budget=budget, log_every_n_steps=log_every_n_steps, output_dir=output_dir,
                   training_type=training_type, tracker=tracker_options, **named)

    def with_changes(self, **changes: Any) -> TrainingOptions:
        """A copy with ``changes`` (the record itself never changes)."""
        return replace(self, **changes)

    def tracker_arguments(self) -> dict[str, Any]:
        """The keyword arguments of the run's :class:`~carbonstep.Tracker` (no output folder: the session
        writes the report itself)."""
        named = {k: getattr(self, k) for k in TRACKER_FIELDS if getattr(self, k) is not None}
        return {**self.tracker, **named, "output_dir": None}


__all__ = ["TrainingOptions"]
