"""An HTTP server on a background thread, for the score-log receiver and the tests' stubs.

Each of them needs the same few lines (bind, ``serve_forever`` on a daemon thread, then
``shutdown`` + ``server_close`` + ``join`` on the way out); hand-written copies differed in
whether they joined the thread or used daemon handler threads. Keeping them here gives every
server the same idempotent stop and the same loopback URL for a wildcard bind.
"""

import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from conveyor.lifecycle import Service

__all__ = ["BackgroundHTTPServer"]


# A wildcard bind accepts on every interface; a client reaches it on loopback.
_WILDCARD_HOSTS = ("", "0.0.0.0")


class BackgroundHTTPServer(Service):
    """A ThreadingHTTPServer on a daemon thread: ``with`` or start()/stop() (idempotent).

    ``port=0`` picks a free port; ``port`` holds the bound one once started. ``attrs`` are set on
    the server before it serves, so a handler reads its state as ``self.server.<attr>`` instead
    of a closure. IPv4 only, as ThreadingHTTPServer is.
    """

    def __init__(
        self,
        handler: type[BaseHTTPRequestHandler],
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        server_class: type[ThreadingHTTPServer] = ThreadingHTTPServer,
        poll_interval: float = 0.05,
        name: str = "http",
        attrs: Mapping[str, Any] | None = None,
    ) -> None:
        self.handler = handler
        self.host, self.port = host, port
        self.server_class = server_class
        # stop() waits up to one poll for serve_forever to notice the shutdown
        self.poll_interval = poll_interval
        self.name = name
        self.attrs: dict[str, Any] = dict(attrs or {})
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def server(self) -> ThreadingHTTPServer:
        """The live server (for its attributes); only while running, as it is closed after."""
        if self._server is None:
            raise RuntimeError(self._not_running())
        return self._server

    @property
    def url(self) -> str:
        """The base URL to reach the server (a wildcard bind is reached on loopback)."""
        if self._server is None:
            raise RuntimeError(self._not_running())
        host = "127.0.0.1" if self.host in _WILDCARD_HOSTS else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> Self:
        """Bind and serve; a bind error (port taken, bad host) is the OSError, unchanged."""
        if self._server is not None:
            return self
        server = self.server_class((self.host, self.port), self.handler)
        # handler threads must not keep the process alive nor make server_close() wait on them
        server.daemon_threads = True
        for key, value in self.attrs.items():
            setattr(server, key, value)
        self.port = int(server.server_address[1])
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": self.poll_interval},
            name=f"{self.name}-{self.port}",
            daemon=True,
        )
        try:
            thread.start()
        except BaseException:
            server.server_close()
            raise
        self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        """Stop serving and free the port; a no-op when not running."""
        # cleared first, so a failure below cannot leave a half-stopped server looking alive
        server, thread, self._server, self._thread = self._server, self._thread, None, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def _not_running(self) -> str:
        return f"{type(self).__name__} is not running; call start() first"
