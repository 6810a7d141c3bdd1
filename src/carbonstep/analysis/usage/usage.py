"""A lab's footprint over many runs, by user, project, Slurm account, host, GPU, region or period.

``carbonstep usage SOURCES... --since 30d --by user`` reads report folders and MLflow stores
(:mod:`carbonstep.analysis.usage.sources`), keeps the runs in the window and the filters, groups them
and prints per group: runs, GPU-hours, kWh, CO2e, water, share of the total energy, the energy of
failed and interrupted runs ("wasted"), the energy those spent after their last completed epoch,
the energy of idle GPUs, kWh per sample where samples were counted, and the embodied CO2e of the hardware
(in its own column, never added into the operational CO2e; with the total labelled operational + embodied).
``--csv``, ``--json`` and
``--html`` write the same table (the page with charts, :mod:`carbonstep.analysis.usage.html`); the
command's options and body are in :mod:`carbonstep.cli.usage`.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Sequence

from carbonstep.errors import ConfigError
from carbonstep.report.formatting import format_energy, format_mass, format_volume, significant
from carbonstep.report.usage_record import UsageRecord

STATUSES = ("completed", "failed", "interrupted", "running")
PERIODS = ("month", "week", "day")


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, timezone.utc)


#: group name → how a record's label is found
GROUPS: dict[str, Callable[[UsageRecord], str]] = {
    "user": lambda r: r.user,
    "experiment": lambda r: r.experiment,
    "account": lambda r: r.account,
    "partition": lambda r: r.partition,
    "host": lambda r: r.host,
    "gpu": lambda r: r.gpu_model,
    "region": lambda r: r.region,
    "status": lambda r: r.status,
    "scope": lambda r: r.scope,
    "month": lambda r: _utc(r.started_s).strftime("%Y-%m"),
    "week": lambda r: _utc(r.started_s).strftime("%G-W%V"),
    "day": lambda r: _utc(r.started_s).strftime("%Y-%m-%d"),
}
SORT_KEYS = ("energy_kwh", "co2_kg", "water_l", "gpu_hours", "runs", "wasted_kwh", "idle_gpu_kwh", "embodied_co2_kg",
             "group")


@dataclass
class Group:
    """The sums of one group of runs."""

    key: tuple[str, ...]
    runs: int = 0
    gpu_hours: float = 0.0
    energy_kwh: float = 0.0
    co2_kg: float = 0.0
    water_l: float = 0.0
    wasted_kwh: float = 0.0  #: energy of failed and interrupted runs
    after_last_epoch_kwh: float = 0.0  #: of it, spent after the last completed epoch (where epochs are known)
    idle_gpu_kwh: float = 0.0
    counted_kwh: float = 0.0  #: energy of the runs that counted samples
    samples: float = 0.0
    failed: int = 0
    interrupted: int = 0
    share: float = 0.0  #: of the total energy
    embodied_co2_kg: float = 0.0  #: embodied CO2e of the runs that have a figure (never in ``co2_kg``)
    embodied_co2_kg_low: float = 0.0
    embodied_co2_kg_high: float = 0.0
    embodied_runs: int = 0  #: runs with an embodied figure

    def add(self, record: UsageRecord) -> None:
        """Count one run in this group."""
        self.runs += 1
        self.gpu_hours += record.gpu_hours
        self.energy_kwh += record.energy_kwh
        self.co2_kg += record.co2_kg
        self.water_l += record.water_l
        self.wasted_kwh += record.wasted_kwh
        self.after_last_epoch_kwh += record.after_last_epoch_kwh or 0.0
        self.idle_gpu_kwh += record.idle_gpu_kwh
        self.failed += record.status == "failed"
        self.interrupted += record.status == "interrupted"
        if record.samples:
            self.counted_kwh += record.energy_kwh
            self.samples += record.samples
        if record.embodied_co2_kg is not None:
            self.embodied_runs += 1
            self.embodied_co2_kg += record.embodied_co2_kg
            self.embodied_co2_kg_low += record.embodied_co2_kg_low if record.embodied_co2_kg_low is not None \
                else record.embodied_co2_kg
            self.embodied_co2_kg_high += record.embodied_co2_kg_high if record.embodied_co2_kg_high is not None \
                else record.embodied_co2_kg

    @property
    def operational_plus_embodied_co2_kg(self) -> float:
        """The operational CO2e of every run plus the embodied CO2e of those with a figure: a labelled total,
        kept apart from ``co2_kg``."""
        return self.co2_kg + self.embodied_co2_kg

    @property
    def kwh_per_sample(self) -> float | None:
        """kWh per sample over the runs that counted samples; None when none did."""
        return self.counted_kwh / self.samples if self.samples > 0 else None

    def row(self, names: Sequence[str]) -> dict[str, Any]:
        """The group as a flat row (group names, then the figures)."""
        figures = {k: v for k, v in asdict(self).items() if k not in ("key", "counted_kwh", "samples")}
        return {**dict(zip(names, self.key)), **figures, "samples": self.samples,
                "kwh_per_sample": self.kwh_per_sample,
                "operational_plus_embodied_co2_kg": self.operational_plus_embodied_co2_kg}


@dataclass
class Filters:
    """Which runs count: a time window (POSIX s, end excluded) and allowed users, experiments, statuses."""

    since_s: float | None = None
    until_s: float | None = None
    users: list[str] = field(default_factory=list)
    experiments: list[str] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)

    def keep(self, record: UsageRecord) -> bool:
        """True when ``record`` passes every filter."""
        return ((self.since_s is None or record.started_s >= self.since_s)
                and (self.until_s is None or record.started_s < self.until_s)
                and (not self.users or record.user in self.users)
                and (not self.experiments or record.experiment in self.experiments)
                and (not self.statuses or record.status in self.statuses))

    def describe(self) -> str:
        """The window and filters in words."""
        def day(s: float | None, default: str) -> str:
            return _utc(s).strftime("%Y-%m-%d %H:%M UTC") if s is not None else default

        parts = [f"{day(self.since_s, 'the first run')} to {day(self.until_s, 'now')}"]
        for label, values in (("users", self.users), ("experiments", self.experiments), ("status", self.statuses)):
            if values:
                parts.append(f"{label}: {', '.join(values)}")
        return "; ".join(parts)


@dataclass
class Usage:
    """The grouped table: groups sorted, their total, and the runs it was made from."""

    by: list[str]
    groups: list[Group]
    total: Group
    records: list[UsageRecord]
    filters: Filters
    sources: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def rows(self) -> list[dict[str, Any]]:
        """Every group as a flat row, then the total (its group labels ``TOTAL``)."""
        total = self.total.row(self.by)
        total.update(dict.fromkeys(self.by, "TOTAL"))
        return [g.row(self.by) for g in self.groups] + [total]


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([hdw])\s*$")
_UNIT_S = {"h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}


def parse_since(text: str, now_s: float) -> float:
    """``30d``, ``12h`` or ``2w`` before ``now_s`` (POSIX seconds)."""
    match = _DURATION.match(text)
    if not match:
        raise ConfigError(f"--since {text!r}: give a duration such as 30d, 12h or 2w (days, hours, weeks)")
    return now_s - float(match.group(1)) * _UNIT_S[match.group(2)]


def parse_moment(option: str, text: str) -> float:
    """An ISO date or date-time (UTC unless it says otherwise) as POSIX seconds."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(f"{option} {text!r}: give an ISO date or time, e.g. 2026-11-01 or "
                          "2026-11-01T08:00") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


def group_names(text: str) -> list[str]:
    """``user,experiment`` → the group names, checked."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in GROUPS]
    if not names or unknown:
        raise ConfigError(f"--by {text!r}: group by one or more of {', '.join(GROUPS)} (comma-separated)")
    return names


def summarise(records: Iterable[UsageRecord], by: Sequence[str], filters: Filters,
              sort: str = "energy_kwh") -> Usage:
    """Keep the runs that pass ``filters``, group them ``by``, sort the groups (largest first) with a total."""
    if sort not in SORT_KEYS:
        raise ConfigError(f"--sort {sort!r}: sort by one of {', '.join(SORT_KEYS)}")
    kept = [r for r in records if filters.keep(r)]
    groups: dict[tuple[str, ...], Group] = {}
    total = Group(("TOTAL",) * len(by))
    for record in kept:
        key = tuple(GROUPS[name](record) for name in by)
        groups.setdefault(key, Group(key)).add(record)
        total.add(record)
    for group in groups.values():
        group.share = group.energy_kwh / total.energy_kwh if total.energy_kwh > 0 else 0.0
    total.share = 1.0 if kept else 0.0
    periods = all(name in PERIODS for name in by)
    if sort == "group" or (sort == "energy_kwh" and periods):
        ordered = sorted(groups.values(), key=lambda g: g.key)
    else:
        ordered = sorted(groups.values(), key=lambda g: (-float(getattr(g, sort)), g.key))
    return Usage(list(by), ordered, total, kept, filters)


# -- output -------------------------------------------------------------------------------------------
#: the terminal table's columns: row key, title, how the figure is written (readable units, never rounded to zero)
COLUMNS: tuple[tuple[str, str, Callable[[Any], str]], ...] = (
    ("runs", "runs", "{:,}".format), ("gpu_hours", "GPU-h", significant), ("energy_kwh", "energy", format_energy),
    ("co2_kg", "CO2e", format_mass), ("water_l", "water", format_volume), ("share", "share", "{:.1%}".format),
    ("wasted_kwh", "wasted", format_energy), ("after_last_epoch_kwh", "after last epoch", format_energy),
    ("idle_gpu_kwh", "idle GPUs", format_energy), ("kwh_per_sample", "per sample", format_energy),
    ("embodied_co2_kg", "embodied", format_mass), ("operational_plus_embodied_co2_kg", "CO2e op.+emb.", format_mass))


def _cells(row: dict[str, Any]) -> list[str]:
    cells = ["-" if row[key] is None else show(row[key]) for key, _, show in COLUMNS]
    if not row["embodied_runs"]:  # no run of the group has an embodied figure: not known, not zero
        cells[-2] = cells[-1] = "-"
    return cells



def _label(text: str, chars: int = 40) -> str:
    """A group's name in the terminal table, cut at ``chars`` characters with an ellipsis (CSV, JSON keep it)."""
    return text if len(text) <= chars else text[:chars - 1] + "…"


def table(usage: Usage) -> str:
    """The terminal table: one line per group, then the total."""
    rows = usage.rows()
    head = [*usage.by, *[title for _, title, _ in COLUMNS]]
    body = [[_label(str(r[name])) for name in usage.by] + _cells(r) for r in rows]
    widths = [max(len(head[i]), *(len(line[i]) for line in body)) if body else len(head[i])
              for i in range(len(head))]
    labels = len(usage.by)

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i < labels else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    out = [f"carbonstep usage: {len(usage.records):,} runs, {usage.filters.describe()}", line(head)]
    out += [line(cells) for cells in body[:-1]]
    out += ["-" * len(line(head)), line(body[-1])]
    out += ["wasted: energy of failed and interrupted runs; after-epoch: of it, spent after their last completed "
            "epoch; idle-GPU: GPUs under 10 % utilisation for over half their run"]
    out += [embodied_note(usage.total)]
    out += [f"note: {n}" for n in usage.notes]
    return "\n".join(out)


def embodied_note(total: Group) -> str:
    """How the embodied column was made: the runs that had a figure, and the total's range."""
    if not total.embodied_runs:
        return (f"embodied: no run of the {total.runs:,} had an embodied figure (the hardware's manufacturing CO2e, "
                "docs/EMBODIED.md); CO2e is operational only")
    return (f"embodied: the hardware's manufacturing CO2e, known for {total.embodied_runs:,} of {total.runs:,} runs "
            f"({format_mass(total.embodied_co2_kg_low)}–{format_mass(total.embodied_co2_kg_high)}); never in CO2e, "
            "which is operational; CO2e op.+emb.: operational + embodied")


#: a cell starting so is run as a formula by spreadsheets (OWASP ASVS 5.0, requirement 1.2.10, names = + - @ tab NUL)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\0")


def spreadsheet_safe(value: Any) -> Any:
    """``value`` for a CSV cell: text that a spreadsheet would run as a formula gets a leading apostrophe, as
    OWASP ASVS requirement 1.2.10 asks; numbers are kept as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def to_csv(usage: Usage) -> str:
    """The table as CSV (one row per group, then the total); names that a spreadsheet would run are neutralised."""
    rows = usage.rows()
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows({key: spreadsheet_safe(value) for key, value in row.items()} for row in rows)
    return buffer.getvalue()


def to_json(usage: Usage) -> str:
    """The table as JSON: the window, the groups, the total, the sources, the notes and the files skipped."""
    rows = usage.rows()
    return json.dumps({"by": usage.by, "window": usage.filters.describe(),
                       "since": usage.filters.since_s and _utc(usage.filters.since_s).isoformat(),
                       "until": usage.filters.until_s and _utc(usage.filters.until_s).isoformat(),
                       "groups": rows[:-1], "total": rows[-1], "sources": usage.sources, "notes": usage.notes,
                       "skipped": usage.warnings}, indent=2)
