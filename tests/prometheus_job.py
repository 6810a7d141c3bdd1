"""A tiny training job under carbonstep that pushes to a Pushgateway while it trains (run by test_prometheus).

``python prometheus_job.py GATEWAY OUT_DIR PROJECT`` trains a small torch model for three seconds on the CPU with
a real Tracker (this machine's readers), pushes every 0.3 s, pushes the final report, and prints the report's path.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path


def main() -> int:
    import torch

    from carbonstep import Tracker
    from carbonstep.sinks.prometheus import LivePusher

    gateway, out, project = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.GELU(), torch.nn.Linear(128, 1))
    optimiser = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(512, 64), torch.randn(512, 1)
    tracker = Tracker(intensity=300, interval_s=0.2, output_dir=out, name="tiny")
    tracker.start()
    pusher = LivePusher(gateway, tracker, every_s=0.3, project=project, timeout_s=10.0).start()
    end, epoch = time.monotonic() + 3.0, 0
    while time.monotonic() < end:  # long enough for Prometheus (1 s scrapes) to see the counters start at zero
        epoch += 1
        for step in range(8):
            optimiser.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x[step * 64:(step + 1) * 64]), y[step * 64:(step + 1) * 64])
            loss.backward()
            optimiser.step()
            tracker.mark(step=step, epoch=epoch, count=64)
        tracker.mark("epoch_end", epoch=epoch)
    report = tracker.stop()
    errors = pusher.finish(report)
    print(tracker.report_path)
    print(f"pushes={pusher.pushes} errors={errors}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
