"""The viewer's server (``syphus view --serve``): a static folder on 127.0.0.1, answering only requests
made to this machine's own names (a page of another site, pointed here by DNS rebinding, gets 403).
"""

from __future__ import annotations

import functools
import http.server
import logging
from pathlib import Path
from typing import Any

from syphus.errors import UserError

log = logging.getLogger("syphus")


def allowed_hosts(host: str, port: int) -> frozenset[str]:
    """The ``Host:`` values a server bound to ``host:port`` answers: the loopback names and the bound address,
    each with the port (bare only on port 80, where a browser leaves the port out).

    A page of another site that a DNS rebinding points at 127.0.0.1 sends its own name as ``Host``,
    so answering only these keeps the release's pairs and images from being read across sites.

    >>> sorted(allowed_hosts("127.0.0.1", 8000))
    ['127.0.0.1:8000', '[::1]:8000', 'localhost:8000']
    """
    names = {"localhost", "127.0.0.1", "[::1]", f"[{host}]" if ":" in host else host}
    return frozenset(n.lower() for name in names for n in ((f"{name}:{port}", name) if port == 80
                                                          else (f"{name}:{port}",)))


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the folder to requests whose ``Host:`` names this server (else 403: DNS rebinding);
    its request log goes to the ``syphus`` logger at DEBUG, not to stderr."""

    allowed: frozenset[str] = frozenset()

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        host = (self.headers.get("Host") or "").strip().lower()
        if host not in self.allowed:
            self.send_error(403, "Host not allowed", "this viewer answers only requests made to "
                                                     "localhost, 127.0.0.1 or [::1]")
            return False
        return True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        log.debug("view server: %s " + format, self.address_string(), *args)


def make_server(folder: str | Path, port: int = 0, host: str = "127.0.0.1") -> http.server.ThreadingHTTPServer:
    """An HTTP server for ``folder`` on ``host:port`` (0: a free port); call ``serve_forever()``.

    It answers only requests whose ``Host:`` is ``localhost``, ``127.0.0.1``, ``[::1]`` or the bound
    address (with its port); any other gets 403.
    """
    handler = type("_Handler", (_QuietHandler,), {})
    try:
        server = http.server.ThreadingHTTPServer((host, port), functools.partial(handler, directory=str(folder)))
        handler.allowed = allowed_hosts(str(server.server_address[0]), int(server.server_address[1]))
        return server
    except OSError as e:
        raise UserError(f"cannot listen on {host}:{port} ({e.strerror}); choose another --port, or 0 for a free one") \
            from None
