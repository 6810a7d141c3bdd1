"""``carbonstep usage`` over 100,000 report files and over an MLflow store with 10,000 runs: time and peak memory.

    python benchmarks/usage.py [--files 100000] [--runs 10000] [--marks 200] [--cache DIR] [--src DIR]

Report folders are read cold (an empty cache: every file parsed, by a process per CPU), in one process
(``CARBONSTEP_USAGE_WORKERS=1``) and warm (the cache of the cold read): files per second and the load
average (1 minute, before and after) are printed with each. ``--src`` times another checkout's sources
(e.g. the commit before, for a before/after); its commands run without a cache directory of their own.
Beyond 10,000 files the folder is the 10,000-file month copied with new run ids
(``usage_synthetic.replicate_month``): generating a report costs about 50 times more than copying one.

The data is the synthetic month (:mod:`carbonstep.testing.usage_synthetic`), kept in ``--cache`` between
runs. Report files are written with ``RunReport.save`` (multi-rank jobs as a job report beside its ranks').
The MLflow store is SQLite; its runs carry exactly the metrics, params and tags carbonstep's sink logs
(``usage_synthetic.mlflow_run_data``), inserted through MLflow's own SQLAlchemy models in one transaction
(logging 10,000 runs through ``MlflowClient`` takes about 0.1 s per run here, half an hour in all). It is read
whole, then for one user (``--user``: the store searches for that user's runs, the others are never read).

Each ``carbonstep usage`` command runs in a fresh process: the wall time is what a user waits (Python's
start and imports included), the peak memory is that process's maximum resident set size.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
NOVEMBER = datetime(2026, 11, 1, tzinfo=timezone.utc)
ONE_USER = "grace"  #: a user of the synthetic month (about a fifth of its runs)
CHILD = """
import resource, sys, time
from carbonstep.cli import main
code = main(sys.argv[1:])
try:  # reap the forkserver (it reaped the reading processes), so that their CPU time is in RUSAGE_CHILDREN
    from multiprocessing import forkserver
    forkserver._forkserver._stop()
except Exception:
    pass
usage = resource.getrusage(resource.RUSAGE_SELF)
children = resource.getrusage(resource.RUSAGE_CHILDREN)
print("PEAK_KB", max(usage.ru_maxrss, children.ru_maxrss),
      usage.ru_utime + usage.ru_stime + children.ru_utime + children.ru_stime, file=sys.stderr)
sys.exit(code)
"""


SRC = ROOT / "src"


def usage_command(args: list[str], env_extra: dict[str, str] | None = None) -> tuple[float, float, float]:
    """Run ``carbonstep usage ARGS`` in a fresh process: (wall s, CPU s of it and its children, peak MiB)."""
    env = {**os.environ, "PYTHONPATH": str(SRC), "MLFLOW_DISABLE_TELEMETRY": "true", **(env_extra or {})}
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", CHILD, "usage", *args], capture_output=True, text=True, env=env)
    wall_s = time.perf_counter() - start
    if out.returncode:
        raise SystemExit(f"carbonstep usage {' '.join(args)} failed:\n{out.stderr[-3000:]}")
    peak = next(line.split() for line in out.stderr.splitlines() if line.startswith("PEAK_KB"))
    return wall_s, float(peak[2]), int(peak[1]) / 1024


def reports(folder: Path, files: int, marks: int) -> tuple[int, float]:
    """The report folder (written once): (jobs, MiB on disk)."""
    from carbonstep.testing.usage_synthetic import replicate_month, write_month_files

    done = folder / "DONE.txt"
    if not done.exists() and files > 10_000:
        start = time.perf_counter()
        month = folder.parent / f"reports-10000-{marks}"
        jobs_once, _ = reports(month, 10_000, marks)
        written = replicate_month(month, folder, -(-files // 10_000))
        done.write_text(str(jobs_once * -(-files // 10_000)))
        print(f"  copied {written:,} report files in {time.perf_counter() - start:.0f} s")
    elif not done.exists():
        start = time.perf_counter()
        jobs = write_month_files(folder, files, NOVEMBER, seed=1, marks_per_run=marks)
        done.write_text(str(jobs))
        print(f"  wrote {files:,}+ report files ({jobs:,} jobs) in {time.perf_counter() - start:.0f} s")
    size = sum(p.stat().st_size for p in folder.rglob("*.json"))
    return int(done.read_text()), size / 2**20


def mlflow_store(path: Path, runs: int) -> str:
    """A SQLite MLflow store with ``runs`` carbonstep runs (written once)."""
    uri = f"sqlite:///{path}"
    if path.exists():
        return uri
    import mlflow
    from mlflow.entities import RunStatus
    from mlflow.store.tracking.dbmodels import models
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    from carbonstep.testing.usage_synthetic import MonthGenerator, mlflow_run_data

    start = time.perf_counter()
    client = mlflow.MlflowClient(uri)
    store = SqlAlchemyStore(uri, str(path.parent / "artifacts"))
    generator = MonthGenerator(NOVEMBER, seed=2, marks_per_run=1)
    experiments: dict[str, int] = {}
    rows: list[object] = []
    for index in range(runs):
        job = generator.job(index)
        if job.project not in experiments:
            experiments[job.project] = int(client.create_experiment(job.project))
        metrics, params, tags = mlflow_run_data(job)
        report = job.reports[0]
        start_ms = int(datetime.fromisoformat(report.started_at).timestamp() * 1000)
        status = {"completed": RunStatus.FINISHED, "running": RunStatus.RUNNING,
                  "interrupted": RunStatus.KILLED}.get(report.status, RunStatus.FAILED)
        run_uuid = f"{index:032x}"
        rows.append(models.SqlRun(
            run_uuid=run_uuid, name=report.name, user_id=job.user, status=RunStatus.to_string(status),
            start_time=start_ms, end_time=None if report.status == "running" else
            start_ms + int(report.duration_s * 1000), lifecycle_stage="active", source_type="LOCAL",
            source_name="", entry_point_name="", source_version="", artifact_uri=f"{path.parent}/artifacts/{run_uuid}",
            experiment_id=experiments[job.project]))
        rows += [models.SqlTag(key=k, value=v, run_uuid=run_uuid) for k, v in tags.items()]
        rows += [models.SqlParam(key=k, value=v, run_uuid=run_uuid) for k, v in params.items()]
        for key, value in metrics.items():
            rows.append(models.SqlMetric(key=key, value=value, timestamp=start_ms, step=0, is_nan=False,
                                         run_uuid=run_uuid))
            rows.append(models.SqlLatestMetric(key=key, value=value, timestamp=start_ms, step=0, is_nan=False,
                                               run_uuid=run_uuid))
    with store.ManagedSessionMaker() as session:
        session.add_all(rows)
    print(f"  wrote an MLflow store of {runs:,} runs in {time.perf_counter() - start:.0f} s")
    return uri


def load() -> float:
    """The 1-minute load average."""
    return os.getloadavg()[0]


def folder_rows(folder: Path, files: int, jobs: int, mib: float, cache: Path, marks: int,
                other_src: bool) -> list[tuple[str, ...]]:
    """Cold (a process per CPU), in one process, and warm reads of one folder (other sources: one read)."""
    import shutil

    count = sum(1 for _ in folder.rglob("carbonstep-*.json"))  # the report files (not u.json)
    rows: list[tuple[str, ...]] = []
    label = f"{count:,} report files ({jobs:,} jobs, {mib:,.0f} MiB, {marks} marks each)"
    runs = [("cold", {}), ("warm (cache)", {}), ("cold, one process", {"CARBONSTEP_USAGE_WORKERS": "1"})]
    if other_src:
        runs = [(f"sources {SRC}", {})]
    shutil.rmtree(cache, ignore_errors=True)
    for kind, extra in runs:
        if not kind.startswith("warm"):
            shutil.rmtree(cache, ignore_errors=True)
        before = load()
        summary = folder.parent / f"{folder.name}.u.json"  # not in the folder read: it would be read too
        wall_s, cpu_s, peak_mib = usage_command([str(folder), "--by", "user", "--json", str(summary)],
                                                {"CARBONSTEP_USAGE_CACHE": str(cache), **extra})
        total = json.loads(summary.read_text())["total"]
        assert total["runs"] == jobs, (total["runs"], jobs)
        cpu = f"{cpu_s:.1f} s"  # the reading processes' too: the forkserver, which reaped them, is reaped first
        rows.append((f"{label}, {kind}", f"{wall_s:.1f} s", cpu, f"{peak_mib:.0f} MiB",
                     f"{count / wall_s:,.0f}", f"{before:.1f} → {load():.1f}"))
        print("  " + " | ".join(rows[-1]), flush=True)
    return rows


def main() -> int:
    global SRC
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=10_000, help="MLflow runs (0: no MLflow)")
    parser.add_argument("--marks", type=int, default=200, help="step marks per report (default 200)")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "carbonstep-bench-usage")
    parser.add_argument("--src", type=Path, default=SRC, help="the carbonstep sources to time")
    args = parser.parse_args()
    SRC = args.src.resolve()
    args.cache.mkdir(parents=True, exist_ok=True)
    print(f"data in {args.cache}; sources {SRC}; {os.cpu_count()} CPUs")
    results: list[tuple[str, ...]] = []
    for files in sorted({min(10_000, args.files), args.files}):
        folder = args.cache / f"reports-{files}-{args.marks}"
        jobs, mib = reports(folder, files, args.marks)
        results += folder_rows(folder, files, jobs, mib, args.cache / "usage-cache", args.marks,
                               SRC != ROOT / "src")
    if args.runs:
        uri = mlflow_store(args.cache / f"mlflow-{args.runs}.db", args.runs)
        before = load()
        wall_s, cpu_s, peak_mib = usage_command([uri, "--by", "experiment", "--json", str(args.cache / "m.json")])
        assert json.loads((args.cache / "m.json").read_text())["total"]["runs"] == args.runs
        results.append((f"MLflow store (SQLite), {args.runs:,} runs", f"{wall_s:.1f} s", f"{cpu_s:.1f} s",
                        f"{peak_mib:.0f} MiB", f"{args.runs / wall_s:,.0f} runs/s", f"{before:.1f} → {load():.1f}"))
        before = load()  # one user's runs: the store searches for them (the others are never read)
        wall_s, cpu_s, peak_mib = usage_command([uri, "--by", "experiment", "--user", ONE_USER,
                                                 "--json", str(args.cache / "m1.json")])
        runs = json.loads((args.cache / "m1.json").read_text())["total"]["runs"]
        results.append((f"the same, `--user {ONE_USER}` ({runs:,} runs)", f"{wall_s:.1f} s", f"{cpu_s:.1f} s",
                        f"{peak_mib:.0f} MiB", f"{runs / wall_s:,.0f} runs/s", f"{before:.1f} → {load():.1f}"))
    print("\n| `carbonstep usage` over | wall time | CPU time | peak memory (RSS) | files/s | load average |")
    print("|---|---|---|---|---|---|")
    for row in results:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
