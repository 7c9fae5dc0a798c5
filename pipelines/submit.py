"""Submit, schedule and list Kubeflow Pipelines runs of a compiled Conveyor pipeline.

``conveyor submit | schedule | runs`` call these; so can a platform team's own tooling. All KFP
traffic goes through ``kfp.Client`` (2.17); the pure parts (package and parameter checks, cron
conversion, gate verdicts, the runs table) are plain functions, testable without a server.

Auth: a bearer token, if any, comes only from ``$KF_PIPELINES_TOKEN`` and is never printed or
logged. Errors: bad input (package, parameters, cron, duplicate schedule) raises
:class:`~conveyor.errors.BadInputError` (exit 2) before any request that would change state;
an unreachable or refusing KFP API raises :class:`KfpApiError` (exit 7) naming the host and
what to check next.
"""

import contextlib
import io
import json
import os
import warnings
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import kfp
import kfp_server_api
import urllib3
from croniter import croniter
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from conveyor.errors import BadInputError, ConveyorError
from conveyor.pipelines.k8s_native import load_package as read_package

TOKEN_ENV = "KF_PIPELINES_TOKEN"
DEFAULT_EXPERIMENT = "conveyor"
PORT_FORWARD = "kubectl -n kubeflow port-forward svc/ml-pipeline-ui 8080:80"
HEALTHZ_TIMEOUT_S = 10
# Display names of the training pipeline's tasks (pipelines/training/pipeline.py).
GATE_TASK = "quality gate"
TRIGGER_TASK = "check trigger"  # continuous_training (pipelines/continuous_training/pipeline.py)
APPROVE_TASK = "register (approve)"
HOLD_TASK = "register (hold)"
SUCCEEDED = "SUCCEEDED"
_ZERO_TIME = datetime(1970, 1, 1, tzinfo=UTC)  # KFP's "not set" timestamp


class KfpApiError(ConveyorError):
    """The Kubeflow Pipelines API could not be reached or refused a request."""

    exit_code = 7


# ------------------------------------------------------------------------------ the package


def load_package(package: str | Path) -> dict[str, Any]:
    """The pipeline spec (KFP IR) of a compiled pipeline YAML, checked as kfp.Client will read it.

    Raises:
        BadInputError: missing or unreadable file, not YAML, or not a compiled KFP pipeline
            (no ``pipelineInfo.name`` / ``root``, or fields the PipelineSpec proto rejects).
    """
    path = Path(package)
    if path.suffix not in (".yaml", ".yml"):
        raise BadInputError(
            f"{path}: expected a compiled pipeline .yaml (e.g. pipelines/training/pipeline.yaml)"
        )
    spec, platform = read_package(path)  # either document order, as KFP accepts it
    if not spec["pipelineInfo"].get("name") or not isinstance(spec.get("root"), dict):
        raise BadInputError(
            f"{path}: not a compiled KFP pipeline (pipelineInfo.name and root are required); "
            "compile it with `make compile` or kfp.compiler.Compiler"
        )
    try:  # kfp.Client parses it into the proto: fail here, before any request
        json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec())
        if platform is not None:
            json_format.ParseDict(platform, pipeline_spec_pb2.PlatformSpec())
    except (json_format.ParseError, TypeError, ValueError) as exc:
        raise BadInputError(f"{path}: not a valid KFP pipeline spec ({exc})") from None
    return spec


def declared_params(spec: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Root input parameters of a pipeline spec: name -> definition (``parameterType`` ...)."""
    params = spec.get("root", {}).get("inputDefinitions", {}).get("parameters", {})
    return dict(params or {})


def parse_params(pairs: Iterable[str], declared: Mapping[str, Any] | None = None) -> dict[str, str]:
    """``["k=v", ...]`` -> ``{"k": "v"}``; a value may contain ``=``; a later k wins.

    Raises:
        BadInputError: a pair without ``=`` or with an empty name, or (when ``declared`` is
            given) a name the pipeline does not declare.
    """
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise BadInputError(f"--param {pair!r}: expected NAME=VALUE")
        out[name.strip()] = value
    if declared is not None:
        _check_names(out, declared)
    return out


def _check_names(params: Mapping[str, Any], declared: Mapping[str, Any]) -> None:
    unknown = sorted(set(params) - set(declared))
    if unknown:
        known = ", ".join(sorted(declared)) or "(none)"
        raise BadInputError(
            f"unknown pipeline parameter(s) {', '.join(unknown)}: the pipeline declares {known}"
        )


def check_params(params: Mapping[str, Any], spec: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters checked against the spec's root inputs and typed as declared (a ``"5"`` for
    a NUMBER_INTEGER parameter becomes ``5``); required parameters must be present.

    Raises:
        BadInputError: unknown name, a value that does not fit the declared type, or a missing
            required parameter.
    """
    declared = declared_params(spec)
    _check_names(params, declared)
    out = {name: _typed(name, value, declared[name]) for name, value in params.items()}
    missing = sorted(
        name
        for name, d in declared.items()
        if not d.get("isOptional") and "defaultValue" not in d and name not in out
    )
    if missing:
        raise BadInputError(f"missing required pipeline parameter(s): {', '.join(missing)}")
    return out


def _typed(name: str, value: Any, definition: Mapping[str, Any]) -> Any:
    kind = definition.get("parameterType", "STRING")
    if not isinstance(value, str):
        return value
    try:
        if kind == "NUMBER_INTEGER":
            return int(value)
        if kind == "NUMBER_DOUBLE":
            return float(value)
        if kind == "BOOLEAN":
            lowered = value.strip().lower()
            if lowered not in ("true", "false"):
                raise ValueError("expected true or false")
            return lowered == "true"
        if kind in ("STRUCT", "LIST"):
            parsed = json.loads(value)
            if not isinstance(parsed, dict if kind == "STRUCT" else list):
                raise ValueError(f"expected a JSON {'object' if kind == 'STRUCT' else 'array'}")
            return parsed
    except ValueError as exc:
        raise BadInputError(f"parameter {name}={value!r}: not a valid {kind} ({exc})") from None
    return value


# ------------------------------------------------------------------------------------- cron

_UNSUPPORTED_CRON = ("L", "W", "#", "H")  # croniter extensions robfig/cron (KFP) rejects


def to_kfp_cron(expression: str) -> str:
    """A standard 5-field cron ("0 2 * * 0") as the 6-field form KFP's scheduler (robfig/cron,
    seconds first) expects ("0 0 2 * * 0"); a valid 6-field expression passes unchanged.

    Raises:
        BadInputError: not 5 or 6 fields, an invalid field, a croniter-only extension
            (L, W, #, H), or day-of-week 7 (robfig/cron accepts 0-6; use 0 for Sunday).
    """
    fields = expression.split()
    if len(fields) not in (5, 6):
        raise BadInputError(
            f"--cron {expression!r}: expected 5 fields 'minute hour day-of-month month "
            "day-of-week' (e.g. '0 2 * * 0', Sundays 02:00 UTC) or 6 with seconds first"
        )
    seconds, five = ("0", fields) if len(fields) == 5 else (fields[0], fields[1:])
    six = " ".join([seconds, *five])
    if not croniter.is_valid(" ".join(five)) or not croniter.is_valid(
        six, second_at_beginning=True
    ):
        raise BadInputError(f"--cron {expression!r}: not a valid cron expression")
    if any(mark in field.upper() for field in fields for mark in _UNSUPPORTED_CRON):
        raise BadInputError(
            f"--cron {expression!r}: L, W, # and H are not supported by the KFP scheduler "
            "(robfig/cron)"
        )
    dow = five[4].replace("-", ",").replace("/", ",").split(",")
    if "7" in dow:
        raise BadInputError(
            f"--cron {expression!r}: day-of-week 7 is not accepted by the KFP scheduler; "
            "use 0 for Sunday"
        )
    return six


def next_runs(kfp_cron: str, count: int = 3, start: datetime | None = None) -> list[str]:
    """The next ``count`` fire times (UTC, ISO 8601) of a 6-field KFP cron expression."""
    it = croniter(kfp_cron, start or datetime.now(UTC), second_at_beginning=True)
    return [it.get_next(datetime).astimezone(UTC).isoformat() for _ in range(count)]


# ---------------------------------------------------------------------------------- verdict


def derive_verdict(run_state: str | None, tasks: Iterable[tuple[str | None, str | None]]) -> str:
    """The training gate's verdict from a run's tasks ((display name, state) pairs).

    ``approve`` / ``hold`` when that register task succeeded; ``reject`` when the gate
    succeeded, no register task did, and the run itself succeeded; ``skipped`` when a
    continuous_training run succeeded without reaching the gate (its trigger check said skip);
    ``-`` otherwise (still running, failed before the gate, or not a training run).
    """
    tasks = list(tasks)
    names = {name for name, _ in tasks}
    succeeded = {name for name, state in tasks if state == SUCCEEDED}
    if APPROVE_TASK in succeeded:
        return "approve"
    if HOLD_TASK in succeeded:
        return "hold"
    if GATE_TASK in succeeded and run_state == SUCCEEDED:
        return "reject"
    if TRIGGER_TASK in succeeded and GATE_TASK not in names and run_state == SUCCEEDED:
        return "skipped"
    return "-"


def render_runs(rows: list[dict[str, Any]]) -> str:
    """A fixed-width text table of :func:`list_runs` rows."""
    if not rows:
        return "no runs"
    header = ("RUN ID", "NAME", "STATE", "CREATED", "FINISHED", "VERDICT")
    widths = (36, 40, 10, 20, 20, 7)
    lines = []
    for cells in [header] + [
        (
            r["run_id"],
            _clip(r["name"] or "-", 40),
            r["state"] or "-",
            r["created_at"] or "-",
            r["finished_at"] or "-",
            r["verdict"],
        )
        for r in rows
    ]:
        lines.append("  ".join(f"{c:<{w}}" for c, w in zip(cells, widths, strict=True)).rstrip())
    return "\n".join(lines)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


# ----------------------------------------------------------------------------- the client


def _normalize_host(host: str) -> str:
    host = (host or "").strip().rstrip("/")
    if not host.startswith(("http://", "https://")):
        raise BadInputError(
            f"--host {host!r}: expected an http:// or https:// URL of the KFP UI or API, e.g. "
            f"http://localhost:8080 after `{PORT_FORWARD}`"
        )
    return host


def _token() -> str | None:
    return os.environ.get(TOKEN_ENV) or None


def _unreachable(host: str, reason: object) -> str:
    return (
        f"cannot reach the Kubeflow Pipelines API at {host} ({reason}). Check --host (or "
        f"$KFP_HOST); for a cluster, run `{PORT_FORWARD}` and use --host http://localhost:8080; "
        f"behind an auth proxy, set {TOKEN_ENV} to a bearer token"
    )


def _api_message(exc: kfp_server_api.ApiException) -> str:
    body = exc.body.decode("utf-8", "replace") if isinstance(exc.body, bytes) else exc.body
    try:
        doc = json.loads(body or "")
    except ValueError:
        doc = None
    if isinstance(doc, dict) and (doc.get("message") or doc.get("error")):
        return str(doc.get("message") or doc.get("error"))
    return " ".join((body or "").split())[:200] or str(exc.reason)


def _refused(host: str, action: str, exc: kfp_server_api.ApiException) -> str:
    if not exc.status:  # SSL and other transport errors arrive as status 0
        return _unreachable(host, exc.reason)
    message = f"the KFP API at {host} refused to {action}: HTTP {exc.status}: {_api_message(exc)}"
    if exc.status in (401, 403):
        message += f" (set {TOKEN_ENV} to a bearer token this API accepts)"
    return message


@contextlib.contextmanager
def _api(host: str, action: str) -> Iterator[None]:
    """Around kfp.Client calls: its prints ("Experiment details: ...") and FutureWarning stay
    off stdout, and transport or API errors become :class:`KfpApiError`."""
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            yield
    except kfp_server_api.ApiException as exc:
        raise KfpApiError(_refused(host, action, exc)) from None
    except urllib3.exceptions.HTTPError as exc:
        raise KfpApiError(_unreachable(host, _reason(exc))) from None


def _reason(exc: urllib3.exceptions.HTTPError) -> str:
    inner = getattr(exc, "reason", None) or exc
    text = str(inner)
    return text.split(": ", 1)[-1] if "Failed to establish" in text else text


def _probe(host: str, token: str | None) -> None:
    """One healthz request, no retries, bounded time: kfp.Client's own healthz check retries
    5 times with 5 s pauses on an HTTP error, and a login page would be "healthy" to it."""
    config = kfp_server_api.Configuration(host=host)
    config.retries = 0
    if token:
        config.api_key["authorization"] = token
        config.api_key_prefix["authorization"] = "Bearer"
    api_client = kfp_server_api.ApiClient(config)
    try:
        with _api(host, "answer its health check"):
            resp = kfp_server_api.HealthzServiceApi(api_client).healthz_service_get_healthz(
                _preload_content=False, _request_timeout=HEALTHZ_TIMEOUT_S
            )
    finally:
        api_client.close()
    try:
        doc = json.loads(resp.data or b"")
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        kind = resp.headers.get("Content-Type", "unknown content")
        raise KfpApiError(
            f"{host}/apis/v2beta1/healthz answered {kind}, not the KFP API (a login page?). "
            f"Check --host; behind an auth proxy, set {TOKEN_ENV} to a bearer token"
        )


def client_for(host: str, namespace: str | None = None) -> kfp.Client:
    """A ``kfp.Client`` for ``host`` (token from ``$KF_PIPELINES_TOKEN`` only), after a bounded
    health check.

    Raises:
        BadInputError: ``host`` is not an http(s) URL.
        KfpApiError: the API is unreachable, refuses the credentials, or is not KFP.
    """
    host = _normalize_host(host)
    token = _token()
    _probe(host, token)
    with _api(host, "answer"):
        # namespace: a non-default value also skips the constructor's own healthz call
        return kfp.Client(host=host, namespace=namespace or "kubeflow", existing_token=token)


def _experiment(client: kfp.Client, host: str, name: str, namespace: str | None) -> Any:
    """The experiment named ``name``, created when missing."""
    try:
        with _api(host, f"get or create experiment {name!r}"):
            return client.create_experiment(name=name, namespace=namespace)
    except ValueError as exc:  # kfp: "Multiple experiments is found with name ..."
        raise KfpApiError(f"experiment {name!r} at {host}: {exc}") from None


# ---------------------------------------------------------------------------- operations


def submit(
    package: str | Path,
    host: str,
    experiment: str = DEFAULT_EXPERIMENT,
    params: dict[str, Any] | None = None,
    run_name: str | None = None,
    namespace: str | None = None,
) -> dict[str, str]:
    """Start one run of a compiled pipeline in ``experiment`` (created if missing).

    Returns:
        ``{"run_id", "run_name", "experiment_id", "url"}``.
    """
    spec = load_package(package)
    arguments = check_params(params or {}, spec)
    host = _normalize_host(host)
    name = run_name or f"{spec['pipelineInfo']['name']} {datetime.now(UTC):%Y-%m-%d %H:%M:%S}"
    client = client_for(host, namespace)
    exp = _experiment(client, host, experiment, namespace)
    with _api(host, "create the run"):
        result = client.create_run_from_pipeline_package(
            pipeline_file=str(package),
            arguments=arguments,
            run_name=name,
            experiment_id=exp.experiment_id,
        )
    run_id = result.run_id
    return {
        "run_id": run_id,
        "run_name": name,
        "experiment_id": exp.experiment_id,
        "url": f"{host}/#/runs/details/{run_id}",
    }


def schedule(
    package: str | Path,
    host: str,
    cron: str,
    experiment: str = DEFAULT_EXPERIMENT,
    job_name: str | None = None,
    params: dict[str, Any] | None = None,
    namespace: str | None = None,
    max_concurrency: int = 1,
    catchup: bool = False,
) -> dict[str, Any]:
    """Create an enabled recurring run (cron, UTC) of a compiled pipeline.

    ``cron`` is standard 5-field cron; it is sent in KFP's 6-field form (seconds first). At
    most ``max_concurrency`` runs at once; missed intervals are not backfilled unless
    ``catchup``. A recurring run with the same name in the experiment is an error, never a
    second schedule.

    Returns:
        ``{"recurring_run_id", "name", "cron" (as sent), "next_runs" (3, UTC ISO 8601),
        "experiment_id", "url"}``.
    """
    spec = load_package(package)
    arguments = check_params(params or {}, spec)
    kfp_cron = to_kfp_cron(cron)
    if not 1 <= max_concurrency <= 10:
        raise BadInputError(f"max concurrency {max_concurrency}: KFP accepts 1 to 10")
    host = _normalize_host(host)
    name = job_name or str(spec["pipelineInfo"]["name"])
    client = client_for(host, namespace)
    exp = _experiment(client, host, experiment, namespace)
    name_filter = json.dumps(
        {"predicates": [{"operation": "EQUALS", "key": "display_name", "stringValue": name}]}
    )
    with _api(host, "list recurring runs"):
        existing = client.list_recurring_runs(
            experiment_id=exp.experiment_id, filter=name_filter, page_size=100
        )
    for rr in existing.recurring_runs or []:
        if rr.display_name == name:  # the filter already says so; don't trust it blindly
            raise BadInputError(
                f"a recurring run named {name!r} already exists in experiment {experiment!r} "
                f"({rr.recurring_run_id}); pick another --name, or delete it first: in the KFP "
                f"UI (Experiments > {experiment} > Recurring runs > Delete), or with "
                f"kfp.Client(host={host!r}).delete_recurring_run({rr.recurring_run_id!r})"
            )
    with _api(host, "create the recurring run"):
        created = client.create_recurring_run(
            experiment_id=exp.experiment_id,
            job_name=name,
            cron_expression=kfp_cron,
            max_concurrency=max_concurrency,
            no_catchup=not catchup,
            params=arguments,
            pipeline_package_path=str(package),
            enabled=True,
        )
    return {
        "recurring_run_id": created.recurring_run_id,
        "name": name,
        "cron": kfp_cron,
        "next_runs": next_runs(kfp_cron),
        "experiment_id": exp.experiment_id,
        "url": f"{host}/#/recurringrun/details/{created.recurring_run_id}",
    }


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if value <= _ZERO_TIME:
        return None
    return str(value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))


def _tasks(run: Any) -> list[Any] | None:
    details = getattr(run, "run_details", None)
    return getattr(details, "task_details", None) if details is not None else None


def list_runs(
    host: str,
    experiment: str | None = None,
    limit: int = 10,
    namespace: str | None = None,
) -> list[dict[str, Any]]:
    """Recent runs, newest first, each with the training gate's verdict.

    Returns:
        ``[{"run_id", "name", "state", "created_at", "finished_at", "verdict"}]``; times are
        UTC RFC 3339, ``finished_at`` is ``None`` while a run is unfinished.
    """
    if limit < 1:
        raise BadInputError(f"--limit {limit}: must be at least 1")
    host = _normalize_host(host)
    client = client_for(host, namespace)
    experiment_id = None
    if experiment:
        try:
            with _api(host, f"find experiment {experiment!r}"):
                experiment_id = client.get_experiment(
                    experiment_name=experiment, namespace=namespace
                ).experiment_id
        except ValueError as exc:  # kfp: "No experiment is found with name ..."
            raise BadInputError(f"experiment {experiment!r} at {host}: {exc}") from None
    with _api(host, "list runs"):
        response = client.list_runs(
            page_size=limit,
            sort_by="created_at desc",
            experiment_id=experiment_id,
            namespace=namespace,
        )
    rows = []
    for run in (response.runs or [])[:limit]:
        tasks = _tasks(run)
        if not tasks:  # list views may leave task details out; the run itself has them
            with _api(host, f"get run {run.run_id}"):
                tasks = _tasks(client.get_run(run.run_id)) or []
        rows.append(
            {
                "run_id": run.run_id,
                "name": run.display_name,
                "state": run.state,
                "created_at": _iso(run.created_at),
                "finished_at": _iso(run.finished_at),
                "verdict": derive_verdict(run.state, ((t.display_name, t.state) for t in tasks)),
            }
        )
    return rows
