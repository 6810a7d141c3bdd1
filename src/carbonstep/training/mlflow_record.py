"""What a training run leaves in its tracking sink (MLflow): the params and tags, assembled here and only here.

A new figure for the run's params (a CPU estimate's range, the water basis, the GPU scope, embodied CO2e …) is
added to :func:`run_params`; a new label to :func:`start_tags` or :func:`end_tags`, under a name from
:mod:`carbonstep.mlflow_io.names`.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping

from carbonstep._version import __version__
from carbonstep.mlflow_io import names
from carbonstep.report.context import slurm_tags
from carbonstep.report.record import RunReport

log = logging.getLogger("carbonstep")
MAX_PARAM_CHARS = 6000  #: MLflow's limit on a param value


def run_params(tracker: Any) -> dict[str, Any]:
    """How the run is measured, from its started :class:`~carbonstep.Tracker`: logged once, at the start."""
    intensity = tracker.intensity()
    devices = ", ".join(f"{name} ({method})" for name, _, method in tracker.devices)
    return {
        names.REGION: intensity.region or intensity.region_name,
        names.INTENSITY_G_PER_KWH: round(intensity.g_per_kwh, 3),
        names.INTENSITY_SOURCE: intensity.source, names.INTENSITY_YEAR: intensity.year or "",
        names.INTENSITY_BASIS: intensity.basis, names.PUE: tracker.pue, names.WUE: tracker.wue,
        names.METHODS: ", ".join(sorted({f"{domain}: {method}" for _, domain, method in tracker.devices})),
        names.DEVICES: devices[:MAX_PARAM_CHARS], names.ATTRIBUTION: tracker.attribution,
    }


def start_tags() -> dict[str, Any]:
    """The tags set when the run starts: carbonstep's version and the Slurm job's labels."""
    return {names.VERSION: __version__, **slurm_tags()}


def end_tags(status: str, job: RunReport) -> dict[str, Any]:
    """The tags set when the run ends: how it ended, and whether its energy was wasted."""
    return {names.STATUS: status, names.WASTED: str(job.wasted).lower()}


def usage_record(job: RunReport) -> tuple[dict[str, float], dict[str, str]]:
    """The figures (metrics) and labels (tags) ``carbonstep usage`` counts and groups by; empty when they
    cannot be derived (a derived figure never fails the run's end)."""
    from carbonstep.report.usage_record import usage_figures, usage_tags

    try:
        return usage_figures(job), usage_tags(job)
    except Exception as exc:  # noqa: BLE001 - a derived figure must never fail the run's end
        log.warning("carbonstep: usage figures not logged: %s", exc)
        return {}, {}


def final_metrics(totals: Mapping[str, float], figures: Mapping[str, float]) -> dict[str, float]:
    """The metrics logged at the run's last step: the cumulative totals (resume included) and usage figures."""
    return {**totals, **figures}


__all__ = ["end_tags", "final_metrics", "run_params", "start_tags", "usage_record"]
