"""Where ``carbonstep usage`` reads runs: folders of report files and MLflow tracking stores, streamed.

Report files are reduced to a :class:`UsageRecord` each as they are read (:mod:`.reading`: a lean parse
that leaves out the marks and timeline, a cache of what each file gave, several processes for many files).
MLflow runs are read through ``MlflowClient.search_runs`` a page at a time, filtered by the store (metrics,
params and tags: never the artifacts).

A job is counted once: a report that lists parts (a job report written under DDP or by
``carbonstep merge``) covers the reports of its processes, which are skipped; ranks' reports with
no job report are added up into one record; a file read twice (copied folders) counts once; an
MLflow run whose report was also read (tag ``carbonstep.run_id``) counts once, from the report.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

from carbonstep.analysis.usage.reading import (
    WORST_FIRST,
    _cut_marks,
    check_status,
    read_report,
    read_tree,
    regular_file_text,
)
from carbonstep.analysis.usage.reading import Entry as _Entry
from carbonstep.errors import ConfigError
from carbonstep.mlflow_io import names
from carbonstep.report.usage_record import UNKNOWN, UsageRecord, combined_fields, mlflow_fields

__all__ = ["Collected", "check_status", "collect", "count_jobs_once", "is_tracking_uri", "mlflow_user_filters",
           "non_finite_figure", "read_folder", "read_mlflow", "read_report", "record_from_run", "regular_file_text",
           "report_files", "_cut_marks", "read_tree"]

MLFLOW_PAGE = 1000  #: runs per search request (MLflow's default page, ``mlflow_io.client.SEARCH_PAGE``)
STATUS_FROM_MLFLOW = {"FINISHED": "completed", "FAILED": "failed", "KILLED": "interrupted", "RUNNING": "running",
                      "SCHEDULED": "running"}


@dataclass
class Collected:
    """The runs read, and what was skipped or counted once, in words."""

    records: list[UsageRecord] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  #: files skipped, one line each, naming the file
    notes: list[str] = field(default_factory=list)  #: what was counted once, and why
    sources: list[str] = field(default_factory=list)


# -- report files -------------------------------------------------------------------------------------
def report_files(root: Path) -> Iterator[Path]:
    """Every ``*.json`` file under ``root`` (recursively, in a stable order), temporary files left out."""
    if root.is_file():
        yield root
        return
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            if name.endswith(".json") and not name.startswith("."):
                yield Path(folder) / name


def non_finite_figure(record: UsageRecord) -> str | None:
    """What is wrong when one of a record's figures is NaN or infinite (an MLflow metric may be), else None."""
    for name in ("energy_kwh", "co2_kg", "water_l", "gpu_hours", "idle_gpu_kwh", "after_last_epoch_kwh", "samples"):
        value = getattr(record, name)
        if value is not None and not math.isfinite(value):
            return f"{name} is {value}: not a finite number"
    return None


def read_folder(root: Path, collected: Collected) -> list[_Entry]:
    """Every report under ``root``; files that are not reports are skipped with a warning naming them."""
    if not root.exists():
        raise ConfigError(f"{root}: no such file or folder (give a folder of carbonstep reports or an MLflow "
                          "tracking URI such as sqlite:///mlflow.db or http://host:5000)")
    entries, warnings = read_tree(root)
    collected.warnings += warnings
    collected.sources.append(str(root))
    return entries


def _combine_ranks(entries: list[_Entry]) -> UsageRecord:
    """The job of ranks whose job report is missing (a failed DDP run writes one report per rank)."""
    records = [e.record for e in sorted(entries, key=lambda e: e.rank or 0)]
    first = records[0]
    start_s = min(r.started_s for r in records)
    end_s = max(r.started_s + r.duration_s for r in records)

    def total(name: str) -> float | None:
        values = [getattr(r, name) for r in records]
        return None if any(v is None for v in values) else sum(values)

    def joined(name: str) -> str:
        return "+".join(sorted({getattr(r, name) for r in records}))

    status = next(s for s in WORST_FIRST if s in {r.status for r in records} or s == "completed")
    return first.with_changes(
        source=f"{first.source} (+{len(records) - 1} ranks)", started_s=start_s, duration_s=end_s - start_s,
        status=status, host=joined("host"), gpu_model=joined("gpu_model"),
        energy_kwh=total("energy_kwh"), co2_kg=total("co2_kg"), water_l=total("water_l"),
        gpu_hours=total("gpu_hours"), idle_gpu_kwh=total("idle_gpu_kwh"),
        after_last_epoch_kwh=total("after_last_epoch_kwh"), samples=total("samples"), **combined_fields(records))


def count_jobs_once(entries: list[_Entry], collected: Collected) -> list[UsageRecord]:
    """One record per job: job reports over their processes' reports, ranks added up when alone, copies once."""
    covered = {run_id for e in entries for run_id in e.part_ids}
    jobs: list[UsageRecord] = []
    ranks: dict[str, list[_Entry]] = {}
    seen: set[tuple[str, str, int | None]] = set()
    skipped_parts = copies = 0
    for entry in entries:
        key = (entry.record.run_id, entry.started_at, entry.rank)
        if key in seen:
            copies += 1
            continue
        seen.add(key)
        if not entry.part_ids and entry.record.run_id in covered:
            skipped_parts += 1
        elif entry.rank is not None:
            ranks.setdefault(entry.record.run_id, []).append(entry)
        else:
            jobs.append(entry.record)
    for members in ranks.values():
        jobs.append(_combine_ranks(members))
    if skipped_parts:
        collected.notes.append(f"{skipped_parts} process/rank reports counted through their job's report")
    combined = sum(len(m) for m in ranks.values())
    if combined:
        collected.notes.append(f"{combined} rank reports without a job report added up into {len(ranks)} jobs")
    if copies:
        collected.notes.append(f"{copies} report files were copies of others: counted once")
    return jobs


# -- MLflow ---------------------------------------------------------------------------------------------
def _float(values: Mapping[str, Any], key: str) -> float | None:
    value = values.get(key)
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _gpus_in(devices_param: str) -> int:
    """GPUs named in the ``carbonstep.devices`` param (``gpu:0 (counter), cpu … (estimate)``)."""
    return sum(1 for item in devices_param.split(", ") if item.startswith("gpu"))


def record_from_run(run: Any, experiment: str) -> UsageRecord | None:
    """A record from an MLflow run's metrics, params and tags; None when carbonstep did not log to it."""
    metrics, params, tags = run.data.metrics, run.data.params, run.data.tags
    if "energy_kwh" not in metrics:
        return None
    info = run.info
    started_s = (info.start_time or 0) / 1e3
    duration_s = max(0.0, ((info.end_time or info.start_time or 0) / 1e3) - started_s)
    status = tags.get(names.STATUS) or STATUS_FROM_MLFLOW.get(str(info.status), str(info.status).lower())
    gpu_hours = _float(metrics, "usage_gpu_hours")
    if gpu_hours is None:  # logged before carbonstep recorded it: the GPUs it read × the run's time
        gpu_hours = _gpus_in(params.get(names.DEVICES, "")) * duration_s / 3600.0
    return UsageRecord(
        run_id=tags.get(names.RUN_ID) or info.run_id, source=f"mlflow:{info.run_id}",
        name=info.run_name or info.run_id, started_s=started_s, duration_s=duration_s, status=status,
        user=tags.get("slurm.user") or tags.get(names.USER) or tags.get("mlflow.user") or info.user_id
        or UNKNOWN,
        experiment=experiment, account=tags.get("slurm.account") or UNKNOWN,
        partition=tags.get("slurm.partition") or UNKNOWN, job_id=tags.get("slurm.job_id") or "",
        host=tags.get(names.HOST) or tags.get("slurm.node") or UNKNOWN,
        gpu_model=tags.get(names.GPU_MODEL) or UNKNOWN, region=params.get(names.REGION) or UNKNOWN,
        intensity_g_per_kwh=_float(params, names.INTENSITY_G_PER_KWH),
        intensity_source=params.get(names.INTENSITY_SOURCE, ""),
        energy_kwh=float(metrics["energy_kwh"]), co2_kg=float(metrics.get("co2_kg", 0.0)),
        water_l=float(metrics.get("water_l", 0.0)), gpu_hours=gpu_hours,
        idle_gpu_kwh=float(metrics.get("usage_idle_gpu_kwh", 0.0)),
        after_last_epoch_kwh=_float(metrics, "usage_after_last_epoch_kwh"), samples=_float(metrics, "usage_samples"),
        **mlflow_fields(metrics, params),
    )


def _mlflow_time_filter(since_s: float | None, until_s: float | None) -> str:
    clauses = []
    if since_s is not None:
        clauses.append(f"attributes.start_time >= {int(since_s * 1000)}")
    if until_s is not None:
        clauses.append(f"attributes.start_time < {int(until_s * 1000)}")
    return " and ".join(clauses)


#: where a run's user is found, first that is set first (as :func:`record_from_run` reads it): MLflow's filter
#: syntax for each
USER_FIELDS = ("tags.`slurm.user`", f"tags.`{names.USER}`", "tags.`mlflow.user`", "attributes.user_id")


def mlflow_user_filters(users: list[str] | None) -> list[str] | None:
    """The searches that find every run of ``users``: one per user and place a user is named (MLflow's filter has
    no OR). Together they find a superset (a run whose Slurm user is someone else but whose ``carbonstep.user``
    is one of them); the command's filter keeps the exact runs. None: no user filter, ``unknown`` asked for (the
    runs that name no user, which no search finds), or a name MLflow's filter cannot quote (a quote or a
    backslash in it): then every run is read and the filter applied here."""
    if not users or UNKNOWN in users or any("'" in u or "\\" in u for u in users):
        return None
    return [f"{field} = '{user}'" for user in dict.fromkeys(users) for field in USER_FIELDS]


def _matching_runs(client: Any, experiment_ids: list[str], time_filter: str, users: list[str] | None,
                   page_size: int) -> Iterator[Any]:
    """The runs of the window (and of ``users``, when given) from the store's own search, each run once."""
    from carbonstep.mlflow_io.client import iter_runs

    by_user = mlflow_user_filters(users)
    if by_user is None:
        yield from iter_runs(client, experiment_ids, time_filter, page_size=page_size)
        return
    seen: set[str] = set()
    for clause in by_user:
        query = f"{time_filter} and {clause}" if time_filter else clause
        for run in iter_runs(client, experiment_ids, query, page_size=page_size):
            if run.info.run_id not in seen:
                seen.add(run.info.run_id)
                yield run


def read_mlflow(uri: str, experiments: list[str] | None, since_s: float | None, until_s: float | None,
                collected: Collected, page_size: int = MLFLOW_PAGE,
                users: list[str] | None = None) -> list[UsageRecord]:
    """The carbonstep runs of an MLflow store (all experiments, or those named), a page at a time; the time window,
    the experiments and the users are searched for by the store itself (the runs of others are never read)."""
    from carbonstep.mlflow_io.client import client as mlflow_client
    from carbonstep.mlflow_io.client import iter_experiments
    from carbonstep.mlflow_io.stores import check_readable_store

    check_readable_store(uri, "mlflow")  # never creates a store; a dead server is one line in seconds
    try:
        client = mlflow_client(uri)
        found = list(iter_experiments(client, page_size))
    except Exception as exc:  # noqa: BLE001 - MLflow's own exception types
        reason = (str(exc).splitlines() or [type(exc).__name__])[0].split(". ")[0][:200]
        raise ConfigError(f"cannot read the MLflow store {uri}: {reason}") from None
    by_id = {e.experiment_id: e.name for e in found}
    if experiments:
        by_id = {i: n for i, n in by_id.items() if n in experiments}
        if not by_id:
            collected.notes.append(f"{uri}: no experiment named {', '.join(experiments)}; it has: "
                                   f"{', '.join(sorted(e.name for e in found))}")
    records: list[UsageRecord] = []
    others = 0
    time_filter = _mlflow_time_filter(since_s, until_s)
    for run in _matching_runs(client, list(by_id), time_filter, users, page_size):
        record = record_from_run(run, by_id.get(run.info.experiment_id, UNKNOWN))
        if record is None:
            others += 1
        elif record.status not in WORST_FIRST or non_finite_figure(record):
            problem = non_finite_figure(record) or f"unknown status {str(record.status)[:40]!r}"
            collected.warnings.append(f"{uri}: run {run.info.run_id} skipped: {problem}")
        else:
            records.append(record)
    if others:
        collected.notes.append(f"{uri}: {others} runs without carbonstep metrics left out")
    collected.sources.append(uri)
    return records


def is_tracking_uri(source: str) -> bool:
    """True for an MLflow tracking URI (``sqlite:``, ``http(s):``, ``file:``, ``databricks`` …), not a folder."""
    return "://" in source or source.startswith(("sqlite:", "databricks", "file:"))


def collect(sources: list[str], experiments: list[str] | None = None, since_s: float | None = None,
            until_s: float | None = None, users: list[str] | None = None) -> Collected:
    """Every run of ``sources`` (folders/files of reports and MLflow tracking URIs), each job counted once. The
    window, ``experiments`` and ``users`` narrow what MLflow stores are asked for (report folders are read
    whole); the command's :class:`~carbonstep.analysis.usage.usage.Filters` keep the exact runs."""
    collected = Collected()
    entries: list[_Entry] = []
    from_mlflow: list[UsageRecord] = []
    for source in sources:
        if is_tracking_uri(source):
            from_mlflow += read_mlflow(source, experiments, since_s, until_s, collected, users=users)
        else:
            entries += read_folder(Path(source), collected)
    records = count_jobs_once(entries, collected)
    by_run_id = {r.run_id: i for i, r in enumerate(records)}
    twice = 0
    for record in from_mlflow:
        index = by_run_id.get(record.run_id)
        if index is None:
            records.append(record)
            continue
        twice += 1  # the report has the details; MLflow knows the experiment and maybe the user
        mine = records[index]
        records[index] = mine.with_changes(experiment=record.experiment,
                                           user=mine.user if mine.user != UNKNOWN else record.user)
    if twice:
        collected.notes.append(f"{twice} MLflow runs whose report was also read: counted once")
    collected.records = records
    return collected
