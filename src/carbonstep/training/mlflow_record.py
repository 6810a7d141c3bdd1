"""What a training run leaves in its tracking sink (MLflow): the params and tags, assembled here and only here.

A new figure for the run's params (a CPU estimate's range, the water basis, the GPU scope, embodied CO2e …) is
added to :func:`run_params`; a new label to :func:`start_tags` or :func:`end_tags`, under a name from
:mod:`carbonstep.mlflow_io.names`.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping

from carbonstep._version import __version__
from carbonstep.accounting.water import mlflow_water_params
from carbonstep.mlflow_io import names
from carbonstep.report.charged import scope_params
from carbonstep.report.context import slurm_tags
from carbonstep.report.cpu_estimate import cpu_estimate_params
from carbonstep.report.embodied import embodied_params
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
        **_named(mlflow_water_params(tracker.accounting), (names.WATER_L_PER_KWH, names.WATER_BASIS)),
    }


def _named(values: Mapping[str, Any], allowed: tuple[str, ...]) -> dict[str, Any]:
    """``values`` under the names of :mod:`~carbonstep.mlflow_io.names` only: a helper's key that is not one of
    them is left out (and said), never written under an unpinned name."""
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        log.warning("carbonstep: not logged to MLflow, not a carbonstep name: %s", ", ".join(unknown))
    return {key: value for key, value in values.items() if key in allowed}


def embodied_basis(job: RunReport) -> str:
    """The embodied figures' service life and sources, as one param (the same in every segment of a resumed run;
    empty without an embodied figure)."""
    block = job.embodied or {}
    if "co2_kg" not in block or not block.get("parts"):
        return ""
    low, mid, high = block["parts"][0]["life_years"]
    life = f"{mid:g} years" if low == high else f"{mid:g} years (range {low:g}-{high:g})"
    sources = sorted({str(part["source"]).split(" (http")[0] for part in block["parts"]})
    return f"cradle-to-gate over a service life of {life}; sources: {'; '.join(sources)}"[:MAX_PARAM_CHARS]


def end_record(job: RunReport, resumed: bool) -> tuple[dict[str, str], dict[str, float]]:
    """The params and metrics only the run's report knows, logged at its end: the CPU estimate's figure, range
    and basis, the scope charged per component (params), the embodied CO2e, its range and parts (metrics, beside
    ``co2_kg``, never added into it). After a resume the report covers the last segment only: the segment's CPU
    figure (a param cannot change) and embodied CO2e (not cumulative) are left out. Never fails the run's end."""
    try:
        params = {**cpu_estimate_params(job), **scope_params(job)}
        basis = embodied_basis(job)
        if basis:
            params[names.EMBODIED_BASIS] = basis
        metrics = {} if resumed else embodied_params(job)
        if resumed:
            params.pop(names.CPU_W_PER_THREAD, None)
        parts = tuple(key for key in metrics if key.startswith(names.EMBODIED_PART_PREFIX))
        return _named(params, names.END_PARAMS), _named(metrics, (*names.EMBODIED_METRICS, *parts))
    except Exception as exc:  # noqa: BLE001 - a derived figure must never fail the run's end
        log.warning("carbonstep: the report's figures not logged to MLflow: %s", exc)
        return {}, {}


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


__all__ = ["embodied_basis", "end_record", "end_tags", "final_metrics", "run_params", "start_tags", "usage_record"]
