"""Validate Kubernetes objects: CRD kinds against the vendored CRD schemas, core kinds with
kubernetes-validate. Shared by the serving, fake-API and manifest tests."""

import functools
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

SCHEMAS = Path(__file__).resolve().parent / "schemas"
CRD_FILES = ("serving.kserve.io_inferenceservices.yaml", "networking.istio.io_crds.yaml")
# The Kubernetes minor the core kinds are checked against (kubernetes-validate bundles it).
KUBE_VERSION = "1.30"
# libyaml's loader reads the 2 MB InferenceService CRD several times faster.
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@functools.cache
def _crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> openAPIV3Schema for every served version in the vendored CRDs."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for name in CRD_FILES:
        for doc in yaml.load_all((SCHEMAS / name).read_text(), Loader=LOADER):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = doc["spec"]["group"], doc["spec"]["names"]["kind"]
            for version in doc["spec"]["versions"]:
                if version.get("served"):
                    schema = version["schema"]["openAPIV3Schema"]
                    out[(f"{group}/{version['name']}", kind)] = schema
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


def validate_all(docs: list[dict[str, Any]]) -> None:
    for doc in docs:
        validate(doc)
