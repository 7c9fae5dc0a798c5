"""The real Alertmanager fixture: an alert posted to its API is held, routed to the one webhook
at once (group_wait 0s), and stop() leaves no process or folder behind."""

import time
from collections.abc import Callable
from typing import TypeVar

import httpx
import pytest

from conveyor.local.alertmanager import RECEIVER, AlertmanagerServer
from tests.fakes.webhook import WebhookReceiver

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("no_proxy")]

T = TypeVar("T")

ALERT = {"labels": {"alertname": "Test", "severity": "critical"}, "annotations": {"summary": "x"}}


def poll(what: str, get: Callable[[], T], timeout: float = 10.0) -> T:
    """``get()``'s first truthy value: Alertmanager notifies on its own clock, so a fixed sleep
    would only guess how long that takes."""
    deadline = time.monotonic() + timeout
    while not (value := get()):
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what}: nothing within {timeout:g}s")
        time.sleep(0.05)
    return value


def test_posted_alert_is_held_and_sent_to_the_webhook(webhook: WebhookReceiver) -> None:
    with AlertmanagerServer(webhook.url + "/hook") as am:
        response = httpx.post(f"{am.url}/api/v2/alerts", json=[ALERT], timeout=5.0)
        assert response.status_code == 200, response.text

        (alert,) = poll("alerts held", am.alerts)
        assert alert["labels"] == ALERT["labels"]
        assert alert["annotations"] == ALERT["annotations"]
        assert alert["status"]["state"] == "active"
        assert alert["receivers"] == [{"name": RECEIVER}]

        (body,) = poll("webhook calls", lambda: webhook.bodies("/hook"))
        assert body["receiver"] == RECEIVER
        assert body["status"] == "firing"
        assert [a["labels"] for a in body["alerts"]] == [ALERT["labels"]]
        # group_by labels the alert lacks are left out of the group, not set to "".
        assert body["groupLabels"] == {"alertname": "Test"}


def test_stop_leaves_no_process_and_is_idempotent(webhook: WebhookReceiver) -> None:
    am = AlertmanagerServer(webhook.url + "/hook").start()
    url, workdir, proc = am.url, am.workdir, am.proc
    assert workdir is not None and workdir.is_dir()
    assert proc is not None and proc.poll() is None

    am.stop()
    assert proc.poll() is not None  # exited (and reaped), not merely signalled
    assert not workdir.exists()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/-/ready", timeout=2.0)
    with pytest.raises(RuntimeError, match="AlertmanagerServer is not running"):
        _ = am.url

    am.stop()  # a second stop is a no-op
    assert am.workdir is None


def test_rejected_config_fails_start_with_the_log_and_cleans_up() -> None:
    am = AlertmanagerServer("not a url")
    with pytest.raises(RuntimeError, match=r"exited with code 1.*\n.*unsupported scheme") as err:
        am.start()
    assert "alertmanager on 127.0.0.1:" in str(err.value)
    assert am.workdir is None
    assert am.proc is None


def test_a_paging_rollback_reaches_the_pager_through_alertmanager(fake_kube, webhook) -> None:
    """The whole page path: a latency check with alert: true rolls a canary back; the analysis'
    notifier posts to a real Alertmanager, which routes the alert to the pager's webhook."""
    from conveyor.rollout import actions
    from conveyor.rollout.analysis import Analysis
    from conveyor.rollout.cluster import KubeCluster
    from conveyor.rollout.notify import NotificationSpec, notifier_for
    from conveyor.serving.isvc import Change
    from tests.rollout.test_analysis import V1, V2, metrics, plan

    cluster = KubeCluster()
    actions.deploy(cluster, "fraud", V1, 0, Change("deploy", "baseline", "t"))
    actions.deploy(cluster, "fraud", V2, 5, Change("canary", "test", "t"))
    with AlertmanagerServer(webhook.url + "/hook") as am:
        spec = NotificationSpec(alertmanager_url=am.url, alert_for_minutes=10)
        notifier = notifier_for(spec, {}, backoff_s=0.01)
        slow = metrics(p99_new=0.3, p99_old=0.1)  # 3x the champion's p99 (bound 2x)
        final = Analysis(cluster, "fraud", plan(), slow, notifier=notifier).run(
            sleep=lambda s: None
        )
        assert final.decision == "rollback" and final.alerts == ["latency_p99"]
        (held,) = poll("alerts held", am.alerts)
        (body,) = poll("pages sent", lambda: webhook.bodies("/hook"))
    labels = {"alertname": "ConveyorRolloutRollback", "severity": "critical",
              "namespace": "models", "inferenceservice": "fraud", "model": "fraud",
              "version": "2", "action": "rollback"}  # fmt: skip
    assert held["labels"] == labels and held["status"]["state"] == "active"
    [page] = body["alerts"]
    assert page["labels"] == labels and body["status"] == "firing"
    # the failing check in the analysis' words: against the champion, not the bare bound
    detail = "latency_p99 0.3 vs champion 0.1 = 3.00x (bound 2x): FAILED"
    assert page["annotations"]["checks"] == detail
    assert detail in page["annotations"]["description"]
