"""A small stand-in for the ``pynvml`` module that follows NVML's documented behaviour.

Units: ``nvmlDeviceGetTotalEnergyConsumption`` → millijoules since the driver loaded
(Volta+; older GPUs raise NVMLError_NotSupported); ``nvmlDeviceGetPowerUsage`` →
milliwatts; ``nvmlDeviceGetUtilizationRates(h).gpu`` → percent. A lost GPU raises
NVMLError_GpuIsLost on every call. Errors subclass NVMLError, as in nvidia-ml-py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Callable


class NVMLError(Exception):
    pass


class NVMLError_NotSupported(NVMLError):  # noqa: N801 - NVML's names
    pass


class NVMLError_GpuIsLost(NVMLError):  # noqa: N801
    pass


class NVMLError_NotFound(NVMLError):  # noqa: N801
    pass


class NVMLError_LibraryNotFound(NVMLError):  # noqa: N801
    pass


@dataclass
class FakeGpu:
    uuid: str
    name: str = "NVIDIA A100-SXM4-40GB"
    watts: float = 250.0
    has_counter: bool = True
    utilisation: int = 80
    lost: bool = False
    migs: list[str] = field(default_factory=list)
    energy_mj_at_start: int = 123_456_789
    pids: list[int] = field(default_factory=list)  #: processes with a compute context on it


class FakeNvml:
    """Pass as ``nvml=`` to ``discover_nvml``; time comes from ``clock`` (seconds)."""

    NVMLError = NVMLError
    NVMLError_NotSupported = NVMLError_NotSupported
    NVMLError_GpuIsLost = NVMLError_GpuIsLost

    def __init__(self, gpus: list[FakeGpu], clock: Callable[[], float], driver: bool = True) -> None:
        self.gpus = gpus
        self.clock = clock
        self.t0 = clock()
        self.driver = driver
        self.calls: list[str] = []

    def _gpu(self, handle: int) -> FakeGpu:
        gpu = self.gpus[handle]
        if gpu.lost:
            raise NVMLError_GpuIsLost("GPU is lost")
        return gpu

    def nvmlInit(self) -> None:  # noqa: N802
        self.calls.append("init")
        if not self.driver:
            raise NVMLError_LibraryNotFound("NVML Shared Library Not Found")

    def nvmlShutdown(self) -> None:  # noqa: N802
        self.calls.append("shutdown")

    def nvmlDeviceGetCount(self) -> int:  # noqa: N802
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:  # noqa: N802
        if not 0 <= index < len(self.gpus):
            raise NVMLError("Invalid Argument")
        return index

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> object:  # noqa: N802
        for i, gpu in enumerate(self.gpus):
            if gpu.uuid == uuid:
                return i
            if uuid in gpu.migs:
                return SimpleNamespace(mig=uuid, parent=i)
        raise NVMLError_NotFound("Not Found")

    def nvmlDeviceGetDeviceHandleFromMigDeviceHandle(self, handle: object) -> int:  # noqa: N802
        return handle.parent  # type: ignore[attr-defined]

    def nvmlDeviceGetIndex(self, handle: int) -> int:  # noqa: N802
        return handle

    def nvmlDeviceGetUUID(self, handle: int) -> str:  # noqa: N802
        return self.gpus[handle].uuid

    def nvmlDeviceGetName(self, handle: int) -> str:  # noqa: N802
        return self.gpus[handle].name

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: int) -> int:  # noqa: N802
        gpu = self._gpu(handle)
        if not gpu.has_counter:
            raise NVMLError_NotSupported("Not Supported")
        return gpu.energy_mj_at_start + int((self.clock() - self.t0) * gpu.watts * 1000)

    def nvmlDeviceGetPowerUsage(self, handle: int) -> int:  # noqa: N802
        return int(self._gpu(handle).watts * 1000)

    def nvmlDeviceGetComputeRunningProcesses(self, handle: int) -> list[SimpleNamespace]:  # noqa: N802
        return [SimpleNamespace(pid=pid, usedGpuMemory=1 << 30) for pid in self._gpu(handle).pids]

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> SimpleNamespace:  # noqa: N802
        return SimpleNamespace(gpu=self._gpu(handle).utilisation, memory=10)
