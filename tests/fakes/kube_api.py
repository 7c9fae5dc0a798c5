"""A stateful fake Kubernetes API server on 127.0.0.1 that also plays KServe's controller.

Why: the rollout code talks to the cluster through the official ``kubernetes`` client. Serving real
HTTP (instead of mocking the client) exercises the client's paths, content types and error mapping,
and the KServe emulation reproduces the status transitions (revisions, traffic split, rolled-out
revisions, readiness) that a canary rollout decides on. Stdlib plus conveyor's KServe rules,
so it runs wherever tests run.

Scope, on purpose: namespaced custom objects of any group, the cluster-scoped custom kinds in
``CLUSTER_SCOPED`` (KServe's ClusterServingRuntime), core Events and Namespaces (read), minimal
discovery. No watch, no dry-run, no server-side apply, no finalizers or garbage collection
(deleting an InferenceService drops its revisions). The emulated KServe controller runs
synchronously inside each write, so the write's response already carries the reconciled status;
its traffic rules are ``conveyor.rollout.kserve_status``, which ``rollout-sim`` follows too.
"""

import copy
import json
import re
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from conveyor.rollout.kserve_status import settle
from tests.fakes.http import BackgroundServer

KSERVE_GROUP = "serving.kserve.io"
ISVC_PLURAL = "inferenceservices"
TAG_ROUTING_ANNOTATION = "serving.kserve.io/enable-tag-routing"
VERBS = frozenset({"get", "list", "create", "update", "patch", "delete"})
KUBE_VERSION = {
    "major": "1",
    "minor": "30",
    "gitVersion": "v1.30.0",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2024-04-17T00:00:00Z",
    "goVersion": "go1.22.2",
    "compiler": "gc",
    "platform": "linux/amd64",
}
MERGE_PATCH_TYPES = frozenset(
    {"application/merge-patch+json", "application/strategic-merge-patch+json"}
)
JSON_PATCH_TYPE = "application/json-patch+json"
# Kinds for plurals nobody has created yet (list responses still need a <Kind>List).
_KNOWN_KINDS = {
    ("serving.kserve.io", "inferenceservices"): "InferenceService",
    ("serving.kserve.io", "servingruntimes"): "ServingRuntime",
    ("serving.kserve.io", "clusterservingruntimes"): "ClusterServingRuntime",
    ("networking.istio.io", "virtualservices"): "VirtualService",
    ("", "events"): "Event",
}
# Custom kinds served without a namespace (/apis/<group>/<version>/<plural>[/<name>]).
CLUSTER_SCOPED = frozenset({("serving.kserve.io", "clusterservingruntimes")})

Obj = dict[str, Any]
ObjectKey = tuple[str, str, str, str]  # (group, plural, namespace, name)


class ApiError(Exception):
    """A failed request, rendered as a Kubernetes ``Status`` body so clients map it faithfully."""

    def __init__(self, code: int, reason: str, message: str, details: Obj | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def body(self) -> Obj:
        status: Obj = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            status["details"] = self.details
        return status


@dataclass(frozen=True)
class _Resource:
    """The group/version/plural of a request path; ``group == ""`` is the core API."""

    group: str
    version: str
    plural: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """``inferenceservices.serving.kserve.io``: how the API server names a resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def is_isvc(self) -> bool:
        return self.group == KSERVE_GROUP and self.plural == ISVC_PLURAL

    @property
    def namespaced(self) -> bool:
        return (self.group, self.plural) not in CLUSTER_SCOPED


def _cluster(group: str, plural: str) -> bool:
    """A cluster-scoped kind: its path has no namespaces/<ns> segment."""
    return (group, plural) in CLUSTER_SCOPED


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _details(res: _Resource, name: str) -> Obj:
    return {"name": name, "group": res.group, "kind": res.plural}


def _not_found(res: _Resource, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{res.qualified} "{name}" not found', _details(res, name))


def _namespace_not_found(namespace: str) -> ApiError:
    details = {"name": namespace, "kind": "namespaces"}
    return ApiError(404, "NotFound", f'namespaces "{namespace}" not found', details)


def _conflict(res: _Resource, name: str) -> ApiError:
    message = (
        f'Operation cannot be fulfilled on {res.qualified} "{name}": the object has been '
        "modified; please apply your changes to the latest version and try again"
    )
    return ApiError(409, "Conflict", message, _details(res, name))


def _invalid(kind: str, res: _Resource, name: str, cause: str) -> ApiError:
    qualified_kind = f"{kind}.{res.group}" if res.group else kind
    message = f'{qualified_kind} "{name}" is invalid: {cause}'
    return ApiError(422, "Invalid", message, {**_details(res, name), "kind": kind})


def _bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


# --- patches -----------------------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge recursively, ``null`` deletes, the rest replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str) or (path and not path.startswith("/")):
        raise ValueError(f"invalid JSON pointer {path!r}")
    return [t.replace("~1", "/").replace("~0", "~") for t in path.split("/")[1:]]


def _index(container: list[Any], token: str, *, append_ok: bool) -> int:
    if append_ok and token == "-":
        return len(container)
    if not token.isdigit():
        raise ValueError(f"invalid array index {token!r}")
    index, limit = int(token), len(container) + (1 if append_ok else 0)
    if index >= limit:
        raise ValueError(f"array index {index} out of range")
    return index


def _resolve(doc: Any, tokens: list[str]) -> Any:
    for token in tokens:
        if isinstance(doc, dict) and token in doc:
            doc = doc[token]
        elif isinstance(doc, list):
            doc = doc[_index(doc, token, append_ok=False)]
        else:
            raise ValueError(f"path /{'/'.join(tokens)} does not exist")
    return doc


def _add(doc: Any, tokens: list[str], value: Any) -> Any:
    if not tokens:
        return value
    parent, last = _resolve(doc, tokens[:-1]), tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, append_ok=True), value)
    else:
        raise ValueError(f"cannot add below a scalar at /{'/'.join(tokens)}")
    return doc


def _remove(doc: Any, tokens: list[str]) -> Any:
    if not tokens:
        raise ValueError("cannot remove the whole document")
    parent, last = _resolve(doc, tokens[:-1]), tokens[-1]
    if isinstance(parent, dict) and last in parent:
        return parent.pop(last)
    if isinstance(parent, list):
        return parent.pop(_index(parent, last, append_ok=False))
    raise ValueError(f"path /{'/'.join(tokens)} does not exist")


def json_patch(doc: Any, operations: Any) -> Any:
    """RFC 6902 JSON patch (add, remove, replace, move, copy, test) applied to a copy of ``doc``."""
    if not isinstance(operations, list):
        raise ValueError("a JSON patch must be a list of operations")
    doc = copy.deepcopy(doc)
    for op in operations:
        if not isinstance(op, dict):
            raise ValueError(f"invalid operation {op!r}")
        kind, tokens = op.get("op"), _pointer(op.get("path"))
        if kind in ("add", "replace", "test") and "value" not in op:
            raise ValueError(f"{kind} operation needs a value")
        if kind == "add":
            doc = _add(doc, tokens, copy.deepcopy(op["value"]))
        elif kind == "remove":
            _remove(doc, tokens)
        elif kind == "replace":
            if tokens:
                _remove(doc, tokens)  # the target must exist
            doc = _add(doc, tokens, copy.deepcopy(op["value"]))
        elif kind in ("move", "copy"):
            source = _pointer(op.get("from"))
            value = _resolve(doc, source)
            value = _remove(doc, source) if kind == "move" else copy.deepcopy(value)
            doc = _add(doc, tokens, value)
        elif kind == "test":
            if _resolve(doc, tokens) != op["value"]:
                raise ValueError(f"test operation failed at {op.get('path')}")
        else:
            raise ValueError(f"unknown operation {kind!r}")
    return doc


# --- selectors ---------------------------------------------------------------------------------

_EXISTS = re.compile(r"^(!?)([\w./-]+)$")
_EQUALITY = re.compile(r"^([\w./-]+)\s*(==|=|!=)\s*([\w./-]*)$")
_SET = re.compile(r"^([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)$")
Requirement = tuple[str, str, frozenset[str]]  # (key, operator, values)


def _terms(selector: str) -> list[str]:
    """Split on commas outside parentheses (``env in (a,b),tier`` is two terms)."""
    terms, depth, current = [], 0, ""
    for char in selector:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            terms.append(current.strip())
            current = ""
        else:
            current += char
    terms.append(current.strip())
    return [t for t in terms if t]


def parse_label_selector(selector: str) -> list[Requirement]:
    """Label selector terms: ``k=v``, ``k==v``, ``k!=v``, ``k``, ``!k``, ``k in (a,b)``, notin."""
    requirements: list[Requirement] = []
    for term in _terms(selector):
        if match := _EQUALITY.match(term):
            key, op, value = match.groups()
            requirements.append((key, "!=" if op == "!=" else "=", frozenset({value})))
        elif match := _SET.match(term):
            key, op, raw = match.groups()
            requirements.append((key, op, frozenset(v.strip() for v in raw.split(","))))
        elif match := _EXISTS.match(term):
            negate, key = match.groups()
            requirements.append((key, "!exists" if negate else "exists", frozenset()))
        else:
            raise _bad_request(f"unable to parse requirement: {term!r}")
    return requirements


def labels_match(labels: dict[str, str], requirements: list[Requirement]) -> bool:
    for key, op, values in requirements:
        present, value = key in labels, labels.get(key)
        ok = {
            "=": present and value in values,
            "in": present and value in values,
            "!=": value not in values,
            "notin": value not in values,
            "exists": present,
            "!exists": not present,
        }[op]
        if not ok:
            return False
    return True


def _field(obj: Obj, path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return "" if value is None else str(value)


def parse_field_selector(selector: str) -> list[tuple[str, bool, str]]:
    """Field selector terms ``a.b=v``, ``a.b==v``, ``a.b!=v`` as (path, equal, value)."""
    requirements = []
    for term in _terms(selector):
        match = _EQUALITY.match(term)
        if not match:
            raise _bad_request(f"invalid field selector: {term!r}")
        path, op, value = match.groups()
        requirements.append((path, op != "!=", value))
    return requirements


def fields_match(obj: Obj, requirements: list[tuple[str, bool, str]]) -> bool:
    """A missing field reads as ``""``, as in the API server."""
    return all((_field(obj, path) == value) == equal for path, equal, value in requirements)


# --- KServe controller (conditions; the traffic rules are conveyor.rollout.kserve_status) -------


def _condition(old: Obj | None, kind: str, ok: bool, reason: str = "", message: str = "") -> Obj:
    """A Knative-style condition; lastTransitionTime only moves when the status flips."""
    status = "True" if ok else "False"
    unchanged = old is not None and old.get("status") == status and "lastTransitionTime" in old
    condition: Obj = {
        "type": kind,
        "status": status,
        "lastTransitionTime": old["lastTransitionTime"] if old and unchanged else _now(),
    }
    if not ok:
        if reason:
            condition["reason"] = reason
        if message:
            condition["message"] = message
    return condition


# --- the server --------------------------------------------------------------------------------


class FakeKubeAPI(BackgroundServer):
    """In-memory Kubernetes API over HTTP; see the module docstring for what it covers."""

    def __init__(
        self,
        namespaces: Iterable[str] = ("default",),
        *,
        url_for: Callable[[str, str], str] | None = None,
    ) -> None:
        self._namespaces = dict.fromkeys(namespaces, _now())
        self._url_for = url_for
        self._lock = threading.RLock()
        self._objects: dict[ObjectKey, Obj] = {}  # insertion order = creation order
        self._kinds: dict[tuple[str, str], str] = {}  # (group, plural) -> Kind
        self._group_versions: dict[str, str] = {}  # for discovery
        self._revisions: dict[tuple[str, str], list[Obj]] = {}
        self._fail_next: dict[tuple[str, str], tuple[str, str]] = {}
        self._denied: set[tuple[str, str, str | None]] = set()
        self._rules: list[Obj] | None = None  # None: no RBAC (everything allowed)
        self._cluster_rules: list[Obj] = []  # a ClusterRole's, once rules are enforced
        self._conflicts = 0
        self._resource_version = 0
        self._users: dict[str, str] = {}  # bearer token -> user name for 403 messages
        self.requests: list[tuple[str, str]] = []

    # lifecycle

    thread_name = "fake-kube-api"

    def handler(self) -> type[BaseHTTPRequestHandler]:
        return _handler_for(self)

    def write_kubeconfig(
        self,
        path: Path,
        *,
        context: str = "fake",
        namespace: str = "default",
        token: str = "fake-token",
        user: str | None = None,
    ) -> Path:
        """Write (or extend) a kubeconfig whose ``context`` points at this server.

        The file is JSON, which every YAML kubeconfig loader reads. Calling again with another
        context adds it to the same file and keeps ``current-context``, so ``--context`` switching
        can be tested. ``user`` (default ``system:serviceaccount:<namespace>:runner``) is the name
        the server reports for ``token`` in 403 messages.
        """
        path = Path(path)
        doc: Obj = {"apiVersion": "v1", "kind": "Config", "preferences": {}}
        if path.exists() and path.read_text().strip():
            try:
                doc = json.loads(path.read_text())
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path} is not a JSON kubeconfig written by FakeKubeAPI") from exc
        entries = {
            "clusters": {"name": context, "cluster": {"server": self.url}},
            "users": {"name": context, "user": {"token": token}},
            "contexts": {
                "name": context,
                "context": {"cluster": context, "user": context, "namespace": namespace},
            },
        }
        for section, entry in entries.items():
            kept = [e for e in doc.get(section) or [] if e.get("name") != context]
            doc[section] = [*kept, entry]
        if not doc.get("current-context"):
            doc["current-context"] = context
        with self._lock:
            self._users[token] = user or f"system:serviceaccount:{namespace}:runner"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc, indent=2) + "\n")
        return path

    # test-side access

    def seed(self, obj: Obj) -> Obj:
        """Store ``obj`` as if a client created it (runs the KServe controller); returns a copy.

        Unlike a client create, ``status`` is kept for kinds without an emulated controller, so
        tests can seed e.g. a VirtualService as a controller would have left it.
        """
        obj = copy.deepcopy(obj)
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        meta = obj.setdefault("metadata", {})
        if not api_version or not kind or not meta.get("name"):
            raise ValueError("seed needs apiVersion, kind and metadata.name")
        group, _, version = api_version.rpartition("/")
        with self._lock:
            res = _Resource(group, version, self._plural_for(group, kind))
            if res.namespaced:
                namespace = meta.setdefault("namespace", "default")
            else:
                namespace = ""
                meta.pop("namespace", None)
            if res.namespaced and namespace not in self._namespaces:
                raise ValueError(f'namespaces "{namespace}" not found')
            if (group, res.plural, namespace, meta["name"]) in self._objects:
                raise ValueError(f'{res.qualified} "{meta["name"]}" already exists')
            self._remember(res, kind)
            return copy.deepcopy(self._store_new(res, obj, keep_status=not res.is_isvc))

    def get(self, api_version: str, kind_plural: str, namespace: str, name: str) -> Obj | None:
        """A stored object (``namespace`` "" for a cluster-scoped one), or None."""
        group = api_version.rpartition("/")[0]
        with self._lock:
            obj = self._objects.get((group, kind_plural, namespace, name))
            return copy.deepcopy(obj) if obj is not None else None

    def events(self, namespace: str) -> list[Obj]:
        with self._lock:
            return [
                copy.deepcopy(obj)
                for (group, plural, ns, _), obj in self._objects.items()
                if group == "" and plural == "events" and ns == namespace
            ]

    def revisions(self, namespace: str, name: str) -> list[Obj]:
        with self._lock:
            return [
                {"name": r["name"], "predictor": copy.deepcopy(r["predictor"]), "ready": r["ready"]}
                for r in self._revisions.get((namespace, name), [])
            ]

    # fault injection

    def deny(self, verb: str, plural: str, namespace: str | None = None) -> None:
        """Answer ``verb`` on ``plural`` (in ``namespace``, or everywhere) with 403 Forbidden."""
        if verb not in VERBS:
            raise ValueError(f"unknown verb {verb!r}; expected one of {sorted(VERBS)}")
        with self._lock:
            self._denied.add((verb, plural, namespace))

    def allow_all(self) -> None:
        with self._lock:
            self._denied.clear()
            self._rules = None
            self._cluster_rules = []

    def enforce_rules(self, rules: list[Obj], cluster_rules: list[Obj] | None = None) -> None:
        """Authorize like RBAC with one Role of ``rules`` (namespaced requests only) and one
        ClusterRole of ``cluster_rules`` bound cluster-wide (every request, and the only way to
        reach a cluster-scoped kind): a request needs a rule naming its API group, resource and
        verb, and, when the rule has ``resourceNames``, a request for one of those names (so a
        named rule never allows create or list, as in Kubernetes)."""
        with self._lock:
            self._rules = copy.deepcopy(rules)
            self._cluster_rules = copy.deepcopy(cluster_rules or [])

    def conflict_next(self, n: int = 1) -> None:
        """Before each of the next ``n`` PATCH/PUTs to a custom object, bump its resourceVersion."""
        if n < 0:
            raise ValueError("n must be >= 0")
        with self._lock:
            self._conflicts = n

    def fail_next_revision(
        self,
        namespace: str,
        name: str,
        reason: str = "RevisionFailed",
        message: str = "container exited",
    ) -> None:
        """The next predictor revision created for this InferenceService never becomes ready."""
        with self._lock:
            self._fail_next[(namespace, name)] = (reason, message)

    # request handling

    def _respond(
        self, method: str, raw_path: str, content_type: str, raw: bytes, authorization: str
    ) -> tuple[int, Any]:
        path, _, query_string = raw_path.partition("?")
        query = dict(parse_qsl(query_string, keep_blank_values=True))
        token = authorization.removeprefix("Bearer ").strip()
        with self._lock:
            self.requests.append((method, path))
            user = self._users.get(token, "system:anonymous")
            try:
                return self._dispatch(method, path, query, content_type, raw, user)
            except ApiError as err:
                return err.code, err.body()
            except Exception as exc:  # a bug in the fake must surface as a 500, not a hang
                return 500, ApiError(500, "InternalError", f"FakeKubeAPI: {exc!r}").body()

    def _dispatch(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        content_type: str,
        raw: bytes,
        user: str,
    ) -> tuple[int, Any]:
        segments = [s for s in path.split("/") if s]
        match segments:
            case ["api", "v1", "namespaces", ns, "events", *rest] if len(rest) <= 1:
                res = _Resource("", "v1", "events")
                name = rest[0] if rest else None
                return self._serve(method, res, ns, name, None, query, content_type, raw, user)
            case ["apis", group, version, "namespaces", ns, plural, *rest] if len(rest) <= 2:
                res = _Resource(group, version, plural)
                name = rest[0] if rest else None
                sub = rest[1] if len(rest) == 2 else None
                if sub not in (None, "status"):
                    raise ApiError(
                        404, "NotFound", "the server could not find the requested resource"
                    )
                return self._serve(method, res, ns, name, sub, query, content_type, raw, user)
            case ["apis", grp, ver, plural, *rest] if len(rest) <= 1 and _cluster(grp, plural):
                res = _Resource(grp, ver, plural)
                name = rest[0] if rest else None
                return self._serve(method, res, "", name, None, query, content_type, raw, user)
        if method != "GET":
            raise ApiError(405, "MethodNotAllowed", f"{method} is not supported on {path}")
        return 200, self._read_only(segments)

    def _read_only(self, segments: list[str]) -> Any:
        """Version, discovery and namespaces: enough for clients that probe the server first."""
        match segments:
            case ["version"]:
                return dict(KUBE_VERSION)
            case ["api"]:
                address = self.url.removeprefix("http://")
                cidrs = [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}]
                return {
                    "kind": "APIVersions",
                    "versions": ["v1"],
                    "serverAddressByClientCIDRs": cidrs,
                }
            case ["apis"]:
                return {"kind": "APIGroupList", "apiVersion": "v1", "groups": self._groups()}
            case ["apis", group, version]:
                resources = [
                    {
                        "name": p,
                        "singularName": "",
                        "namespaced": (g, p) not in CLUSTER_SCOPED,
                        "kind": k,
                        "verbs": sorted(VERBS),
                    }
                    for (g, p), k in {**_KNOWN_KINDS, **self._kinds}.items()
                    if g == group
                ]
                return {
                    "kind": "APIResourceList",
                    "apiVersion": "v1",
                    "groupVersion": f"{group}/{version}",
                    "resources": resources,
                }
            case ["api", "v1", "namespaces"]:
                items = [self._namespace(ns) for ns in self._namespaces]
                meta = {"resourceVersion": str(self._resource_version)}
                return {
                    "kind": "NamespaceList",
                    "apiVersion": "v1",
                    "metadata": meta,
                    "items": items,
                }
            case ["api", "v1", "namespaces", ns]:
                if ns not in self._namespaces:
                    raise _namespace_not_found(ns)
                return self._namespace(ns)
        raise ApiError(404, "NotFound", "the server could not find the requested resource")

    def _groups(self) -> list[Obj]:
        versions = {group: "v1beta1" for group, _ in _KNOWN_KINDS if group}
        versions.update(self._group_versions)
        return [
            {
                "name": group,
                "versions": [{"groupVersion": f"{group}/{v}", "version": v}],
                "preferredVersion": {"groupVersion": f"{group}/{v}", "version": v},
            }
            for group, v in versions.items()
        ]

    def _namespace(self, name: str) -> Obj:
        meta = {"name": name, "creationTimestamp": self._namespaces[name]}
        return {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": meta,
            "status": {"phase": "Active"},
        }

    def _serve(
        self,
        method: str,
        res: _Resource,
        ns: str,
        name: str | None,
        sub: str | None,
        query: dict[str, str],
        content_type: str,
        raw: bytes,
        user: str,
    ) -> tuple[int, Any]:
        verb = {
            ("GET", False): "list",
            ("POST", False): "create",
            ("GET", True): "get",
            ("PUT", True): "update",
            ("PATCH", True): "patch",
            ("DELETE", True): "delete",
        }.get((method, name is not None))
        if verb is None or (sub is not None and verb == "delete"):
            raise ApiError(405, "MethodNotAllowed", f"{method} is not supported on this path")
        self._authorize(verb, res, ns, name, user)
        if res.namespaced and ns not in self._namespaces:
            raise _namespace_not_found(ns)
        if query.get("watch") in ("true", "1"):
            raise _bad_request("watch is not supported by FakeKubeAPI")
        if query.get("dryRun"):
            raise _bad_request("dryRun is not supported by FakeKubeAPI")
        if verb == "list":
            return 200, self._list(res, ns, query)
        if verb == "create":
            return 201, self._out(res, self._create(res, ns, _json_body(raw)))
        assert name is not None
        current = self._objects.get((res.group, res.plural, ns, name))
        if current is None:
            raise _not_found(res, name)
        if verb == "get":
            return 200, self._out(res, current)
        if verb == "delete":
            del self._objects[(res.group, res.plural, ns, name)]
            if res.is_isvc:
                self._revisions.pop((ns, name), None)
            details = {**_details(res, name), "uid": current["metadata"].get("uid", "")}
            status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
            return 200, {**status, "details": details}
        if res.group and self._conflicts > 0:  # a concurrent writer got there first
            self._conflicts -= 1
            current["metadata"]["resourceVersion"] = self._next_resource_version()
        body = _json_body(raw)
        if verb == "update":
            new = self._replaced(res, current, body)
        else:
            new = self._patched(res, current, body, content_type)
        return 200, self._out(res, self._commit(res, current, new, status_only=sub == "status"))

    def _allowed_by_rules(self, verb: str, res: _Resource, name: str | None) -> bool:
        if self._rules is None:
            return True
        # A Role (namespaced) never reaches a cluster-scoped kind; a ClusterRole reaches all.
        rules = [*self._rules, *self._cluster_rules] if res.namespaced else self._cluster_rules
        return any(
            res.group in rule.get("apiGroups", [])
            and res.plural in rule.get("resources", [])
            and verb in rule.get("verbs", [])
            and (not rule.get("resourceNames") or name in rule["resourceNames"])
            for rule in rules
        )

    def _authorize(self, verb: str, res: _Resource, ns: str, name: str | None, user: str) -> None:
        denied = (verb, res.plural, ns) in self._denied or (verb, res.plural, None) in self._denied
        if not denied and self._allowed_by_rules(verb, res, name):
            return
        target = f'{res.qualified} "{name}"' if name else res.qualified
        scope = f'in the namespace "{ns}"' if res.namespaced else "at the cluster scope"
        message = (
            f'{target} is forbidden: User "{user}" cannot {verb} resource "{res.plural}" '
            f'in API group "{res.group}" {scope}'
        )
        raise ApiError(403, "Forbidden", message, _details(res, name or ""))

    def _list(self, res: _Resource, ns: str, query: dict[str, str]) -> Obj:
        labels = parse_label_selector(query.get("labelSelector", ""))
        fields = parse_field_selector(query.get("fieldSelector", ""))
        items = [
            self._out(res, obj)
            for (group, plural, namespace, _), obj in self._objects.items()
            if (group, plural, namespace) == (res.group, res.plural, ns)
            and labels_match(obj["metadata"].get("labels") or {}, labels)
            and fields_match(obj, fields)
        ]
        kind = self._kind(res)
        return {
            "apiVersion": res.api_version,
            "kind": f"{kind}List" if kind else "List",
            "metadata": {"resourceVersion": str(self._resource_version)},
            "items": items,
        }

    def _create(self, res: _Resource, ns: str, body: Any) -> Obj:
        if not isinstance(body, dict):
            raise _bad_request("the request body must be a JSON object")
        obj = copy.deepcopy(body)
        if not res.group:  # core endpoints default the type from the URL
            obj.setdefault("apiVersion", res.api_version)
            obj.setdefault("kind", self._kind(res))
        self._check_type(res, obj)
        meta = obj.get("metadata")
        if not isinstance(meta, dict):
            meta = obj["metadata"] = {}
        if not res.namespaced:  # the API server clears it on cluster-scoped kinds
            meta.pop("namespace", None)
        elif meta.get("namespace") not in (None, "", ns):
            raise _bad_request(
                "the namespace of the provided object does not match the namespace sent on the "
                "request"
            )
        else:
            meta["namespace"] = ns
        if not meta.get("name"):
            if not meta.get("generateName"):
                cause = "metadata.name: Required value: name or generateName is required"
                raise _invalid(obj["kind"], res, "", cause)
            meta["name"] = f"{meta['generateName']}{uuid.uuid4().hex[:5]}"
        if (res.group, res.plural, ns, meta["name"]) in self._objects:
            message = f'{res.qualified} "{meta["name"]}" already exists'
            raise ApiError(409, "AlreadyExists", message, _details(res, meta["name"]))
        self._remember(res, obj["kind"])
        return self._store_new(res, obj, keep_status=not res.group)

    def _replaced(self, res: _Resource, current: Obj, body: Any) -> Obj:
        if not isinstance(body, dict):
            raise _bad_request("the request body must be a JSON object")
        self._check_type(res, body)
        meta, name = body.get("metadata") or {}, current["metadata"]["name"]
        if meta.get("name") != name:
            raise _bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name on the "
                f"URL ({name})"
            )
        if meta.get("namespace") not in (None, "", current["metadata"].get("namespace")):
            raise _bad_request(
                "the namespace of the provided object does not match the namespace sent on the "
                "request"
            )
        if not meta.get("resourceVersion"):
            cause = "metadata.resourceVersion: Invalid value: 0x0: must be specified for an update"
            raise _invalid(current["kind"], res, name, cause)
        if meta["resourceVersion"] != current["metadata"]["resourceVersion"]:
            raise _conflict(res, name)
        return copy.deepcopy(body)

    def _patched(self, res: _Resource, current: Obj, body: Any, content_type: str) -> Obj:
        media_type = content_type.split(";")[0].strip().lower()
        name = current["metadata"]["name"]
        try:
            if media_type in MERGE_PATCH_TYPES:
                if not isinstance(body, dict):
                    raise ValueError("a merge patch must be a JSON object")
                new = merge_patch(copy.deepcopy(current), body)
            elif media_type == JSON_PATCH_TYPE:
                new = json_patch(current, body)
            else:
                raise ApiError(
                    415,
                    "UnsupportedMediaType",
                    f"the body of the request was in an unknown format ({media_type}) - accepted "
                    "media types include: application/json-patch+json, "
                    "application/merge-patch+json, application/strategic-merge-patch+json",
                )
        except ValueError as exc:
            raise ApiError(
                422,
                "Invalid",
                f"the server rejected our request due to an error in our request: {exc}",
                _details(res, name),
            ) from exc
        meta = new.get("metadata") if isinstance(new, dict) else None
        if not isinstance(meta, dict):
            raise _invalid(current["kind"], res, name, "metadata: Required value")
        version = meta.get("resourceVersion")
        if version is not None and version != current["metadata"]["resourceVersion"]:
            raise _conflict(res, name)  # a resourceVersion in the patch is a precondition
        for field in ("name", "namespace"):
            if meta.get(field) != current["metadata"].get(field):
                cause = f"metadata.{field}: Invalid value: {meta.get(field)!r}: field is immutable"
                raise _invalid(current["kind"], res, name, cause)
        return new

    def _commit(self, res: _Resource, current: Obj, new: Obj, *, status_only: bool) -> Obj:
        """Store a replaced/patched object; server-owned fields and status stay the server's."""
        before = current["metadata"]
        if status_only:  # the status subresource: only status changes, nothing else
            result = copy.deepcopy(current)
            if "status" in new:
                result["status"] = new["status"]
            else:
                result.pop("status", None)
        else:
            result = new
            result["apiVersion"], result["kind"] = current["apiVersion"], current["kind"]
            meta = result["metadata"]
            for field in ("name", "namespace", "uid", "creationTimestamp", "generation"):
                if field in before:
                    meta[field] = before[field]
            if res.group:  # status is a subresource of custom objects
                if "status" in current:
                    result["status"] = copy.deepcopy(current["status"])
                else:
                    result.pop("status", None)
                if result.get("spec") != current.get("spec"):
                    meta["generation"] = before.get("generation", 1) + 1
            self._validate(res, result)
        result["metadata"]["resourceVersion"] = self._next_resource_version()
        key = (res.group, res.plural, before.get("namespace", ""), before["name"])
        self._objects[key] = result
        if res.is_isvc and not status_only:
            self._reconcile_isvc(result)
        return result

    def _store_new(self, res: _Resource, obj: Obj, *, keep_status: bool) -> Obj:
        meta = obj["metadata"]
        for field in ("uid", "resourceVersion", "generation", "creationTimestamp"):
            meta.pop(field, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = _now()
        if res.group:
            meta["generation"] = 1
        if not keep_status:
            obj.pop("status", None)
        self._validate(res, obj)
        meta["resourceVersion"] = self._next_resource_version()
        self._objects[(res.group, res.plural, meta.get("namespace", ""), meta["name"])] = obj
        if res.is_isvc:
            self._reconcile_isvc(obj)
        return obj

    def _validate(self, res: _Resource, obj: Obj) -> None:
        """The one CRD/webhook rule the controller relies on: canaryTrafficPercent is 0..100."""
        if not res.is_isvc:
            return
        predictor = (obj.get("spec") or {}).get("predictor")
        if not isinstance(predictor, dict):
            raise _invalid(
                obj["kind"], res, obj["metadata"]["name"], "spec.predictor: Required value"
            )
        percent = predictor.get("canaryTrafficPercent")
        if percent is not None and (
            not isinstance(percent, int) or isinstance(percent, bool) or not 0 <= percent <= 100
        ):
            cause = (
                f"spec.predictor.canaryTrafficPercent: Invalid value: {json.dumps(percent)}: "
                "must be an integer between 0 and 100"
            )
            raise _invalid(obj["kind"], res, obj["metadata"]["name"], cause)

    def _check_type(self, res: _Resource, obj: Obj) -> None:
        kind, api_version = obj.get("kind"), obj.get("apiVersion")
        if not kind:
            raise _bad_request(f"Object 'Kind' is missing in '{json.dumps(obj)[:200]}'")
        if api_version != res.api_version:
            raise _bad_request(
                f"the API version in the data ({api_version}) does not match the expected API "
                f"version ({res.api_version})"
            )
        known = self._kinds.get((res.group, res.plural))
        if known and kind != known:
            raise _bad_request(
                f"the kind in the data ({kind}) does not match the expected kind ({known})"
            )

    def _remember(self, res: _Resource, kind: str) -> None:
        """The first created object of a plural fixes its kind (and its group's version)."""
        self._kinds.setdefault((res.group, res.plural), kind)
        if res.group:
            self._group_versions.setdefault(res.group, res.version)

    def _kind(self, res: _Resource) -> str:
        key = (res.group, res.plural)
        return self._kinds.get(key) or _KNOWN_KINDS.get(key, "")

    def _plural_for(self, group: str, kind: str) -> str:
        for (g, plural), k in {**_KNOWN_KINDS, **self._kinds}.items():
            if g == group and k == kind:
                return plural
        lower = kind.lower()
        if lower.endswith("y"):
            return lower[:-1] + "ies"
        return lower + ("es" if lower.endswith("s") else "s")

    def _out(self, res: _Resource, obj: Obj) -> Obj:
        out = copy.deepcopy(obj)
        out["apiVersion"] = res.api_version
        return out

    def _next_resource_version(self) -> str:
        self._resource_version += 1
        return str(self._resource_version)

    # KServe controller

    def _reconcile_isvc(self, obj: Obj) -> None:
        """Write the status KServe (Serverless mode, Knative underneath) would converge to."""
        meta = obj["metadata"]
        ns, name = meta["namespace"], meta["name"]
        predictor = copy.deepcopy(obj["spec"]["predictor"])
        canary = predictor.pop("canaryTrafficPercent", None)
        revisions = self._revisions.setdefault((ns, name), [])
        if not revisions or revisions[-1]["predictor"] != predictor:
            failure = self._fail_next.pop((ns, name), None)
            revisions.append(
                {
                    "name": f"{name}-predictor-{len(revisions) + 1:05d}",
                    "predictor": predictor,
                    "ready": failure is None,
                    "failure": failure,
                }
            )
        latest = revisions[-1]
        ready = [r["name"] for r in revisions if r["ready"]]
        latest_ready = ready[-1] if ready else ""
        tag_routing = (meta.get("annotations") or {}).get(TAG_ROUTING_ANNOTATION) == "true"

        old = copy.deepcopy(obj.get("status") or {})
        component = (old.get("components") or {}).get("predictor") or {}
        component = settle(component, ns, name, canary, latest_ready, latest["name"], tag_routing)

        if self._url_for is not None:
            url = self._url_for(ns, name)
            isvc_url = address = component_url = url
        else:
            isvc_url = f"http://{name}.{ns}.example.com"
            address = f"http://{name}-predictor.{ns}.svc.cluster.local"
            component_url = f"http://{name}-predictor.{ns}.example.com"
        predictor_ready = bool(latest["ready"])
        if predictor_ready:  # Knative service Ready: component url/address propagate
            component["url"] = component_url
            component["address"] = {"url": address}

        reason, message = latest["failure"] or ("", "")
        old_conditions = {c["type"]: c for c in old.get("conditions") or []}
        conditions = [
            _condition(
                old_conditions.get("IngressReady"),
                "IngressReady",
                predictor_ready,
                "Predictor ingress not created",
            ),
            _condition(
                old_conditions.get("PredictorReady"),
                "PredictorReady",
                predictor_ready,
                reason,
                message,
            ),
            _condition(old_conditions.get("Ready"), "Ready", predictor_ready, reason, message),
        ]
        if predictor_ready:
            model_status: Obj = {
                "transitionStatus": "UpToDate",
                "states": {"activeModelState": "Loaded", "targetModelState": "Loaded"},
            }
        else:
            model_status = {
                "transitionStatus": "BlockedByFailedLoad",
                "states": {
                    "activeModelState": "Loaded" if latest_ready else "FailedToLoad",
                    "targetModelState": "FailedToLoad",
                },
                "lastFailureInfo": {
                    "reason": "ModelLoadFailed",
                    "message": message,
                    "modelRevisionName": latest["name"],
                },
            }
        status: Obj = {
            "observedGeneration": meta.get("generation", 1),
            "components": {"predictor": component},
            "conditions": conditions,
            "deploymentMode": "Serverless",
            "modelStatus": model_status,
        }
        if predictor_ready:  # the ingress exists: the isvc URL is published
            status["url"], status["address"] = isvc_url, {"url": address}
        else:  # keep whatever URL an earlier, healthy reconcile published
            for field in ("url", "address"):
                if field in old:
                    status[field] = old[field]
        obj["status"] = status


def _json_body(raw: bytes) -> Any:
    if not raw:
        raise _bad_request("the request body is empty")
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise _bad_request(f"the request body is not valid JSON: {exc}") from exc


def _handler_for(fake: FakeKubeAPI) -> type[BaseHTTPRequestHandler]:
    """A request handler class bound to one fake (http.server instantiates it per request)."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "FakeKubeAPI/1"

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: ``fake.requests`` records the requests tests care about."""

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            code, payload = fake._respond(
                self.command,
                self.path,
                self.headers.get("Content-Type", ""),
                raw,
                self.headers.get("Authorization", ""),
            )
            data = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    return Handler


def traffic_split(api: FakeKubeAPI, namespace: str, name: str) -> dict[str, int]:
    """Percent per revision of an InferenceService, summed (KServe may list one revision twice),
    zero-percent entries left out."""
    obj = api.get("serving.kserve.io/v1beta1", "inferenceservices", namespace, name)
    assert obj is not None, f"no InferenceService {namespace}/{name}"
    out: dict[str, int] = {}
    for entry in obj["status"]["components"]["predictor"]["traffic"]:
        out[entry["revisionName"]] = out.get(entry["revisionName"], 0) + entry["percent"]
    return {k: v for k, v in out.items() if v}
