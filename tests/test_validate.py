"""The shared boundary checks in carbonstep.validate."""

from __future__ import annotations

import math

import pytest

from carbonstep.errors import ConfigError
from carbonstep.validate import (
    INTENSITY_G_PER_KWH,
    PUE,
    WUE_L_PER_KWH,
    check_int,
    check_number,
    check_output_dir,
    check_output_file,
    check_text,
    parse_number,
    shown,
)


@pytest.mark.parametrize("bad", [True, False, "1.2", None, [1], float("nan"), float("inf"), -math.inf])
def test_check_number_refuses_booleans_text_and_non_finite(bad: object) -> None:
    with pytest.raises(ConfigError) as caught:
        check_number("pue", bad, low=1.0, plausible=PUE, fix="pass e.g. pue=1.2")
    message = str(caught.value)
    assert "\n" not in message and message.startswith("pue must be") and message.endswith("pass e.g. pue=1.2")
    if isinstance(bad, bool):
        assert "a boolean" in message


def test_check_number_bounds_and_plausible_warning() -> None:
    assert check_number("pue", 1.3, low=1.0, plausible=PUE) == (1.3, [])
    with pytest.raises(ConfigError, match="≥ 1"):
        check_number("pue", 0.9, low=1.0)
    with pytest.raises(ConfigError, match="> 0"):
        check_number("interval_s", 0, low=0.0, low_open=True)
    value, warnings = check_number("pue", 1000, low=1.0, plausible=PUE)
    assert value == 1000.0 and len(warnings) == 1 and "above the highest published value (2.5" in warnings[0]
    value, warnings = check_number("intensity", 0.045, low=0.0, plausible=INTENSITY_G_PER_KWH)
    assert "below the lowest published value (1.306 g/kWh" in warnings[0]
    assert check_number("intensity", 1e12, low=0.0, plausible=INTENSITY_G_PER_KWH).warnings
    assert check_number("wue", 1e9, low=0.0, plausible=WUE_L_PER_KWH).warnings


def test_parse_number_reads_text_but_refuses_booleans() -> None:
    assert parse_number("pue", " 1.4 ", low=1.0).value == 1.4
    assert parse_number("pue", 1.4, low=1.0).value == 1.4
    for bad in ("abc", "nan", "", True):
        with pytest.raises(ConfigError, match="pue must be"):
            parse_number("pue", bad, low=1.0)


def test_check_int_and_text() -> None:
    assert check_int("pid", 12.0, low=1) == 12
    for bad in (True, "abc", 1.5, float("nan"), 0):
        with pytest.raises(ConfigError, match="pid must be a whole number"):
            check_int("pid", bad, low=1)
    assert check_int("n", 2**53 + 1) == 2**53 + 1  # exact, not rounded through a float
    for bad in (2**63, 10**400, 11, 10.5):
        with pytest.raises(ConfigError, match=r"n must be a whole number from 1 to 10, got "):
            check_int("n", bad, low=1, high=10)
    assert check_text("region", " FR ") == "FR"
    for bad in (123, "", "a\nb", "x" * 500):
        with pytest.raises(ConfigError, match="region must be"):
            check_text("region", bad)


def test_shown_cuts_oversized_values_to_one_line() -> None:
    text = shown("a\n" * 1000)
    assert len(text) <= 60 and "\n" not in text


def test_output_paths_are_checked_up_front(tmp_path) -> None:
    a_file = tmp_path / "f.txt"
    a_file.write_text("x")
    assert check_output_dir("output_dir", tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    with pytest.raises(ConfigError, match="is a file, not a directory"):
        check_output_dir("output_dir", a_file)
    with pytest.raises(ConfigError, match="lies under the file"):
        check_output_dir("output_dir", a_file / "sub")
    assert check_output_file("--json", tmp_path / "r.json") == tmp_path / "r.json"
    with pytest.raises(ConfigError, match="is a directory"):
        check_output_file("--json", tmp_path)
    with pytest.raises(ConfigError, match="lies under the file"):
        check_output_file("--json", a_file / "r.json")
    with pytest.raises(ConfigError, match="must be a path"):
        check_output_dir("output_dir", 123)


def test_intensity_range_is_the_shipped_tables_extremes() -> None:
    """The plausible grid range is read off the shipped table, not typed from elsewhere."""
    from carbonstep.accounting.regions import regions

    countries = [r.g_per_kwh for r in regions().values() if r.level == "country"]
    assert INTENSITY_G_PER_KWH.high == max(countries)
    assert INTENSITY_G_PER_KWH.low == max(countries) / 1000
    assert min(countries) > INTENSITY_G_PER_KWH.low
