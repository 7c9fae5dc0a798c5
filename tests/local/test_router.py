"""NginxRouter on a real nginx (Debian's, unpacked by scripts/fetch-tools.sh) in front of tiny
stdlib HTTP backends on 127.0.0.1: the split, the mirror, graceful step changes, clean stop."""

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from conveyor.httpd import BackgroundHTTPServer
from conveyor.lifecycle import free_port
from conveyor.local.router import BACKEND_HEADER, NginxRouter, find_nginx

pytestmark = pytest.mark.integration

# Requests per share check. At 400, σ of a 50 % share is 2.5 points and ±8 fails about once in
# 700 checks (41.0 % was seen here); at 1,000, σ is 1.6 and ±6 is 3.8σ (once in ~7,000).
N = 1000
TOLERANCE = 6.0


class _Server(ThreadingHTTPServer):
    # nginx keeps no connection to a mirror alive (it reads only the shadow's headers), so
    # every mirrored request is a new connection: the default backlog of 5 overflows and
    # delays some of them by SYN retransmits (1 s, 3 s, ...).
    request_queue_size = 256

    def handle_error(self, request: object, client_address: object) -> None:
        # nginx resets idle upstream connections when its workers exit: not an error here
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class Backend:
    """A ThreadingHTTPServer that answers ``status`` with its name and records every request
    (path, body, headers); ``delay`` makes it slow, as a shadow model may be."""

    def __init__(self, name: str, status: int = 200, delay: float = 0.0) -> None:
        self.name, self.status, self.delay = name, status, delay
        self.seen: list[tuple[str, bytes, dict[str, str]]] = []
        self._lock = threading.Lock()
        backend = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as nginx's upstream connections are
            # headers and body go out in two writes: without this, Nagle + delayed ACK hold
            # each answer ~40 ms on a kept-alive connection
            disable_nagle_algorithm = True

            def _answer(self) -> None:
                size = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(size) if size else b""
                with backend._lock:
                    backend.seen.append(
                        (self.path, body, {k.lower(): v for k, v in self.headers.items()})
                    )
                if backend.delay:
                    time.sleep(backend.delay)
                out = backend.name.encode()
                self.send_response(backend.status)
                self.send_header("content-length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = _answer

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = BackgroundHTTPServer(
            Handler, server_class=_Server, name=f"backend-{name}"
        ).start()
        self.url = self._httpd.url

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.seen)

    def reset(self) -> None:
        with self._lock:
            self.seen.clear()

    def close(self) -> None:
        self._httpd.stop()


def _wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Mirrored requests arrive after the caller's answer: poll until ``predicate`` holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def _gone(pid: int) -> bool:
    """True when no process ``pid`` exists any more (a zombie would still count as there)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture(scope="module")
def nginx_bin() -> str:
    found = find_nginx()
    if found is None:
        pytest.skip("nginx not found in .tools/bin or on PATH: run `bash scripts/fetch-tools.sh`")
    return str(found)


@pytest.fixture(scope="module")
def backends() -> Iterator[dict[str, Backend]]:
    made = {
        "champion": Backend("champion"),
        "candidate": Backend("candidate"),
        "shadow": Backend("shadow", delay=0.02),
    }
    yield made
    for backend in made.values():
        backend.close()


@pytest.fixture(scope="module")
def router(
    nginx_bin: str, backends: dict[str, Backend], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[NginxRouter]:
    workdir = tmp_path_factory.mktemp("router")
    with NginxRouter(
        backends["champion"].url, backends["candidate"].url, workdir=workdir, nginx=nginx_bin
    ) as running:
        yield running


@pytest.fixture
def fresh(router: NginxRouter, backends: dict[str, Backend]) -> NginxRouter:
    """The shared router back at 0 % and no mirror, with every backend's count at zero."""
    router.set_split(0)
    router.set_mirror(None)
    for backend in backends.values():
        backend.reset()
    return router


def _send(url: str, n: int, threads: int = 4) -> list[httpx.Response]:
    """``n`` requests from ``threads`` clients at once (each with its own connection pool)."""
    replies: list[httpx.Response] = []
    lock = threading.Lock()

    def run(count: int) -> None:
        with httpx.Client(timeout=10) as client:
            for i in range(count):
                reply = client.post(f"{url}/v1/models/fraud:predict", content=f"row {i}".encode())
                with lock:
                    replies.append(reply)

    workers = [threading.Thread(target=run, args=(n // threads,)) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return replies


# --- arguments (no nginx needed) -----------------------------------------------------------


def test_split_outside_0_to_100_or_without_candidate_is_refused(tmp_path: Path) -> None:
    router = NginxRouter("http://127.0.0.1:1", "http://127.0.0.1:2", workdir=tmp_path)
    with pytest.raises(ValueError, match=r"101 is outside 0\.\.100"):
        router.set_split(101)
    with pytest.raises(ValueError, match=r"-1 is outside 0\.\.100"):
        router.set_split(-1)
    with pytest.raises(ValueError, match=r"got 12\.5"):
        router.set_split(12.5)  # type: ignore[arg-type]
    alone = NginxRouter("http://127.0.0.1:1", workdir=tmp_path)
    with pytest.raises(ValueError, match="candidate_percent 10: this router has no candidate"):
        alone.set_split(10)
    alone.set_split(0)
    assert alone.split() == 0
    with pytest.raises(ValueError, match=r"mirror percent 150 is outside 0\.\.100"):
        router.set_mirror("http://127.0.0.1:3", 150)
    with pytest.raises(ValueError, match="candidate URL 'http://x:1/v1' is not a base URL"):
        NginxRouter("http://127.0.0.1:1", "http://x:1/v1", workdir=tmp_path)


# --- split ---------------------------------------------------------------------------------


@pytest.mark.parametrize("percent", [0, 25, 50, 100])
def test_split_sends_the_configured_share_to_the_candidate(
    fresh: NginxRouter, backends: dict[str, Backend], percent: int
) -> None:
    fresh.set_split(percent)
    assert fresh.split() == percent
    replies = _send(fresh.url, N)
    assert [r.status_code for r in replies] == [200] * N
    # the header names the backend that answered
    assert all(r.headers[BACKEND_HEADER] == r.text for r in replies)
    to_candidate = sum(r.text == "candidate" for r in replies)
    assert backends["candidate"].count == to_candidate
    assert backends["champion"].count == N - to_candidate
    share = 100 * to_candidate / N
    if percent in (0, 100):
        assert share == percent
    else:
        assert abs(share - percent) <= TOLERANCE, f"{share:.1f} % for a {percent} % split"


def test_a_candidate_error_reaches_the_caller_and_is_not_retried_on_the_champion(
    nginx_bin: str, tmp_path: Path
) -> None:
    champion, broken = Backend("champion"), Backend("candidate", status=500)
    try:
        with NginxRouter(champion.url, broken.url, workdir=tmp_path, nginx=nginx_bin) as router:
            router.set_split(100)
            replies = _send(router.url, 40)
        assert {(r.status_code, r.headers[BACKEND_HEADER], r.text) for r in replies} == {
            (500, "candidate", "candidate")
        }
        assert broken.count == 40
        assert champion.count == 0
    finally:
        champion.close()
        broken.close()


# --- mirror --------------------------------------------------------------------------------


def test_mirror_at_100_copies_every_request_and_the_caller_sees_only_the_champion(
    fresh: NginxRouter, backends: dict[str, Backend]
) -> None:
    shadow = backends["shadow"]
    shadow.delay = 0.1  # a slow shadow must not slow the caller down
    try:
        fresh.set_mirror(shadow.url)
        assert fresh.mirror == (shadow.url, 100.0)
        replies = _send(fresh.url, 200)
        assert {(r.status_code, r.text) for r in replies} == {(200, "champion")}
        assert _wait_for(lambda: shadow.count >= 200), f"shadow got {shadow.count} of 200"
        time.sleep(0.2)
        assert shadow.count == 200
    finally:
        shadow.delay = 0.02
    # the same request: path, body and request id
    champion = {h["x-request-id"]: (path, body) for path, body, h in backends["champion"].seen}
    mirrored = {h["x-request-id"]: (path, body) for path, body, h in shadow.seen}
    assert mirrored == champion
    assert all(h.get("x-conveyor-mirror") == "1" for _, _, h in shadow.seen)
    # answered without waiting for the shadow's 100 ms
    median = sorted(r.elapsed.total_seconds() for r in replies)[len(replies) // 2]
    assert median < 0.05, f"median {median * 1000:.0f} ms"


def test_mirror_at_50_copies_about_half(fresh: NginxRouter, backends: dict[str, Backend]) -> None:
    shadow = backends["shadow"]
    shadow.delay = 0.0
    try:
        fresh.set_mirror(shadow.url, 50)
        replies = _send(fresh.url, N)
        assert {(r.status_code, r.text) for r in replies} == {(200, "champion")}
        time.sleep(0.5)  # let the last mirrored requests land
        share = 100 * shadow.count / N
        assert abs(share - 50) <= TOLERANCE, f"{share:.1f} % mirrored at 50 %"
    finally:
        shadow.delay = 0.02


def test_a_dead_shadow_does_not_change_what_the_caller_sees(
    fresh: NginxRouter, backends: dict[str, Backend]
) -> None:
    fresh.set_split(50)
    fresh.set_mirror(f"http://127.0.0.1:{free_port()}")  # nothing listens there
    replies = _send(fresh.url, 40)
    assert all(r.status_code == 200 and r.text in ("champion", "candidate") for r in replies)
    fresh.set_mirror(None)
    assert fresh.mirror is None


# --- step changes --------------------------------------------------------------------------


def test_step_changes_under_load_lose_no_request(
    fresh: NginxRouter, backends: dict[str, Backend]
) -> None:
    """4 clients keep sending while the split moves 0 → 100 → 0 in steps of 10: every
    reload is graceful, so not one request fails or gets a 502."""
    stop = threading.Event()
    failures: list[str] = []
    answered = [0]
    lock = threading.Lock()

    def load() -> None:
        with httpx.Client(timeout=10) as client:
            while not stop.is_set():
                try:
                    reply = client.post(f"{fresh.url}/v1/models/fraud:predict", content=b"row")
                except httpx.HTTPError as exc:
                    with lock:
                        failures.append(repr(exc))
                    continue
                with lock:
                    answered[0] += 1
                    if reply.status_code != 200 or reply.headers[BACKEND_HEADER] != reply.text:
                        failures.append(f"{reply.status_code} {reply.text[:80]}")

    threads = [threading.Thread(target=load) for _ in range(4)]
    for thread in threads:
        thread.start()
    steps = [*range(0, 101, 10), *range(90, -1, -10)] * 2
    try:
        for percent in steps:
            fresh.set_split(percent)
            time.sleep(0.02)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert failures == []
    assert answered[0] > 200
    assert backends["candidate"].count > 0 and backends["champion"].count > 0
    assert fresh.split() == 0
    # the old workers drained and exited: only the current one is left
    assert _wait_for(lambda: len(fresh.workers()) == 1), fresh.workers()


def test_stop_leaves_no_nginx_process(
    nginx_bin: str, backends: dict[str, Backend], tmp_path: Path
) -> None:
    router = NginxRouter(
        backends["champion"].url, backends["candidate"].url, workdir=tmp_path, nginx=nginx_bin
    )
    router.set_split(100)  # before start: applied when it starts
    with pytest.raises(RuntimeError, match="boom"), router:
        master, workers = router.pid, router.workers()
        assert master is not None and workers
        assert httpx.get(router.url).headers[BACKEND_HEADER] == "candidate"
        raise RuntimeError("boom")  # __exit__ stops nginx on errors too
    assert router.pid is None
    assert master is not None
    assert all(_gone(pid) for pid in [master, *workers])
    router.stop()  # stopping twice is harmless
