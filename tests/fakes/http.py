"""The lifecycle the fake API servers share: a ``BackgroundHTTPServer`` on 127.0.0.1 (free
port), started and stopped by ``with`` or start()/stop()."""

from http.server import BaseHTTPRequestHandler
from typing import Self

from conveyor.httpd import BackgroundHTTPServer
from conveyor.lifecycle import Service


class BackgroundServer(Service):
    """Subclasses give ``handler()`` (the request handler class bound to their state).

    A class attribute rather than ``__init__`` state, so subclasses need not call super().
    """

    thread_name = "fake-api"
    _httpd: BackgroundHTTPServer | None = None

    def handler(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    def start(self) -> Self:
        # a fake started twice is a test bug (two fixtures sharing one fake), not a no-op
        if self._httpd is not None:
            raise RuntimeError(f"{type(self).__name__} is already running")
        self._httpd = BackgroundHTTPServer(self.handler(), name=self.thread_name).start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.stop()

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError(f"{type(self).__name__} is not running; call start() first")
        return self._httpd.url
