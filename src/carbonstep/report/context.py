"""Who ran a measured run and where it was scheduled: the user and the Slurm job, from the environment.

The Slurm variables are those ``sbatch``/``srun`` set in the job's environment (Slurm's sbatch manual,
"OUTPUT ENVIRONMENT VARIABLES"). ``carbonstep usage`` groups runs by them.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: a run's stop path imports no typing
if TYPE_CHECKING:
    from typing import Any, Mapping

#: tag name → the Slurm variable it is read from
SLURM_VARIABLES = {
    "slurm.job_id": "SLURM_JOB_ID", "slurm.user": "SLURM_JOB_USER", "slurm.node": "SLURMD_NODENAME",
    "slurm.nodelist": "SLURM_JOB_NODELIST", "slurm.nodes": "SLURM_JOB_NUM_NODES", "slurm.ntasks": "SLURM_NTASKS",
    "slurm.account": "SLURM_JOB_ACCOUNT", "slurm.partition": "SLURM_JOB_PARTITION", "slurm.job_name": "SLURM_JOB_NAME",
}


def slurm_tags(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The Slurm job's id, user, account, partition and nodes, when the process runs under Slurm."""
    return {tag: environ[var] for tag, var in SLURM_VARIABLES.items() if environ.get(var)}


def login_name(environ: Mapping[str, str] = os.environ) -> str | None:
    """The user running this process: Slurm's job user, else the login name (None when it cannot be told)."""
    if environ.get("SLURM_JOB_USER"):
        return environ["SLURM_JOB_USER"]
    for name in ("LOGNAME", "USER", "LNAME", "USERNAME"):  # getpass.getuser()'s order, without importing getpass
        if os.environ.get(name):
            return os.environ[name]
    try:
        import pwd

        return pwd.getpwuid(os.getuid())[0]
    except (OSError, KeyError, ImportError, AttributeError):  # no passwd entry (some containers); no pwd (Windows)
        return None


def host_name() -> str:
    """This machine's host name: ``socket.gethostname()``, read from ``os.uname()`` where there is one (the same
    name: glibc's gethostname() is uname()'s nodename) so that a run does not import ``socket``."""
    if hasattr(os, "uname"):
        return os.uname().nodename
    import socket

    return socket.gethostname()


def run_context(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """What a report records about who ran it: ``{"user": ..., "slurm": {...}}`` (empty parts left out)."""
    context: dict[str, Any] = {}
    user = login_name(environ)
    if user:
        context["user"] = user
    slurm = {tag.removeprefix("slurm."): value for tag, value in slurm_tags(environ).items()}
    if slurm:
        context["slurm"] = slurm
    return context
