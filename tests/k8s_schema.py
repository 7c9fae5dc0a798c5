"""Validate Kubernetes objects: CRD kinds against the vendored CRD schemas, core kinds with
kubernetes-validate. Shared by the serving, fake-API and manifest tests."""

import functools
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

SCHEMAS = Path(__file__).resolve().parent / "schemas"
CRD_FILES = (
    "serving.kserve.io_inferenceservices.yaml",
    "serving.kserve.io_servingruntimes.yaml",
    "networking.istio.io_crds.yaml",
)
# KServe's ClusterServingRuntime is the cluster-scoped twin of ServingRuntime: both Go types
# embed the same ServingRuntimeSpec, so its objects are checked against ServingRuntime's schema
# (../shared/schemas holds only that CRD).
KSERVE_V1ALPHA1 = "serving.kserve.io/v1alpha1"
SAME_SCHEMA = {(KSERVE_V1ALPHA1, "ClusterServingRuntime"): (KSERVE_V1ALPHA1, "ServingRuntime")}
# Kubeflow Pipelines' Kubernetes-native store (Pipeline, PipelineVersion); vendored from
# kubeflow/pipelines, not ../shared/schemas (see schemas/README.md).
KFP_CRD_FILES = (
    "pipelines.kubeflow.org_pipelines.yaml",
    "pipelines.kubeflow.org_pipelineversions.yaml",
)
# The Kubernetes minor the core kinds are checked against (kubernetes-validate bundles it).
KUBE_VERSION = "1.30"
# libyaml's loader reads the 2 MB InferenceService CRD several times faster.
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@functools.cache
def _crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> openAPIV3Schema for every served version in the vendored CRDs."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for name in CRD_FILES + KFP_CRD_FILES:
        for doc in yaml.load_all((SCHEMAS / name).read_text(), Loader=LOADER):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = doc["spec"]["group"], doc["spec"]["names"]["kind"]
            for version in doc["spec"]["versions"]:
                if version.get("served"):
                    schema = version["schema"]["openAPIV3Schema"]
                    out[(f"{group}/{version['name']}", kind)] = schema
    for twin, original in SAME_SCHEMA.items():
        out[twin] = out[original]
    return out


def crd_kinds() -> set[tuple[str, str]]:
    return set(_crd_schemas())


def validate(obj: dict[str, Any]) -> None:
    """Raise AssertionError naming the object and the failing path when ``obj`` is invalid."""
    api_version, kind = obj.get("apiVersion", ""), obj.get("kind", "")
    name = f"{kind} {obj.get('metadata', {}).get('name', '?')}"
    schema = _crd_schemas().get((api_version, kind))
    if schema is not None:
        validator = jsonschema.Draft7Validator(schema)
        errors = sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path))
        if errors:
            lines = [
                f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors
            ]
            detail = "\n".join(lines)
            raise AssertionError(f"{name} ({api_version}) fails its CRD schema:\n{detail}")
        return
    try:
        kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        raise AssertionError(f"{name} ({api_version}) is invalid: {exc.message}") from exc
    except kubernetes_validate.SchemaNotFoundError as exc:
        raise AssertionError(
            f"{name}: no schema for {api_version} {kind} (not a core kind and no vendored CRD)"
        ) from exc


def pruned_fields(obj: dict[str, Any]) -> list[str]:
    """Paths of ``obj`` that its (structural) CRD schema does not declare. The API server
    drops them silently, or refuses the object under ``kubectl apply``'s default strict field
    validation; jsonschema alone accepts them. Only for kinds with a vendored CRD."""
    schema = _crd_schemas()[(obj.get("apiVersion", ""), obj.get("kind", ""))]
    return undeclared_fields(obj, schema, "")


def undeclared_fields(obj: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Paths in ``obj`` that the structural ``schema`` does not declare (see pruned_fields)."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    found: list[str] = []
    if isinstance(obj, dict):
        props, extra = schema.get("properties"), schema.get("additionalProperties")
        for key, value in obj.items():
            where = f"{path}/{key}"
            if path == "" and key in ("apiVersion", "kind", "metadata"):
                continue  # type and object meta are the API server's own, never pruned
            if props is not None and key in props:
                found += undeclared_fields(value, props[key], where)
            elif isinstance(extra, dict):
                found += undeclared_fields(value, extra, where)
            elif extra is not True:
                found.append(where)
    elif isinstance(obj, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(obj):
            found += undeclared_fields(item, schema["items"], f"{path}/{i}")
    return found


def validate_all(docs: list[dict[str, Any]]) -> None:
    for doc in docs:
        validate(doc)
