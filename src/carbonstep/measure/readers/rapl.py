"""Intel/AMD RAPL energy counters through the powercap sysfs interface.

Zones used: ``package-N`` (whole socket) and ``dram``. ``core``/``uncore`` are inside
the package and never added on top of it; ``psys`` (the whole platform) is skipped.
Counters are cumulative microjoules that wrap at ``max_energy_range_uj``.

Linux links every zone and subzone at the top of /sys/class/powercap and nests subzones in
their parent too, so zones are de-duplicated by resolved path; a package that the
``intel-rapl-mmio`` interface reports again under the same name is counted once. Several package
zones of one interface (per-die zones ``package-X-die-Y``) are read together and de-duplicated by
what they read: zones mirroring one counter (AMD) are counted once, distinct ones (Intel) summed
(:mod:`carbonstep.measure.readers.rapl_mirrors`).
"""

from __future__ import annotations

import os
from pathlib import Path

from carbonstep.measure.readers.base import Domain, Kind, Method, Scope, Share, Unavailable
from carbonstep.measure.readers.rapl_mirrors import MirrorGroup

DEFAULT_ROOT = Path("/sys/class/powercap")
ZONE_PATTERNS = ("intel-rapl:*", "intel-rapl-mmio:*")  #: MSR interface first, then MMIO
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
        self._group: MirrorGroup | None = None
        self._member = 0

    def read(self) -> float:
        """Cumulative joules of the zone (``energy_uj``; wraparound is handled by the totals).

        A zone in a :class:`MirrorGroup` reports its own energy since the first read instead, or a constant
        while it mirrors another zone's counter."""
        if self._group is not None:
            return self._group.read(self._member)
        return self.read_uj() / 1e6

    def read_uj(self) -> int:
        """The zone's ``energy_uj`` as it reads now (a closed reader raises OSError)."""
        return int(os.pread(self._fd, 32, 0))

    def join(self, group: MirrorGroup, member: int) -> None:
        """Read through ``group`` from now on, as its ``member``-th zone."""
        self._group, self._member = group, member

    def close(self) -> None:
        """Close the zone's open ``energy_uj`` file."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _read_text(path: Path) -> str:
    return path.read_text().strip()


def _zone_order(path: Path) -> tuple[str, tuple[int, ...]]:
    control_type, _, numbers = path.name.partition(":")
    return control_type, tuple(int(n) for n in numbers.split(":") if n.isdigit())


def _zones(root: Path) -> list[Path]:
    """Every zone and subzone once, in a stable order (``intel-rapl`` before ``intel-rapl-mmio``).

    Linux links each zone *and* each subzone at the top of /sys/class/powercap as well as nesting
    subzones in their parent, so the same zone is reached by two paths: zones are told apart by
    their resolved path.
    """
    found: dict[Path, Path] = {}
    candidates = [p for pattern in ZONE_PATTERNS for p in sorted(root.glob(pattern), key=_zone_order)]
    candidates += [sub for zone in list(candidates) for sub in zone.glob(f"{zone.name}:*")]
    for path in candidates:
        if path.is_dir():
            found.setdefault(path.resolve(), path)
    return sorted(found.values(), key=_zone_order)


def _is_mmio_duplicate(zone: Path, zone_name: str, msr_packages: set[str]) -> bool:
    """An ``intel-rapl-mmio`` package that the MSR interface already reports under the same name."""
    return zone.name.startswith("intel-rapl-mmio:") and zone_name in msr_packages


def discover_rapl(root: Path = DEFAULT_ROOT) -> tuple[list[RaplReader], list[Unavailable]]:
    """Readers for every readable package and dram zone under ``root``, and what was not usable."""
    if not root.is_dir():
        return [], [Unavailable("rapl", f"{root} does not exist (no powercap driver, or not Linux)")]
    readers: list[RaplReader] = []
    missing: list[Unavailable] = []
    msr_packages: set[str] = set()
    for zone in _zones(root):
        try:
            zone_name = _read_text(zone / "name")
        except OSError as exc:
            missing.append(Unavailable(f"rapl {zone.name}", f"name not readable: {exc.strerror}"))
            continue
        if _is_mmio_duplicate(zone, zone_name, msr_packages):
            continue  # the same package through the MMIO interface: counted once, through MSR
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
        if zone.name.startswith("intel-rapl:") and domain is Domain.CPU:
            msr_packages.add(zone_name)  # only a readable MSR package makes its MMIO twin a duplicate
    if not readers and not missing:
        missing.append(Unavailable("rapl", f"no package or dram zone under {root}"))
    _group_packages(readers)
    return readers, missing


def _group_packages(readers: list[RaplReader]) -> None:
    """Read the package zones of each interface together when there are several (per-die zones, sockets)."""
    for control_type in ("intel-rapl:", "intel-rapl-mmio:"):
        packages = [r for r in readers if r.domain is Domain.CPU and r.zone.name.startswith(control_type)]
        if len(packages) < 2:
            continue
        group = MirrorGroup([r.read_uj for r in packages], [round(r.wrap_j * 1e6) for r in packages])
        for member, reader in enumerate(packages):
            reader.join(group, member)
