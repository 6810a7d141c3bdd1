"""``carbonstep study``: what a hyperparameter search bought with its carbon (Optuna storage or MLflow runs)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from carbonstep.cli.output import check_plot_path, written
from carbonstep.errors import CarbonstepError
from carbonstep.validate import check_output_file


def add_parser(subparsers: Any) -> None:
    """Register ``carbonstep study``."""
    p = subparsers.add_parser("study", help="what a hyperparameter search bought with its carbon (Optuna)")
    p.add_argument("--storage", help="Optuna storage, e.g. sqlite:///study.db")
    p.add_argument("--study", help="study name (default: the storage's only study; the MLflow experiment name)")
    p.add_argument("--mlflow-experiment", help="read the trials from this MLflow experiment's runs instead")
    p.add_argument("--tracking-uri", help="MLflow tracking URI (with --mlflow-experiment)")
    p.add_argument("--metric", default="value", help="the objective's MLflow metric (default: value)")
    p.add_argument("--json", type=Path, help="write the analysis as JSON")
    p.add_argument("--plot", type=Path, help="write the three-panel figure (.png or .svg)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """``carbonstep study``: the table, and the JSON and plot when asked."""
    if (args.storage is None) == (args.mlflow_experiment is None):
        raise CarbonstepError("read the study from one place: --storage URL [--study NAME] or --mlflow-experiment NAME")
    for option, value in (("--json", args.json), ("--plot", args.plot)):
        if value is not None:
            check_output_file(option, value)  # before any reading: a bad path is one line, at once
    if args.plot is not None:
        check_plot_path("--plot", args.plot)
    from carbonstep.analysis.study.study import analyse, dump_json, trials_from_mlflow

    if args.storage is not None:
        from carbonstep.callbacks.optuna import load_trials  # optuna itself is imported only when used
        from carbonstep.mlflow_io.stores import check_readable_store

        check_readable_store(args.storage, "optuna")  # never creates a storage or adds Optuna's tables
        trials, direction, name = load_trials(args.storage, args.study)
    else:
        from carbonstep.mlflow_io.probe import reachable
        from carbonstep.mlflow_io.stores import check_readable_store

        uri = args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
        if uri and not reachable(uri):  # MLflow's own retries would block for minutes
            raise CarbonstepError(f"the MLflow server {uri} is not reachable: start it, or pass --tracking-uri URL")
        if uri:
            check_readable_store(uri, "mlflow")
        trials, direction = trials_from_mlflow(args.mlflow_experiment, args.tracking_uri, args.metric)
        name = args.mlflow_experiment
    result = analyse(trials, direction, name)
    print(result.table())
    if args.json:
        print(f"wrote {written('--json', args.json, lambda: dump_json(result, args.json))}")
    if args.plot:
        print(f"wrote {written('--plot', args.plot, lambda: result.save_plot(args.plot))}")
    return 0
