"""Run carbonstep as another Unix user: ``as_user.py USER UMASK write OUT NAME`` or ``as_user.py USER UMASK cli ARGS``.

Started as root. Everything the run needs is imported first, then the process takes the user's uid, gid and
groups (from the system's user database) and umask, so every file it opens or creates is checked as that user's.
(The interpreter itself may live where other users cannot reach, e.g. under /root: hence no plain ``su``.)
"""

from __future__ import annotations

import os
import sys


def main() -> int:
    import csv  # noqa: F401 - loaded before the privileges go
    import getpass  # noqa: F401
    import grp
    import json  # noqa: F401
    import pwd
    import socket  # noqa: F401
    import tempfile

    import carbonstep.analysis.usage.html  # noqa: F401
    import carbonstep.analysis.usage.sources  # noqa: F401
    import carbonstep.analysis.usage.usage  # noqa: F401
    import carbonstep.cli.usage  # noqa: F401
    import carbonstep.measure.distributed  # noqa: F401
    import carbonstep.measure.readers.base  # noqa: F401
    import carbonstep.measure.sampler  # noqa: F401
    import carbonstep.measure.totals  # noqa: F401
    import carbonstep.report.summary  # noqa: F401
    import carbonstep.report.usage_record  # noqa: F401
    from carbonstep import Tracker
    from carbonstep.cli import main as cli
    from carbonstep.testing import ScriptedReader

    user, umask, what, *args = sys.argv[1:]
    if what == "cli":  # the command's own lazy imports, done once on an empty folder
        import contextlib
        import io

        with tempfile.TemporaryDirectory() as empty, contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            cli([args[0], empty])
    entry = pwd.getpwnam(user)
    os.setgroups([g.gr_gid for g in grp.getgrall() if user in g.gr_mem])
    os.setgid(entry.pw_gid)
    os.setuid(entry.pw_uid)
    os.umask(int(umask, 8))
    os.environ.update(USER=user, LOGNAME=user, HOME=entry.pw_dir)
    os.chdir("/")
    if what == "write":
        out, name = args
        readers = [ScriptedReader("gpu:0", "gpu", watts=lambda t: 50.0)]
        with Tracker(intensity=100, readers=readers, interval_s=0.05, output_dir=out, name=name):
            pass
        return 0
    return cli(args) or 0


if __name__ == "__main__":
    sys.exit(main())
