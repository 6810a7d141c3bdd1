"""Each bad input the issue "every bad input gets one clear line" lists, as a test: files that are
not UTF-8, nonsense timestamps, implausible unit columns, malformed reports and ledgers, CLI
arguments, paths checked before the work, the exit status of a killed child, mark(count=nan) and
a started Tracker sent to a spawned process."""

from __future__ import annotations

import json
import pickle
import sys
import time
from pathlib import Path

import pytest

from carbonstep import Tracker
from carbonstep.accounting.timeseries import read_series
from carbonstep.analysis.plan.plan import read_sites
from carbonstep.cli import main
from carbonstep.errors import ConfigError, DataFileError
from carbonstep.measure.readers import Discovery, Unavailable
from carbonstep.measure.readers.base import Domain, Method
from carbonstep.report.record import RunReport
from carbonstep.testing import ScriptedReader

ROOT = Path(__file__).resolve().parents[1]
SERIES = "timestamp,carbon_intensity,note\n2026-01-01T00:00Z,100,Zürich été\n2026-01-01T01:00Z,300,Genève\n"
SITES = "site,pue,wue,intensity\nZürich,1.2,0.3,40\nMalmö,1.1,0.2,30\n"


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("carbonstep") and "Traceback" not in err, err
    return lines[0]


def _tracker(**kwargs: object) -> Tracker:
    return Tracker(region="FR", readers=[ScriptedReader("gpu:0", "gpu", lambda t: 250.0)], interval_s=0.01,
                   **kwargs)


# -- files that are not UTF-8 ------------------------------------------------------------------
@pytest.mark.parametrize("encoding", ["latin-1", "cp1252", "utf-16", "utf-16-le", "utf-8-sig", "utf-32"])
def test_series_and_sites_in_other_encodings_are_read(tmp_path: Path, encoding: str) -> None:
    series = tmp_path / "s.csv"
    series.write_bytes(SERIES.encode(encoding))
    assert read_series(series).values == (100.0, 300.0)
    sites = tmp_path / "sites.csv"
    sites.write_bytes(SITES.encode(encoding))
    assert [s.name for s in read_sites(sites)] == ["Zürich", "Malmö"]


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_ascii_utf16_without_a_byte_order_mark_is_read(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "s.csv"
    path.write_bytes("timestamp,carbon_intensity\n2026-01-01T00:00Z,100\n".encode(encoding))
    assert read_series(path).values == (100.0,)


def test_tracker_reads_a_latin1_intensity_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(SERIES.encode("latin-1"))
    with Tracker(intensity=str(path), readers=[ScriptedReader("gpu:0", "gpu", lambda t: 1.0)],
                 interval_s=0.01) as tracker:
        time.sleep(0.02)
    assert tracker.stop().intensity.chosen_by.startswith("time series")


def test_explicit_encoding_and_a_wrong_one(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_bytes(SERIES.encode("latin-1"))
    assert read_series(path, encoding="latin-1").values == (100.0, 300.0)
    with pytest.raises(DataFileError, match="not utf-8 text .*--encoding latin-1"):
        read_series(path, encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown encoding 'klingon'"):
        read_series(path, encoding="klingon")


def test_oversized_cells_and_nul_bytes_are_one_line(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_text("timestamp,carbon_intensity\n2026-01-01T00:00Z," + "9" * 200_000 + "\n")
    with pytest.raises(DataFileError) as info:
        read_series(path)
    assert info.value.line == 2 and len(str(info.value)) < 300
    path.write_bytes(b"timestamp,carbon_intensity\n2026-01-01T00:00Z,1\x0000\n")
    with pytest.raises(DataFileError, match="line 2"):
        read_series(path)


# -- nonsense timestamps --------------------------------------------------------------------
@pytest.mark.parametrize(("stamp", "problem"), [
    ("nan", "not a finite number"), ("inf", "not a finite number"), ("-1e12", "not between 1990 and 2100"),
    ("2026", "bare number"), ("1e30", "not between 1990 and 2100"), ("2026-13-45", "not ISO 8601"),
])
def test_nonsense_timestamps_are_refused(tmp_path: Path, stamp: str, problem: str) -> None:
    path = tmp_path / "t.csv"
    path.write_text(f"timestamp,carbon_intensity\n2026-01-01T00:00Z,100\n{stamp},200\n")
    with pytest.raises(DataFileError, match=problem) as info:
        read_series(path)
    assert info.value.line == 3


def test_basic_iso_date_is_a_date_not_epoch_seconds(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("timestamp,carbon_intensity\n20260101,100\n20260102,200\n")
    assert read_series(path).times[0] == 1767225600.0  # 2026-01-01T00:00Z, not 1970-08-23


# -- implausible units ----------------------------------------------------------------------
def test_kg_per_kwh_and_lb_per_mwh_columns_labelled_g_per_kwh_are_warned(tmp_path: Path) -> None:
    kg = tmp_path / "kg.csv"
    kg.write_text("timestamp,carbon_intensity\n2026-01-01T00:00Z,0.045\n2026-01-01T01:00Z,0.05\n")
    assert "multiply it by 1000" in read_series(kg).warnings[0]
    lb = tmp_path / "lb.csv"
    lb.write_text("timestamp,carbon_intensity\n2026-01-01T00:00Z,1900\n2026-01-01T01:00Z,2000\n")
    assert "lb/MWh" in read_series(lb).warnings[0]
    assert not read_series(_ok_series(tmp_path)).warnings
    with _tracker(intensity=str(kg)) as tracker:
        time.sleep(0.02)
    assert any("multiply it by 1000" in w for w in tracker.stop().warnings)  # in the report


def _ok_series(tmp_path: Path) -> Path:
    path = tmp_path / "ok.csv"
    path.write_text(SERIES)
    return path


def test_implausible_sites_are_kept_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "sites.csv"
    path.write_text("site,pue,wue,intensity\na,1000,1e9,1e12\nb,1.2,0.3,0.045\n")
    a, b = read_sites(path)
    assert len(a.warnings) == 3 and "pue=1000" in a.warnings[0] and "line 2" in a.warnings[0]
    assert "intensity=0.045" in b.warnings[0]


# -- wrong types reach internals --------------------------------------------------------------
def test_mark_with_a_nan_count_keeps_the_report_saveable(tmp_path: Path) -> None:
    with _tracker() as tracker:
        tracker.mark(count=float("nan"))
        tracker.mark(count=8)
        tracker.mark(count="lots")
        time.sleep(0.02)
    report = tracker.stop()
    assert [m.count for m in report.marks] == [None, 8.0, None]
    assert sum("count" in w for w in report.warnings) == 1
    assert RunReport.load(report.save(tmp_path / "r.json")) == report


def test_a_started_tracker_sent_to_a_spawned_child_gets_a_clear_error(table_module) -> None:
    with pytest.raises(ConfigError, match="started Tracker cannot be pickled"):
        table_module.spawn_started_tracker()  # in a process of its own: see its docstring
    assert pickle.loads(pickle.dumps(Tracker(region="FR"))).region.code == "FR"  # a fresh one still pickles


# -- malformed reports and ledgers ------------------------------------------------------------
@pytest.mark.parametrize(("content", "problem"), [
    ("[]", "must be a JSON object"), ("null", "must be a JSON object"), ('"a string"', "must be a JSON object"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
])
def test_report_command_on_non_reports_is_one_line(tmp_path: Path, capsys, content: str, problem: str) -> None:
    path = tmp_path / "r.json"
    path.write_text(content)
    code, _, err = _cli(capsys, "report", str(path))
    assert code == 2 and problem in _one_error_line(err)


@pytest.mark.parametrize(("field", "value", "problem"), [
    ("energy_kwh", "NaN", "NaN is not a number"), ("duration_s", "Infinity", "Infinity is not a number"),
    ("co2_kg", "-1000", "report.co2_kg must be ≥ 0"), ("duration_s", "-5", "report.duration_s must be ≥ 0"),
    ("started_at", '"yesterday"', "ISO 8601"),
])
def test_reports_with_impossible_amounts_are_not_summarised_or_merged(tmp_path: Path, capsys, field: str,
                                                                      value: str, problem: str) -> None:
    with _tracker() as tracker:
        time.sleep(0.02)
    text = tracker.stop().to_json(indent=None)
    data = json.loads(text)
    raw = json.dumps({k: ("@@" if k == field else v) for k, v in data.items()}).replace('"@@"', value)
    path = tmp_path / "bad.json"
    path.write_text(raw)
    for argv in (["report", str(path)], ["merge", str(path), "-o", str(tmp_path / "job.json")]):
        code, out, err = _cli(capsys, *argv)
        assert code == 2 and problem in _one_error_line(err) and "carbon" not in out


@pytest.mark.parametrize(("content", "problem"), [
    ("", "no 'run' record"),
    # no header left to send to (a bad line beside a header is skipped: test_sink_faults.py)
    ('{"type": "metric", "value": 1.0, "timestamp": 1, "step": 0, "seq": 1}\n', "line 1: metric record has no 'key'"),
])
def test_sync_of_a_damaged_ledger_names_the_problem(tmp_path: Path, capsys, content: str, problem: str) -> None:
    path = tmp_path / "ledger.jsonl"
    path.write_text(content)
    code, _, err = _cli(capsys, "sync", str(path), "--tracking-uri", "http://127.0.0.1:9")
    line = _one_error_line(err)
    assert code == 2 and problem in line and not line.rstrip().endswith(":")


# -- CLI arguments --------------------------------------------------------------------------
@pytest.mark.parametrize("now", ["garbage", "2026-13-45", "1e30"])
def test_plan_now_nonsense_is_one_line(tmp_path: Path, capsys, now: str) -> None:
    code, _, err = _cli(capsys, "plan", "--kwh", "1", "--duration", "1h", "--forecast", str(_ok_series(tmp_path)),
                        "--now", now)
    assert code == 2 and "--now" in _one_error_line(err)


def test_plan_reads_latin1_files_and_takes_an_encoding(tmp_path: Path, capsys) -> None:
    sites = tmp_path / "sites.csv"
    sites.write_bytes(SITES.encode("latin-1"))
    forecast = tmp_path / "f.csv"
    forecast.write_bytes(SERIES.encode("utf-16"))
    code, out, _ = _cli(capsys, "plan", "--kwh", "1", "--duration", "1h", "--sites", str(sites), "--forecast",
                        str(forecast), "--now", "2026-01-01T00:00Z")
    assert code == 0 and "Zürich" in out and "best start" in out
    code, _, err = _cli(capsys, "plan", "--kwh", "1", "--sites", str(sites), "--encoding", "klingon")
    assert code == 2 and "unknown encoding" in _one_error_line(err)


def test_argument_errors_are_one_line(capsys) -> None:
    code, _, err = _cli(capsys, "plan", "--kwh", "lots")
    assert code == 2 and "invalid float value" in _one_error_line(err)
    code, _, err = _cli(capsys)
    assert code == 2 and "required" in _one_error_line(err)


def _discovery(with_fix: bool) -> Discovery:
    class Estimate:
        domain, method, description = Domain.CPU, Method.ESTIMATE, "busy CPU time × W per thread"

        def close(self) -> None:
            pass

    rapl = Unavailable("rapl intel-rapl:0 (package-0)", "energy_uj: permission denied",
                       "sudo chmod o+r /sys/class/powercap/intel-rapl:*/energy_uj" if with_fix else "")
    return Discovery(readers=[Estimate()], unavailable=[rapl])


@pytest.mark.parametrize("with_fix", [True, False])
def test_info_points_to_a_fix_only_when_one_is_printed(monkeypatch, capsys, with_fix: bool) -> None:
    monkeypatch.setattr("carbonstep.measure.readers.discover", lambda *a, **k: _discovery(with_fix))
    code, out, _ = _cli(capsys, "info")
    assert code == 0 and ("fix: sudo chmod" in out) == with_fix
    assert ("see the fix above" in out) == with_fix


# -- carbonstep run: exit status, paths checked first, the report never lost -------------------------
@pytest.mark.parametrize(("signal_name", "status"), [("TERM", 143), ("KILL", 137)])
def test_run_exits_128_plus_n_for_a_child_killed_by_signal_n(capsys, signal_name: str, status: int) -> None:
    code, _, err = _cli(capsys, "run", "--region", "FR", "--", "sh", "-c", f"kill -{signal_name} $$")
    assert code == status and "carbonstep · run" in err


def test_run_json_to_a_directory_is_refused_before_the_child_runs(tmp_path: Path, capsys) -> None:
    marker = tmp_path / "ran"
    code, _, err = _cli(capsys, "run", "--json", str(tmp_path), "--", sys.executable, "-c",
                        f"open({str(marker)!r}, 'w')")
    assert code == 2 and "is a directory" in _one_error_line(err) and not marker.exists()


def test_run_keeps_the_report_when_its_path_fails_at_the_end(tmp_path: Path, capsys, monkeypatch) -> None:
    target = tmp_path / "out" / "report.json"
    fallback = tmp_path / "tmp"
    fallback.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(fallback))
    # the directory is valid when checked, and replaced by a file while the child runs
    code, _, err = _cli(capsys, "run", "--region", "FR", "--json", str(target), "--", sys.executable, "-c",
                        f"import os; os.makedirs({str(tmp_path)!r}, exist_ok=True); "
                        f"open({str(tmp_path / 'out')!r}, 'w').close()")
    assert code == 0 and "carbonstep · run" in err
    saved = list(fallback.glob("carbonstep-*.json"))
    assert len(saved) == 1 and f"the report is in {saved[0]}" in err
    assert RunReport.load(saved[0]).status == "completed"


# -- the generated table: every class of the issue, counted ---------------------------------------
@pytest.fixture(scope="module")
def table_module():
    """``scripts/bad_input_table.py``, imported."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bad_input_table", ROOT / "scripts" / "bad_input_table.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def table_rows(table_module) -> list:
    return [(case.group, case.example, kind) for case, kind, _ in table_module.rows()]


def test_bad_input_table_has_no_traceback_or_silent_accept(table_rows: list) -> None:
    assert [row for row in table_rows if row[2] not in ("error", "warning", "read")] == []
    groups = {row[0] for row in table_rows}
    assert {"encodings", "timestamps", "units", "reports", "ledgers", "CLI arguments", "paths",
            "exit status", "Tracker use", "Tracker arguments"} <= groups


def test_a_report_that_cannot_be_written_anywhere_is_printed(tmp_path: Path, capsys, monkeypatch) -> None:
    from carbonstep.cli import save_report

    with _tracker() as tracker:
        time.sleep(0.02)
    report = tracker.stop()
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    monkeypatch.setattr("tempfile.tempdir", str(a_file / "tmp"))  # the fallback fails too
    assert save_report(report, a_file / "r.json") is None
    err = capsys.readouterr().err
    assert "could not write" in err and "the report follows" in err
    assert RunReport.from_json(err.strip().splitlines()[-1]) == report


def test_an_unreachable_mlflow_server_is_one_line_not_minutes_of_retries(tmp_path: Path, capsys) -> None:
    ledger = tmp_path / "ledger.jsonl"
    ledger.write_text('{"type": "run", "run_id": "x", "tracking_uri": "http://127.0.0.1:9"}\n'
                      '{"type": "param", "key": "k", "value": "v", "seq": 1}\n')
    started = time.monotonic()
    code, _, err = _cli(capsys, "sync", str(ledger), "--tracking-uri", "http://127.0.0.1:9")
    assert code == 2 and "http://127.0.0.1:9 is not reachable" in _one_error_line(err)
    code, _, err = _cli(capsys, "compare", "some-run", "--tracking-uri", "http://127.0.0.1:9")
    assert code == 2 and "is not reachable" in _one_error_line(err)
    assert time.monotonic() - started < 60  # MLflow's own retries take minutes
