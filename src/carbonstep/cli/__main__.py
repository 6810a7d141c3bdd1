"""``python -m carbonstep.cli``: the same as the ``carbonstep`` command."""

import sys

from carbonstep.cli.main import main

sys.exit(main())
