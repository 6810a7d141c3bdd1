"""A hyperparameter search with Optuna that stops on a carbon budget, and what its carbon bought.

    python integrations/optuna/search.py [--budget-g 0.5] [--trials 40] [--region DE] [--workers 2] [--mlflow]

A small Lightning MLP on synthetic data; each trial trains it with carbonstep's Lightning callback (whose
measurement the trial reuses) and Optuna's median pruner. The study lives in ./optuna-search.db; with
``--workers 2`` a second process searches the same study at once, and both draw on one budget. At the end it
prints where the carbon went (`carbonstep study --storage sqlite:///optuna-search.db`) and writes
optuna-search.png.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import warnings

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import lightning.pytorch as pl  # noqa: E402
import optuna  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from carbonstep import Budget  # noqa: E402
from carbonstep.lightning import CarbonCallback as LightningCarbon  # noqa: E402
from carbonstep.optuna import (  # noqa: E402
    CarbonCallback,
    analyse,
    figures_in,
    stale_trial,
    study_totals,
    trial_costs,
)


class Regressor(pl.LightningModule):
    def __init__(self, width: int, depth: int, lr: float) -> None:
        super().__init__()
        layers: list[torch.nn.Module] = []
        for i in range(depth):
            layers += [torch.nn.Linear(16 if i == 0 else width, width), torch.nn.GELU()]
        self.net = torch.nn.Sequential(*layers, torch.nn.Linear(width, 1))
        self.lr = lr

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.mse_loss(self.net(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.net(x), y))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr)


class ReportToOptuna(pl.Callback):
    """Report val_loss to the trial after each validation; prune it when the pruner says so."""

    def __init__(self, trial: optuna.Trial) -> None:
        self.trial = trial

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        self.trial.report(float(trainer.callback_metrics["val_loss"]), trainer.current_epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"val_loss {float(trainer.callback_metrics['val_loss']):.4f} at epoch "
                                     f"{trainer.current_epoch}")


def data(n: int, seed: int) -> DataLoader:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 16, generator=g)
    y = torch.sin(x[:, :4].sum(dim=1, keepdim=True)) + 0.1 * torch.randn(n, 1, generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=64, shuffle=seed == 0)


def make_objective(region: str, mlflow: bool):
    train, val = data(1024, 0), data(256, 1)

    def objective(trial: optuna.Trial) -> float:
        model = Regressor(trial.suggest_categorical("width", [16, 64, 256]), trial.suggest_int("depth", 1, 3),
                          trial.suggest_float("lr", 1e-4, 3e-2, log=True))
        inner = LightningCarbon(region=region, interval_s=0.2, summary=False, mlflow=None if mlflow else False)
        trainer = pl.Trainer(max_epochs=3, logger=False, callbacks=[inner, ReportToOptuna(trial)],
                             enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                             num_sanity_val_steps=0, default_root_dir="lightning_logs")
        trainer.fit(model, train, val)
        return float(trainer.callback_metrics["val_loss"])

    return objective


def trial_printer(worker: int):
    def print_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        attrs = figures_in(trial.user_attrs)  # carbonstep's figures for this trial
        spent = study_totals(study)["co2_kg"]  # every worker's finished trials, from the storage
        value = f"val_loss {trial.value:.4f}" if trial.state.name == "COMPLETE" else trial.state.name.lower()
        print(f"worker {worker} trial {trial.number:>2} {value:<16} {attrs.get('co2_kg', 0.0) * 1e6:6.2f} "
              f"mg CO2e {attrs.get('energy_kwh', 0.0) * 3.6e6:5.1f} J   study so far {spent * 1e6:6.2f} mg",
              flush=True)

    return print_trial


def start_other_workers(args: argparse.Namespace) -> list[subprocess.Popen]:
    common = ["--budget-g", str(args.budget_g), "--trials", str(args.trials), "--region", args.region,
              "--storage", args.storage] + (["--mlflow"] if args.mlflow else [])
    return [subprocess.Popen([sys.executable, __file__, *common, "--worker", str(w)])
            for w in range(1, args.workers)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget-g", type=float, default=0.5, help="the study's CO2e budget in grams")
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--region", default="DE")
    parser.add_argument("--storage", default="sqlite:///optuna-search.db")
    parser.add_argument("--mlflow", action="store_true", help="one MLflow run per trial (MLflow's default store)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes searching the study at once")
    parser.add_argument("--worker", type=int, default=0, help=argparse.SUPPRESS)  # set for the other workers
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # the storage's heartbeat
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    torch.manual_seed(args.worker)
    if args.workers > 1 or args.worker:
        torch.set_num_threads(1)  # the workers share the CPUs

    storage = optuna.storages.RDBStorage(args.storage, heartbeat_interval=10,  # a killed worker's trial: FAIL
                                         heartbeat_stale_trial_callback=stale_trial)
    study = optuna.create_study(study_name="carbonstep-optuna-example", storage=storage, load_if_exists=True,
                                sampler=optuna.samplers.TPESampler(seed=args.worker),
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1))
    carbon = CarbonCallback(region=args.region, budget=Budget(co2_kg=args.budget_g / 1000), mlflow=args.mlflow,
                            interval_s=0.2)
    others = start_other_workers(args) if not args.worker else []
    if not args.worker:
        print(f"searching with {args.workers} worker(s): up to {args.trials} trials each, budget "
              f"{args.budget_g * 1e3:g} mg CO2e for the study ({args.region})")
    if study.trials and not args.worker:
        print(f"(continuing the study in {args.storage}, which already has {len(study.trials)} trials: its budget "
              "counts them; give another --storage file, or delete this one, to start afresh)")
    study.optimize(carbon.track(make_objective(args.region, args.mlflow)), n_trials=args.trials,
                   callbacks=[carbon, trial_printer(args.worker)])
    if args.worker:
        print(f"worker {args.worker} stopped: {carbon.decision.reason if carbon.decision else 'all trials ran'}")
        return
    for other in others:
        other.wait()

    finished = len([t for t in study.trials if t.state.is_finished()])
    if carbon.decision is not None and carbon.decision.stop:
        print(f"\nstopped by the carbon budget after {finished} trials (up to {args.trials} per worker): "
              f"{carbon.decision.reason}")
    else:
        print(f"\nall {finished} trials ran within the budget")
    result = analyse(trial_costs(study), study.direction.name.lower(), study.study_name)
    print()
    print(result.table())
    print(f"\nwrote {result.save_plot('optuna-search.png')}")
    print(f"the same from the storage: carbonstep study --storage {args.storage} --plot study.png --json study.json")


if __name__ == "__main__":
    main()
