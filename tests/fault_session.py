"""A training loop on a TrainingSession that meets a fault, for test_faults.py.

    python tests/fault_session.py MODE OUT_DIR      MODE: sigterm | keyboard | fork | signals | hung | raising

Energy is 10 J per step (a counter), so the report's figure is known exactly. ``signals``: a device whose
read takes 0.3 s, a validation (a fresh sample) every 4 steps, an epoch every 12: the parent sends SIGTERM or
SIGINT at a random moment. ``hung``: the device stops answering at its 10th read. ``raising``: it raises from
its 10th read on. Each step's number is written to OUT_DIR/progress, so the parent knows how far training got.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

from carbonstep.errors import CarbonstepError
from carbonstep.testing import CounterReader
from carbonstep.training.options import TrainingOptions
from carbonstep.training.session import TrainingSession

SLOW_READ_S = 0.3
FAULT_AT_READ = 10


def _device(mode: str, steps: list[int]) -> CounterReader:
    reads = [0]

    def joules() -> float:
        reads[0] += 1
        if mode == "signals":
            time.sleep(SLOW_READ_S)
        if mode == "hung" and reads[0] >= FAULT_AT_READ:
            threading.Event().wait()  # never answers
        if mode == "raising" and reads[0] >= FAULT_AT_READ:
            raise OSError("GPU is lost")
        return steps[0] * 10.0

    return CounterReader("steps", "gpu", joules)


def main() -> None:
    mode, out = sys.argv[1], Path(sys.argv[2])
    steps = [0]
    interval = 0.05 if mode in ("signals", "hung", "raising") else 0.02
    options = TrainingOptions(intensity=100.0, tracker={"readers": [_device(mode, steps)], "interval_s": interval},
                              summary=False)
    session = TrainingSession(options)
    session.begin(None, out, 1)
    progress = os.open(out / "progress", os.O_WRONLY | os.O_CREAT, 0o644)
    for step in range(1, 10**9):
        steps[0] = step
        os.pwrite(progress, f"{step:>12}".encode(), 0)
        session.step(step, step // 12)
        if step == 5:
            (out / "ready").write_text("training")  # the test may now send the signal
        if mode in ("signals", "hung", "raising"):
            if step % 4 == 0:
                session.validation(step, {"val_loss": 1.0 / step})  # a fresh sample: waits on the device
            if step % 12 == 11:
                session.epoch_end(step // 12, step)
            if step == (400 if mode == "signals" else 40):
                session.end("completed")
                return
        if mode == "keyboard" and step == 50:
            raise KeyboardInterrupt  # uncaught, as a Ctrl-C in a script
        if mode == "fork" and step == 20:
            child = os.fork()
            if child == 0:  # a forked worker: its marks are its own, it cannot end the parent's run
                session.step(step, 0)
                try:
                    session.tracker.stop()
                    outcome = "stopped"
                except CarbonstepError as exc:
                    outcome = str(exc)
                (out / "child.json").write_text(json.dumps({"stop": outcome, "running": session.tracker.running}))
                sys.exit(0)  # a normal exit runs atexit handlers in the child too
            os.waitpid(child, 0)
        if mode == "fork" and step == 40:
            session.end("completed")
            return
        time.sleep(0.002)


if __name__ == "__main__":
    main()
