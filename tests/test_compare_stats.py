"""Comparisons that know their noise: recipes of several seeds, intervals, and verdicts that name a winner only
when the difference's interval excludes zero. Real MLflow stores (SQLite), synthetic training curves."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy
import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag

from carbonstep import ConfigError, compare
from carbonstep.analysis.compare import stats
from tests.compare_stores import new_store

STEPS = range(10, 310, 10)


def log_seed(client: MlflowClient, experiment_id: str, name: str, decay: float, co2_per_step_kg: float,
             recipe: str | None = None, methods: str = "cpu: estimate, ram: estimate") -> str:
    """A run whose loss falls as 2·exp(-decay·step) and whose CO2 grows by co2_per_step_kg a step."""
    run_id = client.create_run(experiment_id, run_name=name).info.run_id
    loss = [Metric("val_loss", 2.0 * math.exp(-decay * s), 0, s) for s in STEPS]
    co2 = [Metric("co2_kg", co2_per_step_kg * s, 0, s) for s in STEPS]
    params = [Param("carbonstep.methods", methods)] + ([Param("recipe", recipe)] if recipe else [])
    total = co2_per_step_kg * STEPS[-1]
    totals = [Metric("energy_kwh", total / 0.05, 1, 999), Metric("co2_kg", total, 1, 999),
              Metric("water_l", 0.0, 1, 999)]
    client.log_batch(run_id, metrics=loss + co2 + totals, params=params, tags=[RunTag("study", "t")])  # one write
    client.set_terminated(run_id)
    return run_id


def seeds(client: MlflowClient, experiment_id: str, recipe: str, count: int, rng: numpy.random.Generator,
          co2_mean_kg: float, **kwargs) -> list[str]:
    """``count`` seeds of a recipe: the loss rate and CO2 per step vary from seed to seed by about 10 %."""
    return [log_seed(client, experiment_id, f"{recipe}-seed{i}", rng.normal(0.02, 0.002),
                     rng.normal(co2_mean_kg, 0.1 * co2_mean_kg), **kwargs) for i in range(count)]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, MlflowClient]:
    """One store for the module (each test logs to its own experiment), copied from the session's migrated one."""
    return new_store(tmp_path_factory.mktemp("store"), tmp_path_factory)


def test_two_recipes_from_one_distribution_are_indistinguishable(store) -> None:
    uri, client = store
    exp = client.create_experiment("same")
    rng = numpy.random.default_rng(7)
    runs = seeds(client, exp, "gelu", 5, rng, 1e-6) + seeds(client, exp, "gelu-4bit", 5, rng, 1e-6)
    result = compare(runs, tracking_uri=uri)
    assert [r.name for r in result.recipes] == ["gelu", "gelu-4bit"]
    assert [len(r.runs) for r in result.recipes] == [5, 5]
    row = result.levels[-1]
    assert row.outcome == ("reference", "indistinguishable")
    assert row.diff_pct_low[1] < 0 < row.diff_pct_high[1]
    assert result.verdict.startswith("gelu-4bit and gelu are indistinguishable at val_loss ≤ ")
    assert "runs per recipe would" in result.verdict or "no difference was seen" in result.verdict
    for recipe in result.recipes:  # each recipe's interval holds its mean
        assert recipe.low_kg < recipe.co2_kg < recipe.high_kg


def test_a_30_percent_difference_over_5_seeds_names_the_right_winner(store) -> None:
    uri, client = store
    exp = client.create_experiment("thirty")
    rng = numpy.random.default_rng(11)
    runs = seeds(client, exp, "gelu", 5, rng, 1e-6) + seeds(client, exp, "gelu-4bit", 5, rng, 1.3e-6)
    result = compare(runs, tracking_uri=uri)
    row = result.levels[-1]
    assert row.outcome[1] == "more" and row.diff_pct_low[1] > 0
    assert 15 < row.diff_pct[1] < 45
    assert "gelu-4bit reaches val_loss ≤" in result.verdict and "% more CO2e than gelu" in result.verdict
    flipped = compare(runs, tracking_uri=uri, reference="gelu-4bit")
    assert flipped.levels[-1].outcome[1] == "less" and "gelu reaches" in flipped.verdict
    data = json.loads(json.dumps(result.to_dict()))
    assert data["reference"] == "gelu" and data["levels"][-1]["outcome"] == ["reference", "more"]
    assert data["recipes"][1]["low_kg"] < data["recipes"][1]["co2_kg"] < data["recipes"][1]["high_kg"]
    assert data["verdict"] == result.verdict and data["method"]["level"] == stats.LEVEL


def test_one_run_each_says_there_is_no_estimate_of_variation(store) -> None:
    uri, client = store
    exp = client.create_experiment("single")
    a = log_seed(client, exp, "gelu", 0.02, 1e-6)
    b = log_seed(client, exp, "gelu-4bit", 0.02, 2e-6)
    result = compare([a, b], tracking_uri=uri)
    assert result.levels[-1].outcome == ("reference", "no variation")
    assert "no estimate of run-to-run variation" in result.verdict and "no winner can be named" in result.verdict
    assert result.to_dict()["levels"][-1]["outcome"][1] == "no variation"


def test_two_runs_each_get_a_verdict_calibrated_from_two_runs_on(store) -> None:
    uri, client = store
    exp = client.create_experiment("two")
    rng = numpy.random.default_rng(3)
    runs = seeds(client, exp, "a", 2, rng, 1e-6) + seeds(client, exp, "b", 2, rng, 3e-6)
    result = compare(runs, tracking_uri=uri)
    assert result.levels[-1].outcome[1] == "more" and "a false winner is named in 5 %" in result.verdict


def test_runs_needed_is_a_power_calculation() -> None:
    """The pooled t test's power from the noncentral t; the fewest runs that reach 80 %."""
    import scipy.stats

    critical = scipy.stats.t.ppf(0.975, 2)
    assert stats.power(2, 0.3, 0.1) == pytest.approx(scipy.stats.nct.sf(critical, 2, 0.3 / (0.1 * math.sqrt(2 / 2))))
    assert stats.runs_needed(math.log(1.1), 0.2) > stats.runs_needed(math.log(1.3), 0.2) >= 2
    needed = stats.runs_needed(math.log(1.3), 0.2)
    assert stats.power(needed, math.log(1.3), 0.2) >= 0.8 > stats.power(needed - 1, math.log(1.3), 0.2)
    assert stats.runs_needed(0.0, 0.2) is None
    assert stats.runs_needed(1e-4, 1.0) == stats.MAX_RUNS_SUGGESTED + 1
    assert stats.mean_interval([2.0]) == (2.0, 2.0, 2.0)
    centre, low, high = stats.mean_interval([1.0, 2.0, 4.0])  # logs 0, ln 2, 2 ln 2: mean ln 2, sd ln 2
    half = scipy.stats.t.ppf(0.975, 2) * math.log(2) / math.sqrt(3)
    assert (centre, low, high) == pytest.approx((2.0, 2 * math.exp(-half), 2 * math.exp(half)))


def test_runs_needed_is_the_first_run_count_reaching_the_power() -> None:
    """runs_needed starts its search at the z test's run count and gallops from there: from every start, the search
    finds what a scan from 2 up finds, and runs_needed agrees with such a scan of the power itself."""
    for answer in range(2, 41):
        for start in range(2, 41):
            assert stats.first_reaching(lambda runs, at=answer: runs >= at, start, 2, 40) == answer, (answer, start)
    for diff, spread in ((math.log(1.3), 0.2), (math.log(1.1), 0.2), (-0.5, 0.4), (0.05, 0.02), (2.0, 0.1),
                         (math.log(1.5), 0.385), (0.3, 0.6)):
        scan = next(runs for runs in range(2, stats.MAX_RUNS_SUGGESTED + 2)
                    if runs > stats.MAX_RUNS_SUGGESTED or stats.power(runs, diff, spread) >= stats.POWER)
        assert stats.runs_needed(diff, spread) == scan, (diff, spread)


def test_grouping_rules(store) -> None:
    uri, client = store
    exp = client.create_experiment("groups")
    tagged = log_seed(client, exp, "first try", 0.02, 1e-6, recipe="gelu")
    named = log_seed(client, exp, "gelu seed 2", 0.02, 1e-6)
    other = log_seed(client, exp, "gelu-4bit_s1", 0.02, 1e-6)
    assert [r.recipe for r in compare([tagged, named, other], tracking_uri=uri).runs] == ["gelu", "gelu", "gelu-4bit"]
    by_name = compare([tagged, named, other], tracking_uri=uri, group_by="name:^(\\w+)")
    assert [r.recipe for r in by_name.runs] == ["first", "gelu", "gelu"]
    with pytest.raises(ConfigError, match="has no param 'lr'; it has: carbonstep.methods"):
        compare([named], tracking_uri=uri, group_by="param:lr")
    with pytest.raises(ConfigError, match="is not a regular expression"):
        compare([named], tracking_uri=uri, group_by="name:(")
    with pytest.raises(ConfigError, match="--reference 'x' is not one of the recipes: gelu"):
        compare([named], tracking_uri=uri, reference="x")
    everything = compare([], tracking_uri=uri, experiment="groups")
    assert len(everything.runs) == 3


def test_methods_without_an_error_figure_cannot_be_ranked(store) -> None:
    uri, client = store
    exp = client.create_experiment("methods")
    rng = numpy.random.default_rng(5)
    runs = (seeds(client, exp, "here", 4, rng, 1e-6, methods="cpu: counter")
            + seeds(client, exp, "there", 4, rng, 2e-6, methods="cpu: estimate"))
    result = compare(runs, tracking_uri=uri)
    assert result.levels[-1].outcome[1] == "not comparable" and "cannot be ranked" in result.verdict
    assert {m["method"] for m in result.measurement} == {"counter", "estimate"}
    gpu = (seeds(client, exp, "a100", 4, rng, 1e-6, methods="gpu: power")
           + seeds(client, exp, "h100", 4, rng, 2e-6, methods="gpu: power, cpu: estimate"))
    mixed = compare(gpu, tracking_uri=uri)
    assert mixed.levels[-1].outcome[1] == "not comparable"  # the estimate's error is not quantified
    powered = (seeds(client, exp, "p1", 4, rng, 1e-6, methods="gpu: power")
               + seeds(client, exp, "p2", 4, rng, 1e-6, methods="gpu: power, cpu: power"))
    assert compare(powered, tracking_uri=uri).levels[-1].outcome[1] != "not comparable"  # ±5 % each: widened
    low, high = stats.widen(10.0, 5.0, 15.0, [0.05, 0.05])
    assert (low, high) == pytest.approx((5.0 - 0.05 * 2 ** 0.5 * 110, 15.0 + 0.05 * 2 ** 0.5 * 110))


def test_importing_compare_loads_no_heavy_module() -> None:
    code = ("import sys, carbonstep, carbonstep.cli, carbonstep.analysis.compare.compare; "
            "heavy = {'numpy', 'scipy', 'matplotlib', 'mlflow', 'torch'}; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_table_plot_json_and_cli(store, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from carbonstep.cli import main

    uri, client = store
    exp = client.create_experiment("cli")
    rng = numpy.random.default_rng(13)
    runs = seeds(client, exp, "gelu", 3, rng, 1e-6) + seeds(client, exp, "gelu-4bit", 3, rng, 1.5e-6)
    result = compare(runs, tracking_uri=uri)
    table = result.table()
    assert "val_loss ≤ | gelu" in table and "| gelu-4bit" in table  # level rows have headers
    assert " mg" in table and "e-0" not in table  # units chosen by magnitude, no exponents
    assert "estimate: error not quantified" in table
    figure = result.figure()
    panel = figure.axes[2]
    assert len(panel.containers) == 2  # one error-bar container per recipe: the intervals are drawn
    label = next(t for t in panel.texts if "against gelu" in t.get_text())
    figure.canvas.draw()
    box, frame = label.get_window_extent(), panel.get_window_extent()
    assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1  # inside
    status = main(["compare", "--experiment", "cli", "--tracking-uri", uri, "--json", str(tmp_path / "c.json"),
                   "--plot", str(tmp_path / "c.png")])
    assert status == 0, capsys.readouterr().err
    assert json.loads((tmp_path / "c.json").read_text())["recipes"][0]["name"] == "gelu"
    capsys.readouterr()
    monkeypatch.setenv("COLUMNS", "80")  # the width a command whose output is piped gets: the layout checked below
    with pytest.raises(SystemExit) as done:
        main(["compare", "--help"])
    assert done.value.code == 0
    helptext = capsys.readouterr().out
    options = [word for word in helptext.split() if word.startswith("--")]
    assert {"--group-by", "--reference", "--levels", "--plot", "--json", "--log-artifact"} <= set(options)
    for line in helptext.splitlines():  # every option is described on its line or the next
        if line.strip().startswith("--") and line.strip() == line.strip().split("  ")[0]:
            index = helptext.splitlines().index(line)
            assert helptext.splitlines()[index + 1].startswith(" " * 10), line


def test_a_dead_server_is_one_clear_line_for_a_whole_experiment_too(capsys: pytest.CaptureFixture[str]) -> None:
    from carbonstep.cli import main

    code = main(["compare", "--experiment", "study", "--tracking-uri", "http://127.0.0.1:9"])
    assert code == 2 and "the MLflow server http://127.0.0.1:9 is not reachable" in capsys.readouterr().err


def test_the_verdict_level_is_fixed_before_looking_and_other_levels_are_context(store) -> None:
    uri, client = store
    exp = client.create_experiment("level")
    rng = numpy.random.default_rng(17)
    runs = seeds(client, exp, "gelu", 3, rng, 1e-6) + seeds(client, exp, "gelu-4bit", 3, rng, 2e-6)
    default = compare(runs, tracking_uri=uri)
    assert all(row.outcome[1] == "context" for row in default.levels[:-1])
    assert default.levels[-1].outcome[1] in ("more", "indistinguishable")
    named = compare(runs, tracking_uri=uri, level=0.5)
    assert named.levels[-1].level == 0.5 and "val_loss ≤ 0.5" in named.verdict
    assert all(row.level > 0.5 for row in named.levels[:-1]) and "← verdict" in named.table()
    with pytest.raises(ConfigError, match=r"--level 1e-06: not every run reaches val_loss ≤ 1e-06: gelu-seed0 \(best"):
        compare(runs, tracking_uri=uri, level=1e-6)


def test_a_second_study_in_the_same_experiment_does_not_pool_with_the_first(store) -> None:
    uri, client = store
    exp = client.create_experiment("studies")
    rng = numpy.random.default_rng(19)
    first = seeds(client, exp, "gelu", 2, rng, 1e-6) + seeds(client, exp, "gelu-4bit", 2, rng, 1e-6)
    for run in first:
        client.set_tag(run, "study", "one")
    second = seeds(client, exp, "gelu", 3, rng, 1e-6) + seeds(client, exp, "gelu-4bit", 3, rng, 1e-6)
    for run in second:
        client.set_tag(run, "study", "two")
    result = compare([], tracking_uri=uri, experiment="studies", run_filter="tags.study = 'two'")
    assert sorted(s.run_id for s in result.series) == sorted(second)
    assert [len(r.runs) for r in result.recipes] == [3, 3]
    with pytest.raises(ConfigError, match="no finished runs to compare matching \"tags.study = 'three'\""):
        compare([], tracking_uri=uri, experiment="studies", run_filter="tags.study = 'three'")
    with pytest.raises(ConfigError, match="--filter 'tags.study ==== 1': MLflow cannot search with it"):
        compare([], tracking_uri=uri, experiment="studies", run_filter="tags.study ==== 1")
