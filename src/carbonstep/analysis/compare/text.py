"""The words of a comparison: its table (with headers, units chosen by magnitude) and its verdict."""

from __future__ import annotations

from typing import Any, Protocol

from carbonstep.analysis.compare import stats
from carbonstep.analysis.compare.records import LevelRow, RecipeSummary, RunSummary
from carbonstep.report.formatting import format_energy, format_volume
from carbonstep.report.units import format_mass_interval, short_mass


class Comparison(Protocol):
    """What the words are made from (:class:`carbonstep.analysis.compare.Comparison` has it)."""

    metric: str
    mode: str
    runs: list[RunSummary]
    levels: list[LevelRow]
    recipes: list[RecipeSummary]
    verdict: str
    notes: list[str]
    group_by: str
    measurement: list[dict[str, Any]]

GROUP_RULES = {
    "auto": "the run's tag or param 'recipe', else its name without a seed suffix",
    "name": "the run name without a seed suffix",
}


def _sign(mode: str) -> str:
    return "≤" if mode == "min" else "≥"


def _pct_interval(low: float, high: float) -> str:
    return f"95 % interval {low:+.1f} to {high:+.1f} %"


def measurement_notes(methods: list[str]) -> list[dict[str, Any]]:
    """Per method the recipes used: its stated error (None: no published figure) and where it comes from."""
    used: dict[str, list[int]] = {}
    for index, text in enumerate(methods):
        for part in text.split(","):
            if part.strip():
                used.setdefault(part.split(":")[-1].strip(), []).append(index)
    notes = []
    for method in sorted(used):
        known = stats.MEASUREMENT.get(method)
        notes.append({"method": method, "relative": known.relative if known else None,
                      "source": known.source if known else "not a carbonstep method"})
    return notes


def _runs_table(result: Comparison) -> list[str]:
    width = max(12, *(len(r.name) for r in result.runs))
    recipe_width = max(6, *(len(r.recipe) for r in result.runs))
    embodied = any(r.embodied_co2_kg is not None for r in result.runs)  # its own column, never added to CO2e
    lines = [f"{'run':<{width}}  {'recipe':<{recipe_width}} {'final':>9} {'best':>9} {'energy':>11} "
             f"{'CO2e':>11}{' embodied CO2e' if embodied else ''} {'water':>9} {'CO2e to best':>13}"]
    for r in result.runs:
        cell = short_mass(r.embodied_co2_kg) if r.embodied_co2_kg is not None else "–"
        extra = f" {cell:>13}" if embodied else ""
        lines.append(f"{r.name:<{width}}  {r.recipe:<{recipe_width}} {r.final:>9.4g} {r.best:>9.4g} "
                     f"{format_energy(r.energy_kwh):>11} {short_mass(r.co2_kg):>11}{extra} "
                     f"{format_volume(r.water_l):>9} "
                     f"{short_mass(r.co2_to_best_kg):>13}{'  *' if r.interpolated else ''}")
    return lines


def _recipe_lines(result: Comparison) -> list[str]:
    rule = GROUP_RULES.get(result.group_by, result.group_by)
    lines = [f"Recipes (grouped by {rule}); the first is the reference:"]
    width = max(len(r.name) for r in result.recipes)
    for recipe in result.recipes:
        count = len(recipe.runs)
        lines.append(f"  {recipe.name:<{width}}  {count} run{'s' if count != 1 else ''}"
                     + (f", measured by {recipe.methods}" if recipe.methods else ""))
    return lines


def _cell(row: LevelRow, i: int) -> str:
    text = format_mass_interval(row.co2_kg[i], row.low_kg[i], row.high_kg[i], compact=True)
    if i == 0:
        return text
    return (f"{text} {row.diff_pct[i]:+.1f} %"
            + (f" [{row.diff_pct_low[i]:+.1f}, {row.diff_pct_high[i]:+.1f}]"
               if row.diff_pct_high[i] > row.diff_pct_low[i] else "")
            + ("" if row.outcome[i] == "context" else f" {row.outcome[i]}"))


def _level_lines(result: Comparison) -> list[str]:
    names = [r.name for r in result.recipes]
    header = [f"{result.metric} {_sign(result.mode)}", *names]
    cells = [[f"{row.level:.4g}", *(_cell(row, i) for i in range(len(names)))] for row in result.levels]
    widths = [max(len(line[c]) for line in [header, *cells]) for c in range(len(header))]
    lines = ["", f"CO2e to first reach each level: geometric mean over the recipe's runs [95 % interval]; "
             f"difference vs {names[0]} in % [95 % interval]. The verdict is stated at the last level, fixed before "
             f"looking; the rows above it are context, not further chances to name a winner:"]
    for index, line in enumerate([header, *cells]):
        lines.append("  " + " | ".join(f"{text:>{widths[0]}}" if c == 0 else f"{text:<{widths[c]}}"
                                       for c, text in enumerate(line)).rstrip()
                     + ("  ← verdict" if index == len(cells) else ""))
    return lines


def _measurement_lines(result: Comparison) -> list[str]:
    lines = []
    for note in result.measurement:
        error = f"±{note['relative'] * 100:.0f} %" if note["relative"] is not None else "error not quantified"
        lines.append(f"  {note['method']}: {error} ({note['source']})")
    if not lines:
        return []
    same = len({r.methods for r in result.recipes}) == 1
    tail = ("All recipes were measured the same way: that error shifts them alike and hardly changes their ratio."
            if same else "Recipes were measured differently: the differences' intervals include the methods' errors.")
    return ["", "Measurement:", *lines, f"  {tail}"]


def render(result: Comparison) -> str:
    """The comparison as text: runs, recipes, level rows with headers, measurement, notes, verdict."""
    lines = _runs_table(result)
    if result.recipes:
        lines += ["", *_recipe_lines(result)]
    if result.levels and len(result.recipes) > 1:
        lines += _level_lines(result)
    lines += _measurement_lines(result)
    lines += [f"* {n}" for n in result.notes] + ["", result.verdict]
    return "\n".join(lines)


def _one_recipe(result: Comparison) -> str:
    recipe, row = result.recipes[0], result.levels[-1]
    if len(recipe.runs) == 1:
        run = result.runs[0]
        return f"{recipe.name}: {short_mass(run.co2_to_best_kg)} CO2e to reach its best {result.metric} {run.best:.4g}."
    return (f"{recipe.name}: {format_mass_interval(recipe.co2_kg, recipe.low_kg, recipe.high_kg)} CO2e to reach "
            f"{result.metric} {_sign(result.mode)} {row.level:.4g} (geometric mean over {len(recipe.runs)} runs).")


def _pair(result: Comparison, i: int) -> str:
    row, names = result.levels[-1], [r.name for r in result.recipes]
    other, ref = names[i], names[0]
    at = f"{result.metric} {_sign(result.mode)} {row.level:.4g}"
    pct, outcome = row.diff_pct[i], row.outcome[i]
    more = "less" if pct < 0 else "more"
    amounts = f"{short_mass(row.co2_kg[i])} vs {short_mass(row.co2_kg[0])}"
    if outcome == "no variation":
        single = [n for n, count in zip((ref, other), (row.runs[0], row.runs[i])) if count == 1]
        return (f"In {'one run each' if len(single) == 2 else 'one run of ' + single[0]}, {other} reached {at} with "
                f"{abs(pct):.1f} % {more} CO2e than {ref} ({amounts}); with one run per recipe the comparison has no "
                f"estimate of run-to-run variation, so no winner can be named: run at least {stats.MIN_RUNS} seeds "
                f"per recipe.")
    interval = _pct_interval(row.diff_pct_low[i], row.diff_pct_high[i])
    if outcome == "no interval":
        return (f"{other} vs {ref} at {at}: {pct:+.1f} % CO2e ({amounts}), but some runs reached it before any CO2e "
                f"was recorded: no ratio interval exists there, so no winner is named; name a stricter --level.")
    if outcome == "not comparable":
        return (f"{other} and {ref} cannot be ranked at {at}: they were measured by different methods "
                f"({result.recipes[i].methods} vs {result.recipes[0].methods}) and no published error figure covers "
                f"the difference ({pct:+.1f} % CO2e).")
    counts = f"{row.runs[i]} and {row.runs[0]} runs"
    if outcome in ("less", "more"):
        rate = (f"a false winner is named in {ERROR_RATE} of comparisons like this" if row.runs[0] == row.runs[i] else
                f"a false winner is named in about {ERROR_RATE} of comparisons like this, unequal run counts: "
                f"docs/STATISTICS.md")
        return (f"{other} reaches {at} with {abs(pct):.1f} % {more} CO2e than {ref} ({amounts}; {interval}; {counts}; "
                f"{rate}).")
    needed = row.runs_needed[i] if len(row.runs_needed) > i else None
    return (f"{other} and {ref} are indistinguishable at {at}: {other} {pct:+.1f} % CO2e ({amounts}; {interval}; "
            f"{counts}). The data are consistent with no difference and with any difference inside the interval; "
            f"{_advice(needed)}.")


ERROR_RATE = f"{(1 - stats.LEVEL) * 100:.0f} %"  #: as measured in docs/STATISTICS.md


def _advice(needed: int | None) -> str:
    if needed is None:
        return "no difference was seen at all"
    if needed > stats.MAX_RUNS_SUGGESTED:
        return f"more than {stats.MAX_RUNS_SUGGESTED} runs per recipe would be needed to tell a difference this small"
    return (f"about {needed} runs per recipe would find a difference of this size, if it is real, in "
            f"{stats.POWER * 100:.0f} % of studies")


def verdict(result: Comparison) -> str:
    """One sentence per recipe compared with the reference, at the verdict's level (the last row)."""
    if len(result.recipes) == 1:
        return _one_recipe(result)
    return " ".join(_pair(result, i) for i in range(1, len(result.recipes)))
