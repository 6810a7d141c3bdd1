"""Intel/AMD RAPL energy counters through the powercap sysfs interface.

Zones used: ``package-N`` (whole socket) and ``dram``. ``core``/``uncore`` are inside
the package and never added on top of it; ``psys`` (the whole platform) is skipped.
Counters are cumulative microjoules that wrap at ``max_energy_range_uj``.
"""

from __future__ import annotations

import os
from pathlib import Path

from carbonstep.measure.readers.base import Domain, Kind, Method, Scope, Share, Unavailable

DEFAULT_ROOT = Path("/sys/class/powercap")
PERMISSION_FIX = (
    "energy_uj is readable by root only since Linux 5.10; allow it with "
    "'sudo chmod a+r /sys/class/powercap/intel-rapl:*/energy_uj "
    "/sys/class/powercap/intel-rapl:*/intel-rapl:*/energy_uj' "
    "(or a udev rule doing the same at boot)"
)


class RaplReader:
    """One RAPL zone (a CPU package or its DRAM) read as a cumulative counter in joules."""

    kind = Kind.COUNTER
    method = Method.COUNTER
    scope = Scope.NODE  #: a package or its DRAM serves every process on the machine

    def __init__(self, zone: Path, name: str, domain: Domain, wrap_j: float) -> None:
        self.zone = zone
        self.name = name
        self.domain = domain
        self.share = Share.CPU_TIME if domain is Domain.CPU else Share.MEMORY
        self.wrap_j = wrap_j
        self.description = f"RAPL {zone.name} ({name}) via powercap sysfs"
        self._fd = os.open(zone / "energy_uj", os.O_RDONLY)

    def read(self) -> float:
        return int(os.pread(self._fd, 32, 0)) / 1e6

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _read_text(path: Path) -> str:
    return path.read_text().strip()


def _zones(root: Path) -> list[Path]:
    """Top-level zones and their subzones, in a stable order."""
    zones = sorted(p for p in root.glob("intel-rapl:*") if p.is_dir())
    subzones = sorted(p for z in zones for p in z.glob("intel-rapl:*:*") if p.is_dir())
    return zones + subzones


def discover_rapl(root: Path = DEFAULT_ROOT) -> tuple[list[RaplReader], list[Unavailable]]:
    """Readers for every readable package and dram zone under ``root``, and what was not usable."""
    if not root.is_dir():
        return [], [Unavailable("rapl", f"{root} does not exist (no powercap driver, or not Linux)")]
    readers: list[RaplReader] = []
    missing: list[Unavailable] = []
    for zone in _zones(root):
        try:
            zone_name = _read_text(zone / "name")
        except OSError as exc:
            missing.append(Unavailable(f"rapl {zone.name}", f"name not readable: {exc.strerror}"))
            continue
        if zone_name.startswith("package"):
            domain = Domain.CPU
        elif zone_name == "dram":
            domain = Domain.RAM
        else:
            continue  # core/uncore are inside the package; psys is the whole platform
        try:
            wrap_j = int(_read_text(zone / "max_energy_range_uj")) / 1e6
            reader = RaplReader(zone, f"rapl:{zone.name}:{zone_name}", domain, wrap_j)
            reader.read()
        except PermissionError:
            missing.append(Unavailable(f"rapl {zone.name} ({zone_name})", "energy_uj: permission denied",
                                       PERMISSION_FIX))
            continue
        except (OSError, ValueError) as exc:
            missing.append(Unavailable(f"rapl {zone.name} ({zone_name})", f"not readable: {exc}"))
            continue
        readers.append(reader)
    if not readers and not missing:
        missing.append(Unavailable("rapl", f"no package or dram zone under {root}"))
    return readers, missing
