"""Rollout notifications: payloads, Slack blocks, delivery with one retry, failures reported
(never raised), and the Slack webhook URL kept out of every message and repr."""

import json
import socket
from typing import Any

import pytest

from conveyor.config import model_from_data
from conveyor.errors import BadInputError
from conveyor.rollout.notify import (
    AlertmanagerNotifier,
    MemoryNotifier,
    MultiNotifier,
    Notification,
    NotificationSpec,
    SlackNotifier,
    WebhookNotifier,
    notifier_for,
)
from tests.fakes.webhook import WebhookReceiver

pytestmark = pytest.mark.usefixtures("no_proxy")

SLACK_PATH = "/services/T000/B000/XXXX"
TOKEN = "T000/B000/XXXX"
FAST = 0.01  # retry backoff in tests


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


CHECKS = [
    {"name": "p99_latency_ms", "value": 612.0, "bound": 500.0, "passed": False},
    {"name": "error_rate", "value": 0.001, "bound": 0.01, "passed": True},
    {"name": "score_psi", "value": None, "bound": 0.2, "passed": "no data"},
]


def note(action: str = "rollback", **kw: Any) -> Notification:
    base: dict[str, Any] = {
        "action": action,
        "inference_service": "fraud",
        "namespace": "models",
        "model": "fraud",
        "version": "7",
        "champion_version": "6",
        "reason": "p99 612 ms > 2x champion 250 ms for 3 intervals",
        "checks": CHECKS,
        "traffic_percent": 0 if action == "rollback" else 25,
        "at": "2026-11-01T12:00:00+00:00",
        "actor": "conveyor-analysis",
    }
    return Notification(**{**base, **kw})


@pytest.mark.unit
@pytest.mark.parametrize("action", ["rollback", "hold", "promote"])
def test_generic_webhook_payload(webhook: WebhookReceiver, action: str) -> None:
    notifier = WebhookNotifier(webhook.url + "/hook", timeout=2)
    assert notifier.send(note(action)) == []
    [req] = webhook.requests
    assert (req.method, req.path) == ("POST", "/hook")
    assert req.headers["Content-Type"] == "application/json"
    body = req.body
    assert list(body) == [
        "source", "kind", "action", "inference_service", "namespace", "model", "version",
        "champion_version", "traffic_percent", "reason", "checks", "severity", "alert",
        "alert_checks", "at", "actor",
    ]  # fmt: skip
    assert body["source"] == "conveyor"
    assert body["kind"] == f"rollout.{action}" and body["action"] == action
    assert (body["inference_service"], body["namespace"], body["model"]) == (
        "fraud",
        "models",
        "fraud",
    )
    assert (body["version"], body["champion_version"]) == ("7", "6")
    assert body["traffic_percent"] == (0 if action == "rollback" else 25)
    assert body["reason"] == "p99 612 ms > 2x champion 250 ms for 3 intervals"
    assert body["at"] == "2026-11-01T12:00:00+00:00" and body["actor"] == "conveyor-analysis"
    severity = "info" if action == "promote" else "warning"  # no check asked for a page
    assert (body["severity"], body["alert"], body["alert_checks"]) == (severity, False, [])
    assert body["checks"] == [
        {"name": "p99_latency_ms", "value": 612.0, "bound": 500.0, "passed": False,
         "status": "failed", "detail": ""},
        {"name": "error_rate", "value": 0.001, "bound": 0.01, "passed": True, "status": "passed",
         "detail": ""},
        {"name": "score_psi", "value": None, "bound": 0.2, "passed": None, "status": "no data",
         "detail": ""},
    ]  # fmt: skip


@pytest.mark.unit
def test_notification_defaults_and_bad_action() -> None:
    n = Notification("hold", "fraud", "models", "fraud", "7", "", "no data\nfor 2 intervals")
    assert n.reason == "no data for 2 intervals"  # one line
    assert n.at.endswith("+00:00") and n.checks == [] and n.traffic_percent is None
    assert n.to_json()["champion_version"] is None
    with pytest.raises(BadInputError, match=r"action 'pause' is not one of hold, rollback"):
        note("pause")


@pytest.mark.unit
def test_slack_payload_lists_failing_checks(webhook: WebhookReceiver) -> None:
    slack = SlackNotifier(webhook.url + SLACK_PATH, timeout=2, env_name="SLACK_URL")
    assert slack.send(note("rollback")) == []
    [payload] = webhook.bodies(SLACK_PATH)
    assert payload["text"].startswith("⏪ Rollback: fraud v7 on models/fraud:")
    assert "&gt; 2x champion" in payload["text"]  # mrkdwn control characters escaped
    blocks = payload["blocks"]
    assert blocks[0]["type"] == "header" and blocks[0]["text"]["text"] == "⏪ Rollback: fraud v7"
    fields = " ".join(f["text"] for f in blocks[1]["fields"])
    for part in ("models/fraud", "v7 vs champion v6", "0 %"):
        assert part in fields
    checks = blocks[2]["text"]["text"]
    assert "Failing checks: 1 of 3" in checks
    assert "❌ `p99_latency_ms`: 612 vs bound 500" in checks
    assert "❔ `score_psi`: no data vs bound 0.2" in checks
    assert "error_rate" not in checks  # passing checks are not listed
    assert note("promote").to_slack()["blocks"][0]["text"]["text"].startswith("✅")
    assert note("hold").to_slack()["blocks"][0]["text"]["text"].startswith("⏸")


@pytest.mark.unit
def test_slack_payload_stays_within_limits() -> None:
    many = [
        {"name": f"check_{i}_" + "x" * 80, "value": i, "bound": 0, "passed": False}
        for i in range(500)
    ]
    payload = note(reason="r" * 5000, checks=many, model="m" * 300).to_slack()
    assert len(payload["text"]) <= 3000 and len(payload["blocks"]) <= 50
    assert len(payload["blocks"][0]["text"]["text"]) <= 150
    for block in payload["blocks"]:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= 3000
            assert all(len(f["text"]) <= 2000 for f in block.get("fields", []))
    assert "more" in payload["blocks"][2]["text"]["text"].splitlines()[-1]


@pytest.mark.unit
def test_on_filtering_skips_step_by_default(webhook: WebhookReceiver) -> None:
    spec = NotificationSpec(webhooks=[webhook.url + "/hook"])
    notifier = notifier_for(spec, environ={})
    assert notifier.send(note("step")) == []
    assert notifier.send(note("start")) == []
    assert webhook.requests == []
    assert notifier.send(note("hold")) == []
    assert [r.body["kind"] for r in webhook.requests] == ["rollout.hold"]
    spec = NotificationSpec(webhooks=[webhook.url + "/hook"], on=["step"])
    assert notifier_for(spec, environ={}).send(note("step")) == []
    assert webhook.requests[-1].body["kind"] == "rollout.step"


@pytest.mark.unit
def test_5xx_is_retried_once_then_delivered(webhook: WebhookReceiver) -> None:
    webhook.statuses["/hook"] = [500]
    assert WebhookNotifier(webhook.url + "/hook", 2, backoff_s=FAST).send(note()) == []
    assert len(webhook.bodies("/hook")) == 2


@pytest.mark.unit
def test_5xx_twice_is_reported_after_two_attempts(webhook: WebhookReceiver) -> None:
    webhook.statuses["/hook"] = [503, 502]
    [failure] = WebhookNotifier(webhook.url + "/hook", 2, backoff_s=FAST).send(note())
    assert failure.startswith(f"webhook {webhook.url}/hook: HTTP 502")
    assert failure.endswith("(after 2 attempts)")
    assert len(webhook.bodies("/hook")) == 2


@pytest.mark.unit
def test_4xx_is_not_retried_and_is_reported(webhook: WebhookReceiver) -> None:
    webhook.statuses["/hook"] = [400]
    failures = WebhookNotifier(webhook.url + "/hook", 2, backoff_s=FAST).send(note())
    assert failures == [f"webhook {webhook.url}/hook: HTTP 400 error for /hook"]
    assert len(webhook.bodies("/hook")) == 1


@pytest.mark.unit
def test_unreachable_url_is_reported_not_raised() -> None:
    url = f"http://127.0.0.1:{unused_port()}/hook"
    [failure] = WebhookNotifier(url, 1, backoff_s=FAST).send(note())
    assert failure.startswith(f"webhook {url}: ConnectError")
    assert failure.endswith("(after 2 attempts)")


@pytest.mark.unit
def test_webhook_query_string_is_redacted(webhook: WebhookReceiver) -> None:
    webhook.statuses["/hook?token=sekrit-123"] = [401]
    notifier = WebhookNotifier(webhook.url + "/hook?token=sekrit-123", 2, backoff_s=FAST)
    [failure] = notifier.send(note())
    assert "sekrit-123" not in failure and "sekrit-123" not in repr(notifier)
    assert failure.startswith(f"webhook {webhook.url}/hook: HTTP 401")


@pytest.mark.unit
def test_slack_url_never_in_failures_or_repr(webhook: WebhookReceiver) -> None:
    env = {"CONVEYOR_SLACK_WEBHOOK": webhook.url + SLACK_PATH}
    spec = NotificationSpec(slack_webhook_env="CONVEYOR_SLACK_WEBHOOK")
    notifier = notifier_for(spec, environ=env, backoff_s=FAST)
    webhook.statuses[SLACK_PATH] = [500, 500, 403]
    failures = notifier.send(note()) + notifier.send(note())  # 5xx twice, then a 403
    assert webhook.bodies(SLACK_PATH)[0]["blocks"]  # it was the Slack payload
    dead = f"http://127.0.0.1:{unused_port()}{SLACK_PATH}"
    down = SlackNotifier(dead, 1, env_name="CONVEYOR_SLACK_WEBHOOK", backoff_s=FAST)
    failures += down.send(note())
    assert len(failures) == 3
    assert failures[0].startswith("slack webhook from $CONVEYOR_SLACK_WEBHOOK: HTTP 500")
    assert failures[1].startswith("slack webhook from $CONVEYOR_SLACK_WEBHOOK: HTTP 403")
    assert "<redacted>" in failures[1]  # the error body echoed the path
    assert failures[2].startswith("slack webhook from $CONVEYOR_SLACK_WEBHOOK: ConnectError")
    for text in [*failures, repr(notifier), repr(down), repr(SlackNotifier(dead))]:
        assert TOKEN not in text and "/services/" not in text, text


@pytest.mark.unit
@pytest.mark.parametrize("value", [None, "", "  "])
def test_missing_slack_env_is_reported_on_send(webhook: WebhookReceiver, value: str | None) -> None:
    env = {} if value is None else {"CONVEYOR_SLACK_WEBHOOK": value}
    spec = NotificationSpec(
        webhooks=[webhook.url + "/hook"], slack_webhook_env="CONVEYOR_SLACK_WEBHOOK"
    )
    notifier = notifier_for(spec, environ=env)  # does not raise at build time
    assert notifier.send(note()) == ["slack webhook env $CONVEYOR_SLACK_WEBHOOK is not set"]
    assert len(webhook.bodies("/hook")) == 1  # the other destinations still get it


@pytest.mark.unit
def test_slack_env_not_a_url_is_reported_without_its_value() -> None:
    spec = NotificationSpec(slack_webhook_env="SLACK")
    [failure] = notifier_for(spec, environ={"SLACK": "xoxb-T000/B000/XXXX"}).send(note())
    assert failure == "slack webhook env $SLACK does not hold an http(s) URL"


@pytest.mark.unit
def test_multi_notifier_collects_failures_and_survives_a_raising_notifier() -> None:
    class Broken:
        def send(self, n: Notification) -> list[str]:
            raise RuntimeError("boom")

    first, last = MemoryNotifier(), MemoryNotifier(failures=["memory: down"])
    multi = MultiNotifier([first, Broken(), last])
    assert multi.send(note()) == ["Broken: RuntimeError", "memory: down"]
    assert [n.action for n in first.sent] == [n.action for n in last.sent] == ["rollback"]


@pytest.mark.unit
def test_spec_rejects_non_http_webhook_naming_the_field() -> None:
    with pytest.raises(BadInputError, match=r"plan: webhooks: Value error, webhooks\[1\] must be"):
        model_from_data(
            NotificationSpec, {"webhooks": ["https://ok.example/h", "ftp://x/y"]}, "plan"
        )
    with pytest.raises(BadInputError, match=r"got scheme 'ftp'"):
        model_from_data(NotificationSpec, {"webhooks": ["ftp://x/y"]}, "plan")


@pytest.mark.unit
@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"timeout_s": 0}, r"timeout_s: Input should be greater than 0"),
        ({"on": ["hold", "pause"]}, r"on\.1: Input should be 'hold', 'rollback'"),
        ({"slack_url": "x"}, r"slack_url: Extra inputs are not permitted"),
    ],
)
def test_spec_validation_names_the_field(data: dict[str, Any], message: str) -> None:
    with pytest.raises(BadInputError, match=message):
        model_from_data(NotificationSpec, data, "plan")


@pytest.mark.unit
def test_slack_url_in_env_field_is_rejected_without_echoing_it() -> None:
    url = "https://hooks.slack.com/services/T000/B000/XXXX"
    with pytest.raises(BadInputError, match=r"slack_webhook_env must be the NAME") as err:
        model_from_data(NotificationSpec, {"slack_webhook_env": url}, "plan")
    assert TOKEN not in str(err.value)
    with pytest.raises(ValueError, match=r"slack_webhook_env must be the NAME") as raw:
        NotificationSpec(slack_webhook_env=url)
    assert TOKEN not in str(raw.value)


@pytest.mark.unit
def test_a_paging_decision_is_critical_and_mentions_the_channel(webhook: WebhookReceiver) -> None:
    paged = note("rollback", alerts=["p99_latency_ms"])
    assert WebhookNotifier(webhook.url + "/hook").send(paged) == []
    body = webhook.bodies("/hook")[0]
    assert (body["severity"], body["alert"], body["alert_checks"]) == (
        "critical", True, ["p99_latency_ms"],
    )  # fmt: skip
    slack = paged.to_slack()
    assert slack["text"].startswith("<!here> ")
    page = slack["blocks"][1]["text"]["text"]
    assert page.startswith("<!here> 🚨 *Paging on-call*") and "`p99_latency_ms`" in page
    quiet = note("rollback").to_slack()  # no alert: no mention anywhere
    assert "<!here>" not in json.dumps(quiet)


@pytest.mark.unit
def test_alertmanager_gets_only_pages_as_v2_alerts(webhook: WebhookReceiver) -> None:
    am = AlertmanagerNotifier(webhook.url + "/am/", timeout=2, for_minutes=30)
    assert am.send(note("rollback")) == []  # not a page: nothing sent
    assert webhook.requests == []
    assert am.send(note("hold", alerts=["p99_latency_ms"])) == []
    [req] = webhook.requests
    assert req.path == "/am/api/v2/alerts"
    [alert] = req.body
    assert alert["labels"] == {
        "alertname": "ConveyorRolloutHold", "severity": "critical", "namespace": "models",
        "inferenceservice": "fraud", "model": "fraud", "version": "7", "action": "hold",
    }  # fmt: skip
    assert alert["annotations"]["checks"] == "p99_latency_ms: 612 vs bound 500"
    assert alert["annotations"]["description"] == note().reason
    assert alert["startsAt"] == "2026-11-01T12:00:00+00:00"
    assert alert["endsAt"] == "2026-11-01T12:30:00+00:00"


@pytest.mark.unit
def test_alertmanager_down_is_reported_not_raised() -> None:
    am = AlertmanagerNotifier(f"http://127.0.0.1:{unused_port()}", timeout=1, backoff_s=FAST)
    [failure] = am.send(note("rollback", alerts=["error_rate"]))
    assert failure.startswith("alertmanager http://127.0.0.1:") and "after 2 attempts" in failure


@pytest.mark.unit
def test_notifier_for_adds_alertmanager_and_checks_its_url() -> None:
    spec = model_from_data(
        NotificationSpec, {"alertmanager_url": "http://am.monitoring:9093", "alert_for_minutes": 5},
        "notifications",
    )  # fmt: skip
    [am] = notifier_for(spec, {}).notifiers
    assert isinstance(am, AlertmanagerNotifier) and am.for_minutes == 5
    with pytest.raises(BadInputError, match=r"alertmanager_url must be an http\(s\) URL"):
        model_from_data(NotificationSpec, {"alertmanager_url": "am:9093"}, "notifications")
    with pytest.raises(BadInputError, match="must not carry credentials") as err:
        model_from_data(
            NotificationSpec, {"alertmanager_url": "http://am:s3cret-pw@am:9093"}, "notifications"
        )
    assert "s3cret-pw" not in str(err.value)  # the error never echoes the secret
    from conveyor.rollout.plan import RolloutPlan

    nested = {"notifications": {"alertmanager_url": "http://am:s3cret-pw@am:9093"}}
    with pytest.raises(BadInputError, match="must not carry credentials") as err:
        model_from_data(RolloutPlan, nested, "plan.yaml")  # inside a plan, too
    assert "s3cret-pw" not in str(err.value) and "<redacted>@am:9093" in str(err.value)
    with pytest.raises(
        BadInputError, match=r"alert_for_minutes: .*greater than or equal to 1 \(got 0\)"
    ):
        model_from_data(NotificationSpec, {"alert_for_minutes": 0}, "notifications")


@pytest.mark.unit
def test_a_webhook_url_with_a_token_comes_from_the_environment(webhook: WebhookReceiver) -> None:
    secret_path = "/hooks/team-7f3a9c2e"
    env = {"FRAUD_HOOK": webhook.url + secret_path + "?token=tk-91d2"}
    spec = NotificationSpec(webhook_envs=["FRAUD_HOOK", "MISSING_HOOK"])
    notifier = notifier_for(spec, environ=env, backoff_s=FAST)
    assert notifier.send(note()) == ["webhook env $MISSING_HOOK is not set"]
    [body] = webhook.bodies(secret_path + "?token=tk-91d2")
    assert body["kind"] == "rollout.rollback"  # the generic payload, delivered
    webhook.statuses[secret_path + "?token=tk-91d2"] = [403]
    [failure] = notifier.send(note())[:1]
    assert failure.startswith("webhook from $FRAUD_HOOK: HTTP 403")
    for text in (failure, repr(notifier)):  # the error body echoed the path: redacted too
        assert "team-7f3a9c2e" not in text and "tk-91d2" not in text, text


@pytest.mark.unit
def test_plan_refuses_urls_with_credentials_and_env_names_that_are_urls() -> None:
    with pytest.raises(BadInputError, match=r"webhooks\[0\] must not carry credentials") as err:
        model_from_data(
            NotificationSpec, {"webhooks": ["https://bot:pw-3371@hooks.example/x"]}, "plan"
        )
    assert "pw-3371" not in str(err.value) and "webhook_envs" in str(err.value)
    with pytest.raises(BadInputError, match=r"webhook_envs\[1\] must be the NAME") as err:
        model_from_data(
            NotificationSpec, {"webhook_envs": ["OK", "https://hooks.example/t-55"]}, "plan"
        )
    assert "t-55" not in str(err.value)
