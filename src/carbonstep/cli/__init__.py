"""The ``carbonstep`` command: one module per command (``info``, ``run``, ``regions``, ``report``, ``merge``,
``plan``, ``compare``, ``sync``, ``usage``, ``study``), each with ``add_parser`` and ``run``.

Only this package uses argparse; the analyses and adapters it calls expose plain functions.
"""

from carbonstep.cli.main import main
from carbonstep.cli.output import save_report

__all__ = ["main", "save_report"]
