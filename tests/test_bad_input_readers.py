"""usage, compare and study under hostile inputs: stores are only read, special files are refused, diverged runs
are named, a closed pipe ends quietly."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric

from carbonstep import ConfigError, compare
from carbonstep.analysis.usage.sources import collect, regular_file_text
from carbonstep.cli import main
from carbonstep.mlflow_io.stores import check_readable_store

NAN = float("nan")


def _cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "carbonstep.cli", *argv], capture_output=True, text=True,
                          timeout=120)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def unrelated_db(tmp_path: Path) -> Path:
    path = tmp_path / "shop.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE orders (id INTEGER, item TEXT)")
    return path


@pytest.mark.parametrize("kind", ["mlflow", "optuna"])
def test_a_mistyped_sqlite_uri_creates_nothing(tmp_path: Path, kind: str) -> None:
    with pytest.raises(ConfigError, match=r"no such (MLflow tracking store|Optuna storage).*never creates"):
        check_readable_store(f"sqlite:///{tmp_path}/typo.db", kind)
    assert not (tmp_path / "typo.db").exists()


@pytest.mark.parametrize("kind", ["mlflow", "optuna"])
def test_an_unrelated_database_is_left_unchanged(unrelated_db: Path, kind: str) -> None:
    before = _digest(unrelated_db)
    with pytest.raises(ConfigError, match=f"no {kind} tables"):
        check_readable_store(f"sqlite:///{unrelated_db}", kind)
    assert _digest(unrelated_db) == before


def test_commands_never_write_to_a_store_they_read(tmp_path: Path, unrelated_db: Path) -> None:
    before = _digest(unrelated_db)
    for argv in (["usage", f"sqlite:///{unrelated_db}"], ["compare", "RUN", "--tracking-uri", f"sqlite:///{unrelated_db}"],
                 ["study", "--storage", f"sqlite:///{unrelated_db}"],
                 ["usage", f"sqlite:///{tmp_path}/typo.db"], ["study", "--storage", f"sqlite:///{tmp_path}/t2.db"]):
        result = _cli(*argv)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "no such" in result.stderr
    assert _digest(unrelated_db) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shop.db"]


def test_a_corrupt_sqlite_file_is_one_line(tmp_path: Path) -> None:
    corrupt = tmp_path / "c.db"
    corrupt.write_bytes(b"SQLite format 3\x00" + b"\xff" * 200 + b"\nline two\nline three\n")
    with pytest.raises(ConfigError, match="not a readable SQLite database") as caught:
        check_readable_store(f"sqlite:///{corrupt}", "mlflow")
    assert "\n" not in str(caught.value)


def test_a_real_store_passes(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    MlflowClient(uri).search_experiments()  # MLflow creates its tables
    check_readable_store(uri, "mlflow")


def test_file_uris(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such MLflow tracking store"):
        check_readable_store(f"file://{tmp_path}/missing", "mlflow")
    result = _cli("usage", f"file://{tmp_path}")  # MLflow refuses its file store with a long exception
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_usage_against_a_dead_server_answers_in_seconds() -> None:
    with pytest.raises(ConfigError, match="not reachable"):
        collect(["http://127.0.0.1:9"])


def test_usage_refuses_special_files_and_deep_json(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    os.mkfifo(runs / "pipe.json")
    (runs / "zero.json").symlink_to("/dev/zero")
    (runs / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    collected = collect([str(runs)])
    warnings = sorted(collected.warnings)
    assert len(warnings) == 3 and not collected.records
    assert "deep.json: skipped: not a carbonstep report (JSON nested too deeply)" in warnings[0]
    assert "pipe.json: skipped: cannot read (not a regular file (a FIFO))" in warnings[1]
    assert "zero.json: skipped: cannot read (not a regular file (a character device))" in warnings[2]


def test_report_text_has_a_size_cap(tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    big.write_text("x" * 2000)
    with pytest.raises(OSError, match="too large"):
        regular_file_text(big, max_bytes=1000)
    assert regular_file_text(big, max_bytes=2000) == "x" * 2000


def _log(client: MlflowClient, experiment: str, name: str, losses: list[float], co2_kg: float) -> str:
    run_id = client.create_run(experiment, run_name=name).info.run_id
    client.log_batch(run_id, metrics=[Metric("val_loss", v, 0, s) for s, v in enumerate(losses)]
                     + [Metric("co2_kg", co2_kg * (s + 1), 0, s) for s in range(len(losses))])
    client.set_terminated(run_id)
    return run_id


def test_a_diverged_seed_is_named_not_silently_dropped(mlflow_study_store) -> None:
    uri, client, exp = mlflow_study_store
    runs = [_log(client, exp, f"a-seed{i}", [2.0, 1.0, 0.5], 0.1 + 0.01 * i) for i in range(3)]
    runs += [_log(client, exp, "b-seed0", [2.0, 1.0, 0.5], 0.1), _log(client, exp, "b-seed1", [2.0, NAN, NAN], 0.1),
             _log(client, exp, "b-seed2", [NAN, NAN, NAN], 0.1), _log(client, exp, "b-seed3", [2.0, 1.0, 0.5], 0.11)]
    result = compare(runs, tracking_uri=uri)
    assert [r.name for r in result.runs] == ["a-seed0", "a-seed1", "a-seed2", "b-seed0", "b-seed1", "b-seed3"]
    assert any(n.startswith("b-seed2: DROPPED") for n in result.notes)
    assert any(n.startswith("b-seed1: 2 of its 3 val_loss values are not finite") for n in result.notes)
    assert "1 of 7 runs dropped" in result.verdict
    assert "b-seed2: DROPPED" in result.table()


def test_a_nan_first_loss_and_bad_levels(mlflow_study_store) -> None:
    uri, client, exp = mlflow_study_store
    a = _log(client, exp, "a", [NAN, 1.0, 0.5], 0.1)
    b = _log(client, exp, "b", [2.0, 1.0, 0.5], 0.1)
    result = compare([a, b], tracking_uri=uri)
    assert result.levels[-1].level == 0.5 and "non-finite val_loss values left out" in result.verdict
    with pytest.raises(ConfigError, match="no run has a finite val_loss"):
        compare([_log(client, exp, "c", [NAN], 0.1)], tracking_uri=uri)
    with pytest.raises(ConfigError, match="levels must be a whole number ≥ 1"):
        compare([a, b], tracking_uri=uri, levels=0)


def test_a_closed_pipe_is_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "r").mkdir()
    script = (f"{sys.executable} -m carbonstep.cli regions | true; "
              f"{sys.executable} -m carbonstep.cli usage {tmp_path / 'r'} | true")
    result = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=120)
    assert "Traceback" not in result.stderr and "BrokenPipeError" not in result.stderr, result.stderr


def test_main_returns_quietly_when_stdout_breaks(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    def broken(*_args: object, **_kwargs: object) -> None:
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr("carbonstep.cli.regions.run", broken)
    assert main(["regions"]) == 1
    assert capsys.readouterr().err == ""


def test_a_study_whose_first_value_is_infinite() -> None:
    from carbonstep.analysis.study.study import TrialCost, analyse

    for first, direction in ((float("inf"), "minimize"), (float("-inf"), "maximize"), (NAN, "minimize")):
        trials = [TrialCost(0, "COMPLETE", first, 0.1, 0.2, 0.1, 1.0),
                  TrialCost(1, "COMPLETE", 2.0, 0.1, 0.2, 0.1, 2.0),
                  TrialCost(2, "COMPLETE", 1.0 if direction == "minimize" else 3.0, 0.1, 0.2, 0.1, 3.0)]
        result = analyse(trials, direction)
        assert [t.number for t in result.front] == [2]
        assert [m.trial for m in result.milestones] == [2, 2, 2, 2]
        assert "value that is not a finite number (±inf or NaN): 0;" in result.table()
        figures = "\n".join(line for line in result.table().splitlines() if not line.startswith("*"))
        assert not {"nan", "inf"} & set(figures.replace("(", " ").split())


def test_a_trial_with_a_nan_figure_is_unmeasured_not_nan() -> None:
    from carbonstep.analysis.study.study import TrialCost, analyse

    result = analyse([TrialCost(0, "COMPLETE", 2.0, NAN, 0.2, 0.1, 1.0),
                      TrialCost(1, "COMPLETE", 1.0, 0.1, 0.2, 0.1, 2.0)])
    assert result.totals["co2_kg"] == 0.1 and result.totals["measured"] == 1
    assert not {"n/a", "nan"} & set(result.table().split())
    assert "1 trial(s) with a CO2e, energy or water figure that is not a finite number: 0" in result.table()


def test_unknown_status_is_one_line(tmp_path: Path) -> None:
    from carbonstep.report.record import RunReport

    data = json.loads(_measured_report().to_json())
    data["status"] = "exploded"
    (tmp_path / "carbonstep-x.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="report.status must be one of completed, failed, interrupted, running"):
        RunReport.load(tmp_path / "carbonstep-x.json")
    collected = collect([str(tmp_path)])
    assert not collected.records and "unknown status 'exploded'" in collected.warnings[0]
    result = _cli("usage", str(tmp_path), "--html", str(tmp_path / "u.html"), "--by", "status")
    assert result.returncode == 0 and "Traceback" not in result.stderr


@pytest.mark.parametrize("command", ["compare", "study"])
def test_plot_to_a_wrong_type_or_full_path(tmp_path: Path, command: str) -> None:
    args = ["compare", "RUN"] if command == "compare" else ["study", "--storage", f"sqlite:///{tmp_path}/s.db"]
    result = _cli(*args, "--plot", str(tmp_path / "x.txt"))
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert ".txt is not an image format" in result.stderr


def _measured_report():  # noqa: ANN202 - a RunReport
    from carbonstep import Tracker
    from carbonstep.testing import ScriptedReader

    with Tracker(region="FR", readers=[ScriptedReader("gpu:0", "gpu", lambda t: 250.0)], interval_s=0.01) as t:
        pass
    return t.stop()


def test_usage_against_a_server_that_never_answers() -> None:
    import socket

    with socket.socket() as silent:  # listens (the kernel completes the connection) but never reads or answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        with pytest.raises(ConfigError, match=f"http://127.0.0.1:{port} is not reachable .*timed out"):
            collect([f"http://127.0.0.1:{port}"])
