"""A one-host Slurm for tests: munged with its own key and socket, slurmctld and slurmd in the foreground as root,
a minimal slurm.conf (no cgroup plugins, no accounting database), all under one temporary folder."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from tests.mlflow_server import free_port

DAEMONS = {"munged": "munge", "mungekey": "munge", "slurmctld": "slurm-wlm", "slurmd": "slurm-wlm",
           "srun": "slurm-wlm", "sinfo": "slurm-wlm", "scontrol": "slurm-wlm"}


def missing() -> list[str]:
    """The Debian packages whose programs are not installed (the daemons live in /usr/sbin)."""
    return sorted({package for name, package in DAEMONS.items() if _which(name) is None})


def _which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")


CONF = """ClusterName=carbonstep-test
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
AuthType=auth/munge
AuthInfo=socket={root}/munge/munge.socket
CredType=cred/munge
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc={root}/jobcomp.txt
NodeName=localhost NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""


class Cluster:
    """Start with :meth:`start`, run commands with :attr:`env` (SLURM_CONF), stop with :meth:`stop` (bounded)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.conf = root / "slurm.conf"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}
        self.processes: list[subprocess.Popen[bytes]] = []

    def _daemon(self, argv: list[str], log: str) -> None:
        with (self.root / log).open("wb") as out:
            self.processes.append(subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=self.env,
                                                   start_new_session=True))

    def start(self, timeout_s: float = 40.0) -> "Cluster":
        root = self.root
        for sub in ("state", "spool", "munge", "munge-key"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        root.chmod(0o755)
        (root / "munge").chmod(0o755)  # munged wants the socket's folder reachable by every user
        (root / "munge-key").chmod(0o700)
        key = root / "munge-key" / "munge.key"
        subprocess.run([_which("mungekey") or "mungekey", "--create", f"--keyfile={key}"], check=True, timeout=30,
                       capture_output=True)
        self.conf.write_text(CONF.format(root=root, ctld_port=free_port(), slurmd_port=free_port()))
        try:
            self._daemon([_which("munged") or "munged", "--foreground", "--force",
                          f"--socket={root}/munge/munge.socket", f"--key-file={key}", f"--log-file={root}/munged.log",
                          f"--pid-file={root}/munge/munged.pid", f"--seed-file={root}/munge/munged.seed"],
                         "munged.out")
            self._wait(lambda: (root / "munge" / "munge.socket").exists(), timeout_s, "munged")
            self._daemon([_which("slurmctld") or "slurmctld", "-D", "-c"], "slurmctld.out")
            self._wait(lambda: self._sinfo_ok(), timeout_s, "slurmctld")
            self._daemon([_which("slurmd") or "slurmd", "-D", "-N", "localhost"], "slurmd.out")
            self._wait(lambda: self._node_state() in ("idle", "mixed", "allocated"), timeout_s, "slurmd")
        except Exception:
            self.stop()
            raise
        return self

    def _sinfo_ok(self) -> bool:
        return subprocess.run(["sinfo", "-h"], env=self.env, capture_output=True, timeout=10).returncode == 0

    def _node_state(self) -> str:
        out = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], env=self.env, capture_output=True, text=True,
                             timeout=10)
        return out.stdout.strip()

    def _wait(self, ready: object, timeout_s: float, name: str) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in self.processes):
                break
            if ready():  # type: ignore[operator]
                return
            time.sleep(0.3)
        logs = "\n".join(f"--- {p.name}\n{p.read_text()[-1500:]}" for p in sorted(self.root.glob("*.out")))
        raise RuntimeError(f"{name} did not start\n{logs}")

    def stop(self, timeout_s: float = 15.0) -> None:
        for process in reversed(self.processes):  # slurmd, slurmctld, munged
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout_s)
            except ProcessLookupError:
                pass
        self.processes = []
