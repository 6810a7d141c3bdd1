"""Frozen records of a measured run, with JSON in and out (schema-versioned)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from carbonstep._record import DataclassMethods
from carbonstep.errors import ConfigError, DataFileError
from carbonstep.validate import read_file_bytes, shown

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: a run imports no typing
if TYPE_CHECKING:
    from typing import Any

SCHEMA_VERSION = 1


@dataclass(frozen=True, repr=False, eq=False)  # repr, == and hash: DataclassMethods
class Intensity(DataclassMethods):
    """The grid carbon intensity used, and where it came from."""

    g_per_kwh: float
    region: str | None
    region_name: str
    source: str
    year: int | None
    basis: str  #: "lifecycle", "direct" or "user"
    licence: str = ""
    chosen_by: str = ""  #: "argument", "CARBONSTEP_REGION", "time zone …", "constant", "time series"


@dataclass(frozen=True, repr=False, eq=False)  # repr, == and hash: DataclassMethods
class Device(DataclassMethods):
    """One measured device and how its energy was obtained."""

    name: str
    domain: str  #: gpu / cpu / ram
    method: str  #: counter / power / estimate
    description: str
    energy_kwh: float
    failures: int = 0
    degraded_at_s: float | None = None  #: when its reads started failing (None: never)
    first_error: str | None = None
    utilisation_pct: float | None = None  #: time-weighted mean (GPUs)
    idle_fraction: float | None = None  #: share of time under 10 % utilisation (GPUs)
    scope: str = "process"  #: process / device / node: how reports of several processes are summed
    charged: str = ""  #: what the run was charged for: process / process share / whole device / MIG instance /
    #: container / machine ("" in reports written before it was recorded; see carbonstep.report.charged)


@dataclass(frozen=True, repr=False, eq=False)  # repr, == and hash: DataclassMethods
class Mark(DataclassMethods):
    """A point the training loop marked (a step, an epoch end …) and the energy up to it."""

    name: str
    step: int | None
    epoch: int | None
    count: float | None
    t_s: float
    energy_kwh: float
    co2_kg: float


@dataclass(frozen=True, repr=False, eq=False)  # repr, == and hash: DataclassMethods
class Epoch(DataclassMethods):
    """Energy and carbon of one epoch (between the previous epoch's last mark and its own)."""

    epoch: int
    start_s: float
    end_s: float
    energy_kwh: float
    co2_kg: float
    water_l: float
    steps: int
    count: float
    complete: bool | None = None  #: an epoch-end mark closed it (None: not recorded, reports before this field)


@dataclass(frozen=True, repr=False, eq=False)  # repr, == and hash: DataclassMethods
class RunReport(DataclassMethods):
    """Everything measured in one run. Built by ``Tracker.stop()``; the input of every sink."""

    run_id: str
    started_at: str  #: ISO 8601, UTC
    duration_s: float
    status: str  #: completed / failed / interrupted / running
    attribution: str  #: process / machine
    host: str
    energy_kwh: float  #: IT energy, all components
    energy_kwh_gpu: float
    energy_kwh_cpu: float
    energy_kwh_ram: float
    facility_kwh: float  #: energy_kwh × PUE
    co2_kg: float
    water_l: float
    pue: float
    wue_l_per_kwh: float
    water_intensity_l_per_kwh: float
    intensity: Intensity
    methods: dict[str, str]  #: domain → method(s), e.g. {"cpu": "estimate"}
    devices: tuple[Device, ...]
    marks: tuple[Mark, ...] = ()
    marks_stride: int = 1  #: 1 = every mark kept; n = every n-th (long runs are thinned)
    epochs: tuple[Epoch, ...] = ()
    timeline: tuple[tuple[float, float], ...] = ()  #: (seconds since start, cumulative kWh)
    warnings: tuple[str, ...] = ()
    wasted: bool = False  #: the run failed or was interrupted: its energy bought no result
    name: str | None = None
    budget: dict[str, Any] | None = None  #: the budget decision, when a budget stopped the run
    #: embodied (manufacturing) CO2e of the hardware held, its range and parts, and the operational +
    #: embodied total labelled as one; never added into co2_kg (carbonstep.accounting.embodied_run)
    embodied: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    hints: tuple[dict[str, Any], ...] = ()  #: efficiency hints ({kind, text, value}; carbonstep.report.hints)
    sink_errors: tuple[str, ...] = ()  #: what a sink could not deliver (a SinkError each: ledger, server, unsent)
    carbonstep_version: str = ""
    schema_version: int = SCHEMA_VERSION

    @property
    def power_w(self) -> float:
        """Average IT power over the run."""
        return self.energy_kwh * 3.6e6 / self.duration_s if self.duration_s > 0 else 0.0

    def with_changes(self, **changes: Any) -> "RunReport":
        """A copy with some fields replaced."""
        return replace(self, **changes)

    def co2_eq_emissions(self, training_type: str = "pre-training") -> dict[str, Any]:
        """The Hugging Face model-card ``co2_eq_emissions`` block (emissions in grams)."""
        hardware = sorted({d.description.split(":")[0] for d in self.devices if d.domain == "gpu"})
        cpus = [d for d in self.devices if d.domain == "cpu"]
        if cpus:
            from carbonstep.report.cpu_estimate import cpu_hardware_line

            hardware.append(cpu_hardware_line(self) or f"CPU ({cpus[0].method})")
        return {
            "emissions": round(self.co2_kg * 1000.0, 4),  # repr stays plain (no exponent) ≥ 0.1 mg
            "source": f"carbonstep {self.carbonstep_version} "
                      f"({', '.join(f'{k}: {v}' for k, v in self.methods.items())})",
            "training_type": training_type,
            "geographical_location": self.intensity.region_name,
            "hardware_used": ", ".join(hardware) or "unknown",
        }

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON-ready data."""
        return asdict(self)

    def to_json(self, indent: int | None = 2) -> str:
        """The report as JSON text (the file format of ``save()``)."""
        import json

        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_dict(cls, data: Any) -> "RunReport":
        """A report from its dict form; anything malformed (wrong types, NaN, negative amounts, an
        unsupported schema version) raises :class:`ConfigError` naming the field."""
        from carbonstep.report.loading import build

        if not isinstance(data, dict):
            raise ConfigError(f"a report must be a JSON object, got {shown(data)}")
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ConfigError(f"report schema version {shown(version)} is not supported "
                              f"(this carbonstep reads {SCHEMA_VERSION})")
        return build(cls, data)

    @classmethod
    def from_json(cls, text: str | bytes) -> "RunReport":
        """A report from JSON text; ConfigError if it is not JSON or not a valid report."""
        import json

        try:
            data = json.loads(text, parse_constant=_refuse_constant)
        except RecursionError:
            raise ConfigError("a report nested too deeply to be one") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"not UTF-8 text: {exc.reason} at byte {exc.start}") from None
        except ConfigError:
            raise
        except ValueError as exc:  # JSONDecodeError, or an integer of more digits than Python converts
            raise ConfigError(f"not JSON: {shown(str(exc))[1:-1]}") from None
        try:
            return cls.from_dict(data)
        except RecursionError:
            raise ConfigError("a report nested too deeply to be one") from None

    @classmethod
    def load(cls, path: str | Path) -> "RunReport":
        """Read a report file; a bad file raises DataFileError naming it."""
        data = read_file_bytes(path)
        try:
            return cls.from_json(data)
        except ConfigError as exc:
            raise DataFileError(str(path), None, f"not a carbonstep report: {exc}") from None

    def save(self, path: str | Path, exclusive: bool = False) -> Path:
        """Write atomically (a temporary file renamed into place): never a truncated report. ``exclusive``: raise
        FileExistsError instead of replacing a file already there (another process's report)."""
        return write_atomic(Path(path), self.to_json(), exclusive)

    def save_or_fallback(self, path: str | Path) -> tuple[Path | None, str | None]:
        """Write to ``path``; if that fails, to the temporary directory. Returns where the report is
        (None if nowhere could be written) and, when it is not at ``path``, a one-line message saying why
        and where it is instead: the report of finished work is never lost to a bad path."""
        import tempfile

        try:
            return self.save(path), None
        except OSError as exc:
            problem = f"could not write {path} ({exc.strerror or exc})"
        name = Path(path).name  # a rank's report keeps its own name: ranks do not overwrite each other
        fallback = Path(tempfile.gettempdir()) / (name if name.startswith(f"carbonstep-{self.run_id}")
                                                  else f"carbonstep-{self.run_id}.json")
        message = f"{problem}; the report is in {fallback}"
        try:  # the copy written says so too
            return self.with_changes(warnings=(*self.warnings, message)).save(fallback), message
        except OSError as exc:
            return None, f"{problem}, nor {fallback} ({exc.strerror or exc})"


def _refuse_constant(name: str) -> float:
    raise ConfigError(f"{name} is not a number a report may hold")


def current_umask() -> int:
    """This process's umask, read without changing it (Linux's /proc), else by setting it back at once."""
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # no /proc: the classic two calls (another thread could see 022 in between)
    os.umask(mask)
    return mask


def write_atomic(path: Path, text: str, exclusive: bool = False) -> Path:
    """Write ``text`` to a temporary file beside ``path``, fsync it, and rename it into place.

    The file gets the mode an ordinary ``open()`` would give it (0666 less the umask: 0644 under 022, 0664
    under a group-sharing 002), not the private 0600 of a temporary file, so a shared folder's readers can read it.
    ``exclusive``: never replace an existing ``path`` (a hard link puts the file in place, atomically, only if the
    name is free; FileExistsError otherwise).
    """
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if exclusive:
            _link_if_free(tmp, path)
        else:
            os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _link_if_free(tmp: str, path: Path) -> None:
    """Give ``tmp`` the name ``path`` unless that name is taken (FileExistsError), then drop ``tmp``."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError:  # a file system without hard links: check, then rename (a narrow race, no worse than before)
        if path.exists():
            raise FileExistsError(17, "File exists", str(path)) from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)
