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

Durable pending state (``state_dir``; ``$CONVEYOR_SCORELOG_STATE_DIR`` for ``conveyor
scorelog``, a PersistentVolumeClaim in ``manifests/components/scorelog``). Labels often come
hours after the prediction, longer than a pod lives, so with a state directory the pending
responses live in ``pending.sqlite3`` there (sqlite in WAL mode, ``synchronous=FULL``), one
row per (id, model, version) with its scores and the id's arrival order. Every change (a
logged response, an eviction, a matched feedback, a removed series) is committed before the
answer goes out, so a 200 means the change survives a SIGKILL or a node crash; a write that
fails is answered 503 ``unstored`` and changes nothing (the memory is reloaded from the file).
One writer thread commits whatever has queued up in one transaction (group commit: one fsync
per batch, not per event). On start the file is loaded back, least recent first, so eviction
order and ``conveyor_feedback_pending`` carry on where they were; the file is held with an
exclusive lock, so a second receiver on the same directory refuses to start. Counters and
histograms are not persisted: they restart at 0, which Prometheus reads as a counter reset
(``increase()`` and ``rate()`` absorb it), and the series of the restored versions exist at 0
from the start, so the first feedback after a restart is counted. Without a state directory
the pending map is in memory only, as before (tests, local simulations). KServe's agent does
not retry a failed delivery: events sent while no receiver is up are lost either way.
"""

import contextlib
import json
import logging
import math
import os
import queue
import re
import signal
import sqlite3
import sys
import threading
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
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
    "STATE_DIR_ENV",
    "STATE_FILE",
    "PendingStore",
    "ScoreLogServer",
    "UnparseableEvent",
    "positive_scores",
    "run",
]


log = logging.getLogger(__name__)

CE_REQUEST = "org.kubeflow.serving.inference.request"
CE_RESPONSE = "org.kubeflow.serving.inference.response"
OUTCOMES = (
    "observed", "ignored", "no_version", "bad_label", "unparseable", "too_large", "unstored",
)  # fmt: skip
EVENTS_METRIC = "conveyor_scorelog_events"
FEEDBACK_METRIC = "conveyor_feedback"
FEEDBACK_OUTCOMES = ("matched", "unknown_id", "bad", "unstored")

DEFAULT_HOST = "0.0.0.0"  # in a pod; tests and a workstation pass 127.0.0.1
DEFAULT_PORT = 8080
LOG_PATH = "/log"
FEEDBACK_PATH = "/feedback"
DEFAULT_MAX_PENDING = 100_000  # response ids kept for feedback; ~100 bytes each plus scores
DEFAULT_MAX_SERIES = 64  # (model, version) pairs exported at once; least recently logged go
LABEL_VALUE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")  # model names and versions
MAX_BODY_BYTES = 10 * 1024 * 1024
READ_TIMEOUT = 30.0  # seconds a connection may sit idle or dribble a body
STATE_DIR_ENV = "CONVEYOR_SCORELOG_STATE_DIR"  # `conveyor scorelog`'s state dir (the pod's PVC)
STATE_FILE = "pending.sqlite3"
STATE_SCHEMA = 1  # PRAGMA user_version of the file; another value is refused, not guessed at
LOCK_WAIT = 2.0  # seconds to wait for the state file's lock before saying who may hold it
COMMIT_WAIT = 30.0  # seconds a request waits for its commit before it is answered 503


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


# ------------------------------------------------------------------------------- state

_SCHEMA = """
CREATE TABLE pending (
    id TEXT NOT NULL,       -- the response's Ce-Id
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    seq INTEGER NOT NULL,   -- the id's arrival order (all its rows): the smallest is evicted first
    scores BLOB NOT NULL,   -- the rows' positive-class scores, little-endian doubles
    PRIMARY KEY (id, model, version)
)
"""
# A retry of the same response keeps its row (and so its place among the id's entries).
_UPSERT = (
    "INSERT INTO pending (id, model, version, seq, scores) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (id, model, version) DO UPDATE SET seq = excluded.seq, scores = excluded.scores"
)
_MAX_BATCH = 512  # changes committed in one transaction at most

_Ops = list[tuple[str, tuple[Any, ...]]]
_Item = tuple[_Ops, "Future[None]"]


def _blob(scores: "array[float]") -> bytes:
    """Little-endian doubles, so the file reads back the same on a node of any byte order."""
    if sys.byteorder == "little":
        return scores.tobytes()
    swapped = array("d", scores)
    swapped.byteswap()
    return swapped.tobytes()


def _scores(blob: bytes) -> "array[float]":
    scores = array("d")
    scores.frombytes(blob)
    if sys.byteorder != "little":
        scores.byteswap()
    return scores


class PendingStore:
    """The pending responses in ``<state_dir>/pending.sqlite3``, so that a restart loses none.

    sqlite (standard library, one file, crash-safe) in WAL mode with ``synchronous=FULL``: a
    committed change survives a killed process and a crashed node. One writer thread commits
    whatever was submitted meanwhile in one transaction, so under load one fsync serves many
    events. ``put``/``delete``/``drop_series`` must be called under the owner's ``lock``, in
    the order the owner changes its memory, so the file goes through the same states. When a
    commit fails, it is rolled back, every change not yet committed fails with it, and
    ``reload`` gets the file's state under ``lock``: memory and file agree again.
    """

    def __init__(
        self,
        state_dir: Path,
        lock: threading.Lock,
        reload: Callable[[OrderedDict[str, Pending]], None],
    ) -> None:
        self.path = state_dir / STATE_FILE
        self._lock, self._reload = lock, reload
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._seq = 0  # the last arrival number given out
        self._closed = False
        if state_dir.exists() and not state_dir.is_dir():
            raise ScoreLogError(f"score-log state dir {state_dir} is not a directory")
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ScoreLogError(
                f"score-log state dir {state_dir}: cannot create it ({exc.strerror or exc})"
            ) from exc
        self._db = self._open()
        self._thread = threading.Thread(target=self._write, name="scorelog-state", daemon=True)
        self._thread.start()

    def _error(self, exc: sqlite3.Error) -> ScoreLogError:
        """What went wrong with the file, and what to do about it."""
        name = getattr(exc, "sqlite_errorname", "")
        if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
            why = (
                "locked by another process: one receiver per state dir (is another "
                "`conveyor scorelog` still running on it?)"
            )
        elif name.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")):
            why = f"{exc}: not a readable state file; move it away to start without its responses"
        elif name.startswith(("SQLITE_CANTOPEN", "SQLITE_READONLY", "SQLITE_PERM", "SQLITE_IOERR")):
            why = (
                f"{exc} ({name}): the directory and the file must be writable by uid "
                f"{os.getuid()}, on a volume that is mounted and not full"
            )
        else:
            why = str(exc)
        return ScoreLogError(f"score-log state {self.path}: {why}")

    def _open(self) -> sqlite3.Connection:
        """Open, lock, check and (the first time) create the file; a ScoreLogError names it."""
        try:
            db = sqlite3.connect(
                self.path, timeout=LOCK_WAIT, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        try:
            # Held until close: a second receiver on the same directory (a surge pod, a copy
            # started by hand) cannot interleave changes of its own memory with ours.
            db.execute("PRAGMA locking_mode=EXCLUSIVE")
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode != "wal":
                raise ScoreLogError(
                    f"score-log state {self.path}: sqlite's WAL mode is not available there "
                    f"(journal_mode {mode!r})"
                )
            db.execute("PRAGMA synchronous=FULL")
            db.execute("BEGIN IMMEDIATE")  # takes the write lock: a read-only file fails here
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                db.execute(_SCHEMA)
                db.execute(f"PRAGMA user_version={STATE_SCHEMA}")
            elif version != STATE_SCHEMA:
                raise ScoreLogError(
                    f"score-log state {self.path}: schema {version}, this receiver reads "
                    f"{STATE_SCHEMA} (written by another Conveyor release?)"
                )
            db.execute("COMMIT")
            problems = [row[0] for row in db.execute("PRAGMA quick_check")]
            if problems != ["ok"]:
                raise ScoreLogError(
                    f"score-log state {self.path} is corrupt ({'; '.join(problems[:3])}); move "
                    "it away to start without its responses"
                )
        except BaseException as exc:
            db.close()
            if isinstance(exc, sqlite3.Error):
                raise self._error(exc) from exc
            raise
        return db

    def load(self) -> OrderedDict[str, Pending]:
        """The file's pending responses, least recently logged first."""
        pending: OrderedDict[str, Pending] = OrderedDict()
        rows = self._db.execute(
            "SELECT id, model, version, seq, scores FROM pending ORDER BY seq, rowid"
        )
        for ce_id, model, version, seq, blob in rows:
            pending.setdefault(ce_id, {})[(model, version)] = _scores(blob)
            self._seq = max(self._seq, seq)
        return pending

    def put(
        self, ce_id: str, model: str, version: str, scores: "array[float]", evicted: list[str]
    ) -> "Future[None]":
        """One logged response, its id now the most recent; the ids evicted to make room."""
        self._seq += 1
        ops: _Ops = [("DELETE FROM pending WHERE id = ?", (old,)) for old in evicted]
        ops.append(("UPDATE pending SET seq = ? WHERE id = ?", (self._seq, ce_id)))
        ops.append((_UPSERT, (ce_id, model, version, self._seq, _blob(scores))))
        return self._submit(ops)

    def delete(self, ce_ids: Iterable[str]) -> "Future[None]":
        """Ids labelled or evicted."""
        return self._submit([("DELETE FROM pending WHERE id = ?", (i,)) for i in ce_ids])

    def drop_series(self, pairs: Iterable[tuple[str, str]]) -> "Future[None]":
        """Every response of (model, version) pairs no longer exported."""
        sql = "DELETE FROM pending WHERE model = ? AND version = ?"
        return self._submit([(sql, pair) for pair in pairs])

    def _submit(self, ops: _Ops) -> "Future[None]":
        done: Future[None] = Future()
        if self._closed:
            done.set_exception(ScoreLogError(f"score-log state {self.path} is closed"))
        else:
            self._queue.put((ops, done))
        return done

    def _write(self) -> None:
        """The writer thread: each round commits everything queued, then answers it."""
        while True:
            batch = [self._queue.get()]
            with contextlib.suppress(queue.Empty):
                while len(batch) < _MAX_BATCH:
                    batch.append(self._queue.get_nowait())
            items = [item for item in batch if item is not None]
            if items:
                self._commit(items)
            if len(items) < len(batch):  # close() asked to stop
                return

    def _commit(self, items: list[_Item]) -> None:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            for ops, _ in items:
                for sql, params in ops:
                    self._db.execute(sql, params)
            self._db.execute("COMMIT")
        except Exception as exc:  # sqlite3.Error mostly (disk full, I/O error): fail, not die
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            self._fail(items, exc)
            return
        for _, done in items:
            done.set_result(None)

    def _fail(self, items: list[_Item], exc: Exception) -> None:
        """Roll memory back to the file: fail this batch and all still queued, reload."""
        stop = False
        with self._lock:  # no put() between the drain and the reload
            with contextlib.suppress(queue.Empty):
                while True:
                    item = self._queue.get_nowait()
                    if item is None:
                        stop = True
                    else:
                        items.append(item)
            try:
                self._reload(self.load())
            except sqlite3.Error as again:
                log.error("score-log state %s cannot be read back (%s)", self.path, again)
        if stop:
            self._queue.put(None)
        log.error("score-log state %s: %d change(s) not stored: %s", self.path, len(items), exc)
        error = ScoreLogError(f"score-log state {self.path}: {exc}")
        for _, done in items:
            done.set_exception(error)

    def close(self) -> None:
        """Commit what is queued, stop the writer, release the file; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout=COMMIT_WAIT)
        self._db.close()


@dataclass(frozen=True)
class _Claim:
    """A feedback item whose response left the pending map; ``done`` is its commit."""

    ce_id: str
    entry: Pending
    labels: list[int]
    done: "Future[None] | None"


class ScoreLog:
    """The receiver without HTTP: its own registry, the histograms, the counters, and the
    recent responses waiting for feedback (``max_pending`` ids, least recent evicted), kept
    in ``state_dir`` too when one is given (``PendingStore``) and restored from it."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        max_pending: int = DEFAULT_MAX_PENDING,
        max_series: int = DEFAULT_MAX_SERIES,
        state_dir: Path | None = None,
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
        # Counters and histograms live in memory only: after a restart they start at 0, which
        # Prometheus reads as a counter reset (increase() and rate() absorb it). What must not
        # be lost is what Prometheus cannot rebuild: the responses still waiting for labels.
        self._store: PendingStore | None = None
        if state_dir is not None:
            self._store = PendingStore(state_dir, self._lock, self._replace_pending)
            try:
                self._restore()
            except BaseException:
                self._store.close()
                raise

    def _replace_pending(self, pending: OrderedDict[str, Pending]) -> None:
        self._pending = pending

    def _restore(self) -> None:
        """Take the stored responses back, least recent first, and export their versions."""
        assert self._store is not None
        pending = self._store.load()
        evicted: list[str] = []
        while len(pending) > self.max_pending:  # started with a smaller --max-pending
            evicted.append(pending.popitem(last=False)[0])
        with self._lock:
            self._pending = pending
            done = self._store.delete(evicted) if evicted else None
        self._settle(done, evicted=len(evicted))
        pairs: OrderedDict[tuple[str, str], None] = OrderedDict()
        for entry in pending.values():
            for pair in entry:
                pairs[pair] = None
                pairs.move_to_end(pair)
        for model, version in pairs:  # least recently logged first, as admit() expects
            self.admit(model, version)
            # at 0 from the start on, so increase() counts the first observation after a
            # restart (a new pod's series start afresh in Prometheus)
            self.scores.labels(model=model, version=version)
            for label in ("0", "1"):
                self.feedback_scores.labels(model=model, version=version, label=label)
        log.info(
            "score-log state %s: %d pending response id(s) restored, %d evicted "
            "(max_pending %d)", self._store.path, len(self._pending), len(evicted),
            self.max_pending,
        )  # fmt: skip

    def close(self) -> None:
        """Commit what is queued and release the state file (no-op without one)."""
        if self._store is not None:
            self._store.close()

    def _settle(self, done: "Future[None] | None", *, evicted: int = 0) -> str | None:
        """Wait until a change is committed: None once it is, else why it is not. The
        eviction counter moves only for committed evictions (a failed commit restores them)."""
        if done is not None:
            try:
                done.result(timeout=COMMIT_WAIT)
            except TimeoutError:
                assert self._store is not None
                return f"score-log state {self._store.path}: no commit within {COMMIT_WAIT:g} s"
            except ScoreLogError as exc:
                return str(exc)
        if evicted:
            self.evicted.inc(evicted)
        return None

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
            if evicted and self._store is not None:
                # not waited for: the event that caused it waits for its own, later commit
                self._store.drop_series(evicted)
        for old in evicted:
            with contextlib.suppress(KeyError):
                self.scores.remove(*old)
            for label in ("0", "1"):
                with contextlib.suppress(KeyError):
                    self.feedback_scores.remove(*old, label)
            self.series_evicted.inc()
            log.warning("score series %s v%s evicted (max_series %d)", *old, self.max_series)

    def remember(self, ce_id: str, model: str, version: str, scores: list[float]) -> str | None:
        """Keep one observed response for its feedback (the most recent ``max_pending`` ids);
        None once kept (committed, with a state dir), else why it is not."""
        # Both label series exist from the first response on: increase() then counts the
        # first feedback too, instead of taking a series' first sample as its baseline.
        for label in ("0", "1"):
            self.feedback_scores.labels(model=model, version=version, label=label)
        evicted: list[str] = []
        done = None
        with self._lock:
            entry = self._pending.pop(ce_id, None) or {}
            entry[(model, version)] = array("d", scores)
            self._pending[ce_id] = entry
            while len(self._pending) > self.max_pending:
                evicted.append(self._pending.popitem(last=False)[0])
            if self._store is not None:
                done = self._store.put(ce_id, model, version, entry[(model, version)], evicted)
        return self._settle(done, evicted=len(evicted))

    def feedback_item(self, item: object) -> Outcome:
        """One feedback object: ``{"id": ..., "labels": [...]}`` or ``{"id": ..., "label": 0}``."""
        return self._label(self._claim(item))

    def _claim(self, item: object) -> "Outcome | _Claim":
        """Check one feedback item and take its response out of the pending map (its delete
        from the state file queued, not yet waited for); an Outcome when it ends here."""
        if not isinstance(item, dict):
            kind = type(item).__name__
            return Outcome(400, "bad", f'a JSON {kind}, not an object {{"id": ..., "labels": ...}}')
        ce_id = item.get("id")
        if not isinstance(ce_id, str) or not ce_id:
            return Outcome(400, "bad", f"`id` is {ce_id!r}, not the non-empty Ce-Id of a response")
        try:
            labels = _labels_of(item)
        except ValueError as exc:
            return Outcome(400, "bad", f"id {ce_id!r}: {exc}", id=ce_id)
        sizes: set[int] = set()
        done = None
        with self._lock:
            entry = self._pending.get(ce_id)
            if entry is not None:
                sizes = {len(scores) for scores in entry.values()}
                if sizes == {len(labels)}:
                    del self._pending[ce_id]
                    if self._store is not None:
                        done = self._store.delete([ce_id])
        if entry is None:
            return Outcome(
                404,
                "unknown_id",
                f"id {ce_id!r}: no logged response waits for feedback under this id "
                f"(never logged, already labelled, or evicted beyond the "
                f"{self.max_pending} most recent)",
                id=ce_id,
            )
        if sizes != {len(labels)}:
            rows = " / ".join(str(n) for n in sorted(sizes))
            return Outcome(
                400,
                "bad",
                f"id {ce_id!r}: {len(labels)} label(s) for a response of {rows} row(s); "
                "give one label per row, in row order",
                id=ce_id,
            )
        return _Claim(ce_id, entry, labels, done)

    def _label(self, claim: "Outcome | _Claim") -> Outcome:
        """Observe a claimed response's scores by label once its removal is committed."""
        if isinstance(claim, Outcome):
            return self.count_feedback(claim)
        ce_id, entry, labels = claim.ce_id, claim.entry, claim.labels
        problem = self._settle(claim.done)
        if problem is not None:
            return self.count_feedback(
                Outcome(503, "unstored", f"id {ce_id!r} not labelled: {problem}", id=ce_id)
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
        # every item's removal queued first, then waited for: a batch costs one or two
        # commits, not one each
        claims = [self._claim(item) for item in payload]
        results = [self._label(claim).fields() for claim in claims]
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
        ce_id = headers.get("ce-id", "")
        # kept (and, with a state dir, committed) before it is observed and answered 200: a
        # failed write is answered 503 and leaves no trace in the histogram
        problem = self.remember(ce_id, model, version, scores) if ce_id and scores else None
        if problem is not None:
            return self.count(
                Outcome(503, "unstored", f"{model} v{version}: not kept for feedback: {problem}")
            )
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
    started). IPv4 only. ``stop()`` is idempotent. With ``state_dir`` the pending responses
    are kept there and restored from it (``PendingStore``; the file is opened and locked
    here, and released by ``stop()``, after which this receiver cannot start again).
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
        state_dir: str | Path | None = None,
    ) -> None:
        self.max_body = max_body
        self.state_dir = None if state_dir is None else Path(state_dir)
        self.scorelog = ScoreLog(
            registry, max_pending=max_pending, max_series=max_series, state_dir=self.state_dir
        )
        self._released = False
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
        if self._released:
            raise ScoreLogError(
                f"this receiver released its state dir {self.state_dir} when it stopped; "
                "make a new ScoreLogServer to serve it again"
            )
        # read at each start, so a max_body set after construction still applies
        self.attrs = {"scorelog": self.scorelog, "max_body": self.max_body}
        try:
            return super().start()
        except OSError as exc:
            self.stop()  # releases the state file: nothing holds it for a receiver not serving
            raise ScoreLogError(
                f"score-log receiver cannot listen on {self.host}:{self.port}: {exc}"
            ) from exc

    def stop(self) -> None:
        """Stop serving, then commit what is queued and release the state file."""
        super().stop()
        if self.state_dir is not None:
            self.scorelog.close()
            self._released = True


def run(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    max_pending: int = DEFAULT_MAX_PENDING,
    max_series: int = DEFAULT_MAX_SERIES,
    state_dir: str | Path | None = None,
) -> int:
    """Serve until SIGTERM or Ctrl-C (``conveyor scorelog``); 0 on a clean stop.

    ``state_dir`` (else ``$CONVEYOR_SCORELOG_STATE_DIR``, else none: memory only) keeps the
    pending responses across restarts; a directory that cannot be used is a ScoreLogError
    naming it, before anything listens.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    state_dir = state_dir or os.environ.get(STATE_DIR_ENV) or None
    kept = f"kept in {state_dir}" if state_dir else "in memory only"
    stop = {signal.SIGINT, signal.SIGTERM}
    # Blocked before the server's threads exist, so they inherit the mask and every stop
    # signal waits for sigwait here instead of landing on a worker thread.
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, stop)
    try:
        with ScoreLogServer(
            host, port, max_pending=max_pending, max_series=max_series, state_dir=state_dir
        ) as receiver:
            print(
                f"conveyor scorelog on {host}:{receiver.port}: POST {LOG_PATH}?model=M&version=V "
                f"(KServe inference-logger CloudEvents), POST {FEEDBACK_PATH} (labels for the "
                f"{max_pending} most recent response ids, {kept}), GET /metrics, GET /healthz. "
                "Ctrl-C stops it.",
                flush=True,
            )
            received = signal.sigwait(stop)
            print(f"conveyor scorelog: {signal.Signals(received).name}, stopping", flush=True)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
    return 0
