"""A stateful fake Kubeflow Pipelines API server (REST ``/apis/v2beta1``) on 127.0.0.1.

Why: ``conveyor submit | schedule | runs`` talk to KFP through the real ``kfp.Client`` 2.17 and its
generated ``kfp_server_api`` client. Serving real HTTP (instead of mocking the client) exercises
the client's paths, query parameters, JSON field names, auth header and error mapping. Stdlib
only, so it runs wherever tests run.

Scope, on purpose: exactly the endpoints ``kfp.Client`` calls for those three operations, plus
get / delete of a recurring run:

    GET    /apis/v2beta1/healthz
    POST   /apis/v2beta1/experiments
    GET    /apis/v2beta1/experiments          (filter, namespace, sort_by, paging)
    GET    /apis/v2beta1/experiments/{id}
    POST   /apis/v2beta1/runs
    GET    /apis/v2beta1/runs                 (experiment_id, namespace, filter, sort_by, paging)
    GET    /apis/v2beta1/runs/{id}
    POST   /apis/v2beta1/recurringruns
    GET    /apis/v2beta1/recurringruns        (experiment_id, namespace, filter, sort_by, paging)
    GET    /apis/v2beta1/recurringruns/{id}
    DELETE /apis/v2beta1/recurringruns/{id}

Like the real server it answers snake_case JSON (proto field names), RFC 3339 timestamps, and an
unfinished run's ``finished_at`` as the zero Unix time. Its one camelCase quirk is kept: the list
of recurring runs is ``recurringRuns`` (the proto field is named so; the generated client maps
exactly that key). Errors are google.rpc.Status-like JSON (``code``, ``message``, ``details``,
plus ``error``). No pipelines / pipeline versions, no archiving, no multi-user authorization, no
scheduler: runs change state only through :meth:`FakeKfpApi.finish_run`.

What it validates (400 with a KFP-style error): a run or recurring run without exactly one of
``pipeline_spec`` / ``pipeline_version_reference``; a ``pipeline_spec`` that is not KFP IR (needs
``pipelineInfo.name`` and ``root``); runtime parameters the spec's root ``inputDefinitions`` does
not declare, of the wrong type, or required ones missing; a cron that is not 6 fields (seconds
first, as robfig/cron in the KFP scheduler reads it); ``max_concurrency`` outside 1..10; an
unknown experiment id; an empty display name; a duplicate experiment name (409).
"""

import copy
import json
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.fakes.http import BackgroundServer

Obj = dict[str, Any]
API = "/apis/v2beta1"
ZERO_TIME = "1970-01-01T00:00:00Z"  # what KFP answers for a timestamp that is not set yet
DEFAULT_PAGE_SIZE = 20
# google.rpc.Code -> HTTP status (grpc-gateway's mapping)
_HTTP = {3: 400, 5: 404, 6: 409, 16: 401, 12: 501}
_FILTER_OPS = {"EQUALS": 1, "NOT_EQUALS": 2}
_PARAM_TYPES: dict[str, tuple[type, ...]] = {
    "STRING": (str,),
    "NUMBER_INTEGER": (int,),
    "NUMBER_DOUBLE": (int, float),
    "BOOLEAN": (bool,),
    "STRUCT": (dict,),
    "LIST": (list,),
}


class ApiError(Exception):
    """A failed request, rendered as the JSON error body the KFP API server answers."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message

    @property
    def http_status(self) -> int:
        return _HTTP.get(self.code, 500)

    def body(self) -> Obj:
        return {"error": self.message, "code": self.code, "message": self.message, "details": []}


def _invalid(message: str) -> ApiError:
    return ApiError(3, message)


def _not_found(message: str) -> ApiError:
    return ApiError(5, message)


@dataclass
class Request:
    """One request as the fake saw it: ``body`` parsed from JSON (``None`` when empty), header
    names lower-cased."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    headers: dict[str, str] = field(repr=False)


def _rfc3339(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ir_of(spec: Any) -> Obj:
    """The PipelineSpec inside what the client sent: kfp.Client wraps it as
    ``{"pipeline_spec": ..., "platform_spec": ...}`` when the package has a platform spec."""
    if isinstance(spec, dict) and "pipeline_spec" in spec:
        spec = spec["pipeline_spec"]
    if not isinstance(spec, dict):
        raise _invalid("Invalid pipeline spec: pipeline_spec must be a JSON object")
    info, root = spec.get("pipelineInfo"), spec.get("root")
    if not isinstance(info, dict) or not info.get("name"):
        raise _invalid("Invalid pipeline spec: pipelineInfo.name is missing; is this KFP IR?")
    if not isinstance(root, dict):
        raise _invalid("Invalid pipeline spec: root is missing; is this KFP IR?")
    return spec


def _check_parameters(spec: Obj, runtime_config: Any) -> None:
    declared: Obj = spec["root"].get("inputDefinitions", {}).get("parameters", {}) or {}
    params = (runtime_config or {}).get("parameters") or {}
    if not isinstance(params, dict):
        raise _invalid("runtime_config.parameters must be an object")
    unknown = sorted(set(params) - set(declared))
    if unknown:
        raise _invalid(
            f"Invalid runtime parameters {unknown}: pipeline {spec['pipelineInfo']['name']!r} "
            f"declares {sorted(declared)}"
        )
    for name, value in params.items():
        kind = declared[name].get("parameterType", "STRING")
        allowed = _PARAM_TYPES.get(kind)
        wrong_bool = isinstance(value, bool) and kind in ("NUMBER_INTEGER", "NUMBER_DOUBLE")
        if allowed and (not isinstance(value, allowed) or wrong_bool):
            raise _invalid(
                f"Invalid runtime parameter {name!r}: expected {kind}, got "
                f"{type(value).__name__} {value!r}"
            )
    missing = sorted(
        name
        for name, d in declared.items()
        if not d.get("isOptional") and "defaultValue" not in d and name not in params
    )
    if missing:
        raise _invalid(f"Missing required runtime parameters {missing}")


def _parse_filter(raw: str | None) -> list[tuple[str, int, Any]]:
    """``[(key, op, value)]`` from a url-decoded, JSON-serialized ``Filter`` message."""
    if not raw:
        return []
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise _invalid(f"Invalid filter: not JSON ({exc})") from exc
    out = []
    for p in doc.get("predicates", []):
        op = p.get("operation")
        op = _FILTER_OPS.get(op, op) if isinstance(op, str) else op
        if op not in _FILTER_OPS.values():
            raise _invalid(f"Invalid filter: operation {p.get('operation')!r} not supported here")
        key = {"name": "display_name"}.get(p.get("key"), p.get("key"))
        if key != "display_name":
            raise _invalid(f"Invalid filter: key {p.get('key')!r} not supported here")
        value = p.get("stringValue", p.get("string_value"))
        out.append((key, op, value))
    return out


def _matches(obj: Obj, predicates: list[tuple[str, int, Any]]) -> bool:
    for key, op, value in predicates:
        equal = obj.get(key) == value
        if (op == 1 and not equal) or (op == 2 and equal):
            return False
    return True


def _page(
    items: list[Obj], query: dict[str, str], list_key: str, default_sort: str = "created_at"
) -> Obj:
    """Filter, sort and page ``items`` like the KFP list endpoints."""
    items = [o for o in items if _matches(o, _parse_filter(query.get("filter")))]
    sort_by = (query.get("sort_by") or default_sort).split()
    key = {"name": "display_name"}.get(sort_by[0], sort_by[0])
    if (
        key not in ("created_at", "display_name")
        or len(sort_by) > 2
        or (len(sort_by) == 2 and sort_by[1] != "desc")
    ):
        raise _invalid(f"Invalid sorting field: {query.get('sort_by')!r}")
    items = sorted(items, key=lambda o: (o.get(key) or "", o["_seq"]), reverse=len(sort_by) == 2)
    try:
        size = int(query.get("page_size") or DEFAULT_PAGE_SIZE)
        start = int(query.get("page_token") or 0)
    except ValueError as exc:
        raise _invalid(f"Invalid page_size or page_token: {exc}") from exc
    if size < 0:
        raise _invalid(f"Invalid page_size {size}")
    size = size or DEFAULT_PAGE_SIZE
    page = items[start : start + size]
    out: Obj = {"total_size": len(items)}
    if page:
        out[list_key] = page
    if start + size < len(items):
        out["next_page_token"] = str(start + size)
    return out


def _public(obj: Obj) -> Obj:
    return {k: copy.deepcopy(v) for k, v in obj.items() if not k.startswith("_")}


class FakeKfpApi(BackgroundServer):
    """In-memory KFP API (v2beta1 REST) over HTTP; see the module docstring for what it covers.

    ``token``: when set, every request must carry ``Authorization: Bearer <token>`` (else 401).
    ``list_includes_tasks``: whether ``GET /runs`` returns ``run_details.task_details`` (``GET
    /runs/{id}`` always does); off by default, so callers must not rely on the list having them.
    """

    def __init__(self, *, token: str | None = None, list_includes_tasks: bool = False) -> None:
        self.token = token
        self.list_includes_tasks = list_includes_tasks
        self.experiments: dict[str, Obj] = {}
        self.runs: dict[str, Obj] = {}
        self.recurring_runs: dict[str, Obj] = {}
        self.requests: list[Request] = []
        self._lock = threading.RLock()
        self._seq = 0
        self._clock = datetime.now(UTC).replace(microsecond=0)

    # lifecycle

    thread_name = "fake-kfp-api"

    def handler(self) -> type[BaseHTTPRequestHandler]:
        return _handler_for(self)

    # test hooks

    def calls(self, method: str, path: str) -> list[Request]:
        """Recorded requests with this method and exact path (query string excluded)."""
        with self._lock:
            return [r for r in self.requests if r.method == method and r.path == path]

    def finish_run(
        self, run_id: str, state: str = "SUCCEEDED", tasks: dict[str, str] | None = None
    ) -> Obj:
        """Set a run's state and its tasks (display name -> state) as the API reports them in
        ``run_details.task_details``; terminal states also set ``finished_at``."""
        with self._lock:
            run = self.runs[run_id]
            now = self._tick()
            run["state"] = state
            run["state_history"].append({"update_time": now, "state": state})
            if state in ("SUCCEEDED", "FAILED", "SKIPPED", "CANCELED"):
                run["finished_at"] = now
            run["run_details"]["task_details"] = [
                {
                    "run_id": run_id,
                    "task_id": str(uuid.uuid4()),
                    "display_name": name,
                    "create_time": run["created_at"],
                    "start_time": run["created_at"],
                    "end_time": now,
                    "state": task_state,
                }
                for name, task_state in (tasks or {}).items()
            ]
            return _public(run)

    # state

    def _tick(self) -> str:
        """A strictly increasing RFC 3339 time (seconds, as KFP stores them)."""
        now = datetime.now(UTC).replace(microsecond=0)
        self._clock = max(now, self._clock + timedelta(seconds=1))
        return _rfc3339(self._clock)

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _experiment(self, experiment_id: str) -> Obj:
        exp = self.experiments.get(experiment_id)
        if exp is None:
            raise _invalid(f"Invalid experiment id {experiment_id!r}: no such experiment")
        return exp

    def _create_experiment(self, body: Any) -> Obj:
        if not isinstance(body, dict) or not body.get("display_name"):
            raise _invalid("Experiment display_name is empty. Please specify a valid name")
        namespace = body.get("namespace") or ""
        for exp in self.experiments.values():
            if exp["display_name"] == body["display_name"] and exp["namespace"] == namespace:
                raise ApiError(
                    6,
                    f"Failed to create an experiment: an experiment named "
                    f"{body['display_name']!r} already exists in namespace {namespace!r}",
                )
        exp = {
            "experiment_id": str(uuid.uuid4()),
            "display_name": body["display_name"],
            "description": body.get("description") or "",
            "created_at": self._tick(),
            "namespace": namespace,
            "storage_state": "AVAILABLE",
            "last_run_created_at": ZERO_TIME,
            "_seq": self._next_seq(),
        }
        self.experiments[exp["experiment_id"]] = exp
        return exp

    def _default_experiment(self) -> Obj:
        for exp in self.experiments.values():
            if exp["display_name"] == "Default" and not exp["namespace"]:
                return exp
        return self._create_experiment({"display_name": "Default"})

    def _pipeline_source(self, body: Obj) -> Obj:
        spec, ref = body.get("pipeline_spec"), body.get("pipeline_version_reference")
        if spec is None and ref is None:
            raise _invalid(
                "Invalid pipeline source: neither pipeline_spec nor pipeline_version_reference"
            )
        if spec is not None and ref is not None:
            raise _invalid(
                "Invalid pipeline source: pipeline_spec and pipeline_version_reference both set"
            )
        if ref is not None:
            raise _not_found(f"Pipeline version {ref!r} not found (this fake has no pipelines)")
        ir = _ir_of(spec)
        _check_parameters(ir, body.get("runtime_config"))
        return ir

    def _create_run(self, body: Any) -> Obj:
        if not isinstance(body, dict):
            raise _invalid("The run must be a JSON object")
        if not body.get("display_name"):
            raise _invalid("The run name is empty. Please specify a valid name")
        exp = (
            self._experiment(body["experiment_id"])
            if body.get("experiment_id")
            else self._default_experiment()
        )
        self._pipeline_source(body)
        now = self._tick()
        run_id = str(uuid.uuid4())
        run = {
            "experiment_id": exp["experiment_id"],
            "run_id": run_id,
            "display_name": body["display_name"],
            "description": body.get("description") or "",
            "storage_state": "AVAILABLE",
            "pipeline_spec": body["pipeline_spec"],
            "runtime_config": body.get("runtime_config") or {},
            "service_account": body.get("service_account") or "pipeline-runner",
            "created_at": now,
            "scheduled_at": now,
            "finished_at": ZERO_TIME,
            "state": "PENDING",
            "state_history": [{"update_time": now, "state": "PENDING"}],
            "run_details": {"task_details": []},
            "_namespace": exp["namespace"],
            "_seq": self._next_seq(),
        }
        if body.get("recurring_run_id"):
            run["recurring_run_id"] = body["recurring_run_id"]
        self.runs[run_id] = run
        exp["last_run_created_at"] = now
        return run

    def _create_recurring_run(self, body: Any) -> Obj:
        if not isinstance(body, dict):
            raise _invalid("The recurring run must be a JSON object")
        if not body.get("display_name"):
            raise _invalid("The recurring run name is empty. Please specify a valid name")
        exp = self._experiment(body.get("experiment_id") or "")
        self._pipeline_source(body)
        concurrency = body.get("max_concurrency")
        try:
            concurrency = int(concurrency) if concurrency is not None else 0
        except (TypeError, ValueError):
            concurrency = 0
        if not 1 <= concurrency <= 10:
            raise _invalid(
                "The max concurrency of the recurring run is out of range. Support 1-10. "
                f"Received {body.get('max_concurrency')}."
            )
        trigger = body.get("trigger") or {}
        cron = (trigger.get("cron_schedule") or {}).get("cron")
        periodic = trigger.get("periodic_schedule")
        if cron is None and periodic is None:
            raise _invalid(
                "The recurring run has no trigger: set cron_schedule or periodic_schedule"
            )
        if cron is not None and len(str(cron).split()) != 6:
            raise _invalid(
                "Schedule cron is not a supported format(https://godoc.org/github.com/robfig/cron)."
                f" Error: expected exactly 6 fields (seconds first), found "
                f"{len(str(cron).split())}: {cron!r}"
            )
        if periodic is not None and int(periodic.get("interval_second") or 0) < 1:
            raise _invalid(
                "Found invalid period schedule interval. Set at interval to least 1 second."
            )
        now = self._tick()
        mode = body.get("mode") or "ENABLE"
        rr = {
            "recurring_run_id": str(uuid.uuid4()),
            "display_name": body["display_name"],
            "description": body.get("description") or "",
            "pipeline_spec": body["pipeline_spec"],
            "runtime_config": body.get("runtime_config") or {},
            "service_account": body.get("service_account") or "pipeline-runner",
            "max_concurrency": str(concurrency),  # int64: protojson renders it as a string
            "trigger": trigger,
            "mode": mode,
            "created_at": now,
            "updated_at": now,
            "status": "ENABLED" if mode == "ENABLE" else "DISABLED",
            "no_catchup": bool(body.get("no_catchup", False)),
            "namespace": exp["namespace"],
            "experiment_id": exp["experiment_id"],
            "_seq": self._next_seq(),
        }
        self.recurring_runs[rr["recurring_run_id"]] = rr
        return rr

    def _run_view(self, run: Obj, *, tasks: bool) -> Obj:
        out = _public(run)
        if not tasks:
            out.pop("run_details", None)
        return out

    # routing

    def _route(self, method: str, path: str, query: dict[str, str], body: Any) -> Obj:
        if not path.startswith(API + "/"):
            raise _not_found(f"Not Found: {path}")
        parts = path[len(API) + 1 :].split("/")
        kind, ident = parts[0], ("/".join(parts[1:]) or None)
        namespace = query.get("namespace")

        if kind == "healthz" and ident is None and method == "GET":
            return {"multi_user": False, "pipeline_store": "database"}

        if kind == "experiments":
            if ident is None and method == "POST":
                return _public(self._create_experiment(body))
            if ident is None and method == "GET":
                items = [
                    e
                    for e in self.experiments.values()
                    if namespace is None or e["namespace"] == namespace
                ]
                page = _page(items, query, "experiments")
                page["experiments"] = [_public(e) for e in page.get("experiments", [])]
                return page
            if ident is not None and method == "GET":
                exp = self.experiments.get(ident)
                if exp is None:
                    raise _not_found(f"Experiment {ident} not found")
                return _public(exp)

        if kind == "runs":
            if ident is None and method == "POST":
                return self._run_view(self._create_run(body), tasks=True)
            if ident is None and method == "GET":
                items = list(self.runs.values())
                if query.get("experiment_id"):
                    self._experiment(query["experiment_id"])
                    items = [r for r in items if r["experiment_id"] == query["experiment_id"]]
                elif namespace is not None:
                    items = [r for r in items if r["_namespace"] == namespace]
                page = _page(items, query, "runs")
                if "runs" in page:
                    page["runs"] = [
                        self._run_view(r, tasks=self.list_includes_tasks) for r in page["runs"]
                    ]
                return page
            if ident is not None and method == "GET":
                run = self.runs.get(ident)
                if run is None:
                    raise _not_found(f"Run {ident} not found")
                return self._run_view(run, tasks=True)

        if kind == "recurringruns":
            if ident is None and method == "POST":
                return _public(self._create_recurring_run(body))
            if ident is None and method == "GET":
                items = list(self.recurring_runs.values())
                if query.get("experiment_id"):
                    self._experiment(query["experiment_id"])
                    items = [r for r in items if r["experiment_id"] == query["experiment_id"]]
                elif namespace is not None:
                    items = [r for r in items if r["namespace"] == namespace]
                page = _page(items, query, "recurringRuns")
                if "recurringRuns" in page:
                    page["recurringRuns"] = [_public(r) for r in page["recurringRuns"]]
                return page
            if ident is not None and method in ("GET", "DELETE"):
                rr = self.recurring_runs.get(ident)
                if rr is None:
                    raise _not_found(f"Recurring run {ident} not found")
                if method == "DELETE":
                    del self.recurring_runs[ident]
                    return {}
                return _public(rr)

        raise _not_found(f"Not Found: {method} {path}")

    def _respond(
        self, method: str, raw_path: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, Obj]:
        """``headers`` with lower-case names."""
        split = urlsplit(raw_path)
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        body: Any = None
        parse_error: str | None = None
        if raw:
            try:
                body = json.loads(raw)
            except json.JSONDecodeError as exc:
                parse_error = f"the request body is not valid JSON: {exc}"
        with self._lock:
            self.requests.append(Request(method, split.path, query, body, dict(headers)))
            try:
                if self.token is not None:
                    expected = f"Bearer {self.token}"
                    if headers.get("authorization") != expected:
                        raise ApiError(16, "Unauthenticated: a valid bearer token is required")
                if parse_error:
                    raise _invalid(parse_error)
                return 200, self._route(method, split.path, query, body)
            except ApiError as exc:
                return exc.http_status, exc.body()


def _handler_for(fake: FakeKfpApi) -> type[BaseHTTPRequestHandler]:
    """A request handler class bound to one fake (http.server instantiates it per request)."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "FakeKfpApi/1"
        protocol_version = "HTTP/1.1"  # keep-alive, as urllib3 pools connections

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: ``fake.requests`` records every request."""

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            code, payload = fake._respond(self.command, self.path, headers, raw)
            data = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = _handle

    return Handler
