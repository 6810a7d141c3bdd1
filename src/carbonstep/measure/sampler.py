"""The one background thread that polls every reader at a fixed interval.

Once the thread runs, every hardware read happens on it and nowhere else: the training thread
never calls a reader and never waits on a lock a reader may hold. A fresh sample is *asked for*
(``poll()``) and waited for within a bound, so a slow or hung device costs training at most
``wait_s`` once, and a signal handler that stops the tracker while the training thread was
waiting for a sample cannot deadlock (see docs/FAULTS.md).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

from carbonstep._record import NamedTuple
from carbonstep.measure.progress import join_while_progressing, thread_progress
from carbonstep.measure.readers.base import Reader

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: a run imports no typing
if TYPE_CHECKING:
    from typing import Any, Callable, Sequence


def _log() -> Any:
    """The "carbonstep" logger, on first use: the logging module is imported only when there is something to say."""
    import logging

    return logging.getLogger("carbonstep")

WAIT_S = 2.0  #: the longest a caller waits for a fresh sample, and for the thread's last sample at stop


class Sample(NamedTuple):
    """One poll: monotonic time and each reader's value (None where the read failed)."""

    t: float
    values: tuple[float | None, ...]


@dataclass(frozen=True, slots=True)
class Hung:
    """A read that had not returned when the sampler was stopped."""

    index: int  #: which reader
    since: float  #: when the read began (the sampler's clock)


def _release(lock: threading.Lock) -> None:
    """Wake whoever waits on ``lock`` (a binary semaphore); a second wake before the first is taken is one wake."""
    try:
        lock.release()
    except RuntimeError:
        pass


class Sampler:
    """Polls ``readers`` every ``interval_s`` and hands each :class:`Sample` to ``deliver``.

    A fixed-deadline loop on the clock, sleeping on a lock that ``poll()`` and ``stop()`` release.
    A reader that raises is isolated: its value is None, the failure is counted and logged once, and
    the other readers go on. A reader that never returns is found by ``stop()`` (``hung``).
    Before ``start()`` (and in tests) ``poll()`` reads on the caller's thread.
    """

    def __init__(
        self,
        readers: Sequence[Reader],
        deliver: Callable[[Sample], None],
        interval_s: float,
        clock: Callable[[], float] = time.monotonic,
        wait_s: float = WAIT_S,
    ) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be > 0")
        self.readers = tuple(readers)
        self.interval_s = interval_s
        self.wait_s = wait_s
        self.failures = [0] * len(self.readers)
        self.first_failure: list[str | None] = [None] * len(self.readers)
        self.samples = 0
        self.late_polls = 0  #: poll() calls whose sample did not come within wait_s
        self.hung: Hung | None = None  #: set by stop() when a read never returned
        self._deliver = deliver
        self._clock = clock
        self._wake = threading.Lock()  # held while idle; released by poll() and stop()
        self._waiters: deque[threading.Lock] = deque()  # each poll() waits on its own lock, released after its sample
        self._reading = -1  # the reader being read, -1 between reads
        self._read_started = 0.0  # when the current (or last) pass over the readers began
        self._stuck = False  # a poll() timed out on the read under way: later polls do not wait for it
        self._stopping = False
        self._closed = False  # after stop(): a late sample from a hung read is dropped
        self._delivering = threading.Lock()  # held by the thread only while it hands a sample over (no I/O)
        self.last: Sample | None = None
        self._thread: threading.Thread | None = None

    # -- reading (the thread's side) -------------------------------------------------------

    def _record_failure(self, i: int, exc: BaseException) -> None:
        self.failures[i] += 1
        if self.first_failure[i] is None:
            self.first_failure[i] = f"{type(exc).__name__}: {exc}"
            _log().warning("carbonstep: reader %s failed: %s", self.readers[i].name, exc)

    def _sample(self) -> Sample | None:
        """One pass over the readers, handed over on the caller's thread (``poll()`` before ``start()``)."""
        return self._run(once=True)

    def _run(self, once: bool = False) -> Sample | None:
        """The thread: wait for the deadline or a wake-up, read every reader, hand the sample over, again.

        ``once``: one pass without waiting (before ``start()``), and a consumer's fault reaches the caller. It is
        one function with its names in locals because it runs cold at every wake-up (the thread slept since the
        last), where each call and attribute look-up costs.
        """
        clock, wake, interval, waiters = self._clock, self._wake, self.interval_s, self._waiters
        readers, deliver, delivering, new_sample = self.readers, self._deliver, self._delivering, tuple.__new__
        deadline = clock()
        stopping, asked, sample = False, 0, None
        while True:
            if not once:
                deadline += interval
                now = clock()
                if deadline < now:  # we fell behind (suspend, overload): do not burst to catch up
                    deadline = now + interval
                wake.acquire(True, deadline - now)
                stopping = self._stopping  # seen before the read: the last sample is taken after stop() asked
                asked = len(waiters)  # callers waiting before this sample began; later ones get the next
            try:
                self._read_started = t = clock()
                values: list[float | None] = []
                i = 0  # an index loop, not enumerate(): fewer kinds of call
                for reader in readers:
                    self._reading = i
                    try:
                        values.append(reader.read())
                    except Exception as exc:  # noqa: BLE001 - one reader's fault must not stop the others
                        values.append(None)
                        self._record_failure(i, exc)
                    i += 1
                self._reading = -1
                self._stuck = False
                with delivering:
                    if self._closed:  # after stop(): a late sample from a hung read is dropped
                        sample = None
                    else:
                        self.samples += 1
                        self.last = sample = new_sample(Sample, (t, tuple(values)))  # no Python-level __new__
                        deliver(sample)
            except Exception:  # noqa: BLE001 - the thread must survive a faulty consumer
                if once:
                    raise
                _log().exception("carbonstep: sample could not be recorded")
            if once:
                return sample
            if asked:
                for _ in range(asked):
                    _release(waiters.popleft())
            if stopping:
                return None

    # -- the callers' side -------------------------------------------------------------------
    def poll(self) -> Sample | None:
        """A fresh sample: read now (no thread yet), or ask the thread and wait at most ``wait_s``.

        Returns None when no fresh sample came in time (a slow or hung device); the totals then keep the
        last good sample. Once one wait has timed out, later calls do not wait on the same stuck read.
        """
        thread = self._thread
        if thread is None:
            return self._sample()
        if self._stuck or self._stopping or not thread.is_alive():
            return None
        before = self.samples
        if not self._ask_and_wait():
            self._stuck = True
            self.late_polls += 1
            return None
        return self.last if self.samples != before else None

    def _ask_and_wait(self) -> bool:
        """Ask the thread for a sample now; True when it was delivered within ``wait_s``."""
        waiter = threading.Lock()
        waiter.acquire()
        self._waiters.append(waiter)
        _release(self._wake)
        return waiter.acquire(timeout=self.wait_s)

    def start(self) -> None:
        """Start the thread; it takes the first sample at once, and ``start()`` waits for it (bounded)."""
        if self._thread is not None:
            return
        self._wake.acquire()
        self._thread = threading.Thread(target=self._run, name="carbonstep-sampler", daemon=True)
        self._thread.start()
        if not self._ask_and_wait():
            self._stuck = True

    def stop(self, wait_s: float | None = None) -> None:
        """Stop the thread after one last sample (idempotent); wait at most ``wait_s`` without progress.

        Never waits on a lock a reader or an interrupted caller may hold. A read that is slow because other
        threads hold the interpreter keeps moving and is waited for (up to ten bounds); a read that does not
        move for ``wait_s`` is recorded in ``hung`` and any sample it delivers later is dropped.
        """
        thread = self._thread
        if thread is None or self._stopping:
            return
        self._stopping = True
        _release(self._wake)
        join_while_progressing(thread, self.wait_s if wait_s is None else wait_s,
                               lambda: (self.samples, self._reading, *thread_progress(thread)))
        if thread.is_alive():
            if self._reading >= 0:
                self.hung = Hung(self._reading, self._read_started)
        closing = self._delivering.acquire(timeout=self.wait_s)  # a hand-over is pure Python: quick
        self._closed = True
        if closing:
            self._delivering.release()

    @property
    def running(self) -> bool:
        """The thread is sampling (not stopped, not stuck in a read that timed out)."""
        thread = self._thread
        return thread is not None and not self._stopping and thread.is_alive()
