"""The local model server (kserve.ModelServer) with the smoke test and the shadow replay, on
real processes on 127.0.0.1 serving really trained and registered fraud models."""

import shutil

import numpy as np
import pytest

from conveyor.errors import ServingError
from conveyor.local.model_server import LocalServer
from conveyor.local.release import serve_and_check
from conveyor.model import MODEL_FILE, load_model, predict_proba
from conveyor.registry import ModelRegistry
from conveyor.serving.client import ModelClient, v1_payload
from conveyor.serving.replay import render_markdown as replay_md
from conveyor.serving.replay import shadow_replay
from conveyor.serving.smoke import SmokePolicy, render_markdown, smoke_test

pytestmark = pytest.mark.integration

FAST = SmokePolicy(latency_requests=30, warmup=3, max_batch_rows=200)


@pytest.fixture(scope="module")
def servers(fraud_models):
    """v1 and v2 served side by side for the module."""
    with (
        LocalServer(fraud_models.dirs["1"], "fraud", "1") as one,
        LocalServer(fraud_models.dirs["2"], "fraud", "2") as two,
    ):
        yield one, two


def test_served_scores_equal_in_process_scores(servers, fraud_models) -> None:
    one, _ = servers
    model, spec = load_model(fraud_models.dirs["1"])
    rows = fraud_models.rows.head(50)
    expected = predict_proba(model, rows, spec)
    with ModelClient(one.url, "fraud") as client:
        for protocol in ("v1", "v2"):
            reply, scores = client.predict(rows[spec["numeric"] + spec["categorical"]], protocol)
            assert reply.ok, reply.body
            np.testing.assert_allclose(scores, expected, rtol=1e-12)


def test_smoke_test_passes_a_good_server(servers, fraud_models) -> None:
    _, two = servers
    report = smoke_test(
        two.url, "fraud", fraud_models.rows, fraud_models.spec, expected_version="2", policy=FAST
    )
    assert report["passed"], render_markdown(report)
    checks = {c["name"]: c for c in report["checks"]}
    assert set(checks) >= {"ready", "metadata", "v1_predict", "v2_predict", "v1_v2_agree",
                           "model_version", "empty_batch", "missing_feature", "wrong_type",
                           "max_batch", "latency"}  # fmt: skip
    assert checks["missing_feature"]["status"] == 400
    assert checks["wrong_type"]["status"] == 400
    assert report["latency_ms"]["v1"]["calls"] == 30


def test_smoke_test_catches_wrong_version_and_slow_server(servers, fraud_models) -> None:
    _, two = servers
    strict = SmokePolicy(latency_requests=10, warmup=0, max_batch_rows=50, max_p99_ms=0.001)
    report = smoke_test(
        two.url, "fraud", fraud_models.rows, fraud_models.spec, expected_version="7", policy=strict
    )
    failed = {c["name"] for c in report["checks"] if not c["passed"]}
    assert not report["passed"]
    assert failed == {"model_version", "latency"}
    assert "Traffic was not moved" in render_markdown(report)


def test_smoke_test_reports_an_unreachable_server(fraud_models) -> None:
    report = smoke_test(
        "http://127.0.0.1:9", "fraud", fraud_models.rows, fraud_models.spec, policy=FAST
    )
    assert not report["passed"]
    assert report["checks"][0]["name"] == "ready" and "unreachable" in report["checks"][0]["detail"]


def test_bad_requests_get_400_naming_the_feature(servers) -> None:
    one, _ = servers
    with ModelClient(one.url, "fraud") as client:
        reply = client.v1({"instances": [{"amount": ["x"]}]})
        assert reply.status == 400 and "missing feature(s)" in str(reply.body)
        reply = client.v1({"instances": [[1.0, 2.0]]})
        assert reply.status == 400 and "a positional row has exactly 16" in str(reply.body)


def test_shadow_replay_compares_champion_and_candidate(servers, fraud_models) -> None:
    one, two = servers
    rows = fraud_models.rows.head(400)
    report = shadow_replay(
        (one.url, "fraud"), (two.url, "fraud"), rows, fraud_models.spec, batch=100,
        latency_calls=20,
    )  # fmt: skip
    assert report["rows"] == 400
    m1, spec = load_model(fraud_models.dirs["1"])
    m2, _ = load_model(fraud_models.dirs["2"])
    s1, s2 = predict_proba(m1, rows, spec), predict_proba(m2, rows, spec)
    assert report["agreement"] == pytest.approx(np.mean((s1 >= 0.5) == (s2 >= 0.5)))
    assert report["mean_abs_score_diff"] == pytest.approx(np.mean(np.abs(s1 - s2)))
    assert report["mean_abs_score_diff"] > 0  # two different models really were compared
    assert report["score_psi"] >= 0
    assert "Decision agreement" in replay_md(report)


def test_same_model_replays_identically(servers, fraud_models) -> None:
    one, _ = servers
    report = shadow_replay((one.url, "fraud"), (one.url, "fraud"), fraud_models.rows.head(200),
                           fraud_models.spec, latency_calls=5)  # fmt: skip
    assert report["agreement"] == 1.0 and report["score_psi"] == 0.0


def test_tampered_model_never_serves(fraud_models, tmp_path) -> None:
    folder = tmp_path / "model"
    shutil.copytree(fraud_models.dirs["1"], folder)
    with open(folder / MODEL_FILE, "ab") as f:
        f.write(b"tampered")
    server = LocalServer(folder, "fraud", "1", log=tmp_path / "server.log")
    with pytest.raises(ServingError, match="exited with code"):
        server.start(timeout=60)
    assert "does not match" in (tmp_path / "server.log").read_text()


def test_serve_and_check_writes_reports(fraud_models, registry_uri, tmp_path) -> None:
    registry = ModelRegistry(registry_uri)
    registry.promote("fraud", "1", "baseline")
    lines, reports = serve_and_check(
        registry, registry.get("fraud", "2"), "fraud", fraud_models.rows.head(300),
        tmp_path, policy=FAST,
    )  # fmt: skip
    assert reports["smoke"]["passed"]
    assert reports["replay"]["rows"] == 300
    assert (tmp_path / "v2" / "smoke.md").is_file() and (tmp_path / "v2" / "replay.md").is_file()
    assert any("shadow replay     : v2 vs champion v1" in line for line in lines)


def test_a_taken_port_is_never_mistaken_for_this_model(servers, fraud_models) -> None:
    one, _ = servers  # already answering "ready" for a model named fraud on its port
    intruder = LocalServer(fraud_models.dirs["2"], "fraud", "2", port=one.port)
    with pytest.raises(ServingError, match="exited with code"):
        intruder.start(timeout=60)


def test_metrics_and_injected_faults(fraud_models) -> None:
    """/metrics counts outcomes and scores per version; faults are off unless a scenario asks."""
    import httpx

    spec = fraud_models.spec
    rows = fraud_models.rows[spec["numeric"] + spec["categorical"]].head(30)
    faults = {"error_rate": 0.5, "score_shift": 0.4}
    with (
        LocalServer(fraud_models.dirs["2"], "fraud", "2", faults=faults) as bad,
        ModelClient(bad.url, "fraud") as client,
    ):
        codes = [client.v1(v1_payload(rows.iloc[[i]])).status for i in range(30)]
        reply, scores = client.predict(rows.head(3))
        text = httpx.get(f"{bad.url}/metrics").text
    assert set(codes) == {200, 500} and codes.count(500) >= 5
    assert reply.status in (200, 500)
    if reply.ok:
        assert (scores >= 0.4).all()  # shifted
    ok, failed = codes.count(200) + reply.ok, codes.count(500) + (not reply.ok)
    assert f'conveyor_requests_total{{code="200",model="fraud",version="2"}} {ok}.0' in text
    assert f'conveyor_requests_total{{code="500",model="fraud",version="2"}} {failed}.0' in text
    assert 'conveyor_prediction_score_bucket{le="0.05",model="fraud",version="2"}' in text
