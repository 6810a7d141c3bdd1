"""The shipped embodied tables are exactly what scripts/build_embodied_data.py makes from its recorded inputs."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_embodied_data", REPO / "scripts" / "build_embodied_data.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["build_embodied_data"] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


build = _script()


def test_the_shipped_tables_are_rebuilt_byte_for_byte() -> None:
    result = build.build()
    assert build.TABLE.read_bytes() == result.table.encode()
    assert build.LIFE_TABLE.read_bytes() == result.life_table.encode()
    assert build.SOURCES.read_bytes() == result.sources.encode()
    assert build.main(["--check"]) == 0


def test_sources_record_each_input_s_checksum_and_licence() -> None:
    text = build.SOURCES.read_text()
    inputs = (build.NVIDIA_H100, build.CCF_SERVER, build.SERVICE_LIFE)
    assert re.findall(r"sha256 of the input: `([0-9a-f]{64})`", text) == [build.sha256(p) for p in inputs]
    for path in inputs:
        data = json.loads(path.read_text())
        assert data["licence"] in text and data["url"] in text
    assert "AGPL" in text  # what was not used, and why


def test_the_h100_row_is_the_baseboard_figure_per_gpu_as_read() -> None:
    data = json.loads(build.NVIDIA_H100.read_text())
    assert (data["figures"]["kg_co2e"], data["gpus_per_item"]) == (1312, 8)
    row = build.TABLE.read_text().splitlines()[1].split(",")
    assert row[:7] == ["nvidia-hgx-h100", "gpu", "NVIDIA H100 80GB HBM3", "GPU", "", "164", "164"]


def test_a_changed_input_changes_the_table(tmp_path: Path) -> None:
    data = json.loads(build.NVIDIA_H100.read_text())
    data["figures"]["kg_co2e"] = 1600
    changed = tmp_path / "h100.json"
    changed.write_text(json.dumps(data))
    result = build.build(nvidia=changed)
    assert ",200,200," in result.table and result.table != build.TABLE.read_text()


def test_an_input_without_its_licence_is_refused(tmp_path: Path) -> None:
    data = json.loads(build.CCF_SERVER.read_text())
    del data["licence"]
    bad = tmp_path / "ccf.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(build.InputError, match="no 'licence'"):
        build.build(ccf=bad)
