"""The study's last screen: what was compared, what each recipe cost, the verdict, how it was measured, and how
to see it in the MLflow UI."""

from __future__ import annotations

import argparse
import textwrap
from typing import Any

from carbonstep.analysis.compare.compare import Comparison
from carbonstep.report.units import format_energy_interval, format_mass_interval

PORT = 5000
EXPERIMENT = "carbonstep-gelu-study"  #: study.py's experiment


def _wrap(text: str, indent: str = "  ") -> str:
    return textwrap.fill(text, 100, initial_indent=indent, subsequent_indent=indent + "  ")


def _recipes(result: Comparison) -> list[str]:
    row = result.levels[-1]
    width = max(len(r.name) for r in result.recipes)
    lines = [f"To reach the best validation loss every run reached (val_loss ≤ {row.level:.4g}), geometric mean "
             f"over seeds (95 % interval):"]
    for recipe in result.recipes:
        lines.append(f"  {recipe.name:<{width}}  {format_mass_interval(recipe.co2_kg, recipe.low_kg, recipe.high_kg)}"
                     f" CO2e   {format_energy_interval(recipe.energy_kwh, recipe.low_kwh, recipe.high_kwh)}"
                     f"   ({len(recipe.runs)} run{'s' if len(recipe.runs) != 1 else ''})")
    return lines


def _measurement(report: Any) -> list[str]:
    lines = ["How energy was obtained on this machine:"]
    for device in report.devices:
        lines.append(_wrap(f"{device.domain}: {device.method} — {device.description}"))
    if {d.method for d in report.devices} == {"estimate"}:
        lines.append(_wrap("No energy counter or power sensor is readable here, so these are estimates that follow "
                           "CPU time and memory, not measured power; no published error figure exists for them. Both "
                           "recipes share the estimate, so their ratio is still meaningful; the absolute numbers "
                           "are rough."))
    return lines


def _ui(args: argparse.Namespace, url_path: str) -> list[str]:
    command = (f"MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false .venv/bin/mlflow server --workers 1 --host 127.0.0.1 "
               f"--port {PORT} --backend-store-uri {args.tracking_uri}")
    return ["See the runs in MLflow (val_loss against co2_kg, grouped by recipe, already set up):",
            f"  scripts/mlflow-ui {args.tracking_uri}     # from the repository root: the command below",
            f"  {command}",
            f"  then open http://127.0.0.1:{PORT}{url_path}"]


def final_screen(result: Comparison, report: Any, args: argparse.Namespace, wall_s: float, cpu_s: float,
                 url_path: str) -> str:
    """The whole screen, as text."""
    rule = "═" * 100
    threads = args.threads
    lines = ["", rule, "GELU vs 4-bit GELU: the CO2e each needed to reach the same validation loss", rule,
             _wrap(f"Compared: an MLP (4 hidden layers of 512) trained on {args.samples} synthetic samples with "
                   f"torch's GELU and with a 4-bit GELU (same forward pass, 4-bit backward pass), {args.seeds} "
                   f"seed{'s' if args.seeds != 1 else ''} each, {args.epochs} epochs per run. Training took "
                   f"{wall_s:.0f} s ({cpu_s:.0f} CPU-seconds) on {threads} CPU thread{'s' if threads != 1 else ''}.",
                   ""), ""]
    lines += _recipes(result) + ["", "Verdict:", _wrap(result.verdict),
                                 _wrap("How to read it: docs/STATISTICS.md (a winner is named only when the 95 % "
                                       "interval excludes no difference; false winners: 5 % of comparisons)."), ""]
    lines += ["This study's runs only (tag study = " + args.study + "); to compare them again:",
              f"  carbonstep compare --experiment {EXPERIMENT} --filter \"tags.study = '{args.study}'\" "
              f"--tracking-uri {args.tracking_uri}", ""]
    lines += _measurement(report) + [""]
    lines += [f"Files: {args.out / 'comparison.png'} (figure with intervals), {args.out / 'comparison.json'}", ""]
    lines += _ui(args, url_path) + [rule]
    return "\n".join(lines)
