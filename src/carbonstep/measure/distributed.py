"""Where this process sits in a job, and the few collectives carbonstep needs (torch.distributed).

Counting rule (docs/DESIGN.md, "Several processes"):

* each rank measures what it uses: its own process tree (other ranks excluded, even when
  they are its children, as under Lightning's DDP launcher) and its own GPUs;
* node-level sources (RAPL zones and the machine-wide estimates of ``attribution="machine"``)
  are read by one process per host only, the node leader (the lowest global rank on the
  host, or ``LOCAL_RANK``/``SLURM_LOCALID`` 0 without a process group);
* job totals are the sum over ranks (``all_reduce``), which then holds nothing twice.

torch is never imported here unless the program has already imported ``torch.distributed``.
"""

from __future__ import annotations

import os
import sys
from dataclasses import asdict, dataclass, replace

from carbonstep._record import DataclassMethods
from carbonstep.report.context import host_name

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: a run imports no typing
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any, Mapping, Sequence



@dataclass(frozen=True, repr=False, eq=False)  # repr, == and hash: DataclassMethods
class Place(DataclassMethods):
    """This process's place in a job: ranks, host, and who counts the node's shared sources."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    local_world_size: int = 1
    host: str = ""
    pid: int = 0
    node_leader: bool = True  #: this process reads the node-level sources of its host
    peer_pids: tuple[int, ...] = ()  #: other ranks' processes on this host (never in this rank's tree)

    def to_dict(self) -> dict[str, Any]:
        """The place as plain JSON-ready data (stored in reports)."""
        return {**asdict(self), "peer_pids": list(self.peer_pids)}


def _first_int(environ: Mapping[str, str], names: Sequence[str], default: int) -> int:
    for name in names:
        value = environ.get(name, "").strip()
        if value.isdigit():
            return int(value)
    return default


def environment_place(environ: Mapping[str, str] = os.environ) -> Place:
    """The place as launchers describe it: torchrun/Accelerate/Lightning variables, then Slurm's."""
    local_rank = _first_int(environ, ("LOCAL_RANK", "SLURM_LOCALID", "MPI_LOCALRANKID",
                                      "OMPI_COMM_WORLD_LOCAL_RANK"), 0)
    return Place(
        rank=_first_int(environ, ("RANK", "SLURM_PROCID", "OMPI_COMM_WORLD_RANK"), 0),
        local_rank=local_rank,
        world_size=_first_int(environ, ("WORLD_SIZE", "SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE"), 1),
        local_world_size=_first_int(environ, ("LOCAL_WORLD_SIZE", "SLURM_NTASKS_PER_NODE",
                                              "OMPI_COMM_WORLD_LOCAL_SIZE"), 1),
        host=host_name(), pid=os.getpid(), node_leader=local_rank == 0,
    )


def rank_path(path: "os.PathLike[str] | str", place: Place | None) -> "Path":
    """``path`` made this process's own when it is one of several ranks: ``r.json`` → ``r-rank1.json``.

    Every process of a job then writes its own report, whatever started it (a plain Tracker, ``carbonstep run``
    under ``srun``); ``carbonstep merge`` and ``carbonstep usage`` add them up into the job's total.
    """
    from pathlib import Path

    path = Path(path)
    if place is None or place.world_size <= 1 or path.stem.endswith(f"-rank{place.rank}"):
        return path
    return path.with_name(f"{path.stem}-rank{place.rank}{path.suffix}")


def _dist() -> Any:
    """``torch.distributed`` when a process group is up, else None (torch never imported here)."""
    if "torch.distributed" not in sys.modules:
        return None
    dist = sys.modules["torch.distributed"]
    return dist if dist.is_available() and dist.is_initialized() else None


def in_process_group() -> bool:
    """Whether torch.distributed is initialised in this process (without importing torch if it is not loaded)."""
    dist = _dist()
    return dist is not None and dist.get_world_size() > 1


def _device(dist: Any) -> Any:
    import torch

    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def job_place(run_id: str) -> tuple[Place, str]:
    """This process's place and the job's run id (rank zero's), agreed by every rank.

    A collective under a process group: every rank must call it, at the same point.
    """
    own = environment_place()
    dist = _dist()
    if dist is None or dist.get_world_size() == 1:
        return own, run_id
    rank, world = dist.get_rank(), dist.get_world_size()
    everyone: list[Any] = [None] * world
    dist.all_gather_object(everyone, (rank, own.host, own.pid, run_id))
    same_host = sorted((r, pid) for r, host, pid, _ in everyone if host == own.host)
    place = replace(own, rank=rank, world_size=world, local_rank=[r for r, _ in same_host].index(rank),
                    local_world_size=len(same_host), node_leader=same_host[0][0] == rank,
                    peer_pids=tuple(pid for r, pid in same_host if r != rank))
    return place, next(job_id for r, _, _, job_id in everyone if r == 0)


def sum_across_ranks(values: Sequence[float]) -> list[float]:
    """Each value summed over every rank (``all_reduce``, float64); the values themselves without a group."""
    dist = _dist()
    if dist is None:
        return list(values)
    import torch

    tensor = torch.tensor(list(values), dtype=torch.float64, device=_device(dist))
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return [float(v) for v in tensor.cpu().tolist()]


def gather_to_zero(obj: Any) -> list[Any] | None:
    """Every rank's ``obj`` on global rank zero (None elsewhere); ``[obj]`` without a group."""
    dist = _dist()
    if dist is None:
        return [obj]
    everyone: list[Any] | None = [None] * dist.get_world_size() if dist.get_rank() == 0 else None
    dist.gather_object(obj, everyone, dst=0)
    return everyone


def any_rank(flag: bool) -> bool:
    """True on every rank when ``flag`` is True on any rank; ``flag`` itself outside a process group."""
    dist = _dist()
    if dist is None:
        return flag
    import torch

    value = torch.tensor([1 if flag else 0], device=_device(dist))
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


__all__ = [
    "Place", "any_rank", "environment_place", "gather_to_zero", "in_process_group", "job_place", "rank_path",
    "sum_across_ranks",
]
