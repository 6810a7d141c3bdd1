"""Public test doubles: test code that uses carbonstep without a GPU or RAPL.

>>> from carbonstep import Tracker
>>> from carbonstep.testing import ScriptedReader
>>> gpu = ScriptedReader("gpu:0", "gpu", watts=lambda t: 300.0)
>>> with Tracker(intensity=100, readers=[gpu], interval_s=0.01) as tracker:
...     tracker.mark(step=1)
"""

from __future__ import annotations

import time
from typing import Callable

from carbonstep.measure.readers.base import Domain, Kind, Method, Scope, Share


class ManualClock:
    """A clock that moves only when told to (``advance``); pass ``clock`` to Sampler/EnergyTotals."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        """The current time in seconds."""
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds``."""
        self.now += seconds


class ScriptedReader:
    """A reader whose power follows ``watts(t)`` (t: seconds since creation).

    ``kind="power"`` returns the watts; ``kind="counter"`` returns the exact integral
    (joules), accumulated in small steps, optionally wrapping at ``wrap_j``.
    ``fail_after_s`` makes reads raise from that time on (a lost device).
    """

    def __init__(
        self,
        name: str,
        domain: str | Domain,
        watts: Callable[[float], float],
        kind: str | Kind = Kind.POWER,
        clock: Callable[[], float] = time.monotonic,
        wrap_j: float | None = None,
        fail_after_s: float | None = None,
        scope: str | Scope = Scope.PROCESS,
    ) -> None:
        self.name = name
        self.scope = Scope(scope)
        self.domain = Domain(domain)
        self.kind = Kind(kind)
        self.method = Method.POWER if self.kind is Kind.POWER else Method.COUNTER
        self.share = Share.NONE
        self.wrap_j = wrap_j
        self.description = f"scripted {self.kind.value} reader"
        self.watts = watts
        self.clock = clock
        self.t0 = clock()
        self.fail_after_s = fail_after_s
        self.reads = 0
        self._energy_j = 0.0
        self._last_t = 0.0
        self.closed = False

    def _integrate_to(self, t: float, step: float = 1e-3) -> None:
        while self._last_t < t:
            dt = min(step, t - self._last_t)
            mid = self._last_t + dt / 2
            self._energy_j += self.watts(mid) * dt
            self._last_t += dt

    def read(self) -> float:
        """Watts (power) or cumulative joules (counter) at the clock's current time."""
        t = self.clock() - self.t0
        self.reads += 1
        if self.fail_after_s is not None and t >= self.fail_after_s:
            raise OSError(f"{self.name} is gone")
        if self.kind is Kind.POWER:
            return self.watts(t)
        self._integrate_to(t)
        return self._energy_j % self.wrap_j if self.wrap_j else self._energy_j

    def close(self) -> None:
        """Nothing to release."""
        self.closed = True


class CounterReader:
    """A reader whose cumulative energy (joules) is whatever ``joules()`` returns, e.g. a function of the
    steps a model has taken: budgets and epoch costs become deterministic in tests. ``scope="node"`` makes it
    stand for a machine-wide counter (RAPL), ``"device"`` for a GPU."""

    kind = Kind.COUNTER
    method = Method.COUNTER
    share = Share.NONE
    wrap_j = None

    def __init__(self, name: str, domain: str | Domain, joules: Callable[[], float],
                 scope: str | Scope = Scope.PROCESS) -> None:
        self.name = name
        self.scope = Scope(scope)
        self.domain = Domain(domain)
        self.description = f"test counter {name}"
        self.joules = joules

    def read(self) -> float:
        """Cumulative joules from the callable."""
        return self.joules()

    def close(self) -> None:
        """Nothing to release."""
        pass
