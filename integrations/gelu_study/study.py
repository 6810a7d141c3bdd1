"""The eco2AI GELU vs 4-bit GELU study, in miniature: one MLP trained with each activation over several seeds,
on CPU, with the Lightning callback logging into one MLflow experiment; then ``carbonstep compare`` on the
recipes, with intervals over the seeds.

    python integrations/gelu_study/study.py [--seeds 4] [--epochs 3] [--region FR] [--out gelu_study]

Writes gelu_study/comparison.png (the paper's Figure 5 a–c, with intervals) and comparison.json, attaches both
to the runs, saves an MLflow UI view of val_loss against co2_kg, and ends with one screen saying what it found.

Every invocation is one study: its runs carry the tag ``study`` (a new id each time) and names that end in it,
and the comparison takes only that study's runs, so a second study in the same store never pools with the first.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import sys
import time
import warnings
from pathlib import Path
from typing import Any

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
sys.path.insert(0, str(Path(__file__).parent))

import lightning.pytorch as pl  # noqa: E402
import torch  # noqa: E402
from gelu4bit import Gelu4Bit  # noqa: E402
from lightning.pytorch.loggers import MLFlowLogger  # noqa: E402
from mlflow import MlflowClient  # noqa: E402
from screen import EXPERIMENT, final_screen  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from carbonstep.analysis.compare.compare import compare, dump_json  # noqa: E402
from carbonstep.lightning import CarbonCallback  # noqa: E402
from carbonstep.mlflow import save_chart_view  # noqa: E402

RECIPES = ("gelu", "gelu-4bit")
COLOURS = ("#1f77b4", "#ff7f0e")  #: per recipe in the MLflow UI: the comparison figure's first two colours


class Mlp(pl.LightningModule):
    """4 hidden layers of 512 with GELU or the 4-bit GELU between them."""

    def __init__(self, activation: str, width: int = 512, depth: int = 4) -> None:
        super().__init__()
        layers: list[torch.nn.Module] = [torch.nn.Linear(64, width)]
        for _ in range(depth - 1):
            layers += [Gelu4Bit() if activation == "gelu-4bit" else torch.nn.GELU(), torch.nn.Linear(width, width)]
        layers += [torch.nn.GELU(), torch.nn.Linear(width, 1)]
        self.net = torch.nn.Sequential(*layers)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.net(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.net(x), y))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


class Progress(pl.Callback):
    """One line that keeps saying where the study is (a line per run when the output is not a terminal)."""

    def __init__(self, label: str, started: float) -> None:
        self.label, self.started = label, started
        self.tty = sys.stdout.isatty()

    def _say(self, trainer: pl.Trainer, end: str) -> None:
        loss = trainer.callback_metrics.get("val_loss")
        epoch = min(trainer.current_epoch + 1, trainer.max_epochs)
        text = (f"  {self.label}  epoch {epoch}/{trainer.max_epochs}"
                + (f"  val_loss {float(loss):.4f}" if loss is not None else "")
                + f"  ({time.monotonic() - self.started:.0f} s so far)")
        print(("\r" + text.ljust(100)) if self.tty else text, end=end, flush=True)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.tty and not trainer.sanity_checking:
            self._say(trainer, "")

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._say(trainer, "\n" if not self.tty else "")


def threads_to_use() -> int:
    """torch threads: the cores this process may run on, fewer when other work already keeps them busy.

    Oversubscribed cores make torch's worker threads wait on each other (a 10× slow-down was seen on
    2 busy cores), so with a 1-minute load average of L on C cores the study uses round(C - L), at least 1.
    """
    cores = len(os.sched_getaffinity(0))
    return max(1, min(cores, round(cores - os.getloadavg()[0])))


def data(n: int, seed: int) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 64, generator=g)
    y = torch.sin(x[:, :4].sum(dim=1, keepdim=True)) + 0.05 * torch.randn(n, 1, generator=g)
    return TensorDataset(x, y)


def train(recipe: str, seed: int, args: argparse.Namespace, study: str, label: str, started: float) -> tuple[str, Any]:
    """One run: the recipe with this seed (initial weights and batch order); its MLflow run id and report."""
    torch.manual_seed(seed)
    name = run_name(recipe, seed, study)
    logger = MLFlowLogger(experiment_name=EXPERIMENT, run_name=name, tracking_uri=args.tracking_uri,
                          tags={"recipe": recipe, "seed": str(seed), "study": study})
    logger.log_hyperparams({"recipe": recipe, "seed": seed, "epochs": args.epochs, "threads": torch.get_num_threads()})
    callback = CarbonCallback(region=args.region, interval_s=0.2, output_dir=args.out / f"{recipe}-seed{seed}",
                              summary=False, name=name)
    trainer = pl.Trainer(max_epochs=args.epochs, logger=logger, callbacks=[callback, Progress(label, started)],
                         log_every_n_steps=10, val_check_interval=0.25, enable_checkpointing=False,
                         enable_model_summary=False, enable_progress_bar=False, default_root_dir=args.out)
    shuffle = torch.Generator().manual_seed(seed)
    trainer.fit(Mlp(recipe), DataLoader(args.train, batch_size=128, shuffle=True, generator=shuffle),
                DataLoader(args.val, batch_size=512))
    return logger.run_id, callback.report


def new_study_id() -> str:
    """This invocation's study id: the start time and 4 random hex digits (two studies in one second differ)."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


def run_name(recipe: str, seed: int, study: str) -> str:
    """A run's name, unique across studies: ``gelu seed 0 (20261203-161400-ab12)``."""
    return f"{recipe} seed {seed} ({study})"


def study_filter(study: str) -> str:
    """The MLflow search filter for one study's runs (what the comparison and the UI view use)."""
    return f"tags.study = '{study}'"


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="runs per recipe, seeds 0..N-1 (default 5)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run (default 3)")
    parser.add_argument("--samples", type=int, default=8192, help="training samples (default 8192)")
    parser.add_argument("--region", default="FR", help="grid region for the CO2e intensity (default FR)")
    parser.add_argument("--out", type=Path, default=Path("gelu_study"), help="output folder (default gelu_study)")
    parser.add_argument("--tracking-uri", help="MLflow store (default: MLFLOW_TRACKING_URI, else ./mlflow.db)",
                        default=os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path('mlflow.db').resolve()}")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    for name in ("lightning.pytorch", "lightning.fabric", "mlflow"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="lightning")  # deprecation notes between the progress lines
    args.threads = threads_to_use()
    torch.set_num_threads(args.threads)
    args.train, args.val = data(args.samples, 0), data(2048, 1)
    study = args.study = new_study_id()
    total = args.seeds * len(RECIPES)
    print(f"Training {total} runs ({len(RECIPES)} recipes × {args.seeds} seeds, {args.epochs} epochs each) on "
          f"{torch.get_num_threads()} CPU thread(s)…", flush=True)
    started, cpu_started = time.monotonic(), time.process_time()
    run_ids, reports = [], []
    for seed in range(args.seeds):  # interleaved, so a change in machine load falls on both recipes alike
        for recipe in RECIPES:
            label = f"[{len(run_ids) + 1}/{total}] {recipe} seed {seed}"
            run_id, report = train(recipe, seed, args, study, label, started)
            run_ids.append(run_id)
            reports.append(report)
    wall_s, cpu_s = time.monotonic() - started, time.process_time() - cpu_started
    result = compare([], "val_loss", experiment=EXPERIMENT, tracking_uri=args.tracking_uri,
                     run_filter=study_filter(study))  # this study's runs only, the verdict at the common best level
    dump_json(result, args.out / "comparison.json")
    result.save_plot(args.out / "comparison.png")
    client = MlflowClient(args.tracking_uri)
    for run_id in run_ids:
        for name in ("comparison.png", "comparison.json"):
            client.log_artifact(run_id, str(args.out / name), "carbonstep-compare")
    colours = dict(zip(RECIPES, COLOURS))
    run_colours = {series.run_id: colours[summary.recipe] for series, summary in zip(result.series, result.runs)}
    url_path = save_chart_view(EXPERIMENT, "val_loss", group_param="recipe", search_filter=study_filter(study),
                               run_colours=run_colours, mlflow_client=client)
    print(final_screen(result, reports[0], args, wall_s, cpu_s, url_path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
