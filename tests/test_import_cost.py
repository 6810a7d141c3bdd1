"""What importing carbonstep's callbacks loads, in fresh interpreters (what it costs: ``benchmarks/peers.py``)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

HEAVY = ("torch", "mlflow", "pandas", "numpy", "scipy", "lightning", "pytorch_lightning", "transformers", "keras",
         "tensorflow", "optuna", "sqlalchemy", "pynvml", "psutil", "amdsmi")


def _heavy_after_each(*steps: str) -> list[set[str]]:
    """Run ``steps`` one after the other in one fresh interpreter: the heavy top-level packages loaded after each."""
    probe = ["import json, sys", "loaded = []"]
    for code in steps:
        probe += [code, "loaded.append(sorted({m.split('.')[0] for m in sys.modules}))"]
    probe.append("print(json.dumps(loaded))")
    env = dict(os.environ, KERAS_BACKEND=os.environ.get("KERAS_BACKEND", "torch"))
    out = subprocess.run([sys.executable, "-c", "\n".join(probe)], capture_output=True, text=True, check=True,
                         env=env, timeout=600).stdout
    return [set(modules) & set(HEAVY) for modules in json.loads(out.splitlines()[-1])]


def _heavy_after(code: str) -> set[str]:
    return _heavy_after_each(code)[0]


@pytest.mark.parametrize(("framework", "base", "callback"), [
    ("lightning", "from lightning.pytorch import Callback", "from carbonstep.lightning import CarbonCallback"),
    ("transformers", "from transformers import TrainerCallback", "from carbonstep.transformers import CarbonCallback"),
    ("keras", "from keras.callbacks import Callback", "from carbonstep.keras import CarbonCallback"),
    ("optuna", "import optuna", "from carbonstep.optuna import CarbonCallback"),
])
def test_a_callback_loads_nothing_heavy_beyond_its_framework(framework: str, base: str, callback: str) -> None:
    """Beyond what the framework's own callback base class loads (transformers' pulls in torch, for one): the base
    class imported first, then the callback, in one fresh interpreter (the framework is imported once, not twice)."""
    if importlib.util.find_spec(framework) is None:  # not imported here: only the fresh interpreter pays for it
        pytest.skip(f"{framework} is not installed")
    own, with_callback = _heavy_after_each(base, callback)
    assert own <= with_callback
    added = with_callback - own
    assert added == set(), f"importing the {framework} callback also loads {sorted(added)}"


def test_the_tracker_and_the_budget_load_nothing_heavy() -> None:
    assert _heavy_after("from carbonstep import Tracker, Budget, RunReport") == set()
