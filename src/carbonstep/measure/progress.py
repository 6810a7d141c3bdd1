"""Telling a slow thread from a stuck one: a bounded join that waits on progress, not on the clock alone.

A read that blocks in the device (a hung driver call) sits in one C call and is never scheduled. A read
that is merely slow because other Python threads hold the interpreter (16 threads spinning in a training
loop) runs a little each time it gets the GIL, and wakes every switch interval to ask for it. On Linux the
thread's own scheduler counts (``/proc/self/task/<tid>/schedstat``) are the measure of progress; elsewhere,
the thread's innermost frame and instruction (coarser: a loop that waits in the same call at every look
reads as stuck). A thread is given up on only
after a whole ``bound_s`` without progress, and a thread that keeps moving is waited for up to ``cap_s`` in
all (a read looping forever in Python still cannot hold ``stop()`` for longer).
"""

from __future__ import annotations

import sys
import threading
import time

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: a run imports no typing
if TYPE_CHECKING:
    from typing import Any, Callable

POLL_S = 0.1  #: how often the stopping thread looks at the other's progress
CAP_FACTOR = 10.0  #: a thread that keeps moving is waited for up to this many bounds in all


def thread_progress(thread: threading.Thread) -> tuple[Any, ...]:
    """How far ``thread`` has got: its CPU time and run count from Linux's per-thread ``schedstat`` (a thread
    waiting for the GIL also wakes every switch interval to ask for it), else :func:`frame_position`."""
    try:
        with open(f"/proc/self/task/{thread.native_id}/schedstat", "rb") as stat:
            return tuple(stat.read().split()[::2])  # ns on a CPU, and times run (the wait between is skipped)
    except (OSError, TypeError):  # not Linux, or the thread has ended
        return frame_position(thread)


def frame_position(thread: threading.Thread) -> tuple[Any, ...]:
    """Where ``thread`` is now: its innermost frame and the instruction in it (empty when not running)."""
    frame = sys._current_frames().get(thread.ident or -1)
    if frame is None:
        return ()
    return (frame, frame.f_lasti)  # the frame itself (not its id): a frame freed and reused is not the same


def join_while_progressing(thread: threading.Thread, bound_s: float,
                           progress: Callable[[], tuple[Any, ...]], cap_s: float | None = None) -> bool:
    """Join ``thread``: give up after ``bound_s`` without progress, or ``cap_s`` (default 10 bounds) in all.

    ``progress()`` says how far the thread is (e.g. :func:`thread_progress` plus its own counters); any change
    between two looks is progress. True when the thread ended.
    """
    started = time.monotonic()
    cap = started + (bound_s * CAP_FACTOR if cap_s is None else max(cap_s, bound_s))
    window_ends = started + bound_s
    last = progress()
    moved = False
    while True:
        now = time.monotonic()
        thread.join(max(0.0, min(POLL_S, window_ends - now, cap - now)))
        if not thread.is_alive():
            return True
        position = progress()
        if position != last:
            moved, last = True, position
        now = time.monotonic()
        if now >= cap:
            return False
        if now >= window_ends:
            if not moved:
                return False  # a whole bound without moving: stuck, not slow
            moved, window_ends = False, now + bound_s
