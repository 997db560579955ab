"""The exit codes of every subcommand, in one table.

>>> int(Exit.USER), Exit.for_status("budget")
(2, <Exit.BUDGET: 4>)
"""

from __future__ import annotations

import enum


class Exit(enum.IntEnum):
    OK = 0  # finished
    FAILED = 1  # finished, and what it checked has errors (validate, checksum)
    USER = 2  # fix the input: the message names the file, line or id
    FATAL = 3  # the endpoint or the disk refused the run: fix it, then rerun to resume
    BUDGET = 4  # stopped before --max-cost would be passed: rerun with a higher cap
    INTERRUPTED = 130  # Ctrl-C or SIGTERM: rerun to resume

    @classmethod
    def for_status(cls, status: str) -> Exit:
        """The exit code of a run that ended with ``status`` (a RunStatus value) and no error."""
        return {"budget": cls.BUDGET, "interrupted": cls.INTERRUPTED}.get(str(status), cls.OK)


EXIT_OK, EXIT_FAILED, EXIT_USER, EXIT_FATAL, EXIT_BUDGET, EXIT_INTERRUPTED = (
    Exit.OK, Exit.FAILED, Exit.USER, Exit.FATAL, Exit.BUDGET, Exit.INTERRUPTED)
