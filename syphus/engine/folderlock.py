"""The run folder's lock: one writer at a time, an exclusive ``flock`` on ``<folder>/syphus.lock``
holding who took it (pid, host, since when, the command with URL passwords redacted), so a second
process is told who to wait for. The kernel drops the lock when its holder dies, however it dies.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

from syphus.engine.record import now_iso
from syphus.errors import UserError
from syphus.redaction import redact_urls

LOCK = "syphus.lock"


class FolderBusy(UserError):
    """Another process holds the run folder's lock."""


class FolderLock:
    """An exclusive ``flock`` on ``<folder>/syphus.lock``, holding who took it."""

    def __init__(self, folder: Path):
        self.path = folder / LOCK
        self.fd: int | None = None

    def acquire(self) -> None:
        if self.fd is not None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            who = holder(fd)
            os.close(fd)
            pid = who.get("pid", "?")
            raise FolderBusy(
                f"{self.path.parent}: another Syphus process is writing here (pid {pid} on "
                f"{who.get('host', '?')}, since {who.get('since', '?')}: "
                f"{redact_urls(str(who.get('command', '?')))}); "
                f"wait for it to finish, or stop it (kill -INT {pid}) and run again to resume") from None
        info = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": now_iso(),
                           "command": redact_urls(" ".join(sys.argv))[:500]})
        os.ftruncate(fd, 0)
        os.pwrite(fd, info.encode("utf-8", "backslashreplace"), 0)
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def holder(fd: int) -> dict[str, Any]:
    """Who holds the lock of ``fd``, as they wrote it ({} when unreadable)."""
    try:
        data = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
