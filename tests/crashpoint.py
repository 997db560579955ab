"""Run the syphus CLI in this process and SIGKILL it at one exact file-system step.

A real process dies by a real SIGKILL (no cleanup, no ``finally``, no flush), at a
point named by a spec, so tests can reopen the folder afterwards and check what
survived. The wrappers only count calls; they change nothing else.

    python -m tests.crashpoint write:pairs.jsonl:3:after -- --name Numbers.numbers ...

A spec is ``op:path_part:n:when``: SIGKILL before or after the ``n``-th call (from 1)
of ``op`` (``write``, ``replace``, ``fsync``) on a file whose path contains
``path_part`` (for ``replace``, the destination path); ``=name`` matches a file named exactly ``name``. With ``n`` = ``*`` it never
kills; with ``CRASHPOINT_COUNTS=<file>`` set, the calls seen so far are kept in that
JSON file (so a test can first count the write points, then kill at each).
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections import Counter


def install(spec: str, counts_file: str | None = None) -> None:
    """Wrap os.open / os.write / os.replace / os.fsync to die at ``spec``."""
    op, part, n, when = spec.split(":")
    target = None if n == "*" else int(n)
    paths: dict[int, str] = {}
    seen: Counter = Counter()
    real = {name: getattr(os, name) for name in ("open", "write", "replace", "fsync", "close")}

    def step(name: str, path: str, call):
        key = f"{name}:{os.path.basename(path)}"
        hit = name == op and (os.path.basename(path) == part[1:] if part.startswith("=") else part in path)
        if hit:
            seen[key] += 1
            if counts_file:
                with open(counts_file, "w") as f:
                    json.dump(seen, f)
        if hit and seen[key] == target and when == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        result = call()
        if hit and seen[key] == target and when == "after":
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    def _open(path, flags, mode=0o777, *, dir_fd=None):
        fd = real["open"](path, flags, mode, dir_fd=dir_fd)
        paths[fd] = os.fspath(path)
        return fd

    def _close(fd):
        paths.pop(fd, None)
        return real["close"](fd)

    def _write(fd, data):
        return step("write", paths.get(fd, ""), lambda: real["write"](fd, data))

    def _fsync(fd):
        fd_num = fd if isinstance(fd, int) else fd.fileno()
        return step("fsync", paths.get(fd_num, ""), lambda: real["fsync"](fd))

    def _replace(src, dst, **kw):
        return step("replace", os.fspath(dst), lambda: real["replace"](src, dst, **kw))

    os.open, os.close, os.write, os.fsync, os.replace = _open, _close, _write, _fsync, _replace


def main() -> int:
    args = sys.argv[1:]
    cut = args.index("--")
    specs, argv = args[:cut], args[cut + 1:]
    for spec in specs:
        install(spec, os.environ.get("CRASHPOINT_COUNTS"))
    from syphus.cli import main as cli_main
    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
