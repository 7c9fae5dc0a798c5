"""smoke_test: V1 and V2 requests to a real kserve ModelServer; the version check catches a
server answering as another version."""

import json

import pytest

from conveyor.errors import BadInputError
from conveyor.local.model_server import LocalServer
from conveyor.stages import smoke_test
from tests.conftest import SMOKE_ROWS

pytestmark = pytest.mark.integration

POLICY = '{"latency_requests": 20, "warmup": 2, "max_batch_rows": 50, "max_p99_ms": 5000}'


def _run(tmp_path, registry_uri, url: str, rows=SMOKE_ROWS):
    return smoke_test.run("fraud", "models", url, "2", json.dumps(rows), "fraud", registry_uri,
                          POLICY, tmp_path / "smoke.json", tmp_path / "smoke.md")  # fmt: skip


def test_passes_the_version_it_expects_and_fails_another(tmp_path, registry_uri, fraud_models):
    with LocalServer(fraud_models.dirs["2"], "fraud", "2") as v2:
        result = _run(tmp_path, registry_uri, v2.url)
    assert result.passed and result.failed_checks == 0
    assert json.loads((tmp_path / "smoke.json").read_text())["passed"] is True
    assert "PASSED" in (tmp_path / "smoke.md").read_text().upper()
    with LocalServer(fraud_models.dirs["1"], "fraud", "1") as v1:
        wrong = _run(tmp_path, registry_uri, v1.url)
    assert not wrong.passed and wrong.failed_checks >= 1


def test_no_example_rows_is_bad_input(tmp_path, registry_uri):
    with pytest.raises(BadInputError, match="examples_json: no example rows"):
        _run(tmp_path, registry_uri, "http://127.0.0.1:9", rows=[])


def _stalled_first_series(monkeypatch, calls_slow: int) -> None:
    """The first ``calls_slow`` single-row V1 calls after warm-up read as 900 ms: a runner's
    scheduler stall, the model itself unchanged."""
    from dataclasses import replace

    from conveyor.serving.client import ModelClient

    real, sent = ModelClient.v1, {}

    def v1(self, body):
        reply = real(self, body)
        # the latency body is the one payload sent again and again: warm-up, then timed
        n = sent.get(id(body), (body, 0))[1] + 1
        sent[id(body)] = (body, n)  # the body kept alive: its id is never reused
        if 2 < n <= 2 + calls_slow:
            return replace(reply, ms=900.0)
        return reply

    monkeypatch.setattr(ModelClient, "v1", v1)


def test_one_stalled_series_is_measured_again_and_passes(
    tmp_path, registry_uri, fraud_models, monkeypatch
):
    policy = {"latency_requests": 20, "warmup": 2, "max_batch_rows": 50, "max_p99_ms": 500}
    _stalled_first_series(monkeypatch, calls_slow=1)
    with LocalServer(fraud_models.dirs["2"], "fraud", "2") as v2:
        result = smoke_test.run("fraud", "models", v2.url, "2", json.dumps(SMOKE_ROWS), "fraud",
                                registry_uri, json.dumps(policy), tmp_path / "s.json",
                                tmp_path / "s.md")  # fmt: skip
    (latency,) = [c for c in result.report["checks"] if c["name"] == "latency"]
    assert latency["passed"], latency
    assert "first series measured p99" in latency["detail"] and latency["p99_ms"] < 500


def test_a_slow_model_fails_both_series(tmp_path, registry_uri, fraud_models):
    policy = {"latency_requests": 10, "warmup": 1, "max_batch_rows": 50, "max_p99_ms": 20}
    faults = {"latency_ms": 60}
    with LocalServer(fraud_models.dirs["2"], "fraud", "2", faults=faults) as v2:
        result = smoke_test.run("fraud", "models", v2.url, "2", json.dumps(SMOKE_ROWS), "fraud",
                                registry_uri, json.dumps(policy), tmp_path / "s.json",
                                tmp_path / "s.md")  # fmt: skip
    (latency,) = [c for c in result.report["checks"] if c["name"] == "latency"]
    assert not latency["passed"] and not result.passed
    assert "repeated" in latency["detail"] and latency["p99_ms"] >= 60
