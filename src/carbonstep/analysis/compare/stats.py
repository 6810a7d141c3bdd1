"""The statistics behind ``carbonstep compare``: recipes, intervals, verdicts' numbers.

**Recipes.** Runs are grouped into recipes by a rule (:func:`recipe_of`):

- ``auto`` (default): the run's MLflow tag ``recipe``, else its param ``recipe``, else its name with a
  trailing seed suffix removed (``gelu-seed3``, ``gelu seed 3``, ``gelu_s3`` → ``gelu``);
- ``name``: the run name with the seed suffix removed; ``name:REGEX``: the first group of ``REGEX``
  searched in the name (the whole match when it has no group);
- ``tag:KEY`` / ``param:KEY``: the MLflow tag or param ``KEY`` (MLflow runs only).

**Intervals.** A recipe's CO2e to reach a level is the mean over its runs; its 95 % interval is a
percentile bootstrap over runs (runs resampled with replacement, :data:`RESAMPLES` times, fixed
:data:`SEED`, so the same runs always give the same interval). The difference between two recipes is
the ratio of their means minus one, bootstrapped the same way with each recipe resampled on its own.
A percentile bootstrap is distribution-free but is known to be too narrow with very few runs, so a
winner is named only with at least :data:`MIN_RUNS` runs in each recipe.

**Measurement.** Every run's numbers also carry the error of how energy was obtained
(:data:`MEASUREMENT`). Runs of both recipes measured the same way on the same machine share that
error (it is systematic), so it shifts both recipes and hardly changes their ratio; when recipes were
measured differently, the ratio's interval is widened by the methods' stated errors, and if a method
has no published figure the verdict says the recipes cannot be ranked.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Mapping, Sequence

from carbonstep.errors import ConfigError

RESAMPLES = 4000  #: bootstrap resamples
SEED = 20240601  #: fixed, so an interval is reproducible
MIN_RUNS = 3  #: runs per recipe below which no winner is named
MAX_RUNS_SUGGESTED = 1000  #: beyond this, "more than 1000 runs"
Z_95, Z_POWER_80 = 1.96, 0.84  #: normal quantiles: two-sided 95 %, 80 % power
SEED_SUFFIX = re.compile(r"(?:[-_ .]+s|[-_ .]*seed)[-_ =]?\d+$", re.IGNORECASE)


@dataclass(frozen=True)
class MethodError:
    """What is known about the error of one measurement method."""

    method: str
    relative: float | None  #: ± fraction of the value, None where no published figure was found
    source: str


#: Per method, the published error figure used, and where it comes from.
MEASUREMENT: dict[str, MethodError] = {
    "power": MethodError(
        "power", 0.05,
        "NVIDIA NVML reference, nvmlDeviceGetPowerUsage: 'On Fermi and Kepler GPUs the reading is accurate to "
        "within +/- 5% of current power draw' (no figure is published for later GPUs; used for them too)"),
    "counter": MethodError(
        "counter", None,
        "no single published figure: Khan et al., 'RAPL in Action', ACM TOMPECS 3(2), 2018, find RAPL readings "
        "highly correlated with plug power; Fahad et al., Energies 12(11):2204, 2019, report average errors of "
        "on-chip sensors' dynamic-energy profiles up to 73 % against power meters"),
    "estimate": MethodError(
        "estimate", None,
        "a model (busy CPU time × power per thread, resident memory × W/GB), not a measurement; no published "
        "error figure for it: its numbers follow CPU time, not power"),
}


def recipe_of(name: str, tags: Mapping[str, str], params: Mapping[str, str], rule: str, source: str) -> str:
    """The recipe a run belongs to under ``rule`` (see the module docstring)."""
    kind, _, arg = rule.partition(":")
    if kind == "auto":
        return tags.get("recipe") or params.get("recipe") or _strip_seed(name)
    if kind == "name":
        if not arg:
            return _strip_seed(name)
        found = re.search(arg, name)
        if found is None:
            raise ConfigError(f"--group-by {rule}: run {name!r} does not match {arg!r}; fix the pattern")
        return found.group(1) if found.groups() else found.group(0)
    if kind in ("tag", "param") and arg:
        values = tags if kind == "tag" else params
        if arg not in values:
            raise ConfigError(f"--group-by {rule}: run {name!r} ({source}) has no {kind} {arg!r}; "
                              f"it has: {', '.join(sorted(values)) or 'none (report files have neither)'}")
        return str(values[arg])
    raise ConfigError(f"--group-by {rule!r}: use auto, name, name:REGEX, tag:KEY or param:KEY")


def check_rule(rule: str) -> str:
    """``rule`` if it is well formed (a bad regex or kind raises a ConfigError naming it)."""
    kind, _, arg = rule.partition(":")
    if kind == "name" and arg:
        try:
            re.compile(arg)
        except re.error as exc:
            raise ConfigError(f"--group-by {rule}: {arg!r} is not a regular expression ({exc})") from None
    elif not (kind in ("auto", "name") and not arg) and not (kind in ("tag", "param") and arg):
        raise ConfigError(f"--group-by {rule!r}: use auto, name, name:REGEX, tag:KEY or param:KEY")
    return rule


def _strip_seed(name: str) -> str:
    return SEED_SUFFIX.sub("", name) or name


def _rng():  # noqa: ANN202 - numpy's Generator, imported lazily
    from carbonstep.errors import require

    return require("numpy", "stats").random.default_rng(SEED)


def mean_interval(values: Sequence[float]) -> tuple[float, float, float]:
    """(mean, low, high): the mean and its 95 % percentile-bootstrap interval over the values."""
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, mean, mean
    import numpy

    data = numpy.asarray(values, dtype=float)
    means = data[_rng().integers(0, len(data), (RESAMPLES, len(data)))].mean(axis=1)
    low, high = numpy.percentile(means, [2.5, 97.5])
    return mean, float(min(low, mean)), float(max(high, mean))


def ratio_interval(reference: Sequence[float], other: Sequence[float]) -> tuple[float, float, float]:
    """(pct, low, high): ``other``'s mean relative to ``reference``'s, in %, with a 95 % bootstrap interval."""
    ref_mean = sum(reference) / len(reference)
    pct = (sum(other) / len(other) / ref_mean - 1) * 100 if ref_mean else 0.0
    if len(reference) < 2 or len(other) < 2 or not ref_mean:
        return pct, pct, pct
    import numpy

    rng = _rng()
    a, b = numpy.asarray(reference, dtype=float), numpy.asarray(other, dtype=float)
    a_means = a[rng.integers(0, len(a), (RESAMPLES, len(a)))].mean(axis=1)
    b_means = b[rng.integers(0, len(b), (RESAMPLES, len(b)))].mean(axis=1)
    ratios = (b_means / numpy.where(a_means == 0, numpy.nan, a_means) - 1) * 100
    low, high = numpy.nanpercentile(ratios, [2.5, 97.5])
    return pct, float(min(low, pct)), float(max(high, pct))


def widen(pct: float, low: float, high: float, errors: Sequence[float]) -> tuple[float, float]:
    """The interval widened by independent relative measurement errors (added in quadrature)."""
    margin = math.sqrt(sum(e * e for e in errors)) * (100 + pct)
    return low - margin, high + margin


def runs_needed(runs: int, pct: float, low: float, high: float) -> int | None:
    """Roughly how many runs per recipe would make a difference of ``pct`` % show (95 %, 80 % power).

    The interval's width shrinks as 1/√runs; None when no difference was seen at all.
    """
    standard_error = (high - low) / (2 * Z_95)
    if abs(pct) < 1e-9 or standard_error <= 0:
        return None
    needed = runs * ((Z_95 + Z_POWER_80) * standard_error / abs(pct)) ** 2
    return max(runs + 1, math.ceil(needed))
