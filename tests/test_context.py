"""conveyor.context: one tracking-URI policy and one actor rule for every caller."""

import pytest

from conveyor import context
from conveyor.errors import BadInputError

pytestmark = pytest.mark.unit


def test_explicit_wins_then_the_environment_then_the_fallback(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    assert context.tracking_uri("http://other:5000", context.EMBEDDED_TRACKING) == (
        "http://other:5000"
    )
    assert context.tracking_uri("", context.EMBEDDED_TRACKING) == "http://mlflow:5000"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert context.tracking_uri(None, context.EMBEDDED_TRACKING) == context.EMBEDDED_TRACKING
    assert context.tracking_uri("") == ""  # cluster-facing callers: no silent local store


def test_a_required_uri_names_the_flag_and_the_purpose(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(BadInputError, match=r"--tracking-uri \(or MLFLOW_TRACKING_URI\) is "
                       "required to look up the version") as err:  # fmt: skip
        context.require_tracking_uri("", "look up the version")
    assert err.value.exit_code == 2
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    assert context.require_tracking_uri("", "look up the version") == "http://mlflow:5000"


def test_actor_is_the_configured_one_then_the_person_then_the_tool(monkeypatch):
    monkeypatch.setenv("USER", "alice")
    monkeypatch.setenv("CONVEYOR_ACTOR", "ci-bot")
    assert context.actor("kubectl-conveyor") == "ci-bot"
    monkeypatch.delenv("CONVEYOR_ACTOR")
    assert context.actor("kubectl-conveyor") == "alice"
    # a pipeline step acts as itself, whoever's login the pod or runner happens to carry
    assert context.actor("kfp-rollout-pipeline", person=False) == "kfp-rollout-pipeline"
    monkeypatch.delenv("USER")
    assert context.actor("kubectl-conveyor") == "kubectl-conveyor"
