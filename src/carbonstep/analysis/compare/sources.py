"""Where compared runs come from: MLflow runs (by id or name) or carbonstep report files."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from carbonstep.analysis.compare.records import RunSeries
from carbonstep.errors import ConfigError
from carbonstep.mlflow_io import names
from carbonstep.report.cpu_estimate import cpu_estimate_params
from carbonstep.report.record import RunReport


def is_run_id(text: str) -> bool:
    """Whether ``text`` looks like an MLflow run id (32 lowercase hex digits)."""
    return re.fullmatch(r"[0-9a-f]{32}", text) is not None


def load_series(ref: str, metric: str, experiment: str | None, tracking_uri: str | None) -> RunSeries:
    """``metric`` and cumulative CO2 by step of ``ref``: a report file, or an MLflow run id or name."""
    if Path(ref).is_file():
        return _from_report(Path(ref), metric)
    return _from_mlflow(ref, metric, experiment, tracking_uri)


def _from_report(path: Path, metric: str) -> RunSeries:
    report = RunReport.load(path)
    records = report.extra.get("validation", [])
    points = [(r["step"], r["metrics"][metric]) for r in records if metric in r["metrics"]]
    if not points:
        found = sorted({k for r in records for k in r["metrics"]})
        raise ConfigError(f"{path}: no {metric!r} in the report's validation records; it has: "
                          f"{', '.join(found) or 'none (was it written by a framework callback?)'}")
    co2 = sorted({r["step"]: r["co2_kg"] for r in records}.items())
    return RunSeries(report.name or path.stem, str(path), points, co2, report.energy_kwh, report.co2_kg,
                     report.water_l, None, methods=dict(report.methods),
                     embodied_co2_kg=(report.embodied or {}).get("co2_kg"), energy_kwh_cpu=report.energy_kwh_cpu,
                     cpu_estimate=estimate_param(cpu_estimate_params(report)))


def _client(tracking_uri: str | None) -> Any:
    """An MLflow client, once the store is known to exist (reading never creates one) and a short probe says its
    server answers (MLflow's own retries take minutes)."""
    from carbonstep.mlflow_io.client import client, default_tracking_uri
    from carbonstep.mlflow_io.stores import check_readable_store

    uri = tracking_uri or default_tracking_uri()
    check_readable_store(uri, "mlflow")
    try:
        return client(tracking_uri)
    except Exception as exc:  # noqa: BLE001 - MLflow refuses some stores (a file store) with its own exception
        reason = (str(exc).splitlines() or [type(exc).__name__])[0].split(". ")[0][:200]
        raise ConfigError(f"cannot read the MLflow store {uri}: {reason}") from None


def _find_run(client: Any, ref: str, experiment: str | None) -> Any:
    if is_run_id(ref):
        try:
            return client.get_run(ref)
        except Exception as exc:  # noqa: BLE001 - MLflow raises its own exception type
            raise ConfigError(f"no MLflow run with id {ref}: {exc}") from None
    from carbonstep.mlflow_io.client import find_experiment, iter_runs

    if experiment:
        experiment_ids = [find_experiment(client, experiment).experiment_id]
    else:
        experiment_ids = [e.experiment_id for e in client.search_experiments()]
    escaped = ref.replace("'", "\\'")
    runs = list(iter_runs(client, experiment_ids, f"attributes.run_name = '{escaped}'", ["start_time DESC"], limit=1))
    if not runs:
        run_names = sorted({r.info.run_name for r in iter_runs(client, experiment_ids, limit=50)})
        raise ConfigError(f"no run named {ref!r} (and no such file); runs here: {', '.join(run_names) or 'none'}")
    return runs[0]


def _from_mlflow(ref: str, metric: str, experiment: str | None, tracking_uri: str | None) -> RunSeries:
    client = _client(tracking_uri)
    run = _find_run(client, ref, experiment)
    run_id = run.info.run_id
    history = client.get_metric_history(run_id, metric)
    if not history:
        raise ConfigError(f"run {run.info.run_name} ({run_id}) has no metric {metric!r}; it has: "
                          f"{', '.join(sorted(run.data.metrics))}")
    co2 = client.get_metric_history(run_id, "co2_kg")
    if not co2:
        raise ConfigError(f"run {run.info.run_name} ({run_id}) has no co2_kg: was carbonstep's callback on?")
    by_step: dict[int, float] = {}
    for point in sorted(co2, key=lambda m: (m.step, m.timestamp)):
        by_step.setdefault(point.step, point.value)  # the first point at a step (at that step's validation)
    metrics = run.data.metrics
    points = sorted((m.step, m.value) for m in history)
    return RunSeries(run.info.run_name or run_id, f"mlflow:{run_id}", points, sorted(by_step.items()),
                     metrics.get("energy_kwh", 0.0), metrics.get("co2_kg", 0.0), metrics.get("water_l", 0.0), run_id,
                     dict(run.data.tags), dict(run.data.params), methods_param(run.data.params),
                     metrics.get(names.EMBODIED_CO2_KG), metrics.get(names.ENERGY_KWH_CPU, 0.0),
                     estimate_param(run.data.params))


def methods_param(params: dict[str, str]) -> dict[str, str]:
    """domain → method from the ``carbonstep.methods`` param the callbacks log ("cpu: estimate, ram: estimate")."""
    pairs = (part.split(":", 1) for part in params.get(names.METHODS, "").split(",") if ":" in part)
    return {domain.strip(): method.strip() for domain, method in pairs}


def estimate_param(params: dict[str, str]) -> dict[str, Any] | None:
    """The CPU estimate's figure, range and basis from the ``carbonstep.cpu_w_*`` params (None: not logged)."""
    try:
        found = {key: float(params[name]) for key, name in (("w_per_thread", names.CPU_W_PER_THREAD),
                                                            ("w_low", names.CPU_W_LOW), ("w_high", names.CPU_W_HIGH))}
    except (KeyError, ValueError):
        return None
    return {**found, "basis": params.get(names.CPU_BASIS, "")}


def experiment_refs(experiment: str, tracking_uri: str | None, run_filter: str | None = None) -> list[str]:
    """The ids of an experiment's finished runs, oldest first (what ``compare --experiment`` compares), narrowed
    by ``run_filter`` (an MLflow search filter such as ``tags.study = '…'``) when given."""
    from carbonstep.mlflow_io.client import find_experiment, iter_runs

    client = _client(tracking_uri)
    found = find_experiment(client, experiment)
    query = "attributes.status = 'FINISHED'" + (f" and {run_filter}" if run_filter else "")
    try:
        runs = list(iter_runs(client, [found.experiment_id], query, ["start_time ASC"], limit=1000))
    except Exception as exc:  # noqa: BLE001 - MLflow raises its own exception type for a bad filter
        raise ConfigError(f"--filter {run_filter!r}: MLflow cannot search with it ({exc})") from None
    if not runs:
        raise ConfigError(f"MLflow experiment {experiment!r} has no finished runs to compare"
                          + (f" matching {run_filter!r}" if run_filter else ""))
    return [run.info.run_id for run in runs]
