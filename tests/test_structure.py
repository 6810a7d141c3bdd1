"""The package's shape: no import cycles anywhere (the layer contracts are checked by ``lint-imports``)."""

from __future__ import annotations

import grimp


def test_no_module_imports_itself_through_another() -> None:
    graph = grimp.build_graph("carbonstep")
    cycles = [(importer, imported) for importer in sorted(graph.modules)
              for imported in sorted(graph.find_modules_directly_imported_by(importer))
              if graph.chain_exists(importer=imported, imported=importer)]
    assert cycles == []
