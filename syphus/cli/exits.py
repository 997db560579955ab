"""The exit codes of every subcommand, in one table, and the one guard that maps the error tree to them.

>>> int(Exit.USER), Exit.for_status("budget")
(2, <Exit.BUDGET: 4>)
>>> def missing() -> int:
...     raise UserError("DC.json: no such file; pass --images the release image file")
>>> guard(missing, print)
error: DC.json: no such file; pass --images the release image file
<Exit.USER: 2>
"""

from __future__ import annotations

import enum
from collections.abc import Callable

from syphus.errors import FatalError, UserError


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


def ended(error: BaseException | None, status: str, say: Callable[[str], None]) -> Exit:
    """The exit code of a run that ended with ``error`` (said as one line through ``say``) or ``status``."""
    if error is None:
        return Exit.for_status(status)
    user = isinstance(error, UserError)
    say(f"{'error' if user else 'stopped'}: {error}")
    return Exit.USER if user else Exit.FATAL


def guard(command: Callable[[], int], say: Callable[[str], None]) -> int:
    """Run ``command``; a UserError or FatalError it raises becomes one line through ``say`` (which
    redacts, where secrets may be in it) and its exit code. Every subcommand runs under it."""
    try:
        return command()
    except (UserError, FatalError) as e:
        return ended(e, "", say)


EXIT_OK, EXIT_FAILED, EXIT_USER, EXIT_FATAL, EXIT_BUDGET, EXIT_INTERRUPTED = (
    Exit.OK, Exit.FAILED, Exit.USER, Exit.FATAL, Exit.BUDGET, Exit.INTERRUPTED)
