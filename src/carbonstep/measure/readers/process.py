"""The process tree being measured (a process and its children, e.g. DataLoader workers).

Used by the CPU and RAM estimates and by ``attribution="process"`` to share out RAPL zones.
"""

from __future__ import annotations

import os
import time

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: a run imports no typing
if TYPE_CHECKING:
    from typing import Any, Iterable


class ProcFiles:
    """A process's /proc/<pid>/stat and statm, kept open and re-read with pread (Linux), not psutil's
    open/read/close at each call."""

    TICK_S = 1.0 / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 0.01
    PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

    def __init__(self, pid: int, proc_root: str = "/proc", own: bool = False) -> None:
        self.pid = pid
        self.own = own  # this very process: CPU time from the process clock, not a /proc read
        self._stat = -1 if own else os.open(f"{proc_root}/{pid}/stat", os.O_RDONLY)
        self._statm = os.open(f"{proc_root}/{pid}/statm", os.O_RDONLY)
        self.waited_children_s = 0.0  # own process: its waited-for children's CPU time, as of refresh_children()
        self.refresh_children()

    def refresh_children(self) -> None:
        """Own process: read the waited-for children's CPU time (getrusage; it changes only when one is reaped)."""
        if self.own:
            import resource

            usage = resource.getrusage(resource.RUSAGE_CHILDREN)
            self.waited_children_s = usage.ru_utime + usage.ru_stime

    def cpu_seconds(self, with_waited_children: bool) -> float:
        """user + system seconds (and those of waited-for children, when asked)."""
        if self.own:  # all threads, exited ones included (CLOCK_PROCESS_CPUTIME_ID): one cheap call
            return time.process_time() + (self.waited_children_s if with_waited_children else 0.0)
        fields = os.pread(self._stat, 4096, 0).rpartition(b")")[2].split()
        ticks = int(fields[11]) + int(fields[12])  # utime, stime
        if with_waited_children:
            ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
        return ticks * self.TICK_S

    def rss_bytes(self) -> float:
        return float(int(os.pread(self._statm, 256, 0).split()[1]) * self.PAGE_BYTES)

    def close(self) -> None:
        """Close both files (idempotent)."""
        for fd in (self._stat, self._statm):
            try:
                os.close(fd) if fd >= 0 else None
            except OSError:
                pass
        self._stat = self._statm = -1


class _PsutilFiles:
    """The same interface through psutil, where /proc is not available."""

    def __init__(self, process: Any) -> None:
        self.pid = process.pid
        self._process = process

    def cpu_seconds(self, with_waited_children: bool) -> float:
        import psutil

        try:
            t = self._process.cpu_times()
        except psutil.Error as exc:
            raise ProcessLookupError(str(exc)) from None
        total = t.user + t.system
        return total + (t.children_user + t.children_system if with_waited_children else 0.0)

    def rss_bytes(self) -> float:
        import psutil

        try:
            return float(self._process.memory_info().rss)
        except psutil.Error as exc:
            raise ProcessLookupError(str(exc)) from None

    def close(self) -> None:
        pass


GONE = (OSError, ValueError, IndexError)  # a process that exited since the last listing


class ProcessTree:
    """CPU time and memory of a root process and its live descendants.

    Children are listed at most every ``refresh_s`` seconds; on Linux by following the tree itself (each member's
    ``/proc/<pid>/task/<tid>/children``: by the size of the tree, not by the processes on the machine as psutil's
    walk of /proc). Between listings only the known processes are read, their CPU time at most every
    ``children_refresh_s`` (one pass of ``pread`` over files kept open), and the machine's busy CPU time (the
    CPU estimate's denominator for the process's share of idle watts, :meth:`machine_busy_cpu_seconds`) at most
    every ``machine_refresh_s``: the kernel makes /proc/stat afresh at each read, summing every interrupt's
    counts, which costs more than the rest of a sample. The sums stay exact (each reading is cumulative), at most
    a refresh late; a new listing (``expire_listing()``, at stop) reads everything again.
    The root, when it is this process, is read through the process clock, and its waited-for children's time
    (getrusage) again at each listing. Every member is read with its waited-for children's time (cutime/cstime),
    so a process's CPU time is in exactly one place: its own while it lives, then its parent's cutime once the
    parent has waited for it (a DataLoader worker reaped by the root, a grandchild by a shell wrapper); the total
    never goes down (a process gone before its parent's cutime shows it is a dip, not a reset), so nothing is
    counted twice. Processes in ``exclude`` (other ranks, measured by themselves) are left out with their children.
    """

    def __init__(self, pid: int | None = None, refresh_s: float = 5.0, exclude: Iterable[int] = (),
                 rss_refresh_s: float = 1.0, children_refresh_s: float = 1.0, proc_root: str = "/proc",
                 machine_refresh_s: float = 1.0) -> None:
        self.pid = os.getpid() if pid is None else pid
        self.proc_root = proc_root
        self._linux = os.path.exists(f"{proc_root}/{self.pid}/stat")  # else psutil, imported only then
        self._psutil: Any = None
        self._root_process: Any = None
        if not self._linux:
            self._root_process = self.root
        self.refresh_s = refresh_s
        self.children_refresh_s = children_refresh_s
        self.exclude = frozenset(exclude)
        self._root_files = self._open(self.pid, own=self.pid == os.getpid())
        self._own_root = getattr(self._root_files, "own", False)  # read through the process clock
        self._monotonic, self._process_time = time.monotonic, time.process_time  # no module look-ups per sample
        self._children: dict[int, Any] = {}
        self._members_cache: list[Any] = []
        self._listed_at = self._children_read_at = -float("inf")
        self._children_cpu_s = self._cpu_high_s = 0.0
        self.rss_refresh_s = rss_refresh_s  # resident memory moves slowly; a /proc read costs more than a sample
        self._rss_read_at, self._rss_bytes = -float("inf"), 0.0
        self.machine_refresh_s = machine_refresh_s
        self._machine_read_at, self._machine_cpu_s = -float("inf"), 0.0

    @property
    def root(self) -> Any:
        """The root as a ``psutil.Process`` (psutil is imported on first use: Linux reads /proc itself)."""
        if self._root_process is None:
            self._psutil = self._psutil or __import__("psutil")
            self._root_process = self._psutil.Process(self.pid)
        return self._root_process

    def _open(self, pid: int, own: bool = False) -> Any:
        try:
            return ProcFiles(pid, proc_root=self.proc_root, own=own)
        except OSError:
            if self._linux and not own:
                raise  # gone since it was listed
            self.root  # noqa: B018 - imports psutil
            return _PsutilFiles(self._psutil.Process(pid))

    def close(self) -> None:
        """Close every /proc file the tree holds open."""
        for files in (self._root_files, *self._children.values()):
            files.close()
        self._children.clear()
        self._members_cache = []

    def expire_listing(self) -> None:
        """Make the next read list the tree again (and re-read the root's waited-for children's time and every
        child's CPU time, and the machine's busy CPU time): the last sample of a run must see children that ended
        in the seconds before it."""
        self._listed_at = self._machine_read_at = -float("inf")

    def _members(self) -> list[Any]:
        now = time.monotonic()
        return self._members_cache if now - self._listed_at < self.refresh_s else self._list(now)

    def _list(self, now: float) -> list[Any]:
        self._listed_at = now
        self._children_read_at = -float("inf")  # a new listing: the next read covers every member afresh
        refresh = getattr(self._root_files, "refresh_children", None)
        if refresh is not None:
            refresh()
        live = self._descendants()
        for pid in set(self._children) - live:
            self._children.pop(pid).close()
        for pid in live:
            if pid not in self._children:
                try:
                    self._children[pid] = self._open(pid)
                except (OSError, ValueError):  # exited since it was listed
                    continue
                except Exception as exc:  # psutil.Error where /proc is not readable
                    if self._psutil is None or not isinstance(exc, self._psutil.Error):
                        raise
        self._members_cache = list(self._children.values())
        return self._members_cache

    def _descendants(self) -> set[int]:
        """The live descendants' pids, without the excluded ones and their subtrees."""
        if not self._linux:
            return self._descendants_psutil()
        if not os.path.exists(f"{self.proc_root}/{self.pid}/task/{self.pid}/children"):
            return self._descendants_by_scan()  # a kernel without CONFIG_PROC_CHILDREN
        found: set[int] = set()
        frontier = [self.pid]
        while frontier:
            pid = frontier.pop()
            for child in self._children_of(pid):
                if child not in found and child not in self.exclude and child != self.pid:
                    found.add(child)
                    frontier.append(child)
        return found

    def _children_of(self, pid: int) -> list[int]:
        """A process's children, from each of its threads' ``children`` file ([] once it has exited)."""
        task = f"{self.proc_root}/{pid}/task"
        children: list[int] = []
        try:
            threads = os.listdir(task)
        except OSError:
            return children
        for tid in threads:
            try:  # os calls, not open(): no file objects for the one file per thread at each listing
                fd = os.open(f"{task}/{tid}/children", os.O_RDONLY)
                try:
                    text = b"".join(iter(lambda: os.read(fd, 65536), b""))  # noqa: B023 - used at once
                finally:
                    os.close(fd)
                children += [int(c) for c in text.split()]
            except (OSError, ValueError):
                continue  # the thread ended
        return children

    def _descendants_by_scan(self) -> set[int]:
        """The same from every process's parent (``/proc/<pid>/stat`` field 4): one walk of /proc."""
        parents: dict[int, list[int]] = {}
        for name in os.listdir(self.proc_root):
            if not name.isdigit():
                continue
            try:
                with open(f"{self.proc_root}/{name}/stat", "rb") as handle:
                    ppid = int(handle.read().rpartition(b")")[2].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            parents.setdefault(ppid, []).append(int(name))
        found: set[int] = set()
        frontier = [self.pid]
        while frontier:
            for child in parents.get(frontier.pop(), ()):
                if child not in found and child not in self.exclude and child != self.pid:
                    found.add(child)
                    frontier.append(child)
        return found

    def _descendants_psutil(self) -> set[int]:
        psutil = self._psutil
        try:
            live = {p.pid: p for p in self.root.children(recursive=True)}
        except psutil.Error:
            return set()
        if not self.exclude:
            return set(live)
        parents: dict[int, int | None] = {}
        for pid, process in live.items():
            try:
                parents[pid] = process.ppid()
            except psutil.Error:
                parents[pid] = None

        def excluded(pid: int | None) -> bool:
            while pid is not None and pid != self.pid:
                if pid in self.exclude:
                    return True
                pid = parents.get(pid)
            return False

        return {pid for pid in live if not excluded(pid)}

    def cpu_seconds(self) -> float:
        """Cumulative user+system CPU seconds of the tree (waited-for children included). It runs cold at every
        sample, where each object and kind of call touched costs: the listing check inlined, this process's own
        time straight from the process clock, the children at most every ``children_refresh_s``."""
        now = self._monotonic()
        if now - self._listed_at >= self.refresh_s:
            self._list(now)
        root = self._root_files
        total = self._process_time() + root.waited_children_s if self._own_root else root.cpu_seconds(True)
        if self._members_cache:
            if now - self._children_read_at >= self.children_refresh_s:
                self._children_read_at = now
                self._children_cpu_s = self._members_cpu_seconds()
            total += self._children_cpu_s
        if total > self._cpu_high_s:  # a dip (exited, not yet waited for) is not a reset
            self._cpu_high_s = total
        return self._cpu_high_s

    def machine_busy_cpu_seconds(self) -> float:
        """:func:`machine_busy_cpu_seconds`, read again at most every ``machine_refresh_s`` and after a new listing."""
        now = self._monotonic()
        if now - self._machine_read_at >= self.machine_refresh_s:
            self._machine_read_at, self._machine_cpu_s = now, machine_busy_cpu_seconds()
        return self._machine_cpu_s

    def _members_cpu_seconds(self) -> float:
        total = 0.0
        for files in self._members_cache:
            try:
                total += files.cpu_seconds(True)
            except GONE:
                continue  # exited since the last listing: its time is in its parent's cutime once waited
        return total

    def rss_bytes(self) -> float:
        """Resident memory of the tree in bytes (read again at most every ``rss_refresh_s``)."""
        now = self._monotonic()
        if now - self._rss_read_at >= self.rss_refresh_s:
            self._rss_read_at, self._rss_bytes = now, self._read_rss_bytes()
        return self._rss_bytes

    def _read_rss_bytes(self) -> float:
        total = self._root_files.rss_bytes()
        for files in self._members():
            try:
                total += files.rss_bytes()
            except GONE:  # exited since the last listing
                pass
        return total


_PROC_STAT = {"fd": -1}  #: /proc/stat, opened on first use and kept open (one close-on-exec descriptor); -2: none


def machine_busy_cpu_seconds() -> float:
    """Cumulative non-idle CPU seconds of the whole machine (all logical CPUs): user + nice + system + irq + softirq,
    as psutil.cpu_times() sums them (guest time is in user time; steal is another VM's). Linux: a pread of /proc/stat
    kept open (its "cpu" line; the kernel makes the whole file at each read: see ProcessTree). Elsewhere: psutil."""
    fd = _PROC_STAT["fd"]
    if fd == -1:
        try:
            fd = _PROC_STAT["fd"] = os.open("/proc/stat", os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            fd = _PROC_STAT["fd"] = -2
    fields = os.pread(fd, 256, 0).split(b"\n", 1)[0].split() if fd >= 0 else []  # cpu user nice system idle …
    if fields[:1] == [b"cpu"] and len(fields) >= 8:
        return (int(fields[1]) + int(fields[2]) + int(fields[3]) + int(fields[6]) + int(fields[7])) * ProcFiles.TICK_S
    import psutil

    t = psutil.cpu_times()
    return t.user + t.system + sum(getattr(t, f, 0.0) for f in ("nice", "irq", "softirq"))


def machine_used_memory_bytes() -> float:
    """Memory in use on the machine, in bytes."""
    import psutil

    return float(psutil.virtual_memory().used)


class ProcessShare:
    """A shared device (RAPL package or DRAM) charged at the process tree's share.

    Each interval's energy is multiplied by the tree's share of busy CPU time (package)
    or of used memory (DRAM) over that interval. Read as a cumulative counter in joules.
    """

    def __init__(self, inner: Any, tree: ProcessTree) -> None:
        from carbonstep.measure.readers.base import Kind, Scope, Share

        self.inner = inner
        self.scope = Scope.PROCESS  # the process's share: shares of several processes add up
        self.name = inner.name
        self.domain = inner.domain
        self.kind = Kind.COUNTER
        self.method = inner.method
        self.share = Share.NONE
        self.wrap_j = None
        basis = "busy CPU time" if inner.share is Share.CPU_TIME else "used memory"
        self.description = f"{inner.description}; the process's share of {basis}"
        self._by_cpu = inner.share is Share.CPU_TIME
        self._tree = tree
        self._total_j = 0.0
        self._last = self._state()

    def _state(self) -> tuple[float, float, float]:
        if self._by_cpu:
            return self.inner.read(), self._tree.cpu_seconds(), machine_busy_cpu_seconds()
        return self.inner.read(), self._tree.rss_bytes(), machine_used_memory_bytes()

    def read(self) -> float:
        from carbonstep.measure.readers.base import counter_delta

        now = self._state()
        energy = counter_delta(self._last[0], now[0], self.inner.wrap_j)
        if self._by_cpu:
            machine = now[2] - self._last[2]
            share = (now[1] - self._last[1]) / machine if machine > 0 else 0.0
        else:
            share = (now[1] / now[2] + self._last[1] / self._last[2]) / 2 if now[2] > 0 else 0.0
        self._total_j += energy * min(max(share, 0.0), 1.0)
        self._last = now
        return self._total_j

    def close(self) -> None:
        self.inner.close()
