"""Slurm for real: a one-host slurmctld + slurmd (started here) runs a 2-task ``srun`` job of gloo DDP Lightning
training with the callback. One job total, nothing counted twice, no rank overwriting another; the report and the
MLflow run carry Slurm's job id, user, account, partition and node list; ``usage --by account|partition`` groups it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

import pytest

from carbonstep.report.record import RunReport
from tests.slurm_cluster import Cluster, missing

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(bool(missing()), reason=f"needs the Debian packages {', '.join(missing())} (.ci/run "
                                               "installs them)"),
    pytest.mark.timeout(900),
    pytest.mark.skipif(os.geteuid() != 0, reason="slurmd runs jobs as root here (SlurmUser=root): needs root"),
]
ROOT = Path(__file__).parents[1]
KWH = 3.6e6


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    slurm = Cluster(tmp_path_factory.mktemp("slurm")).start()
    yield slurm
    slurm.stop()


@pytest.fixture(scope="module")
def job(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("slurm-job")
    out.chmod(0o755)
    uri = f"sqlite:///{out}/mlflow.db"
    from mlflow.tracking import MlflowClient

    MlflowClient(uri).search_experiments()  # the store's tables made once: two tasks migrating it at once collide
    env = {**cluster.env, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}", "MLFLOW_DISABLE_TELEMETRY": "true"}
    script = str(ROOT / "tests" / "slurm_job.py")
    run = subprocess.run(["srun", "--ntasks=2", "--ntasks-per-node=2", "--job-name=train", "--account=vision-lab",
                          "--partition=debug", "--time=12", "--chdir", str(out), sys.executable, script, str(out), uri],
                         env=env, capture_output=True, text=True, timeout=780)  # two Lightning imports on 2 CPUs
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    return {"out": out, "uri": uri, "ranks": ranks, "env": env, "cluster": cluster}


def test_one_job_total_no_double_count_no_overwrite(job: dict[str, Any]) -> None:
    ranks = job["ranks"]
    assert [r["world_size"] for r in ranks] == [2, 2]
    reports = sorted(p.name for p in (job["out"] / "reports").glob("carbonstep-*.json"))
    run_id = RunReport.load(ranks[0]["report"]).run_id
    assert reports == sorted(f"carbonstep-{run_id}{suffix}.json" for suffix in ("", "-rank0", "-rank1"))
    own = [RunReport.from_dict(r["rank_report"]) for r in ranks]
    assert own[0].energy_kwh * KWH == pytest.approx(8 * (100 + 50))  # the node counter on the leader only
    assert own[1].energy_kwh * KWH == pytest.approx(8 * 200)
    total = RunReport.load(ranks[0]["report"])
    assert total.energy_kwh * KWH == pytest.approx(2800)
    assert total.co2_kg == pytest.approx(own[0].co2_kg + own[1].co2_kg)
    assert [p["label"] for p in total.extra["parts"]] == ["rank0", "rank1"]
    print(f"Slurm job: {total.energy_kwh * KWH:.1f} J, {total.co2_kg * 1000:.4f} g CO2e, {total.water_l:.6f} L, "
          f"{total.duration_s:.2f} s; ranks {[round(r.energy_kwh * KWH, 1) for r in own]} J")


def test_report_and_mlflow_carry_slurms_job(job: dict[str, Any]) -> None:
    total = RunReport.load(job["ranks"][0]["report"])
    slurm = total.extra["slurm"]
    assert slurm["job_id"].isdigit() and slurm["user"] == "root" and slurm["account"] == "vision-lab"
    assert slurm["partition"] == "debug" and slurm["nodelist"] == "localhost" and slurm["ntasks"] == "2"
    from mlflow.tracking import MlflowClient

    client = MlflowClient(job["uri"])
    (run,) = client.search_runs([client.get_experiment_by_name("slurm").experiment_id])
    tags = run.data.tags
    assert {k: tags.get(f"slurm.{k}") for k in ("job_id", "user", "account", "partition", "nodelist")} == {
        "job_id": slurm["job_id"], "user": "root", "account": "vision-lab", "partition": "debug",
        "nodelist": "localhost"}


@pytest.mark.parametrize("by, group", [("account", "vision-lab"), ("partition", "debug")])
def test_usage_groups_the_job_by_account_and_partition(job: dict[str, Any], by: str, group: str) -> None:
    out = job["out"] / f"usage-{by}.json"
    run = subprocess.run([sys.executable, "-m", "carbonstep.cli", "usage", str(job["out"] / "reports"), "--by", by,
                          "--json", str(out)], env=job["env"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    data = json.loads(out.read_text())
    assert [(g[by], g["runs"]) for g in data["groups"]] == [(group, 1)]
    assert data["total"]["energy_kwh"] * KWH == pytest.approx(2800, rel=1e-3)


def _slurm_time(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_slurms_own_record_of_the_job_covers_the_measured_time(job: dict[str, Any]) -> None:
    """sacct needs slurmdbd (and a database), which this one-host set-up does not run: it says accounting is
    disabled. Slurm's job-completion log (jobcomp/filetxt) records the job's start and end: the measured run lies
    within them."""
    cluster: Cluster = job["cluster"]
    total = RunReport.load(job["ranks"][0]["report"])
    sacct = subprocess.run(["sacct", "-j", total.extra["slurm"]["job_id"]], env=cluster.env, capture_output=True,
                           text=True, timeout=30)
    print(f"sacct: {(sacct.stdout + sacct.stderr).strip()}")
    line = next(line for line in (cluster.root / "jobcomp.txt").read_text().splitlines()
                if f"JobId={total.extra['slurm']['job_id']} " in line)
    fields = dict(re.findall(r"(\w+)=(\S+)", line))
    elapsed_s = _slurm_time(fields["EndTime"]) - _slurm_time(fields["StartTime"])
    print(f"jobcomp: {elapsed_s:.0f} s elapsed ({fields['StartTime']} to {fields['EndTime']}), state "
          f"{fields['JobState']}; carbonstep measured {total.duration_s:.2f} s")
    assert fields["JobState"] == "COMPLETED"
    assert 0 < total.duration_s <= elapsed_s + 1.0  # Slurm's times are whole seconds
