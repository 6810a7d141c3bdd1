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
import csv
import math
from array import array
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

from carbonstep.errors import DataFileError

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


def parse_time(text: str) -> float:
    """UNIX seconds from ISO 8601 (UTC when no zone is given) or epoch seconds/milliseconds."""
    text = text.strip()
    try:
        number = float(text)
    except ValueError:
        stamp = datetime.fromisoformat(text.replace(" UTC", "+00:00"))
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=timezone.utc)
        return stamp.timestamp()
    return number / 1000 if number > 1e11 else number  # epoch ms or s


def _pick(header: list[str], names: Iterable[str]) -> int | None:
    lowered = [h.strip().lower() for h in header]
    for name in names:
        if name in lowered:
            return lowered.index(name)
    return None


def read_csv_rows(path: Path) -> list[list[str]]:
    """The rows of a CSV file (header first); DataFileError if it cannot be read or is empty."""
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except OSError as exc:
        raise DataFileError(str(path), None, f"cannot read: {exc.strerror}") from None
    rows = list(csv.reader(lines))
    if not rows:
        raise DataFileError(str(path), None, "empty file")
    return rows


PROGRESS_ROWS = 500_000  #: a long input reports progress every this many rows


def read_series(path: str | Path, progress: Callable[[int], None] | None = None) -> IntensitySeries:
    """Read an intensity CSV; a malformed file raises :class:`DataFileError` naming the line. The file is
    streamed (a few bytes per row kept); ``progress(rows_read)`` is called every ``PROGRESS_ROWS`` rows."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            return _read_series_rows(path, csv.reader(handle), progress)
    except OSError as exc:
        raise DataFileError(str(path), None, f"cannot read: {exc.strerror}") from None


def _read_series_rows(path: Path, rows: Iterator[list[str]], progress: Callable[[int], None] | None) -> IntensitySeries:
    header = next(rows, None)
    if header is None:
        raise DataFileError(str(path), None, "empty file")
    t_col = _pick(header, TIME_COLUMNS)
    v_col = _pick(header, VALUE_COLUMNS)
    f_col = _pick(header, FALLBACK_COLUMNS)
    if t_col is None or (v_col is None and f_col is None):
        raise DataFileError(
            str(path), 1,
            f"header {header!r} needs a time column (one of {', '.join(TIME_COLUMNS)}) "
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
    return IntensitySeries(tuple(times), tuple(values), str(path), note)


def _cell_time(path: Path, number: int, row: list[str], col: int) -> float:
    try:
        return parse_time(row[col])
    except (IndexError, ValueError):
        cell = row[col] if col < len(row) else "<missing>"
        raise DataFileError(str(path), number, f"bad timestamp {cell!r} (use ISO 8601)") from None


def _cell_value(path: Path, number: int, row: list[str], col: int | None, fallback: int | None) -> float:
    for c in (col, fallback):
        if c is not None and c < len(row) and row[c].strip():
            try:
                value = float(row[c])
            except ValueError:
                raise DataFileError(str(path), number, f"bad intensity {row[c]!r}: not a number") from None
            if not math.isfinite(value) or value < 0:
                raise DataFileError(str(path), number, f"bad intensity {row[c]!r}: must be finite and ≥ 0")
            return value
    raise DataFileError(str(path), number, "missing intensity value")
