"""The score-log receiver over real HTTP on 127.0.0.1, fed events shaped as KServe's agent
sends them, and scraped by a real Prometheus that ``PrometheusScores`` then reads.

The events copy kserve/kserve ``pkg/logger/worker.go``: a CloudEvent in binary content mode
(cloudevents sdk-go), attributes as ``Ce-*`` headers (Go canonical case), the inference
payload as the body, and the *request's* Content-Type on both events.
"""

import json
import os
import re
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

from conveyor import distributions
from conveyor.errors import MetricsError, ScoreLogError
from conveyor.lifecycle import free_port
from conveyor.local.prometheus import PrometheusServer, tools_dir
from conveyor.rollout.analysis import _auc, merge_sparse_bins
from conveyor.rollout.metrics import SCORE_BUCKETS
from conveyor.rollout.prometheus import (
    PrometheusFeedback,
    PrometheusProvider,
    PrometheusScores,
    feedback_source,
)
from conveyor.rollout.scorelog import (
    CE_REQUEST,
    CE_RESPONSE,
    ScoreLogServer,
    UnparseableEvent,
    positive_scores,
)

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
        "bad_label": 0,
        "unparseable": 0,
        "too_large": 0,
        "unstored": 0,
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
        "bad_label": 0,
        "unparseable": 3,
        "too_large": 1,
        "unstored": 0,
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
    assert distributions.psi(a, b) > 0.2
    assert distributions.psi(*merge_sparse_bins(a, b)) > 0.2  # as the analysis computes it
    assert distributions.psi(*merge_sparse_bins(a, c)) < 0.1


# ----------------------------------------------------------------------------- feedback


def respond(
    client: httpx.Client, url: str, ce_id: str, scores: Sequence[float], version: str = "1"
) -> None:
    """One logged response of ``scores`` under the request id ``ce_id`` (the client's ce-id)."""
    answer = post(client, url, v1_proba(scores), query=f"model=fraud&version={version}",
                  **{"Ce-Id": ce_id})  # fmt: skip
    assert answer.json()["outcome"] == "observed", answer.text


def feedback(client: httpx.Client, url: str, body: Any) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(f"{url}/feedback", content=content)


def scrape_feedback(client: httpx.Client, url: str) -> dict[str, Any]:
    """/metrics parsed: feedback buckets by (model, version, label), items by outcome."""
    buckets: dict[tuple[str, str, str], list[float]] = {}
    items: dict[str, float] = {}
    other: dict[str, float] = {}
    for family in text_string_to_metric_families(client.get(f"{url}/metrics").text):
        for sample in family.samples:
            if sample.name == "conveyor_feedback_score_bucket" and sample.labels["le"] != "+Inf":
                key = (sample.labels["model"], sample.labels["version"], sample.labels["label"])
                buckets.setdefault(key, []).append(sample.value)
            elif sample.name == "conveyor_feedback_total":
                items[sample.labels["outcome"]] = sample.value
            elif sample.name in ("conveyor_feedback_pending", "conveyor_feedback_evicted_total"):
                other[sample.name] = sample.value
    return {"buckets": buckets, "items": items, **other}


def test_feedback_labels_logged_responses_once(
    receiver: ScoreLogServer, client: httpx.Client
) -> None:
    url = receiver.url
    respond(client, url, "r1", [0.1, 0.7, 0.95])
    respond(client, url, "r2", [0.3])
    respond(client, url, "r3", [0.2, 0.6], version="2")
    # a request event carries no scores: its id waits for nothing
    post(client, url, {"instances": [[1.0]]}, ce_type=CE_REQUEST, **{"Ce-Id": "req-only"})
    assert scrape_feedback(client, url)["conveyor_feedback_pending"] == 3

    answer = feedback(client, url, {"id": "r1", "labels": [0, 1, 1]})
    assert (answer.status_code, answer.json()) == (
        200, {"id": "r1", "outcome": "matched", "rows": 3, "message": "fraud v1: 3 rows labelled"}
    )  # fmt: skip
    again = feedback(client, url, {"id": "r1", "labels": [0, 1, 1]})
    assert (again.status_code, again.json()["outcome"]) == (404, "unknown_id")
    assert again.json()["message"].startswith("id 'r1': no logged response waits")
    unknown = feedback(client, url, {"id": "req-only", "label": 0})
    assert (unknown.status_code, unknown.json()["outcome"]) == (404, "unknown_id")
    assert feedback(client, url, {"id": "r2", "label": 1}).json()["outcome"] == "matched"

    for body, status, message in [
        (b"{oops", 400, "body is not JSON"),
        ({"labels": [1]}, 400, "`id` is None, not the non-empty Ce-Id"),
        ({"id": "r3", "labels": [0, 2]}, 400, "id 'r3': `labels[1]` is 2, not 0 or 1"),
        ({"id": "r3", "labels": [0, True]}, 400, "`labels[1]` is True, not 0 or 1"),
        ({"id": "r3", "label": 0.0}, 400, "`label` is 0.0, not 0 or 1"),
        ({"id": "r3"}, 400, 'give either "labels": [0, 1, ...] (one per row) or "label": 0|1'),
        ({"id": "r3", "labels": [1]}, 400, "1 label(s) for a response of 2 row(s); give one"),
        ([], 400, "an empty list"),
    ]:
        answer = feedback(client, url, body)
        assert answer.status_code == status, body
        assert answer.json()["outcome"] == "bad"
        assert message in answer.json()["message"], answer.json()["message"]
    # a length mismatch leaves the response pending: the corrected labels still match
    assert feedback(client, url, {"id": "r3", "labels": [1, 0]}).json()["outcome"] == "matched"

    assert client.post(f"{url}/feedback?x", content=b"{}").status_code == 400
    metrics = scrape_feedback(client, url)
    assert metrics["buckets"] == {
        ("fraud", "1", "0"): cumulative([0.1]),
        ("fraud", "1", "1"): cumulative([0.7, 0.95, 0.3]),
        ("fraud", "2", "0"): cumulative([0.6]),
        ("fraud", "2", "1"): cumulative([0.2]),
    }
    assert metrics["items"] == {"matched": 3, "unknown_id": 2, "bad": 9, "unstored": 0}
    assert metrics["conveyor_feedback_pending"] == 0


def test_feedback_batches_answer_per_item(receiver: ScoreLogServer, client: httpx.Client) -> None:
    url = receiver.url
    respond(client, url, "a", [0.2, 0.8])
    respond(client, url, "b", [0.4])
    batch = [
        {"id": "a", "labels": [0, 1]},
        {"id": "gone", "label": 0},
        {"id": "b", "labels": [1, 0]},
        "b",
        {"id": "b", "label": 0},
    ]
    answer = feedback(client, url, batch)
    assert answer.status_code == 200
    results = answer.json()["results"]
    assert [(r.get("id"), r["outcome"], r["rows"]) for r in results] == [
        ("a", "matched", 2),
        ("gone", "unknown_id", 0),
        ("b", "bad", 0),
        (None, "bad", 0),
        ("b", "matched", 1),
    ]
    assert "a JSON str, not an object" in results[3]["message"]
    assert scrape_feedback(client, url)["items"] == {
        "matched": 2, "unknown_id": 1, "bad": 2, "unstored": 0
    }  # fmt: skip


def test_pending_responses_are_evicted_least_recent_first(client: httpx.Client) -> None:
    with pytest.raises(ScoreLogError, match="max_pending is 0; it must be at least 1"):
        ScoreLogServer("127.0.0.1", 0, max_pending=0)
    with ScoreLogServer("127.0.0.1", 0, max_pending=3) as receiver:
        url = receiver.url
        for ce_id in ("e0", "e1", "e2"):
            respond(client, url, ce_id, [0.5])
        respond(client, url, "e0", [0.6])  # logged again (a retry): the most recent now
        respond(client, url, "e3", [0.7])  # the fourth id: e1, the least recent, goes
        respond(client, url, "e3", [0.8], version="2")  # a mirror's copy: same id, 2nd entry
        assert receiver.scorelog.pending() == 3
        evicted = feedback(client, url, {"id": "e1", "label": 1})
        assert evicted.status_code == 404
        assert "evicted beyond the 3 most recent" in evicted.json()["message"]
        kept = feedback(client, url, [{"id": i, "label": 1} for i in ("e0", "e2", "e3")])
        assert [r["outcome"] for r in kept.json()["results"]] == ["matched"] * 3
        assert kept.json()["results"][2]["message"] == "fraud v1, fraud v2: 1 rows labelled"
        metrics = scrape_feedback(client, url)
    assert metrics["conveyor_feedback_evicted_total"] == 1
    assert metrics["conveyor_feedback_pending"] == 0
    # e0's retry replaced its first response: 0.6 is labelled, 0.5 only once (e2)
    assert metrics["buckets"][("fraud", "1", "1")] == cumulative([0.6, 0.5, 0.7])
    assert metrics["buckets"][("fraud", "2", "1")] == cumulative([0.8])
    assert metrics["buckets"][("fraud", "2", "0")] == [0.0] * len(SCORE_BUCKETS)


def test_cli_takes_max_pending() -> None:
    from conveyor.cli import build_parser

    args = build_parser().parse_args(["scorelog", "--max-pending", "500"])
    assert args.max_pending == 500
    assert build_parser().parse_args(["scorelog"]).max_pending == 100_000


def binned(scores: np.ndarray) -> np.ndarray:
    """Each score at its bucket's midpoint (buckets hold ``lower < score <= le``)."""
    upper = np.asarray(SCORE_BUCKETS)
    mid = (np.concatenate([[0.0], upper[:-1]]) + upper) / 2
    return mid[np.searchsorted(upper, scores, side="left")]


def test_prometheus_feedback_gives_the_binned_auc_of_each_version(
    prometheus_tools: None, client: httpx.Client
) -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(11)
    rows = 60  # per version, above MIN_FEEDBACK; few per bucket, so rounding is exact
    y = {v: rng.permutation(np.repeat([0, 1], rows // 2)) for v in ("1", "2")}
    scores = {  # version 2 separates the classes worse than version 1
        "1": np.clip(0.3 + 0.45 * y["1"] + rng.normal(0, 0.15, rows), 0.001, 0.999),
        "2": np.clip(0.4 + 0.2 * y["2"] + rng.normal(0, 0.2, rows), 0.001, 0.999),
    }
    with (
        ScoreLogServer("127.0.0.1", 0) as receiver,
        PrometheusServer(
            {"scorelog": [f"127.0.0.1:{receiver.port}"]}, scrape_interval="200ms"
        ) as prom,
    ):
        prom.wait_for('up{job="scorelog"}', lambda v: v == 1)
        for version in ("1", "2"):
            for start in range(0, rows, 10):
                ids = [f"v{version}-{i}" for i in range(start, start + 10)]
                for ce_id, score in zip(ids, scores[version][start : start + 10], strict=True):
                    respond(client, receiver.url, ce_id, [float(score)], version=version)
        # Both label series of both versions are in Prometheus at 0 before any feedback.
        prom.wait_for('count(conveyor_feedback_score_count{job="scorelog"} == 0)', lambda v: v == 4)
        batch = [
            {"id": f"v{v}-{i}", "label": int(y[v][i])} for v in ("1", "2") for i in range(rows)
        ]
        results = feedback(client, receiver.url, batch).json()["results"]
        assert {r["outcome"] for r in results} == {"matched"}
        prom.wait_for('sum(conveyor_feedback_score_count{job="scorelog"})', lambda v: v == 2 * rows)
        # ~5 s of 200 ms scrapes in the window: increase() extrapolates by < 1/20 per bucket
        prom.wait_for(
            'min(count_over_time(conveyor_feedback_score_count{job="scorelog"}[1m]))',
            lambda v: v is not None and v >= 25,
        )
        with PrometheusProvider(prom.url) as provider:
            source = PrometheusFeedback(
                provider, {"champion": "1", "candidate": "2"}, "1m",
                labels={"model": "fraud", "job": "scorelog"},
            )  # fmt: skip
            champion, candidate = source.labelled("champion"), source.labelled("candidate")
            few = PrometheusFeedback(
                provider, {"champion": "1"}, "1m", labels={"model": "fraud"}, min_count=61
            )
            assert few.labelled("champion") is None
            assert (
                PrometheusFeedback(
                    provider, {"champion": "1"}, "1m", labels={"model": "nope"}
                ).labelled("champion")
                is None
            )

    assert champion is not None and candidate is not None
    # increase() extrapolates to the window's edges, so a bucket can come back a row short or
    # long after rounding: the rebuilt rows match the posted ones within a row or two per class,
    # every score sits on a bucket midpoint, and the AUCs match the binned AUC of what was posted.
    for version, pair in (("1", champion), ("2", candidate)):
        got_y, got_scores = pair
        assert abs(len(got_y) - rows) <= 2, (version, len(got_y))
        for label in (0, 1):
            posted = int((y[version] == label).sum())
            assert abs(int((got_y == label).sum()) - posted) <= 2, (version, label)
        assert set(got_scores.tolist()) <= set(binned(np.linspace(0.001, 0.999, 1000)).tolist())
    auc_1, auc_2 = _auc(champion), _auc(candidate)
    assert auc_1 == pytest.approx(roc_auc_score(y["1"], binned(scores["1"])), abs=0.02)
    assert auc_2 == pytest.approx(roc_auc_score(y["2"], binned(scores["2"])), abs=0.02)
    assert auc_2 is not None and auc_1 is not None and auc_2 < auc_1 - 0.1
    # binning costs little against the raw scores' AUC
    assert auc_1 == pytest.approx(roc_auc_score(y["1"], scores["1"]), abs=0.02)


class CountingProvider:
    """A provider answering each cumulative-bucket increase() from prepared rows."""

    def __init__(self, rows: dict[tuple[str, str], np.ndarray]) -> None:
        self.rows = rows  # (version, label) -> scores
        self.queries: list[str] = []

    def query(self, expr: str) -> float | None:
        self.queries.append(expr)
        match = re.search(r'version="(\w+)",label="(\d)",le="([\d.]+)"', expr)
        assert match is not None, expr
        version, label, le = match.groups()
        return float(np.sum(self.rows[(version, label)] <= float(le)))


def test_auc_check_rolls_back_a_candidate_whose_binned_auc_dropped(fake_kube: Any) -> None:
    from conveyor.rollout import actions
    from conveyor.rollout.analysis import Analysis, rollout_sides
    from conveyor.rollout.cluster import KubeCluster
    from conveyor.rollout.metrics import StaticMetrics
    from conveyor.rollout.plan import AnalysisSpec, CheckSpec, RolloutPlan
    from conveyor.serving.isvc import Change, ServedModel

    cluster = KubeCluster()
    for version, percent in (("1", 0), ("2", 10)):
        model = ServedModel("fraud", version, f"s3://models/{version}/serving", version * 64)
        actions.deploy(cluster, "fraud", model, percent, Change("deploy", "test", "t"))
    checks = [
        CheckSpec(name="online_auc", op="auc_drop_pct_above", threshold=3.0, window_intervals=4)
    ]
    plan = RolloutPlan(
        score_log_url="http://conveyor-scorelog.models.svc.cluster.local/log",
        analysis=AnalysisSpec(interval_seconds=10, requests_query="req", checks=checks),
    )
    # champion v1: classes mostly apart; candidate v2: much more overlap
    rng = np.random.default_rng(3)
    rows = {
        ("1", "0"): rng.uniform(0.0, 0.5, 100), ("1", "1"): rng.uniform(0.4, 1.0, 100),
        ("2", "0"): rng.uniform(0.0, 0.8, 100), ("2", "1"): rng.uniform(0.2, 1.0, 100),
    }  # fmt: skip
    provider = CountingProvider(rows)
    source = feedback_source(provider, rollout_sides(cluster, "fraud"), plan)  # type: ignore[arg-type]
    assert isinstance(source, PrometheusFeedback)
    assert (source.versions, source.window) == ({"champion": "1", "candidate": "2"}, "40s")

    decision = Analysis(cluster, "fraud", plan, StaticMetrics({"req": 100.0}), feedback=source).run(
        sleep=lambda s: None
    )

    assert decision.decision == "rollback"
    [check] = decision.checks
    expected = {v: roc_auc_score_binned(rows[(v, "0")], rows[(v, "1")]) for v in ("1", "2")}
    assert (check.value, check.baseline) == (expected["2"], expected["1"])
    drop = (expected["1"] - expected["2"]) / expected["1"] * 100
    assert drop > 3.0
    line = f"online_auc {expected['2']:.4g} vs champion {expected['1']:.4g} (max drop 3 %)"
    assert f"{line}: FAILED" in decision.reason
    selector = 'conveyor_feedback_score_bucket{model="fraud",version="2",label="1",le="0.05"}'
    assert f"sum(increase({selector}[40s]))" in provider.queries


def roc_auc_score_binned(negatives: np.ndarray, positives: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    y = np.concatenate([np.zeros(len(negatives)), np.ones(len(positives))])
    return float(roc_auc_score(y, binned(np.concatenate([negatives, positives]))))


def test_series_cardinality_is_bounded_whoever_posts(client: httpx.Client) -> None:
    """At most max_series (model, version) pairs: a flood of made-up versions pushes out the
    least recently logged pair, never a live one, and is counted; labels that are not names
    are refused."""
    with ScoreLogServer("127.0.0.1", 0, max_series=3) as receiver:
        url = receiver.url
        post(client, url, v1_proba([0.1]), query="model=fraud&version=1", **{"ce-id": "a"})
        for version in ("2", "x1", "x2"):
            post(client, url, v1_proba([0.5]), query="model=fraud&version=1")  # champion: live
            answer = post(client, url, v1_proba([0.5]), query=f"model=fraud&version={version}",
                          **{"ce-id": f"id-{version}"})  # fmt: skip
            assert answer.status_code == 200
        metrics = scrape(client, url)
        assert sorted(metrics["buckets"]) == [("fraud", "1"), ("fraud", "x1"), ("fraud", "x2")]
        text = client.get(f"{url}/metrics").text
        assert "conveyor_scorelog_series_evicted_total 1.0" in text
        assert "conveyor_scorelog_series 3.0" in text
        # the evicted pair's feedback series and pending response went with it; the live
        # pair's response still takes its label
        assert 'model="fraud",version="2"' not in text
        gone = client.post(f"{url}/feedback", json={"id": "id-2", "label": 1})
        assert (gone.status_code, gone.json()["outcome"]) == (404, "unknown_id")
        kept = client.post(f"{url}/feedback", json={"id": "a", "label": 0})
        assert (kept.status_code, kept.json()["outcome"]) == (200, "matched")

        for query, shown in (("model=fraud&version=2%7Bx%3D%22y%22%7D", "'2{x=\"y\"}'"),
                             ("model=..%2Fetc&version=1", "'../etc'")):  # fmt: skip
            answer = post(client, url, v1_proba([0.5]), query=query)
            assert (answer.status_code, answer.json()["outcome"]) == (400, "bad_label")
            assert shown in answer.json()["message"]
        assert scrape(client, url)["events"]["bad_label"] == 2
    with pytest.raises(ScoreLogError, match="max_series is 1; a rollout needs at least 2"):
        ScoreLogServer("127.0.0.1", 0, max_series=1)
