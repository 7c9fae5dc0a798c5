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
