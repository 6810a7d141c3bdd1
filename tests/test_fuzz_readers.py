"""Fuzz every file reader: any bytes in, a parsed value that makes sense or one of carbonstep's own
errors out; never another exception, never a hang (hypothesis, bounded in size and time)."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import strategies as st

from carbonstep import Tracker
from carbonstep.accounting.timeseries import EARLIEST_S, LATEST_S, IntensitySeries, read_series
from carbonstep.analysis.plan.plan import SITE_COLUMNS, read_sites
from carbonstep.errors import CarbonstepError, DataFileError
from carbonstep.mlflow_io.ledger import LedgerContents, read_ledger
from carbonstep.report.loading import NON_NEGATIVE
from carbonstep.report.merge import merge
from carbonstep.report.record import RunReport
from carbonstep.report.summary import render
from carbonstep.testing import ScriptedReader

from .fuzz_inputs import (
    ENCODINGS,
    FORMAT_HEADERS,
    FUZZ,
    FUZZ_TIMEOUT_S,
    TIME_BASE,
    big_cells,
    cells,
    csv_files,
    csv_text,
    encoded,
    json_text,
    json_values,
)
from .test_scale import _report

pytestmark = pytest.mark.timeout(FUZZ_TIMEOUT_S)
FUZZ_FILES = FUZZ.__class__(FUZZ, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                         HealthCheck.too_slow])


def _write(directory: Path, name: str, data: bytes) -> Path:
    path = directory / name
    path.write_bytes(data)
    return path


def _sane_series(series: IntensitySeries) -> None:
    assert len(series.times) == len(series.values) >= 1
    assert all(EARLIEST_S <= t < LATEST_S for t in series.times)
    assert all(b > a for a, b in zip(series.times, series.times[1:]))
    assert all(math.isfinite(v) and v >= 0 for v in series.values)
    assert all("\n" not in w for w in series.warnings)


# -- intensity series, in each export format ------------------------------------------------
@pytest.mark.parametrize("fmt", sorted(FORMAT_HEADERS))
@FUZZ_FILES
@given(data=st.data())
def test_intensity_file_in_each_format_parses_or_names_the_problem(tmp_path: Path, fmt: str, data) -> None:
    content = data.draw(csv_files(st.just(FORMAT_HEADERS[fmt])))
    path = _write(tmp_path, f"{fmt}.csv", content)
    try:
        series = read_series(path)
    except DataFileError as exc:
        assert exc.path == str(path) and "\n" not in str(exc)
    else:
        _sane_series(series)


@FUZZ_FILES
@given(content=st.binary(max_size=600) | csv_files(st.lists(big_cells, min_size=1, max_size=3)))
def test_intensity_file_of_any_bytes_parses_or_names_the_problem(tmp_path: Path, content: bytes) -> None:
    try:
        series = read_series(_write(tmp_path, "any.csv", content))
    except DataFileError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 600
    else:
        _sane_series(series)


@FUZZ_FILES
@given(st.sampled_from(ENCODINGS), st.lists(st.floats(2, 1100), min_size=1, max_size=8),
       st.sampled_from(["\n", "\r\n"]), st.sampled_from(["Zürich, été", "plain ASCII"]))
def test_a_valid_series_reads_the_same_in_every_encoding(tmp_path: Path, encoding: str, values: list[float],
                                                         newline: str, note: str) -> None:
    rows = [[f'"{note}"', (TIME_BASE.replace(hour=i)).isoformat(), repr(v)] for i, v in enumerate(values)]
    text = csv_text(["note", "timestamp", "carbon_intensity"], rows, ",", newline)
    series = read_series(_write(tmp_path, "valid.csv", text.encode(encoding)))
    assert series.values == pytest.approx(values)
    assert series.times[0] == TIME_BASE.timestamp() and not series.warnings


# -- sites ----------------------------------------------------------------------------------
site_headers = st.one_of(
    st.permutations(SITE_COLUMNS).flatmap(lambda cols: st.integers(1, len(cols)).map(lambda n: list(cols[:n]))),
    st.lists(st.sampled_from([*SITE_COLUMNS, "Site", " pue ", "extra"]), max_size=6),
)


@FUZZ_FILES
@given(content=csv_files(site_headers) | st.binary(max_size=400))
def test_sites_file_parses_or_names_the_problem(tmp_path: Path, content: bytes) -> None:
    path = _write(tmp_path, "sites.csv", content)
    try:
        sites = read_sites(path)
    except DataFileError as exc:
        assert exc.path == str(path) and "\n" not in str(exc)
    else:
        assert len({s.name for s in sites}) == len(sites)
        for s in sites:
            assert s.name and "\n" not in s.name
            assert s.pue >= 1 and s.wue >= 0 and s.g_per_kwh >= 0 and s.water_intensity >= 0
            assert all(math.isfinite(v) for v in (s.pue, s.wue, s.g_per_kwh, s.water_intensity))


@FUZZ_FILES
@given(st.lists(st.tuples(st.sampled_from(["FR", "de", "Frnace", "US-WV", "", "123"]), cells), min_size=1,
                max_size=4), st.sampled_from(ENCODINGS))
def test_sites_with_regions_parse_or_name_the_problem(tmp_path: Path, rows, encoding: str) -> None:
    body = [[f"s{i}", "1.2", "0", region, g] for i, (region, g) in enumerate(rows)]
    path = _write(tmp_path, "r.csv", encoded(csv_text(["site", "pue", "wue", "region", "intensity"], body), encoding))
    try:
        sites = read_sites(path)
    except DataFileError as exc:
        assert "\n" not in str(exc)
    else:
        assert all(s.g_per_kwh >= 0 and math.isfinite(s.g_per_kwh) for s in sites)


# -- reports ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def valid_reports() -> list[dict]:
    """A measured run (marks, epochs, place, count unit) and a merged job (parts, nodes)."""
    gpu = ScriptedReader("gpu:0", "gpu", lambda t: 250.0)
    with Tracker(region="FR", readers=[gpu], interval_s=0.01, count_unit="token") as tracker:
        for step in range(4):
            time.sleep(0.01)
            tracker.mark(step=step, epoch=step // 2, count=32)
    ranks = [_report("h", "2026-01-01T00:00:00+00:00", 10.0, [("gpu:0", "gpu", "process", 0.1)], 50.0, rank=r,
                     run_id=f"r{r}") for r in range(2)]
    return [json.loads(tracker.stop().to_json()), json.loads(merge(ranks).to_json())]


def _paths(value: object, prefix: tuple = ()) -> list[tuple]:
    """Every path into a JSON value (keys and indexes), the value itself first."""
    found = [prefix]
    if isinstance(value, dict):
        for key, inner in value.items():
            found += _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value[:3]):
            found += _paths(inner, (*prefix, index))
    return found


def _replaced(value: object, path: tuple, new: object) -> object:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replaced(value[head], rest, new)}
    return [_replaced(v, rest, new) if i == head else v for i, v in enumerate(value)]


def _sane_report(report: RunReport) -> None:
    """An accepted report must be usable everywhere: saved, summarised, merged, all amounts ≥ 0."""
    json.loads(report.to_json())  # allow_nan=False inside: raises on NaN
    assert "\n\n" not in render(report)
    for name in NON_NEGATIVE & set(vars(report)):
        value = getattr(report, name)
        assert value is None or (math.isfinite(value) and value >= 0)
    assert report.pue >= 1
    try:
        merge([report])
    except CarbonstepError:
        pass


def _load(tmp_path: Path, data: bytes) -> RunReport | None:
    try:
        return RunReport.load(_write(tmp_path, "report.json", data))
    except DataFileError as exc:
        assert "\n" not in str(exc)
        return None


@FUZZ_FILES
@given(data=st.data())
def test_report_with_any_field_replaced_loads_sanely_or_names_the_problem(tmp_path: Path,
                                                                         valid_reports: list[dict], data) -> None:
    valid_report = data.draw(st.sampled_from(valid_reports))
    path = data.draw(st.sampled_from(_paths(valid_report)))
    mutated = _replaced(valid_report, path, data.draw(json_values))
    report = _load(tmp_path, json_text(mutated).encode())
    if report is not None:
        _sane_report(report)


@FUZZ_FILES
@given(content=json_values.map(lambda v: json_text(v).encode()) | st.binary(max_size=300)
       | st.sampled_from([b"[" * 100_000, b'{"a":' * 50_000, b"1" * 5000, b"\xff\xfe{\x00}\x00"]))
def test_report_of_any_bytes_loads_sanely_or_names_the_problem(tmp_path: Path, content: bytes) -> None:
    report = _load(tmp_path, content)
    if report is not None:
        _sane_report(report)


# -- ledgers ----------------------------------------------------------------------------------
LEDGER = [
    {"type": "run", "run_id": "abc", "tracking_uri": "http://127.0.0.1:1"},
    {"type": "metric", "key": "energy_kwh", "value": 0.5, "timestamp": 1767225600000, "step": 1, "seq": 1},
    {"type": "param", "key": "region", "value": "FR", "seq": 2},
    {"type": "tag", "key": "carbonstep", "value": "1", "seq": 3},
    {"type": "artifact", "path": "/nonexistent/report.json", "seq": 4},
    {"type": "sent", "upto": 2},
]


@FUZZ_FILES
@given(data=st.data())
def test_ledger_with_any_record_damaged_loses_only_that_line_and_names_it(tmp_path: Path, data) -> None:
    lines = [json_text(item) for item in LEDGER]
    index = data.draw(st.integers(0, len(lines) - 1))
    record = LEDGER[index]
    damage = data.draw(st.sampled_from(["drop-key", "replace-value", "replace-line", "truncate", "nul", "bytes"]))
    if damage == "drop-key":
        key = data.draw(st.sampled_from(sorted(record)))
        lines[index] = json_text({k: v for k, v in record.items() if k != key})
    elif damage == "replace-value":
        key = data.draw(st.sampled_from(sorted(record)))
        lines[index] = json_text({**record, key: data.draw(json_values)})
    elif damage == "replace-line":
        lines[index] = data.draw(st.text(max_size=30) | json_values.map(json_text))
    elif damage == "nul":  # a block of a crashed disk read back as zeros
        lines[index] = "\x00" * data.draw(st.integers(1, 80))
    elif damage == "truncate":
        lines[index] = lines[index][:data.draw(st.integers(0, len(lines[index])))]
    raw = [line.encode() for line in lines]
    if damage == "bytes":  # any bytes, not only text: invalid UTF-8 too
        raw[index] = data.draw(st.binary(max_size=40)).replace(b"\n", b"")
    content = b"\n".join(raw)
    path = _write(tmp_path, "l.jsonl", content)
    contents = _read_ledger_checked(path)
    if contents is None:  # no sink header left: only the header's own line can have taken it
        assert index == 0
        return
    ours = contents.sinks.get(None)
    assert ours is not None and set(contents.damaged_lines) <= {index + 1}
    kept = [item for item in ours.records if item in LEDGER]
    assert kept == [item for n, item in enumerate(LEDGER) if "seq" in item and n != index] or (
        kept == [item for item in LEDGER if "seq" in item])  # the damage left a valid record (or a blank line)
    if index != 0:
        assert ours.header == LEDGER[0]


@FUZZ_FILES
@given(content=st.binary(max_size=300))
def test_ledger_of_any_bytes_reads_or_names_the_problem(tmp_path: Path, content: bytes) -> None:
    _read_ledger_checked(_write(tmp_path, "b.jsonl", content))


@FUZZ_FILES
@given(good=st.lists(st.sampled_from(LEDGER[1:5]), max_size=8), bad=st.lists(
    st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")) | st.integers(1, 60).map(lambda n: b"\x00" * n),
    min_size=1, max_size=4), data=st.data())
def test_garbage_lines_anywhere_in_a_ledger_lose_no_good_record(tmp_path: Path, good: list[dict],
                                                                bad: list[bytes], data) -> None:
    lines = [json_text(LEDGER[0]).encode(), *(json_text({**item, "seq": n}).encode()
                                               for n, item in enumerate(good, start=1))]
    for line in bad:  # anywhere after the header: the middle, the end, one after another
        lines.insert(data.draw(st.integers(1, len(lines))), line)
    contents = _read_ledger_checked(_write(tmp_path, "g.jsonl", b"\n".join(lines) + b"\n"))
    assert contents is not None
    sent = contents.sinks[None].records
    assert sent == [{**item, "seq": n} for n, item in enumerate(good, start=1)]  # each, in order, nothing else
    assert len(contents.warnings) == len(contents.damaged_lines) <= len(bad)


def _read_ledger_checked(path: Path) -> LedgerContents | None:
    try:
        contents = read_ledger(path)
    except DataFileError as exc:
        assert exc.path == str(path) and "\n" not in str(exc) and exc.problem.strip()
        return None
    assert any(sink.header for sink in contents.sinks.values())
    for sink in contents.sinks.values():
        assert sink.header is None or (sink.header["type"] == "run" and isinstance(sink.header["tracking_uri"], str))
        for item in sink.records:
            assert isinstance(item["seq"], int) and item["seq"] >= 0
            if item["type"] == "metric":
                assert isinstance(item["key"], str) and isinstance(item["step"], int)
    assert len(contents.warnings) == len(contents.damaged_lines)
    assert all(w.startswith(f"{path}, line {n}:") and "\n" not in w
               for w, n in zip(contents.warnings, contents.damaged_lines))
    return contents
