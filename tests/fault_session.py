"""A training loop on a TrainingSession that meets a fault, for test_faults.py.

    python tests/fault_session.py MODE OUT_DIR      MODE: sigterm | keyboard | fork

Energy is 10 J per step (a counter), so the report's figure is known exactly.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from carbonstep.callbacks.session import TrainingSession
from carbonstep.errors import CarbonstepError
from carbonstep.testing import CounterReader


def main() -> None:
    mode, out = sys.argv[1], Path(sys.argv[2])
    steps = [0]
    reader = CounterReader("steps", "gpu", lambda: steps[0] * 10.0)
    session = TrainingSession({"intensity": 100.0, "readers": [reader], "interval_s": 0.02}, summary=False)
    session.begin(None, out, 1)
    for step in range(1, 10**9):
        steps[0] = step
        session.step(step, 0)
        if step == 5:
            (out / "ready").write_text("training")  # sigterm: the test may now send the signal
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
