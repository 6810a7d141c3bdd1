"""Property tests on every parser of user input, and the generated bad-input table."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from carbonstep import Budget, ConfigError, Tracker
from carbonstep.accounting.regions import lookup
from carbonstep.analysis.plan.plan import parse_duration, read_sites
from carbonstep.errors import DataFileError
from carbonstep.report.merge import merge

from .test_scale import _report

ROOT = Path(__file__).resolve().parents[1]
numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10, 10))
cells = st.one_of(st.text(max_size=8), numbers.map(str))


def test_bad_input_table_in_the_docs_is_current() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "bad_input_table.py"), "--check"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(cells, cells, cells), min_size=1, max_size=4))
def test_sites_parser_gives_valid_sites_or_names_the_line(tmp_path_factory, rows) -> None:
    path = tmp_path_factory.mktemp("sites") / "sites.csv"
    body = "\n".join(f"s{i},{pue},{wue},{g}" for i, (pue, wue, g) in enumerate(rows))
    path.write_text("site,pue,wue,intensity\n" + body + "\n")
    try:
        sites = read_sites(path)
    except DataFileError as exc:
        assert exc.path == str(path) and (exc.line is None or 1 <= exc.line <= len(rows) + 1)
    else:
        for s in sites:
            assert s.pue >= 1 and s.wue >= 0 and s.g_per_kwh >= 0
            assert all(math.isfinite(v) for v in (s.pue, s.wue, s.g_per_kwh))


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=12))
def test_duration_parser_is_positive_or_a_clear_error(text: str) -> None:
    try:
        seconds = parse_duration(text)
    except ConfigError as exc:
        assert "duration" in str(exc)
    else:
        assert seconds > 0 and math.isfinite(seconds)


@given(st.integers(0, 30), st.integers(0, 59), st.integers(0, 59))
def test_duration_parser_adds_its_parts(h: int, m: int, s: int) -> None:
    text = f"{h}h{m}m{s}s"
    if h + m + s:
        assert parse_duration(text) == h * 3600 + m * 60 + s


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=16))
def test_region_lookup_finds_or_explains(text: str) -> None:
    try:
        region = lookup(text)
    except ConfigError as exc:
        assert "unknown region" in str(exc) and "carbonstep regions" in str(exc)
    else:
        assert region.g_per_kwh >= 0 and region.source


@settings(max_examples=150, deadline=None)
@given(numbers, st.one_of(st.none(), numbers), st.booleans())
def test_budget_accepts_only_positive_finite_limits(kwh, co2, predict) -> None:
    try:
        budget = Budget(kwh=kwh, co2_kg=co2, predict=predict)
    except ConfigError as exc:
        assert "Budget" in str(exc)
        assert not (math.isfinite(kwh) and kwh > 0 and (co2 is None or (math.isfinite(co2) and co2 > 0)))
    else:
        assert all(v > 0 and math.isfinite(v) for v in budget.limits().values())


@settings(max_examples=100, deadline=None)
@given(numbers, numbers, numbers)
def test_tracker_factors_are_checked_before_anything_runs(pue, wue, intensity) -> None:
    try:
        tracker = Tracker(pue=pue, wue=wue, intensity=intensity)
    except ConfigError as exc:
        assert "must be a finite number" in str(exc)
    else:
        assert tracker.pue >= 1 and tracker.wue >= 0 and not tracker.running


scopes = st.sampled_from(["process", "device", "node"])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["h1", "h2"]), st.integers(0, 100), st.integers(1, 100), scopes,
                          st.floats(0, 1)), min_size=1, max_size=5))
def test_merge_never_adds_energy_and_never_loses_process_energy(parts) -> None:
    reports = [_report(host, f"2026-01-01T00:{start // 60:02d}:{start % 60:02d}+00:00", duration,
                       [("dev", "cpu", scope, kwh)], 100, run_id=f"r{i}")
               for i, (host, start, duration, scope, kwh) in enumerate(parts)]
    job = merge(reports)
    total = sum(r.energy_kwh for r in reports)
    own = sum(r.energy_kwh for r in reports if r.devices[0].scope == "process")
    assert own - 1e-12 <= job.energy_kwh <= total + 1e-12
    assert job.co2_kg <= sum(r.co2_kg for r in reports) + 1e-12
    assert math.isclose(sum(p["energy_kwh"] for p in job.extra["parts"]), job.energy_kwh, abs_tol=1e-12)
