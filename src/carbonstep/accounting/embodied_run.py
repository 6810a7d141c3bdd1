"""A run's share of the embodied footprint of the hardware it held, beside (never in) its co2_kg.

For each measured GPU with a figure: embodied kg CO2e ÷ service life (hours) × hours the run held it ×
the run's share of it (the report's: a GPU is the run's whole device). For the rest of the server (CPUs,
memory, board, chassis): the user's server row, or on a GPU server the shipped rack-server
coefficients, per server-hour × the run's share of the server (its share of the server's GPUs when
their number is known, from the user's row or the driver's list, else of its CPUs; the whole server
under ``attribution="machine"``).
Low and high: the low figure over the longest life, the high figure over the shortest. Abiotic
depletion (kg Sb eq) and manufacturing water likewise, only where a source gives them: absent, not 0.
"""

from __future__ import annotations

import os
from pathlib import Path

from carbonstep._record import NamedTuple
from carbonstep.accounting.embodied import (
    HOURS_PER_YEAR,
    HOW_TO_ADD,
    EmbodiedSettings,
    Figure,
    find_device,
    find_server,
    read_text,
    server_coefficients,
    service_life,
)

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: a run imports no typing
if TYPE_CHECKING:
    from typing import Any, Sequence

METHOD = ("embodied kg CO2e ÷ service life in hours × hours held × the run's share; "
          "not included in co2_kg (docs/EMBODIED.md)")


class Host(NamedTuple):
    """The machine a run is on, as the server part needs it."""

    names: tuple[str, ...]  #: DMI product name and host name (either matches a user's server row)
    sockets: int
    memory_gb: float
    cpus: int
    cpus_usable: int
    gpus: int = 0  #: NVIDIA GPUs the driver lists on the machine (0: unknown)


def host_names(sys_root: str | os.PathLike[str] = "/sys") -> tuple[str, str]:
    """This machine's DMI product name ("" when not reported) and host name: what a user's server row matches."""
    return read_text(Path(sys_root) / "class" / "dmi" / "id" / "product_name") or "", _host_name()


def host_facts(sys_root: str | os.PathLike[str] = "/sys", proc_root: str | os.PathLike[str] = "/proc") -> Host:
    """This machine's product name, CPU sockets, memory, CPUs and GPUs (the roots: fixture trees, for tests)."""
    root = Path(sys_root)
    try:
        gpus = sum(1 for _ in (Path(proc_root) / "driver" / "nvidia" / "gpus").iterdir())
    except OSError:
        gpus = 0
    packages = {read_text(p) for p in root.glob("devices/system/cpu/cpu[0-9]*/topology/physical_package_id")}
    packages.discard(None)
    try:  # the physical pages: psutil's virtual_memory().total (MemTotal) on Linux, without importing psutil at stop
        memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows)
        try:
            import psutil

            memory_gb = psutil.virtual_memory().total / 2**30
        except Exception:  # noqa: BLE001 - a machine psutil cannot read: no DRAM above the threshold charged
            memory_gb = 0.0
    cpus = os.cpu_count() or 1
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = cpus
    return Host(host_names(root), max(1, len(packages)), memory_gb, cpus, min(usable, cpus), gpus)


def _host_name() -> str:
    """``socket.gethostname()``, from ``os.uname()`` where there is one (the same name, without ``socket``)."""
    if hasattr(os, "uname"):
        return os.uname().nodename
    import socket

    return socket.gethostname()


def _life(row: Figure, settings: EmbodiedSettings) -> tuple[float, float, float, str]:
    years = row.life_years if row.life_years is not None else settings.life_years
    if years is not None:
        return years, years, years, "the user's service life"
    cited = service_life()
    return cited.low, cited.central, cited.high, cited.source


def _part(name: str, model: str, row: Figure, units: float, hours: float, share: float, basis: str,
          settings: EmbodiedSettings) -> dict[str, Any]:
    low_y, mid_y, high_y = (y * HOURS_PER_YEAR for y in _life(row, settings)[:3])
    held = hours * share * units

    def spread(pair: tuple[float, float]) -> tuple[float, float, float]:
        return (sum(pair) / 2 * held / mid_y, pair[0] * held / high_y, pair[1] * held / low_y)

    co2 = spread((row.kg_co2e_low, row.kg_co2e_high))
    part: dict[str, Any] = {
        "name": name, "model": model, "share": share, "share_basis": basis, "units": units,
        "kg_co2e_per_unit": [row.kg_co2e_low, row.kg_co2e_high], "life_years": list(_life(row, settings)[:3]),
        "co2_kg": co2[0], "co2_kg_low": co2[1], "co2_kg_high": co2[2], "source": row.source,
    }
    for field, pair in (("kg_sb_eq", row.kg_sb_eq), ("water_l", row.water_l)):
        if pair is not None:
            part[field], part[f"{field}_low"], part[f"{field}_high"] = spread(pair)
    return part


def _gpu_model(description: str) -> str:
    return description.split(" [", 1)[0].split(":", 1)[0].strip()


def _server_parts(host: Host, gpus_held: int, attribution: str, hours: float,
                  settings: EmbodiedSettings) -> list[dict[str, Any]]:
    user = find_server(host.names, settings)
    if attribution == "machine":
        share, basis = 1.0, "the whole server (attribution: machine)"
    elif gpus_held and ((user is not None and user.gpus) or host.gpus):
        total = user.gpus if user is not None and user.gpus else host.gpus
        share, basis = min(1.0, gpus_held / total), f"{gpus_held} of its {total} GPUs"
    else:
        share, basis = host.cpus_usable / host.cpus, f"{host.cpus_usable} of its {host.cpus} CPUs"
    if user is not None:
        return [_part("server", user.match, user, 1.0, hours, share, basis, settings)]
    coefficients = server_coefficients()
    parts = [_part("server", "rack server (base)", coefficients["server_base"], 1.0, hours, share, basis, settings)]
    extra = [("server_cpu_socket", "CPU sockets after the first", host.sockets),
             ("server_dram_gb", "GB of DRAM above the base", host.memory_gb)]
    for kind, label, amount in extra:
        row = coefficients[kind]
        units = max(0.0, amount - (row.threshold or 0.0))
        if units > 0:
            parts.append(_part(f"server:{kind.removeprefix('server_')}", label, row, units, hours, share, basis,
                               settings))
    return parts


def _sum(parts: Sequence[dict[str, Any]], field: str, record: dict[str, Any]) -> None:
    having = [p for p in parts if field in p]
    if having:
        for suffix in ("", "_low", "_high"):
            record[f"{field}{suffix}"] = sum(p[f"{field}{suffix}"] for p in having)
        record[f"{field}_covers"] = [p["name"] for p in having]


def embodied_record(devices: Sequence[Any], duration_s: float, attribution: str, operational_co2_kg: float,
                    settings: EmbodiedSettings, host: Host | None = None) -> dict[str, Any] | None:
    """The report's ``embodied`` block: per part and in all (central, low, high), the total with the
    operational CO2e labelled as one, and one note per device without a figure. None: nothing to say.
    ``host`` None: this machine's (:func:`host_facts`, read only when a server part is charged)."""
    hours = max(0.0, duration_s) / 3600.0
    parts: list[dict[str, Any]] = []
    notes: list[str] = []
    gpus = [d for d in devices if d.domain == "gpu"]
    for device in gpus:
        model = _gpu_model(device.description)
        row = find_device(model, settings)
        if row is None:
            notes.append(f"{device.name} ({model}): no embodied figure; {HOW_TO_ADD}")
            continue
        parts.append(_part(device.name, model, row, 1.0, hours, 1.0, "whole device", settings))
    names = host.names if host is not None else host_names()
    if parts or find_server(names, settings) is not None:
        parts += _server_parts(host or host_facts(), len(gpus), attribution, hours, settings)
    elif devices:
        notes.append(f"this server ({names[0] or names[1]}): no embodied figure (shipped server "
                     "coefficients apply on GPU servers only); add a row with kind=server: " + HOW_TO_ADD)
    if not parts and not notes:
        return None
    record: dict[str, Any] = {"method": METHOD, "hours": hours, "parts": parts, "notes": notes}
    if parts:
        _sum(parts, "co2_kg", record)
        record.pop("co2_kg_covers")
        record["total_co2_kg"] = operational_co2_kg + record["co2_kg"]
        record["total_co2_kg_low"] = operational_co2_kg + record["co2_kg_low"]
        record["total_co2_kg_high"] = operational_co2_kg + record["co2_kg_high"]
        record["total_label"] = "operational + embodied CO2e (a total; co2_kg stays operational only)"
        _sum(parts, "kg_sb_eq", record)
        _sum(parts, "water_l", record)
    return record


__all__ = ["Host", "METHOD", "embodied_record", "host_facts", "host_names"]
