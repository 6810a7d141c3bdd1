"""A small stand-in for the ``pynvml`` module that follows NVML's documented behaviour.

Units: ``nvmlDeviceGetTotalEnergyConsumption`` → millijoules since the driver loaded
(Volta+; older GPUs raise NVMLError_NotSupported); ``nvmlDeviceGetPowerUsage`` →
milliwatts; ``nvmlDeviceGetUtilizationRates(h).gpu`` → percent. A lost GPU raises
NVMLError_GpuIsLost on every call. Errors subclass NVMLError, as in nvidia-ml-py.

Shared GPUs (NVML API reference, nvmlDeviceGetProcessUtilization; pynvml's
``c_nvmlProcessUtilizationSample_t``): one sample per process that had non-zero utilisation in a
driver sample period, fields ``pid, timeStamp, smUtil, memUtil, encUtil, decUtil``; ``timeStamp`` is
a CPU time in microseconds; only samples newer than ``lastSeenTimeStamp`` are returned (0: the
driver's whole buffer), and NVML_ERROR_NOT_FOUND when there is none (an idle GPU: rust-nvml
nvml-wrapper#56). ``nvmlDeviceGetComputeRunningProcesses`` lists the processes holding a context
(``pid``, ``usedGpuMemory`` in bytes). Pids are the host's, whatever the caller's pid namespace
(NVIDIA/nvidia-docker#1483); some drivers give container pids in one call and host pids in the
other (Project-HAMi/HAMi-core#112): ``sample_pid_offset`` reproduces that. In MIG mode per-process
utilisation and utilisation rates are NOT_SUPPORTED (the API reference's footnote, quoted in
NordicHPC/sonar#247 and dask/distributed#8739). MIG device handles carry attributes
(``gpuInstanceSliceCount``, ``memorySizeMB``) and are named "<GPU name> MIG <profile>".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Callable


class NVMLError(Exception):
    pass


class NVMLError_NotSupported(NVMLError):  # noqa: N801 - NVML's names
    value = 3  #: pynvml's NVML_ERROR_ code


class NVMLError_GpuIsLost(NVMLError):  # noqa: N801
    value = 15  #: pynvml's NVML_ERROR_ code


class NVMLError_NotFound(NVMLError):  # noqa: N801
    value = 6  #: pynvml's NVML_ERROR_ code


class NVMLError_LibraryNotFound(NVMLError):  # noqa: N801
    value = 12  #: pynvml's NVML_ERROR_ code


class NVMLError_NoPermission(NVMLError):  # noqa: N801
    value = 4  #: pynvml's NVML_ERROR_ code


EPOCH_S = 1_765_000_000.0  #: the fake's CPU clock (microsecond timestamps) is this plus the test clock


@dataclass
class FakeMig:
    """One MIG device (a GPU instance with its compute instance)."""

    uuid: str
    profile: str = "1g.18gb"
    slices: int = 1  #: gpuInstanceSliceCount
    memory_mb: int = 16_384


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
    sm_util: dict[int, int] = field(default_factory=dict)  #: pid → SM % while it computes (no entry: idle)
    process_util_error: type[NVMLError] | None = None  #: e.g. NotSupported (vGPU), NoPermission
    sample_period_s: float = 1.0  #: the driver's utilisation sample period (driver-dependent; not documented)
    buffer_s: float = 30.0  #: how far back the driver's sample buffer reaches
    sample_pid_offset: int = 0  #: samples name pids this much off the running list (two pid namespaces)
    mig_devices: list[FakeMig] = field(default_factory=list)
    mig_total_slices: int = 7  #: the largest GPU-instance profile's slice count (7 on A100/H100/H200)
    energy_mj: float = 0.0  #: integrated since the fake started (set by FakeNvml)
    history: list[tuple[float, dict[int, int]]] = field(default_factory=list)  #: (since when, sm_util)

    @property
    def mig_mode(self) -> bool:
        """MIG mode is on when the GPU has MIG devices."""
        return bool(self.migs or self.mig_devices)


class FakeNvml:
    """Pass as ``nvml=`` to ``discover_nvml``; time comes from ``clock`` (seconds)."""

    NVMLError = NVMLError
    NVMLError_NotSupported = NVMLError_NotSupported
    NVMLError_GpuIsLost = NVMLError_GpuIsLost
    NVMLError_NotFound = NVMLError_NotFound
    NVMLError_NoPermission = NVMLError_NoPermission

    def __init__(self, gpus: list[FakeGpu], clock: Callable[[], float], driver: bool = True) -> None:
        self.gpus = gpus
        self.clock = clock
        self.t0 = clock()
        self.driver = driver
        self.calls: list[str] = []
        self._integrated_to = self.t0
        for gpu in gpus:
            gpu.history = [(self.t0, dict(gpu.sm_util))]
            gpu.mig_devices += [FakeMig(uuid) for uuid in gpu.migs if uuid not in {m.uuid for m in gpu.mig_devices}]

    def _integrate(self) -> None:
        now = self.clock()
        for gpu in self.gpus:
            gpu.energy_mj += (now - self._integrated_to) * gpu.watts * 1000
        self._integrated_to = now

    def set(self, index: int, **changes: object) -> None:
        """Change a GPU's load from now on (``watts``, ``sm_util``, ``pids`` …): energy so far is kept."""
        self._integrate()
        gpu = self.gpus[index]
        for name, value in changes.items():
            setattr(gpu, name, value)
        if "sm_util" in changes:
            gpu.history.append((self.clock(), dict(gpu.sm_util)))

    def _mig(self, handle: object) -> tuple[FakeGpu, FakeMig] | None:
        if isinstance(handle, SimpleNamespace):
            gpu = self.gpus[handle.parent]
            return gpu, next(m for m in gpu.mig_devices if m.uuid == handle.mig)
        return None

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
            if uuid in {m.uuid for m in gpu.mig_devices}:
                return SimpleNamespace(mig=uuid, parent=i)
        raise NVMLError_NotFound("Not Found")

    def nvmlDeviceGetDeviceHandleFromMigDeviceHandle(self, handle: object) -> int:  # noqa: N802
        return handle.parent  # type: ignore[attr-defined]

    def nvmlDeviceGetIndex(self, handle: int) -> int:  # noqa: N802
        return handle

    def nvmlDeviceGetUUID(self, handle: int) -> str:  # noqa: N802
        mig = self._mig(handle)
        return mig[1].uuid if mig else self.gpus[handle].uuid

    def nvmlDeviceGetName(self, handle: int) -> str:  # noqa: N802
        mig = self._mig(handle)
        return f"{mig[0].name} MIG {mig[1].profile}" if mig else self.gpus[handle].name

    def nvmlDeviceIsMigDeviceHandle(self, handle: object) -> int:  # noqa: N802
        return int(self._mig(handle) is not None)

    def nvmlDeviceGetMigMode(self, handle: int) -> list[int]:  # noqa: N802
        """[current, pending]: 1 is NVML_DEVICE_MIG_ENABLE."""
        mode = int(self._gpu(handle).mig_mode)
        return [mode, mode]

    def nvmlDeviceGetMaxMigDeviceCount(self, handle: int) -> int:  # noqa: N802
        return 7 if self._gpu(handle).mig_mode else 0

    def nvmlDeviceGetMigDeviceHandleByIndex(self, handle: int, index: int) -> SimpleNamespace:  # noqa: N802
        gpu = self._gpu(handle)
        if not 0 <= index < len(gpu.mig_devices):
            raise NVMLError_NotFound("Not Found")
        return SimpleNamespace(mig=gpu.mig_devices[index].uuid, parent=handle)

    def nvmlDeviceGetAttributes(self, handle: object) -> SimpleNamespace:  # noqa: N802
        mig = self._mig(handle)
        if mig is None:
            raise NVMLError_NotSupported("Not Supported")  # the reference: MIG device handles only
        return SimpleNamespace(gpuInstanceSliceCount=mig[1].slices, computeInstanceSliceCount=mig[1].slices,
                               memorySizeMB=mig[1].memory_mb, multiprocessorCount=16 * mig[1].slices)

    def nvmlDeviceGetGpuInstanceProfileInfo(self, handle: int, profile: int) -> SimpleNamespace:  # noqa: N802
        """Profiles 0..4 are NVML_GPU_INSTANCE_PROFILE_{1,2,3,4,7}_SLICE; others NOT_SUPPORTED here."""
        gpu = self._gpu(handle)
        slices = {0: 1, 1: 2, 2: 3, 3: 4, 4: 7}.get(profile)
        if not gpu.mig_mode or slices is None or slices > gpu.mig_total_slices:
            raise NVMLError_NotSupported("Not Supported")
        return SimpleNamespace(id=profile, sliceCount=slices)

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: int) -> int:  # noqa: N802
        gpu = self._gpu(handle)
        if not gpu.has_counter:
            raise NVMLError_NotSupported("Not Supported")
        self._integrate()
        return gpu.energy_mj_at_start + int(gpu.energy_mj)

    def nvmlDeviceGetPowerUsage(self, handle: int) -> int:  # noqa: N802
        return int(self._gpu(handle).watts * 1000)

    def nvmlDeviceGetComputeRunningProcesses(self, handle: int) -> list[SimpleNamespace]:  # noqa: N802
        return [SimpleNamespace(pid=pid, usedGpuMemory=1 << 30) for pid in self._gpu(handle).pids]

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> SimpleNamespace:  # noqa: N802
        gpu = self._gpu(handle)
        if gpu.mig_mode:
            raise NVMLError_NotSupported("Not Supported")
        return SimpleNamespace(gpu=gpu.utilisation, memory=10)

    def nvmlDeviceGetProcessUtilization(self, handle: int, timeStamp: int) -> list[SimpleNamespace]:  # noqa: N802,N803
        """Samples newer than ``timeStamp`` (µs): one per active process per driver period."""
        gpu = self._gpu(handle)
        if gpu.mig_mode:
            raise NVMLError_NotSupported("Not Supported")
        if gpu.process_util_error is not None:
            raise gpu.process_util_error("Not Supported")
        now = self.clock()
        first = max(self.t0, now - gpu.buffer_s)
        k = int((first - self.t0) // gpu.sample_period_s) + 1
        samples = []
        while self.t0 + k * gpu.sample_period_s <= now + 1e-9:
            t = self.t0 + k * gpu.sample_period_s
            stamp = int(round((EPOCH_S + t) * 1e6))
            if stamp > timeStamp:
                active = [u for since, u in gpu.history if since < t][-1]
                samples += [SimpleNamespace(pid=pid + gpu.sample_pid_offset, timeStamp=stamp, smUtil=util,
                                            memUtil=util // 2, encUtil=0, decUtil=0)
                            for pid, util in active.items() if util > 0]
            k += 1
        if not samples:
            raise NVMLError_NotFound("Not Found")
        return samples
