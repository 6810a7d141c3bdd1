"""MLflow sink: metrics, params, tags and the report, into the run the framework uses.

Everything goes through ``MlflowClient`` with an explicit ``run_id`` (MLflow's active run
is per thread), batched and sent from the sink's own thread, never the sampler's and
never the training loop's. Every point is first appended to a local JSONL ledger; when
the tracking server cannot be reached, points wait there and are sent when it is back,
or later with ``carbonstep sync LEDGER``. Nothing is lost silently.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import threading
import time
import urllib.request
from collections import deque
from pathlib import Path
from typing import Any, Iterable, Mapping

from carbonstep.errors import SinkError, require

log = logging.getLogger("carbonstep")
BATCH_METRICS = 1000
BATCH_TAGS = 100


def _reachable(tracking_uri: str, timeout_s: float = 2.0) -> bool:
    """A quick health probe for HTTP tracking servers (MLflow's own retries can block for minutes)."""
    if not tracking_uri.startswith(("http://", "https://")):
        return True
    try:
        with urllib.request.urlopen(tracking_uri.rstrip("/") + "/health", timeout=timeout_s) as response:
            return response.status == 200
    except OSError:
        return False


class MlflowSink:
    """Sends carbonstep records to one MLflow run.

    The run is ``run_id`` if given (with ``client``, e.g. Lightning ``MLFlowLogger.experiment``),
    else the active run, else a new run of its own (in ``experiment``), ended at ``close()``.
    """

    def __init__(
        self,
        run_id: str | None = None,
        client: Any = None,
        tracking_uri: str | None = None,
        experiment: str | None = None,
        ledger_path: str | os.PathLike[str] | None = None,
        flush_interval_s: float = 2.0,
        run_name: str | None = None,
    ) -> None:
        mlflow = require("mlflow", "mlflow")
        self._entities = require("mlflow.entities", "mlflow")
        self.client = client or mlflow.MlflowClient(tracking_uri)
        self.tracking_uri = str(getattr(self.client, "tracking_uri", None) or tracking_uri or mlflow.get_tracking_uri())
        self.owns_run = False
        self.error: str | None = None
        if run_id is None:
            active = mlflow.active_run()
            run_id = active.info.run_id if active else self._create_run(mlflow, experiment, run_name)
        self.run_id = run_id
        self.flush_interval_s = flush_interval_s
        self.ledger_path = Path(ledger_path) if ledger_path else None
        self._queue: deque[dict[str, Any]] = deque()
        self._unsent: list[dict[str, Any]] = []
        self._seq = 0
        self.sent = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._write_ledger([{"type": "run", "run_id": self.run_id, "tracking_uri": self.tracking_uri}])
        self._thread = threading.Thread(target=self._run, name="carbonstep-mlflow", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def _create_run(self, mlflow: Any, experiment: str | None, run_name: str | None) -> str | None:
        name = experiment or os.environ.get("MLFLOW_EXPERIMENT_NAME") or "Default"
        try:
            if not _reachable(self.tracking_uri):
                raise ConnectionError(f"{self.tracking_uri} is not reachable")
            found = self.client.get_experiment_by_name(name)
            experiment_id = found.experiment_id if found else self.client.create_experiment(name)
            self.owns_run = True
            return self.client.create_run(experiment_id, run_name=run_name).info.run_id
        except Exception as exc:  # noqa: BLE001 - an unreachable server must not stop training
            self.error = f"could not create an MLflow run: {exc}"
            log.warning("carbonstep: %s; records stay in the local ledger", self.error)
            return None

    # -- called from the training thread: append and return ------------------------------
    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        stamp = int(time.time() * 1000)
        for key, value in metrics.items():
            self._queue.append({"type": "metric", "key": key, "value": float(value), "timestamp": stamp, "step": step})

    def log_params(self, params: Mapping[str, Any]) -> None:
        for key, value in params.items():
            self._queue.append({"type": "param", "key": key, "value": str(value)[:6000]})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        for key, value in tags.items():
            self._queue.append({"type": "tag", "key": key, "value": str(value)[:5000]})

    def log_artifact(self, path: str | os.PathLike[str]) -> None:
        self._queue.append({"type": "artifact", "path": str(Path(path).resolve())})

    # -- the sink's thread -----------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.wait(self.flush_interval_s):
            self.flush()

    def flush(self) -> bool:
        """Send what is queued; True when nothing is left unsent."""
        with self._lock:
            drained = []
            while self._queue:
                item = self._queue.popleft()
                self._seq += 1
                item["seq"] = self._seq
                drained.append(item)
            self._write_ledger(drained)
            self._unsent += drained
            if not self._unsent or self.run_id is None:
                return not self._unsent
            try:
                if not _reachable(self.tracking_uri):
                    raise ConnectionError(f"{self.tracking_uri} is not reachable")
                send(self.client, self._entities, self.run_id, self._unsent)
            except Exception as exc:  # noqa: BLE001 - keep the points, try again later
                if self.error is None:
                    log.warning("carbonstep: MLflow unreachable (%s); %d records kept for later", exc,
                                len(self._unsent))
                self.error = str(exc)
                return False
            self.sent += len(self._unsent)
            self._write_ledger([{"type": "sent", "upto": self._unsent[-1]["seq"]}])
            self._unsent = []
            self.error = None
            return True

    def _write_ledger(self, items: Iterable[dict[str, Any]]) -> None:
        if self.ledger_path is None:
            return
        lines = "".join(json.dumps(item) + "\n" for item in items)
        if lines:
            self.ledger_path.parent.mkdir(parents=True, exist_ok=True)
            with self.ledger_path.open("a") as handle:
                handle.write(lines)

    def close(self, status: str = "FINISHED") -> str | None:
        """Stop the thread and send what is left; returns a message if anything is unsent."""
        if self._stop.is_set():
            return self.unsent_message()
        self._stop.set()
        self._thread.join()
        atexit.unregister(self.close)
        self.flush()
        if self.owns_run and self.run_id and not self._unsent:
            try:
                self.client.set_terminated(self.run_id, status)
            except Exception as exc:  # noqa: BLE001
                self.error = str(exc)
        return self.unsent_message()

    def unsent_message(self) -> str | None:
        if not self._unsent:
            return None
        kinds: dict[str, int] = {}
        for item in self._unsent:
            kinds[item["type"]] = kinds.get(item["type"], 0) + 1
        what = ", ".join(f"{n} {k}{'s' if n > 1 else ''}" for k, n in sorted(kinds.items()))
        where = f"; they are kept in {self.ledger_path}: send them with 'carbonstep sync {self.ledger_path}'" \
            if self.ledger_path else ""
        return f"not sent to MLflow ({self.tracking_uri}, run {self.run_id}): {what} ({self.error}){where}"


def send(client: Any, entities: Any, run_id: str, items: list[dict[str, Any]]) -> None:
    """Send ledger items to ``run_id``: metrics/params/tags batched, then artifacts."""
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


def sync_ledger(path: str | os.PathLike[str], tracking_uri: str | None = None) -> int:
    """Send what a ledger holds and has not sent; returns how many records were sent."""
    from carbonstep.sinks.ledger_check import read_ledger

    header, lines = read_ledger(path)  # a damaged ledger is named before MLflow is even imported
    if not _reachable(tracking_uri or header["tracking_uri"]):
        raise SinkError(f"the MLflow server {tracking_uri or header['tracking_uri']} is not reachable: start it, or "
                        f"pass --tracking-uri URL; {path} keeps every record until then")
    mlflow = require("mlflow", "mlflow")
    entities = require("mlflow.entities", "mlflow")
    sent_upto = max([item["upto"] for item in lines if item["type"] == "sent"], default=0)
    pending = [item for item in lines if item.get("seq", 0) > sent_upto]
    if not pending:
        return 0
    client = mlflow.MlflowClient(tracking_uri or header["tracking_uri"])
    run_id = header["run_id"]
    if run_id is None:
        experiment = client.get_experiment_by_name("Default")
        run_id = client.create_run(experiment.experiment_id if experiment else "0").info.run_id
    send(client, entities, run_id, pending)
    with Path(path).open("a") as handle:
        handle.write(json.dumps({"type": "sent", "upto": pending[-1]["seq"], "run_id": run_id}) + "\n")
    return len(pending)


__all__ = ["MlflowSink", "send", "sync_ledger"]
