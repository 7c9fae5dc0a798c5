"""Prometheus as the rollout's metrics provider (Flagger's ``prometheus`` provider, for models).

One instant query over the HTTP API (``GET /api/v1/query``) answers one check with one number.
The failure modes are kept apart because the analysis treats them differently:

* a query that is wrong (PromQL syntax, or several series where one number is needed) raises
  ``MetricsError``: retrying cannot help, the plan must be fixed;
* a Prometheus that cannot be reached, times out or answers 5xx raises ``MetricsUnavailable``:
  the interval is inconclusive and the rollout holds, it never promotes on missing evidence;
* no data (no series, NaN, ±Inf) is ``None``, which the analysis also never counts as healthy.
"""

import math
import re
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Self

import httpx
import numpy as np

from conveyor.errors import MetricsError, MetricsUnavailable
from conveyor.rollout.metrics import FEEDBACK_SCORE_METRIC, SCORE_BUCKETS, SCORE_METRIC

__all__ = [
    "FEEDBACK_SCORE_METRIC",
    "PrometheusFeedback",
    "PrometheusProvider",
    "PrometheusScores",
    "feedback_source",
    "placeholders",
    "render",
    "score_source",
]


DEFAULT_TIMEOUT = 5.0

# `{{ name }}` as Flagger's metric templates write it; anything between the braces is captured so
# that an unknown form (`{{ variables.x }}`, `{{ }}`) is reported instead of sent as PromQL.
_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")


def placeholders(template: str) -> set[str]:
    """The ``{{ name }}`` placeholders a PromQL template uses."""
    return {m.group(1) for m in _PLACEHOLDER.finditer(template)}


def render(template: str, **labels: object) -> str:
    """Fill ``{{ name }}`` placeholders (``namespace``, ``target``, ``revision``, ``interval``,
    ``version``, ...) in a PromQL template.

    An unfilled placeholder raises ``MetricsError`` naming it: sent as is, ``{{ revision }}``
    would be a PromQL syntax error at best and, inside a label matcher, a query that silently
    matches nothing (``None``, inconclusive) at worst. Extra labels are ignored, so every check
    can be rendered with the same full set.
    """
    missing = sorted(placeholders(template) - labels.keys())
    if missing:
        names = ", ".join(f"{{{{ {name} }}}}" for name in missing)
        given = ", ".join(sorted(labels)) or "none"
        verb = "is" if len(missing) == 1 else "are"
        raise MetricsError(
            f"query template {template!r} uses {names}, which {verb} not provided "
            f"(provided: {given})"
        )
    return _PLACEHOLDER.sub(lambda m: str(labels[m.group(1)]), template)


class PrometheusProvider:
    """``MetricsProvider`` over a Prometheus server's HTTP API.

    ``url`` is the server's base URL (``http://prometheus.monitoring:9090``, or with the path
    prefix of ``--web.route-prefix`` / a proxy). ``client`` lets callers pass their own
    ``httpx.Client`` (auth headers, TLS, a test transport); the provider then never closes it.
    """

    def __init__(
        self, url: str, timeout: float = DEFAULT_TIMEOUT, client: httpx.Client | None = None
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._owns_client = client is None
        self._client = client if client is not None else httpx.Client(timeout=timeout)

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PrometheusProvider({self.url!r}, timeout={self.timeout})"

    # ------------------------------------------------------------------ querying

    def query(self, expr: str) -> float | None:
        """The query's one number now, or ``None`` for no data (see the module docstring)."""
        response = self._get(expr)
        body = self._json(response)
        status = response.status_code
        if status in (400, 422) or (status < 300 and body.get("status") == "error"):
            # 400 bad_data: the PromQL does not parse; 422 execution: it parses but cannot be
            # evaluated (e.g. duplicate series on one side of a one-to-one match).
            kind = body.get("errorType") or "bad query"
            error = body.get("error") or response.text[:200]
            raise MetricsError(f"Prometheus rejected the query {expr!r} ({kind}): {error}")
        if status >= 500:
            # 503 is also how Prometheus reports a query timeout or cancellation: overload, not
            # a wrong query, so it is inconclusive like any other server error.
            raise MetricsUnavailable(
                f"Prometheus at {self.url} answered HTTP {status} to {expr!r}: "
                f"{body.get('error') or response.reason_phrase}; check that the server is "
                "healthy and not overloaded (its /-/ready endpoint and its logs)"
            )
        if status >= 300:
            raise MetricsUnavailable(
                f"Prometheus at {self.url} answered HTTP {status} ({response.reason_phrase}) to "
                f"/api/v1/query; check the URL (the server's base URL, without /graph or "
                "/api/v1) and any proxy or authentication in front of it"
            )
        return self._value(expr, body.get("data") or {})

    def _get(self, expr: str) -> httpx.Response:
        """GET the query, retrying once at once if the connection itself failed.

        The single retry covers a pooled keep-alive connection the server already closed, or a
        restart in progress; timeouts are not retried, so a query costs at most ``timeout``
        per attempt and the analysis interval keeps its pace.
        """
        try:
            try:
                return self._send(expr)
            except (httpx.NetworkError, httpx.RemoteProtocolError):
                return self._send(expr)
        except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            raise MetricsUnavailable(
                f"cannot reach Prometheus at {self.url} ({type(exc).__name__}: {exc}); "
                "check the URL, that the server is running and that this pod or machine "
                "can reach it (a port-forward, a NetworkPolicy)"
            ) from exc
        except httpx.TimeoutException as exc:
            raise MetricsUnavailable(
                f"Prometheus at {self.url} did not answer {expr!r} within {self.timeout:g}s "
                f"({type(exc).__name__}); check the server's load, and that nothing between "
                "here and it drops packets (a firewall)"
            ) from exc
        except httpx.HTTPError as exc:
            raise MetricsUnavailable(
                f"query to Prometheus at {self.url} failed ({type(exc).__name__}: {exc})"
            ) from exc

    def _send(self, expr: str) -> httpx.Response:
        return self._client.get(
            f"{self.url}/api/v1/query", params={"query": expr}, timeout=self.timeout
        )

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        """The API's JSON envelope; anything else means the URL is not a Prometheus API."""
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or (response.status_code < 300 and "data" not in body):
            if response.status_code >= 500:
                return {}  # a proxy's 502/504 page: reported as unavailable by the caller
            raise MetricsUnavailable(
                f"{self.url}/api/v1/query did not answer with Prometheus API JSON "
                f"(HTTP {response.status_code}, {response.headers.get('content-type', '?')}); "
                "check that the URL points at Prometheus itself"
            )
        return body

    def _value(self, expr: str, data: dict[str, Any]) -> float | None:
        kind = data.get("resultType")
        result = data.get("result")
        if kind == "scalar":
            return _number(result[1]) if isinstance(result, list) and len(result) == 2 else None
        if kind == "matrix":
            raise MetricsError(
                f"query {expr!r} returns a range vector (matrix), not one number per series; "
                "wrap the range selector in a function, e.g. rate(x[5m]) instead of x[5m]"
            )
        if kind != "vector":
            raise MetricsError(f"query {expr!r} returns a {kind}, not an instant vector or scalar")
        series = result or []
        if not series:
            return None
        if len(series) > 1:
            shown = ", ".join(_series_name(s.get("metric", {})) for s in series[:3])
            more = ", ..." if len(series) > 3 else ""
            raise MetricsError(
                f"query {expr!r} returned {len(series)} series ({shown}{more}) where one number "
                f"is needed; aggregate it, e.g. sum({expr})"
            )
        sample = series[0]
        if "value" not in sample:
            raise MetricsError(
                f"query {expr!r} returns a native histogram, not a number; wrap it, e.g. in "
                "histogram_quantile(0.99, ...) or histogram_count(...)"
            )
        return _number(sample["value"][1])


def _number(text: object) -> float | None:
    """Prometheus sends sample values as strings; NaN and ±Inf mean no usable value."""
    try:
        value = float(str(text))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _series_name(metric: dict[str, str]) -> str:
    name = metric.get("__name__", "")
    pairs = ",".join(f'{k}="{v}"' for k, v in sorted(metric.items()) if k != "__name__")
    return f"{name}{{{pairs}}}"


# ---------------------------------------------------------------------------------------------
# Score distributions from the prediction-score histogram

_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def _promql_string(value: str) -> str:
    """``value`` as a double-quoted PromQL string literal."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def bucket_bound(bound: float) -> str:
    """A bucket's ``le`` label exactly as prometheus_client writes it (``0.1``, ``1.0``)."""
    from prometheus_client.utils import floatToGoString

    return str(floatToGoString(bound))


class _BucketReader:
    """Reads one role's bucket counts of a histogram over a window: the query code shared by
    ``PrometheusScores`` and ``PrometheusFeedback``.

    ``versions`` maps a role (``champion``, ``candidate``) to the ``version`` label of its
    series; ``labels`` adds matchers shared by both roles. Series that still differ in other
    labels (several pods or receivers) are summed.
    """

    MIN_COUNT = 60
    METRIC = SCORE_METRIC
    RESERVED: tuple[str, ...] = ("version", "le")  # set per bucket and role, never by `labels`

    def __init__(
        self,
        provider: PrometheusProvider,
        versions: Mapping[str, str],
        window: str,
        *,
        labels: Mapping[str, str] | None = None,
        metric: str | None = None,
        buckets: Sequence[float] = SCORE_BUCKETS,
        min_count: int | None = None,
    ) -> None:
        extra = dict(labels or {})
        for name in extra:
            if not _LABEL_NAME.match(name) or name.startswith("__"):
                raise MetricsError(f"label matcher {name!r} is not a valid Prometheus label name")
            if name in self.RESERVED:
                raise MetricsError(
                    f"label matcher {name!r} is set per bucket and role by "
                    f"{type(self).__name__}; give the versions in `versions` instead"
                )
        if list(buckets) != sorted(buckets) or not buckets:
            raise MetricsError(f"buckets {list(buckets)} must be a non-empty ascending sequence")
        self.provider, self.versions, self.window = provider, dict(versions), window
        self.labels, self.metric = extra, metric or self.METRIC
        self.buckets = tuple(buckets)
        self.min_count = self.MIN_COUNT if min_count is None else min_count

    def selector(self, role: str, bound: float, **matchers: str) -> str:
        """The series selector of one role's cumulative bucket ``le=bound``; ``matchers`` are
        added before ``le`` (the feedback histograms' ``label``)."""
        if role not in self.versions:
            known = ", ".join(sorted(self.versions)) or "none"
            raise MetricsError(f"no version given for role {role!r} (given: {known})")
        every = {**self.labels, "version": self.versions[role], **matchers}
        every["le"] = bucket_bound(bound)
        inner = ",".join(f"{k}={_promql_string(str(v))}" for k, v in every.items())
        return f"{self.metric}_bucket{{{inner}}}"

    def counts(self, role: str, **matchers: str) -> np.ndarray | None:
        """How many observations of ``role`` fell in each finite bucket over the window (from
        ``increase()`` of the cumulative buckets, so extrapolated, not whole numbers); ``None``
        when a bucket has no data."""
        cumulative = []
        for bound in self.buckets:
            expr = f"sum(increase({self.selector(role, bound, **matchers)}[{self.window}]))"
            value = self.provider.query(expr)
            if value is None:
                return None
            cumulative.append(value)
        return np.diff(np.concatenate([[0.0], np.maximum.accumulate(cumulative)]))


class PrometheusScores(_BucketReader):
    """Score distributions per side of a rollout from the ``conveyor_prediction_score``
    histogram (20 buckets of 0.05): each bucket's share of the window's predictions, for PSI.

    ``versions`` maps a role (``champion``, ``candidate``) to the ``version`` label of its
    series. ``labels`` adds label matchers shared by both roles: ``{"model": "fraud"}``
    keeps two models' version 3 apart, ``{"namespace": "conveyor-dev"}`` picks the series
    Prometheus scraped from that namespace's score-log receiver or model servers. Series
    that still differ in other labels (several pods or receivers) are summed.

    The local model servers (``conveyor.serving.server``) export the histogram themselves;
    on a cluster the score-log receiver (``conveyor.rollout.scorelog``) exports it from
    KServe's inference logger. Both use ``SCORE_BUCKETS``.
    """

    MIN_COUNT = 60  # fewer predictions in the window: no distribution to compare yet

    def fractions(self, role: str) -> np.ndarray | None:
        """Each bucket's share of ``role``'s predictions in the window; ``None`` for fewer
        than ``min_count`` predictions or a bucket without data."""
        counts = self.counts(role)
        if counts is None:
            return None
        total = counts.sum()
        return None if total < self.min_count else counts / total

    def scores(self, role: str) -> np.ndarray | None:
        """The ScoreSource protocol: a histogram keeps no raw scores (``fractions`` instead)."""
        return None


class PrometheusFeedback(_BucketReader):
    """Labelled feedback per side of a rollout from the score-log receiver's
    ``conveyor_feedback_score{model,version,label}`` histograms (``POST /feedback``), for the
    ``auc_drop_pct_above`` check: the ``FeedbackSource`` protocol.

    ``labelled(role)`` rebuilds rows from the two label histograms of the role's version over
    the window: ``n0`` rows labelled 0 and ``n1`` labelled 1 at each bucket's midpoint score
    (the first bucket starts at 0). An AUC of these rows is the binned AUC: pairs within one
    bucket are ties and count half, as ``roc_auc_score`` counts tied scores. ``increase()``
    extrapolates to the window's edges, so each bucket's count is rounded to whole rows;
    with rows spread over a window of many scrapes that is the count itself. Rows above the
    last bucket (``+Inf``: not probabilities) are left out. ``versions``, ``labels`` and
    ``window`` are as for ``PrometheusScores``.
    """

    MIN_COUNT = 50  # the analysis' MIN_FEEDBACK: fewer labelled rows, no AUC
    RESERVED = ("version", "le", "label")
    METRIC = FEEDBACK_SCORE_METRIC

    def midpoints(self) -> np.ndarray:
        """Each finite bucket's midpoint score: the score its rows are given."""
        upper = np.asarray(self.buckets, dtype=float)
        lower = np.concatenate([[min(0.0, upper[0])], upper[:-1]])
        return (lower + upper) / 2

    def labelled(self, role: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(true labels, midpoint scores) of ``role``'s labelled rows in the window; ``None``
        below ``min_count`` rows, without both classes, or when a bucket has no data."""
        negatives = self.counts(role, label="0")
        positives = self.counts(role, label="1")
        if negatives is None or positives is None:
            return None
        n0 = np.rint(np.maximum(negatives, 0.0)).astype(int)
        n1 = np.rint(np.maximum(positives, 0.0)).astype(int)
        if n0.sum() + n1.sum() < self.min_count or n0.sum() == 0 or n1.sum() == 0:
            return None
        mid = self.midpoints()
        y = np.concatenate([np.zeros(n0.sum(), dtype=int), np.ones(n1.sum(), dtype=int)])
        scores = np.concatenate([np.repeat(mid, n0), np.repeat(mid, n1)])
        return y, scores


def _receiver_series(sides: Any, plan: Any, op: str) -> dict[str, Any] | None:
    """Versions, window and label matchers of the rollout's score-log receiver series for
    ``op``'s check (None without ``plan.score_log_url``). ``sides``: ``analysis.Sides``."""
    from conveyor.rollout.plan import window

    if not plan.score_log_url:
        return None
    return {
        "versions": {"champion": sides.champion.version, "candidate": sides.candidate.version},
        "window": window(plan, op),
        "labels": {"model": sides.model} if sides.model else None,
    }


def score_source(provider: PrometheusProvider, sides: Any, plan: Any) -> "PrometheusScores | None":
    """The cluster's score source for a running canary or shadow: the score-log receiver's
    histogram of the champion's and candidate's versions over the ``psi_above`` check's window
    (None without ``plan.score_log_url``, so score_psi says "not measured" rather than waiting
    for series that never come)."""
    series = _receiver_series(sides, plan, "psi_above")
    return None if series is None else PrometheusScores(provider, **series)


def feedback_source(
    provider: PrometheusProvider, sides: Any, plan: Any
) -> "PrometheusFeedback | None":
    """The cluster's labelled-feedback source for a running canary or shadow: the score-log
    receiver's ``conveyor_feedback_score`` histograms over the ``auc_drop_pct_above`` check's
    window (labels that arrive late need a long one; None without ``plan.score_log_url``)."""
    series = _receiver_series(sides, plan, "auc_drop_pct_above")
    return None if series is None else PrometheusFeedback(provider, **series)
