"""A lab's shared folders: reports and ledgers honour the umask, every process of a job writes its own file, and a
second Unix user's ``carbonstep usage`` sees the runs of everyone who wrote there."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from carbonstep import Tracker
from carbonstep.measure.distributed import Place, rank_path
from carbonstep.mlflow_io.ledger import Ledger
from carbonstep.report.merge import merge
from carbonstep.report.record import RunReport, current_umask, write_atomic
from carbonstep.testing import ManualClock, ScriptedReader

SRC = Path(__file__).parents[1] / "src"


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_reports_and_ledgers_get_the_mode_the_umask_gives(tmp_path: Path, mask: int, mode: int) -> None:
    previous = os.umask(mask)
    try:
        assert current_umask() == mask
        report = write_atomic(tmp_path / "r.json", "{}")
        ledger = Ledger(tmp_path / "ledger.jsonl", "s1", {"tracking_uri": "file:x"})
        assert ledger.append([{"type": "metric", "x": 1}])
    finally:
        os.umask(previous)
    assert stat.S_IMODE(report.stat().st_mode) == mode
    assert stat.S_IMODE((tmp_path / "ledger.jsonl").stat().st_mode) == mode


def _rank_tracker(out: Path, rank: int, watts: float) -> RunReport:
    clock = ManualClock()
    reader = ScriptedReader(f"gpu:{rank}", "gpu", watts=lambda t: watts, clock=clock)
    place = Place(rank=rank, local_rank=rank, world_size=2, local_world_size=2, host="n1", pid=100 + rank,
                  node_leader=rank == 0)
    tracker = Tracker(intensity=100, readers=[reader], output_dir=out, place=place, clock=clock,
                      wall_clock=lambda: 1.7e9)
    tracker.start(run_id="job42")
    clock.advance(10)
    tracker.snapshot()
    return tracker.stop()


def test_two_ranks_of_one_plain_tracker_job_write_two_files_that_merge(tmp_path: Path) -> None:
    first, second = _rank_tracker(tmp_path, 0, 100.0), _rank_tracker(tmp_path, 1, 300.0)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["carbonstep-job42-rank0.json", "carbonstep-job42-rank1.json"]
    job = merge([RunReport.load(tmp_path / name) for name in files])
    assert job.energy_kwh == pytest.approx(first.energy_kwh + second.energy_kwh)
    assert job.energy_kwh == pytest.approx(4000 / 3.6e6)  # 10 s at 100 W plus 10 s at 300 W


def test_a_name_already_taken_by_another_process_is_never_overwritten(tmp_path: Path) -> None:
    _rank_tracker(tmp_path, 1, 100.0)
    _rank_tracker(tmp_path, 1, 200.0)  # a second process that believes it is rank 1 of the same job
    first = tmp_path / "carbonstep-job42-rank1.json"
    (other,) = set(tmp_path.iterdir()) - {first}
    assert other.name.startswith("carbonstep-job42-rank1-") and other.name.endswith(f"-{os.getpid()}.json")
    assert RunReport.load(first).power_w == pytest.approx(100.0)
    assert RunReport.load(other).power_w == pytest.approx(200.0)


def test_rank_path_names_each_rank_and_leaves_single_processes_alone() -> None:
    two = Place(rank=1, world_size=2)
    assert rank_path("out/r.json", two) == Path("out/r-rank1.json")
    assert rank_path("out/r-rank1.json", two) == Path("out/r-rank1.json")
    assert rank_path("out/r.json", Place()) == Path("out/r.json")
    assert rank_path("out/r.json", None) == Path("out/r.json")


# -- other Unix users ---------------------------------------------------------------------------------------------
WRITERS = ("cslab_ana", "cslab_ben", "cslab_cho")
READER = "cslab_out"  # not in the lab's group
GROUP = "cslab"



def _run_as(user: str, args: list[str], umask: int) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.run([sys.executable, str(Path(__file__).with_name("as_user.py")), user, f"{umask:o}", *args],
                          env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def lab_users() -> Iterator[None]:
    if os.geteuid() != 0 or shutil.which("useradd") is None:
        pytest.skip("creating Unix users needs root and useradd (CI runs as root)")
    made: list[str] = []
    if subprocess.run(["getent", "group", GROUP], capture_output=True).returncode != 0:
        subprocess.run(["groupadd", GROUP], check=True, timeout=30)
    for user in (*WRITERS, READER):
        if subprocess.run(["id", user], capture_output=True).returncode != 0:
            groups = ["-G", GROUP] if user in WRITERS else []
            subprocess.run(["useradd", "-M", "-d", "/nonexistent", "-s", "/usr/sbin/nologin", *groups, user],
                           check=True, timeout=30)
            made.append(user)
    yield
    for user in made:
        subprocess.run(["userdel", user], timeout=30)
    if made:
        subprocess.run(["groupdel", GROUP], timeout=30)


@pytest.mark.slow
def test_a_second_user_sees_every_users_runs_in_a_group_shared_folder(lab_users: None) -> None:
    import grp

    base = Path(tempfile.mkdtemp(prefix="carbonstep-lab-"))
    try:
        base.chmod(0o755)
        shared = base / "runs"
        shared.mkdir()
        os.chown(shared, 0, grp.getgrnam(GROUP).gr_gid)
        shared.chmod(0o2775)  # the lab's folder: group-writable, new files and folders keep the group
        project = shared / "vision"
        # each member writes with the umask of a group-sharing site (002); the first creates the project folder
        for user in WRITERS:
            out = _run_as(user, ["write", str(project), f"run-of-{user}"], umask=0o002)
            assert out.returncode == 0, out.stderr
        reports = sorted(project.iterdir())
        assert len(reports) == 3
        for path in reports:
            assert stat.S_IMODE(path.stat().st_mode) == 0o664  # readable by all, writable by the group
            assert path.stat().st_gid == grp.getgrnam(GROUP).gr_gid
        import pwd

        mine = base / "reader"  # the other user's own folder, for the JSON
        mine.mkdir()
        os.chown(mine, pwd.getpwnam(READER).pw_uid, -1)
        usage = _run_as(READER, ["cli", "usage", str(shared), "--by", "user", "--json",
                                 str(mine / "usage.json")], umask=0o022)
        assert usage.returncode == 0, usage.stderr
        assert "Permission denied" not in usage.stdout + usage.stderr
        data = json.loads((mine / "usage.json").read_text())
        assert data["total"]["runs"] == 3
        assert sorted(row["user"] for row in data["groups"]) == sorted(WRITERS)
    finally:
        shutil.rmtree(base, ignore_errors=True)
