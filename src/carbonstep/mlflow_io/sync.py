"""Sending ledger records to MLflow: the batches the sink's thread sends, and ``carbonstep sync`` for what a run
left in its ledger while the server was unreachable (each record once, to its own run; only the run's own reports
as artifacts). ``sync`` sends only to the server the user names (``--tracking-uri``, else the environment's
``MLFLOW_TRACKING_URI``), never to one a ledger names: a ledger is data, not instructions."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from carbonstep.errors import ConfigError, SinkError
from carbonstep.mlflow_io.ledger import Ledger, file_digest, read_ledger
from carbonstep.mlflow_io.probe import unreachable_reason

BATCH_METRICS = 1000
BATCH_TAGS = 100
REPORT_GLOB = "carbonstep-*.json"  #: the only files ``sync`` uploads: reports the sink wrote beside its ledger


def send(client: Any, entities: Any, run_id: str, items: list[dict[str, Any]]) -> None:
    """Send ledger items to ``run_id``: metrics/params/tags batched, then artifacts (checked by ``sync``)."""
    metrics = [entities.Metric(i["key"], i["value"], i["timestamp"], i["step"]) for i in items if i["type"] == "metric"]
    params = list({i["key"]: entities.Param(i["key"], i["value"]) for i in items if i["type"] == "param"}.values())
    tags = list({i["key"]: entities.RunTag(i["key"], i["value"]) for i in items if i["type"] == "tag"}.values())
    for start in range(0, max(len(metrics), 1), BATCH_METRICS):
        chunk = metrics[start:start + BATCH_METRICS]
        if chunk:
            client.log_batch(run_id, metrics=chunk, synchronous=True)
    for start in range(0, max(len(params), len(tags)), BATCH_TAGS):
        client.log_batch(run_id, params=params[start:start + BATCH_TAGS], tags=tags[start:start + BATCH_TAGS],
                         synchronous=True)
    for item in items:
        if item["type"] == "artifact" and Path(item["path"]).exists():
            client.log_artifact(run_id, item["path"])


def trusted_artifacts(ledger_path: Path, items: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Artifact records ``sync`` may upload: reports beside the ledger, unchanged since the sink logged them.
    A ledger is data, not instructions: any other file it names is refused (listed in the second value)."""
    kept, refused = [], []
    folder = ledger_path.resolve().parent
    for item in items:
        if item["type"] != "artifact":
            kept.append(item)
            continue
        path = Path(str(item.get("path", "")))
        beside = path.parent == folder and path.match(REPORT_GLOB) and not path.is_symlink()
        if beside and item.get("sha256") and file_digest(path) == item["sha256"]:
            kept.append(item)
        else:
            refused.append(str(path))
    return kept, refused


def sync_target(tracking_uri: str | None) -> str:
    """The server ``sync`` sends to: ``tracking_uri``, else ``MLFLOW_TRACKING_URI``; never a ledger's. Raises
    :class:`ConfigError` when neither names one."""
    target = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not target:
        raise ConfigError("sync needs the MLflow server to send to: pass --tracking-uri URL or set "
                          "MLFLOW_TRACKING_URI (the URI written in a ledger is never trusted)")
    return target


def sync_ledger(path: str | os.PathLike[str], tracking_uri: str | None = None) -> int:
    """Send what a ledger holds and has not sent to ``tracking_uri`` (else ``MLFLOW_TRACKING_URI``), each sink's
    records to the run it recorded (a new run when it had none); returns how many records were sent. Raises
    :class:`ConfigError` with no target, :class:`SinkError` if the server cannot be reached."""
    return sync_ledger_details(path, tracking_uri).sent


@dataclass
class SyncResult:
    """What ``sync`` did: where it sent, records sent, runs they went to, damaged lines skipped (and why), artifacts
    refused, and the other servers the ledger named (not used)."""

    target: str = ""
    sent: int = 0
    runs: list[str] = field(default_factory=list)
    damaged_lines: list[int] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  #: one line per skipped line: where and what is wrong
    refused: list[str] = field(default_factory=list)
    ledger_uris: list[str] = field(default_factory=list)  #: URIs the ledger named that differ from ``target``


def sync_ledger_details(path: str | os.PathLike[str], tracking_uri: str | None = None) -> SyncResult:
    """:func:`sync_ledger`, with what was skipped and where the records went."""
    path = Path(path)
    target = sync_target(tracking_uri)
    contents = read_ledger(path)  # a damaged ledger is named before MLflow is even imported
    from carbonstep.mlflow_io.client import load_entities, load_mlflow

    mlflow = load_mlflow()
    entities = load_entities()
    result = SyncResult(target=target)
    result.damaged_lines = contents.damaged_lines
    result.warnings = contents.warnings
    for sink_id, sink in contents.sinks.items():
        pending = sink.pending()
        if not pending:
            continue
        if sink.header is None:  # records whose header was lost: no run to send them to
            raise SinkError(f"{path}: {len(pending)} records of sink {sink_id} have no header (run id); not sent")
        if sink.tracking_uri and sink.tracking_uri != target and sink.tracking_uri not in result.ledger_uris:
            result.ledger_uris.append(sink.tracking_uri)
        uri = target
        reason = unreachable_reason(uri)
        if reason:
            raise SinkError(f"{reason}: start it, or pass --tracking-uri URL; {path} keeps every record until then")
        upto = max(item["seq"] for item in pending)
        pending, refused = trusted_artifacts(path, pending)
        result.refused += refused
        client = mlflow.MlflowClient(uri)
        run_id = sink.run_id or _new_run(client)
        send(client, entities, run_id, pending)
        ledger = Ledger(path, sink_id, sink.header, header_written=True)
        if not ledger.append([{"type": "sent", "upto": upto, "run_id": run_id}]):
            raise SinkError(f"sent, but could not mark it in {path}: {ledger.error}; a second sync would send again")
        result.sent += len(pending)
        result.runs.append(run_id)
    return result


def _new_run(client: Any) -> str:
    experiment = client.get_experiment_by_name(os.environ.get("MLFLOW_EXPERIMENT_NAME") or "Default")
    return client.create_run(experiment.experiment_id if experiment else "0").info.run_id


__all__ = ["SyncResult", "send", "sync_ledger", "sync_ledger_details", "sync_target", "trusted_artifacts"]
