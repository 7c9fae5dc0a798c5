"""InferenceService and VirtualService objects for a registered model version.

Built with the kserve SDK's typed models, then serialised to plain dicts (the form the
Kubernetes API, kubectl and the schema checks take). Canary, promote and roll back are merge
patches that follow KServe's Serverless semantics: ``canaryTrafficPercent`` splits traffic
between the last revision rolled out at 100 % and the latest ready one; removing the field
promotes, 0 rolls back. Shadow is a second InferenceService plus an Istio VirtualService that
mirrors a share of requests to it (KServe has no native shadow).

Predictors run on Conveyor's own runtime ``conveyor-sklearn`` (manifests/runtime: its image is
built from the lock training uses, so the same scikit-learn) unless a model names another,
such as the stock ``kserve-sklearnserver``.
"""

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import Field

from conveyor.config import StrictModel
from conveyor.errors import BadInputError
from conveyor.registry import SKLEARN_VERSION_TAG

__all__ = [
    "ANALYSIS",
    "API_VERSION",
    "DEPLOYMENT_MODE",
    "ISTIO_API_VERSION",
    "LAST_CHANGE",
    "MODEL",
    "MODEL_SHA256",
    "MODEL_VERSION",
    "PHASE",
    "RUNTIME",
    "SHADOW_ROLE",
    "SKLEARN_VERSION",
    "STOCK_RUNTIME",
    "TAG_ROUTING",
    "VERSION_ENV",
    "Change",
    "Resources",
    "ServedModel",
    "apply_merge",
    "canary_patch",
    "canary_percent",
    "champion_of",
    "check_percent",
    "current_model",
    "inference_service",
    "merge_diff",
    "mirror_name",
    "promote_patch",
    "rollback_patch",
    "runtime_of",
    "shadow_name",
    "traffic_patch",
    "virtual_service",
]


GROUP, VERSION = "serving.kserve.io", "v1beta1"
API_VERSION = f"{GROUP}/{VERSION}"
ISTIO_API_VERSION = "networking.istio.io/v1beta1"
RUNTIME = "conveyor-sklearn"  # the default: manifests/runtime, same lock as training
STOCK_RUNTIME = "kserve-sklearnserver"  # KServe's own: usable once annotated SKLEARN_VERSION

ANN = "conveyor.io/"
MODEL = ANN + "model"  # label: registered model name
MODEL_VERSION = ANN + "model-version"  # annotation: the version in spec (latest revision)
MODEL_SHA256 = ANN + "model-sha256"
MODEL_URI = ANN + "model-uri"
CHAMPION = ANN + "champion"  # annotation: JSON of the rolled-out model while a canary runs
PHASE = ANN + "phase"  # Stable | Canary | RolledBack
LAST_CHANGE = ANN + "last-change"
SHADOW_ROLE = ANN + "role"
ANALYSIS = ANN + "analysis"  # annotation: the analysis state and its last decision (JSON)
# annotation on a ServingRuntime / ClusterServingRuntime: the scikit-learn its image pins
SKLEARN_VERSION = ANN + "sklearn-version"
VERSION_ENV = "CONVEYOR_MODEL_VERSION"  # read by conveyor.serving.runtime
TAG_ROUTING = "serving.kserve.io/enable-tag-routing"
DEPLOYMENT_MODE = "serving.kserve.io/deploymentMode"


@dataclass(frozen=True)
class ServedModel:
    """A registered version as the cluster sees it: where its one model file lives, its hash,
    the scikit-learn that pickled it and (once checked against it) the runtime serving it;
    an empty ``runtime`` keeps the InferenceService's own, or ``RUNTIME`` for a new one."""

    model_name: str
    version: str
    storage_uri: str
    sha256: str
    approved_by: str = ""
    sklearn_version: str = ""
    runtime: str = ""

    @classmethod
    def from_version(cls, v: dict[str, Any], *, require_approval: bool = False) -> "ServedModel":
        """From a ``ModelRegistry.get`` row; refuses versions that may not be served."""
        tags, label = v["tags"], f"{v['name']} v{v['version']}"
        if tags.get("conveyor.deployable") != "True" or v.get("status") != "approved":
            raise BadInputError(
                f"{label} is {v.get('status') or 'not approved'} (conveyor.deployable="
                f"{tags.get('conveyor.deployable', 'unset')}): only an approved version can be "
                f"deployed; approve it with `conveyor models approve {v['name']} {v['version']}`"
            )
        if require_approval and not tags.get("conveyor.approved_by"):
            raise BadInputError(
                f"{label} has no recorded approval (tag conveyor.approved_by) and the plan sets "
                f"require_approval: true; a person approves it with `conveyor models approve "
                f"{v['name']} {v['version']} --reason ...`"
            )
        uri, digest = tags.get("serving.uri", ""), tags.get("model.sha256", "")
        if not uri or not digest:
            raise BadInputError(f"{label} lacks the serving.uri or model.sha256 tag")
        return cls(
            v["name"], str(v["version"]), uri, digest, tags.get("conveyor.approved_by", ""),
            sklearn_version=tags.get(SKLEARN_VERSION_TAG, ""),
        )  # fmt: skip


class Resources(StrictModel):
    """Requests and limits of the model container (limits always set: no unbounded pods)."""

    cpu_request: str = Field("500m", description="CPU the model container requests, e.g. 500m")
    memory_request: str = Field("1Gi", description="memory the model container requests")
    cpu_limit: str = Field(
        "1",
        description="CPU limit of the model container; its whole cores (at least 1) also set "
        "OMP_NUM_THREADS",
    )
    memory_limit: str = Field("2Gi", description="memory limit of the model container")
    min_replicas: int = Field(
        1, ge=0, le=100, description="fewest predictor pods KServe keeps (0: scale to zero)"
    )
    max_replicas: int = Field(
        3, ge=1, le=1000, description="most predictor pods KServe's autoscaler may run"
    )


@dataclass
class Change:
    """Who changed a rollout, when and why: kept as an annotation and sent as an Event."""

    action: str
    reason: str
    actor: str
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    details: dict[str, Any] = field(default_factory=dict)

    def annotation(self) -> str:
        doc = {"action": self.action, "by": self.actor, "at": self.at, "why": self.reason}
        return json.dumps({**doc, **self.details}, sort_keys=True, separators=(",", ":"))


def _serialise(obj: Any) -> dict[str, Any]:
    from kubernetes.client import ApiClient

    return ApiClient().sanitize_for_serialization(obj)


def predictor(
    model: ServedModel, resources: Resources, service_account: str = "conveyor-model"
) -> dict[str, Any]:
    """``spec.predictor``: the model's runtime (default ``conveyor-sklearn``), predict_proba on,
    non-root, bounded resources."""
    from kserve import V1beta1ModelFormat, V1beta1ModelSpec, V1beta1PredictorSpec
    from kubernetes.client import (
        V1Capabilities,
        V1EnvVar,
        V1ResourceRequirements,
        V1SeccompProfile,
        V1SecurityContext,
    )

    spec = V1beta1PredictorSpec(
        service_account_name=service_account,
        min_replicas=resources.min_replicas,
        max_replicas=resources.max_replicas,
        model=V1beta1ModelSpec(
            model_format=V1beta1ModelFormat(name="sklearn"),
            runtime=model.runtime or RUNTIME,
            storage_uri=model.storage_uri,
            env=[
                # The stock runtime's switch to predict_proba; conveyor-sklearn always answers
                # probabilities and ignores it, so a canary may change runtime either way.
                V1EnvVar(name="PREDICT_PROBA", value="true"),
                # OpenMP threads = the CPU limit: more threads than cores spin and stall.
                V1EnvVar(name="OMP_NUM_THREADS", value=_omp_threads(resources.cpu_limit)),
                # conveyor-sklearn reports it in V2 answers and labels its metrics with it.
                V1EnvVar(name=VERSION_ENV, value=model.version),
            ],
            resources=V1ResourceRequirements(
                requests={"cpu": resources.cpu_request, "memory": resources.memory_request},
                limits={"cpu": resources.cpu_limit, "memory": resources.memory_limit},
            ),
            security_context=V1SecurityContext(
                run_as_non_root=True,
                allow_privilege_escalation=False,
                capabilities=V1Capabilities(drop=["ALL"]),
                seccomp_profile=V1SeccompProfile(type="RuntimeDefault"),
            ),
        ),
    )
    return _serialise(spec)


def score_log_url(base: str, model: ServedModel) -> str:
    """The inference-logger URL of one version: the score-log receiver labels the scores it
    receives by the query (each revision's spec carries its own version)."""
    from urllib.parse import urlencode, urlsplit, urlunsplit

    parts = urlsplit(base)
    query = urlencode({"model": model.model_name, "version": model.version})
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/log", query, ""))


def with_score_log(predictor_spec: dict[str, Any], model: ServedModel, base: str | None) -> dict:
    """``spec.predictor`` with KServe's inference logger sending responses to the score-log
    receiver at ``base`` (None: unchanged). Responses only: the receiver needs the scores."""
    if not base:
        return predictor_spec
    return {**predictor_spec, "logger": {"mode": "response", "url": score_log_url(base, model)}}


def _omp_threads(cpu_limit: str) -> str:
    """Whole cores in a CPU limit ("1", "2", "1500m"), at least one."""
    cores = float(cpu_limit[:-1]) / 1000 if cpu_limit.endswith("m") else float(cpu_limit)
    return str(max(1, int(cores)))


def model_annotations(model: ServedModel) -> dict[str, str]:
    return {
        MODEL_VERSION: model.version,
        MODEL_SHA256: model.sha256,
        MODEL_URI: f"models:/{model.model_name}/{model.version}",
    }


def inference_service(
    name: str,
    namespace: str,
    model: ServedModel,
    change: Change,
    *,
    resources: Resources | None = None,
    service_account: str = "conveyor-model",
    tag_routing: bool = True,
    role: str = "primary",
    score_log: str | None = None,
) -> dict[str, Any]:
    """A Serverless-mode InferenceService serving ``model`` at 100 % (its responses logged to
    the score-log receiver at ``score_log``, when given)."""
    from kserve import V1beta1InferenceService, V1beta1InferenceServiceSpec
    from kubernetes.client import V1ObjectMeta

    labels = {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/part-of": "conveyor",
        "app.kubernetes.io/managed-by": "conveyor",
        MODEL: model.model_name,
        SHADOW_ROLE: role,
    }
    annotations = {
        DEPLOYMENT_MODE: "Serverless",
        TAG_ROUTING: str(tag_routing).lower(),
        PHASE: "Stable",
        LAST_CHANGE: change.annotation(),
        **model_annotations(model),
    }
    isvc = V1beta1InferenceService(
        api_version=API_VERSION,
        kind="InferenceService",
        metadata=V1ObjectMeta(
            name=name, namespace=namespace, labels=labels, annotations=annotations
        ),
        spec=V1beta1InferenceServiceSpec(predictor={}),
    )
    out = _serialise(isvc)
    spec = predictor(model, resources or Resources(), service_account)
    out["spec"]["predictor"] = with_score_log(spec, model, score_log)
    return out


def check_percent(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise BadInputError(f"percent: {value!r} is outside 0..100 (an integer share of traffic)")
    return value


def merge_diff(current: Any, target: Any) -> Any:
    """The RFC 7386 merge patch turning ``current`` into ``target`` (null removes a key)."""
    if not isinstance(current, dict) or not isinstance(target, dict):
        return target
    patch: dict[str, Any] = {}
    for key in current.keys() - target.keys():
        patch[key] = None
    for key, value in target.items():
        if key not in current:
            patch[key] = value
        elif current[key] != value:
            patch[key] = merge_diff(current[key], value)
    return patch


def apply_merge(current: Any, patch: Any) -> Any:
    """What the API server does with an RFC 7386 merge patch (for dry runs)."""
    if not isinstance(patch, dict) or not isinstance(current, dict):
        return patch
    out = dict(current)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = apply_merge(out.get(key), value)
    return out


def current_model(isvc: dict[str, Any]) -> dict[str, Any]:
    """The model the InferenceService's spec serves (version, sha256, storageUri, predictor)."""
    ann = isvc.get("metadata", {}).get("annotations") or {}
    pred = dict(isvc.get("spec", {}).get("predictor") or {})
    pred.pop("canaryTrafficPercent", None)
    return {
        "version": ann.get(MODEL_VERSION, ""),
        "sha256": ann.get(MODEL_SHA256, ""),
        "storageUri": (pred.get("model") or {}).get("storageUri", ""),
        "predictor": pred,
    }


def runtime_of(isvc: dict[str, Any]) -> str:
    """The runtime ``spec.predictor.model.runtime`` names ("" when KServe picks one)."""
    model = (isvc.get("spec", {}).get("predictor") or {}).get("model") or {}
    return str(model.get("runtime") or "")


def champion_of(isvc: dict[str, Any]) -> dict[str, Any] | None:
    raw = (isvc.get("metadata", {}).get("annotations") or {}).get(CHAMPION)
    return json.loads(raw) if raw else None


def with_version_env(env: list[dict[str, Any]], version: str) -> list[dict[str, Any]]:
    """The container env with CONVEYOR_MODEL_VERSION set to ``version`` (added or replaced)."""
    return [e for e in env if e.get("name") != VERSION_ENV] + [
        {"name": VERSION_ENV, "value": version}
    ]


def canary_percent(isvc: dict[str, Any]) -> int | None:
    value = (isvc.get("spec", {}).get("predictor") or {}).get("canaryTrafficPercent")
    return None if value is None else int(value)


def canary_patch(
    isvc: dict[str, Any], model: ServedModel, percent: int, change: Change
) -> dict[str, Any]:
    """Start a canary of ``model`` at ``percent`` % beside the rolled-out champion (on
    ``model.runtime`` when set, else on the champion's runtime)."""
    percent = check_percent(percent)
    champion = current_model(isvc)
    target = dict(champion["predictor"])
    target["model"] = {**(target.get("model") or {}), "storageUri": model.storage_uri}
    if model.runtime:  # the runtime deploy checked; a rollback restores the champion's
        target["model"]["runtime"] = model.runtime
    target["model"]["env"] = with_version_env(target["model"].get("env") or [], model.version)
    target["canaryTrafficPercent"] = percent
    logger = target.get("logger") or {}
    if logger.get("url"):  # the new revision logs its scores under its own version
        target["logger"] = {**logger, "url": score_log_url(logger["url"], model)}
    return {
        "metadata": {
            "annotations": {
                **model_annotations(model),
                CHAMPION: json.dumps(champion, sort_keys=True, separators=(",", ":")),
                PHASE: "Canary",
                LAST_CHANGE: change.annotation(),
            }
        },
        "spec": {"predictor": merge_diff(isvc["spec"]["predictor"], target)},
    }


def traffic_patch(percent: int, change: Change) -> dict[str, Any]:
    """Move a running canary to ``percent`` % (no new revision)."""
    return {
        "metadata": {"annotations": {LAST_CHANGE: change.annotation()}},
        "spec": {"predictor": {"canaryTrafficPercent": check_percent(percent)}},
    }


def promote_patch(change: Change) -> dict[str, Any]:
    """Remove ``canaryTrafficPercent``: the latest ready revision takes 100 %."""
    return {
        "metadata": {
            "annotations": {CHAMPION: None, PHASE: "Stable", LAST_CHANGE: change.annotation()}
        },
        "spec": {"predictor": {"canaryTrafficPercent": None}},
    }


def rollback_patch(isvc: dict[str, Any], change: Change) -> dict[str, Any]:
    """All traffic back on the rolled-out revision (percent 0) and the champion's spec restored.

    One write: the restored spec makes a revision that stays at 0 %, so the champion's own
    revision keeps serving 100 % and the spec again says what is being served.
    """
    champion = champion_of(isvc)
    if champion is None:
        raise BadInputError(
            f"InferenceService {isvc['metadata']['name']!r} has no canary to roll back "
            f"(no {CHAMPION} annotation); nothing changed"
        )
    target = {**champion["predictor"], "canaryTrafficPercent": 0}
    return {
        "metadata": {
            "annotations": {
                MODEL_VERSION: champion["version"],
                MODEL_SHA256: champion["sha256"],
                MODEL_URI: _uri_of(isvc, champion["version"]),
                CHAMPION: None,
                PHASE: "RolledBack",
                LAST_CHANGE: change.annotation(),
            }
        },
        "spec": {"predictor": merge_diff(isvc["spec"]["predictor"], target)},
    }


def _uri_of(isvc: dict[str, Any], version: str) -> str:
    model = (isvc.get("metadata", {}).get("labels") or {}).get(MODEL, "")
    return f"models:/{model}/{version}" if model and version else ""


def shadow_name(name: str) -> str:
    return f"{name}-shadow"


def mirror_name(name: str) -> str:
    return f"{name}-mirror"


def predictor_host(name: str, namespace: str) -> str:
    return f"{name}-predictor.{namespace}.svc.cluster.local"


def virtual_service(
    name: str,
    namespace: str,
    percent: float,
    change: Change,
    *,
    hosts: list[str] | None = None,
    gateways: list[str] | None = None,
) -> dict[str, Any]:
    """Route the public host to the champion and mirror ``percent`` % to ``<name>-shadow``.

    Istio fires mirrored requests and drops their responses: callers only ever see the
    champion's answer.
    """
    if not 0 <= percent <= 100:
        raise BadInputError(f"percent: {percent!r} is outside 0..100")
    champion_host = predictor_host(name, namespace)
    return {
        "apiVersion": ISTIO_API_VERSION,
        "kind": "VirtualService",
        "metadata": {
            "name": mirror_name(name),
            "namespace": namespace,
            "labels": {"app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": "conveyor"},
            "annotations": {LAST_CHANGE: change.annotation()},
        },
        "spec": {
            "hosts": hosts or [f"{name}.{namespace}.svc.cluster.local"],
            "gateways": gateways or ["mesh"],
            "http": [
                {
                    "name": "champion-with-shadow",
                    "route": [{"destination": {"host": champion_host}, "weight": 100}],
                    "mirror": {"host": predictor_host(shadow_name(name), namespace)},
                    "mirrorPercentage": {"value": float(percent)},
                }
            ],
        },
    }
