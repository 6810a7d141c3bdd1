"""The ``carbonstep`` command: one module per command, each with ``add_parser`` and ``run``.

Only this package uses argparse; the analyses and adapters it calls expose plain functions.
"""

from carbonstep.cli.main import main

__all__ = ["main"]
