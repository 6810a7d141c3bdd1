"""The statistics behind ``carbonstep compare``: recipes, intervals, verdicts' numbers.

**Recipes.** Runs are grouped into recipes by a rule (:func:`recipe_of`):

- ``auto`` (default): the run's MLflow tag ``recipe``, else its param ``recipe``, else its name with a
  trailing seed suffix removed (``gelu-seed3``, ``gelu seed 3``, ``gelu_s3`` → ``gelu``);
- ``name``: the run name with the seed suffix removed; ``name:REGEX``: the first group of ``REGEX``
  searched in the name (the whole match when it has no group);
- ``tag:KEY`` / ``param:KEY``: the MLflow tag or param ``KEY`` (MLflow runs only).

**Intervals.** CO2e is positive and its run-to-run noise multiplicative, so the statistics work on
log CO2e. A recipe's centre is the geometric mean over its runs, with a 95 % Student-t interval on the
logs (n − 1 degrees of freedom). Two recipes differ by the ratio of their geometric means, with a
95 % t interval on the difference of mean logs: pooled variance (Student, 2n − 2 degrees of freedom)
when both recipes have the same number of runs, Welch–Satterthwaite degrees of freedom when they do
not. The method was chosen by simulation against Welch, a percentile bootstrap and a bootstrap-t
(docs/STATISTICS.md; ``scripts/compare_calibration.py``): it is the one whose false-winner rate is 5 %
and coverage 95 % from 2 runs per recipe on. A winner is named when the interval excludes zero, at one
level fixed before looking (the strictest every run reaches, or the one the user names).

**Runs needed.** When no winner is named, :func:`runs_needed` is a power calculation on the same
model: the smallest number of runs per recipe at which the t test would detect the difference seen,
with the spread seen, in 80 % of studies (noncentral t).

**Measurement.** Every run's numbers also carry the error of how energy was obtained
(:data:`MEASUREMENT`). Runs of both recipes measured the same way on the same machine share that
error (it is systematic), so it shifts both recipes and hardly changes their ratio; when recipes were
measured differently, the ratio's interval is widened by the methods' stated errors, and if a method
has no published figure the verdict says the recipes cannot be ranked.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from carbonstep.errors import ConfigError

LEVEL = 0.95  #: two-sided confidence of every interval; 1 - LEVEL is the false-winner rate
POWER = 0.80  #: the chance of detecting a difference that "runs needed" aims at
MIN_RUNS = 2  #: runs per recipe below which there is no estimate of variation, so no winner is named
MAX_RUNS_SUGGESTED = 1000  #: beyond this, "more than 1000 runs"
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


def _t() -> Any:
    """scipy.stats.t, or one clear error naming the extra."""
    from carbonstep.errors import require

    return require("scipy.stats", "stats").t


@functools.lru_cache(maxsize=1024)
def _t_quantile(probability: float, df: float) -> float:
    """Student t's quantile, remembered: a comparison asks for the same few (level, degrees of freedom) pairs
    at every metric level and every step of :func:`runs_needed`, and each scipy call costs a fraction of a ms."""
    return float(_t().ppf(probability, df))


def _logs(values: Sequence[float]) -> list[float] | None:
    return [math.log(v) for v in values] if all(v > 0 for v in values) else None


def mean_interval(values: Sequence[float]) -> tuple[float, float, float]:
    """(geometric mean, low, high): the 95 % Student-t interval of the mean log, back on the original scale.

    Values that are not all positive fall back to the arithmetic mean with no interval.
    """
    logs = _logs(values)
    if logs is None or len(values) < 2:
        mean = sum(values) / len(values)
        return mean, mean, mean
    n = len(logs)
    centre = sum(logs) / n
    sd = math.sqrt(sum((x - centre) ** 2 for x in logs) / (n - 1))
    half = _t_quantile(0.5 + LEVEL / 2, n - 1) * sd / math.sqrt(n)
    return math.exp(centre), math.exp(centre - half), math.exp(centre + half)


def log_ratio_intervals(reference: Any, other: Any, level: float = LEVEL) -> tuple[Any, Any, Any, Any, Any]:
    """Vectorised over studies: ``reference`` and ``other`` are arrays of log CO2e, one study a row.

    Returns per study (difference of mean logs, its low and high bound, the spread of the logs used, degrees
    of freedom): pooled when the two have the same number of runs, Welch–Satterthwaite otherwise.
    """
    import numpy

    a, b = numpy.atleast_2d(numpy.asarray(reference, float)), numpy.atleast_2d(numpy.asarray(other, float))
    n, m = a.shape[1], b.shape[1]
    va, vb = a.var(axis=1, ddof=1), b.var(axis=1, ddof=1)
    diff = b.mean(axis=1) - a.mean(axis=1)
    if n == m:
        pooled = ((n - 1) * va + (m - 1) * vb) / (n + m - 2)
        se, df = numpy.sqrt(pooled * (1 / n + 1 / m)), numpy.full(diff.shape, float(n + m - 2))
        spread = numpy.sqrt(pooled)
        half = _t_quantile(0.5 + level / 2, float(n + m - 2)) * se  # one quantile serves every study
        return diff, diff - half, diff + half, spread, df
    else:
        ua, ub = va / n, vb / m
        se = numpy.sqrt(ua + ub)
        with numpy.errstate(divide="ignore", invalid="ignore"):
            df = numpy.where(se > 0, (ua + ub) ** 2 / (ua ** 2 / (n - 1) + ub ** 2 / (m - 1)), float(n + m - 2))
        spread = numpy.sqrt(((n - 1) * va + (m - 1) * vb) / (n + m - 2))
    half = _t().ppf(0.5 + level / 2, df) * se
    return diff, diff - half, diff + half, spread, df


def ratio_interval(reference: Sequence[float], other: Sequence[float]) -> tuple[float, float, float, int | None]:
    """(pct, low, high, runs needed): the ratio of ``other``'s geometric mean to ``reference``'s, minus one, in %,
    its 95 % interval, and :func:`runs_needed` for the difference seen (None: no difference, or no interval).

    With fewer than 2 runs in either, or a value that is not positive, the interval is the point itself.
    """
    a, b = _logs(reference), _logs(other)
    if a is None or b is None:
        mean_a = sum(reference) / len(reference)
        pct = (sum(other) / len(other) / mean_a - 1) * 100 if mean_a else 0.0
        return pct, pct, pct, None
    pct = (math.exp(sum(b) / len(b) - sum(a) / len(a)) - 1) * 100
    if len(a) < MIN_RUNS or len(b) < MIN_RUNS:
        return pct, pct, pct, None
    diff, low, high, spread, _ = (float(x[0]) for x in log_ratio_intervals(a, b))
    return (pct, (math.exp(low) - 1) * 100, (math.exp(high) - 1) * 100,
            runs_needed(diff, spread) if low <= 0 <= high else None)


SPREAD_NOTE = 2.0  #: recipes whose run-to-run spreads differ this many times get a note: outside the calibration


def spread_ratio(reference: Sequence[float], other: Sequence[float]) -> float | None:
    """How many times larger one recipe's spread of log CO2e is than the other's (None: not measurable)."""
    a, b = _logs(reference), _logs(other)
    if a is None or b is None or min(len(a), len(b)) < MIN_RUNS:
        return None
    sds = [math.sqrt(sum((x - sum(v) / len(v)) ** 2 for x in v) / (len(v) - 1)) for v in (a, b)]
    return max(sds) / min(sds) if min(sds) > 0 else None


def widen(pct: float, low: float, high: float, errors: Sequence[float]) -> tuple[float, float]:
    """The interval widened by independent relative measurement errors (added in quadrature)."""
    margin = math.sqrt(sum(e * e for e in errors)) * (100 + pct)
    return low - margin, high + margin


def power(runs: int, diff: float, spread: float, level: float = LEVEL) -> float:
    """The chance that ``runs`` runs per recipe name a winner in the right direction, for a true difference of
    mean logs ``diff`` and a run-to-run spread of the logs ``spread`` (the pooled t test's noncentral t)."""
    from carbonstep.errors import require

    nct = require("scipy.stats", "stats").nct
    df = 2 * runs - 2
    critical = _t_quantile(0.5 + level / 2, df)
    return float(nct.sf(critical, df, abs(diff) / (spread * math.sqrt(2 / runs))))


def runs_needed(diff: float, spread: float, target: float = POWER) -> int | None:
    """The fewest runs per recipe (≥ 2) at which a difference of mean logs ``diff`` with run-to-run spread of
    the logs ``spread`` is found in ``target`` of studies; None when no difference was seen at all, and
    :data:`MAX_RUNS_SUGGESTED` + 1 when even that many would not do."""
    if abs(diff) < 1e-12:
        return None
    if spread <= 0:
        return MIN_RUNS
    from statistics import NormalDist

    high = MAX_RUNS_SUGGESTED + 1
    normal = NormalDist()  # the search starts at the z test's run count, 2((z_level + z_power)·spread/diff)²
    guess = 2 * ((normal.inv_cdf(0.5 + LEVEL / 2) + normal.inv_cdf(target)) * spread / abs(diff)) ** 2
    start = max(math.ceil(guess), MIN_RUNS) if guess < high else high  # (not NaN, nor too large to round)
    return first_reaching(lambda runs: runs >= high or power(runs, diff, spread) >= target, start, MIN_RUNS, high)


def first_reaching(reaches: Callable[[int], bool], start: int, low: int, high: int) -> int:
    """The smallest whole number in [``low``, ``high``] for which ``reaches`` (false, then true from some number on;
    true at ``high``) holds: galloping from ``start`` to bracket it, then bisecting. With a good ``start`` that is
    two or three calls of ``reaches`` (a plain bisection of [2, 1001] takes ten)."""
    step = 1
    if reaches(start):  # the answer is start or below: walk down, doubling the step, until one does not reach
        above, below = start, start - 1
        while below >= low and reaches(below):
            above, step = below, step * 2
            below = above - step
        below = max(below, low - 1)
    else:  # the answer is above start: walk up, doubling the step, until one reaches
        below, above = start, start + 1
        while above < high and not reaches(above):
            below, step = above, step * 2
            above = below + step
        above = min(above, high)
    while above - below > 1:  # reaches(above), and not reaches(below) (or below is under low): bisect
        middle = (above + below) // 2
        if reaches(middle):
            above = middle
        else:
            below = middle
    return above
