import os

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

import re  # noqa: E402
import sys  # noqa: E402
from datetime import timedelta  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

# Hypothesis profiles (docs/TESTING.md). Every run is deterministic unless asked otherwise: the examples are
# derived from each test's name (derandomize), so a red CI run is red on every machine and a green one stays green.
#   dev  (the default) and ci (CI=true): derandomized, no example database, a fixed number of examples.
#   deep (HYPOTHESIS_PROFILE=deep): random, 20x the examples, the local example database: a long local hunt; a
#        failure it finds is added to the test as an @example, so the deterministic runs keep it.
_FIXED = dict(derandomize=True, database=None, max_examples=120, print_blob=True, deadline=timedelta(seconds=10))
settings.register_profile("dev", **_FIXED)
settings.register_profile("ci", **{**_FIXED, "deadline": None})  # shared CI machines: no per-example deadline
settings.register_profile("deep", derandomize=False, max_examples=2400, deadline=timedelta(seconds=10),
                          print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE")
                      or ("ci" if os.environ.get("CI", "").lower() in ("true", "1") else "dev"))


@pytest.fixture(autouse=True)
def _no_global_mlflow_state():
    """A test that sets MLflow's process-wide tracking URI or leaves a run active must not leak it."""
    yield
    mlflow = sys.modules.get("mlflow")
    if mlflow is None:
        return
    while mlflow.active_run():
        mlflow.end_run()
    from mlflow.tracking._tracking_service import utils

    utils._tracking_uri = None  # MLflow has no public way to forget a set_tracking_uri()


_WHOLE_MODULE_SLOW = re.compile(r"^pytestmark = \[?\s*pytest\.mark\.slow\b", re.MULTILINE)
#: Modules slow as a whole that do not say so themselves (measured: docs/TESTING.md): the comparisons build MLflow
#: stores of many runs and calibrate their verdicts over hundreds of simulated studies (2-4 min under load each);
#: the busy-interpreter tests spin 16 threads against 20 trackers (about 50 s under load).
SLOW_MODULES = frozenset({"test_compare.py", "test_compare_calibration.py", "test_compare_stats.py",
                          "test_busy_interpreter.py"})

#: Single tests slow on their own in modules that are otherwise fast (measured in the fast lane under load 15:
#: 30-130 s each): each imports a framework in a fresh interpreter, trains on the fake GPU, runs two worker
#: processes or sends signals at random points of a run 20 times.
SLOW_TESTS = frozenset({
    "test_a_callback_loads_nothing_heavy_beyond_its_framework",  # test_import_cost.py
    "test_whole_check_on_the_fake_writes_table_and_json",  # test_gpu_check.py
    "test_energy_truth_passes_on_an_honest_gpu_and_fails_on_a_lying_counter",  # test_gpu_check.py
    "test_two_worker_processes_on_one_sqlite_storage_share_one_budget",  # test_optuna.py
    "test_the_study_command_reads_an_optuna_storage",  # test_optuna.py
    "test_sigint_at_random_points_with_a_slow_device",  # test_faults.py
    "test_sigterm_at_random_points_with_a_slow_device",  # test_faults.py
    # the longest left in the fast lane with 2 workers at load 2-5 (10-26 s each): a subprocess running every
    # command of the bad-input table, two training loops, a worker process killed mid-trial, a forked child.
    "test_bad_input_table_in_the_docs_is_current",  # test_properties.py
    "test_a_plain_loop_logs_to_mlflow_and_its_budget_stops_it",  # test_torch_loop.py
    "test_a_failing_loop_ends_its_run_as_failed_and_raises",  # test_torch_loop.py
    "test_a_killed_worker_s_trial_is_failed_by_the_heartbeat_and_no_longer_in_flight",  # test_optuna.py
    "test_a_forked_child_neither_hangs_nor_resends_nor_ends_the_parents_run",  # test_sink_faults.py
})


#: A fixture wider than one test (a module's server, Slurm cluster, MLflow store or browser) is set up once per worker
#: that runs one of its tests, so under pytest-xdist (``-n``) such a module's tests stay on one worker.
_WIDE_FIXTURE = re.compile(r"@pytest\.fixture\([^)]*scope=[\"'](module|package|session|class)[\"']")


def shares_a_fixture(module: Path) -> bool:
    """Whether the test module defines a fixture wider than one test (tests/test_lanes.py checks this against the
    fixtures pytest itself sees)."""
    return bool(_WIDE_FIXTURE.search(module.read_text(encoding="utf-8")))


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """``--dist loadgroup``: xdist's own grouping (``@pytest.mark.xdist_group``, a suffix it writes into the node id)
    is lost on pytest 9.2 (pytest-dev/pytest-xdist#1386), so the groups are decided here from the node id: the tests
    of a module that :func:`shares_a_fixture` form one unit of work; every other test is a unit of its own."""
    if config.getoption("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    root = config.rootpath

    class ModuleGroups(LoadGroupScheduling):
        grouped: dict[str, bool] = {}

        def _split_scope(self, nodeid: str) -> str:
            scope = super()._split_scope(nodeid)
            if scope != nodeid:  # a group xdist kept
                return scope
            module = nodeid.split("::", 1)[0]
            if module not in self.grouped:
                self.grouped[module] = (root / module).is_file() and shares_a_fixture(root / module)
            return module if self.grouped[module] else nodeid

    return ModuleGroups(config, log)


@pytest.hookimpl(tryfirst=True)  # before -m selects on the markers
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test of :data:`SLOW_MODULES`, and :data:`SLOW_TESTS`, slow. On a pytest-xdist worker, the slow
    tests come first (every worker sorts alike, so their collections agree): with ``--no-loadscope-reorder`` the
    workers are handed the long tests first, and no long test starts last."""
    for item in items:
        if item.path.name in SLOW_MODULES or getattr(item, "originalname", item.name) in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)
    if hasattr(config, "workerinput"):
        items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """The fast lane (``-m "not slow"``) does not even import a module whose every test is slow: importing the
    frameworks and servers those modules need is most of a fast run's time."""
    if config.option.markexpr.replace(" ", "") != "notslow" or collection_path.suffix != ".py":
        return None
    if not collection_path.name.startswith("test_"):
        return None
    if collection_path.name in SLOW_MODULES:
        return True
    return True if _WHOLE_MODULE_SLOW.search(collection_path.read_text(encoding="utf-8")) else None


@pytest.fixture
def mlflow_study_store(tmp_path: Path) -> tuple[str, object, str]:
    """An empty SQLite MLflow store in ``tmp_path`` with one experiment, "study": (tracking URI, its
    ``MlflowClient``, the experiment's id). MLflow is imported here, not when the suite is collected."""
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(uri)
    return uri, client, client.create_experiment("study")
