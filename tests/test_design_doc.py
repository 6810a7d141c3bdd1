"""docs/DESIGN.md shows the map the imports draw: its drawing equals scripts/draw_structure.py's output."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _script():  # noqa: ANN202 - a module loaded from a path
    spec = importlib.util.spec_from_file_location("draw_structure", ROOT / "scripts" / "draw_structure.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_design_doc_shows_the_drawing_of_the_imports() -> None:
    draw = _script()
    drawn = draw.block()
    assert "cli --> callbacks" in drawn and "training --> measure" in drawn  # a drawing, not an empty block
    assert draw.current((ROOT / "docs" / "DESIGN.md").read_text()) == drawn, \
        "run scripts/draw_structure.py --write"


def test_the_drawing_never_points_up_to_the_cli() -> None:
    assert not [edge for edge in _script().edges() if edge[1] == "cli"]
