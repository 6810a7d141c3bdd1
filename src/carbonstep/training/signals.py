"""The session's end when the process ends first: SIGTERM (a scheduler's preemption) and interpreter exit."""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Any


class EndOnSignal:
    """Part of :class:`~carbonstep.training.session.TrainingSession`: the report is written however the run ends."""

    _previous_sigterm: Any
    _ending: bool
    _deferred_signal: int | None
    report: Any
    tracker: Any

    def end(self, status: str = "completed") -> Any:  # pragma: no cover - TrainingSession's
        raise NotImplementedError

    def _catch_sigterm(self) -> None:
        """On SIGTERM (a scheduler's preemption, ``kill``): write the report marked wasted, then do what the
        signal did before (the framework's handler, or terminate)."""
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread
        try:
            self._previous_sigterm = signal.signal(signal.SIGTERM, self._on_sigterm)
        except ValueError:
            self._previous_sigterm = None

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        """Write the report, then do what SIGTERM did before. Never waits on a lock the interrupted code may
        hold: the tracker's reads are on its own thread and every wait is bounded. If ``end()`` was already
        under way on this thread, the signal waits until it has written the report."""
        if self._ending:
            self._deferred_signal = signum
            return
        previous = self._previous_sigterm
        self._restore_sigterm()
        if self.report is None and self.tracker.running:
            self.end("interrupted")
        self._forward_sigterm(previous, signum, frame)

    @staticmethod
    def _forward_sigterm(previous: Any, signum: int, frame: Any) -> None:
        if callable(previous):
            previous(signum, frame)
        elif previous in (signal.SIG_DFL, None):
            os.kill(os.getpid(), signum)  # the default action, now that the report is safe

    def _restore_sigterm(self) -> None:
        if self._previous_sigterm is not None and threading.current_thread() is threading.main_thread():
            if signal.getsignal(signal.SIGTERM) == self._on_sigterm:
                signal.signal(signal.SIGTERM, self._previous_sigterm)
            self._previous_sigterm = None

    def _end_at_exit(self) -> None:
        """The interpreter exits with the session open: an uncaught exception, Ctrl-C, ``sys.exit``."""
        if self.report is None and self.tracker.running:  # not running in a forked child
            uncaught = getattr(sys, "last_type", None)  # set by Python for an exception nobody caught
            interrupted = uncaught is not None and issubclass(uncaught, KeyboardInterrupt)
            self.end("interrupted" if interrupted else "failed")


__all__ = ["EndOnSignal"]
