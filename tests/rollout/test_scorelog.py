"""The score-log receiver over real HTTP on 127.0.0.1, fed events shaped as KServe's agent
sends them, and scraped by a real Prometheus that ``PrometheusScores`` then reads.

The events copy kserve/kserve ``pkg/logger/worker.go``: a CloudEvent in binary content mode
(cloudevents sdk-go), attributes as ``Ce-*`` headers (Go canonical case), the inference
payload as the body, and the *request's* Content-Type on both events.
"""

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conveyor import drift
from conveyor.rollout.analysis import merge_sparse_bins
from conveyor.rollout.localprom import PrometheusServer, tools_dir
from conveyor.rollout.metrics import MetricsError
from conveyor.rollout.prometheus import PrometheusProvider, PrometheusScores
from conveyor.rollout.scorelog import (
    CE_REQUEST,
    CE_RESPONSE,
    ScoreLogError,
    ScoreLogServer,
    UnparseableEvent,
    positive_scores,
)
from conveyor.serving.server import SCORE_BUCKETS, free_port

pytestmark = pytest.mark.integration

ROWS = 400  # per version: well above PrometheusScores.MIN_COUNT


def kserve_headers(ce_type: str, **extra: str) -> dict[str, str]:
    """The headers KServe's agent sends for an InferenceService `fraud` in conveyor-dev."""
    return {
        "Ce-Specversion": "1.0",
        "Ce-Id": str(uuid.uuid4()),
        "Ce-Source": "http://localhost:9081/",
        "Ce-Type": ce_type,
        "Ce-Time": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "Ce-Inferenceservicename": "fraud",
        "Ce-Namespace": "conveyor-dev",
        "Ce-Component": "predictor",
        "Ce-Endpoint": "default",
        "Ce-Metadata": "{}",
        "Content-Type": "application/json",
        "User-Agent": "Go-http-client/1.1",
        **extra,
    }


def post(
    client: httpx.Client,
    url: str,
    body: Any,
    *,
    query: str = "model=fraud&version=1",
    ce_type: str = CE_RESPONSE,
    **headers: str,
) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    path = f"{url}/log?{query}" if query else f"{url}/log"
    return client.post(path, content=content, headers=kserve_headers(ce_type, **headers))


def v1_proba(scores: Sequence[float]) -> dict[str, Any]:
    """kserve-sklearnserver with PREDICT_PROBA=true, V1: one [p0, p1] list per row."""
    return {"predictions": [[1.0 - s, s] for s in scores]}


def v2_proba(scores: Sequence[float]) -> dict[str, Any]:
    """The same on V2: one FP64 tensor of shape [n, 2], data in row-major order."""
    data = [v for s in scores for v in (1.0 - s, s)]
    return {
        "model_name": "fraud",
        "id": str(uuid.uuid4()),
        "outputs": [{"name": "output-0", "shape": [len(scores), 2], "datatype": "FP64",
                     "data": data}],
    }  # fmt: skip


def cumulative(scores: Sequence[float]) -> list[float]:
    """Prometheus' cumulative bucket counts (value <= bound) for SCORE_BUCKETS."""
    values = np.asarray(scores)
    return [float(np.sum(values <= bound)) for bound in SCORE_BUCKETS]


def scrape(client: httpx.Client, url: str) -> dict[str, Any]:
    """/metrics parsed: score buckets by (model, version) and event counts by outcome."""
    response = client.get(f"{url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    buckets: dict[tuple[str, str], dict[float, float]] = {}
    events: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == "conveyor_prediction_score_bucket":
                key = (sample.labels["model"], sample.labels["version"])
                buckets.setdefault(key, {})[float(sample.labels["le"])] = sample.value
            elif sample.name == "conveyor_scorelog_events_total":
                events[sample.labels["outcome"]] = sample.value
    return {"buckets": buckets, "events": events}


def finite(series: dict[float, float]) -> list[float]:
    return [series[b] for b in SCORE_BUCKETS]


@pytest.fixture
def receiver() -> Iterator[ScoreLogServer]:
    with ScoreLogServer("127.0.0.1", 0, max_body=64 * 1024) as server:
        yield server


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10.0) as c:
        yield c


# ----------------------------------------------------------------------------- parsing


def test_positive_scores_of_each_response_shape() -> None:
    assert positive_scores(b'{"predictions": [[0.9, 0.1], [0.25, 0.75]]}') == [0.1, 0.75]
    assert positive_scores(b'{"predictions": [0.3, 1, 0]}') == [0.3, 1.0, 0.0]
    assert positive_scores(b'{"predictions": [[0.4]]}') == [0.4]
    v2 = {"outputs": [{"name": "o", "shape": [2, 2], "data": [0.8, 0.2, 0.1, 0.9]}]}
    assert positive_scores(json.dumps(v2).encode()) == [0.2, 0.9]
    nested = {"outputs": [{"name": "o", "shape": [2, 2], "data": [[0.8, 0.2], [0.1, 0.9]]}]}
    assert positive_scores(json.dumps(nested).encode()) == [0.2, 0.9]
    flat = {"outputs": [{"name": "o", "shape": [3], "data": [0.1, 0.2, 0.3]}]}
    assert positive_scores(json.dumps(flat).encode()) == [0.1, 0.2, 0.3]
    assert positive_scores(b'{"predictions": []}') == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", r"body is not JSON"),
        (b"[0.1, 0.2]", r"body is a JSON list, not an object"),
        (b'{"predictions": {"a": 1}}', r"`predictions` is a dict, not a list"),
        (b'{"predictions": [[0.1, 0.2, 0.7]]}', r"prediction 0 has 3 values; expected 2 class"),
        (b'{"predictions": ["fraud"]}', r"prediction 0 is 'fraud', not a number"),
        (b'{"predictions": [true]}', r"prediction 0 is True, not a number"),
        (b'{"predictions": [NaN]}', r"prediction 0 is nan, not a finite number"),
        (b'{"outputs": []}', r"`outputs` is not a non-empty list"),
        (
            b'{"outputs": [{"name": "o", "shape": [2, 2], "data": [0.1, 0.9, 0.2]}]}',
            r"output 'o': shape \[2, 2\] holds 4 values, `data` has 3",
        ),
        (
            b'{"outputs": [{"name": "o", "shape": [1, 3], "data": [0.1, 0.2, 0.7]}]}',
            r"output 'o': shape \[1, 3\]; expected \[n, 2\] class probabilities",
        ),
        (
            b'{"outputs": [{"name": "o", "shape": "2", "data": [0.1, 0.9]}]}',
            r"output 'o': shape '2' is not a list of sizes",
        ),
        (
            b'{"outputs": [{"name": "o", "shape": [1], "data": ["a"]}]}',
            r"output 'o' value 0 is 'a', not a number",
        ),
    ],
)
def test_unparseable_bodies_name_the_problem(body: bytes, message: str) -> None:
    with pytest.raises(UnparseableEvent, match=message):
        positive_scores(body)


# ----------------------------------------------------------------------------- over HTTP


def test_response_events_are_observed_per_version(
    receiver: ScoreLogServer, client: httpx.Client
) -> None:
    champion = [0.03, 0.12, 0.12, 0.41, 0.97]
    candidate = [0.07, 0.55, 0.61, 0.88]
    # Request events (the instances the predictor received) carry no scores.
    request = {"instances": [{"amount": 12.5, "country": "FR"}]}
    answer = post(client, receiver.url, request, ce_type=CE_REQUEST)
    assert answer.status_code == 200
    assert answer.json()["outcome"] == "ignored"

    # Champion on V1 with PREDICT_PROBA=true, in two events; one flat score list as well.
    assert post(client, receiver.url, v1_proba(champion[:2])).json()["rows"] == 2
    assert post(client, receiver.url, v1_proba(champion[2:4])).status_code == 200
    assert post(client, receiver.url, {"predictions": champion[4:]}).json()["rows"] == 1
    # Candidate on V2; the model comes from Ce-Inferenceservicename when the URL omits it.
    answer = post(client, receiver.url, v2_proba(candidate), query="version=2")
    assert (answer.status_code, answer.json()["outcome"]) == (200, "observed")
    assert answer.json()["message"] == "fraud v2: 4 rows"

    metrics = scrape(client, receiver.url)
    assert sorted(metrics["buckets"]) == [("fraud", "1"), ("fraud", "2")]
    assert finite(metrics["buckets"][("fraud", "1")]) == cumulative(champion)
    assert finite(metrics["buckets"][("fraud", "2")]) == cumulative(candidate)
    assert metrics["buckets"][("fraud", "2")][float("inf")] == 4
    # exactly the model server's buckets, plus +Inf
    assert sorted(metrics["buckets"][("fraud", "1")]) == [*SCORE_BUCKETS, float("inf")]
    assert metrics["events"] == {
        "observed": 4,
        "ignored": 1,
        "no_version": 0,
        "unparseable": 0,
        "too_large": 0,
    }


def test_rejected_events_are_counted_and_not_observed(
    receiver: ScoreLogServer, client: httpx.Client
) -> None:
    url = receiver.url
    answer = post(client, url, v1_proba([0.5]), query="model=fraud")
    assert answer.status_code == 400
    assert answer.json()["outcome"] == "no_version"
    assert "?version=" in answer.json()["message"]

    answer = post(client, url, b"<html>oops</html>")
    assert answer.status_code == 400
    assert answer.json()["message"].startswith("unparseable response: body is not JSON")
    answer = post(client, url, {"predictions": [[0.2, 0.3, 0.5]]})
    assert answer.status_code == 400
    assert "prediction 0 has 3 values" in answer.json()["message"]

    # not a CloudEvent at all
    plain = client.post(f"{url}/log?model=fraud&version=1", json=v1_proba([0.5]))
    assert plain.status_code == 400
    assert "no Ce-Type header" in plain.json()["message"]

    # a model-metadata answer the agent logged: a 200 response that is no prediction
    answer = post(client, url, {"name": "fraud", "ready": True})
    assert (answer.status_code, answer.json()["outcome"]) == (200, "ignored")

    # 64 KiB limit in this fixture: refused before the body is read, connection closed
    big = {"predictions": [0.5] * 20_000}
    answer = post(client, url, big)
    assert answer.status_code == 413
    assert answer.headers["connection"] == "close"
    assert "exceeds the limit of 65536" in answer.json()["message"]

    assert client.post(f"{url}/other", content=b"{}").status_code == 404
    assert client.get(f"{url}/healthz").text == "ok\n"
    assert client.get(f"{url}/nope").status_code == 404

    metrics = scrape(client, url)
    assert metrics["buckets"] == {}
    assert metrics["events"] == {
        "observed": 0,
        "ignored": 1,
        "no_version": 1,
        "unparseable": 3,
        "too_large": 1,
    }


def test_registries_are_per_server_and_ports_are_checked(client: httpx.Client) -> None:
    with ScoreLogServer("127.0.0.1", 0) as one, ScoreLogServer("127.0.0.1", 0) as two:
        post(client, one.url, v1_proba([0.2]))
        assert scrape(client, one.url)["buckets"][("fraud", "1")][0.2] == 1
        assert scrape(client, two.url)["buckets"] == {}
        with pytest.raises(ScoreLogError, match=rf"cannot listen on 127.0.0.1:{one.port}"):
            ScoreLogServer("127.0.0.1", one.port).start()
    with pytest.raises(ScoreLogError, match="not running"):
        _ = one.url


def test_cli_serves_until_sigterm(client: httpx.Client) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "conveyor.cli", "scorelog", "--host", "127.0.0.1", "--port",
         str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                if client.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "conveyor scorelog not ready in 30 s"
            time.sleep(0.1)
        assert post(client, url, v1_proba([0.3, 0.6])).json()["rows"] == 2
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == 0, out
    assert f"conveyor scorelog on 127.0.0.1:{port}" in out
    assert "SIGTERM, stopping" in out


# ----------------------------------------------------------------------------- Prometheus


def test_label_matchers_are_checked() -> None:
    provider = PrometheusProvider("http://127.0.0.1:9")
    with pytest.raises(MetricsError, match="'version' is set per bucket and role"):
        PrometheusScores(provider, {"champion": "1"}, "1m", labels={"version": "1"})
    with pytest.raises(MetricsError, match="'bad-name' is not a valid Prometheus label name"):
        PrometheusScores(provider, {"champion": "1"}, "1m", labels={"bad-name": "x"})
    scores = PrometheusScores(provider, {"champion": "1"}, "1m", labels={"namespace": 'a"b'})
    assert scores.selector("champion", 0.5) == (
        'conveyor_prediction_score_bucket{namespace="a\\"b",version="1",le="0.5"}'
    )
    with pytest.raises(MetricsError, match="no version given for role 'candidate'"):
        scores.selector("candidate", 0.5)


@pytest.fixture(scope="module")
def prometheus_tools() -> None:
    try:
        tools_dir(("prometheus",))
    except RuntimeError as exc:
        pytest.skip(str(exc))


def test_prometheus_scrapes_the_receiver_and_psi_sees_the_shift(
    prometheus_tools: None, client: httpx.Client
) -> None:
    rng = np.random.default_rng(7)
    champion = rng.beta(2.0, 8.0, ROWS)  # most scores low, as for a fraud model
    candidate = np.clip(rng.beta(2.0, 8.0, ROWS) + 0.1, 0.0, 0.999)  # shifted up
    retrained = rng.beta(2.0, 8.0, ROWS)  # a fresh draw of the champion's distribution
    with (
        ScoreLogServer("127.0.0.1", 0) as receiver,
        PrometheusServer({"scorelog": [f"127.0.0.1:{receiver.port}"]}) as prom,
    ):
        prom.wait_for('up{job="scorelog"}', lambda v: v == 1)
        # One row per series first, so every bucket series is in Prometheus before the
        # window's rows arrive: increase() counts only what came after a series' first sample.
        for version in ("1", "2", "3"):
            post(client, receiver.url, v1_proba([0.99]), query=f"model=fraud&version={version}")
        post(client, receiver.url, v1_proba([0.99]), query="model=other&version=2")
        prom.wait_for(
            'count(count_over_time(conveyor_prediction_score_count{job="scorelog"}[1m]) >= 2)',
            lambda v: v == 4,
        )
        # The window, 50 rows an event: the champion on V1 (PREDICT_PROBA), the candidate on
        # V2, version 3 as V1 flat scores; another model's version 2 with every score at 0.5,
        # which the model matcher keeps out.
        for start in range(0, ROWS, 50):
            rows = slice(start, start + 50)
            for query, body in (
                ("model=fraud&version=1", v1_proba(champion[rows].tolist())),
                ("model=fraud&version=2", v2_proba(candidate[rows].tolist())),
                ("model=fraud&version=3", {"predictions": retrained[rows].tolist()}),
                ("model=other&version=2", v1_proba([0.5] * 50)),
            ):
                assert post(client, receiver.url, body, query=query).status_code == 200
        prom.wait_for(
            'min(conveyor_prediction_score_count{job="scorelog"})', lambda v: v == ROWS + 1
        )

        with PrometheusProvider(prom.url) as provider:
            versions = {"champion": "1", "candidate": "2"}
            matched = {"model": "fraud", "job": "scorelog"}
            scores = PrometheusScores(provider, versions, "1m", labels=matched)
            a, b = scores.fractions("champion"), scores.fractions("candidate")
            same = PrometheusScores(provider, {"candidate": "3"}, "1m", labels=matched)
            c = same.fractions("candidate")
            mixed = PrometheusScores(provider, versions, "1m").fractions("candidate")
            empty = PrometheusScores(provider, versions, "1m", labels={"model": "nope"})
            assert empty.fractions("champion") is None

    assert a is not None and b is not None and c is not None and mixed is not None
    # The posted distributions, bucket by bucket (the priming row shifts the top bucket's
    # extrapolation by ~1/ROWS at most).
    expected_a = np.diff([0.0, *cumulative(champion)]) / ROWS
    expected_b = np.diff([0.0, *cumulative(candidate)]) / ROWS
    assert a == pytest.approx(expected_a, abs=0.005)
    assert b == pytest.approx(expected_b, abs=0.005)
    assert c == pytest.approx(np.diff([0.0, *cumulative(retrained)]) / ROWS, abs=0.005)
    # without the model matcher the other model's version 2 lands in the 0.5 bucket
    assert mixed[9] == pytest.approx(expected_b[9] + 0.5 * (1 - expected_b[9]), abs=0.01)

    # score_psi's bound is 0.2: the shifted candidate fails it, a fresh draw passes
    assert drift.psi(a, b) > 0.2
    assert drift.psi(*merge_sparse_bins(a, b)) > 0.2  # as the analysis computes it
    assert drift.psi(*merge_sparse_bins(a, c)) < 0.1
