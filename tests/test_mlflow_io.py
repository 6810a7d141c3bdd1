"""The MLflow package: the only importer of mlflow, and a sink whose constructor does no I/O."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import grimp

from carbonstep.mlflow_io.sink import MlflowSink


def test_only_the_mlflow_package_imports_mlflow() -> None:
    graph = grimp.build_graph("carbonstep", include_external_packages=True, cache_dir=None)
    importers = {m for m in graph.find_modules_that_directly_import("mlflow")}
    assert importers and all(m.startswith("carbonstep.mlflow_io.") for m in importers), importers


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_sink_starts_at_its_first_record_not_in_its_constructor(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    before = {t.name for t in threading.enumerate()}
    sink = MlflowSink(tracking_uri=f"http://127.0.0.1:{_free_port()}", experiment="lazy", ledger_path=ledger,
                      flush_interval_s=0.05, close_timeout_s=5)
    assert "carbonstep-mlflow" not in {t.name for t in threading.enumerate()} - before  # no thread yet
    assert sink.client is None and not ledger.exists()  # no client, no file, no probe
    sink.log_metrics({"energy_kwh": 1.0}, 1)  # the first record starts it: the server is down, the ledger keeps it
    assert sink.client is not None
    message = sink.close()
    assert message is not None and "carbonstep sync" in message
    assert "energy_kwh" in ledger.read_text()


def test_an_unused_sink_closes_without_io(tmp_path: Path) -> None:
    sink = MlflowSink(tracking_uri="http://127.0.0.1:9", ledger_path=tmp_path / "ledger.jsonl")
    assert sink.close() is None
    assert sink.client is None and not (tmp_path / "ledger.jsonl").exists()
