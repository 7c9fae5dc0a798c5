"""Rollout notifications: every hold, rollback and promotion reaches people.

A ``Notification`` is rendered as a generic JSON document (``to_json``) for plain webhooks and as
a Slack Block Kit message (``to_slack``) for a Slack incoming webhook. Delivery never raises:
``send`` returns the failures as messages, so a chat outage can never block a rollback.

A decision made by a check with ``alert: true`` also pages: the notification carries severity
``critical`` and the checks' names, Slack mentions ``@here``, and with ``alertmanager_url`` an
alert is posted to Alertmanager, whose routes reach the pager (PagerDuty, Opsgenie) and open the
incident. Chat is where people read; Alertmanager is where on-call is woken.

The Slack webhook URL is a secret: a plan names only the environment variable that holds it
(``slack_webhook_env``), and messages, errors and ``repr`` name that variable, never the URL.
"""

import json
import math
import os
import re
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol, get_args
from urllib.parse import urlsplit

import httpx
from pydantic import ConfigDict, Field, field_validator, model_validator

from conveyor.config import StrictModel, refuse_credentials
from conveyor.errors import BadInputError

__all__ = [
    "AlertmanagerNotifier",
    "MemoryNotifier",
    "MultiNotifier",
    "Notification",
    "NotificationSpec",
    "SlackNotifier",
    "WebhookNotifier",
    "notifier_for",
]


Action = Literal["hold", "rollback", "promote", "step", "start"]
ACTIONS: tuple[str, ...] = get_args(Action)
DEFAULT_ON: tuple[Action, ...] = ("hold", "rollback", "promote")
EMOJI = {"promote": "✅", "hold": "⏸", "rollback": "⏪", "step": "⏩", "start": "🚀"}
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# Slack Block Kit limits (https://api.slack.com/reference/block-kit/blocks).
SLACK_SECTION_TEXT = 3000
SLACK_HEADER_TEXT = 150
SLACK_FIELD_TEXT = 2000
SLACK_MAX_BLOCKS = 50
ALERTS_PATH = "/api/v2/alerts"  # Alertmanager's API for posting alerts
Payload = Mapping[str, Any] | Sequence[Mapping[str, Any]]  # one JSON document to POST
SLACK_PAGE = "<!here>"  # notifies the channel's active members, as an on-call page should


class NotificationSpec(StrictModel):
    """Where rollout notifications go and which actions are sent."""

    # A misplaced secret must not be echoed back by a validation error.
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    webhooks: list[str] = Field(
        default_factory=list, description="http(s) URLs that receive the generic JSON payload"
    )
    webhook_envs: list[str] = Field(
        default_factory=list,
        description="NAMEs of environment variables holding more webhook URLs: for URLs that "
        "carry a token, which must not be written into the plan (it is compiled into YAML)",
    )
    slack_webhook_env: str | None = Field(
        None, description="NAME of the environment variable holding the Slack webhook URL"
    )
    alertmanager_url: str | None = Field(
        None,
        description="Alertmanager base URL (http://alertmanager.monitoring:9093): decisions of "
        "checks with alert: true are posted there as alerts, for its routes to page on-call",
    )
    alert_for_minutes: int = Field(
        60, ge=1, le=10_080, description="how long such an alert fires before Alertmanager "
        "resolves it (the pager's incident stays until a person closes it)",
    )  # fmt: skip
    timeout_s: float = Field(
        5.0,
        gt=0,
        description="seconds each POST to a webhook, Slack or Alertmanager may take; a network "
        "error or 5xx is retried once",
    )
    on: list[Action] = Field(
        default_factory=lambda: list(DEFAULT_ON),
        description="the decisions that are sent, others skipped: hold, rollback, promote, "
        "step (traffic stepped up); start is accepted, but the analysis never sends it",
    )

    @model_validator(mode="before")
    @classmethod
    def _env_name_not_url(cls, data: Any) -> Any:
        # Checked before field validation so the error never quotes the value (it may be the URL).
        name = data.get("slack_webhook_env") if isinstance(data, dict) else None
        if isinstance(name, str) and not ENV_NAME.match(name):
            raise ValueError(
                "slack_webhook_env must be the NAME of an environment variable (letters, digits, "
                "underscores) that holds the Slack webhook URL, never the URL itself"
            )
        names = data.get("webhook_envs") if isinstance(data, dict) else None
        for i, name in enumerate(names if isinstance(names, list) else []):
            if isinstance(name, str) and not ENV_NAME.match(name):
                raise ValueError(
                    f"webhook_envs[{i}] must be the NAME of an environment variable (letters, "
                    "digits, underscores) that holds a webhook URL, never the URL itself"
                )
        return data

    @field_validator("webhooks")
    @classmethod
    def _http_urls(cls, urls: list[str]) -> list[str]:
        for i, url in enumerate(urls):
            _check_http_url(f"webhooks[{i}]", url)
            refuse_credentials(f"webhooks[{i}]", url, "put the URL in a Secret and name its "
                            "variable in webhook_envs")  # fmt: skip
        return urls

    @field_validator("alertmanager_url")
    @classmethod
    def _alertmanager_url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        refuse_credentials("alertmanager_url", url, "reach Alertmanager in-cluster, or through an "
                        "authenticating proxy whose own Secret holds them")  # fmt: skip
        return _check_http_url("alertmanager_url", url)


def _check_http_url(field_name: str, url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        got = f"scheme {parts.scheme!r}" if parts.scheme else "no scheme"
        raise ValueError(f"{field_name} must be an http(s) URL with a host, got {got}")
    return url


def _plain(value: Any) -> Any:
    """JSON-safe scalar: numpy scalars unwrapped, NaN is "no data" (None), inf as text."""
    if hasattr(value, "item") and callable(value.item):
        try:
            value = value.item()
        except (TypeError, ValueError):
            return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else str(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _check(raw: Mapping[str, Any]) -> dict[str, Any]:
    """One check with stable keys; ``passed`` None (or "no data") means no data."""
    passed = raw.get("passed")
    if passed is None or passed == "no data":
        passed, status = None, "no data"
    else:
        passed = bool(passed)
        status = "passed" if passed else "failed"
    return {
        "name": str(raw.get("name", "?")),
        "value": _plain(raw.get("value")),
        "bound": _plain(raw.get("bound")),
        "passed": passed,
        "status": status,
        # the analysis' own words (a ratio check compares with the champion, not the bound)
        "detail": " ".join(str(raw.get("detail") or "").split()),
    }


def _check_line(c: Mapping[str, Any], quote: str = "") -> str:
    """The analysis' words for a check, else its value against its bound (name in ``quote``)."""
    name = f"{quote}{c['name']}{quote}"
    return c["detail"] or f"{name}: {_fmt(c['value'])} vs bound {_fmt(c['bound'])}"


def _fmt(value: Any) -> str:
    if value is None:
        return "no data"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _mrkdwn(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@dataclass
class Notification:
    """What happened to a rollout, to whom and why (``reason`` is one line)."""

    action: str
    inference_service: str
    namespace: str
    model: str
    version: str
    champion_version: str | None
    reason: str
    checks: list[dict[str, Any]] = field(default_factory=list)
    traffic_percent: int | None = None
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    actor: str = "conveyor"
    alerts: list[str] = field(default_factory=list)  # checks with alert: true that decided this

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise BadInputError(
                f"notification action {self.action!r} is not one of {', '.join(ACTIONS)}"
            )
        self.reason = " ".join(str(self.reason).split())
        if self.champion_version == "":
            self.champion_version = None  # a first release has no champion

    @property
    def kind(self) -> str:
        return f"rollout.{self.action}"

    @property
    def severity(self) -> str:
        """critical: page a person; warning: traffic was held or rolled back; info: progress."""
        if self.alerts:
            return "critical"
        return "warning" if self.action in ("hold", "rollback") else "info"

    def normalised_checks(self) -> list[dict[str, Any]]:
        return [_check(c) for c in self.checks]

    def to_json(self) -> dict[str, Any]:
        """The generic webhook payload (stable keys)."""
        return {
            "source": "conveyor",
            "kind": self.kind,
            "action": self.action,
            "inference_service": self.inference_service,
            "namespace": self.namespace,
            "model": self.model,
            "version": str(self.version),
            "champion_version": None
            if self.champion_version is None
            else str(self.champion_version),
            "traffic_percent": self.traffic_percent,
            "reason": self.reason,
            "checks": self.normalised_checks(),
            "severity": self.severity,
            "alert": bool(self.alerts),
            "alert_checks": list(self.alerts),
            "at": self.at,
            "actor": self.actor,
        }

    def _summary(self) -> str:
        title = self.action.capitalize()
        return f"{EMOJI[self.action]} {title}: {self.model} v{self.version}"

    def to_slack(self) -> dict[str, Any]:
        """A Slack incoming-webhook payload: ``text`` fallback plus Block Kit ``blocks``."""
        where = f"{self.namespace}/{self.inference_service}"
        champion = f"champion v{self.champion_version}" if self.champion_version else "no champion"
        traffic = "n/a" if self.traffic_percent is None else f"{self.traffic_percent} %"
        fields = [
            ("Service", where),
            ("Model", self.model),
            ("Version", f"v{self.version} vs {champion}"),
            ("Candidate traffic", traffic),
        ]
        blocks: list[dict[str, Any]] = [
            {
                "type": "header",
                "text": {
                    "type": "plain_text",
                    "text": _clip(self._summary(), SLACK_HEADER_TEXT),
                    "emoji": True,
                },
            },
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": _clip(_mrkdwn(self.reason) or "(no reason given)", SLACK_SECTION_TEXT),
                },
                "fields": [
                    {
                        "type": "mrkdwn",
                        "text": _clip(f"*{name}*\n{_mrkdwn(value)}", SLACK_FIELD_TEXT),
                    }
                    for name, value in fields
                ],
            },
        ]
        if self.alerts:  # the mention is Slack syntax: added after escaping, never escaped
            names = ", ".join(f"`{_mrkdwn(a)}`" for a in self.alerts)
            page = f"{SLACK_PAGE} 🚨 *Paging on-call*: {names} asked for a person (alert: true)"
            page_text = {"type": "mrkdwn", "text": _clip(page, SLACK_SECTION_TEXT)}
            blocks.insert(1, {"type": "section", "text": page_text})
        checks_text = self._checks_text()
        if checks_text:
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": checks_text}})
        blocks.append(
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": _clip(
                            _mrkdwn(f"{self.kind} by {self.actor} at {self.at} · conveyor"),
                            SLACK_SECTION_TEXT,
                        ),
                    }
                ],
            }
        )
        text = _mrkdwn(f"{self._summary()} on {where}: {self.reason}")
        if self.alerts:
            text = f"{SLACK_PAGE} {text}"
        return {"text": _clip(text, SLACK_SECTION_TEXT), "blocks": blocks[:SLACK_MAX_BLOCKS]}

    def _checks_text(self) -> str:
        """Failing and no-data checks with value vs bound, clipped to one section's limit."""
        checks = self.normalised_checks()
        if not checks:
            return ""
        bad = [c for c in checks if c["status"] != "passed"]
        if not bad:
            return f"*All {len(checks)} checks passed*"
        failed = sum(1 for c in bad if c["status"] == "failed")
        head = f"*Failing checks: {failed} of {len(checks)}*"
        if failed != len(bad):
            head += f" ({len(bad) - failed} with no data)"
        lines = [head]
        for i, c in enumerate(bad):
            mark = "❌" if c["status"] == "failed" else "❔"
            line = _mrkdwn(f"{mark} {_check_line(c, quote='`')}")
            more = f"… and {len(bad) - i} more"
            if sum(len(x) + 1 for x in lines) + len(line) + len(more) + 2 > SLACK_SECTION_TEXT:
                lines.append(more)
                break
            lines.append(line)
        return _clip("\n".join(lines), SLACK_SECTION_TEXT)


class Notifier(Protocol):
    """Delivers a notification; returns the delivery failures (empty: all delivered)."""

    def send(self, n: Notification) -> list[str]: ...


RETRYABLE = (httpx.NetworkError, httpx.TimeoutException, httpx.RemoteProtocolError)


def _scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in sorted((s for s in secrets if len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, "<redacted>")
    return text


def _deliver(
    url: str,
    payload: Payload,
    *,
    destination: str,
    timeout: float,
    backoff_s: float,
    secrets: Sequence[str],
) -> str | None:
    """POST ``payload`` as JSON; one retry after ``backoff_s`` on connection errors and 5xx.

    Returns None when delivered, else one line naming the destination and what went wrong;
    never raises (anything in ``secrets`` is redacted from the line)."""
    problem, attempts = "not sent", 0
    try:
        body = json.dumps(payload, default=str).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "conveyor-notify"}
        with httpx.Client(timeout=timeout, follow_redirects=False) as client:
            for attempt in range(2):
                attempts = attempt + 1
                try:
                    resp = client.post(url, content=body, headers=headers)
                except RETRYABLE as exc:
                    problem, retry = _exc_text(exc), True
                else:
                    if resp.is_success:
                        return None
                    snippet = " ".join(resp.text.split())[:120]
                    problem = f"HTTP {resp.status_code}" + (f" {snippet}" if snippet else "")
                    retry = resp.status_code >= 500
                if not retry or attempt:
                    break
                time.sleep(backoff_s)
    except Exception as exc:
        problem = _exc_text(exc)
    tries = f" (after {attempts} attempts)" if attempts > 1 else ""
    return f"{destination}: {_scrub(problem, secrets)}{tries}"


def _exc_text(exc: BaseException) -> str:
    detail = " ".join(str(exc).split())[:160]
    return type(exc).__name__ + (f": {detail}" if detail else "")


def _redacted(url: str) -> str:
    """A webhook URL without credentials or query string (it may carry tokens)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


class _PostingNotifier:
    """One URL, one JSON document per notification (``_payload``), one retry, failures returned.

    A URL from an environment variable (``env_name``) is a secret as a whole: ``repr`` and
    failure lines name the variable instead, and anything of the URL an error echoes is
    redacted. Otherwise only its query string and password are treated as secret."""

    label = "webhook"
    url_is_secret = False  # True: secret even when given directly (Slack's path is the token)

    def __init__(
        self,
        url: str,
        timeout: float = 5.0,
        *,
        env_name: str | None = None,
        backoff_s: float = 0.5,
    ) -> None:
        self._url, self.timeout, self.backoff_s = url, timeout, backoff_s
        self._env_name = env_name
        self._secret_url = self.url_is_secret or env_name is not None
        if env_name:
            self.destination = f"{self.label} from ${env_name}"
        else:
            self.destination = self.label if self._secret_url else f"{self.label} {_redacted(url)}"

    def __repr__(self) -> str:
        shown = f"<{self.destination}>" if self._secret_url else repr(_redacted(self._url))
        return f"{type(self).__name__}({shown}, timeout={self.timeout:g})"

    def _payload(self, n: Notification) -> Payload:
        raise NotImplementedError

    def send(self, n: Notification) -> list[str]:
        parts = urlsplit(self._url)
        secrets = [s for s in (parts.query, parts.password or "") if s]
        if self._secret_url:
            secrets += [self._url, parts.path]
        try:
            payload = self._payload(n)
        except Exception as exc:
            problem = _scrub(_exc_text(exc), secrets)
            return [f"{self.destination}: could not build the payload ({problem})"]
        failure = _deliver(
            self._url, payload, destination=self.destination, timeout=self.timeout,
            backoff_s=self.backoff_s, secrets=secrets,
        )  # fmt: skip
        return [failure] if failure else []


class WebhookNotifier(_PostingNotifier):
    """POSTs the generic JSON payload (``Notification.to_json``) to one URL."""

    def _payload(self, n: Notification) -> dict[str, Any]:
        return n.to_json()


class SlackNotifier(_PostingNotifier):
    """POSTs ``Notification.to_slack`` to a Slack incoming webhook. The URL is a secret: it is
    never part of ``repr`` or of a failure message, which name ``$env_name`` instead."""

    label = "slack webhook"
    url_is_secret = True

    def _payload(self, n: Notification) -> dict[str, Any]:
        return n.to_slack()


class AlertmanagerNotifier(_PostingNotifier):
    """Posts a paging decision to Alertmanager's v2 API as one alert (``severity: critical``);
    notifications without ``alerts`` are not pages and are not sent.

    The labels identify the rollout (service, model, version, action), so Alertmanager groups a
    candidate's alerts into one page and routes can match a team's namespace; the annotations
    carry the reason and the checks. It fires for ``for_minutes`` and then resolves."""

    label = "alertmanager"

    def __init__(
        self, url: str, timeout: float = 5.0, *, for_minutes: int = 60, backoff_s: float = 0.5
    ) -> None:
        super().__init__(url.rstrip("/") + ALERTS_PATH, timeout, backoff_s=backoff_s)
        self.for_minutes = for_minutes

    def _payload(self, n: Notification) -> list[dict[str, Any]]:
        starts = datetime.fromisoformat(n.at)
        if starts.tzinfo is None:
            starts = starts.replace(tzinfo=UTC)
        ends = starts + timedelta(minutes=self.for_minutes)
        failing = [c for c in n.normalised_checks() if c["name"] in n.alerts]
        return [
            {
                "labels": {
                    "alertname": f"ConveyorRollout{n.action.capitalize()}",
                    "severity": n.severity,
                    "namespace": n.namespace,
                    "inferenceservice": n.inference_service,
                    "model": n.model,
                    "version": str(n.version),
                    "action": n.action,
                },
                "annotations": {
                    "summary": f"{n.action} of {n.model} v{n.version} on "
                    f"{n.namespace}/{n.inference_service}",
                    "description": n.reason,
                    "checks": "; ".join(_check_line(c) for c in failing) or ", ".join(n.alerts),
                    "champion_version": str(n.champion_version or ""),
                    "actor": n.actor,
                },
                "startsAt": starts.isoformat(),
                "endsAt": ends.isoformat(),
            }
        ]

    def send(self, n: Notification) -> list[str]:
        return super().send(n) if n.alerts else []


class _Unavailable:
    """A destination that could not be built (e.g. its env var is unset): every send reports it."""

    def __init__(self, problem: str) -> None:
        self.problem = problem

    def __repr__(self) -> str:
        return f"Unavailable({self.problem!r})"

    def send(self, n: Notification) -> list[str]:
        return [self.problem]


class MultiNotifier:
    """Sends to every notifier (all are tried even when one fails); with ``on``, only those
    actions are sent and others are skipped (no failure)."""

    def __init__(self, notifiers: Iterable[Notifier], on: Collection[str] | None = None) -> None:
        self.notifiers = list(notifiers)
        self.on = None if on is None else frozenset(on)

    def __repr__(self) -> str:
        on = "" if self.on is None else f", on={sorted(self.on)}"
        return f"MultiNotifier({self.notifiers!r}{on})"

    def send(self, n: Notification) -> list[str]:
        if self.on is not None and n.action not in self.on:
            return []
        failures: list[str] = []
        for notifier in self.notifiers:
            try:
                failures.extend(notifier.send(n))
            except Exception as exc:  # a third-party notifier must not block a rollback either
                failures.append(f"{type(notifier).__name__}: {type(exc).__name__}")
        return failures


class MemoryNotifier:
    """Test double: records every notification; ``failures`` are returned by each send."""

    def __init__(self, failures: Sequence[str] = ()) -> None:
        self.sent: list[Notification] = []
        self.failures = list(failures)

    def send(self, n: Notification) -> list[str]:
        self.sent.append(n)
        return list(self.failures)


def notifier_for(
    spec: NotificationSpec,
    environ: Mapping[str, str] = os.environ,
    *,
    backoff_s: float = 0.5,
) -> MultiNotifier:
    """The notifier a spec describes. A missing Slack env var is reported by every ``send``
    (a rollout goes on without chat rather than failing at start)."""
    notifiers: list[Notifier] = [
        WebhookNotifier(url, spec.timeout_s, backoff_s=backoff_s) for url in spec.webhooks
    ]
    if spec.alertmanager_url:
        minutes = spec.alert_for_minutes
        am = AlertmanagerNotifier(spec.alertmanager_url, spec.timeout_s, for_minutes=minutes,
                                  backoff_s=backoff_s)  # fmt: skip
        notifiers.append(am)
    for name in spec.webhook_envs:
        url, problem = _url_from_env(environ, name, "webhook")
        notifiers.append(
            _Unavailable(problem)
            if problem
            else WebhookNotifier(url, spec.timeout_s, env_name=name, backoff_s=backoff_s)
        )
    if spec.slack_webhook_env:
        slack = spec.slack_webhook_env
        url, problem = _url_from_env(environ, slack, "slack webhook")
        notifiers.append(
            _Unavailable(problem)
            if problem
            else SlackNotifier(url, spec.timeout_s, env_name=slack, backoff_s=backoff_s)
        )
    return MultiNotifier(notifiers, on=spec.on)


def _url_from_env(environ: Mapping[str, str], name: str, what: str) -> tuple[str, str]:
    """(url, "") or ("", the problem, naming the variable and never its value)."""
    url = (environ.get(name) or "").strip()
    if not url:
        return "", f"{what} env ${name} is not set"
    if urlsplit(url).scheme not in ("http", "https"):
        return "", f"{what} env ${name} does not hold an http(s) URL"
    return url, ""
