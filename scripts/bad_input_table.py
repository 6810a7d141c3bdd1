"""Write docs/BAD_INPUT.md: every bad input we try, and what it gets (run, not typed by hand).

    python scripts/bad_input_table.py            # rewrite docs/BAD_INPUT.md
    python scripts/bad_input_table.py --check    # exit 1 if the file is stale (tests/test_properties.py)

Each case says what it should get: ``error`` (one clear line), ``warn`` (kept, with a warning in
the report) or ``read`` (a valid input that must be read). The table counts what each really got:
clear errors, warnings, valid inputs read, and the failures — tracebacks, unclear (multi-line)
errors, silent accepts of nonsense, and valid inputs refused.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "BAD_INPUT.md"
SERIES = "timestamp,carbon_intensity\n"
GOOD_SERIES = SERIES + "2026-01-01T00:00Z,100\n2026-01-01T01:00Z,300\n"
LATIN1_SERIES = "timestamp,carbon_intensity,note\n2026-01-01T00:00Z,100,Zürich\n2026-01-01T01:00Z,300,été\n"
BASIC_DATE = SERIES + "20260101,100\n"
LATIN1_SITES = "site,pue,intensity\nZürich,1.2,40\n"
FAILURES = ("traceback", "unclear", "silent accept", "valid input refused")


@dataclass(frozen=True)
class Case:
    """One input: its class, what it is, an example, what it should get, and the call."""

    group: str
    what: str
    example: str
    expect: str  #: "error", "warn" (returns the warnings) or "read" (returns a description)
    call: Callable[[], object]


class CliExit(Exception):
    """A command-line call that exited with a status other than 0."""

    def __init__(self, code: int, stderr: str) -> None:
        super().__init__(stderr.strip())
        self.code = code


def _file(directory: Path, name: str, content: str | bytes) -> str:
    path = directory / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return str(path)


def run_cli(*argv: str) -> tuple[str, str]:
    """Run ``carbonstep ARGV`` in this process: (stdout, stderr); CliExit unless it exits 0."""
    from carbonstep.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exc:
            code = int(exc.code or 0)
    if code not in (0, None):
        lines = [line for line in err.getvalue().splitlines() if line.startswith("carbonstep") and "error" in line]
        raise CliExit(code, "\n".join(lines) if lines else err.getvalue())
    return out.getvalue(), err.getvalue()


def _cli(*argv: str) -> str:
    """Run ``carbonstep ARGV`` in this process; CliExit unless it exits 0 (stderr returned)."""
    return run_cli(*argv)[1]


def file_cases(tmp: Path) -> list[Case]:
    from carbonstep.accounting.timeseries import read_series
    from carbonstep.analysis.plan.plan import read_sites

    def series_warnings(name: str, text: str) -> object:
        return list(read_series(_file(tmp, name, text)).warnings)

    def site_warnings(name: str, text: str) -> object:
        return [w for site in read_sites(_file(tmp, name, text)) for w in site.warnings]

    def values(path: str, encoding: str | None = None) -> str:
        return f"read: {read_series(path, encoding).values}"

    cases = [
        Case("intensity CSV", "text in a number", "`2026-01-01T00:00Z,abc` on line 2", "error",
             lambda: read_series(_file(tmp, "a.csv", SERIES + "2026-01-01T00:00Z,abc\n"))),
        Case("intensity CSV", "NaN", "`2026-01-01T00:00Z,nan` on line 2", "error",
             lambda: read_series(_file(tmp, "b.csv", SERIES + "2026-01-01T00:00Z,nan\n"))),
        Case("intensity CSV", "time goes back", "line 3 earlier than line 2", "error",
             lambda: read_series(_file(tmp, "c.csv", SERIES + "2026-01-01T01:00Z,1\n2026-01-01T00:00Z,2\n"))),
        Case("intensity CSV", "bad time", "`yesterday,100` on line 2", "error",
             lambda: read_series(_file(tmp, "d.csv", SERIES + "yesterday,100\n"))),
        Case("intensity CSV", "no time column", "header `when,what`", "error",
             lambda: read_series(_file(tmp, "e.csv", "when,what\n1,2\n"))),
        Case("intensity CSV", "missing file", "`missing.csv`", "error", lambda: read_series(tmp / "missing.csv")),
        Case("intensity CSV", "a directory", "the temporary directory", "error", lambda: read_series(tmp)),
        Case("intensity CSV", "NUL in the path", "`'a\\x00.csv'`", "error", lambda: read_series("a\x00.csv")),
    ]
    for stamp, what in [("nan", "NaN"), ("inf", "infinity"), ("-1e12", "far past"), ("2026", "a bare year"),
                        ("1e30", "far future"), ("2026-13-45", "no such date")]:
        cases.append(Case("timestamps", what, f"`{stamp},100` on line 3", "error",
                          lambda s=stamp: read_series(_file(tmp, "t.csv", GOOD_SERIES[:-1] + f"\n{s},100\n"))))
    cases += [
        Case("timestamps", "NaN in a later row", "`nan,300` after two good rows", "error",
             lambda: read_series(_file(tmp, "t2.csv", GOOD_SERIES + "nan,300\n"))),
        Case("timestamps", "ISO 8601 basic date (valid)", "`20260101,100`", "read",
             lambda: f"read: starts at {read_series(_file(tmp, 't3.csv', BASIC_DATE)).times[0]:.0f} "
                     "(2026-01-01T00:00Z)"),
    ]
    for encoding in ("latin-1", "utf-16", "utf-8-sig", "utf-32"):
        cases.append(Case("encodings", f"{encoding} file (valid)", "`Zürich`, `été` in a note column", "read",
                          lambda e=encoding: values(_file(tmp, f"{e}.csv", LATIN1_SERIES.encode(e)))))
    cases += [
        Case("encodings", "Latin-1 file with encoding=\"latin-1\" (valid)", "`read_series(path, encoding=…)`",
             "read", lambda: values(_file(tmp, "l1.csv", LATIN1_SERIES.encode("latin-1")), "latin-1")),
        Case("encodings", "Latin-1 file read as UTF-8", "`encoding=\"utf-8\"`", "error",
             lambda: values(_file(tmp, "l2.csv", LATIN1_SERIES.encode("latin-1")), "utf-8")),
        Case("encodings", "unknown encoding", "`encoding=\"klingon\"`", "error",
             lambda: values(_file(tmp, "l3.csv", GOOD_SERIES), "klingon")),
        Case("encodings", "oversized cell", "a 200,000-digit intensity", "error",
             lambda: read_series(_file(tmp, "big.csv", SERIES + "2026-01-01T00:00Z," + "9" * 200_000 + "\n"))),
        Case("encodings", "NUL byte in a row", "`1\\x0000` on line 2", "error",
             lambda: read_series(_file(tmp, "nul.csv", SERIES.encode() + b"2026-01-01T00:00Z,1\x0000\n"))),
        Case("units", "kg/kWh column labelled g/kWh", "`0.045`, `0.05`", "warn",
             lambda: series_warnings("kg.csv", SERIES + "2026-01-01T00:00Z,0.045\n2026-01-01T01:00Z,0.05\n")),
        Case("units", "lb/MWh column labelled g/kWh", "`1900`, `2000`", "warn",
             lambda: series_warnings("lb.csv", SERIES + "2026-01-01T00:00Z,1900\n2026-01-01T01:00Z,2000\n")),
        Case("sites CSV", "unknown region", "`paris,1.3,0.5,Frnace`", "error",
             lambda: read_sites(_file(tmp, "s1.csv", "site,pue,wue,region\nparis,1.3,0.5,Frnace\n"))),
        Case("sites CSV", "PUE below 1", "`a,0.9,0,100`", "error",
             lambda: read_sites(_file(tmp, "s2.csv", "site,pue,wue,intensity\na,0.9,0,100\n"))),
        Case("sites CSV", "short row", "`a,1.2,0` under 4 columns", "error",
             lambda: read_sites(_file(tmp, "s3.csv", "site,pue,wue,intensity\na,1.2,0\n"))),
        Case("sites CSV", "PUE 1000, WUE 1e9, 1e12 g/kWh", "`a,1000,1e9,1e12`", "warn",
             lambda: site_warnings("s4.csv", "site,pue,wue,intensity\na,1000,1e9,1e12\n")),
        Case("sites CSV", "Latin-1 file (valid)", "`Zürich,1.2,0.3,40`", "read",
             lambda: f"read: {[s.name for s in read_sites(_file(tmp, 's5.csv', LATIN1_SITES.encode('latin-1')))]}"),
    ]
    return cases


def report_cases(tmp: Path) -> list[Case]:
    from carbonstep.report.merge import merge
    from carbonstep.report.record import RunReport

    good = json.loads(_measured_report().to_json())

    def with_field(name: str, raw: str) -> str:
        text = json.dumps({k: ("@@" if k == name else v) for k, v in good.items()})
        return _file(tmp, f"r-{name}.json", text.replace('"@@"', raw))

    cases = [
        Case("reports", "truncated", "`{\"schema_version\": 1, \"run_id\": `", "error",
             lambda: RunReport.load(_file(tmp, "r.json", '{"schema_version": 1, "run_id": '))),
        Case("reports", "merge nothing", "`carbonstep merge` of no report", "error", lambda: merge([])),
    ]
    for content, what in [("[]", "a list"), ("null", "null"), ('"a string"', "a string"),
                          ("[" * 100_000 + "]" * 100_000, "100,000-deep JSON")]:
        cases.append(Case("reports", what, f"`carbonstep report` of `{content[:12]}`", "error",
                          lambda c=content: _cli("report", _file(tmp, "x.json", c))))
    for name, raw in [("energy_kwh", "NaN"), ("duration_s", "Infinity"), ("co2_kg", "-1000"),
                      ("energy_kwh", "-1e6"), ("started_at", '"yesterday"'), ("devices", '"gpu"')]:
        cases.append(Case("reports", f"{name} = {raw}", f"`carbonstep report` / `merge` of `\"{name}\": {raw}`",
                          "error", lambda n=name, r=raw: _cli("merge", with_field(n, r), "-o", str(tmp / "j.json"))))
    ledger_head = '{"type": "run", "run_id": "x", "tracking_uri": "http://127.0.0.1:9"}\n'
    dead = ("--tracking-uri", "http://127.0.0.1:9")  # sync sends only where it is told, never where a ledger says
    cases += [
        Case("ledgers", "empty ledger", "`carbonstep sync empty.jsonl`", "error",
             lambda: _cli("sync", _file(tmp, "empty.jsonl", ""), *dead)),
        Case("ledgers", "record without its key", "`{\"type\": \"metric\", \"value\": 1.0, …}`", "warn",
             lambda: _skipped(_cli("sync", _file(tmp, "nokey.jsonl", ledger_head + '{"type": "metric", "value": 1.0, '
                                                                          '"timestamp": 1, "step": 0, "seq": 1}\n'),
                                   *dead))),
        Case("ledgers", "not JSON, NUL bytes", "`{oops`, then NULs, mid-file", "warn",
             lambda: _skipped(_cli("sync", _file(tmp, "bad.jsonl", ledger_head + "{oops\n" + "\x00" * 8 + "\n"
                                                 + ledger_head), *dead))),
        Case("ledgers", "server not answering", "`carbonstep sync` to `http://127.0.0.1:9`", "error",
             lambda: _cli("sync", _file(tmp, "ok.jsonl", ledger_head + '{"type": "tag", "key": "k", "value": "v", '
                                                                       '"seq": 1}\n'), *dead)),
        Case("CLI arguments", "compare against a server not answering",
             "`carbonstep compare RUN --tracking-uri http://127.0.0.1:9`", "error",
             lambda: _cli("compare", "RUN", "--tracking-uri", "http://127.0.0.1:9")),
    ]
    return cases


def cli_cases(tmp: Path) -> list[Case]:
    from carbonstep.analysis.plan.plan import parse_duration

    forecast = _file(tmp, "forecast.csv", GOOD_SERIES)
    plan = ["plan", "--kwh", "1", "--duration", "1h", "--forecast", forecast, "--now"]
    cases = [Case("CLI arguments", "plan duration", "`--duration 6`", "error", lambda: parse_duration("6"))]
    for now in ("garbage", "2026-13-45", "1e30"):
        cases.append(Case("CLI arguments", f"plan --now {now}", f"`carbonstep plan … --now {now}`", "error",
                          lambda n=now: _cli(*plan, n)))
    sh = ["--region", "FR", "--"]
    cases += [
        Case("CLI arguments", "not a number", "`carbonstep plan --kwh lots`", "error",
             lambda: _cli("plan", "--kwh", "lots")),
        Case("CLI arguments", "no command", "`carbonstep`", "error", lambda: _cli()),
        Case("CLI arguments", "plan --encoding klingon", "`carbonstep plan --sites s.csv --encoding klingon`",
             "error", lambda: _cli("plan", "--kwh", "1", "--sites", forecast, "--encoding", "klingon")),
        Case("paths", "run --json <a directory>", "`carbonstep run --json /tmp -- true` (refused before the run)",
             "error", lambda: _cli("run", "--json", str(tmp), *sh, "true")),
        Case("paths", "merge -o <a directory>", "`carbonstep merge r.json -o /tmp`", "error",
             lambda: _cli("merge", str(tmp / "r.json"), "-o", str(tmp))),
        Case("paths", "run --json under a file (valid: the report is kept)",
             "`--json <a file>/r.json` made unwritable while the command runs", "read",
             lambda: _kept_report(tmp, sh)),
        Case("exit status", "child killed by SIGTERM (valid)", "`carbonstep run -- sh -c 'kill -TERM $$'`", "read",
             lambda: _exit_status("run", *sh, "sh", "-c", "kill -TERM $$")),
        Case("exit status", "child killed by SIGKILL (valid)", "`carbonstep run -- sh -c 'kill -KILL $$'`", "read",
             lambda: _exit_status("run", *sh, "sh", "-c", "kill -KILL $$")),
    ]
    runs = tmp / "usage-runs"
    runs.mkdir(exist_ok=True)
    cases += [
        Case("CLI arguments", "usage --since a-month", "`carbonstep usage runs/ --since a-month`", "error",
             lambda: _cli("usage", str(runs), "--since", "a-month")),
        Case("CLI arguments", "usage --to yesterday", "`carbonstep usage runs/ --to yesterday`", "error",
             lambda: _cli("usage", str(runs), "--to", "yesterday")),
        Case("CLI arguments", "usage --by colour", "`carbonstep usage runs/ --by colour`", "error",
             lambda: _cli("usage", str(runs), "--by", "colour")),
        Case("paths", "usage of a missing folder", "`carbonstep usage missing/`", "error",
             lambda: _cli("usage", str(tmp / "missing"))),
        Case("paths", "usage --html <a directory>", "`carbonstep usage runs/ --html /tmp`", "error",
             lambda: _cli("usage", str(runs), "--html", str(tmp))),
        Case("reports", "usage over a folder with a truncated report (valid: skipped, named)",
             "`carbonstep usage runs/` with `runs/carbonstep-x.json` = `{\"schema_version\": 1`", "read",
             lambda: "read: " + _cli("usage", _with_truncated_report(runs)).strip()),
    ]
    return cases


def _with_truncated_report(runs: Path) -> str:
    (runs / "carbonstep-x.json").write_text('{"schema_version": 1')
    return str(runs)


def optuna_cases(tmp: Path) -> list[Case]:
    from carbonstep.analysis.study.study import analyse
    from carbonstep.optuna import CarbonCallback

    missing = f"sqlite:///{tmp}/missing.db"
    return [
        Case("Optuna", "budget not a Budget", "`carbonstep.optuna.CarbonCallback(budget=0.5)`", "error",
             lambda: CarbonCallback(budget=0.5)),  # type: ignore[arg-type]
        Case("Optuna", "study: missing storage", "`carbonstep study --storage sqlite:///missing.db`", "error",
             lambda: _cli("study", "--storage", missing)),
        Case("Optuna", "study: nowhere to read from", "`carbonstep study`", "error", lambda: _cli("study")),
        Case("Optuna", "study --json <a directory>", "`carbonstep study --storage … --json /tmp`", "error",
             lambda: _cli("study", "--storage", missing, "--json", str(tmp))),
        Case("Optuna", "study: MLflow server not answering", "`carbonstep study --mlflow-experiment s "
             "--tracking-uri http://127.0.0.1:9`", "error",
             lambda: _cli("study", "--mlflow-experiment", "s", "--tracking-uri", "http://127.0.0.1:9")),
        Case("Optuna", "study: bad direction", "`analyse(trials, direction=\"down\")`", "error",
             lambda: analyse([], "down")),
    ]


def _kept_report(tmp: Path, sh: list[str]) -> str:
    blocker = tmp / "blocker"
    blocker.mkdir(exist_ok=True)
    fallback = tmp / "tmpdir"  # the temporary directory the report falls back to: under tmp, not left in /tmp
    fallback.mkdir(exist_ok=True)
    tempdir, tempfile.tempdir = tempfile.tempdir, str(fallback)
    try:
        stderr = _cli("run", "--json", str(blocker / "r.json"), *sh, sys.executable, "-c",
                      f"import shutil; shutil.rmtree({str(blocker)!r}); open({str(blocker)!r}, 'w').close()")
    finally:
        tempfile.tempdir = tempdir
    line = next(line for line in stderr.splitlines() if "the report is in" in line)
    line = re.sub(r"carbonstep-[0-9a-f]{12}\.json", "carbonstep-<run id>.json", line)
    return "read: " + line.replace(str(fallback), "$TMPDIR").replace(str(tmp), "…")


def _skipped(stderr: str) -> list[str]:
    """The lines ``carbonstep sync`` skipped, each named (its warnings after the count)."""
    return [line.strip() for line in stderr.splitlines()[1:] if line.strip()]


def _exit_status(*argv: str) -> str:
    try:
        _cli(*argv)
    except CliExit as exc:
        return f"read: exit status {exc.code} (128 + signal number, as a shell reports it)"
    return "read: exit status 0"


def api_cases(tmp: Path) -> list[Case]:
    from carbonstep import Budget, Tracker

    a_file = Path(_file(tmp, "a-file", "x"))
    cases = [
        Case("Tracker arguments", "unknown region", "`Tracker(region=\"Frnace\")`", "error",
             lambda: Tracker(region="Frnace")),
        Case("Tracker arguments", "PUE below 1", "`Tracker(pue=0.9)`", "error", lambda: Tracker(pue=0.9)),
        Case("Tracker arguments", "negative WUE", "`Tracker(wue=-1)`", "error", lambda: Tracker(wue=-1)),
        Case("Tracker arguments", "NaN intensity", "`Tracker(intensity=float(\"nan\"))`", "error",
             lambda: Tracker(intensity=float("nan"))),
        Case("Tracker arguments", "negative intensity", "`Tracker(intensity=-5)`", "error",
             lambda: Tracker(intensity=-5)),
        Case("Tracker arguments", "bad attribution", "`Tracker(attribution=\"node\")`", "error",
             lambda: Tracker(attribution="node")),
        Case("Tracker arguments", "zero interval", "`Tracker(interval_s=0)`", "error", lambda: Tracker(interval_s=0)),
    ]
    for kwargs in ({"pue": True}, {"intensity": True}, {"interval_s": True}, {"region": 123}, {"pid": "abc"},
                   {"pid": 2**63}, {"pid": 999999999}, {"output_dir": a_file}):
        shown = ", ".join(f"{k}={'<a file>' if k == 'output_dir' else repr(v)}" for k, v in kwargs.items())
        cases.append(Case("Tracker arguments", "wrong type or value", f"`Tracker({shown})`", "error",
                          lambda k=kwargs: Tracker(**k)))
    for kwargs in ({"pue": 1000}, {"wue": 1e9}, {"intensity": 1e12}, {"intensity": 0.045}):
        shown = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
        cases.append(Case("Tracker arguments", "outside published ranges", f"`Tracker({shown})`", "warn",
                          lambda k=kwargs: [w for w in Tracker(region="FR", **k).warnings if next(iter(k)) in w]))
    cases += [
        Case("Tracker use", "mark(count=nan)", "`tracker.mark(count=float(\"nan\"))`", "warn", _nan_count_warnings),
        Case("Tracker use", "a started Tracker sent to a spawned process", "`Process(target=f, args=(tracker,))`",
             "error", spawn_started_tracker),
        Case("Budget", "empty budget", "`Budget()`", "error", lambda: Budget()),
        Case("Budget", "zero budget", "`Budget(kwh=0)`", "error", lambda: Budget(kwh=0)),
        Case("Budget", "negative budget", "`Budget(co2_kg=-1)`", "error", lambda: Budget(co2_kg=-1)),
        Case("Budget", "NaN budget", "`Budget(water_l=float(\"nan\"))`", "error", lambda: Budget(water_l=float("nan"))),
        Case("Budget", "boolean budget", "`Budget(kwh=True)`", "error", lambda: Budget(kwh=True)),
        Case("Budget", "a 400-digit budget", "`Budget(kwh=10**400)`", "error", lambda: Budget(kwh=10**400)),
    ]
    return cases


def _measured_report():  # noqa: ANN202 - a RunReport
    import time

    from carbonstep import Tracker
    from carbonstep.testing import ScriptedReader

    with Tracker(region="FR", readers=[ScriptedReader("gpu:0", "gpu", lambda t: 250.0)], interval_s=0.01) as t:
        time.sleep(0.02)
    return t.stop()


def _nan_count_warnings() -> object:
    import time

    from carbonstep import Tracker
    from carbonstep.testing import ScriptedReader

    with Tracker(region="FR", readers=[ScriptedReader("gpu:0", "gpu", lambda t: 250.0)], interval_s=0.01) as t:
        t.mark(count=float("nan"))
        time.sleep(0.02)
    report = t.stop()
    report.to_json()  # still saveable
    return [w for w in report.warnings if "count" in w]


SPAWN_A_STARTED_TRACKER = """
import multiprocessing
from carbonstep import Tracker
from carbonstep.errors import ConfigError
from carbonstep.testing import ScriptedReader

if __name__ == "__main__":
    with Tracker(region="FR", readers=[ScriptedReader("gpu:0", "gpu", lambda t: 250.0)], interval_s=0.01) as t:
        try:
            multiprocessing.get_context("spawn").Process(target=print, args=(t,)).start()
        except ConfigError as exc:
            print("ConfigError:", exc)
"""


def spawn_started_tracker() -> None:
    """Send a started Tracker to a spawned process, in an interpreter of its own (the spawn context leaves a
    resource-tracker child behind in its caller); re-raise the ConfigError it printed."""
    import subprocess

    from carbonstep.errors import ConfigError

    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "spawn_started.py"
        script.write_text(SPAWN_A_STARTED_TRACKER)
        result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    line = result.stdout.strip()
    if line.startswith("ConfigError: "):
        raise ConfigError(line.removeprefix("ConfigError: "))
    raise RuntimeError(f"no ConfigError from a spawned started Tracker: {result.stderr or line}")


def outcome(case: Case, tmp: str) -> tuple[str, str]:
    """What the case got — (kind, text) — kind one of: error, warning, read, or a FAILURES entry."""
    from carbonstep.errors import CarbonstepError

    try:
        result = case.call()
    except (CarbonstepError, CliExit) as exc:
        text = f"{type(exc).__name__}: {exc}" if isinstance(exc, CarbonstepError) else f"exit {exc.code}: {exc}"
        text = text.replace(tmp, "…")
        if "\n" in text or not text.strip():
            return "unclear", text.replace("\n", " ⏎ ")
        return ("error" if case.expect == "error" else "valid input refused"), text
    except Exception as exc:  # noqa: BLE001 - a traceback is what this table exists to find
        return "traceback", f"{type(exc).__name__}: {exc}".replace(tmp, "…")[:200]
    if case.expect == "warn" and isinstance(result, list) and result:
        return "warning", "kept, with a warning: " + str(result[0]).replace(tmp, "…")
    if case.expect == "read":
        return "read", str(result).replace(tmp, "…")
    return "silent accept", "accepted without an error or a warning"


def rows() -> list[tuple[Case, str, str]]:
    with tempfile.TemporaryDirectory() as directory:
        tmp = Path(directory).resolve()
        sys.path.insert(0, str(ROOT / "scripts"))
        from bad_input_commands import command_cases  # the new commands' cases, in a module of their own

        cases = api_cases(tmp) + file_cases(tmp) + report_cases(tmp) + cli_cases(tmp) + optuna_cases(tmp)
        cases += command_cases(tmp, sys.modules[__name__], json.loads(_measured_report().to_json()))
        return [(case, *outcome(case, str(tmp))) for case in cases]


def table() -> str:
    results = rows()
    counts = Counter(kind for _, kind, _ in results)
    summary = (f"**{len(results)} inputs tried: {counts['error']} clear one-line errors, {counts['warning']} kept "
               f"with a warning, {counts['read']} valid inputs read; {counts['traceback']} tracebacks, "
               f"{counts['unclear']} unclear errors, {counts['silent accept']} silent accepts of nonsense, "
               f"{counts['valid input refused']} valid inputs refused.**")
    lines = ["# Bad input and what it gets", "",
             "Generated by `python scripts/bad_input_table.py` from the calls themselves; "
             "`tests/test_properties.py` fails if this file is stale. Every error is a `carbonstep.ConfigError` "
             "(a `ValueError`); file errors are `DataFileError` with `.path` and `.line`; the command line prints "
             "the same line and exits 2. Values outside published ranges are kept, with a warning in the report "
             "(ranges and their sources: `carbonstep.validate`). The fuzz suite (`tests/test_fuzz_*.py`) feeds "
             "every reader any bytes.", "", summary, "",
             "| class | input | example | expected | got |", "|---|---|---|---|---|"]
    for case, kind, text in results:
        got = text if kind in ("error", "read", "warning") else f"**{kind.upper()}**: {text}"
        lines.append(f"| {case.group} | {case.what} | {case.example} | {case.expect} | "
                     f"{got.replace('|', chr(92) + '|')} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    text = table()
    if "--check" in sys.argv[1:]:
        if not DOC.exists() or DOC.read_text() != text:
            print(f"{DOC} is stale: run python scripts/bad_input_table.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(text)
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
