"""Shared checks for values that cross carbonstep's boundaries (constructor arguments, file cells,
CLI arguments): each refusal is one :class:`~carbonstep.errors.ConfigError` line naming the input,
what is wrong and the fix; values that are valid but outside published ranges come back with a
warning to record in the report.

Bottom layer: imports only :mod:`carbonstep.errors`.

Plausible ranges (a value outside one is kept, with a warning):

* grid carbon intensity, g CO2e/kWh: :data:`INTENSITY_G_PER_KWH`;
* power usage effectiveness: :data:`PUE`;
* site water usage effectiveness, L/kWh: :data:`WUE_L_PER_KWH`.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from carbonstep._record import NamedTuple
from carbonstep.errors import ConfigError, DataFileError

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: a run imports no typing
if TYPE_CHECKING:
    from typing import Any

SHOWN_CHARS = 60  #: longest repr of a bad value quoted in an error
MAX_FILE_BYTES = 256 * 1024 * 1024  #: larger data files are refused, not read into memory


class PlausibleRange(NamedTuple):
    """The range of values published for a quantity, and where the extremes come from."""

    low: float
    high: float
    unit: str
    low_source: str  #: where the lowest value is published
    high_source: str  #: where the highest value is published

    def warning(self, name: str, value: float) -> str | None:
        """A one-line warning if ``value`` lies outside the range, else None."""
        unit = f" {self.unit}" if self.unit else ""
        if value < self.low:
            return (f"{name}={value:g}{unit} is below the lowest published value ({self.low:g}{unit}, "
                    f"{self.low_source}): check the unit")
        if value > self.high:
            return (f"{name}={value:g}{unit} is above the highest published value ({self.high:g}{unit}, "
                    f"{self.high_source}): check the unit")
        return None


#: Highest: 1306 g/kWh, the highest latest-year country average in the shipped grid table
#: (``accounting/data/intensity.csv``: Turkmenistan 2023, Ember via Our World in Data); a grid average above
#: every country's is most likely lb/MWh (× 2.2046) or mg/kWh. Lowest: a thousandth of that, 1.306: every
#: country average written in kg/kWh lies below it, and no country's in g/kWh does (the table's lowest is
#: Lesotho's 21). ``tests/test_validate.py`` checks both against the shipped table.
INTENSITY_G_PER_KWH = PlausibleRange(
    1.306, 1306.0, "g/kWh", "the highest country average in the shipped table, in kg/kWh",
    "Turkmenistan 2023, the highest country average in the shipped table (Ember via Our World in Data)",
)
#: Lowest 1.0 by definition (no overhead, The Green Grid); highest 2.5, the industry average PUE
#: of 2007, the worst year of the Uptime Institute Global Data Center Survey (1.58 in 2023).
PUE = PlausibleRange(1.0, 2.5, "", "no overhead at all", "industry average in 2007, Uptime Institute survey")
#: 0 for dry cooling; highest 2.0 L/kWh, the top of the range given for legacy open evaporative
#: cooling towers (ISO/IEC 30134-9 WUE; typical values tabulated by Yobitel's WUE knowledge base,
#: evaporative hyperscale 1.0-1.8 L/kWh per Milton Roy's benchmark table).
WUE_L_PER_KWH = PlausibleRange(0.0, 2.0, "L/kWh", "dry cooling",
                               "legacy open evaporative cooling towers, 1.2-2.0 L/kWh")


class Checked(NamedTuple):
    """A checked number and the warnings it earned (empty when it is plausible)."""

    value: float
    warnings: list[str]


def shown(value: Any) -> str:
    """``repr(value)`` cut to :data:`SHOWN_CHARS` characters, for quoting bad input in one line."""
    text = repr(value)
    text = text.replace("\n", "\\n").replace("\r", "\\r")
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"


def _is_real(value: Any) -> bool:
    """``isinstance(value, numbers.Real)``; ``numbers`` is imported only for a type other than int and float."""
    if type(value) in (int, float):
        return True
    import numbers

    return isinstance(value, numbers.Real)


def _is_integral(value: Any) -> bool:
    """``isinstance(value, numbers.Integral)``; ``numbers`` is imported only for a type other than int and float."""
    if type(value) in (int, float):
        return type(value) is int
    import numbers

    return isinstance(value, numbers.Integral)


def _fix(fix: str) -> str:
    return f": {fix}" if fix else ""


def check_number(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    plausible: PlausibleRange | None = None,
    meaning: str = "",
    fix: str = "",
) -> Checked:
    """``value`` (a real number; not a bool, text, NaN or ±inf) as a float within ``[low, high]``
    (``(low, high]`` with ``low_open``), with a warning if it is outside ``plausible``.

    Raises :class:`ConfigError`: ``"<name> must be …, got <value>: <fix>"``.
    """
    what = f" ({meaning})" if meaning else ""
    if isinstance(value, bool) or not _is_real(value):
        kind = "a boolean" if isinstance(value, bool) else type(value).__name__
        raise ConfigError(f"{name} must be a number{what}, got {shown(value)} ({kind}){_fix(fix)}")
    return _in_range(name, _as_float(value), shown(value), low, high, low_open, plausible, what, fix)


def _as_float(value: Any) -> float:
    """``float(value)``; an integer too large for a float is +-inf (refused as not finite)."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def parse_number(
    name: str,
    text: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    plausible: PlausibleRange | None = None,
    meaning: str = "",
    fix: str = "",
) -> Checked:
    """Like :func:`check_number`, for a number written as text (a file cell, an environment
    variable, a CLI argument); numbers pass through, booleans are refused."""
    if isinstance(text, str):
        what = f" ({meaning})" if meaning else ""
        try:
            number = float(text.strip())
        except ValueError:
            raise ConfigError(f"{name} must be a number{what}, got {shown(text)}{_fix(fix)}") from None
        return _in_range(name, number, shown(text), low, high, low_open, plausible, what, fix)
    return check_number(name, text, low=low, high=high, low_open=low_open, plausible=plausible,
                        meaning=meaning, fix=fix)


def _in_range(
    name: str, number: float, quoted: str, low: float | None, high: float | None, low_open: bool,
    plausible: PlausibleRange | None, what: str, fix: str,
) -> Checked:
    bounds = []
    if low is not None:
        bounds.append(f"{'>' if low_open else '≥'} {low:g}")
    if high is not None:
        bounds.append(f"≤ {high:g}")
    needs = "a finite number" + (" " + " and ".join(bounds) if bounds else "")
    below = low is not None and (number <= low if low_open else number < low)
    if not math.isfinite(number) or below or (high is not None and number > high):
        raise ConfigError(f"{name} must be {needs}{what}, got {quoted}{_fix(fix)}")
    note = plausible.warning(name, number) if plausible is not None else None
    return Checked(number, [note] if note else [])


def check_int(name: str, value: Any, *, low: int | None = None, high: int | None = None, meaning: str = "",
              fix: str = "") -> int:
    """``value`` as an int (an integral number, not a bool or text) in [``low``, ``high``]; ConfigError otherwise
    (so that a huge number is one clear line, never an OverflowError from the call it is passed to)."""
    what = f" ({meaning})" if meaning else ""
    bound = (f" from {low} to {high}" if low is not None and high is not None else f" ≥ {low}" if low is not None
             else f" ≤ {high}" if high is not None else "")
    if isinstance(value, bool) or not _is_real(value):
        kind = "a boolean" if isinstance(value, bool) else type(value).__name__
        raise ConfigError(f"{name} must be a whole number{bound}{what}, got {shown(value)} ({kind}){_fix(fix)}")
    if _is_integral(value):
        whole: int | None = int(value)  # exact: a float would round integers above 2**53
    else:
        number = _as_float(value)
        whole = int(number) if math.isfinite(number) and number == int(number) else None
    if whole is None or (low is not None and whole < low) or (high is not None and whole > high):
        raise ConfigError(f"{name} must be a whole number{bound}{what}, got {shown(value)}{_fix(fix)}")
    return whole


def check_text(name: str, value: Any, *, meaning: str = "", fix: str = "", max_chars: int = 200) -> str:
    """``value`` as a non-empty, single-line str of at most ``max_chars``; ConfigError otherwise."""
    what = f" ({meaning})" if meaning else ""
    if not isinstance(value, str):
        raise ConfigError(f"{name} must be text{what}, got {shown(value)} ({type(value).__name__}){_fix(fix)}")
    text = value.strip()
    if not text or len(text) > max_chars or "\n" in text or "\r" in text or "\x00" in text:
        raise ConfigError(
            f"{name} must be one non-empty line of at most {max_chars} characters{what}, "
            f"got {shown(value)}{_fix(fix)}"
        )
    return text


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    """``value`` if it is one of ``choices``; ConfigError listing them otherwise."""
    if not isinstance(value, str) or value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise ConfigError(f"{name} must be one of {options}, got {shown(value)}")
    return value


def check_output_dir(name: str, value: Any) -> Path:
    """``value`` as a directory path that is, or can become, a writable directory.

    Checked before any work is done: a path that is a file, or lies under a file, or that we
    may not write to, is a ConfigError naming it.
    """
    path = _as_path(name, value)
    try:
        return _output_dir(name, path)
    except OSError as exc:
        raise ConfigError(f"{name} {shown(str(path))} cannot be used: {exc.strerror or exc}") from None


def _output_dir(name: str, path: Path) -> Path:
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{name} {str(path)!r} is a file, not a directory: pass a directory (or a new path)")
    existing = _nearest_existing(path)
    if not existing.is_dir():
        raise ConfigError(f"{name} {str(path)!r} lies under the file {str(existing)!r}: pass a directory path")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"{name} {str(path)!r} is not writable (no permission on {str(existing)!r}): "
                          "pass a directory you can write to")
    return path


def check_output_file(name: str, value: Any) -> Path:
    """``value`` as a file path we can create or replace (not a directory; its folder exists or can
    be made, and is writable). ConfigError otherwise, before any work is done."""
    path = _as_path(name, value)
    try:
        return _output_file(name, path)
    except OSError as exc:
        raise ConfigError(f"{name} {shown(str(path))} cannot be used: {exc.strerror or exc}") from None


def _output_file(name: str, path: Path) -> Path:
    if path.is_dir():
        raise ConfigError(f"{name} {str(path)!r} is a directory: pass a file path such as "
                          f"{str(path / 'report.json')!r}")
    if path.exists() and not os.access(path, os.W_OK):
        raise ConfigError(f"{name} {str(path)!r} is not writable: pass a file you can write to")
    existing = _nearest_existing(path.parent)
    if not existing.is_dir():
        raise ConfigError(f"{name} {str(path)!r} lies under the file {str(existing)!r}: pass a path in a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"{name} {str(path)!r} cannot be created (no permission on {str(existing)!r}): "
                          "pass a path you can write to")
    return path


def _as_path(name: str, value: Any) -> Path:
    if isinstance(value, bool) or not isinstance(value, (str, os.PathLike)):
        raise ConfigError(f"{name} must be a path, got {shown(value)} ({type(value).__name__})")
    text = os.fspath(value)
    if isinstance(text, bytes) or not text.strip() or "\x00" in text:
        raise ConfigError(f"{name} must be a non-empty path, got {shown(value)}")
    return Path(text).expanduser()


def _nearest_existing(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def read_file_bytes(path: str | os.PathLike[str], max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """A data file's bytes; DataFileError (naming it) if it is missing, unreadable, a directory,
    larger than ``max_bytes``, or its name cannot be a path (a NUL byte in it)."""
    try:
        file = Path(path)
        size = file.stat().st_size
        if size > max_bytes:
            raise DataFileError(str(path), None, f"{size / 2**20:.0f} MiB is too large for a data file "
                                                 f"(at most {max_bytes // 2**20} MiB): pass a shorter excerpt")
        return file.read_bytes()
    except OSError as exc:
        raise DataFileError(str(path), None, f"cannot read: {exc.strerror or exc}") from None
    except (ValueError, TypeError):  # a NUL byte in the name, or not a path at all
        raise DataFileError(shown(path), None, "not a file path: pass the path of a file") from None


def _quoted(field: str) -> str:
    """A field as ``csv.writer`` writes it (quoted only where it holds a comma, quote or line break)."""
    return '"' + field.replace('"', '""') + '"' if any(c in field for c in ',"\r\n') else field


def _line(data: bytes, key: tuple[str, ...]) -> str | None:
    """The line of ``data`` (a CSV file's bytes, UTF-8) that starts with ``key``'s fields, decoded; None: none."""
    if not key or not key[0]:
        return None
    at = data.find(("\n" + ",".join(_quoted(field) for field in key) + ",").encode("utf-8"))
    if at < 0:
        return None
    end = data.find(b"\n", at + 1)
    return data[at + 1:end if end >= 0 else len(data)].decode("utf-8")


def _fields(line: str) -> list[str]:
    import csv

    return next(csv.reader([line]))


def table_row(path: Path, *key: str) -> list[str] | None:
    """The row of a shipped CSV table whose first fields are ``key`` (None: no such row), without parsing the others.

    The tables are written by ``csv.writer`` (quoted only where a field holds a comma, quote or line break, and no
    field holds a line break), so the row starts with a line break and the key's fields as the writer quotes them.
    """
    line = _line(path.read_bytes(), key)
    return _fields(line) if line is not None else None


def table_record(path: Path, *key: str) -> dict[str, str] | None:
    """:func:`table_row` as ``csv.DictReader`` gives it (keyed by the header), or None."""
    data = path.read_bytes()
    line = _line(data, key)
    if line is None:
        return None
    return dict(zip(_fields(data[:data.find(b"\n")].decode("utf-8").rstrip("\r")), _fields(line)))
