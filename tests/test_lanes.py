"""The test lanes themselves (docs/TESTING.md): under pytest-xdist, a module's shared fixture is set up once."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import shares_a_fixture

HERE = Path(__file__).parent


def _uses_a_wide_fixture_of_ours(item: pytest.Item) -> bool:
    info = getattr(item, "_fixtureinfo", None)
    return info is not None and any(definition.scope != "function" and definition.baseid.startswith("tests")
                                    for definitions in info.name2fixturedefs.values() for definition in definitions)


def test_every_test_sharing_a_fixture_is_in_a_module_kept_on_one_worker(request: pytest.FixtureRequest) -> None:
    """Over the tests of this run (the whole suite in the lanes): each one using a module-wide fixture of ours is
    in a module that the xdist scheduler (tests/conftest.py) hands to one worker whole."""
    sharing = {item.path for item in request.session.items if _uses_a_wide_fixture_of_ours(item)}
    assert [path.name for path in sharing if not shares_a_fixture(path)] == []


def test_the_server_modules_are_kept_on_one_worker() -> None:
    grouped = {path.name for path in HERE.glob("test_*.py") if shares_a_fixture(path)}
    assert {"test_slurm.py", "test_prometheus.py", "test_usage.py", "test_sink_faults_server.py",
            "test_prometheus_wiring.py"} <= grouped
    assert "test_validate.py" not in grouped and "test_lanes.py" not in grouped
