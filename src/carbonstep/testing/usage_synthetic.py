"""A synthetic month of a lab's training runs, for ``carbonstep usage``'s tests, example and benchmark.

``python -m carbonstep.testing.usage_synthetic OUT [--runs N] [--mlflow URI]`` writes report files the
way carbonstep writes them (``RunReport.save``; a multi-rank job as one report per rank beside the job's
report, made by :func:`carbonstep.report.merge.merge`; a failed multi-rank job as its ranks' reports
only) under ``OUT/<project>/<user>/``, and, with ``--mlflow``, the same runs as MLflow runs with the
metrics, params and tags carbonstep's sink logs.

Everything here is invented: users, projects, Slurm accounts and partitions, hosts, and each GPU's mean
draw (a plausible figure per model, not a measurement). Grid intensities are the shipped regions'
(``carbonstep regions``); PUE and WUE are per-site settings of this made-up lab.
"""

from __future__ import annotations

import argparse
import random
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Sequence

from carbonstep.accounting import footprint, regions
from carbonstep.accounting.footprint import DEFAULT_WATER_L_PER_KWH
from carbonstep.mlflow_io import names
from carbonstep.report.record import Device, Epoch, Intensity, Mark, RunReport


@dataclass(frozen=True)
class Site:
    """A made-up data centre: its grid region, PUE and WUE, and its Slurm partitions."""

    region: str
    pue: float
    wue_l_per_kwh: float


@dataclass(frozen=True)
class Partition:
    """A made-up Slurm partition: its site, its nodes, their GPU model, GPUs per node, a mean draw per GPU."""

    name: str
    site: Site
    nodes: tuple[str, ...]
    gpu_model: str
    gpus_per_node: int
    gpu_draw_w: float  #: invented mean draw while busy
    idle_draw_w: float  #: invented draw while idle


NORTH = Site("FR", 1.2, 0.3)
WEST = Site("US-CA", 1.4, 1.1)
PARTITIONS = (
    Partition("gpu-h100", NORTH, tuple(f"h100-{i:02d}" for i in range(1, 5)), "NVIDIA H100 80GB HBM3", 8, 520, 90),
    Partition("gpu-a100", WEST, tuple(f"a100-{i:02d}" for i in range(1, 9)), "NVIDIA A100-SXM4-80GB", 4, 300, 60),
    Partition("gpu-l40s", NORTH, ("l40s-01", "l40s-02"), "NVIDIA L40S", 4, 250, 40),
)
#: project → (Slurm account, partitions it uses)
PROJECTS = {"llm-pretrain": ("nlp", ("gpu-h100",)), "rag-eval": ("nlp", ("gpu-a100", "gpu-l40s")),
            "vision-ssl": ("vision", ("gpu-a100", "gpu-h100")), "speech-asr": ("audio", ("gpu-a100",)),
            "protein-fold": ("bio", ("gpu-h100", "gpu-a100")), "rl-agents": ("vision", ("gpu-l40s",))}
#: user → (projects, relative activity)
USERS = {"ada": (("llm-pretrain", "rag-eval"), 5), "grace": (("vision-ssl",), 4), "alan": (("protein-fold",), 3),
         "katherine": (("speech-asr", "rag-eval"), 3), "edsger": (("rl-agents",), 2), "barbara": (("llm-pretrain",), 2),
         "donald": (("vision-ssl", "rl-agents"), 1), "frances": (("protein-fold", "speech-asr"), 1)}
STATUS_WEIGHTS = {"completed": 82, "failed": 11, "interrupted": 6, "running": 1}


@dataclass(frozen=True)
class Job:
    """One generated job: its reports (job report first, or only ranks' reports) and its labels."""

    project: str
    user: str
    reports: tuple[RunReport, ...]
    written: tuple[str, ...]  #: file names, in the order of ``reports``


def _intensity(code: str) -> Intensity:
    r = regions.lookup(code)
    return Intensity(r.g_per_kwh, r.code, r.name, r.source, r.year, r.basis, r.licence, "argument")


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat()


class MonthGenerator:
    """Generates the jobs of one month, reproducibly from a seed."""

    def __init__(self, start: datetime, seed: int = 7, days: int = 30, marks_per_run: int = 120) -> None:
        self.rng = random.Random(seed)
        self.start_s = start.replace(tzinfo=start.tzinfo or timezone.utc).timestamp()
        self.days = days
        self.marks_per_run = marks_per_run
        self.partitions = {p.name: p for p in PARTITIONS}

    def _pick(self, weights: dict[str, int]) -> str:
        return self.rng.choices(list(weights), list(weights.values()))[0]

    def job(self, index: int) -> Job:
        """The ``index``-th job of the month."""
        rng = self.rng
        user = self._pick({u: w for u, (_, w) in USERS.items()})
        project = rng.choice(USERS[user][0])
        account, allowed = PROJECTS[project]
        partition = self.partitions[rng.choice(allowed)]
        gpus = rng.choice((1, 1, 1, 2, 4, 8, 8, 16)) if partition.name == "gpu-h100" else rng.choice((1, 1, 2, 4))
        status = self._pick(STATUS_WEIGHTS)
        hours = min(30.0, rng.lognormvariate(0.3, 1.1))
        start_s = self.start_s + rng.uniform(0, self.days * 86400 - hours * 3600)
        nodes = max(1, -(-gpus // partition.gpus_per_node))
        hosts = rng.sample(partition.nodes, min(nodes, len(partition.nodes)))
        idle = rng.random() < 0.05 or index % 17 == 5  # a few jobs hold a GPU they barely use
        epochs = rng.randint(2, 12)
        slurm = {"job_id": str(4_100_000 + index), "user": user, "account": account, "partition": partition.name,
                 "job_name": project, "nodes": str(len(hosts)), "ntasks": str(gpus)}
        run_id = f"{rng.getrandbits(48):012x}"
        name = f"{project}-{rng.choice(('base', 'large', 'ablation', 'sweep', 'ft'))}-{index}"
        ranks = [self._rank(run_id, name, r, gpus, hosts[r // partition.gpus_per_node % len(hosts)], partition,
                            start_s, hours, status, epochs, idle and r == gpus - 1, user, project, slurm)
                 for r in range(gpus)]
        if gpus == 1:
            return Job(project, user, (ranks[0],), (f"carbonstep-{run_id}.json",))
        file_names = tuple(f"carbonstep-{run_id}-rank{r}.json" for r in range(gpus))
        if status in ("failed", "interrupted"):  # ranks write their own; nobody writes the job's report
            return Job(project, user, tuple(ranks), file_names)
        from carbonstep.report.merge import merge

        return Job(project, user, (merge(ranks), *ranks), (f"carbonstep-{run_id}.json", *file_names))

    def _rank(self, run_id: str, name: str, rank: int, world: int, host: str, partition: Partition,
              start_s: float, hours: float, status: str, n_epochs: int, idle: bool, user: str, project: str,
              slurm: dict[str, str]) -> RunReport:
        rng = self.rng
        site = partition.site
        duration_s = hours * 3600 * (rng.uniform(0.98, 1.0) if rank else 1.0)
        idle_fraction = rng.uniform(0.6, 0.95) if idle else rng.uniform(0.0, 0.15)
        gpu_w = partition.idle_draw_w * idle_fraction + partition.gpu_draw_w * (1 - idle_fraction)
        gpu_kwh = gpu_w * duration_s / footprint.J_PER_KWH
        cpu_kwh = rng.uniform(35, 60) * duration_s / footprint.J_PER_KWH
        ram_kwh = rng.uniform(8, 15) * duration_s / footprint.J_PER_KWH
        uuid = f"GPU-{rng.getrandbits(64):016x}"
        local = rank % partition.gpus_per_node
        devices = (Device(f"gpu:{local}", "gpu", "counter", f"{partition.gpu_model} [{uuid}]: NVML total-energy "
                          "counter", gpu_kwh, utilisation_pct=100 * (1 - idle_fraction) * 0.9,
                          idle_fraction=idle_fraction, scope="device"),
                   Device("cpu", "cpu", "estimate", "process CPU time × TDP per thread", cpu_kwh),
                   Device("ram", "ram", "estimate", "process memory × W/GB", ram_kwh))
        energy = gpu_kwh + cpu_kwh + ram_kwh
        intensity = _intensity(site.region)
        co2 = footprint.co2_kg(energy, site.pue, intensity.g_per_kwh)
        water = footprint.water_l(energy, site.pue, site.wue_l_per_kwh, DEFAULT_WATER_L_PER_KWH)
        done = n_epochs if status == "completed" else rng.randint(0, n_epochs - 1)
        samples_per_epoch = rng.choice((50_000, 120_000, 400_000)) / world
        epoch_s = duration_s / (n_epochs if status == "completed" else done + rng.uniform(0.2, 0.9))
        per_s = energy / duration_s
        epochs = tuple(Epoch(e, e * epoch_s, (e + 1) * epoch_s, per_s * epoch_s, co2 / energy * per_s * epoch_s,
                             water / energy * per_s * epoch_s, 500, samples_per_epoch) for e in range(done))
        step_s = duration_s / max(1, self.marks_per_run)
        marks = tuple(Mark("step", i, int(i * step_s // epoch_s), 64.0, round(i * step_s, 3), per_s * i * step_s,
                           co2 / energy * per_s * i * step_s) for i in range(1, self.marks_per_run + 1))
        timeline = tuple((round(duration_s * i / 64, 3), energy * i / 64) for i in range(65))
        place = {"rank": rank, "local_rank": local, "world_size": world, "local_world_size": partition.gpus_per_node,
                 "host": host, "pid": 1000 + rank, "node_leader": local == 0, "peer_pids": []}
        extra: dict[str, Any] = {"user": user, "slurm": {**slurm, "node": host}, "training_type": "pre-training",
                                 "epoch_costs": [{"kwh": e.energy_kwh, "co2_kg": e.co2_kg, "water_l": e.water_l}
                                                 for e in epochs], "validation": []}
        if world > 1:
            extra["place"] = place
        from carbonstep.report.hints import with_hints

        return with_hints(RunReport(
            run_id=run_id, started_at=_iso(start_s + rng.uniform(0, 3) * bool(rank)), duration_s=duration_s,
            status=status, attribution="process", host=host, energy_kwh=energy, energy_kwh_gpu=gpu_kwh,
            energy_kwh_cpu=cpu_kwh, energy_kwh_ram=ram_kwh, facility_kwh=footprint.facility_kwh(energy, site.pue),
            co2_kg=co2, water_l=water, pue=site.pue, wue_l_per_kwh=site.wue_l_per_kwh,
            water_intensity_l_per_kwh=DEFAULT_WATER_L_PER_KWH, intensity=intensity,
            methods={"gpu": "counter", "cpu": "estimate", "ram": "estimate"}, devices=devices, marks=marks,
            epochs=epochs, timeline=timeline, wasted=status in ("failed", "interrupted"), name=name,
            extra=extra, carbonstep_version="synthetic"))

    def jobs(self, count: int) -> Iterator[Job]:
        """``count`` jobs, one at a time."""
        for index in range(count):
            yield self.job(index)


def write_month(out: Path, jobs: int, start: datetime, seed: int = 7, marks_per_run: int = 120) -> list[Job]:
    """Write ``jobs`` jobs' reports under ``out/<project>/<user>/``; returns the jobs (reports included)."""
    written = []
    for job in MonthGenerator(start, seed, marks_per_run=marks_per_run).jobs(jobs):
        folder = out / job.project / job.user
        for report, name in zip(job.reports, job.written):
            report.save(folder / name)
        written.append(job)
    return written


def write_month_files(out: Path, files: int, start: datetime, seed: int = 7, marks_per_run: int = 120) -> int:
    """Write jobs until at least ``files`` report files exist (reports are not kept in memory); returns jobs."""
    count = index = 0
    generator = MonthGenerator(start, seed, marks_per_run=marks_per_run)
    while count < files:
        job = generator.job(index)
        index += 1
        for report, name in zip(job.reports, job.written):
            report.save(out / job.project / job.user / name)
            count += 1
    return index


def replicate_month(source: Path, out: Path, copies: int) -> int:
    """Write ``copies`` copies of a written month's report files under ``out`` (same projects and users), each
    copy's run ids replaced by new ones (the same in a job's reports), so that each copy's jobs are new jobs;
    returns the files written. Many files fast: generating a report costs about 50 times more than copying one."""
    import hashlib
    import os

    written = 0
    for folder, _, names_here in os.walk(source):
        relative = Path(folder).relative_to(source)
        for name in sorted(n for n in names_here if n.startswith("carbonstep-") and n.endswith(".json")):
            run_id = name.removeprefix("carbonstep-").removesuffix(".json").split("-")[0]
            text = (Path(folder) / name).read_text(encoding="utf-8")
            for copy in range(copies):
                new_id = hashlib.sha256(f"{copy}:{run_id}".encode()).hexdigest()[:len(run_id)]
                target = out / relative / name.replace(run_id, new_id)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text.replace(f'"{run_id}"', f'"{new_id}"'), encoding="utf-8")
                written += 1
    return written


def mlflow_run_data(job: Job) -> tuple[dict[str, float], dict[str, str], dict[str, str]]:
    """The metrics, params and tags carbonstep's MLflow sink leaves on a job's run (from its job report)."""
    from carbonstep.report.context import SLURM_VARIABLES
    from carbonstep.report.usage_record import usage_figures, usage_tags

    report = job.reports[0]
    if len(job.reports) > 1 and "parts" not in report.extra:  # a failed job: no job report, ranks added up
        from carbonstep.report.merge import merge

        report = merge(list(job.reports))
    metrics = {"energy_kwh": report.energy_kwh, "co2_kg": report.co2_kg, "water_l": report.water_l,
               "energy_kwh_gpu": report.energy_kwh_gpu, "energy_kwh_cpu": report.energy_kwh_cpu,
               "energy_kwh_ram": report.energy_kwh_ram, **usage_figures(report)}
    i = report.intensity
    params = {names.REGION: i.region or i.region_name, names.INTENSITY_G_PER_KWH: str(i.g_per_kwh),
              names.INTENSITY_SOURCE: i.source, names.PUE: str(report.pue),
              names.DEVICES: ", ".join(f"{d.name} ({d.method})" for d in report.devices)}
    slurm = report.extra.get("slurm", {})
    tags = {f"slurm.{k}": str(v) for k, v in slurm.items() if f"slurm.{k}" in SLURM_VARIABLES}
    tags.update({names.STATUS: report.status, names.WASTED: str(report.wasted).lower(),
                 **usage_tags(report)})
    return metrics, params, tags


def write_mlflow(uri: str, jobs: Sequence[Job]) -> int:
    """Log ``jobs`` as MLflow runs (one per job, as the sink does: rank zero logs) to ``uri``; returns runs."""
    from carbonstep.mlflow_io.client import client as mlflow_client
    from carbonstep.mlflow_io.client import experiment_id, load_entities

    entities = load_entities()
    client = mlflow_client(uri)
    experiments: dict[str, str] = {}
    for job in jobs:
        if job.project not in experiments:
            experiments[job.project] = experiment_id(client, job.project)
        metrics, params, tags = mlflow_run_data(job)
        report = job.reports[0]
        start_ms = int(datetime.fromisoformat(report.started_at).timestamp() * 1000)
        run = client.create_run(experiments[job.project], start_time=start_ms, tags=tags, run_name=report.name)
        client.log_batch(run.info.run_id, metrics=[entities.Metric(k, v, start_ms, 0) for k, v in metrics.items()],
                         params=[entities.Param(k, v) for k, v in params.items()], synchronous=True)
        end_status = {"completed": "FINISHED", "running": "RUNNING", "interrupted": "KILLED"}.get(report.status,
                                                                                                   "FAILED")
        if end_status != "RUNNING":
            client.set_terminated(run.info.run_id, end_status, start_ms + int(report.duration_s * 1000))
    return len(jobs)


def main(argv: Sequence[str] | None = None) -> int:
    """Write a synthetic month (and optionally log it to MLflow)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder for the report files")
    parser.add_argument("--jobs", type=int, default=400)
    parser.add_argument("--month", default="2026-11", help="YYYY-MM (default 2026-11)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--mlflow", help="also log the jobs to this MLflow tracking URI")
    args = parser.parse_args(argv)
    start = datetime.strptime(args.month, "%Y-%m").replace(tzinfo=timezone.utc)
    jobs = write_month(args.out, args.jobs, start, args.seed)
    print(f"wrote {sum(len(j.reports) for j in jobs)} report files of {len(jobs)} jobs under {args.out}")
    if args.mlflow:
        print(f"logged {write_mlflow(args.mlflow, jobs)} runs to {args.mlflow}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
