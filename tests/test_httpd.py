"""BackgroundHTTPServer: the lifecycle shared by the score-log receiver and the test stubs."""

import errno
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from conveyor.httpd import BackgroundHTTPServer

pytestmark = pytest.mark.unit

NOT_RUNNING = r"^BackgroundHTTPServer is not running; call start\(\) first$"


class _Hello(BaseHTTPRequestHandler):
    """Answers every GET with ``hello <path>``."""

    def do_GET(self) -> None:
        self._answer(f"hello {self.path}")

    def _answer(self, text: str) -> None:
        body = text.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _Greeter(_Hello):
    """Answers with the server's ``greeting`` attribute, set through ``attrs``."""

    def do_GET(self) -> None:
        self._answer(self.server.greeting)  # type: ignore[attr-defined]


class _GreeterServer(ThreadingHTTPServer):
    greeting: str


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    # trust_env=False: a proxy from the environment must not intercept 127.0.0.1
    with httpx.Client(trust_env=False, timeout=5) as c:
        yield c


def _threads_named(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == name]


def test_start_and_stop_are_idempotent() -> None:
    httpd = BackgroundHTTPServer(_Hello, name="idem")
    assert not httpd.running
    assert httpd.start() is httpd
    port = httpd.port
    assert port != 0  # the bound port, not the requested 0
    server = httpd.server
    (thread,) = _threads_named(f"idem-{port}")
    assert thread.daemon

    assert httpd.start() is httpd  # a second start() keeps the running server
    assert httpd.server is server
    assert httpd.port == port
    assert len(_threads_named(f"idem-{port}")) == 1

    httpd.stop()
    assert not httpd.running
    assert not thread.is_alive()
    httpd.stop()  # a second stop() is a no-op
    assert not httpd.running
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # server_close() freed the port


def test_with_starts_and_stops(client: httpx.Client) -> None:
    with BackgroundHTTPServer(_Hello) as httpd:
        assert httpd.running
        url = httpd.url
        assert client.get(f"{url}/in").text == "hello /in"
    assert not httpd.running
    with pytest.raises(httpx.ConnectError):
        client.get(f"{url}/after")


def test_get_is_answered_by_the_handler(client: httpx.Client) -> None:
    with BackgroundHTTPServer(_Hello) as httpd:
        assert httpd.url == f"http://127.0.0.1:{httpd.port}"
        response = client.get(f"{httpd.url}/ping?x=1")
    assert response.status_code == 200
    assert response.text == "hello /ping?x=1"


@pytest.mark.parametrize("host", ["0.0.0.0", ""])
def test_wildcard_bind_is_shown_as_loopback(host: str, client: httpx.Client) -> None:
    with BackgroundHTTPServer(_Hello, host=host) as httpd:
        assert httpd.url == f"http://127.0.0.1:{httpd.port}"
        assert client.get(f"{httpd.url}/any").text == "hello /any"


def test_attrs_reach_the_handler_as_server_attributes(client: httpx.Client) -> None:
    httpd = BackgroundHTTPServer(
        _Greeter, server_class=_GreeterServer, attrs={"greeting": "bonjour"}
    )
    with httpd:
        assert isinstance(httpd.server, _GreeterServer)
        assert httpd.server.daemon_threads is True
        assert client.get(httpd.url).text == "bonjour"


def test_bind_error_on_a_taken_port_is_the_oserror() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        httpd = BackgroundHTTPServer(_Hello, port=port, name="clash")
        with pytest.raises(OSError) as info:
            httpd.start()
    assert info.value.errno == errno.EADDRINUSE
    assert not httpd.running
    assert _threads_named(f"clash-{port}") == []


def test_url_and_server_when_not_running_raise() -> None:
    httpd = BackgroundHTTPServer(_Hello)
    with pytest.raises(RuntimeError, match=NOT_RUNNING):
        _ = httpd.url
    with pytest.raises(RuntimeError, match=NOT_RUNNING):
        _ = httpd.server
    httpd.start()
    httpd.stop()
    with pytest.raises(RuntimeError, match=NOT_RUNNING):
        _ = httpd.url
