"""Grid carbon intensity over time, read from CSV, integrated energy-weighted over a run.

Formats read (detected from the header):

* plain: a timestamp column (``timestamp``/``datetime``/``time``/``date``) and a g/kWh
  column (``carbon_intensity``/``intensity``/``g_per_kwh``/``gco2_per_kwh``/``value``);
* Electricity Maps exports: ``Datetime (UTC)`` and ``Carbon Intensity gCO₂eq/kWh (Life cycle)``
  (or ``(direct)``);
* WattTime: ``point_time`` and ``value`` in lb CO2/MWh (converted × 0.4536 to g/kWh);
* UK Carbon Intensity (carbonintensity.org.uk): ``from``/``Datetime`` with ``actual`` and
  ``forecast`` g/kWh (actual where present, else forecast).

Each value holds from its timestamp until the next one.
"""

from __future__ import annotations

import bisect
import codecs
import csv
import math
import re
import statistics
from array import array
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

from carbonstep.errors import ConfigError, DataFileError
from carbonstep.validate import INTENSITY_G_PER_KWH, read_file_bytes, shown

LB_PER_MWH_TO_G_PER_KWH = 0.45359237
TIME_COLUMNS = ("timestamp", "datetime", "datetime (utc)", "time", "date", "point_time", "from")
VALUE_COLUMNS = (
    "carbon intensity gco₂eq/kwh (life cycle)", "carbon intensity gco2eq/kwh (life cycle)",
    "carbon_intensity_gco2eq_per_kwh_life_cycle", "carbon_intensity", "intensity", "g_per_kwh",
    "gco2_per_kwh", "actual carbon intensity (gco2/kwh)", "actual", "carbon intensity gco₂eq/kwh (direct)",
    "carbon intensity gco2eq/kwh (direct)", "value",
)
FALLBACK_COLUMNS = ("forecast", "forecast carbon intensity (gco2/kwh)")


@dataclass(frozen=True)
class IntensitySeries:
    """Timestamps (UNIX seconds, increasing) and g/kWh values, with where they came from."""

    times: tuple[float, ...]
    values: tuple[float, ...]
    source: str
    unit_note: str = ""
    warnings: tuple[str, ...] = ()  #: e.g. values outside published grid intensities (check the unit)

    def at(self, unix_s: float) -> float:
        """The intensity in force at ``unix_s`` (clamped to the series' ends)."""
        i = bisect.bisect_right(self.times, unix_s) - 1
        return self.values[min(max(i, 0), len(self.values) - 1)]

    def cumulative_j_g(self, points: Sequence[tuple[float, float]]) -> list[float]:
        """Running sum of joules × g/kWh at each ``(unix_s, cumulative_j)`` point (0 at the first):
        each interval is charged at the intensity in force at its midpoint."""
        sums = [0.0] * min(len(points), 1)
        for (t0, e0), (t1, e1) in zip(points, points[1:]):
            sums.append(sums[-1] + (e1 - e0) * self.at((t0 + t1) / 2))
        return sums

    def weighted(self, points: Sequence[tuple[float, float]]) -> float:
        """Energy-weighted mean g/kWh over ``(unix_s, cumulative_j)`` points."""
        total_j = points[-1][1] - points[0][1] if points else 0.0
        if total_j <= 0:
            return self.at(points[-1][0]) if points else self.values[0]
        return self.cumulative_j_g(points)[-1] / total_j

    def covers(self, start_s: float, end_s: float) -> bool:
        """Whether [start_s, end_s] lies within the series (its last value holds for one more interval)."""
        first, end = self.span()
        return first <= start_s and end_s <= end

    def span(self) -> tuple[float, float]:
        """The first timestamp, and the end of the last value's interval (one more step after it)."""
        return self.times[0], self.times[-1] + self._step()

    def _step(self) -> float:
        return self.times[-1] - self.times[-2] if len(self.times) > 1 else 3600.0


EARLIEST_S = 631152000.0  #: 1990-01-01 UTC: the first year of Ember's yearly electricity data
LATEST_S = 4102444800.0  #: 2100-01-01 UTC
TIME_FIX = "write ISO 8601 such as 2026-01-01T00:00Z, or UNIX seconds"


def parse_time(text: str, name: str = "time") -> float:
    """UNIX seconds from ISO 8601 (UTC when no zone is given; basic ``20260101`` too) or epoch
    seconds/milliseconds, between 1990 and 2100; anything else raises :class:`ConfigError`
    naming ``name`` and saying what was wrong (a bare year, NaN, a number that is no time of this era…)."""
    try:
        return _unix_s(text)
    except ValueError as exc:
        raise ConfigError(f"{name} {shown(text)} {exc}: {TIME_FIX}") from None


def _unix_s(text: str) -> float:
    """UNIX seconds, or ValueError saying what is wrong with ``text`` as a time."""
    if not isinstance(text, str):
        raise ValueError("is not text")
    text = text.strip()
    if re.fullmatch(r"[+-]?\d{1,4}", text):
        raise ValueError("is a bare number, not a time (a year?)")
    try:
        number = float(text)
    except ValueError:
        unix_s = _iso_seconds(text)
    else:
        if re.fullmatch(r"\d{8}", text):
            unix_s = _iso_seconds(text)  # ISO 8601 basic date, e.g. 20260101
        elif not math.isfinite(number):
            raise ValueError("is not a finite number") from None
        else:
            unix_s = number / 1000 if abs(number) > 1e11 else number  # epoch ms or s
    if not EARLIEST_S <= unix_s < LATEST_S:
        raise ValueError(f"is not between 1990 and 2100 (read as {unix_s:g} UNIX seconds)")
    return unix_s


def _iso_seconds(text: str) -> float:
    try:
        stamp = datetime.fromisoformat(text.replace(" UTC", "+00:00"))
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=timezone.utc)
        return stamp.timestamp()
    except (ValueError, OverflowError):
        raise ValueError("is not ISO 8601") from None


def _pick(header: list[str], names: Iterable[str]) -> int | None:
    lowered = [h.strip().lower() for h in header]
    for name in names:
        if name in lowered:
            return lowered.index(name)
    return None


BOMS = (  # longest first: the UTF-32 LE mark begins with the UTF-16 LE one
    (codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"), (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def read_text(path: Path, encoding: str | None = None) -> str:
    """A data file's text: in ``encoding`` if given, else by its byte-order mark (UTF-8/16/32), else
    UTF-16 without a mark (every other byte NUL), else UTF-8, else Latin-1 (which reads any bytes).
    DataFileError if it cannot be read or is not text in the given encoding."""
    data = read_file_bytes(path)
    if encoding is not None:
        return _decode(path, data, encoding)
    for bom, name in BOMS:
        if data.startswith(bom):
            return _decode(path, data[len(bom):], name)
    if len(data) >= 2 and data.count(0) * 3 >= len(data):  # text has no NUL bytes; UTF-16 has one per ASCII char
        odd_nuls = data[1::2].count(0)
        return _decode(path, data, "utf-16-le" if odd_nuls >= data[0::2].count(0) else "utf-16-be")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _decode(path: Path, data: bytes, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except LookupError:
        raise ConfigError(f"unknown encoding {shown(encoding)} for {path}: pass e.g. utf-8, latin-1 or utf-16") \
            from None
    except UnicodeDecodeError as exc:
        raise DataFileError(str(path), None, f"not {encoding} text (byte {exc.start}): pass the file's encoding, "
                                             "e.g. --encoding latin-1") from None


def read_csv_rows(path: Path, encoding: str | None = None) -> list[list[str]]:
    """The rows of a CSV file (header first); DataFileError if it cannot be read or is empty."""
    rows = list(iter_csv_rows(path, encoding))
    if not rows:
        raise DataFileError(str(path), None, "empty file")
    return rows


def iter_csv_rows(path: Path, encoding: str | None = None) -> Iterator[list[str]]:
    """The rows of a CSV file (header first), one at a time; DataFileError naming a bad row."""
    reader = csv.reader(read_text(path, encoding).splitlines())
    try:
        yield from reader
    except csv.Error as exc:
        raise DataFileError(str(path), reader.line_num, f"not a CSV row: {exc}") from None


PROGRESS_ROWS = 500_000  #: a long input reports progress every this many rows


def read_series(path: str | Path, encoding: str | None = None,
                progress: Callable[[int], None] | None = None) -> IntensitySeries:
    """Read an intensity CSV (see :func:`read_text` for ``encoding``); a malformed file raises
    :class:`DataFileError` naming the line. Values outside the published range of grid
    intensities are kept, with a warning in ``warnings``. Rows are read one at a time into arrays of
    floats; ``progress(rows_read)`` is called every ``PROGRESS_ROWS`` rows."""
    path = Path(path)
    rows = iter_csv_rows(path, encoding)
    header = next(rows, None)
    if header is None:
        raise DataFileError(str(path), None, "empty file")
    t_col = _pick(header, TIME_COLUMNS)
    v_col = _pick(header, VALUE_COLUMNS)
    f_col = _pick(header, FALLBACK_COLUMNS)
    if t_col is None or (v_col is None and f_col is None):
        raise DataFileError(
            str(path), 1,
            f"header {shown(header)} needs a time column (one of {', '.join(TIME_COLUMNS)}) "
            "and a g/kWh column (e.g. carbon_intensity)",
        )
    watttime = header[t_col].strip().lower() == "point_time"
    scale = LB_PER_MWH_TO_G_PER_KWH if watttime else 1.0
    times = array("d")
    values = array("d")
    for number, row in enumerate(rows, start=2):
        if not row or not any(cell.strip() for cell in row):
            continue
        times.append(_cell_time(path, number, row, t_col))
        values.append(_cell_value(path, number, row, v_col, f_col) * scale)
        if len(times) > 1 and times[-1] <= times[-2]:
            raise DataFileError(str(path), number, "timestamps must increase strictly")
        if progress is not None and len(times) % PROGRESS_ROWS == 0:
            progress(len(times))
    if not times:
        raise DataFileError(str(path), None, "no data rows")
    note = "WattTime MOER converted from lb/MWh" if watttime else ""
    return IntensitySeries(tuple(times), tuple(values), str(path), note, _unit_warnings(path, values))


def _unit_warnings(path: Path, values: Sequence[float]) -> tuple[str, ...]:
    """A warning when the column's typical value lies outside published grid intensities: a column
    of kg/kWh (1000× too low) or of lb/MWh (2.2× too high) labelled g/kWh."""
    typical = statistics.median(values)
    low, high = INTENSITY_G_PER_KWH.low, INTENSITY_G_PER_KWH.high
    if 0 < typical < low:
        return (f"{path}: median intensity {typical:g} g/kWh is below the lowest published grid ({low:g} g/kWh, "
                f"{INTENSITY_G_PER_KWH.low_source}): if the column is kg/kWh, multiply it by 1000",)
    if typical > high:
        return (f"{path}: median intensity {typical:g} g/kWh is above the highest published ({high:g} g/kWh, "
                f"{INTENSITY_G_PER_KWH.high_source}): if the column is lb/MWh, multiply it by "
                f"{LB_PER_MWH_TO_G_PER_KWH} (or name the time column point_time, as WattTime does)",)
    return ()


def _cell_time(path: Path, number: int, row: list[str], col: int) -> float:
    if col >= len(row) or not row[col].strip():
        raise DataFileError(str(path), number, f"missing timestamp: {TIME_FIX}")
    try:
        return _unix_s(row[col])
    except ValueError as exc:
        raise DataFileError(str(path), number, f"bad timestamp {shown(row[col])}: {exc}: {TIME_FIX}") from None


def _cell_value(path: Path, number: int, row: list[str], col: int | None, fallback: int | None) -> float:
    for c in (col, fallback):
        if c is not None and c < len(row) and row[c].strip():
            try:
                value = float(row[c])
            except ValueError:
                raise DataFileError(str(path), number, f"bad intensity {shown(row[c])}: not a number") from None
            if not math.isfinite(value) or value < 0:
                raise DataFileError(str(path), number, f"bad intensity {shown(row[c])}: must be finite and ≥ 0")
            return value
    raise DataFileError(str(path), number, "missing intensity value")
