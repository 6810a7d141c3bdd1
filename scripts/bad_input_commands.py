"""The bad inputs of ``usage``, ``compare``, ``study``, ``report``/``merge`` and the HTML page, for
``scripts/bad_input_table.py`` (which passes itself in as ``t``: its Case, _cli and _file).

A warning counts only when a user sees it: here, the ``carbonstep: warning:`` lines a command prints on
stderr, or the lines of the table it prints (a compare verdict, a study note), never a field of a report.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

TABLE: dict[str, Any] = {}  #: the table script's run_cli, set by command_cases


def _seen(*argv: str) -> tuple[str, str]:
    """Run ``carbonstep ARGV`` in this process: (stdout, stderr); CliExit unless it exits 0."""
    return TABLE["run_cli"](*argv)


def _warnings(*argv: str) -> list[str]:
    """The warning lines ``carbonstep ARGV`` prints on stderr (what the user sees)."""
    return [line for line in _seen(*argv)[1].splitlines() if line.startswith("carbonstep: warning:")]


def _printed(marker: str, *argv: str) -> list[str]:
    """The lines of what ``carbonstep ARGV`` prints (stdout) that contain ``marker``."""
    return [line.strip() for line in _seen(*argv)[0].splitlines() if marker in line]


def _folder(tmp: Path, name: str, files: dict[str, Any]) -> str:
    folder = tmp / name
    folder.mkdir(exist_ok=True)
    for file_name, content in files.items():
        path = folder / file_name
        if content == "FIFO":
            os.mkfifo(path)
        elif isinstance(content, Path):
            path.symlink_to(content)
        else:
            path.write_text(content)
    return str(folder)


def _mlflow_store(tmp: Path) -> tuple[str, list[str]]:
    """A real MLflow store: recipe a (3 seeds), recipe b with one seed diverging to NaN and one all NaN."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    uri = f"sqlite:///{tmp}/mlflow.db"
    client = MlflowClient(uri)
    experiment = client.create_experiment("study")
    nan = float("nan")
    runs = []
    for name, losses, co2 in [("a-seed0", [2.0, 1.0, 0.5], 0.10), ("a-seed1", [2.0, 1.0, 0.5], 0.11),
                              ("a-seed2", [2.0, 1.0, 0.5], 0.12), ("b-seed0", [2.0, 1.0, 0.5], 0.10),
                              ("b-seed1", [2.0, 1.0, 0.5], 0.11), ("b-seed2", [nan, nan, nan], 0.1),
                              ("c-seed0", [nan, 1.0, 0.5], 0.1)]:
        run_id = client.create_run(experiment, run_name=name).info.run_id
        client.log_batch(run_id, metrics=[Metric("val_loss", v, 0, s) for s, v in enumerate(losses)]
                         + [Metric("co2_kg", co2 * (s + 1), 0, s) for s in range(len(losses))])
        client.set_terminated(run_id)
        runs.append(run_id)
    return uri, runs


def _closed_pipe(folder: str) -> str:
    """``carbonstep usage DIR | true``: the reader is gone before anything is written."""
    script = f"{sys.executable} -m carbonstep.cli usage {folder} | true"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    result = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=120, env=env)
    if "Traceback" in result.stderr or "BrokenPipeError" in result.stderr:
        raise RuntimeError(result.stderr.strip().splitlines()[-1])
    return "read: ends quietly, no traceback"


def command_cases(tmp: Path, t: ModuleType, report: dict[str, Any]) -> list[Any]:
    """The cases; ``report`` is a measured report's JSON (a dict)."""
    from carbonstep.analysis.study.study import TrialCost, analyse

    Case = t.Case
    report = {**report, "run_id": "r1", "host": "node-a"}  # the same table on every machine, every run
    TABLE["run_cli"] = t.run_cli
    unrelated = tmp / "shop.db"
    with sqlite3.connect(unrelated) as connection:
        connection.execute("CREATE TABLE orders (id INTEGER)")
    corrupt = Path(t._file(tmp, "corrupt.db", b"SQLite format 3\x00" + b"\xff" * 100 + b"\nline 2\nline 3\n"))
    typo = f"sqlite:///{tmp}/typo.db"
    status = json.dumps({**report, "status": "exploded"})
    nan_report = json.dumps({**report, "energy_kwh": float("nan")})
    future = t._file(tmp, "future.json", json.dumps({**report, "started_at": "2099-01-01T00:00:00+00:00"}))
    years = t._file(tmp, "years.json", json.dumps({**report, "duration_s": 3 * 365.25 * 86_400}))
    elsewhere = t._file(tmp, "elsewhere.json", json.dumps({**report, "run_id": "elsewhere", "host": "node-b"}))
    machine = t._file(tmp, "machine.json", json.dumps({**report, "run_id": "machine", "attribution": "machine"}))
    good = t._file(tmp, "good.json", json.dumps(report))
    uri, runs = _mlflow_store(tmp)
    inf = float("inf")

    def study_notes(first: float) -> list[str]:
        trials = [TrialCost(0, "COMPLETE", first, 0.1, 0.2, 0.1, 1.0),
                  TrialCost(1, "COMPLETE", 1.0, 0.1, 0.2, 0.1, 2.0)]
        return [line for line in analyse(trials).table().splitlines() if "not a finite number" in line]

    cases = [
        Case("usage files", "100,000-deep JSON report", "`runs/deep.json` = `[[[[…]]]]`", "warn",
             lambda: _warnings("usage", _folder(tmp, "u-deep", {"deep.json": "[" * 100_000 + "]" * 100_000}))),
        Case("usage files", "a FIFO named *.json", "`mkfifo runs/pipe.json`", "warn",
             lambda: _warnings("usage", _folder(tmp, "u-fifo", {"pipe.json": "FIFO"}))),
        Case("usage files", "a link to /dev/zero", "`ln -s /dev/zero runs/zero.json`", "warn",
             lambda: _warnings("usage", _folder(tmp, "u-zero", {"zero.json": Path("/dev/zero")}))),
        Case("usage files", "a report stopped with an unknown status", "`\"status\": \"exploded\"`, with --html",
             "warn", lambda: _warnings("usage", _folder(tmp, "u-status", {"r.json": status}), "--by", "status",
                                       "--html", str(tmp / "u.html"))),
        Case("usage files", "a NaN figure", "`\"energy_kwh\": NaN` in a report", "warn",
             lambda: _warnings("usage", _folder(tmp, "u-nan", {"r.json": nan_report}))),
        Case("usage files", "stdout closed early", "`carbonstep usage runs/ \\| true`", "read",
             lambda: _closed_pipe(_folder(tmp, "u-empty", {}))),
        Case("stores", "usage of a mistyped sqlite:///", "`carbonstep usage sqlite:///typo.db`", "error",
             lambda: t._cli("usage", typo)),
        Case("stores", "usage of an unrelated database", "`carbonstep usage sqlite:///shop.db`", "error",
             lambda: t._cli("usage", f"sqlite:///{unrelated}")),
        Case("stores", "compare in an unrelated database", "`carbonstep compare RUN --tracking-uri "
             "sqlite:///shop.db`", "error", lambda: t._cli("compare", "RUN", "--tracking-uri", f"sqlite:///{unrelated}")),
        Case("stores", "study of an unrelated database", "`carbonstep study --storage sqlite:///shop.db`", "error",
             lambda: t._cli("study", "--storage", f"sqlite:///{unrelated}")),
        Case("stores", "a corrupt SQLite file", "`SQLite format 3` then junk and newlines", "error",
             lambda: t._cli("usage", f"sqlite:///{corrupt}")),
        Case("stores", "a file:// URI of no folder", "`carbonstep usage file:///…/mlruns`", "error",
             lambda: t._cli("usage", f"file://{tmp}/mlruns")),
        Case("stores", "a file:// URI of a folder", "`carbonstep usage file:///…` (MLflow refuses file stores)",
             "error", lambda: t._cli("usage", f"file://{tmp}")),
        Case("stores", "usage against a server not answering", "`carbonstep usage http://127.0.0.1:9`", "error",
             lambda: t._cli("usage", "http://127.0.0.1:9")),
        Case("compare", "one seed diverging to NaN", "`val_loss` NaN at every step of one of 6 runs", "warn",
             lambda: _printed("DROPPED", "compare", *runs[:6], "--tracking-uri", uri)),
        Case("compare", "a NaN first validation loss", "`val_loss` = NaN, 1.0, 0.5", "warn",
             lambda: _printed("not finite", "compare", runs[6], runs[0], "--tracking-uri", uri)),
        Case("compare", "one run per recipe (valid)", "`carbonstep compare A B`", "read",
             lambda: "read: " + _printed("no winner can be named", "compare", runs[0], runs[3],
                                         "--tracking-uri", uri)[0][-60:]),
        Case("compare", "--levels 0", "`carbonstep compare A B --levels 0`", "error",
             lambda: t._cli("compare", runs[0], runs[3], "--tracking-uri", uri, "--levels", "0")),
        Case("compare", "--plot to a text file", "`carbonstep compare A --plot x.txt`", "error",
             lambda: t._cli("compare", runs[0], "--tracking-uri", uri, "--plot", str(tmp / "x.txt"))),
        Case("compare", "--json to a full disk", "`carbonstep compare A --json /dev/full`", "error",
             lambda: t._cli("compare", runs[0], "--tracking-uri", uri, "--json", "/dev/full")),
        Case("study", "first value +inf", "`analyse([+inf, 1.0])` (the `study` table)", "warn",
             lambda: study_notes(inf)),
        Case("study", "first value -inf", "`analyse([-inf, 1.0])` (the `study` table)", "warn",
             lambda: study_notes(-inf)),
        Case("study", "--plot to a text file", "`carbonstep study --storage … --plot x.txt`", "error",
             lambda: t._cli("study", "--storage", typo, "--plot", str(tmp / "x.txt"))),
        Case("reports", "a start in the far future", "`carbonstep report` of `\"started_at\": \"2099-01-01…\"`",
             "warn", lambda: _warnings("report", future)),
        Case("reports", "years of duration for seconds of energy", "`carbonstep report` of `\"duration_s\": 9.5e7`",
             "warn", lambda: _warnings("report", years)),
        Case("reports", "merge the same run twice", "`carbonstep merge r.json r.json`", "error",
             lambda: t._cli("merge", good, good, "-o", str(tmp / "j1.json"))),
        Case("reports", "merge machine attribution with process reports", "`carbonstep merge r.json machine.json`",
             "error", lambda: t._cli("merge", good, machine, "-o", str(tmp / "j2.json"))),
        Case("reports", "merge reports from another host", "`carbonstep merge r.json elsewhere.json`", "warn",
             lambda: _warnings("merge", good, elsewhere, "-o", str(tmp / "j3.json"))),
    ]
    return cases
