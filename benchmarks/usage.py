"""``carbonstep usage`` over 10,000 report files and over an MLflow store with 10,000 runs: time and peak memory.

    python benchmarks/usage.py [--files 10000] [--runs 10000] [--marks 200] [--cache DIR]

The data is the synthetic month (:mod:`carbonstep.testing.usage_synthetic`), kept in ``--cache`` between
runs. Report files are written with ``RunReport.save`` (multi-rank jobs as a job report beside its ranks').
The MLflow store is SQLite; its runs carry exactly the metrics, params and tags carbonstep's sink logs
(``usage_synthetic.mlflow_run_data``), inserted through MLflow's own SQLAlchemy models in one transaction
(logging 10,000 runs through ``MlflowClient`` takes about 0.1 s per run here, half an hour in all).

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
CHILD = """
import resource, sys, time
from carbonstep.cli import main
code = main(sys.argv[1:])
usage = resource.getrusage(resource.RUSAGE_SELF)
print("PEAK_KB", usage.ru_maxrss, usage.ru_utime + usage.ru_stime, file=sys.stderr)
sys.exit(code)
"""


def usage_command(args: list[str]) -> tuple[float, float, float]:
    """Run ``carbonstep usage ARGS`` in a fresh process: (wall s, CPU s, peak MiB)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "MLFLOW_DISABLE_TELEMETRY": "true"}
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", CHILD, "usage", *args], capture_output=True, text=True, env=env)
    wall_s = time.perf_counter() - start
    if out.returncode:
        raise SystemExit(f"carbonstep usage {' '.join(args)} failed:\n{out.stderr[-3000:]}")
    peak = next(line.split() for line in out.stderr.splitlines() if line.startswith("PEAK_KB"))
    return wall_s, float(peak[2]), int(peak[1]) / 1024


def reports(folder: Path, files: int, marks: int) -> tuple[int, float]:
    """The report folder (written once): (jobs, MiB on disk)."""
    from carbonstep.testing.usage_synthetic import write_month_files

    done = folder / "DONE.txt"
    if not done.exists():
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--marks", type=int, default=200, help="step marks per report (default 200)")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "carbonstep-bench-usage")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    print(f"data in {args.cache}")
    results = []
    for files in sorted({args.files // 10, args.files}):
        folder = args.cache / f"reports-{files}-{args.marks}"
        jobs, mib = reports(folder, files, args.marks)
        wall_s, cpu_s, peak_mib = usage_command([str(folder), "--by", "user", "--json", str(folder / "u.json")])
        total = json.loads((folder / "u.json").read_text())["total"]
        assert total["runs"] == jobs, (total["runs"], jobs)
        results.append((f"{files:,} report files ({jobs:,} jobs, {mib:,.0f} MiB, {args.marks} marks each)",
                        wall_s, cpu_s, peak_mib))
    uri = mlflow_store(args.cache / f"mlflow-{args.runs}.db", args.runs)
    wall_s, cpu_s, peak_mib = usage_command([uri, "--by", "experiment", "--json", str(args.cache / "m.json")])
    assert json.loads((args.cache / "m.json").read_text())["total"]["runs"] == args.runs
    results.append((f"MLflow store (SQLite), {args.runs:,} runs", wall_s, cpu_s, peak_mib))
    wall_s, cpu_s, peak_mib = usage_command([str(args.cache / f"reports-{args.files}-{args.marks}"), uri, "--by",
                                         "month,user", "--html", str(args.cache / "u.html")])
    results.append(("both at once, with the HTML page", wall_s, cpu_s, peak_mib))
    print(f"\nload average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print("\n| `carbonstep usage` over | wall time | CPU time | peak memory (RSS) |\n|---|---|---|---|")
    for label, wall_s, cpu_s, peak_mib in results:
        print(f"| {label} | {wall_s:.1f} s | {cpu_s:.1f} s | {peak_mib:.0f} MiB |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
