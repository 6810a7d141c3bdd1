"""carbonstep report / merge of well-formed reports holding what no run can: each is said, or refused."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from carbonstep import ConfigError
from carbonstep.report.loading import implausible
from carbonstep.report.merge import merge, merge_warnings
from carbonstep.report.record import RunReport


@pytest.fixture(scope="module")
def good() -> dict[str, Any]:
    from carbonstep import Tracker
    from carbonstep.testing import ScriptedReader

    with Tracker(region="FR", readers=[ScriptedReader("gpu:0", "gpu", lambda t: 250.0)], interval_s=0.01) as t:
        time.sleep(0.05)
    return json.loads(t.stop().to_json())


def _report(good: dict[str, Any], **changes: Any) -> RunReport:
    return RunReport.from_dict({**good, **changes})


def _cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "carbonstep.cli", *argv], capture_output=True, text=True,
                          timeout=120)


def test_a_normal_report_has_nothing_implausible(good: dict[str, Any]) -> None:
    assert implausible(_report(good), time.time()) == []


def test_a_start_in_the_far_future(good: dict[str, Any]) -> None:
    [line] = implausible(_report(good, started_at="2099-01-01T00:00:00+00:00"), time.time())
    assert "starts at 2099-01-01" in line and "in the future by this machine's clock" in line


def test_years_of_duration_for_seconds_of_energy(good: dict[str, Any]) -> None:
    lines = implausible(_report(good, duration_s=3 * 365.25 * 86_400), time.time())
    assert len(lines) == 2 and "lasts 3.0 years" in lines[0] and "do not belong together" in lines[1]


def test_the_same_run_twice_in_a_merge(good: dict[str, Any]) -> None:
    a = _report(good)
    b = _report(good, started_at="2026-01-01T00:00:00+00:00")
    with pytest.raises(ConfigError, match="is given twice"):
        merge([a, b])


def test_machine_attribution_merged_with_process_reports(good: dict[str, Any]) -> None:
    a = _report(good, run_id="a", attribution="process")
    b = _report(good, run_id="b", attribution="machine")
    with pytest.raises(ConfigError, match="report b measured the whole machine"):
        merge([a, b])


def test_reports_from_other_hosts_are_said(good: dict[str, Any]) -> None:
    a = _report(good, run_id="a", host="node-a")
    b = _report(good, run_id="b", host="node-b")
    [line] = merge_warnings([a, b])
    assert "2 hosts (node-a, node-b)" in line
    assert line in merge([a, b]).warnings


def test_the_commands_print_the_warnings(good: dict[str, Any], tmp_path: Path) -> None:
    future = tmp_path / "future.json"
    future.write_text(json.dumps({**good, "started_at": "2099-01-01T00:00:00+00:00"}))
    other = tmp_path / "other.json"
    other.write_text(json.dumps({**good, "run_id": "other", "host": "elsewhere"}))
    shown = _cli("report", str(future))
    assert shown.returncode == 0 and "carbonstep: warning: " in shown.stderr and "2099-01-01" in shown.stderr
    merged = _cli("merge", str(future), str(other), "-o", str(tmp_path / "job.json"))
    assert merged.returncode == 0, merged.stderr
    assert "2099-01-01" in merged.stderr and "are not ranks of one distributed job" in merged.stderr
    twice = _cli("merge", str(future), str(future), "-o", str(tmp_path / "job2.json"))
    errors = [line for line in twice.stderr.splitlines() if line.startswith("carbonstep: error:")]
    assert twice.returncode == 2 and len(errors) == 1 and "given twice" in errors[0]
    assert "Traceback" not in twice.stderr


@pytest.mark.parametrize(("field", "bad", "named"), [
    ("timeline", lambda t: t[:3] + [[3.0, "x"]] + t[3:], "report.timeline[3][1] must be a number, got text"),
    ("timeline", lambda t: t[:2] + [[2.0]] + t[2:], "report.timeline[2] must be a list of 2 values, got 1"),
    ("timeline", lambda t: t + [[9.0, None]], "report.timeline[5][1] must be a number, got null"),
])
def test_a_wrong_item_deep_in_a_long_list_is_named_by_its_index(
        good: dict[str, Any], tmp_path: Path, field: str, bad: Any, named: str) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps({**good, field: bad([[float(s), s / 1000] for s in range(5)])}))
    with pytest.raises(ConfigError, match=named.replace("[", r"\[").replace("]", r"\]")):
        RunReport.load(path)
