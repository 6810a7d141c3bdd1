"""The import contracts cannot be bypassed: in a copy of the package, each rule broken on purpose makes
``lint-imports`` fail, naming the contract it broke (and the unbroken copy passes)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")

#: (what the rule is, the file changed or added, the text appended to it, the contract that must break)
BREAKS = [
    ("an upward import", "report/units.py", "import carbonstep.cli.main\n",
     "Layers follow the data flow: nothing imports upward"),
    ("a module in no layer", "report/unplaced.py", '"""Placed in no layer."""\n',
     "Inside report: merge and the usage record over builder and summary over hints over the record"),
    ("a top-level module in no layer", "unplaced.py", '"""Placed in no layer."""\n',
     "Layers follow the data flow: nothing imports upward"),
    ("an adapter importing another adapter", "callbacks/lightning.py", "import carbonstep.callbacks.keras\n",
     "Framework adapters are independent of each other"),
    ("an adapter importing a CLI module", "callbacks/keras.py", "import carbonstep.cli.info\n",
     "Layers follow the data flow: nothing imports upward"),
    ("an analysis importing another", "analysis/compare/stats.py", "import carbonstep.analysis.usage.usage\n",
     "Analyses are leaf packages, independent of each other"),
    ("mlflow imported outside mlflow_io", "report/units.py", "\n\ndef _f() -> None:\n    import mlflow  # noqa\n",
     "Only mlflow_io imports mlflow"),
    ("optuna imported outside its adapter", "analysis/study/study.py", "\n\ndef _f() -> None:\n    import optuna\n",
     "Optuna only from its adapter"),
    ("torch imported in the session", "training/session.py", "\n\ndef _f() -> None:\n    import torch\n",
     "torch only where ranks talk to each other"),
    ("keras imported by another adapter", "callbacks/transformers.py", "\n\ndef _f() -> None:\n    import keras\n",
     "Keras only from its adapter"),
    ("the session importing an adapter", "training/scope.py", "import carbonstep.callbacks.common\n",
     "Layers follow the data flow: nothing imports upward"),
]


def _lint(tmp_path: Path, change: tuple[str, str] | None) -> subprocess.CompletedProcess[str]:
    tree = tmp_path / "tree"
    shutil.copytree(ROOT / "src" / "carbonstep", tree / "src" / "carbonstep",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    if change is not None:
        path = tree / "src" / "carbonstep" / change[0]
        with path.open("a") as f:
            f.write(change[1])
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    return subprocess.run([str(LINT), "--no-cache"], cwd=tree, env=env, capture_output=True, text=True,
                          timeout=300)


def test_the_unchanged_copy_keeps_every_contract(tmp_path: Path) -> None:
    done = _lint(tmp_path, None)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " broken" not in done.stdout.split("Contracts:")[-1].replace("0 broken", "")


@pytest.mark.slow
@pytest.mark.parametrize(("rule", "path", "text", "contract"), BREAKS, ids=[b[0] for b in BREAKS])
def test_breaking_a_rule_fails_lint_imports(tmp_path: Path, rule: str, path: str, text: str, contract: str) -> None:
    done = _lint(tmp_path, (path, text))
    assert done.returncode != 0, f"{rule}: lint-imports passed"
    flat = " ".join(done.stdout.split())
    assert f"{contract} BROKEN" in flat, f"{rule}: {contract!r} not broken:\n{done.stdout[-3000:]}"
