"""Fuzz the public parsers, the shared checks and the command line: any value in, a sensible result
or one of carbonstep's own errors (one line) out; never another exception, never a hang."""

from __future__ import annotations

import contextlib
import io
import math
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, example, given
from hypothesis import strategies as st

from carbonstep import Budget, ConfigError, Tracker
from carbonstep.accounting.regions import lookup
from carbonstep.accounting.timeseries import EARLIEST_S, LATEST_S, parse_time
from carbonstep.analysis.plan.plan import parse_duration
from carbonstep.cli import main
from carbonstep.errors import CarbonstepError
from carbonstep.testing import ScriptedReader
from carbonstep.validate import PUE, check_int, check_number, check_output_file, check_text, parse_number

from .fuzz_inputs import FUZZ, FUZZ_TIMEOUT_S, cells, iso_times, json_values, number_text

pytestmark = pytest.mark.timeout(FUZZ_TIMEOUT_S)
FUZZ_FILES = FUZZ.__class__(FUZZ, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                         HealthCheck.too_slow])
anything = st.one_of(json_values, number_text, st.floats(), st.binary(max_size=8), st.just(float("nan")),
                     st.sampled_from([True, False, None, object(), Path("/"), 10**400, -0.0, math.inf]))


@FUZZ
@given(st.one_of(cells, iso_times, anything))
def test_parse_time_is_a_time_of_this_era_or_a_clear_error(text: object) -> None:
    try:
        unix_s = parse_time(text)  # type: ignore[arg-type]
    except ConfigError as exc:
        assert "\n" not in str(exc) and "ISO 8601" in str(exc)
    else:
        assert EARLIEST_S <= unix_s < LATEST_S


@pytest.mark.parametrize(("text", "expected"), [
    ("20260101", datetime.fromisoformat("2026-01-01T00:00+00:00").timestamp()),
    ("2026-01-01T00:00Z", datetime.fromisoformat("2026-01-01T00:00+00:00").timestamp()),
    ("1767225600", 1767225600.0), ("1767225600000", 1767225600.0),
])
def test_parse_time_reads_iso_basic_dates_and_epoch_seconds_or_ms(text: str, expected: float) -> None:
    assert parse_time(text) == expected


@FUZZ
@given(st.one_of(st.text(max_size=12), st.from_regex(r"\d{1,30}(\.\d+)?[dhms]", fullmatch=True), anything))
def test_parse_duration_is_positive_and_bounded_or_a_clear_error(text: object) -> None:
    try:
        seconds = parse_duration(text)  # type: ignore[arg-type]
    except ConfigError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("duration")
    else:
        assert 0 < seconds <= 366 * 86400


@FUZZ
@given(st.one_of(st.text(max_size=20), st.sampled_from(["FR", "fr", " de ", "Frnace", "US-WV", "WORLD"])))
def test_region_lookup_finds_a_region_or_suggests(text: str) -> None:
    try:
        region = lookup(text)
    except ConfigError as exc:
        assert "\n" not in str(exc) and "carbonstep regions" in str(exc)
    else:
        assert math.isfinite(region.g_per_kwh) and region.g_per_kwh >= 0


@FUZZ
@given(anything)
def test_shared_checks_give_a_number_or_one_line(value: object) -> None:
    for check in (lambda v: check_number("pue", v, low=1.0, plausible=PUE),
                  lambda v: parse_number("pue", v, low=1.0, plausible=PUE)):
        try:
            number, warnings = check(value)
        except ConfigError as exc:
            assert "\n" not in str(exc) and str(exc).startswith("pue must be")
        else:
            assert not isinstance(value, bool) and math.isfinite(number) and number >= 1
            assert (number > PUE.high) == bool(warnings)
    for check in (lambda v: check_int("pid", v, low=1), lambda v: check_text("region", v)):
        try:
            check(value)
        except ConfigError as exc:
            assert "\n" not in str(exc)


@FUZZ
@given(anything)
def test_output_file_check_takes_a_path_or_says_why_not(value: object) -> None:
    try:
        path = check_output_file("--json", value)
    except ConfigError as exc:
        assert "\n" not in str(exc) and "--json" in str(exc)
    else:
        assert isinstance(path, Path) and not path.is_dir()


@FUZZ
@given(st.dictionaries(st.sampled_from(["co2_kg", "kwh", "water_l"]), anything, max_size=3))
def test_budget_takes_positive_limits_or_a_clear_error(limits: dict) -> None:
    try:
        Budget(**limits)
    except ConfigError as exc:
        assert "\n" not in str(exc)
    else:
        assert limits and all(not isinstance(v, bool) for v in limits.values())


cli_words = st.sampled_from(["--kwh", "--now", "--duration", "--pue", "--sites", "--forecast", "--report",
                             "--encoding", "2026-13-45", "garbage", "1e30", "nan", "-1", "6h", "latin-1",
                             "nonsense-codec", "/nonexistent.csv", "--", "-x", "1", "2026-01-01T00:00Z"])


@FUZZ_FILES
@given(st.sampled_from([["plan"], ["report"], ["merge"], ["regions"], ["sync"], []]),
       st.lists(st.one_of(cli_words, st.text(max_size=6)), max_size=7))
def test_command_line_errors_are_one_line_with_status_2(tmp_path: Path, command: list[str],
                                                        words: list[str]) -> None:
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        try:
            code = main([*command, *words])
        except SystemExit as exc:  # argparse: --help exits 0, a bad argument 2
            code = exc.code
    errors = [line for line in err.getvalue().splitlines() if "error" in line]
    if code == 2:
        assert len(errors) == 1 and errors[0].startswith("carbonstep"), err.getvalue()
    else:
        assert code in (0, 1) and not errors, err.getvalue()


@FUZZ.__class__(FUZZ, phases=[Phase.explicit, Phase.generate], max_examples=60)
@given(st.fixed_dictionaries({}, optional={
    "region": st.one_of(st.text(max_size=6), anything), "pue": anything, "wue": anything,
    "intensity": anything, "interval_s": anything, "pid": anything, "attribution": anything,
}))
@example({"pue": True})  # the examples, so that today's failure is certain, not drawn by chance
@example({"intensity": True})
@example({"interval_s": True})
@example({"region": 123})
@example({"pid": "abc"})
@example({"pid": 2**63})  # once an OverflowError from the OS call, now one clear line
def test_tracker_arguments_are_checked_or_refused(kwargs: dict) -> None:
    try:
        tracker = Tracker(readers=[ScriptedReader("g", "gpu", lambda t: 1.0)], **kwargs)
    except CarbonstepError as exc:
        assert "\n" not in str(exc)
    else:
        assert not any(isinstance(v, bool) for v in kwargs.values())
        assert kwargs.get("region") is None or isinstance(kwargs["region"], str)
        assert kwargs.get("pid") is None or (isinstance(kwargs["pid"], int) and kwargs["pid"] > 0)
        assert math.isfinite(tracker.pue) and tracker.pue >= 1 and tracker.interval_s > 0
