"""Building frozen records from parsed JSON, field by field against their type hints.

A report file can hold anything: a list, ``null``, a string, text where a number belongs, NaN,
a negative energy. Each wrong value is refused with a :class:`ConfigError` naming the field
(``devices[0].energy_kwh``) and what was wrong, so that nothing malformed is summarised or merged.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import types
import typing
from functools import lru_cache
from typing import Any, Callable, Union, get_args, get_origin

from carbonstep.errors import ConfigError
from carbonstep.validate import shown

#: Fields that hold amounts (energy, carbon, water, time, counts): never negative.
NON_NEGATIVE = frozenset({
    "duration_s", "energy_kwh", "energy_kwh_gpu", "energy_kwh_cpu", "energy_kwh_ram", "facility_kwh", "co2_kg",
    "water_l", "wue_l_per_kwh", "water_intensity_l_per_kwh", "g_per_kwh", "t_s", "count", "start_s", "end_s",
    "steps", "failures", "marks_stride", "utilisation_pct", "idle_fraction", "degraded_at_s", "rank",
    "local_rank", "pid", "processes", "duplicate_kwh_dropped",
})
AT_LEAST_ONE = frozenset({"pue", "marks_stride", "world_size", "local_world_size"})


def build(cls: type, data: Any, where: str = "report") -> Any:
    """An instance of the dataclass ``cls`` from ``data`` (a JSON object): every field checked
    against its type hint; unknown keys are ignored (written by a newer carbonstep)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a JSON object, got {_kind(data)}")
    values = {}
    for name, required, read, special in _plan(cls):
        if name not in data:
            if required:
                raise ConfigError(f"{where} has no {name!r}")
            continue
        at = f"{where}.{name}"
        values[name] = read(data[name], at)
        if special is not None:
            special(values[name], at)
    return cls(**values)


@lru_cache(maxsize=None)
def _plan(cls: type) -> tuple[tuple[str, bool, Reader, Callable[[Any, str], None] | None], ...]:
    """Each field of ``cls``: its name, whether it must be present, its reader and its extra check."""
    hints = _hints(cls)
    return tuple((field.name, field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING,
                  _reader(hints[field.name], field.name), SPECIAL_FIELDS.get(field.name))
                 for field in dataclasses.fields(cls))


def _iso_time(value: str, where: str) -> None:
    from datetime import datetime

    try:
        datetime.fromisoformat(value).timestamp()
    except (ValueError, OverflowError):
        raise ConfigError(f"{where} must be an ISO 8601 time, got {shown(value)}") from None


@dataclasses.dataclass(frozen=True)
class _Place:
    """What ``extra["place"]`` must hold (see :class:`carbonstep.measure.distributed.Place`)."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    local_world_size: int = 1
    host: str = ""
    pid: int = 0
    node_leader: bool = True
    peer_pids: tuple[int, ...] = ()


@dataclasses.dataclass(frozen=True)
class _Part:
    """What each row of a merged report's ``extra["parts"]`` must hold."""

    label: str
    host: str
    status: str
    energy_kwh: float
    co2_kg: float
    water_l: float = 0.0
    duplicate_kwh_dropped: float = 0.0


@dataclasses.dataclass(frozen=True)
class _Node:
    """What each row of a merged report's ``extra["nodes"]`` must hold."""

    host: str
    processes: int = 0


EXTRA_KEYS: dict[str, Any] = {"place": _Place, "parts": tuple[_Part, ...], "nodes": tuple[_Node, ...],
                              "count_unit": str}


def _extra(value: dict[str, Any], where: str) -> None:
    """The keys of ``extra`` that carbonstep reads back are checked; others are the user's."""
    for key, hint in EXTRA_KEYS.items():
        if key in value and value[key] is not None:
            _value(value[key], hint, f"{where}.{key}", key)
    if value.get("place") is not None and value["place"].get("world_size", 1) > 1 and "rank" not in value["place"]:
        raise ConfigError(f"{where}.place has world_size > 1 but no rank")


#: the states a run ends in (the ``status`` of :class:`~carbonstep.report.record.RunReport`)
RUN_STATUSES = ("completed", "failed", "interrupted", "running")


def _status(value: str, where: str) -> None:
    if value not in RUN_STATUSES:
        raise ConfigError(f"{where} must be one of {', '.join(RUN_STATUSES)}, got {shown(value)}")


SPECIAL_FIELDS: dict[str, Callable[[Any, str], None]] = {"started_at": _iso_time, "extra": _extra, "status": _status}


@lru_cache(maxsize=None)
def _hints(cls: type) -> dict[str, Any]:
    # the record modules import typing's names for type checkers only (a run imports no typing): given here
    return typing.get_type_hints(cls, localns={"Any": Any})


def _value(value: Any, hint: Any, where: str, name: str) -> Any:
    return _reader(hint, name)(value, where)


Reader = Callable[[Any, str], Any]  #: (value, where) → the value read, or a ConfigError naming ``where``


@lru_cache(maxsize=None)
def _reader(hint: Any, name: str) -> Reader:
    """How to read a value of type ``hint`` in field ``name``, worked out once per type and field (a report's
    timeline holds thousands of values of a few types)."""
    origin = get_origin(hint)
    if hint is Any:
        return _as_is
    if origin in (Union, types.UnionType):
        arm = _reader(next(arm for arm in get_args(hint) if arm is not type(None)), name)
        if type(None) not in get_args(hint):
            return arm
        return lambda value, where: None if value is None else arm(value, where)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return lambda value, where: build(hint, value, where)
    if origin is dict:
        return _dict_reader(_reader(get_args(hint)[1], name))
    if origin is tuple:
        args = get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return _items_reader(_reader(args[0], name))
        return _fixed_reader(tuple(_reader(arg, name) for arg in args))
    return _scalar_reader(hint, name)


def _as_is(value: Any, where: str) -> Any:
    return value


def _dict_reader(item: Reader) -> Reader:
    def read(value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a JSON object, got {_kind(value)}")
        return {str(k): item(v, f"{where}.{k}") for k, v in value.items()}

    return read


def _items_reader(item: Reader) -> Reader:
    def read(value: Any, where: str) -> tuple[Any, ...]:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} must be a JSON list, got {_kind(value)}")
        try:
            return tuple([item(v, where) for v in value])
        except ConfigError:  # read again naming each item, so that the first wrong one is named by its index
            return tuple([item(v, f"{where}[{i}]") for i, v in enumerate(value)])

    return read


def _fixed_reader(items: tuple[Reader, ...]) -> Reader:
    def read(value: Any, where: str) -> tuple[Any, ...]:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} must be a JSON list, got {_kind(value)}")
        if len(value) != len(items):
            raise ConfigError(f"{where} must be a list of {len(items)} values, got {len(value)}")
        try:
            return tuple([item(v, where) for v, item in zip(value, items)])
        except ConfigError:  # as above: the first wrong item named by its index
            return tuple([item(v, f"{where}[{i}]") for i, (v, item) in enumerate(zip(value, items))])

    return read


def _scalar_reader(hint: Any, name: str) -> Reader:
    if hint is str:
        def read_text(value: Any, where: str) -> str:
            if not isinstance(value, str):
                raise ConfigError(f"{where} must be text, got {_kind(value)}")
            return value

        return read_text
    if hint is bool:
        def read_bool(value: Any, where: str) -> bool:
            if not isinstance(value, bool):
                raise ConfigError(f"{where} must be true or false, got {_kind(value)}")
            return value

        return read_bool
    if hint in (int, float):
        low = 1.0 if name in AT_LEAST_ONE else 0.0 if name in NON_NEGATIVE else None
        return lambda value, where: _number(value, hint, where, low)

    def unreadable(value: Any, where: str) -> Any:
        raise ConfigError(f"{where}: cannot read a value of type {hint!r}")

    return unreadable


def _number(value: Any, hint: type, where: str, low: float | None) -> float | int:
    if type(value) is float and hint is float and value < math.inf and (
            value > -math.inf if low is None else value >= low):
        return value  # the common case: a finite float where a float belongs, in range (NaN compares false)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(f"{where} must be a number, got {_kind(value)}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise ConfigError(f"{where} must be a finite number, got {shown(value)}")
    if hint is int and number != int(number):
        raise ConfigError(f"{where} must be a whole number, got {shown(value)}")
    if low is not None and number < low:
        raise ConfigError(f"{where} must be ≥ {low:g}, got {shown(value)}")
    if hint is int:
        return value if isinstance(value, int) else int(number)
    return value if isinstance(value, float) else number


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    names = {dict: "an object", list: "a list", tuple: "a list", str: "text", bool: "true/false",
             int: "a number", float: "a number"}
    return f"{names.get(type(value), type(value).__name__)} {shown(value)}"


FUTURE_SLACK_S = 86_400.0  #: clocks disagree; a start more than a day ahead of this machine's clock is not one
LONGEST_RUN_S = 366 * 86_400.0  #: a run longer than a year is taken for a corrupt duration, and said


def implausible(report: Any, now_s: float) -> list[str]:
    """What a well-formed report holds that no run can have: a start in the future, a duration of years, a duration
    far beyond the time its energy was read over. One line each, naming the report (the command prints them)."""
    from datetime import datetime

    out = []
    started = datetime.fromisoformat(report.started_at).timestamp()
    if started > now_s + FUTURE_SLACK_S:
        out.append(f"report {report.run_id} starts at {report.started_at}, in the future by this machine's clock: "
                   "a wrong clock or an edited report")
    if report.duration_s > LONGEST_RUN_S:
        out.append(f"report {report.run_id} lasts {report.duration_s / 86_400 / 365.25:.1f} years: a corrupt or "
                   "edited duration?")
    read_until = report.timeline[-1][0] if report.timeline else None
    if read_until is not None and report.duration_s > 2 * read_until + 3_600:
        out.append(f"report {report.run_id} lasts {report.duration_s:.0f} s but its energy was read over "
                   f"{read_until:.0f} s: the duration and the energy do not belong together")
    return out
