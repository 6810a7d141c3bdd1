"""MLflow sink: metrics, params, tags and the report, into the run the framework uses.

Everything goes through ``MlflowClient`` with an explicit ``run_id`` (MLflow's active run
is per thread), batched and sent from the sink's own thread, never the sampler's and
never the training loop's. Every point is first appended to a local JSONL ledger
(:mod:`carbonstep.mlflow_io.ledger`); when the tracking server cannot be reached, points wait
there and in memory and are sent when it is back, or later with ``carbonstep sync LEDGER``.

Nothing here raises into training: a ledger that cannot be written (read-only, removed or full
directory) or a server that does not answer is recorded in ``errors`` (:class:`SinkError`),
which the training session puts into the report and its summary. ``close()`` is bounded
(``close_timeout_s``). A forked child (a DataLoader worker) inherits the sink but never sends,
closes or ends the parent's run.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections import deque
from pathlib import Path
from typing import Any, Mapping

from carbonstep.errors import SinkError
from carbonstep.mlflow_io.ledger import Ledger, file_digest
from carbonstep.mlflow_io.probe import unreachable_reason
from carbonstep.mlflow_io.sync import send

log = logging.getLogger("carbonstep")
CLOSE_TIMEOUT_S = 20.0  #: the longest ``close()`` waits for the last send before leaving the rest to the ledger

_LIVE_SINKS: "weakref.WeakSet[MlflowSink]" = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for sink in list(_LIVE_SINKS):
        sink._forget_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


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
        close_timeout_s: float = CLOSE_TIMEOUT_S,
    ) -> None:
        self._target = (run_id, client, tracking_uri, experiment, run_name)
        self.client: Any = client
        self.tracking_uri: str | None = tracking_uri
        self._run_id: str | None = run_id
        self._entities: Any = None
        self.owns_run = False
        self.error: str | None = None  #: the last send error (None after a successful send)
        self._errors: list[SinkError] = []
        self.flush_interval_s = flush_interval_s
        self.close_timeout_s = close_timeout_s
        self.sink_id = os.urandom(4).hex()
        self.ledger_path = Path(ledger_path) if ledger_path else None
        self._ledger: Ledger | None = None
        self._queue: deque[dict[str, Any]] = deque()
        self._unsent: list[dict[str, Any]] = []
        self._seq = 0
        self.sent = 0
        self._owner_pid = os.getpid()
        self._ledger_lock = threading.Lock()  # queue → ledger → unsent: short, file I/O only
        self._send_lock = threading.Lock()  # one send at a time; may be slow (network)
        self._start_lock = threading.Lock()
        self._stop = threading.Event()
        self._started = False
        self._closed = False
        self._status = "FINISHED"
        self._thread: threading.Thread | None = None
        _LIVE_SINKS.add(self)

    def start(self) -> MlflowSink:
        """Find or create the run (a probe and a request or two), open the ledger and start the sending thread.

        The constructor does no I/O: this runs at the first record queued, at the first read of
        :attr:`run_id`, or when called; later calls do nothing. Returns the sink."""
        with self._start_lock:
            if self._started:
                return self
            self._started = True
            from carbonstep.mlflow_io.client import load_entities, load_mlflow

            mlflow = load_mlflow()
            self._entities = load_entities()
            run_id, client, tracking_uri, experiment, run_name = self._target
            self.client = client or mlflow.MlflowClient(tracking_uri)
            self.tracking_uri = str(getattr(self.client, "tracking_uri", None) or tracking_uri
                                    or mlflow.get_tracking_uri())
            if run_id is None:
                active = mlflow.active_run()
                run_id = active.info.run_id if active else self._create_run(experiment, run_name)
            self._run_id = run_id
            self._ledger = Ledger(self.ledger_path, self.sink_id, {"run_id": run_id, "tracking_uri": self.tracking_uri,
                                                                   "pid": os.getpid()}) if self.ledger_path else None
            self._thread = threading.Thread(target=self._run, name="carbonstep-mlflow", daemon=True)
            self._thread.start()
            atexit.register(self.close)
        return self

    @property
    def run_id(self) -> str | None:
        """The MLflow run the records go to (None when it could not be created); starts the sink."""
        self.start()
        return self._run_id

    def _create_run(self, experiment: str | None, run_name: str | None) -> str | None:
        name = experiment or os.environ.get("MLFLOW_EXPERIMENT_NAME") or "Default"
        try:
            reason = unreachable_reason(str(self.tracking_uri))
            if reason:
                raise ConnectionError(reason)
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
        """Queue metrics at a training step (no I/O once started)."""
        self.start()
        stamp = int(time.time() * 1000)
        for key, value in metrics.items():
            self._queue.append({"type": "metric", "key": key, "value": float(value), "timestamp": stamp, "step": step})

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Queue run parameters (no I/O once started)."""
        self.start()
        for key, value in params.items():
            self._queue.append({"type": "param", "key": key, "value": str(value)[:6000]})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Queue run tags (no I/O once started)."""
        self.start()
        for key, value in tags.items():
            self._queue.append({"type": "tag", "key": key, "value": str(value)[:5000]})

    def log_artifact(self, path: str | os.PathLike[str]) -> None:
        """Queue a file the sink's caller wrote (the report); its digest lets ``sync`` check it is unchanged."""
        self.start()
        resolved = Path(path).resolve()
        self._queue.append({"type": "artifact", "path": str(resolved), "sha256": file_digest(resolved)})

    # -- the sink's thread -----------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.wait(self.flush_interval_s):
            self._flush_quietly()
        self._flush_quietly()
        self._end_run()

    def _flush_quietly(self) -> None:
        try:
            self.flush()
        except Exception as exc:  # noqa: BLE001 - the sink's thread must survive anything
            self._record(SinkError(f"MLflow sink: {type(exc).__name__}: {exc}"))

    def flush(self) -> bool:
        """Write what is queued to the ledger and send what is unsent; True when nothing is left unsent."""
        self._drain()
        if not self._send_lock.acquire(timeout=self.close_timeout_s):
            return False  # another send is stuck; the records wait in the ledger and in memory
        try:
            return self._send_unsent()
        finally:
            self._send_lock.release()

    def _drain(self) -> None:
        """Move queued records to the ledger and to the unsent list (no network)."""
        with self._ledger_lock:
            self._drain_locked()

    def _drain_locked(self) -> None:
        drained = []
        while self._queue:
            item = self._queue.popleft()
            self._seq += 1
            item["seq"] = self._seq
            drained.append(item)
        if drained and self._ledger is not None:
            self._ledger.append(drained)  # an I/O error is kept in the ledger's ``error``; the records stay here
        self._unsent += drained

    def _send_unsent(self) -> bool:
        with self._ledger_lock:
            batch = list(self._unsent)
        if not batch or self._run_id is None:
            return not batch
        try:
            reason = unreachable_reason(str(self.tracking_uri))
            if reason:
                raise ConnectionError(reason)
            send(self.client, self._entities, self._run_id, batch)
        except Exception as exc:  # noqa: BLE001 - keep the points, try again later
            if self.error is None:
                log.warning("carbonstep: MLflow unreachable (%s); %d records kept for later", exc, len(batch))
            self.error = str(exc)
            return False
        with self._ledger_lock:
            del self._unsent[:len(batch)]
            self.sent += len(batch)
            if self._ledger is not None:
                self._ledger.append([{"type": "sent", "upto": batch[-1]["seq"], "run_id": self._run_id}])
            left = bool(self._unsent)
        self.error = None
        return not left

    def _end_run(self) -> None:
        if self.owns_run and self._run_id and not self._unsent:
            try:
                self.client.set_terminated(self._run_id, self._status)
            except Exception as exc:  # noqa: BLE001
                self.error = str(exc)

    # -- closing --------------------------------------------------------------------------
    def close(self, status: str = "FINISHED") -> str | None:
        """Send what is left and end the run, waiting at most ``close_timeout_s``; returns a message if anything
        is unsent (it stays in the ledger). A forked child's call does nothing."""
        if os.getpid() != self._owner_pid:
            return None
        if self._closed:
            return self.unsent_message()
        if not self._started and not self._queue:
            self._closed = True  # never used: no run to end, nothing to send
            return None
        self.start()
        self._closed = True
        self._status = status
        atexit.unregister(self.close)
        self._stop.set()
        assert self._thread is not None  # set by start()
        self._thread.join(self.close_timeout_s)
        if self._thread.is_alive():
            self._record(SinkError(f"MLflow ({self.tracking_uri}) did not answer within {self.close_timeout_s:g} s "
                                   "at the end of the run"))
            if self._ledger_lock.acquire(timeout=1.0):  # the thread is stuck sending, not writing the ledger
                try:
                    self._drain_locked()
                finally:
                    self._ledger_lock.release()
        message = self.unsent_message()
        if message:
            self._record(SinkError(message))
        return message

    def _forget_after_fork(self) -> None:
        """In a forked child: fresh locks (the parent's may have been held at the fork), no thread, nothing to send."""
        self._ledger_lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._start_lock = threading.Lock()
        if self._ledger is not None:
            self._ledger._lock = threading.Lock()
        self._closed = True  # the child neither sends the parent's records nor ends its run

    def _record(self, error: SinkError) -> None:
        if all(str(e) != str(error) for e in self._errors):
            self._errors.append(error)

    @property
    def errors(self) -> list[SinkError]:
        """What could not be done: the ledger not written, the server not answering, records left unsent."""
        errors = list(self._errors)
        if self._ledger is not None and self._ledger.error is not None:
            extra = f" ({self._ledger.failed_writes} writes failed)" if self._ledger.failed_writes > 1 else ""
            errors.insert(0, SinkError(f"{self._ledger.error}{extra}"))
        return errors

    def unsent_message(self) -> str | None:
        """What is not sent and how to send it, or None when everything was sent."""
        with _bounded(self._ledger_lock):
            unsent = list(self._unsent) + list(self._queue)
        if not unsent:
            return None
        kinds: dict[str, int] = {}
        for item in unsent:
            kinds[item["type"]] = kinds.get(item["type"], 0) + 1
        what = ", ".join(f"{n} {k}{'s' if n > 1 else ''}" for k, n in sorted(kinds.items()))
        ledger_ok = self._ledger is not None and self._ledger.error is None
        where = (f"; they are kept in {self.ledger_path}: send them with 'carbonstep sync {self.ledger_path}'"
                 if ledger_ok else "; the ledger could not be written, so they are lost")
        return f"not sent to MLflow ({self.tracking_uri}, run {self._run_id}): {what} ({self.error}){where}"


class _bounded:
    """``with _bounded(lock):`` holds ``lock`` if it can be had within a second, else goes on without it."""

    def __init__(self, lock: threading.Lock, timeout_s: float = 1.0) -> None:
        self.lock, self.timeout_s, self.held = lock, timeout_s, False

    def __enter__(self) -> None:
        self.held = self.lock.acquire(timeout=self.timeout_s)

    def __exit__(self, *exc: object) -> None:
        if self.held:
            self.lock.release()


__all__ = ["MlflowSink"]
