"""``carbonstep compare``: its options and what it does."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from carbonstep.cli.output import check_plot_path
from carbonstep.cli.output import written as write_output

DESCRIPTION = """\
Compare training recipes on the CO2e they spend to reach a validation metric. Runs are grouped into
recipes (several seeds each); for every level of the metric that all runs reach, each recipe's geometric
mean CO2e comes with a 95 % interval (Student t on log CO2e over its runs). The verdict is stated at one
level fixed in advance (the strictest all runs reach, or --level) and names a winner only when the
interval of the ratio excludes no difference: a false winner in 5 % of comparisons (docs/STATISTICS.md)."""

EPILOG = """\
examples:
  carbonstep compare --experiment carbonstep-gelu-study --tracking-uri sqlite:///mlflow.db
  carbonstep compare RUN_ID RUN_ID RUN_ID RUN_ID --group-by param:recipe --plot cmp.png
  carbonstep compare run-a/carbonstep-*.json run-b/carbonstep-*.json --group-by 'name:^(\\w+)'"""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``compare`` on the ``carbonstep`` command's subparsers."""
    p = subparsers.add_parser("compare", help="compare recipes on CO2e per unit of a quality metric, with intervals",
                              description=DESCRIPTION, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="*", help="MLflow run ids or names, or carbonstep report files (none: every "
                                           "finished run of --experiment)")
    p.add_argument("--metric", default="val_loss", help="the quality metric logged at validation (default val_loss)")
    p.add_argument("--mode", choices=["min", "max"], default="min",
                   help="min when lower is better (a loss), max when higher is (accuracy); default min")
    p.add_argument("--group-by", default="auto", metavar="RULE",
                   help="how runs form recipes: auto (tag or param 'recipe', else the name without a seed suffix "
                        "such as '-seed3'), name, name:REGEX (first group), tag:KEY or param:KEY; default auto")
    p.add_argument("--reference", metavar="RECIPE", help="the recipe the others are compared with (default: the "
                                                         "first run's)")
    p.add_argument("--levels", type=int, default=5, help="how many metric levels to tabulate (default 5); all but "
                                                          "the verdict's are context")
    p.add_argument("--level", type=float, help="the metric level the verdict is stated at, chosen before looking "
                                               "(default: the strictest level every run reaches)")
    p.add_argument("--filter", metavar="MLFLOW_FILTER", help="with --experiment and no runs: only the runs matching "
                                                             "this MLflow search filter, e.g. \"tags.study = 'x'\"")
    p.add_argument("--experiment", help="the MLflow experiment to find run names in (and to compare, if no runs "
                                        "are given)")
    p.add_argument("--tracking-uri", help="MLflow tracking URI (default: MLflow's own, e.g. MLFLOW_TRACKING_URI)")
    p.add_argument("--plot", type=Path, help="write the three-panel figure here (.png or .svg; needs the plot extra)")
    p.add_argument("--json", type=Path, help="write the comparison, intervals and verdict as JSON here")
    p.add_argument("--log-artifact", action="store_true",
                   help="attach the --plot and --json files to each compared MLflow run (folder carbonstep-compare)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Compare, print the table and verdict, and write or attach what was asked for."""
    from carbonstep.analysis.compare.compare import compare, dump_json
    from carbonstep.validate import check_output_file

    for option, value in (("--json", args.json), ("--plot", args.plot)):
        if value is not None:
            check_output_file(option, value)
    if args.plot is not None:
        check_plot_path("--plot", args.plot)
    _require_server_for(args.runs, args.tracking_uri)
    result = compare(args.runs, args.metric, args.mode, args.experiment, args.tracking_uri, args.levels,
                     args.group_by, args.reference, args.level, args.filter)
    print(result.table())
    written = []
    if args.json:
        written.append(write_output("--json", args.json, lambda: dump_json(result, args.json)))
    if args.plot:
        written.append(write_output("--plot", args.plot, lambda: result.save_plot(args.plot)))
    for path in written:
        print(f"wrote {path}")
    if args.log_artifact:
        _attach(result, written, args.tracking_uri)
    return 0


def _require_server_for(runs: list[str], tracking_uri: str | None) -> None:
    """A quick, clear error when runs must come from an MLflow server that does not answer (MLflow's own
    retries would block for minutes)."""
    from carbonstep.errors import CarbonstepError
    from carbonstep.mlflow_io.probe import reachable

    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if uri and not (runs and all(Path(run).is_file() for run in runs)) and not reachable(uri):
        raise CarbonstepError(f"the MLflow server {uri} is not reachable: start it, pass --tracking-uri URL, "
                              "or compare report files")


def _attach(result: Any, written: list[Path], tracking_uri: str | None) -> None:
    if not written:
        print("--log-artifact: nothing to attach (give --plot and/or --json)", file=sys.stderr)
        return
    from carbonstep.mlflow_io.client import client as mlflow_client

    client = mlflow_client(tracking_uri)
    for series in result.series:
        if series.run_id is None:
            continue
        for path in written:
            client.log_artifact(series.run_id, str(path), "carbonstep-compare")
