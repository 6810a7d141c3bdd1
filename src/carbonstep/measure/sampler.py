"""The one background thread that polls every reader at a fixed interval."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable, Sequence

from carbonstep.measure.readers.base import Reader

log = logging.getLogger("carbonstep")


@dataclass(frozen=True, slots=True)
class Sample:
    """One poll: monotonic time and each reader's value (None where the read failed)."""

    t: float
    values: tuple[float | None, ...]


class Sampler:
    """Polls ``readers`` every ``interval_s`` and hands each :class:`Sample` to ``deliver``.

    A fixed-deadline loop on ``time.monotonic()`` sleeping on a lock that ``stop()`` releases, so stop is
    immediate. A reader that raises is isolated: its value is None, the failure is counted
    and logged once, and the other readers go on. ``poll()`` takes a sample on the
    caller's thread (used at epoch ends and at stop); the two never interleave.
    """

    def __init__(
        self,
        readers: Sequence[Reader],
        deliver: Callable[[Sample], None],
        interval_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be > 0")
        self.readers = tuple(readers)
        self.interval_s = interval_s
        self.failures = [0] * len(self.readers)
        self.first_failure: list[str | None] = [None] * len(self.readers)
        self.samples = 0
        self._deliver = deliver
        self._clock = clock
        self._lock = threading.Lock()
        self._wake = threading.Lock()  # held while running; released by stop(). Cheaper to wait on than an Event.
        self._thread: threading.Thread | None = None

    def _read_all(self) -> tuple[float | None, ...]:
        values: list[float | None] = []
        for i, reader in enumerate(self.readers):
            try:
                values.append(reader.read())
            except Exception as exc:  # noqa: BLE001 - one reader's fault must not stop the others
                values.append(None)
                self.failures[i] += 1
                if self.first_failure[i] is None:
                    self.first_failure[i] = f"{type(exc).__name__}: {exc}"
                    log.warning("carbonstep: reader %s failed: %s", reader.name, exc)
        return tuple(values)

    def poll(self) -> Sample:
        """Read every reader now and deliver the sample."""
        with self._lock:
            sample = Sample(self._clock(), self._read_all())
            self.samples += 1
            self._deliver(sample)
            return sample

    def _run(self) -> None:
        deadline = self._clock()
        while True:
            deadline += self.interval_s
            now = self._clock()
            if deadline < now:  # we fell behind (suspend, overload): do not burst to catch up
                deadline = now + self.interval_s
            if self._wake.acquire(timeout=deadline - now):
                return
            try:
                self.poll()
            except Exception:  # noqa: BLE001 - the thread must survive a faulty consumer
                log.exception("carbonstep: sample could not be recorded")

    def start(self) -> None:
        if self._thread is not None:
            return
        self.poll()
        self._wake.acquire()
        self._thread = threading.Thread(target=self._run, name="carbonstep-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread (idempotent) and take a last sample."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._wake.release()
        thread.join()
        if self._lock.acquire(timeout=0.5):  # held only if stop() interrupted a poll (a signal handler)
            self._lock.release()
            self.poll()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()
