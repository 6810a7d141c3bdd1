"""Calibration of ``carbonstep compare``'s verdict by simulation: false winners, coverage, power, runs needed.

    .venv/bin/python scripts/compare_calibration.py                 # print the tables of docs/STATISTICS.md
    .venv/bin/python scripts/compare_calibration.py --alternatives  # the methods not chosen, measured (~1 min)

Each simulated study draws the CO2e-to-reach-a-level of two recipes, ``n`` runs each, as a recipe's true value
times run-to-run noise of mean 1 and coefficient of variation ``cv``:

- lognormal: exp(σZ − σ²/2) with σ² = ln(1 + cv²);
- normal: 1 + cv·Z, truncated to positive values (a draw ≤ 0 is redrawn: CO2e is positive; at 40 % CV that is
  P(Z < −2.5) = 0.6 % of draws, at 20 % and 5 % practically none).

The two recipes share the noise's distribution, so their true ratio (of means, of medians, of geometric means)
is the ratio of their true values. Every study is judged by
``carbonstep.analysis.compare.stats.log_ratio_intervals``, the function ``compare`` itself uses, vectorised over
studies. Fixed seeds: the tables are the same on every run.
"""

from __future__ import annotations

import functools
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from carbonstep.analysis.compare import stats  # noqa: E402

STUDIES = 20_000  #: simulated studies per case
SEED = 20261203
RUNS = (2, 3, 5, 10)
CVS = (0.05, 0.20, 0.40)
KINDS = ("lognormal", "normal")
TRUE_RATIO = 1.3  #: the difference coverage and power are measured at: +30 %
POWER_RATIOS = (1.1, 1.2, 1.3, 1.5)
POWER_RUNS = (2, 3, 5, 10, 20)


def noise(rng: Any, kind: str, cv: float, shape: tuple[int, int]) -> Any:
    """Run-to-run noise of mean 1 and coefficient of variation ``cv`` (see the module docstring)."""
    if kind == "lognormal":
        sigma = math.sqrt(math.log1p(cv * cv))
        return rng.lognormal(-sigma * sigma / 2, sigma, shape)
    draws = rng.normal(1.0, cv, shape)
    bad = draws <= 0
    while bad.any():
        draws[bad] = rng.normal(1.0, cv, int(bad.sum()))
        bad = draws <= 0
    return draws


def log_noise(rng: Any, kind: str, cv: float, shape: tuple[int, int]) -> Any:
    """The natural logs of :func:`noise`'s draws from the same generator state (what the intervals work on).

    Lognormal noise is drawn on the log scale directly: numpy's ``Generator.lognormal`` is ``exp`` of
    ``Generator.normal`` with the same parameters on the same stream (bit for bit:
    tests/test_compare_calibration.py checks it), so this skips an exp and a log per draw and differs from
    ``log(noise(...))`` by at most a rounding (1e-16). Normal noise: the logs of its draws.
    """
    if kind == "lognormal":
        sigma = math.sqrt(math.log1p(cv * cv))
        return rng.normal(-sigma * sigma / 2, sigma, shape)
    import numpy

    return numpy.log(noise(rng, kind, cv, shape))


def intervals(reference: Any, other: Any) -> tuple[Any, Any]:
    """Per study, the low and high bound of the log ratio (compare's own function)."""
    _, low, high, _, _ = stats.log_ratio_intervals(reference, other)
    return low, high


@dataclass(frozen=True)
class Case:
    """One row of the calibration table."""

    kind: str
    cv: float
    runs: int
    false_winners: float  #: share of same-distribution studies with a winner named
    coverage: float  #: share of +30 % studies whose interval holds ln 1.3
    power: float  #: share of +30 % studies naming the right winner
    wrong: float  #: share of +30 % studies naming the wrong winner
    studies: int

    @property
    def error(self) -> float:
        """The simulation's standard error of a 5 % rate over these studies."""
        return math.sqrt(0.05 * 0.95 / self.studies)


def case(kind: str, cv: float, runs: int, studies: int = STUDIES) -> Case:
    """Simulate one case: ``studies`` studies of two identical recipes and ``studies`` with a +30 % one."""
    import numpy

    rng = numpy.random.default_rng([SEED, KINDS.index(kind), int(cv * 100), runs])
    reference = log_noise(rng, kind, cv, (studies, runs))
    same = log_noise(rng, kind, cv, (studies, runs))
    worse = math.log(TRUE_RATIO) + log_noise(rng, kind, cv, (studies, runs))
    low, high = intervals(reference, same)
    false_winners = float(numpy.mean((low > 0) | (high < 0)))
    low, high = intervals(reference, worse)
    truth = math.log(TRUE_RATIO)
    coverage = float(numpy.mean((low <= truth) & (truth <= high)))
    return Case(kind, cv, runs, false_winners, coverage, float(numpy.mean(low > 0)), float(numpy.mean(high < 0)),
                studies)


@functools.cache  # fixed seeds: the same tables every call
def calibration() -> list[Case]:
    """Every case: noise kinds × CVs × runs per recipe."""
    return [case(kind, cv, runs) for kind in KINDS for cv in CVS for runs in RUNS]


@functools.cache  # fixed seeds: the same tables every call
def power_table(cv: float = 0.20) -> list[tuple[int, list[float]]]:
    """Per runs per recipe: the simulated share of studies naming the right winner, per true ratio (lognormal)."""
    import numpy

    rows = []
    for runs in POWER_RUNS:
        rng = numpy.random.default_rng([SEED, 7, runs])
        found = []
        for ratio in POWER_RATIOS:
            low, _ = intervals(log_noise(rng, "lognormal", cv, (STUDIES, runs)),
                               math.log(ratio) + log_noise(rng, "lognormal", cv, (STUDIES, runs)))
            found.append(float(numpy.mean(low > 0)))
        rows.append((runs, found))
    return rows


@functools.cache  # fixed seeds: the same tables every call
def runs_needed_check() -> list[tuple[float, float, int | None, float, float]]:
    """Per (true ratio, CV): the runs :func:`stats.runs_needed` asks for, and the simulated share of studies that
    find the difference at that many runs and at one fewer (lognormal noise, the model's own)."""
    import numpy

    rows = []
    for cv in CVS:
        spread = math.sqrt(math.log1p(cv * cv))
        for ratio in POWER_RATIOS:
            needed = stats.runs_needed(math.log(ratio), spread)
            shares = []
            for runs in (needed, needed - 1):
                if runs < stats.MIN_RUNS:
                    shares.append(float("nan"))
                    continue
                rng = numpy.random.default_rng([SEED, 11, int(cv * 100), int(ratio * 100), runs])
                low, _ = intervals(log_noise(rng, "lognormal", cv, (STUDIES, runs)),
                                   math.log(ratio) + log_noise(rng, "lognormal", cv, (STUDIES, runs)))
                shares.append(float(numpy.mean(low > 0)))
            rows.append((ratio, cv, needed, shares[0], shares[1]))
    return rows


UNEQUAL = ((2, 2, 0.10, 0.40), (3, 3, 0.10, 0.40), (5, 5, 0.10, 0.40), (10, 10, 0.10, 0.40), (2, 5, 0.20, 0.20),
           (3, 5, 0.20, 0.20), (5, 10, 0.20, 0.20), (3, 5, 0.10, 0.40), (3, 5, 0.40, 0.10), (5, 10, 0.40, 0.10))


@functools.cache  # fixed seeds: the same tables every call
def unequal() -> list[tuple[int, int, float, float, float, float]]:
    """Outside the calibrated design: unequal run counts or unequal spreads, two recipes of equal true
    geometric mean (lognormal). Per case: the share of studies with a winner named by compare's method, and by
    Welch's t on the logs."""
    import numpy

    rows = []
    for runs_a, runs_b, cv_a, cv_b in UNEQUAL:
        rng = numpy.random.default_rng([SEED, 5, runs_a, runs_b, int(cv_a * 100), int(cv_b * 100)])
        a = log_noise(rng, "lognormal", cv_a, (STUDIES, runs_a)) + math.log1p(cv_a * cv_a) / 2
        b = log_noise(rng, "lognormal", cv_b, (STUDIES, runs_b)) + math.log1p(cv_b * cv_b) / 2
        shares = [float(numpy.mean((low > 0) | (high < 0))) for low, high in (intervals(a, b), _welch(a, b))]
        rows.append((runs_a, runs_b, cv_a, cv_b, shares[0], shares[1]))
    return rows


def _pct(value: float) -> str:
    return "—" if math.isnan(value) else f"{value * 100:.1f} %"


def markdown(cases: list[Case] | None = None) -> str:
    """The three tables of docs/STATISTICS.md, as measured now (``cases``: :func:`calibration`, if already run)."""
    lines = [f"Calibration ({STUDIES:,} simulated studies per case and column; two recipes; true difference +30 % "
             "for coverage and power):", "",
             "| noise | CV | runs per recipe | false winner (same distribution) | coverage of the 95 % interval "
             "| right winner at +30 % | wrong winner at +30 % |", "|---|---|---|---|---|---|---|"]
    for c in cases if cases is not None else calibration():
        lines.append(f"| {c.kind} | {c.cv * 100:.0f} % | {c.runs} | {_pct(c.false_winners)} | {_pct(c.coverage)} | "
                     f"{_pct(c.power)} | {_pct(c.wrong)} |")
    lines += ["", f"Power: share of studies naming the right winner (lognormal noise, 20 % CV, {STUDIES:,} studies "
                  "each):", "", "| runs per recipe | " + " | ".join(f"+{(r - 1) * 100:.0f} %" for r in POWER_RATIOS)
              + " |", "|---|" + "---|" * len(POWER_RATIOS)]
    for runs, found in power_table():
        lines.append(f"| {runs} | " + " | ".join(_pct(f) for f in found) + " |")
    lines += ["", f"Runs needed (`runs_needed`, 80 % power) against simulation at that many runs and one fewer "
                  f"(lognormal noise, {STUDIES:,} studies each):", "",
              "| true difference | CV | runs needed | found at that many | found at one fewer |",
              "|---|---|---|---|---|"]
    for ratio, cv, needed, at, below in runs_needed_check():
        lines.append(f"| +{(ratio - 1) * 100:.0f} % | {cv * 100:.0f} % | {needed} | {_pct(at)} | {_pct(below)} |")
    lines += ["", f"Outside the calibrated design (lognormal noise, equal true geometric means, {STUDIES:,} studies "
                  "each): share of studies naming a winner", "",
              "| runs (reference, other) | CV (reference, other) | compare's method | Welch's t on logs |",
              "|---|---|---|---|"]
    for runs_a, runs_b, cv_a, cv_b, ours, welch in unequal():
        lines.append(f"| {runs_a}, {runs_b} | {cv_a * 100:.0f} %, {cv_b * 100:.0f} % | {_pct(ours)} | {_pct(welch)} |")
    return "\n".join(lines) + "\n"


def _welch(a: Any, b: Any) -> tuple[Any, Any]:
    """Welch's t on the logs (Welch–Satterthwaite degrees of freedom even when run counts are equal)."""
    import numpy
    from scipy.stats import t

    ua, ub = a.var(axis=1, ddof=1) / a.shape[1], b.var(axis=1, ddof=1) / b.shape[1]
    df = (ua + ub) ** 2 / (ua ** 2 / (a.shape[1] - 1) + ub ** 2 / (b.shape[1] - 1))
    diff, half = b.mean(axis=1) - a.mean(axis=1), t.ppf(0.975, df) * numpy.sqrt(ua + ub)
    return diff - half, diff + half


def _resample(x: Any, rng: Any, resamples: int) -> Any:
    import numpy

    index = rng.integers(0, x.shape[1], (x.shape[0], resamples, x.shape[1]))
    return numpy.take_along_axis(numpy.repeat(x[:, None, :], resamples, axis=1), index, axis=2)


def _percentile(a: Any, b: Any, resamples: int = 999) -> tuple[Any, Any]:
    """The earlier method: the ratio of arithmetic means, percentile bootstrap (each recipe resampled)."""
    import numpy

    rng = numpy.random.default_rng(SEED)
    ratios = numpy.log(numpy.exp(_resample(b, rng, resamples)).mean(axis=2)
                       / numpy.exp(_resample(a, rng, resamples)).mean(axis=2))
    low, high = numpy.percentile(ratios, [2.5, 97.5], axis=1)
    return low, high


def _bootstrap_t(a: Any, b: Any, resamples: int = 999) -> tuple[Any, Any]:
    """Bootstrap-t on the logs: the studentised difference's bootstrap quantiles."""
    import numpy

    rng = numpy.random.default_rng(SEED)
    diff = b.mean(axis=1) - a.mean(axis=1)
    se = numpy.sqrt(a.var(axis=1, ddof=1) / a.shape[1] + b.var(axis=1, ddof=1) / b.shape[1])
    xa, xb = _resample(a, rng, resamples), _resample(b, rng, resamples)
    with numpy.errstate(divide="ignore", invalid="ignore"):
        t = (xb.mean(axis=2) - xa.mean(axis=2) - diff[:, None]) / numpy.sqrt(
            xa.var(axis=2, ddof=1) / a.shape[1] + xb.var(axis=2, ddof=1) / b.shape[1])
    t = numpy.where(numpy.isfinite(t), t, numpy.nan)
    low, high = numpy.nanpercentile(t, [2.5, 97.5], axis=1)
    return diff - high * se, diff - low * se


def alternatives(studies: int = 1000) -> str:
    """False winners and coverage of the methods not chosen, on the same cases (fewer studies: bootstraps)."""
    import numpy

    methods = {"Welch t (logs)": _welch, "percentile bootstrap": _percentile, "bootstrap-t (logs)": _bootstrap_t}
    lines = ["| noise | CV | runs | " + " | ".join(f"{m}: false winner / coverage" for m in methods) + " |",
             "|---|---|---|" + "---|" * len(methods)]
    for kind in KINDS:
        for cv in CVS:
            for runs in RUNS:
                rng = numpy.random.default_rng([SEED, 3, KINDS.index(kind), int(cv * 100), runs])
                # log(r · noise), not log r + log_noise: the bootstrap-t at 3 runs turns on ties a rounding can flip
                a, same, worse = (numpy.log(r * noise(rng, kind, cv, (studies, runs))) for r in (1, 1, TRUE_RATIO))
                cells = []
                for method in methods.values():
                    low, high = method(a, same)
                    wrong = numpy.mean((low > 0) | (high < 0))
                    low, high = method(a, worse)
                    held = numpy.mean((low <= math.log(TRUE_RATIO)) & (math.log(TRUE_RATIO) <= high))
                    cells.append(f"{wrong * 100:.1f} % / {held * 100:.1f} %")
                lines.append(f"| {kind} | {cv * 100:.0f} % | {runs} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(alternatives() if "--alternatives" in sys.argv else markdown(), end="")
