"""The one place where a decision is reduced across processes (torch.distributed)."""

from __future__ import annotations

import sys


def any_rank(flag: bool) -> bool:
    """True on every rank when ``flag`` is True on any rank; ``flag`` itself outside a process group."""
    if "torch.distributed" not in sys.modules:  # never import torch for a single process
        return flag
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return flag
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
    value = torch.tensor([1 if flag else 0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())
