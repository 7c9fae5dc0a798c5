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
``version``: not observed), ``unparseable`` (answered 400 naming the problem) and
``too_large`` (413). Endpoints: ``POST /log``, ``GET /metrics``, ``GET /healthz``.
"""

import json
import logging
import math
import signal
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

from conveyor.serving.server import SCORE_BUCKETS, SCORE_METRIC, ServingError

log = logging.getLogger(__name__)

CE_REQUEST = "org.kubeflow.serving.inference.request"
CE_RESPONSE = "org.kubeflow.serving.inference.response"
OUTCOMES = ("observed", "ignored", "no_version", "unparseable", "too_large")
EVENTS_METRIC = "conveyor_scorelog_events"

DEFAULT_HOST = "0.0.0.0"  # in a pod; tests and a workstation pass 127.0.0.1
DEFAULT_PORT = 8080
LOG_PATH = "/log"
MAX_BODY_BYTES = 10 * 1024 * 1024
READ_TIMEOUT = 30.0  # seconds a connection may sit idle or dribble a body


class ScoreLogError(ServingError):
    """The score-log receiver could not start (address in use, bad host)."""


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

    def body(self) -> bytes:
        fields = {"outcome": self.outcome, "rows": self.rows, "message": self.message}
        return json.dumps(fields).encode()


class ScoreLog:
    """The receiver without HTTP: its own registry, the histogram, the event counter."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
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

    def count(self, outcome: Outcome) -> Outcome:
        self.events.labels(outcome=outcome.outcome).inc()
        return outcome

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
        try:
            scores = positive_scores(body)
        except NotAPrediction as exc:
            return self.count(Outcome(200, "ignored", f"not a prediction response: {exc}"))
        except UnparseableEvent as exc:
            return self.count(Outcome(400, "unparseable", f"unparseable response: {exc}"))
        series = self.scores.labels(model=model, version=version)
        for score in scores:
            series.observe(score)
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
        if outcome.outcome in OUTCOMES:
            self.server.scorelog.count(outcome)
        self._reply(outcome.status, outcome.body())

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        if url.path != LOG_PATH:
            self._refuse(Outcome(404, "not_found", f"POST {LOG_PATH}, not {url.path}"))
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


class ScoreLogServer:
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
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.host, self.port, self.max_body = host, port, max_body
        self.scorelog = ScoreLog(registry)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL to reach the receiver (a wildcard bind is reached on loopback)."""
        if self._server is None:
            raise ScoreLogError("ScoreLogServer is not running: call start() or use `with`")
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> Self:
        if self._server is not None:
            return self
        try:
            server = _Server((self.host, self.port), _Handler)
        except OSError as exc:
            raise ScoreLogError(
                f"score-log receiver cannot listen on {self.host}:{self.port}: {exc}"
            ) from exc
        server.scorelog, server.max_body = self.scorelog, self.max_body
        self._server, self.port = server, int(server.server_address[1])
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.2},
            name=f"scorelog-{self.port}", daemon=True,
        )  # fmt: skip
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread, self._server, self._thread = self._server, self._thread, None, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def run(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> int:
    """Serve until SIGTERM or Ctrl-C (``conveyor scorelog``); 0 on a clean stop."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    stop = {signal.SIGINT, signal.SIGTERM}
    # Blocked before the server's threads exist, so they inherit the mask and every stop
    # signal waits for sigwait here instead of landing on a worker thread.
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, stop)
    try:
        with ScoreLogServer(host, port) as receiver:
            print(
                f"conveyor scorelog on {host}:{receiver.port}: POST {LOG_PATH}?model=M&version=V "
                "(KServe inference-logger CloudEvents), GET /metrics, GET /healthz. "
                "Ctrl-C stops it.",
                flush=True,
            )
            received = signal.sigwait(stop)
            print(f"conveyor scorelog: {signal.Signals(received).name}, stopping", flush=True)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
    return 0
