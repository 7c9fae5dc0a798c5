"""Prediction-score receiver for KServe's inference logger: ``conveyor scorelog``.

The stock ``kserve-sklearnserver`` runtime exports no score histogram, so on a cluster the
rollout's ``score_psi`` check would have nothing to read. KServe's agent can log every
request and response of a predictor (``spec.predictor.logger``). It POSTs each one as a
CloudEvent in binary content mode: the attributes travel as ``Ce-*`` headers and the payload
is the body, unchanged (kserve/kserve ``pkg/logger/handler.go`` and ``worker.go``):

* ``Ce-Type``: ``org.kubeflow.serving.inference.request`` or
  ``org.kubeflow.serving.inference.response``; a response is logged only when the predictor
  answered 200;
* ``Ce-Id`` (the request's id, shared by its request and response events), ``Ce-Source``,
  ``Ce-Specversion: 1.0``, ``Ce-Time``;
* extensions ``Ce-Inferenceservicename``, ``Ce-Namespace``, ``Ce-Component``,
  ``Ce-Endpoint``, ``Ce-Metadata`` (JSON of the configured request headers) and, when the
  InferenceService has any, ``Ce-Annotations``;
* ``Content-Type``: the *request's* content type, on the response event too.

This receiver ignores request events and turns every row of a response into its
positive-class score, observed into ``conveyor_prediction_score{model,version}`` with the
buckets of Conveyor's own model server (``SCORE_BUCKETS``), so ``PrometheusScores`` reads
the cluster exactly as it reads local servers. Response bodies:

* V1 ``{"predictions": [...]}``: with ``PREDICT_PROBA=true`` each prediction is a list of
  class probabilities and the positive class is index 1; a flat list of numbers is taken as
  the scores themselves (without ``PREDICT_PROBA`` those are class labels, 0 or 1);
* V2 ``{"outputs": [{"name", "shape": [n, 2], "data": [...]}]}``: the first output, its
  data in row-major order; shape ``[n, 2]`` gives column 1, ``[n]`` or ``[n, 1]`` the
  values themselves.

A 200 answer that holds neither (model metadata, readiness: the agent logs every proxied
response) is ignored. The version comes from the logger URL: each revision's
``spec.predictor.logger.url`` is
``http://conveyor-scorelog.<ns>.svc.cluster.local/log?model=<model>&version=<version>``, so a
canary's revision reports the new version and the champion's revision, whose spec is
unchanged, keeps reporting its own. ``model`` falls back to ``Ce-Inferenceservicename``.

``conveyor_scorelog_events_total{outcome}`` counts every event: ``observed``, ``ignored``
(request events and non-prediction responses), ``no_version`` (logger URL without
``version``: not observed), ``bad_label`` (a model or version that is not a name: letters,
digits, ``.``, ``_``, ``-``, at most 63), ``unparseable`` (answered 400 naming the problem) and
``too_large`` (413). Series cardinality is bounded whoever posts: at most ``max_series``
(``--max-series``, default 64) (model, version) pairs are exported; beyond that the least
recently logged pair is removed with its feedback series
(``conveyor_scorelog_series_evicted_total``, ``conveyor_scorelog_series``). Endpoints:
``POST /log``, ``POST /feedback``, ``GET /metrics``, ``GET /healthz``.

Labelled feedback (the rollout's online AUC, ``auc_drop_pct_above``). The receiver keeps
the most recent observed responses in memory, ``Ce-Id`` -> (model, version, the scores of
its rows), at most ``max_pending`` ids (``--max-pending``, default 100 000; the least
recently logged id is evicted first). KServe's agent gives the events the request's
``ce-id`` header when the client sends one, so a client that sets ``ce-id: <its own id>`` on
its predict request can later, once the truth is known, ``POST /feedback``:

* ``{"id": "<ce-id>", "labels": [0, 1, ...]}``: one label (0 or 1) per row of that response,
  in row order; ``{"id": "<ce-id>", "label": 1}`` for a single-row response;
* or a JSON list of such objects (a batch): answered 200 with ``{"results": [...]}``, one
  ``{"id", "outcome", "rows", "message"}`` per item, in order.

A single object is answered 200 ``matched`` (each row's score is observed into
``conveyor_feedback_score{model,version,label}``, ``SCORE_BUCKETS``, and the id is dropped:
feedback counts once), 404 ``unknown_id`` (never logged, already labelled or evicted) or 400
``bad`` (not JSON, no id, labels not 0/1, or not one label per row; an id whose labels do not
fit stays pending for a corrected retry). ``conveyor_feedback_total{outcome}`` counts every
item. Both label series of a version exist (at 0) from its first logged response on, so
``increase()`` over them sees the first feedback too. A response logged twice under one id
for the same model and version (a client's retry) keeps the last one; the same id under
another version (an Istio mirror to a shadow copies the request's headers) is a second entry,
and the feedback labels both. ``PrometheusFeedback`` reads the two label histograms back.
"""

import contextlib
import json
import logging
import math
import re
import signal
import threading
from array import array
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from conveyor.errors import ScoreLogError
from conveyor.httpd import BackgroundHTTPServer
from conveyor.rollout.metrics import FEEDBACK_SCORE_METRIC, SCORE_BUCKETS, SCORE_METRIC

__all__ = [
    "CE_REQUEST",
    "CE_RESPONSE",
    "ScoreLogServer",
    "UnparseableEvent",
    "positive_scores",
    "run",
]


log = logging.getLogger(__name__)

CE_REQUEST = "org.kubeflow.serving.inference.request"
CE_RESPONSE = "org.kubeflow.serving.inference.response"
OUTCOMES = ("observed", "ignored", "no_version", "bad_label", "unparseable", "too_large")
EVENTS_METRIC = "conveyor_scorelog_events"
FEEDBACK_METRIC = "conveyor_feedback"
FEEDBACK_OUTCOMES = ("matched", "unknown_id", "bad")

DEFAULT_HOST = "0.0.0.0"  # in a pod; tests and a workstation pass 127.0.0.1
DEFAULT_PORT = 8080
LOG_PATH = "/log"
FEEDBACK_PATH = "/feedback"
DEFAULT_MAX_PENDING = 100_000  # response ids kept for feedback; ~100 bytes each plus scores
DEFAULT_MAX_SERIES = 64  # (model, version) pairs exported at once; least recently logged go
LABEL_VALUE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")  # model names and versions
MAX_BODY_BYTES = 10 * 1024 * 1024
READ_TIMEOUT = 30.0  # seconds a connection may sit idle or dribble a body


class UnparseableEvent(ValueError):
    """A response body that is not a V1 or V2 prediction of numbers; the message says why."""


class NotAPrediction(ValueError):
    """A JSON object without ``predictions`` or ``outputs``: metadata, not a prediction."""


# ------------------------------------------------------------------------------- parsing


def _number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UnparseableEvent(f"{where} is {value!r}, not a number")
    number = float(value)
    if not math.isfinite(number):
        raise UnparseableEvent(f"{where} is {value!r}, not a finite number")
    return number


def _v1_scores(predictions: object) -> list[float]:
    if not isinstance(predictions, list):
        raise UnparseableEvent(f"`predictions` is a {type(predictions).__name__}, not a list")
    scores = []
    for i, row in enumerate(predictions):
        if isinstance(row, list):
            if len(row) not in (1, 2):
                raise UnparseableEvent(
                    f"prediction {i} has {len(row)} values; expected 2 class probabilities "
                    "(PREDICT_PROBA=true on a binary classifier) or one score"
                )
            scores.append(_number(row[-1], f"prediction {i}, positive class"))
        else:
            scores.append(_number(row, f"prediction {i}"))
    return scores


def _flatten(data: list[Any]) -> list[Any]:
    flat: list[Any] = []
    for item in data:
        flat.extend(_flatten(item) if isinstance(item, list) else [item])
    return flat


def _v2_scores(outputs: object) -> list[float]:
    if not isinstance(outputs, list) or not outputs:
        raise UnparseableEvent("`outputs` is not a non-empty list of tensors")
    tensor = outputs[0]
    if not isinstance(tensor, dict):
        raise UnparseableEvent(f"output 0 is a {type(tensor).__name__}, not a tensor object")
    name, shape, data = tensor.get("name", "?"), tensor.get("shape"), tensor.get("data")
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise UnparseableEvent(f"output {name!r}: shape {shape!r} is not a list of sizes")
    if not isinstance(data, list):
        raise UnparseableEvent(f"output {name!r}: `data` is not a list")
    values = [_number(v, f"output {name!r} value {i}") for i, v in enumerate(_flatten(data))]
    size = math.prod(shape)
    if size != len(values):
        raise UnparseableEvent(
            f"output {name!r}: shape {shape} holds {size} values, `data` has {len(values)}"
        )
    if len(shape) == 1 or (len(shape) == 2 and shape[1] == 1):
        return values
    if len(shape) == 2 and shape[1] == 2:
        return values[1::2]
    raise UnparseableEvent(
        f"output {name!r}: shape {shape}; expected [n, 2] class probabilities of a binary "
        "classifier, or [n] / [n, 1] scores"
    )


def positive_scores(body: bytes) -> list[float]:
    """The positive-class score of every row of a V1 or V2 response body.

    Raises ``UnparseableEvent`` for anything that is not JSON of numbers in those shapes and
    ``NotAPrediction`` for a JSON object that is no prediction at all.
    """
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise UnparseableEvent(f"body is not JSON ({exc})") from exc
    if not isinstance(payload, dict):
        raise UnparseableEvent(f"body is a JSON {type(payload).__name__}, not an object")
    if "predictions" in payload:
        return _v1_scores(payload["predictions"])
    if "outputs" in payload:
        return _v2_scores(payload["outputs"])
    raise NotAPrediction(f"no `predictions` or `outputs` (keys: {sorted(payload)[:5]})")


# ------------------------------------------------------------------------------- metrics


@dataclass(frozen=True)
class Outcome:
    """What one event came to: the HTTP status, the counted outcome, a one-line message."""

    status: int
    outcome: str
    message: str
    rows: int = 0
    id: str | None = None  # feedback items: the Ce-Id they name

    def fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {} if self.id is None else {"id": self.id}
        return {**fields, "outcome": self.outcome, "rows": self.rows, "message": self.message}

    def body(self) -> bytes:
        return json.dumps(self.fields()).encode()


# A logged response waiting for its labels: (model, version) -> the scores of its rows,
# as C doubles (8 bytes a row, not a Python float object each).
Pending = dict[tuple[str, str], "array[float]"]


def _labels_of(item: Mapping[str, Any]) -> list[int]:
    """The 0/1 labels of one feedback item; ``ValueError`` naming the problem otherwise."""
    if ("labels" in item) == ("label" in item):
        raise ValueError('give either "labels": [0, 1, ...] (one per row) or "label": 0|1')
    values = item["labels"] if "labels" in item else [item["label"]]
    where = "`labels`" if "labels" in item else "`label`"
    if not isinstance(values, list) or not values:
        raise ValueError(f"{where} is {values!r}, not a non-empty list of 0/1")
    for i, value in enumerate(values):
        if isinstance(value, bool) or not isinstance(value, int) or value not in (0, 1):
            at = where if "label" in item else f"`labels[{i}]`"
            raise ValueError(f"{at} is {value!r}, not 0 or 1")
    return [int(v) for v in values]


class ScoreLog:
    """The receiver without HTTP: its own registry, the histograms, the counters, and the
    recent responses waiting for feedback (``max_pending`` ids, least recent evicted)."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        max_pending: int = DEFAULT_MAX_PENDING,
        max_series: int = DEFAULT_MAX_SERIES,
    ) -> None:
        if max_pending < 1:
            raise ScoreLogError(f"max_pending is {max_pending}; it must be at least 1")
        if max_series < 2:
            raise ScoreLogError(f"max_series is {max_series}; a rollout needs at least 2")
        self.max_pending, self.max_series = max_pending, max_series
        self._pending: OrderedDict[str, Pending] = OrderedDict()
        self._series: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._lock = threading.Lock()
        self.registry = registry if registry is not None else CollectorRegistry()
        self.scores = Histogram(
            SCORE_METRIC,
            "Positive-class scores from KServe's inference logger",
            ["model", "version"],
            buckets=SCORE_BUCKETS,
            registry=self.registry,
        )
        self.events = Counter(
            EVENTS_METRIC, "Inference-logger events by outcome", ["outcome"],
            registry=self.registry,
        )  # fmt: skip
        for outcome in OUTCOMES:
            self.events.labels(outcome=outcome)  # every outcome exported from the start
        self.feedback_scores = Histogram(
            FEEDBACK_SCORE_METRIC,
            "Positive-class scores of logged responses, by the true label fed back",
            ["model", "version", "label"],
            buckets=SCORE_BUCKETS,
            registry=self.registry,
        )
        self.feedback_items = Counter(
            FEEDBACK_METRIC, "Feedback items by outcome", ["outcome"], registry=self.registry
        )
        for outcome in FEEDBACK_OUTCOMES:
            self.feedback_items.labels(outcome=outcome)
        self.evicted = Counter(
            "conveyor_feedback_evicted",
            "Logged responses dropped unlabelled to stay within max_pending",
            registry=self.registry,
        )
        pending = Gauge(
            "conveyor_feedback_pending", "Logged responses waiting for feedback",
            registry=self.registry,
        )  # fmt: skip
        pending.set_function(lambda: len(self._pending))
        self.series_evicted = Counter(
            "conveyor_scorelog_series_evicted",
            "(model, version) series removed to stay within max_series, least recently logged "
            "first",
            registry=self.registry,
        )
        series = Gauge(
            "conveyor_scorelog_series", "(model, version) pairs exported now",
            registry=self.registry,
        )  # fmt: skip
        series.set_function(lambda: len(self._series))

    def count(self, outcome: Outcome) -> Outcome:
        self.events.labels(outcome=outcome.outcome).inc()
        return outcome

    def count_feedback(self, outcome: Outcome) -> Outcome:
        self.feedback_items.labels(outcome=outcome.outcome).inc()
        return outcome

    def pending(self) -> int:
        """How many response ids wait for feedback."""
        with self._lock:
            return len(self._pending)

    def admit(self, model: str, version: str) -> None:
        """Export ``(model, version)``: cardinality stays bounded whoever posts. Beyond
        ``max_series`` pairs the least recently logged one is removed with its feedback series
        and pending responses; a running rollout logs both of its versions all the time, so
        only a flood of other versions can push it out (and the eviction counter shows it)."""
        evicted: list[tuple[str, str]] = []
        with self._lock:
            self._series[(model, version)] = None
            self._series.move_to_end((model, version))
            while len(self._series) > self.max_series:
                old, _ = self._series.popitem(last=False)
                evicted.append(old)
                for entry in self._pending.values():
                    entry.pop(old, None)
                for ce_id in [k for k, entry in self._pending.items() if not entry]:
                    del self._pending[ce_id]
        for old in evicted:
            with contextlib.suppress(KeyError):
                self.scores.remove(*old)
            for label in ("0", "1"):
                with contextlib.suppress(KeyError):
                    self.feedback_scores.remove(*old, label)
            self.series_evicted.inc()
            log.warning("score series %s v%s evicted (max_series %d)", *old, self.max_series)

    def remember(self, ce_id: str, model: str, version: str, scores: list[float]) -> None:
        """Keep one observed response for its feedback (the most recent ``max_pending`` ids)."""
        # Both label series exist from the first response on: increase() then counts the
        # first feedback too, instead of taking a series' first sample as its baseline.
        for label in ("0", "1"):
            self.feedback_scores.labels(model=model, version=version, label=label)
        evicted = 0
        with self._lock:
            entry = self._pending.pop(ce_id, None) or {}
            entry[(model, version)] = array("d", scores)
            self._pending[ce_id] = entry
            while len(self._pending) > self.max_pending:
                self._pending.popitem(last=False)
                evicted += 1
        if evicted:
            self.evicted.inc(evicted)

    def feedback_item(self, item: object) -> Outcome:
        """One feedback object: ``{"id": ..., "labels": [...]}`` or ``{"id": ..., "label": 0}``."""
        if not isinstance(item, dict):
            kind = type(item).__name__
            return self.count_feedback(
                Outcome(400, "bad", f'a JSON {kind}, not an object {{"id": ..., "labels": ...}}')
            )
        ce_id = item.get("id")
        if not isinstance(ce_id, str) or not ce_id:
            return self.count_feedback(
                Outcome(400, "bad", f"`id` is {ce_id!r}, not the non-empty Ce-Id of a response")
            )
        try:
            labels = _labels_of(item)
        except ValueError as exc:
            return self.count_feedback(Outcome(400, "bad", f"id {ce_id!r}: {exc}", id=ce_id))
        sizes: set[int] = set()
        with self._lock:
            entry = self._pending.get(ce_id)
            if entry is not None:
                sizes = {len(scores) for scores in entry.values()}
                if sizes == {len(labels)}:
                    del self._pending[ce_id]
        if entry is None:
            return self.count_feedback(
                Outcome(
                    404,
                    "unknown_id",
                    f"id {ce_id!r}: no logged response waits for feedback under this id "
                    f"(never logged, already labelled, or evicted beyond the "
                    f"{self.max_pending} most recent)",
                    id=ce_id,
                )
            )
        if sizes != {len(labels)}:
            rows = " / ".join(str(n) for n in sorted(sizes))
            return self.count_feedback(
                Outcome(
                    400,
                    "bad",
                    f"id {ce_id!r}: {len(labels)} label(s) for a response of {rows} row(s); "
                    "give one label per row, in row order",
                    id=ce_id,
                )
            )
        for (model, version), scores in entry.items():
            by_label = {
                label: self.feedback_scores.labels(model=model, version=version, label=label)
                for label in ("0", "1")
            }
            for score, label in zip(scores, labels, strict=True):
                by_label[str(label)].observe(score)
        where = ", ".join(f"{model} v{version}" for model, version in entry)
        return self.count_feedback(
            Outcome(200, "matched", f"{where}: {len(labels)} rows labelled", len(labels), ce_id)
        )

    def feedback(self, body: bytes) -> tuple[int, bytes]:
        """``POST /feedback``: one object, or a list of them (answered per item)."""
        try:
            payload = json.loads(body)
        except (UnicodeDecodeError, ValueError) as exc:
            outcome = self.count_feedback(Outcome(400, "bad", f"body is not JSON ({exc})"))
            return outcome.status, outcome.body()
        if not isinstance(payload, list):
            outcome = self.feedback_item(payload)
            return outcome.status, outcome.body()
        if not payload:
            outcome = self.count_feedback(Outcome(400, "bad", "an empty list: no feedback"))
            return outcome.status, outcome.body()
        results = [self.feedback_item(item).fields() for item in payload]
        return 200, json.dumps({"results": results}).encode()

    def handle(self, query: str, headers: Mapping[str, str], body: bytes) -> Outcome:
        """One POSTed event. ``headers`` keys are lower case; ``query`` is the URL's query."""
        ce_type = headers.get("ce-type")
        if not ce_type:
            return self.count(
                Outcome(400, "unparseable", "no Ce-Type header: not a binary-mode CloudEvent")
            )
        if ce_type != CE_RESPONSE:
            return self.count(Outcome(200, "ignored", f"{ce_type} events carry no scores"))
        params = parse_qs(query)
        version = (params.get("version") or [""])[0]
        model = (params.get("model") or [""])[0] or headers.get("ce-inferenceservicename", "")
        if not version:
            return self.count(
                Outcome(
                    400,
                    "no_version",
                    "no version: the logger URL needs ?version=<model version> "
                    "(spec.predictor.logger.url); the event was not observed",
                )
            )
        if not model:
            return self.count(
                Outcome(
                    400,
                    "unparseable",
                    "no model: neither ?model= on the logger URL nor a "
                    "Ce-Inferenceservicename header",
                )
            )
        for what, value in (("version", version), ("model", model)):
            if not LABEL_VALUE.match(value):
                return self.count(
                    Outcome(
                        400,
                        "bad_label",
                        f"{what} {value[:80]!r} is not a model name or version (letters, "
                        "digits, '.', '_', '-'; at most 63); the event was not observed",
                    )
                )
        try:
            scores = positive_scores(body)
        except NotAPrediction as exc:
            return self.count(Outcome(200, "ignored", f"not a prediction response: {exc}"))
        except UnparseableEvent as exc:
            return self.count(Outcome(400, "unparseable", f"unparseable response: {exc}"))
        self.admit(model, version)
        series = self.scores.labels(model=model, version=version)
        for score in scores:
            series.observe(score)
        ce_id = headers.get("ce-id", "")
        if ce_id and scores:
            self.remember(ce_id, model, version, scores)
        return self.count(
            Outcome(200, "observed", f"{model} v{version}: {len(scores)} rows", len(scores))
        )


# ------------------------------------------------------------------------------- HTTP


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Keep-alive connections park a thread on the next request; stop() must not wait for them.
    block_on_close = False
    scorelog: ScoreLog
    max_body: int


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # KServe's Go client keeps connections alive
    timeout = READ_TIMEOUT
    server: _Server

    def _reply(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _refuse(self, outcome: Outcome) -> None:
        """Answer without reading the body: the connection cannot be reused."""
        self.close_connection = True
        if urlsplit(self.path).path == FEEDBACK_PATH:
            self.server.scorelog.count_feedback(replace(outcome, outcome="bad"))
        elif outcome.outcome in OUTCOMES:
            self.server.scorelog.count(outcome)
        self._reply(outcome.status, outcome.body())

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        if url.path not in (LOG_PATH, FEEDBACK_PATH):
            self._refuse(
                Outcome(404, "not_found", f"POST {LOG_PATH} or {FEEDBACK_PATH}, not {url.path}")
            )
            return
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self._refuse(Outcome(411, "unparseable", "chunked bodies are not accepted"))
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
            if length < 0:
                raise ValueError(length)
        except ValueError:
            self._refuse(Outcome(411, "unparseable", "a Content-Length header is required"))
            return
        if length > self.server.max_body:
            self._refuse(
                Outcome(
                    413,
                    "too_large",
                    f"body of {length} bytes exceeds the limit of {self.server.max_body}",
                )
            )
            return
        body = self.rfile.read(length)
        if url.path == FEEDBACK_PATH:
            status, answer = self.server.scorelog.feedback(body)
            if status >= 400:
                log.warning("feedback: %s", json.loads(answer)["message"])
            self._reply(status, answer)
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        outcome = self.server.scorelog.handle(url.query, headers, body)
        if outcome.status >= 400:
            log.warning("event %s: %s", headers.get("ce-id", "?"), outcome.message)
        self._reply(outcome.status, outcome.body())

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/metrics":
            self._reply(200, generate_latest(self.server.scorelog.registry), CONTENT_TYPE_LATEST)
        elif path == "/healthz":
            self._reply(200, b"ok\n", "text/plain; charset=utf-8")
        else:
            self._reply(404, b"GET /metrics or /healthz\n", "text/plain; charset=utf-8")

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)


class ScoreLogServer(BackgroundHTTPServer):
    """``with ScoreLogServer("127.0.0.1", 0) as receiver: receiver.url ...``

    Serves on a background thread; ``port=0`` picks a free port (``port`` holds it once
    started). IPv4 only. ``stop()`` is idempotent.
    """

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        *,
        max_body: int = MAX_BODY_BYTES,
        max_pending: int = DEFAULT_MAX_PENDING,
        max_series: int = DEFAULT_MAX_SERIES,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.max_body = max_body
        self.scorelog = ScoreLog(registry, max_pending=max_pending, max_series=max_series)
        super().__init__(
            _Handler, host, port, server_class=_Server, poll_interval=0.2, name="scorelog"
        )

    @property
    def url(self) -> str:
        """The base URL to reach the receiver (a wildcard bind is reached on loopback)."""
        if not self.running:
            raise ScoreLogError("ScoreLogServer is not running: call start() or use `with`")
        return super().url

    def start(self) -> Self:
        """Serve; a bind error is a ScoreLogError naming the address, for the CLI to print."""
        if self.running:
            return self
        # read at each start, so a max_body set after construction still applies
        self.attrs = {"scorelog": self.scorelog, "max_body": self.max_body}
        try:
            return super().start()
        except OSError as exc:
            raise ScoreLogError(
                f"score-log receiver cannot listen on {self.host}:{self.port}: {exc}"
            ) from exc


def run(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    max_pending: int = DEFAULT_MAX_PENDING,
    max_series: int = DEFAULT_MAX_SERIES,
) -> int:
    """Serve until SIGTERM or Ctrl-C (``conveyor scorelog``); 0 on a clean stop."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    stop = {signal.SIGINT, signal.SIGTERM}
    # Blocked before the server's threads exist, so they inherit the mask and every stop
    # signal waits for sigwait here instead of landing on a worker thread.
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, stop)
    try:
        with ScoreLogServer(host, port, max_pending=max_pending, max_series=max_series) as receiver:
            print(
                f"conveyor scorelog on {host}:{receiver.port}: POST {LOG_PATH}?model=M&version=V "
                f"(KServe inference-logger CloudEvents), POST {FEEDBACK_PATH} (labels for the "
                f"{max_pending} most recent response ids), GET /metrics, GET /healthz. "
                "Ctrl-C stops it.",
                flush=True,
            )
            received = signal.sigwait(stop)
            print(f"conveyor scorelog: {signal.Signals(received).name}, stopping", flush=True)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
    return 0
