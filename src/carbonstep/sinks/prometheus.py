"""Prometheus output, the way clusters collect it: a Pushgateway, a node-exporter textfile, or an HTTP endpoint.

Needs ``prometheus_client`` (the official library; ``pip install "carbonstep[prometheus]"``), imported only here.

* **Pushgateway** (:func:`push_report`, :class:`LivePusher`): batch jobs push, grouped by ``job_id``, ``rank`` and
  ``attempt`` with HTTP PUT (``push_to_gateway``), which replaces the group's metrics: a finished job's last values
  stay, and pushing the same values again never adds anything.
* **textfile** (:func:`write_textfile`): a ``.prom`` file for node-exporter's textfile collector, one per process
  of a job (``carbonstep-<job>-rank<N>-a<attempt>.prom``), written atomically (``write_to_textfile``).
* **endpoint** (:func:`serve`): an HTTP ``/metrics`` for long jobs, read at each scrape from a running Tracker.

Names and units follow Prometheus' conventions (base units, ``_total`` for counters): ``carbonstep_energy_joules_total``
(label ``device``: gpu, cpu or ram), ``carbonstep_co2_grams_total``, ``carbonstep_water_litres_total``,
``carbonstep_wasted_energy_joules_total`` (a failed or interrupted run's energy),
``carbonstep_gpu_idle_energy_joules_total`` (GPUs under 10 % utilisation for over half the run, the ``idle_gpu``
hint's rule), ``carbonstep_gpu_seconds_total``,
and the gauges ``carbonstep_run_start_timestamp_seconds`` and ``carbonstep_run_duration_seconds``.

Labels: ``job_id`` (the Slurm job id, else the run id), ``user``, ``project``, ``account``, ``partition``, ``host``,
``rank`` and ``attempt`` (Slurm's ``SLURM_RESTART_COUNT``). Each value is cut to 64 characters, anything but
letters, digits and ``_.@+-`` made ``_`` (a grouping key is a URL path); no label carries a
step, a time or a free text, so the series are jobs × ranks × attempts (× 3 devices for energy).

**Counting.** Each process exports its own totals (node-level sources are read by one process per host, as in the
reports): a job's total is ``sum by (job_id)``. Counters only go up within an attempt. A restarted job (a Slurm
requeue) is a new ``attempt``: each attempt's series holds the energy that attempt spent, so nothing is counted twice
and nothing already spent disappears. A resumed training session must export its own segment's totals, never the
``cumulative_with_resume`` figures (those include the earlier attempt).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping

if TYPE_CHECKING:
    from carbonstep.report.record import RunReport

J_PER_KWH = 3.6e6
LABELS = ("job_id", "user", "project", "account", "partition", "host", "rank", "attempt")
DEVICES = ("gpu", "cpu", "ram")
MAX_LABEL = 64
PUSH_JOB = "carbonstep"  #: the Pushgateway's ``job`` label (its grouping key's first part)
_UNSAFE = re.compile(r"[^A-Za-z0-9_.@+-]")


@dataclass(frozen=True)
class Figures:
    """One process's cumulative totals, in Prometheus' base units."""

    energy_j: Mapping[str, float]  #: device domain (gpu, cpu, ram) → joules
    co2_g: float
    water_l: float
    wasted_j: float = 0.0
    gpu_idle_j: float = 0.0
    gpu_s: float = 0.0
    started_s: float = 0.0
    duration_s: float = 0.0


def _label(value: Any) -> str:
    text = _UNSAFE.sub("_", ("" if value is None else str(value)).strip())[:MAX_LABEL]
    return text or "unknown"


def labels_for(report: RunReport | None = None, project: str | None = None, run_id: str = "",
               environ: Mapping[str, str] = os.environ, place: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The labels of one process's series: from a report (its Slurm record, user, host, rank) or, for a running
    Tracker, from the environment (Slurm's variables, the login name)."""
    import socket

    from carbonstep.report.context import run_context

    extra = dict(report.extra) if report is not None else run_context(environ)
    slurm = extra.get("slurm") or {}
    place = (report.extra.get("place") if report is not None else place) or {}
    rank = place.get("rank", environ.get("RANK") or environ.get("SLURM_PROCID") or 0)
    return {
        "job_id": _label(slurm.get("job_id") or (report.run_id if report is not None else run_id)),
        "user": _label(slurm.get("user") or extra.get("user")),
        "project": _label(project or extra.get("experiment") or environ.get("CARBONSTEP_PROJECT")
                          or slurm.get("account")),
        "account": _label(slurm.get("account")), "partition": _label(slurm.get("partition")),
        "host": _label(report.host if report is not None else socket.gethostname()),
        "rank": _label(rank), "attempt": _label(environ.get("SLURM_RESTART_COUNT") or 0),
    }


def figures_of_report(report: RunReport) -> Figures:
    """A finished (or partial) report's totals."""
    from datetime import datetime

    from carbonstep.report.hints import IDLE_SHARE

    gpus = [d for d in report.devices if d.domain == "gpu"]
    idle_kwh = sum(d.energy_kwh for d in gpus if (d.idle_fraction or 0.0) > IDLE_SHARE)
    return Figures(
        energy_j={"gpu": report.energy_kwh_gpu * J_PER_KWH, "cpu": report.energy_kwh_cpu * J_PER_KWH,
                  "ram": report.energy_kwh_ram * J_PER_KWH},
        co2_g=report.co2_kg * 1000.0, water_l=report.water_l,
        wasted_j=report.energy_kwh * J_PER_KWH if report.wasted else 0.0, gpu_idle_j=idle_kwh * J_PER_KWH,
        gpu_s=len(gpus) * report.duration_s, started_s=datetime.fromisoformat(report.started_at).timestamp(),
        duration_s=report.duration_s)


def tracker_labels(tracker: Any, project: str | None = None) -> dict[str, str]:
    """The labels of a running Tracker's series (its place in the job, the environment's Slurm job)."""
    place = tracker.place.to_dict() if getattr(tracker, "place", None) is not None else None
    return labels_for(None, project, run_id=tracker.run_id, place=place)


def figures_of_tracker(tracker: Any) -> Figures:
    """A running Tracker's totals so far (its last sample: no hardware read, nothing waited for)."""
    snap = tracker.snapshot(refresh=False)
    gpus = sum(1 for _, domain, _ in tracker.devices if domain == "gpu")
    return Figures(
        energy_j={"gpu": snap.energy_kwh_gpu * J_PER_KWH, "cpu": snap.energy_kwh_cpu * J_PER_KWH,
                  "ram": snap.energy_kwh_ram * J_PER_KWH},
        co2_g=snap.co2_kg * 1000.0, water_l=snap.water_l, gpu_s=gpus * snap.duration_s,
        started_s=getattr(tracker, "_started_wall", 0.0), duration_s=snap.duration_s)


class _Collector:
    """A prometheus_client collector whose values come from ``read()`` at each collection."""

    def __init__(self, read: Callable[[], tuple[dict[str, str], Figures]]) -> None:
        self.read = read

    def describe(self) -> list[Any]:
        """Nothing to describe in advance (the values are read when collected)."""
        return []

    def collect(self) -> Iterator[Any]:
        """The carbonstep families, one sample each (energy: one per device domain)."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        labels, f = self.read()
        names, values = list(labels), list(labels.values())
        energy = CounterMetricFamily("carbonstep_energy_joules", "IT energy measured (before PUE), by device kind",
                                     labels=[*names, "device"])
        for device in DEVICES:
            energy.add_metric([*values, device], f.energy_j.get(device, 0.0))
        yield energy
        for name, doc, value in (
                ("carbonstep_co2_grams", "CO2e emitted (grams), facility energy times grid intensity", f.co2_g),
                ("carbonstep_water_litres", "water consumed on site and at generation (litres)", f.water_l),
                ("carbonstep_wasted_energy_joules", "energy of a failed or interrupted run", f.wasted_j),
                ("carbonstep_gpu_idle_energy_joules", "energy of GPUs under 10 % use for over half the run",
                 f.gpu_idle_j),
                ("carbonstep_gpu_seconds", "GPU time held (GPUs times seconds)", f.gpu_s)):
            family = CounterMetricFamily(name, doc, labels=names)
            family.add_metric(values, value)
            yield family
        for name, doc, value in (
                ("carbonstep_run_start_timestamp_seconds", "when the run started (UNIX seconds)", f.started_s),
                ("carbonstep_run_duration_seconds", "seconds measured so far", f.duration_s)):
            gauge = GaugeMetricFamily(name, doc, labels=names)
            gauge.add_metric(values, value)
            yield gauge


def registry_of(labels: dict[str, str], figures: Figures) -> Any:
    """A fresh ``CollectorRegistry`` holding these figures (never the library's global one)."""
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(lambda: (labels, figures)))
    return registry


def grouping_key(labels: Mapping[str, str]) -> dict[str, str]:
    """The Pushgateway group of one process's series: job, rank and attempt."""
    return {"job_id": labels["job_id"], "rank": labels["rank"], "attempt": labels["attempt"]}


def push(gateway: str, labels: dict[str, str], figures: Figures, timeout_s: float = 5.0) -> str | None:
    """PUT these figures to the Pushgateway at ``gateway`` (``host:port`` or a URL); the error as one line, or None."""
    from prometheus_client import push_to_gateway

    try:
        push_to_gateway(gateway, job=PUSH_JOB, registry=registry_of(labels, figures),
                        grouping_key=grouping_key(labels), timeout=timeout_s)
    except Exception as exc:  # noqa: BLE001 - an unreachable gateway must never fail a run
        return f"could not push to the Pushgateway {gateway}: {exc}"
    return None


def push_report(gateway: str, report: RunReport, project: str | None = None, timeout_s: float = 5.0,
                environ: Mapping[str, str] = os.environ) -> str | None:
    """Push a report's totals (``carbonstep run --pushgateway URL`` at the end); the error as one line, or None."""
    return push(gateway, labels_for(report, project, environ=environ), figures_of_report(report), timeout_s)


def textfile_path(directory: str | os.PathLike[str], labels: Mapping[str, str]) -> Path:
    """This process's own file in node-exporter's textfile directory (ranks and attempts never share one)."""
    return Path(directory) / f"carbonstep-{labels['job_id']}-rank{labels['rank']}-a{labels['attempt']}.prom"


def write_textfile(directory: str | os.PathLike[str], report: RunReport, project: str | None = None,
                   environ: Mapping[str, str] = os.environ) -> Path:
    """Write a report's totals for node-exporter's textfile collector (atomically; the mode the umask gives)."""
    from prometheus_client import write_to_textfile

    labels = labels_for(report, project, environ=environ)
    path = textfile_path(directory, labels)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), registry_of(labels, figures_of_report(report)))
    return path


def serve(tracker: Any, port: int, addr: str = "127.0.0.1", project: str | None = None) -> Any:
    """Expose a running Tracker's totals on ``http://addr:port/metrics`` (read at each scrape, from the last
    sample). Returns the HTTP server: ``server.shutdown()`` stops it."""
    from prometheus_client import CollectorRegistry, start_http_server

    labels = tracker_labels(tracker, project)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(lambda: (labels, figures_of_tracker(tracker))))
    server, _thread = start_http_server(port, addr=addr, registry=registry)
    return server


class LivePusher:
    """Pushes a running Tracker's totals every ``every_s`` seconds from a daemon thread, and the final report at
    :meth:`finish`. Each push waits at most ``timeout_s``; failures are kept in ``errors`` (the first few), never
    raised: a dead gateway costs the training nothing."""

    def __init__(self, gateway: str, tracker: Any, every_s: float = 30.0, project: str | None = None,
                 timeout_s: float = 2.0) -> None:
        import threading

        self.gateway, self.tracker, self.every_s, self.timeout_s = gateway, tracker, every_s, timeout_s
        self.project = project
        self.errors: list[str] = []
        self.pushes = 0
        self._labels: dict[str, str] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="carbonstep-pushgateway", daemon=True)

    def start(self) -> "LivePusher":
        """Push the zeros at once (the counters start from 0 in Prometheus), then every ``every_s``."""
        self._labels = tracker_labels(self.tracker, self.project)
        self._push(figures_of_tracker(self.tracker))
        self._thread.start()
        return self

    def _push(self, figures: Figures) -> None:
        assert self._labels is not None
        error = push(self.gateway, self._labels, figures, self.timeout_s)
        if error is None:
            self.pushes += 1
        elif len(self.errors) < 10:
            self.errors.append(error)

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self._push(figures_of_tracker(self.tracker))
            except Exception as exc:  # noqa: BLE001 - a stopped Tracker, a bad value: never raised into training
                if len(self.errors) < 10:
                    self.errors.append(f"push skipped: {exc}")

    def finish(self, report: RunReport) -> list[str]:
        """Stop the thread (bounded wait) and push the final report; the errors met, as lines."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(self.timeout_s + 1.0)
        self._labels = self._labels or labels_for(report, self.project)
        self._push(figures_of_report(report))
        return list(self.errors)


INSTALL = 'pip install "carbonstep[prometheus]"'


def installed() -> bool:
    """Whether ``prometheus_client`` can be imported (looked up, not imported)."""
    import importlib.util

    return importlib.util.find_spec("prometheus_client") is not None


class Outputs:
    """The Prometheus outputs one process of a run asks for, started after its Tracker and finished with its own
    report (``carbonstep run`` and the training callbacks): a :class:`LivePusher` to ``pushgateway``, an HTTP
    endpoint on ``metrics_port`` (plus the local rank, so ranks on one host never share a port) and a textfile in
    ``textfile_dir`` at the end. Nothing here raises: each fault is one line in the lists returned."""

    def __init__(self, pushgateway: str | None = None, textfile_dir: str | os.PathLike[str] | None = None,
                 metrics_port: int | None = None, project: str | None = None, every_s: float = 30.0,
                 timeout_s: float = 2.0) -> None:
        self.pushgateway, self.textfile_dir, self.metrics_port = pushgateway, textfile_dir, metrics_port
        self.project, self.every_s, self.timeout_s = project, every_s, timeout_s
        self.pusher: LivePusher | None = None
        self.server: Any = None
        self.textfile: Path | None = None  #: the file written at the end

    @property
    def wanted(self) -> bool:
        """Whether any output was asked for."""
        return bool(self.pushgateway or self.textfile_dir is not None or self.metrics_port is not None)

    def start(self, tracker: Any) -> list[str]:
        """Start pushing and serving a running Tracker's totals; the problems met, one line each."""
        problems: list[str] = []
        if not self.wanted:
            return problems
        if not installed():
            return [f"Prometheus output needs prometheus_client: {INSTALL}"]
        if self.pushgateway:
            try:
                self.pusher = LivePusher(self.pushgateway, tracker, self.every_s, self.project,
                                         self.timeout_s).start()
            except Exception as exc:  # noqa: BLE001 - a push that cannot start must not stop the run
                problems.append(f"could not start pushing to the Pushgateway {self.pushgateway}: {exc}")
        if self.metrics_port is not None:
            place = getattr(tracker, "place", None)
            port = self.metrics_port + (place.local_rank if place is not None else 0)
            try:
                self.server = serve(tracker, port, project=self.project)
            except Exception as exc:  # noqa: BLE001 - a port in use must not stop the run
                problems.append(f"could not serve metrics on port {port}: {exc}")
        return problems

    def finish(self, report: RunReport) -> list[str]:
        """Stop the endpoint, push ``report`` (the process's own figures) and write its textfile; the problems
        met, one line each (a dead gateway's failed pushes are one line with their count)."""
        problems: list[str] = []
        if self.server is not None:
            try:
                self.server.shutdown()
                self.server.server_close()
            except Exception as exc:  # noqa: BLE001
                problems.append(f"could not stop the metrics endpoint: {exc}")
            self.server = None
        if self.pusher is not None:
            try:
                errors = self.pusher.finish(report)
            except Exception as exc:  # noqa: BLE001
                errors = [f"could not push to the Pushgateway {self.pushgateway}: {exc}"]
            if errors:
                count = f"{len(errors)}{' or more' if len(errors) >= 10 else ''}"  # LivePusher keeps 10
                more = f" ({count} pushes failed)" if len(errors) > 1 else ""
                problems.append(errors[-1] + more)
            self.pusher = None
        if self.textfile_dir is not None and installed():
            try:
                self.textfile = write_textfile(self.textfile_dir, report, self.project)
            except Exception as exc:  # noqa: BLE001 - a full or read-only folder must not fail the run
                problems.append(f"could not write the Prometheus textfile in {self.textfile_dir}: {exc}")
        return problems


__all__ = [
    "Figures", "LivePusher", "Outputs", "figures_of_report", "figures_of_tracker", "grouping_key", "labels_for", "push",
    "push_report", "registry_of", "serve", "textfile_path", "tracker_labels", "write_textfile",
]
