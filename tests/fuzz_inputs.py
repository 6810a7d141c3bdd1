"""Hypothesis strategies for the fuzz suite (tests/test_fuzz_*.py): the cells, rows, files and JSON
a careless or unlucky user can hand carbonstep."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from hypothesis import settings
from hypothesis import strategies as st

#: Bounded size and time: the number of examples, the seed, the example database and the deadline come from the
#: Hypothesis profile tests/conftest.py loads (deterministic, 120 examples, 10 s an example, none in CI;
#: HYPOTHESIS_PROFILE=deep for a long random local run). A real hang is stopped by each fuzz module's pytest timeout.
FUZZ = settings()
FUZZ_TIMEOUT_S = 120 * max(1, (FUZZ.max_examples or 1) // 120)  #: per fuzz test: 120 s for 120 examples

#: The intensity export formats carbonstep reads: header, time column, value columns.
FORMAT_HEADERS = {
    "plain": ["timestamp", "carbon_intensity"],
    "electricitymaps": ["Datetime (UTC)", "Country", "Zone Name", "Zone Id",
                        "Carbon Intensity gCO₂eq/kWh (direct)", "Carbon Intensity gCO₂eq/kWh (Life cycle)",
                        "Data Source"],
    "watttime": ["point_time", "value", "frequency", "market", "region"],
    "uk": ["from", "to", "forecast", "actual", "index"],
}
ENCODINGS = ("utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "latin-1", "cp1252")
NONSENSE = ("nan", "NaN", "inf", "-inf", "-1e12", "1e30", "2026", "20260101", "1e400", "0x10", "", " ", "null",
            "true", "1,5", "١٢٣", "—", "\x00", "\ufeff", "1e-320", "9" * 400, "-0", "+5", "1_000")
TIME_BASE = datetime(2026, 1, 1, tzinfo=timezone.utc)

iso_times = st.integers(-10**6, 10**6).map(lambda m: TIME_BASE + timedelta(minutes=m)).flatmap(
    lambda t: st.sampled_from([t.isoformat(), t.strftime("%Y-%m-%dT%H:%MZ"), t.strftime("%Y-%m-%d %H:%M:%S"),
                               str(int(t.timestamp())), str(int(t.timestamp() * 1000)), t.strftime("%Y%m%d")]))
number_text = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr),
                        st.integers(-10**20, 10**20).map(str), st.sampled_from(NONSENSE))
cells = st.one_of(iso_times, number_text, st.text(max_size=12),
                  st.text(alphabet=',;"\'\n\r\t\x00é₂€ \\', max_size=6))
big_cells = st.one_of(cells, st.integers(200_000, 300_000).map(lambda n: "9" * n))


def csv_text(header: list[str], rows: list[list[str]], delimiter: str = ",", newline: str = "\n") -> str:
    """Rows joined as they come (no quoting): broken quoting and stray delimiters are part of the fuzz."""
    return newline.join(delimiter.join(row) for row in [header, *rows]) + newline


def encoded(text: str, encoding: str) -> bytes:
    """``text`` in ``encoding``; characters it cannot hold become '?' (as a careless export does)."""
    return text.encode(encoding, errors="replace")


def csv_files(headers: st.SearchStrategy[list[str]]) -> st.SearchStrategy[bytes]:
    """A CSV file's bytes: a header, up to 6 rows of fuzzed cells, any delimiter, newline and encoding."""
    return st.builds(
        lambda header, rows, delimiter, newline, encoding: encoded(csv_text(header, rows, delimiter, newline),
                                                                   encoding),
        headers, st.lists(st.lists(cells, max_size=8), max_size=6), st.sampled_from([",", ";", "\t"]),
        st.sampled_from(["\n", "\r\n", "\r"]), st.sampled_from(ENCODINGS),
    )


json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True, allow_infinity=True) | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def json_text(value: object) -> str:
    return json.dumps(value, allow_nan=True)
