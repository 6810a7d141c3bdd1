"""What importing carbonstep's callbacks loads, in fresh interpreters (what it costs: ``benchmarks/peers.py``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

HEAVY = ("torch", "mlflow", "pandas", "numpy", "scipy", "lightning", "pytorch_lightning", "transformers", "keras",
         "tensorflow", "optuna", "sqlalchemy", "pynvml", "psutil", "amdsmi")


def _heavy_after(code: str) -> set[str]:
    probe = f"import sys\n{code}\nimport json\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    env = dict(os.environ, KERAS_BACKEND=os.environ.get("KERAS_BACKEND", "torch"))
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env,
                         timeout=600).stdout
    return set(json.loads(out.splitlines()[-1])) & set(HEAVY)


@pytest.mark.parametrize(("framework", "base", "callback"), [
    ("lightning", "from lightning.pytorch import Callback", "from carbonstep.lightning import CarbonCallback"),
    ("transformers", "from transformers import TrainerCallback", "from carbonstep.transformers import CarbonCallback"),
    ("keras", "from keras.callbacks import Callback", "from carbonstep.keras import CarbonCallback"),
    ("optuna", "import optuna", "from carbonstep.optuna import CarbonCallback"),
])
def test_a_callback_loads_nothing_heavy_beyond_its_framework(framework: str, base: str, callback: str) -> None:
    """Beyond what the framework's own callback base class loads (transformers' pulls in torch, for one)."""
    pytest.importorskip(framework)
    own = _heavy_after(base)
    added = _heavy_after(f"{base}\n{callback}") - own
    assert added == set(), f"importing the {framework} callback also loads {sorted(added)}"


def test_the_tracker_and_the_budget_load_nothing_heavy() -> None:
    assert _heavy_after("from carbonstep import Tracker, Budget, RunReport") == set()
