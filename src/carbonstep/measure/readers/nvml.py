"""NVIDIA GPUs through NVML (``nvidia-ml-py``, imported as ``pynvml``).

Only the GPUs this process may use are read: ``CUDA_VISIBLE_DEVICES`` entries (indices,
``GPU-`` UUIDs or unique prefixes, ``MIG-`` ids) are mapped to NVML handles and matched by
UUID. A MIG instance is charged its slice fraction of its parent GPU's energy (NVML has no
per-instance energy; :class:`~carbonstep.measure.readers.gpu_share.MigShare`). Given the run's
pids, a GPU is charged at the run's share of it (:class:`~carbonstep.measure.readers.gpu_share.GpuProcessShare`).
Each GPU uses the total-energy counter (mJ since the
driver loaded, Volta and newer) and falls back to power readings (mW) where the counter
is not supported: never a silent zero.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from carbonstep.measure.readers.base import Domain, Kind, Method, Scope, Share, Unavailable

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: a run imports no typing
if TYPE_CHECKING:
    from typing import Any, Callable


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class NvmlReader:
    """One physical GPU, read as a counter (J) or as power (W)."""

    domain = Domain.GPU
    share = Share.NONE
    scope = Scope.DEVICE
    wrap_j = None  # the counter is an unsigned 64-bit count of mJ: it does not wrap in practice

    def __init__(self, nvml: Any, handle: Any, index: int, uuid: str, name: str, note: str = "") -> None:
        self._nvml = self.nvml = nvml
        self._handle = self.handle = handle
        self.index = index
        self.uuid = uuid
        self.gpu_name = name
        self.name = f"gpu:{index}"
        self.last_utilisation_pct: float | None = None
        try:
            nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
            self.kind, self.method = Kind.COUNTER, Method.COUNTER
            how = "NVML total-energy counter"
        except nvml.NVMLError:
            nvml.nvmlDeviceGetPowerUsage(handle)  # a GPU with neither raises: no silent zero
            self.kind, self.method = Kind.POWER, Method.POWER
            how = "NVML power readings (no energy counter on this GPU), integrated"
        self.description = f"{name} [{uuid}]: {how}{'; ' + note if note else ''}"

    def read(self) -> float:
        """Cumulative joules (counter) or watts (power); keeps the GPU's utilisation for the report."""
        if self.kind is Kind.COUNTER:
            value = self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle) / 1e3
        else:
            value = self._nvml.nvmlDeviceGetPowerUsage(self._handle) / 1e3
        try:
            self.last_utilisation_pct = float(self._nvml.nvmlDeviceGetUtilizationRates(self._handle).gpu)
        except self._nvml.NVMLError:
            self.last_utilisation_pct = None
        return value

    def close(self) -> None:
        """Nothing to release: NVML stays initialised for the process."""
        pass


@dataclass(frozen=True)
class _Visible:
    handle: Any
    note: str
    mig: Any = None  #: the MIG device handle, when the entry named a MIG instance
    mig_uuid: str = ""


def _visible_handles(nvml: Any, spec: str | None) -> tuple[list[_Visible], list[str]]:
    """Map a CUDA_VISIBLE_DEVICES value to NVML handles (parents for MIG), with warnings."""
    count = nvml.nvmlDeviceGetCount()
    if spec is None:
        return [_Visible(nvml.nvmlDeviceGetHandleByIndex(i), "") for i in range(count)], []
    uuids = {}
    for i in range(count):
        h = nvml.nvmlDeviceGetHandleByIndex(i)
        uuids[_text(nvml.nvmlDeviceGetUUID(h))] = h
    found: list[_Visible] = []
    warnings: list[str] = []
    for entry in (e.strip() for e in spec.split(",")):
        if not entry:
            break
        if entry.startswith("MIG-"):
            try:
                mig = nvml.nvmlDeviceGetHandleByUUID(entry)
                parent = nvml.nvmlDeviceGetDeviceHandleFromMigDeviceHandle(mig)
            except nvml.NVMLError as exc:
                warnings.append(f"CUDA_VISIBLE_DEVICES entry {entry!r} not found by NVML ({exc}); ignored")
                break
            found.append(_Visible(parent, "", mig, entry))
            continue
        if entry.lstrip("-").isdigit():
            index = int(entry)
            if not 0 <= index < count:
                break  # CUDA ignores this entry and every one after it
            found.append(_Visible(nvml.nvmlDeviceGetHandleByIndex(index), ""))
            continue
        prefix = entry if entry.startswith("GPU-") else f"GPU-{entry}"
        hits = [h for u, h in uuids.items() if u.startswith(prefix)]
        if len(hits) != 1:
            warnings.append(f"CUDA_VISIBLE_DEVICES entry {entry!r} matches {len(hits)} GPUs; stopped there")
            break
        found.append(_Visible(hits[0], ""))
    if (
        any(e.strip().isdigit() for e in spec.split(","))
        and os.environ.get("CUDA_DEVICE_ORDER") != "PCI_BUS_ID"
        and len({_text(nvml.nvmlDeviceGetName(h)) for h in uuids.values()}) > 1
    ):
        warnings.append(
            "CUDA_VISIBLE_DEVICES uses indices on a machine with different GPU models; CUDA orders "
            "them fastest first, NVML by PCI bus: set CUDA_DEVICE_ORDER=PCI_BUS_ID to be sure"
        )
    return found, warnings


def _own_handles(nvml: Any, handles: list[_Visible], local_rank: int) -> tuple[list[_Visible], list[str]]:
    """With several ranks on a node that all see every GPU: the GPUs this process runs on
    (NVML's compute processes), else the one at ``local_rank`` (the cuda:LOCAL_RANK convention)."""
    pid = os.getpid()
    mine = []
    for v in handles:
        try:
            running = nvml.nvmlDeviceGetComputeRunningProcesses(v.handle)
        except nvml.NVMLError:
            continue
        if any(getattr(p, "pid", None) == pid for p in running):
            mine.append(_Visible(v.handle, "this process runs on it (NVML compute processes)"))
    if mine:
        return mine, []
    if local_rank < len(handles):
        return [_Visible(handles[local_rank].handle, f"assumed from local rank {local_rank} (cuda:LOCAL_RANK)")], []
    return handles, [f"local rank {local_rank} but only {len(handles)} GPUs visible and this process runs on none "
                     "of them yet: every visible GPU is counted by this rank (set CUDA_VISIBLE_DEVICES per rank)"]


def mig_fraction(nvml: Any, parent: Any, mig: Any) -> tuple[str, float, str]:
    """A MIG device's profile name (e.g. ``1g.18gb``), its fraction of the parent GPU and the basis of it:
    its GPU-instance slices over the largest GPU-instance profile's (read, never changed)."""
    name = _text(nvml.nvmlDeviceGetName(mig))
    attributes = nvml.nvmlDeviceGetAttributes(mig)
    slices = int(attributes.gpuInstanceSliceCount)
    profile = name.split(" MIG ", 1)[1].strip() if " MIG " in name else (
        f"{slices}g.{round(int(attributes.memorySizeMB) / 1024)}gb")
    total = 0
    for profile_id in range(int(getattr(nvml, "NVML_GPU_INSTANCE_PROFILE_COUNT", 5))):
        try:
            total = max(total, int(nvml.nvmlDeviceGetGpuInstanceProfileInfo(parent, profile_id).sliceCount))
        except nvml.NVMLError:
            continue
    if total <= 0:
        raise nvml.NVMLError_NotSupported("no GPU-instance profile readable")
    return profile, min(slices / total, 1.0), f"{slices} of {total} GPU-instance slices"


def _share_readers(nvml: Any, reader: NvmlReader, visible: list[_Visible],
                   pids: Callable[[], frozenset[int]] | None, warnings: list[str],
                   clock: Callable[[], float]) -> list[Any]:
    """The readers charging this run for one GPU: its MIG instances, its share, or the whole GPU."""
    from carbonstep.measure.readers.gpu_share import GpuProcessShare, MigShare

    migs = [v for v in visible if v.mig is not None]
    if migs:
        out: list[Any] = []
        for v in migs:
            try:
                profile, fraction, basis = mig_fraction(nvml, v.handle, v.mig)
            except nvml.NVMLError as exc:
                warnings.append(f"MIG instance {v.mig_uuid}: its slice fraction is unreadable ({exc}); the whole "
                                "parent GPU is charged")
                reader.description += f"; MIG instance {v.mig_uuid}: the whole parent GPU is charged"
                return [reader]
            out.append(MigShare(reader, v.mig_uuid, profile, fraction, basis, clock))
        return out
    return [GpuProcessShare(reader, pids, clock)] if pids is not None else [reader]


def discover_nvml(
    nvml: Any = None, visible: str | None = None, use_env: bool = True, local_rank: int | None = None,
    pids: Callable[[], frozenset[int]] | None = None, clock: Callable[[], float] = time.monotonic,
) -> tuple[list[Any], list[Unavailable], list[str]]:
    """Readers for the GPUs this process uses; what was unavailable; warnings.

    ``nvml`` is the NVML module (``pynvml`` by default): tests pass a fake that follows
    NVML's documented units and errors. ``visible`` overrides ``CUDA_VISIBLE_DEVICES``.
    ``local_rank`` (one of several ranks on this node): keep only this rank's GPUs.
    ``pids`` (the run's process tree): charge each GPU at the run's share of it (``clock`` times its windows).
    """
    if nvml is None:
        try:
            import pynvml

            nvml = pynvml
        except ImportError:
            return [], [Unavailable("nvml", "nvidia-ml-py is not installed", "pip install nvidia-ml-py")], []
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as exc:
        return [], [Unavailable("nvml", f"NVML could not start: {exc} (no NVIDIA driver or GPU)")], []
    if visible is None and use_env:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    try:
        handles, warnings = _visible_handles(nvml, visible)
        if local_rank is not None and len(handles) > 1:
            handles, more = _own_handles(nvml, handles, local_rank)
            warnings += more
        readers: list[Any] = []
        by_gpu: dict[str, list[_Visible]] = {}
        for v in handles:  # two MIG instances of one GPU: one parent reader
            by_gpu.setdefault(_text(nvml.nvmlDeviceGetUUID(v.handle)), []).append(v)
        for uuid, group in by_gpu.items():
            v = group[0]
            index = nvml.nvmlDeviceGetIndex(v.handle)
            name = _text(nvml.nvmlDeviceGetName(v.handle))
            try:
                reader = NvmlReader(nvml, v.handle, index, uuid, name, v.note)
            except nvml.NVMLError as exc:
                warnings.append(f"GPU {index} ({name}) has neither an energy counter nor power readings: {exc}")
                continue
            readers += _share_readers(nvml, reader, group, pids, warnings, clock)
    except nvml.NVMLError as exc:
        return [], [Unavailable("nvml", f"NVML query failed: {exc}")], []
    missing = [] if readers else [Unavailable("nvml", "no NVIDIA GPU visible to this process")]
    return readers, missing, warnings
