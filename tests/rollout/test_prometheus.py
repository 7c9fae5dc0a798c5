"""PrometheusProvider against a real Prometheus (Debian's, from `make tools`) on 127.0.0.1.

A prometheus_client exporter in this process serves a counter (steady traffic on two revisions)
and a histogram (fixed observations); Prometheus scrapes it every second. One Prometheus per
module keeps the module to a few seconds: the slowest step is filling one 5 s rate window.
"""

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

from conveyor.errors import MetricsError, MetricsUnavailable
from conveyor.httpd import BackgroundHTTPServer
from conveyor.local.prometheus import PrometheusServer, free_port
from conveyor.rollout.prometheus import PrometheusProvider, render

RATES = {"stable": 50.0, "canary": 10.0}  # requests per second the traffic thread produces
REQUESTS = "conveyor_test_requests_total"
LATENCY = "conveyor_test_latency_seconds"
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0)


@dataclass
class Exporter:
    address: str
    requests: Counter
    latency: Histogram


def _traffic(requests: Counter, stop: threading.Event) -> None:
    """Keep each revision's counter at RATES[revision] * elapsed seconds.

    Catching up to the clock (rather than adding a fixed step per sleep) keeps the true rate
    exact even when a busy machine delays this thread.
    """
    start = time.monotonic()
    done = dict.fromkeys(RATES, 0.0)
    while not stop.wait(0.02):
        elapsed = time.monotonic() - start
        for revision, rate in RATES.items():
            step = rate * elapsed - done[revision]
            requests.labels(revision=revision).inc(step)
            done[revision] += step


@pytest.fixture(scope="module")
def exporter() -> Iterator[Exporter]:
    registry = CollectorRegistry()
    requests = Counter("conveyor_test_requests", "Requests served", ["revision"], registry=registry)
    latency = Histogram(LATENCY, "Request latency", buckets=BUCKETS, registry=registry)
    # 50 observations in (0.05, 0.1] and 50 in (0.25, 0.5]: the median is exactly 0.1.
    for value in [0.07] * 50 + [0.3] * 50:
        latency.observe(value)
    for revision in RATES:
        requests.labels(revision=revision)  # both series exist from the first scrape
    server, _ = start_http_server(0, addr="127.0.0.1", registry=registry)
    stop = threading.Event()
    traffic = threading.Thread(target=_traffic, args=(requests, stop), daemon=True)
    traffic.start()
    try:
        yield Exporter(f"127.0.0.1:{server.server_port}", requests, latency)
    finally:
        stop.set()
        traffic.join(timeout=5)
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def prom(exporter: Exporter) -> Iterator[PrometheusServer]:
    with PrometheusServer({"exporter": [exporter.address]}) as server:
        server.wait_for('up{job="exporter"}', lambda v: v == 1)
        # Every test may ask a 5 s rate: wait until both series have two samples in one (a
        # test that runs first, as it may under pytest-xdist, must not find no data yet).
        server.wait_for(f"count(rate({REQUESTS}[5s]))", lambda v: v == len(RATES), timeout=20)
        yield server


@pytest.fixture(scope="module")
def provider(prom: PrometheusServer) -> Iterator[PrometheusProvider]:
    with PrometheusProvider(prom.url) as p:
        yield p


# ---------------------------------------------------------------------- numbers from real data


@pytest.mark.integration
def test_rate_query_matches_the_traffic(
    prom: PrometheusServer, provider: PrometheusProvider
) -> None:
    # A 5 s window needs several scrapes before rate() stops extrapolating from two samples.
    prom.wait_for(
        f'count_over_time({REQUESTS}{{revision="stable"}}[5s])',
        lambda v: v is not None and v >= 5,
        timeout=20,
    )
    template = "sum(rate(" + REQUESTS + '{revision="{{ revision }}"}[{{ interval }}]))'
    for revision, rate in RATES.items():
        expr = render(template, revision=revision, interval="5s")
        assert provider.query(expr) == pytest.approx(rate, rel=0.1)


@pytest.mark.integration
def test_histogram_quantile_lands_on_the_bucket_bound(provider: PrometheusProvider) -> None:
    # Cumulative buckets, not rate(): the observations were all made before the first scrape.
    median = f"histogram_quantile(0.5, sum by (le) ({LATENCY}_bucket))"
    assert provider.query(median) == pytest.approx(0.1)
    # Rank 75 of 100 is halfway through (0.25, 0.5]: Prometheus interpolates linearly.
    p75 = f"histogram_quantile(0.75, sum by (le) ({LATENCY}_bucket))"
    assert provider.query(p75) == pytest.approx(0.375)
    assert provider.query(f"sum({LATENCY}_count)") == 100.0


@pytest.mark.integration
def test_no_data_is_none(provider: PrometheusProvider) -> None:
    assert provider.query(f'{REQUESTS}{{revision="nope"}}') is None
    assert provider.query(f'sum({REQUESTS}{{revision="nope"}})') is None
    assert provider.query("vector(0) / vector(0)") is None  # NaN sample
    assert provider.query("0 / 0") is None  # NaN scalar
    assert provider.query("1 / 0") is None  # +Inf scalar


@pytest.mark.integration
def test_scalar_and_single_series(provider: PrometheusProvider) -> None:
    assert provider.query("2 * 3") == 6.0
    assert provider.query('up{job="exporter"}') == 1.0


# ---------------------------------------------------------------------- wrong queries


@pytest.mark.integration
def test_two_series_ask_for_aggregation(provider: PrometheusProvider) -> None:
    expr = f"rate({REQUESTS}[5s])"
    with pytest.raises(MetricsError, match=r"returned 2 series .*aggregate it, e.g. sum\(rate\("):
        provider.query(expr)


@pytest.mark.integration
def test_bad_promql_carries_prometheus_message(provider: PrometheusProvider) -> None:
    with pytest.raises(MetricsError, match=r"bad_data.*parse error: unclosed left parenthesis"):
        provider.query(f"sum(rate({REQUESTS}[5s])")


@pytest.mark.integration
def test_unevaluable_query_is_a_metrics_error(provider: PrometheusProvider) -> None:
    # Parses, but both sides have two series for the empty match group: HTTP 422 (execution).
    with pytest.raises(MetricsError, match=r"execution.*duplicate series"):
        provider.query(f"{REQUESTS} + on() {REQUESTS}")


@pytest.mark.integration
def test_range_vector_is_rejected(provider: PrometheusProvider) -> None:
    with pytest.raises(MetricsError, match=r"returns a range vector.*e.g. rate\(x\[5m\]\)"):
        provider.query(f"{REQUESTS}[5s]")


# ---------------------------------------------------------------------- unreachable backends


@pytest.mark.integration
def test_stopped_prometheus_is_unavailable(exporter: Exporter) -> None:
    server = PrometheusServer()
    with server:
        server.reload({"late": [exporter.address]})  # lifecycle API: jobs change live
        server.wait_for('up{job="late"}', lambda v: v == 1)
        url = server.url
        with PrometheusProvider(url) as p:
            assert p.query('up{job="late"}') == 1.0
    with (
        PrometheusProvider(url) as p,
        pytest.raises(MetricsUnavailable, match=rf"cannot reach Prometheus at {url}.*running"),
    ):
        p.query("up")


@pytest.mark.integration
def test_unused_port_is_unavailable() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with (
        PrometheusProvider(url) as p,
        pytest.raises(MetricsUnavailable, match=rf"cannot reach Prometheus at {url}"),
    ):
        p.query("up")


@pytest.mark.integration
def test_silent_server_times_out() -> None:
    # Listening but never accepting: the connection is made, the answer never comes.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        with (
            PrometheusProvider(url, timeout=0.3) as p,
            pytest.raises(MetricsUnavailable, match=r"did not answer 'up' within 0.3s"),
        ):
            p.query("up")
        assert time.monotonic() - started < 2  # no retry on a timeout


class _Overloaded(BaseHTTPRequestHandler):
    """What Prometheus answers when a query hits --query.timeout."""

    def do_GET(self) -> None:
        body = json.dumps({"status": "error", "errorType": "timeout", "error": "query timed out"})
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.mark.integration
def test_server_error_is_unavailable() -> None:
    with BackgroundHTTPServer(_Overloaded, name="overloaded-prometheus") as server:
        url = server.url
        with (
            PrometheusProvider(url) as p,
            pytest.raises(MetricsUnavailable, match=rf"{url} answered HTTP 503.*query timed out"),
        ):
            p.query("up")


@pytest.mark.integration
def test_url_that_is_not_prometheus_is_unavailable(exporter: Exporter) -> None:
    # The exporter answers any path with its metrics text: a plausible wrong --prometheus-url.
    url = f"http://{exporter.address}"
    with (
        PrometheusProvider(url) as p,
        pytest.raises(MetricsUnavailable, match=r"did not answer with Prometheus API JSON"),
    ):
        p.query("up")


# ---------------------------------------------------------------------- retry (no server needed)


def _flaky(failures: list[Exception]) -> tuple[httpx.Client, list[int]]:
    """A client whose first requests raise ``failures`` in order, then answer a scalar 1."""
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if failures:
            raise failures.pop(0)
        return httpx.Response(
            200, json={"status": "success", "data": {"resultType": "scalar", "result": [0, "1"]}}
        )

    return httpx.Client(transport=httpx.MockTransport(handler)), calls


@pytest.mark.unit
def test_one_immediate_retry_on_connection_error() -> None:
    client, calls = _flaky([httpx.ConnectError("refused")])
    assert PrometheusProvider("http://prom:9090", client=client).query("up") == 1.0
    assert len(calls) == 2

    client, calls = _flaky([httpx.ConnectError("refused"), httpx.ConnectError("refused")])
    with pytest.raises(MetricsUnavailable, match=r"cannot reach Prometheus at http://prom:9090"):
        PrometheusProvider("http://prom:9090/", client=client).query("up")
    assert len(calls) == 2

    client, calls = _flaky([httpx.ReadTimeout("slow")])
    with pytest.raises(MetricsUnavailable, match=r"did not answer 'up' within 5s"):
        PrometheusProvider("http://prom:9090", client=client).query("up")
    assert len(calls) == 1


# ---------------------------------------------------------------------- templates


@pytest.mark.unit
def test_render_fills_flagger_style_placeholders() -> None:
    template = (
        'sum(rate(revision_request_count{namespace="{{ namespace }}", '
        'revision_name="{{revision}}", isvc="{{  target }}"}[{{ interval }}])) '
        '* on() group_left() model_info{version="{{ version }}"}'
    )
    query = render(
        template,
        namespace="fraud",
        target="fraud-model",
        revision="fraud-model-predictor-00002",
        interval="1m",
        version=3,
        unused="ignored",
    )
    assert query == (
        'sum(rate(revision_request_count{namespace="fraud", '
        'revision_name="fraud-model-predictor-00002", isvc="fraud-model"}[1m])) '
        '* on() group_left() model_info{version="3"}'
    )
    assert render("up") == "up"


@pytest.mark.unit
def test_render_names_every_unfilled_placeholder() -> None:
    template = 'x{ns="{{ namespace }}", rev="{{ revision }}"}[{{ interval }}]'
    with pytest.raises(
        MetricsError,
        match=r"uses \{\{ interval \}\}, \{\{ revision \}\}, which are not provided "
        r"\(provided: namespace\)",
    ):
        render(template, namespace="fraud")
    with pytest.raises(MetricsError, match=r"uses \{\{ variables\.slo \}\}"):
        render("x > {{ variables.slo }}", namespace="fraud")
