"""Start and stop real Prometheus, Pushgateway and node-exporter servers (Debian's packages) on 127.0.0.1."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from tests.mlflow_server import free_port

BINARIES = {"prometheus": "prometheus", "pushgateway": "prometheus-pushgateway",
            "node_exporter": "prometheus-node-exporter"}


def missing() -> list[str]:
    """The Debian packages whose binary is not installed here."""
    return [package for package in BINARIES.values() if shutil.which(package) is None]


class Server:
    """One server process in its own session, waited for on ``ready_path``, stopped with a bounded wait."""

    def __init__(self, name: str, argv: list[str], port: int, ready_path: str, log: Path) -> None:
        self.name, self.argv, self.port, self.ready_path, self.log = name, argv, port, ready_path, log
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 60.0) -> "Server":
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                with urllib.request.urlopen(self.url + self.ready_path, timeout=1) as reply:
                    if reply.status == 200:
                        return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.name} did not start on {self.url}: {self.log.read_text()[-2000:]}")

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout_s)
        except ProcessLookupError:
            pass
        self.process = None


class Stack:
    """A Pushgateway, a node-exporter reading ``textfiles/``, and a Prometheus scraping both (and ``endpoint_port``)
    every second."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.textfiles = root / "textfiles"
        self.textfiles.mkdir(parents=True, exist_ok=True)
        self.endpoint_port = free_port()
        gateway_port, node_port, prometheus_port = free_port(), free_port(), free_port()
        self.pushgateway = Server("pushgateway", [
            BINARIES["pushgateway"], f"--web.listen-address=127.0.0.1:{gateway_port}",
            f"--persistence.file={root / 'pushgateway.data'}"],  # Debian's default is a system file
            gateway_port, "/-/ready", root / "pushgateway.log")
        self.node = Server("node-exporter", [
            BINARIES["node_exporter"], f"--web.listen-address=127.0.0.1:{node_port}", "--collector.disable-defaults",
            "--collector.textfile", f"--collector.textfile.directory={self.textfiles}"],
            node_port, "/metrics", root / "node.log")
        config = root / "prometheus.yml"
        config.write_text(json.dumps({  # YAML is a superset of JSON
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [
                {"job_name": "pushgateway", "honor_labels": True,
                 "static_configs": [{"targets": [f"127.0.0.1:{gateway_port}"]}]},
                {"job_name": "node", "static_configs": [{"targets": [f"127.0.0.1:{node_port}"]}]},
                {"job_name": "carbonstep-endpoint",
                 "static_configs": [{"targets": [f"127.0.0.1:{self.endpoint_port}"]}]},
            ]}))
        self.prometheus = Server("prometheus", [
            BINARIES["prometheus"], f"--config.file={config}", f"--storage.tsdb.path={root / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prometheus_port}"],
            prometheus_port, "/-/ready", root / "prometheus.log")
        self.gateway = f"127.0.0.1:{gateway_port}"

    def start(self) -> "Stack":
        try:
            for server in (self.pushgateway, self.node, self.prometheus):
                server.start()
        except Exception:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for server in (self.prometheus, self.node, self.pushgateway):
            server.stop()

    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]:
        """An instant query through Prometheus' HTTP API: the result's series (``metric``, ``value``)."""
        params = {"query": promql, **({"time": f"{at:.3f}"} if at is not None else {})}
        url = f"{self.prometheus.url}/api/v1/query?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as reply:
            body = json.load(reply)
        if body.get("status") != "success":
            raise AssertionError(f"{promql}: {body}")
        return list(body["data"]["result"])

    def wait_for(self, promql: str, expected: float, rel: float = 1e-3, timeout_s: float = 30.0) -> float:
        """Poll an instant query until its one value is within ``rel`` of ``expected``; the last value seen."""
        deadline, value = time.monotonic() + timeout_s, float("nan")
        while time.monotonic() < deadline:
            result = self.query(promql)
            if len(result) == 1:
                value = float(result[0]["value"][1])
                if abs(value - expected) <= rel * abs(expected):
                    return value
            time.sleep(0.5)
        return value
