"""Serve the emulator over loopback HTTP with a threaded ``wsgiref`` server.

Tests start it on port 0 (a free port) and stop it when done; ``devops-assets
emulator serve`` runs it until SIGINT or SIGTERM.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import threading
from collections.abc import Callable, Iterator
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from devops_assets.emulator.app import PREFIX

log = logging.getLogger(__name__)
MAX_PORT = 65535


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    """Logs each request at debug level instead of printing it to stderr."""

    def log_message(self, fmt: str, *args) -> None:
        log.debug("%s " + fmt, self.client_address[0], *args)


def check_loopback(host: str) -> None:
    """Refuse to bind anything but a loopback address: the emulator is local only."""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"emulator host {host!r}: expected a loopback address such as 127.0.0.1")


def check_address(host: str, port: int) -> None:
    """Refuse a host that is not loopback and a port outside TCP's range."""
    check_loopback(host)
    if not 0 <= port <= MAX_PORT:
        raise ValueError(f"emulator port {port}: expected 0 to {MAX_PORT} (0 picks a free one)")


def serve_in_thread(app, host: str = "127.0.0.1", port: int = 0) -> tuple[str, Callable[[], None]]:
    """Start serving ``app`` in a daemon thread; return (base URL, stop function).

    A bad host or port raises ValueError; a port already taken, OSError.
    The base URL ends with ``/client/v4``. ``stop()`` shuts the server down,
    closes its socket and waits for the thread; calling it twice is harmless.
    """
    check_address(host, port)
    server = make_server(
        host, port, app, server_class=_ThreadingServer, handler_class=_QuietHandler
    )
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    bound_host, bound_port = server.server_address[:2]
    base_url = f"http://{bound_host}:{bound_port}{PREFIX}"
    log.info("Emulator serving %s", base_url)
    stopped = threading.Event()

    def stop() -> None:
        if stopped.is_set():
            return
        stopped.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return base_url, stop


@contextlib.contextmanager
def running_server(app, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """``with running_server(app) as base_url:`` serves ``app`` for the block."""
    base_url, stop = serve_in_thread(app, host, port)
    try:
        yield base_url
    finally:
        stop()
