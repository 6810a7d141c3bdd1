#!/usr/bin/env python3
"""carbonstep against its peers (CodeCarbon, Carbontracker, Zeus), in one run, as ratios; a markdown table.

    bash benchmarks/peers_venv.sh                  # once: the peers in benchmarks/.peers-venv (ignored by git)
    .venv/bin/python benchmarks/peers.py           # or: .venv/bin/python benchmarks/run.py --peers

Every figure is a median over ``--runs`` fresh processes, taken in alternation (carbonstep, then each peer) so
that the load of this shared machine falls on both sides of a ratio. CPU time (the child's rusage, the sampler
thread's schedstat) is the figure compared; wall time is shown beside it. Each measurement is one
``benchmarks/peer_probe.py`` process run by the interpreter that has the tool.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PROBE = str(HERE / "peer_probe.py")
PEERS_PYTHON = HERE / ".peers-venv" / "bin" / "python"
OURS_PYTHON = Path(sys.executable)


def _env() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), MLFLOW_DISABLE_TELEMETRY="true")
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as users run: compiled modules cached
    return env


def python_of(tool: str) -> str:
    return str(OURS_PYTHON if tool == "carbonstep" else PEERS_PYTHON)


def run_child(argv: list[str]) -> tuple[float, float, float, str]:
    """(wall s, CPU s, peak RSS MiB, stdout) of one child process, from its own rusage (os.wait4)."""
    start = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=_env(), cwd=ROOT)
    assert child.stdout is not None
    out = child.stdout.read().decode()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if child.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({child.returncode}): {out[-500:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out


def probe(tool: str, *args: str) -> dict[str, float]:
    """One peer_probe measurement: ``args`` is what to measure and its arguments (see peer_probe.py)."""
    *_, out = run_child([python_of(tool), PROBE, args[0], tool, *args[1:]])
    line = [x for x in out.splitlines() if x.startswith("PROBE ")][-1]
    return json.loads(line[6:])


IMPORTS = {
    "carbonstep": "from carbonstep import Tracker",
    "codecarbon": "from codecarbon import OfflineEmissionsTracker",
    "carbontracker": "from carbontracker.tracker import CarbonTracker",
    "zeus": "from zeus.monitor import ZeusMonitor",
}


def import_costs(tools: list[str], runs: int) -> dict[str, tuple[float, float]]:
    """(wall ms, CPU ms) of each tool's import over a bare interpreter (the same interpreter), medians."""
    samples: dict[str, list[tuple[float, float]]] = {}
    for tool in tools:  # one warm-up each: compiled modules written, files in the page cache
        run_child([python_of(tool), "-c", IMPORTS[tool]])
    for _ in range(runs):
        for tool in tools:
            bare = run_child([python_of(tool), "-c", "pass"])
            used = run_child([python_of(tool), "-c", IMPORTS[tool]])
            samples.setdefault(tool, []).append((used[0] - bare[0], used[1] - bare[1]))
    return {tool: (statistics.median(w for w, _ in s) * 1e3, statistics.median(c for _, c in s) * 1e3)
            for tool, s in samples.items()}


def medians(results: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(r[key] for r in results) for key in results[0]}


def alternate(jobs: dict[str, list[str]], runs: int) -> dict[str, dict[str, float]]:
    """Each job ``runs`` times, in alternation; medians of each figure."""
    found: dict[str, list[dict[str, float]]] = {name: [] for name in jobs}
    for _ in range(runs):
        for name, (tool, *args) in jobs.items():
            found[name].append(probe(tool, *args))
    return {name: medians(results) for name, results in found.items()}


def peak_rss(tools: list[str], runs: int) -> dict[str, float]:
    """Peak RSS (MiB) of import, start, 2 s at 0.1 s, stop, over the same interpreter doing nothing for 2 s."""
    found: dict[str, list[float]] = {}
    for _ in range(runs):
        for tool in tools:
            bare = run_child([python_of(tool), PROBE, "rss", "none"])[2]
            used = run_child([python_of(tool), PROBE, "rss", tool])[2]
            found.setdefault(tool, []).append(used - bare)
    return {tool: statistics.median(v) for tool, v in found.items()}


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="fresh processes per figure (median)")
    parser.add_argument("--rounds", type=int, default=3, help="sampler windows per figure (median)")
    parser.add_argument("--window", type=float, default=3.0, help="seconds of each sampler window at 0.1 s")
    parser.add_argument("--default-window", type=float, default=30.0,
                        help="seconds of each sampler window at the tools' default intervals")
    args = parser.parse_args(argv)
    if not PEERS_PYTHON.exists():
        raise SystemExit("no benchmarks/.peers-venv: run `bash benchmarks/peers_venv.sh` first")
    print(f"load average at the start: {load()}", flush=True)
    imports = import_costs(["carbonstep", "codecarbon"], args.runs)
    cold = alternate({t: [t, "cold"] for t in ("carbonstep", "zeus", "carbontracker", "codecarbon")}, args.runs)
    trained = alternate({t: [t, "cold-in-training"] for t in ("carbonstep", "zeus")}, args.runs)
    fine = alternate({"carbonstep": ["carbonstep", "sampler", "0.1", str(args.window)],
                      "carbontracker": ["carbontracker", "sampler", "0.1", str(args.window)]}, args.rounds)
    default = alternate({"carbonstep": ["carbonstep", "sampler", "default", str(args.default_window)],
                         "carbontracker": ["carbontracker", "sampler", "default", str(args.default_window)]},
                        args.rounds)
    kids = alternate({n: ["carbonstep", "sampler", "0.1", str(args.window), str(n)] for n in (0, 8, 32)},
                     args.rounds)
    rss = peak_rss(["carbonstep", "codecarbon"], max(3, args.runs // 2))
    print(f"load average at the end: {load()}\n")
    ours, cc = imports["carbonstep"], imports["codecarbon"]
    zeus, ct = cold["zeus"], cold["carbontracker"]
    rows = [
        ("import (`from carbonstep import Tracker`), ms over a bare interpreter, CPU (wall)",
         f"{ours[1]:.1f} ({ours[0]:.1f})", f"CodeCarbon {cc[1]:.1f} ({cc[0]:.1f})",
         f"{ours[1] / cc[1]:.2f}x", "≤ 0.25x"),
        ("cold start()+stop() after the import, ms CPU (wall)",
         f"{cold['carbonstep']['cpu_ms']:.1f} ({cold['carbonstep']['wall_ms']:.1f})",
         f"Zeus {zeus['cpu_ms']:.1f} ({zeus['wall_ms']:.1f}); Carbontracker {ct['cpu_ms']:.0f} ({ct['wall_ms']:.0f}); "
         f"CodeCarbon {cold['codecarbon']['cpu_ms']:.0f} ({cold['codecarbon']['wall_ms']:.0f})",
         f"{cold['carbonstep']['cpu_ms'] / zeus['cpu_ms']:.1f}x Zeus", "≤ 30 ms or ≤ 3x Zeus"),
        ("the same with the standard library a PyTorch process has loaded already imported, ms CPU (wall)",
         f"{trained['carbonstep']['cpu_ms']:.1f} ({trained['carbonstep']['wall_ms']:.1f})",
         f"Zeus {trained['zeus']['cpu_ms']:.1f} ({trained['zeus']['wall_ms']:.1f})",
         f"{trained['carbonstep']['cpu_ms'] / trained['zeus']['cpu_ms']:.1f}x Zeus", "(context)"),
        ("sampler thread CPU per sample at 0.1 s, ms", f"{fine['carbonstep']['ms_per_sample']:.3f}",
         f"Carbontracker {fine['carbontracker']['ms_per_sample']:.3f}",
         f"{fine['carbonstep']['ms_per_sample'] / fine['carbontracker']['ms_per_sample']:.2f}x", "≤ 1x"),
        ("sampler thread CPU per second at the default interval, ms", f"{default['carbonstep']['ms_per_second']:.3f}",
         f"Carbontracker {default['carbontracker']['ms_per_second']:.3f} (1 s)",
         f"{default['carbonstep']['ms_per_second'] / default['carbontracker']['ms_per_second']:.2f}x", "≤ 1x"),
        ("sampler CPU per sample at 0.1 s with 0 / 8 / 32 idle children, ms",
         " / ".join(f"{kids[n]['ms_per_sample']:.3f}" for n in (0, 8, 32)), "—",
         f"{kids[32]['ms_per_sample'] / kids[0]['ms_per_sample']:.2f}x (32 / 0)", "≤ 2x"),
        ("peak RSS over a bare interpreter (import, start, 2 s at 0.1 s, stop), MiB", f"+{rss['carbonstep']:.1f}",
         f"CodeCarbon +{rss['codecarbon']:.1f}", f"{rss['carbonstep'] / rss['codecarbon']:.2f}x", ""),
    ]
    print("| figure | carbonstep | peer | ratio | target |")
    print("|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(f"\nruns {args.runs}, sampler rounds {args.rounds} ({args.window:g} s at 0.1 s, {args.default_window:g} s at "
          f"the defaults); samples at the defaults: carbonstep {default['carbonstep']['samples']:.0f}, "
          f"Carbontracker {default['carbontracker']['samples']:.0f} per window")


if __name__ == "__main__":
    main()
