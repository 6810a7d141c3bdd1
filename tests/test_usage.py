"""``carbonstep usage``: a synthetic month read from report folders and an MLflow store, grouped and filtered."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

import pytest

from carbonstep import Tracker
from carbonstep.analysis.usage.sources import _cut_marks, collect
from carbonstep.analysis.usage.usage import GROUPS, Filters, parse_moment, parse_since, summarise, table, to_csv
from carbonstep.cli import main
from carbonstep.errors import ConfigError
from carbonstep.report.charged import scope_text
from carbonstep.report.context import run_context
from carbonstep.report.merge import merge
from carbonstep.report.record import RunReport
from carbonstep.report.usage_record import UNKNOWN, usage_tags
from carbonstep.testing import ScriptedReader
from carbonstep.testing.usage_synthetic import Job, MonthGenerator, write_mlflow, write_month
from carbonstep.training.options import TrainingOptions
from carbonstep.training.session import TrainingSession

NOVEMBER = datetime(2026, 11, 1, tzinfo=timezone.utc)


def job_report(job: Job) -> RunReport:
    """What the job counts as: its job report, or its ranks merged when it has none."""
    return job.reports[0] if len(job.reports) == 1 or "parts" in job.reports[0].extra else merge(list(job.reports))


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Job]]:
    root = tmp_path_factory.mktemp("month")
    return root, write_month(root, 60, NOVEMBER, seed=3, marks_per_run=20)


def test_the_month_has_what_a_lab_has(month: tuple[Path, list[Job]]) -> None:
    root, jobs = month
    statuses = {job_report(j).status for j in jobs}
    assert {"completed", "failed", "interrupted"} <= statuses
    assert any(len(j.reports) > 1 and "parts" in j.reports[0].extra for j in jobs)  # job report + ranks
    assert any(len(j.reports) > 1 and "parts" not in j.reports[0].extra for j in jobs)  # ranks only
    assert len({j.user for j in jobs}) >= 5 and len({j.project for j in jobs}) >= 4
    assert any(h["kind"] == "idle_gpu" for j in jobs for r in j.reports for h in r.hints)


def test_each_job_counts_once_and_totals_match_the_reports(month: tuple[Path, list[Job]]) -> None:
    root, jobs = month
    collected = collect([str(root)])
    assert len(collected.records) == len(jobs)
    assert not collected.warnings
    truth = [job_report(j) for j in jobs]
    usage = summarise(collected.records, ["user"], Filters())
    assert usage.total.energy_kwh == pytest.approx(sum(r.energy_kwh for r in truth), rel=1e-9)
    assert usage.total.co2_kg == pytest.approx(sum(r.co2_kg for r in truth), rel=1e-9)
    assert usage.total.water_l == pytest.approx(sum(r.water_l for r in truth), rel=1e-9)
    rank_files = sum(len(j.reports) for j in jobs) - len(jobs)
    assert rank_files > 0 and any("counted through their job's report" in n for n in collected.notes)
    # a copy of the whole folder beside it changes nothing
    copy = root.parent / (root.name + "-copy")
    shutil.copytree(root, copy / "again")
    shutil.copytree(root, copy / "first")
    doubled = collect([str(copy)])
    assert len(doubled.records) == len(jobs) and any("copies" in n for n in doubled.notes)


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_every_grouping_partitions_the_runs(month: tuple[Path, list[Job]], group: str) -> None:
    root, jobs = month
    records = collect([str(root)]).records
    usage = summarise(records, [group], Filters())
    assert sum(g.runs for g in usage.groups) == usage.total.runs == len(jobs)
    assert sum(g.energy_kwh for g in usage.groups) == pytest.approx(usage.total.energy_kwh)
    assert sum(g.share for g in usage.groups) == pytest.approx(1.0)
    assert {g.key[0] for g in usage.groups} == {GROUPS[group](r) for r in records}
    expected: dict[str, float] = {}
    for job in jobs:  # the truth, from the generator's own jobs
        report = job_report(job)
        slurm = report.extra["slurm"]
        started = datetime.fromisoformat(report.started_at)
        label = {"user": job.user, "experiment": job.project, "account": slurm["account"],
                 "partition": slurm["partition"], "status": report.status, "region": report.intensity.region,
                 "month": started.strftime("%Y-%m"), "week": started.strftime("%G-W%V"),
                 "day": started.strftime("%Y-%m-%d"),
                 "gpu": job.reports[-1].devices[0].description.split(" [")[0],  # one model per partition
                 "host": "+".join(sorted({r.host for r in job.reports if "parts" not in r.extra})),
                 "scope": scope_text(report)}[group]
        expected[label] = expected.get(label, 0.0) + report.energy_kwh
    assert {g.key[0]: g.energy_kwh for g in usage.groups} == pytest.approx(expected)
    if group not in ("month", "week", "day"):
        assert [g.energy_kwh for g in usage.groups] == sorted((g.energy_kwh for g in usage.groups), reverse=True)


def test_wasted_idle_after_epoch_and_per_sample(month: tuple[Path, list[Job]]) -> None:
    root, jobs = month
    usage = summarise(collect([str(root)]).records, ["status"], Filters())
    by = {g.key[0]: g for g in usage.groups}
    assert by["completed"].wasted_kwh == 0 and by["failed"].wasted_kwh == pytest.approx(by["failed"].energy_kwh)
    truth = [job_report(j) for j in jobs]
    wasted = [r for r in truth if r.wasted]
    after = sum(r.energy_kwh - sum(e.energy_kwh for e in r.epochs) for r in wasted)
    assert usage.total.after_last_epoch_kwh == pytest.approx(after)
    assert 0 < usage.total.after_last_epoch_kwh < usage.total.wasted_kwh
    idle = sum(d.energy_kwh for r in truth for d in r.devices if d.domain == "gpu" and d.idle_fraction > 0.5)
    assert usage.total.idle_gpu_kwh == pytest.approx(idle) and idle > 0
    def counted(report: RunReport) -> float:  # the epochs' samples, else the marks' (none is thinned here)
        return sum(e.count for e in report.epochs) or sum(m.count for m in report.marks)

    leaves = [[r for r in j.reports if "parts" not in r.extra] for j in jobs]
    samples = sum(counted(r) for leaf in leaves for r in leaf)
    counted_kwh = sum(truth[i].energy_kwh for i, leaf in enumerate(leaves) if sum(map(counted, leaf)) > 0)
    assert usage.total.kwh_per_sample == pytest.approx(counted_kwh / samples)


def test_filters_window_user_experiment_status(month: tuple[Path, list[Job]]) -> None:
    root, jobs = month
    records = collect([str(root)]).records
    mid = parse_moment("--from", "2026-11-15")
    assert mid == datetime(2026, 11, 15, tzinfo=timezone.utc).timestamp()
    late = summarise(records, ["day"], Filters(since_s=mid))
    assert late.total.runs == sum(datetime.fromisoformat(job_report(j).started_at).timestamp() >= mid for j in jobs)
    assert all(g.key[0] >= "2026-11-15" for g in late.groups)
    window = summarise(records, ["day"], Filters(since_s=parse_moment("--from", "2026-11-10"),
                                                 until_s=parse_moment("--to", "2026-11-12")))
    assert {g.key[0] for g in window.groups} <= {"2026-11-10", "2026-11-11"} and window.total.runs > 0
    assert parse_since("30d", mid) == mid - 30 * 86400 and parse_since("12h", mid) == mid - 43200
    ada = summarise(records, ["experiment"], Filters(users=["ada"]))
    assert ada.total.runs == sum(j.user == "ada" for j in jobs) > 0
    assert {g.key[0] for g in ada.groups} <= {"llm-pretrain", "rag-eval"}
    wasted = summarise(records, ["user"], Filters(statuses=["failed", "interrupted"], experiments=["rag-eval"]))
    assert wasted.total.runs == sum(j.project == "rag-eval" and job_report(j).wasted for j in jobs)
    assert wasted.total.wasted_kwh == pytest.approx(wasted.total.energy_kwh)
    with pytest.raises(ConfigError, match="--since"):
        parse_since("a month", mid)
    with pytest.raises(ConfigError, match="--to"):
        parse_moment("--to", "yesterday")
    with pytest.raises(ConfigError, match="--sort"):
        summarise(records, ["user"], Filters(), sort="colour")


def test_malformed_report_is_skipped_with_a_named_warning(month: tuple[Path, list[Job]], tmp_path: Path) -> None:
    root, jobs = month
    folder = tmp_path / "reports"
    shutil.copytree(root, folder)
    good = next(folder.rglob("carbonstep-*.json"))
    truncated = good.parent / "carbonstep-truncated.json"
    truncated.write_text(good.read_text()[:900])
    future = good.parent / "carbonstep-future.json"
    future.write_text(json.dumps({**json.loads(good.read_text()), "schema_version": 99, "run_id": "x"}))
    (good.parent / "carbonstep-empty.json").write_text("")
    nan = json.loads(good.read_text())
    (good.parent / "carbonstep-nan.json").write_text(json.dumps({**nan, "run_id": "n", "energy_kwh": float("nan")}))
    collected = collect([str(folder)])
    assert len(collected.records) == len(jobs)  # nothing else lost
    named = {Path(w.split(": skipped")[0]).name for w in collected.warnings}
    assert named == {"carbonstep-truncated.json", "carbonstep-future.json", "carbonstep-empty.json",
                     "carbonstep-nan.json"}
    assert all("not a carbonstep report" in w for w in collected.warnings)
    code, stdout, stderr = run_cli(["usage", str(folder), "--by", "user"])
    assert code == 0 and "carbonstep-truncated.json: skipped" in stderr and f"{len(jobs)} runs" in stdout


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    import contextlib

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def test_cli_writes_table_csv_json_and_a_self_contained_page(month: tuple[Path, list[Job]], tmp_path: Path) -> None:
    root, jobs = month
    code, stdout, _ = run_cli(["usage", str(root), "--by", "account,partition", "--from", "2026-11-01", "--to",
                               "2026-12-01", "--csv", str(tmp_path / "u.csv"), "--json", str(tmp_path / "u.json"),
                               "--html", str(tmp_path / "u.html")])
    assert code == 0
    lines = stdout.splitlines()
    assert lines[1].split()[:3] == ["account", "partition", "runs"] and any(line.startswith("TOTAL") for line in lines)
    rows = list(csv.DictReader((tmp_path / "u.csv").open()))
    data = json.loads((tmp_path / "u.json").read_text())
    assert rows[-1]["account"] == "TOTAL" and int(rows[-1]["runs"]) == len(jobs) == data["total"]["runs"]
    assert sum(float(r["energy_kwh"]) for r in rows[:-1]) == pytest.approx(data["total"]["energy_kwh"])
    page = (tmp_path / "u.html").read_text()
    assert page.count("<svg") >= 3 and "Grid intensity used, by region" in page and "Ember" in page
    for outside in ("<script", "src=\"http", "href=\"http", "@import", "url("):
        assert outside not in page
    code, _, stderr = run_cli(["usage", str(root), "--by", "colour"])
    assert code == 2 and "--by 'colour'" in stderr


def test_cut_marks_keeps_the_report_and_falls_back_when_a_name_has_a_bracket() -> None:
    text = json.dumps({"run_id": "a", "marks": [{"name": "step", "count": 2.0}], "epochs": []}, indent=2)
    lean, cut = _cut_marks(text)
    assert json.loads(lean)["marks"] == [] and json.loads(cut) == [{"name": "step", "count": 2.0}]
    tricky = json.dumps({"marks": [{"name": "a]b", "count": 1.0}, {"name": "c", "count": 1.0}]})
    assert _cut_marks(tricky) == (tricky, None)


def test_merged_job_with_other_run_ids_hides_its_parts(tmp_path: Path) -> None:
    generator = MonthGenerator(NOVEMBER, seed=11, marks_per_run=5)
    a, b = (generator.job(i).reports[0] for i in range(2))
    for report in (a, b):
        report.save(tmp_path / f"carbonstep-{report.run_id}.json")
    job = merge([a, b], name="two hosts")  # `carbonstep merge` of two separate runs
    job.save(tmp_path / f"carbonstep-{job.run_id}-job.json")
    collected = collect([str(tmp_path)])
    assert [r.run_id for r in collected.records] == [job.run_id]
    assert collected.records[0].energy_kwh == pytest.approx(a.energy_kwh + b.energy_kwh)


@pytest.mark.slow
def test_mlflow_store_paged_and_counted_once_with_reports(month: tuple[Path, list[Job]], tmp_path: Path) -> None:
    root, jobs = month
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    some = jobs[:12]
    write_mlflow(uri, some)
    from carbonstep.analysis.usage.sources import Collected, read_mlflow

    side = Collected()
    records = read_mlflow(uri, None, None, None, side, page_size=5)  # three pages
    assert len(records) == len(some)
    truth = {job_report(j).run_id: (j, job_report(j)) for j in some}
    for record in records:
        job, report = truth[record.run_id]
        assert (record.user, record.experiment, record.status) == (job.user, job.project, report.status)
        assert record.energy_kwh == pytest.approx(report.energy_kwh) and record.gpu_model != UNKNOWN
        assert record.partition == report.extra["slurm"]["partition"]
    both = collect([str(root), uri])
    assert len(both.records) == len(jobs) and any("also read" in n for n in both.notes)
    usage = summarise(both.records, ["experiment"], Filters())
    assert usage.total.energy_kwh == pytest.approx(sum(job_report(j).energy_kwh for j in jobs))
    only = collect([uri], experiments=["rag-eval"])
    assert {r.experiment for r in only.records} <= {"rag-eval"}
    assert len(only.records) == sum(j.project == "rag-eval" for j in some)


@pytest.mark.slow
def test_mlflow_server_over_http_paged(month: tuple[Path, list[Job]], tmp_path: Path) -> None:
    from carbonstep.analysis.usage.sources import Collected, read_mlflow

    from .mlflow_server import MlflowServer

    root, jobs = month
    server = MlflowServer(tmp_path).start()
    try:
        write_mlflow(server.uri, jobs[:5])
        records = read_mlflow(server.uri, None, parse_moment("--from", "2026-11-01"), None, Collected(), page_size=2)
        truth = {job_report(j).run_id: job_report(j) for j in jobs[:5]}
        assert sorted(r.run_id for r in records) == sorted(truth)
        assert sum(r.energy_kwh for r in records) == pytest.approx(sum(t.energy_kwh for t in truth.values()))
        assert read_mlflow(server.uri, None, parse_moment("--from", "2026-12-01"), None, Collected()) == []
    finally:
        server.stop()


class RecordingSink:
    """A sink that keeps what it is given."""

    def __init__(self) -> None:
        self.metrics: dict[str, float] = {}
        self.tags: dict[str, Any] = {}

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        self.metrics.update(metrics)

    def log_params(self, params: Mapping[str, Any]) -> None:
        pass

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self.tags.update(tags)

    def log_artifact(self, path: Any) -> None:
        pass

    def close(self, status: str = "FINISHED") -> str | None:
        return None


def test_runs_record_who_ran_them_and_the_sink_gets_usage_figures(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"SLURM_JOB_ID": "9", "SLURM_JOB_USER": "ada", "SLURM_JOB_ACCOUNT": "nlp",
           "SLURM_JOB_PARTITION": "gpu-h100", "USER": "root"}
    assert run_context(env) == {"user": "ada", "slurm": {"job_id": "9", "user": "ada", "account": "nlp",
                                                         "partition": "gpu-h100"}}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    sink = RecordingSink()
    session = TrainingSession(TrainingOptions.of(**{"intensity": 100.0, "interval_s": 0.01,
                               "readers": [ScriptedReader("g", "gpu", lambda t: 300.0)]}, summary=False))
    session.begin(sink, tmp_path, 1)
    for step in range(3):
        session.step(step, 0, count=16)
    session.epoch_end(0, 2)
    report = session.end("failed")
    assert report.extra["user"] == "ada" and report.extra["slurm"]["partition"] == "gpu-h100"
    assert sink.tags["slurm.account"] == "nlp" and sink.tags["carbonstep.run_id"] == report.run_id
    assert sink.tags == {**sink.tags, **usage_tags(report)}
    assert sink.metrics["usage_samples"] == 48 and "usage_after_last_epoch_kwh" in sink.metrics
    record = collect([str(tmp_path)]).records[0]
    assert (record.user, record.account, record.status, record.samples) == ("ada", "nlp", "failed", 48)


def test_table_shows_totals_and_notes(month: tuple[Path, list[Job]]) -> None:
    root, jobs = month
    collected = collect([str(root)])
    usage = summarise(collected.records, ["gpu"], Filters())
    usage.notes = collected.notes
    text = table(usage)
    assert f"{len(jobs)} runs" in text.splitlines()[0] and "TOTAL" in text and "note:" in text
    assert to_csv(usage).splitlines()[0].startswith("gpu,runs,gpu_hours,energy_kwh")


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs chromium (Debian package 'chromium')")
def test_page_renders_in_headless_chromium(tmp_path: Path) -> None:
    script = Path(__file__).parents[1] / "scripts" / "usage_screenshot"
    png = tmp_path / "usage.png"
    out = subprocess.run([sys.executable, str(script), "--out", str(png), "--jobs", "40"], capture_output=True,
                         text=True, timeout=240)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "page checked" in out.stdout
    from matplotlib.image import imread

    pixels = imread(png)
    assert pixels.shape[1] == 1280 and pixels.shape[0] > 1000
    assert pixels[:40, :, :3].mean() < 0.3 < pixels[200:, :, :3].mean()  # the dark header above a light page


def test_no_run_left_still_gives_a_table_and_a_page(month: tuple[Path, list[Job]], tmp_path: Path) -> None:
    root, _ = month
    code, stdout, _ = run_cli(["usage", str(root), "--user", "nobody", "--html", str(tmp_path / "e.html"),
                               "--csv", str(tmp_path / "e.csv")])
    assert code == 0 and "0 runs" in stdout
    assert list(csv.DictReader((tmp_path / "e.csv").open()))[0]["runs"] == "0"
    assert "<svg" in (tmp_path / "e.html").read_text()


def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised() -> None:
    from carbonstep.analysis.usage.usage import spreadsheet_safe

    for hostile in ("=HYPERLINK(\"http://x\")", "+1+1", "-2", "@SUM(A1)", "\tx", "\0x"):
        assert spreadsheet_safe(hostile) == "'" + hostile
    assert spreadsheet_safe("ada") == "ada" and spreadsheet_safe(-2.5) == -2.5


def test_a_report_with_an_impossible_amount_is_skipped_by_name(tmp_path: Path) -> None:
    from carbonstep.testing.usage_synthetic import write_month

    write_month(tmp_path / "m", 2, datetime(2026, 11, 1, tzinfo=timezone.utc))
    source = sorted((tmp_path / "m").rglob("*.json"))[0]
    data = json.loads(source.read_text(encoding="utf-8"))
    (tmp_path / "h").mkdir()
    for field in ("energy_kwh", "co2_kg", "water_l"):
        (tmp_path / "h" / f"{field}.json").write_text(json.dumps({**data, "run_id": field, field: 1e308}))
    collected = collect([str(tmp_path / "h")])
    assert collected.records == [] and len(collected.warnings) == 3
    assert all("more than any run" in w for w in collected.warnings)


# -- embodied CO2e and scope (issues 26 and 25) ---------------------------------------------------------------------
H100 = "NVIDIA H100 80GB HBM3"  # the GPU the shipped embodied table has a figure for (docs/EMBODIED.md)


def _embodied_and_plain_runs(folder: Path) -> tuple[RunReport, RunReport]:
    """Two real reports in ``folder``: one on a (fake NVML) H100, whose Tracker adds the embodied block, and one
    CPU-only run with no figure (a CPU-only run without a fleet row gets a note, not a figure)."""
    import time

    from carbonstep.measure.readers.nvml import discover_nvml
    from tests.fake_nvml import FakeGpu, FakeNvml

    readers, _, _ = discover_nvml(FakeNvml([FakeGpu("GPU-aaaa", name=H100, watts=700)], time.monotonic),
                                  visible=None)
    with Tracker(intensity=400, readers=readers, interval_s=0.01, name="h100-run") as gpu_run:
        time.sleep(0.2)
    with Tracker(intensity=400, readers=[ScriptedReader("cpu", "cpu", lambda t: 50.0)], interval_s=0.01,
                 name="cpu-run") as cpu_run:
        time.sleep(0.1)
    gpu, cpu = gpu_run.stop(), cpu_run.stop()
    assert gpu.embodied and gpu.embodied.get("co2_kg") and "co2_kg" not in (cpu.embodied or {})
    gpu.save(folder / "proj" / "gpu.json")
    cpu.save(folder / "proj" / "cpu.json")
    return gpu, cpu


def test_embodied_has_its_own_column_and_tile_never_summed_into_co2e(tmp_path: Path) -> None:
    from carbonstep.report.embodied import usage_row

    gpu, cpu = _embodied_and_plain_runs(tmp_path / "runs")
    records = {r.name: r for r in collect([str(tmp_path / "runs")]).records}
    expected = usage_row(gpu)
    assert records["h100-run"].embodied_co2_kg == expected["embodied_co2_kg"]
    assert (records["h100-run"].embodied_co2_kg_low, records["h100-run"].embodied_co2_kg_high) == (
        expected["embodied_co2_kg_low"], expected["embodied_co2_kg_high"])
    assert records["cpu-run"].embodied_co2_kg is None
    code, stdout, _ = run_cli(["usage", str(tmp_path / "runs"), "--by", "scope", "--csv", str(tmp_path / "u.csv"),
                               "--json", str(tmp_path / "u.json"), "--html", str(tmp_path / "u.html")])
    assert code == 0
    data = json.loads((tmp_path / "u.json").read_text())
    total = data["total"]
    assert total["co2_kg"] == pytest.approx(gpu.co2_kg + cpu.co2_kg)  # operational only: embodied not in it
    assert total["embodied_co2_kg"] == pytest.approx(gpu.embodied["co2_kg"]) and total["embodied_runs"] == 1
    assert total["operational_plus_embodied_co2_kg"] == pytest.approx(gpu.co2_kg + cpu.co2_kg + gpu.embodied["co2_kg"])
    assert expected["total_co2_kg"] == pytest.approx(gpu.co2_kg + gpu.embodied["co2_kg"])  # the report's own total
    rows = {r["scope"]: r for r in csv.DictReader((tmp_path / "u.csv").open())}
    assert float(rows[scope_text(gpu)]["embodied_co2_kg"]) == pytest.approx(gpu.embodied["co2_kg"])
    assert rows[scope_text(cpu)]["embodied_runs"] == "0"
    assert "embodied" in stdout.splitlines()[1] and "known for 1 of 2 runs" in stdout
    cpu_line = next(line for line in stdout.splitlines() if line.startswith(scope_text(cpu)[:40]))
    assert cpu_line.split()[-2:] == ["-", "-"]  # no figure: not known, never 0
    page = (tmp_path / "u.html").read_text()
    assert "CO2e operational</span>" in page and "1 of 2 runs had a figure" in page
    assert "CO2e operational + embodied</span>" in page
    from carbonstep.report.formatting import format_mass

    for figure in (gpu.embodied["co2_kg"], gpu.co2_kg + cpu.co2_kg,
                   gpu.co2_kg + cpu.co2_kg + gpu.embodied["co2_kg"]):
        assert f"<b>{format_mass(figure)}</b>" in page


def test_largest_runs_show_each_runs_scope_and_runs_group_by_it(tmp_path: Path) -> None:
    gpu, cpu = _embodied_and_plain_runs(tmp_path / "runs")
    assert scope_text(gpu) != scope_text(cpu) and scope_text(gpu).startswith("gpu ")
    records = collect([str(tmp_path / "runs")]).records
    assert {r.name: r.scope for r in records} == {"h100-run": scope_text(gpu), "cpu-run": scope_text(cpu)}
    usage = summarise(records, ["scope"], Filters())
    assert {g.key[0]: g.runs for g in usage.groups} == {scope_text(gpu): 1, scope_text(cpu): 1}
    from carbonstep.analysis.usage.html import page

    largest = page(usage).split("<h2>Largest runs</h2>")[1]
    assert '<th class="l">scope</th>' in largest
    for report in (gpu, cpu):
        assert f'title="{scope_text(report)}">{scope_text(report)}</div>' in largest


def test_mlflow_runs_and_rank_jobs_carry_embodied_and_scope() -> None:
    from carbonstep.report.usage_record import combined_fields, mlflow_fields

    fields = mlflow_fields({"embodied_co2_kg": 0.004, "energy_kwh": 1.0},
                           {"embodied_co2_kg_low": "0.003", "embodied_co2_kg_high": "0.005",
                            "carbonstep.gpu_scope": "process share", "carbonstep.cpu_scope": "container"})
    assert fields == {"embodied_co2_kg": 0.004, "embodied_co2_kg_low": 0.003, "embodied_co2_kg_high": 0.005,
                      "scope": "gpu process share · cpu container"}
    older = mlflow_fields({"energy_kwh": 1.0, "embodied_co2_kg": float("nan")}, {})
    assert older == {"embodied_co2_kg": None, "embodied_co2_kg_low": None, "embodied_co2_kg_high": None,
                     "scope": UNKNOWN}
    from carbonstep.report.usage_record import UsageRecord

    base = UsageRecord("r", "s", "n", 0.0, 1.0, "completed", "u", "e", "a", "p", "", "h", "g", "FR", 50.0, "", 1.0,
                       0.05, 1.0, 1.0, 0.0, 0.0, None, embodied_co2_kg=0.002, embodied_co2_kg_low=0.001,
                       embodied_co2_kg_high=0.003, scope="gpu whole device")
    ranks = [base, base.with_changes(scope="gpu process share")]
    assert combined_fields(ranks) == {"embodied_co2_kg": 0.004, "embodied_co2_kg_low": 0.002,
                                      "embodied_co2_kg_high": 0.006,
                                      "scope": "gpu process share + gpu whole device"}
    assert combined_fields([base, base.with_changes(embodied_co2_kg=None)])["embodied_co2_kg"] is None


def test_a_damaged_embodied_block_costs_the_figure_never_the_run() -> None:
    from carbonstep.report.usage_record import embodied_of

    for block in ({"co2_kg": "lots"}, {"co2_kg": -1.0}, {"co2_kg": float("inf")}, {"co2_kg": 0.01, "co2_kg_low": []}):
        assert embodied_of({"embodied": block}) == {"embodied_co2_kg": None, "embodied_co2_kg_low": None,
                                                    "embodied_co2_kg_high": None}
    assert embodied_of({"embodied": {"co2_kg": 0.004}}) == {"embodied_co2_kg": 0.004, "embodied_co2_kg_low": 0.004,
                                                            "embodied_co2_kg_high": 0.004}
# -- reading many files: the lean parse, the cache, the processes ----------------------------------------------
def plain_full_parse(root: Path) -> tuple[list[tuple[Any, ...]], list[str]]:
    """Every report under ``root`` parsed whole with json.loads (the reference the fast reader must equal)."""
    from carbonstep.analysis.usage.sources import report_files
    from carbonstep.report.record import SCHEMA_VERSION
    from carbonstep.report.usage_record import from_report_dict

    rows, skipped = [], []
    for path in report_files(root):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            assert isinstance(data, dict) and data.get("schema_version") == SCHEMA_VERSION
            relative = path.relative_to(root).parts
            record = from_report_dict(data, str(path), relative[0] if len(relative) > 1 else UNKNOWN,
                                      data["marks"] if not data.get("epochs") else [])
        except (ValueError, KeyError, TypeError, AssertionError):
            skipped.append(str(path))
            continue
        parts = data["extra"].get("parts") or []
        place = data["extra"].get("place") or {}
        rank = place.get("rank") if int(place.get("world_size") or 1) > 1 and not parts else None
        rows.append((record, data["started_at"], rank, tuple(str(p["run_id"]) for p in parts)))
    return rows, skipped


@pytest.fixture()
def odd_month(tmp_path: Path) -> Path:
    """A synthetic month with malformed files, a compact (non-indented) report and a mark named with brackets."""
    root = tmp_path / "month"
    jobs = write_month(root, 25, NOVEMBER, seed=5, marks_per_run=15)
    single = next(j for j in jobs if len(j.reports) == 1)  # a report with marks
    first = root / single.project / single.user / single.written[0]
    text = first.read_text()
    bad = root / "bad"
    bad.mkdir()
    (bad / "not-json.json").write_text("{broken")
    (bad / "truncated.json").write_text(text[: len(text) // 2])
    (bad / "a-list.json").write_text("[1, 2]")
    (bad / "old-schema.json").write_text(text.replace('"schema_version": ', '"schema_version": 0, "was": '))
    (bad / "no-intensity.json").write_text(text.replace('"intensity"', '"intensity_gone"'))
    data = json.loads(text)
    (root / "odd").mkdir()
    (root / "odd" / "compact.json").write_text(json.dumps({**data, "run_id": "compact1"}))
    no_epochs = {**data, "run_id": "brackets1", "epochs": [], "marks_stride": 1,
                 "marks": [{**m, "name": "step]["} for m in data["marks"]]}
    (root / "odd" / "brackets.json").write_text(json.dumps(no_epochs, indent=2))
    (root / "odd" / "last.json").write_text(json.dumps({**{k: v for k, v in data.items() if k != "marks"},
                                                        "run_id": "marks-last", "marks": data["marks"]}, indent=2))
    return root


@pytest.mark.parametrize("processes", [1, 2])
def test_fast_reader_equals_a_plain_full_parse(odd_month: Path, processes: int,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from carbonstep.analysis.usage import reading

    monkeypatch.setenv("CARBONSTEP_USAGE_CACHE", "off")
    monkeypatch.setenv("CARBONSTEP_USAGE_WORKERS", str(processes))
    monkeypatch.setattr(reading, "POOL_MIN_FILES", 1)
    monkeypatch.setattr(reading, "CHUNK_FILES", 7)
    rows, skipped = plain_full_parse(odd_month)
    entries, warnings = reading.read_tree(odd_month, progress=lambda line: None)
    assert [(e.record, e.started_at, e.rank, e.part_ids) for e in entries] == rows
    assert len(skipped) == 5 and [w.split(": skipped")[0] for w in warnings] == skipped
    assert all("not a carbonstep report" in w for w in warnings)
    samples = {e.record.run_id: e.record.samples for e in entries}
    assert samples["brackets1"] and samples["brackets1"] > 0  # counted from the marks, cut or not


def test_lean_text_leaves_out_marks_and_timeline_only() -> None:
    from carbonstep.analysis.usage.reading import lean_text

    report = {"run_id": "a", "devices": [{"name": "gpu:0"}], "marks": [{"name": "x]", "count": 2.0}],
              "epochs": [], "timeline": [[0.0, 0.0], [1.0, 2.0]], "extra": {"marks": [1]}}
    lean = lean_text(json.dumps(report, indent=2))
    assert lean is not None
    assert json.loads(lean[0]) == {**report, "marks": [], "timeline": []}
    assert lean[1] is not None and json.loads(lean[1]) == report["marks"]
    assert lean_text(json.dumps(report)) is None  # not carbonstep's layout: parsed whole
    assert lean_text(json.dumps({"run_id": "a", "marks": []}, indent=2)) == (json.dumps({"run_id": "a", "marks": []},
                                                                                        indent=2), None)


def test_lean_text_finds_where_top_level_arrays_end_empty_nested_or_last() -> None:
    from carbonstep.analysis.usage.reading import lean_text

    for timeline in ([], [[0.0, 0.0]], [[0.0, [1, [2]]], [3.0, 4.0]]):
        for marks in ([], [{"name": "a", "tags": [[1], []]}], [{"name": "b"}] * 3):
            report = {"run_id": "a", "marks": marks, "epochs": [[1, 2]], "timeline": timeline, "hints": [[]],
                      "extra": {"timeline": [[5]]}}
            lean = lean_text(json.dumps(report, indent=2))
            assert lean is not None and json.loads(lean[0]) == {**report, "marks": [], "timeline": []}
            assert json.loads(lean[1] or "[]") == marks
    last = json.dumps({"run_id": "a", "timeline": [[1.0, 2.0]]}, indent=2)  # no member after it: kept
    assert lean_text(last) == (last, None)


def test_a_file_is_read_to_its_end_whatever_its_size_said(tmp_path: Path) -> None:
    from carbonstep.analysis.usage.reading import regular_file_text

    status = Path("/proc/self/status")  # a regular file whose size reads as 0
    if status.exists() and status.stat().st_size == 0:
        assert regular_file_text(status).startswith("Name:")
    small = tmp_path / "r.json"
    small.write_text("{}" * 10)
    assert regular_file_text(small) == "{}" * 10 and regular_file_text(small, max_bytes=20) == "{}" * 10
    with pytest.raises(OSError, match="too large"):
        regular_file_text(small, max_bytes=19)


def test_the_cache_answers_unchanged_files_and_never_a_changed_one(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from carbonstep.analysis.usage import reading

    root = tmp_path / "month"
    write_month(root, 6, NOVEMBER, seed=9, marks_per_run=5)
    (root / "broken.json").write_text("{broken")
    files = sorted(root.rglob("*.json"))
    for path in files:
        os.utime(path, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))
    monkeypatch.setenv("CARBONSTEP_USAGE_CACHE", str(tmp_path / "cache"))
    calls: list[str] = []
    real = reading.read_outcome
    monkeypatch.setattr(reading, "read_outcome", lambda path, exp: calls.append(path) or real(path, exp))
    first, first_warnings = reading.read_tree(root, progress=lambda line: None, cache_min_files=1)
    assert len(calls) == len(files) and len(first_warnings) == 1
    assert len(list((tmp_path / "cache").glob("reports-*.json"))) == 1
    calls.clear()
    again, again_warnings = reading.read_tree(root, progress=lambda line: None, cache_min_files=1)
    assert calls == [] and again == first and again_warnings == first_warnings  # all from the cache
    # the same size, a new modification time: read again, never the cached record
    target = next(p for p in files if p.name != "broken.json")
    data = json.loads(target.read_text())
    text = target.read_text()
    old = f'\n  "energy_kwh": {json.dumps(data["energy_kwh"])}'
    at = old.index(".") + 1  # the first decimal: a change there changes the number
    new = old[:at] + ("1" if old[at] != "1" else "2") + old[at + 1:]
    assert text.count(old) == 1 and len(new) == len(old)
    target.write_text(text.replace(old, new))
    os.utime(target, ns=(1_700_000_001_000_000_000, 1_700_000_001_000_000_000))
    assert target.stat().st_size == len(text.encode())
    changed, _ = reading.read_tree(root, progress=lambda line: None, cache_min_files=1)
    assert calls == [str(target)]
    by_source = {e.record.source: e.record.energy_kwh for e in changed}
    assert by_source[str(target)] == float(new.split(": ")[1]) != data["energy_kwh"]
    assert len(list((tmp_path / "cache").glob("*"))) == 1  # rewritten in place, no temporary file left
    assert [e for e in changed if e.record.source != str(target)] == [e for e in first
                                                                      if e.record.source != str(target)]


def test_a_long_read_says_how_far_it_is(month: tuple[Path, list[Job]], monkeypatch: pytest.MonkeyPatch) -> None:
    from carbonstep.analysis.usage import reading

    root, _ = month
    monkeypatch.setenv("CARBONSTEP_USAGE_CACHE", "off")
    monkeypatch.setattr(reading, "PROGRESS_FILES", 50)
    lines: list[str] = []
    entries, _ = reading.read_tree(root, progress=lines.append)
    files = len(list(root.rglob("*.json")))
    assert lines and all(line.startswith("carbonstep usage: ") and str(root) in line for line in lines)
    assert lines[-1].startswith(f"carbonstep usage: {files:,} of {files:,} report files read")


def test_a_replicated_month_is_new_jobs_with_the_same_figures(tmp_path: Path) -> None:
    from carbonstep.testing.usage_synthetic import replicate_month

    jobs = write_month(tmp_path / "once", 12, NOVEMBER, seed=4, marks_per_run=3)
    files = replicate_month(tmp_path / "once", tmp_path / "thrice", 3)
    assert files == 3 * sum(len(j.reports) for j in jobs)
    once, thrice = collect([str(tmp_path / "once")]), collect([str(tmp_path / "thrice")])
    assert len(thrice.records) == 3 * len(once.records) == 3 * len(jobs) and not thrice.warnings
    assert sum(r.energy_kwh for r in thrice.records) == pytest.approx(3 * sum(r.energy_kwh for r in once.records))
    assert sorted(r.experiment for r in thrice.records) == sorted(3 * [r.experiment for r in once.records])
