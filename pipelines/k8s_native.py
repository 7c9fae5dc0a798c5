"""The Kubernetes-native form of a compiled pipeline, for teams that ``kubectl apply`` (or let
Argo CD / Flux apply) their pipelines instead of uploading them through the KFP API.

KFP 2.14+ can keep pipelines as custom resources (``pipelines.kubeflow.org/v2beta1``
``Pipeline`` and ``PipelineVersion``) instead of in its database. What this module writes
follows what the KFP backend itself reads and writes (kubeflow/pipelines
``backend/src/crd/kubernetes/v2beta1`` and ``backend/src/apiserver/webhook``):

* ``Pipeline``: ``metadata.name`` is the pipeline's name; ``spec`` has only ``description``
  in the CRD. (KFP SDK 2.17's own ``kubernetes_manifest_format`` output also writes
  ``spec.displayName``, which that CRD does not declare: the API server drops it, and
  ``kubectl apply``'s default strict field validation refuses it. It is left out here.)
* ``PipelineVersion``: ``spec.pipelineName`` names the ``Pipeline``; ``spec.pipelineSpec`` is
  the compiled IR, unchanged (the first YAML document of the package);
  ``spec.platformSpec`` is the second document verbatim (``{"platforms": {"kubernetes":
  ...}}``, written by kfp-kubernetes for secrets, node selectors, timeouts) when there is one.
  The backend joins the two with ``---`` again when it reads the object back
  (``PipelineVersion.ToModel``), so a run sees exactly the compiled package.
* ``metadata.name`` of the version is ``<pipeline>-<version>``, as the backend names the
  versions it creates (``NewPipelineVersionName``: both parts and the whole must be DNS-1123
  subdomains). ``spec.displayName`` keeps the version as given.
* No ``ownerReferences`` and no ``pipelines.kubeflow.org/pipeline-id`` label: both carry the
  live ``Pipeline``'s UID, which does not exist before the apply. KFP's mutating webhook adds
  them (and the ``pipelines.kubeflow.org/pipeline`` label, so the pipeline name must also be a
  valid label value, at most 63 characters). Its validating webhook refuses a version whose
  ``Pipeline`` does not exist yet (apply the list in order: ``Pipeline`` first) and any change
  to an existing version's spec: a changed pipeline needs a new ``version``.

Nothing is added to the IR and nothing is read from the environment, so the objects hold no
secret the package did not already hold; a parameter default that looks like a credential
(a URL with a password, or a non-empty default of a parameter named like a token or password)
is refused rather than copied into Git.

A client-side ``kubectl apply`` also stores the whole object in the
``kubectl.kubernetes.io/last-applied-configuration`` annotation, limited to 256 KiB in total;
a bigger ``PipelineVersion`` needs ``kubectl apply --server-side`` (Argo CD:
``ServerSideApply=true``). :func:`last_applied_size` tells which side of it a version is on.
"""

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from conveyor.errors import BadInputError

API_VERSION = "pipelines.kubeflow.org/v2beta1"
# metadata.name of a custom resource: a DNS-1123 subdomain.
MAX_NAME = 253
# The pipeline name is also the value of KFP's pipelines.kubeflow.org/pipeline label.
MAX_PIPELINE_NAME = 63
# kubectl's client-side apply keeps the object in one annotation; annotations total 256 KiB.
LAST_APPLIED_LIMIT = 262_144

_LABEL_PART = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN = re.compile(rf"^{_LABEL_PART}(\.{_LABEL_PART})*$")
_DNS1123_LABEL = re.compile(rf"^{_LABEL_PART}$")
_VERSION = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")
_URL_PASSWORD = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/@\s:]*:[^/@\s]+@")
_SECRET_NAME = re.compile(
    r"(?i)(^|[_-])(token|password|passwd|secret|api_?key|credentials?)($|[_-])"
)
_LABELS = {"app.kubernetes.io/part-of": "conveyor"}


def kubernetes_native(
    package: str | Path | dict[str, Any],
    namespace: str,
    version: str,
    pipeline_name: str | None = None,
    description: str = "",
) -> list[dict[str, Any]]:
    """``[Pipeline, PipelineVersion]`` for a compiled KFP package, ready for ``kubectl apply``.

    Args:
        package: path of a compiled pipeline YAML (one document, or two when kfp-kubernetes
            added a platform spec), or the already-loaded pipeline spec (IR) as a dict.
        namespace: namespace of both objects (a DNS-1123 label).
        version: this version of the pipeline, e.g. ``1.4.0`` or a git commit; letters,
            digits, ``.``, ``-`` and ``_``, starting and ending with a letter or digit. The
            object name lowercases it and turns ``_`` into ``-``; ``spec.displayName`` keeps it.
        pipeline_name: name of the ``Pipeline``; defaults to the IR's ``pipelineInfo.name``.
        description: for both objects; defaults to the IR's ``pipelineInfo.description``.

    Returns:
        The ``Pipeline`` and the ``PipelineVersion``, in the order they must be applied.

    Raises:
        BadInputError: unreadable package, a name or version Kubernetes would refuse, or a
            parameter default that looks like a credential.
    """
    pipeline_spec, platform_spec = load_package(package)
    _refuse_credentials(pipeline_spec, platform_spec)
    info = pipeline_spec.get("pipelineInfo") or {}
    name = _pipeline_name(pipeline_name if pipeline_name is not None else info.get("name"))
    _check_dns_label("namespace", namespace)
    version_name = _version_name(name, version)
    text = description or str(info.get("description") or "")

    pipeline: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": "Pipeline",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(_LABELS)},
        "spec": {"description": text} if text else {},
    }
    spec: dict[str, Any] = {
        "pipelineName": name,
        "displayName": version,
        "pipelineSpec": copy.deepcopy(pipeline_spec),
    }
    if platform_spec:
        spec["platformSpec"] = copy.deepcopy(platform_spec)
    if text:
        spec["description"] = text
    pipeline_version: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": "PipelineVersion",
        "metadata": {"name": version_name, "namespace": namespace, "labels": dict(_LABELS)},
        "spec": spec,
    }
    return [pipeline, pipeline_version]


def dump_all(objs: list[dict[str, Any]]) -> str:
    """Multi-document YAML of ``objs`` (each starting with ``---``), key order kept."""
    return yaml.safe_dump_all(objs, sort_keys=False, explicit_start=True, allow_unicode=True)


def last_applied_size(obj: dict[str, Any]) -> int:
    """Bytes the ``last-applied-configuration`` annotation of a client-side ``kubectl apply``
    would take for ``obj`` (compact JSON); above :data:`LAST_APPLIED_LIMIT` only a server-side
    apply works."""
    return len(json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode())


def load_package(
    package: str | Path | dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(pipeline spec, platform spec or None) of a compiled package; either document order."""
    if isinstance(package, dict):
        docs: list[Any] = [package]
        where = "pipeline spec dict"
    else:
        path = Path(package)
        where = str(path)
        try:
            docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
        except FileNotFoundError:
            raise BadInputError(f"{where}: cannot read: no such pipeline package") from None
        except OSError as exc:
            raise BadInputError(f"{where}: cannot read the compiled pipeline ({exc})") from exc
        except yaml.YAMLError as exc:
            raise BadInputError(f"{where}: not valid YAML ({exc})") from exc
    pipeline_specs, platform_specs = [], []
    for doc in docs:
        if not isinstance(doc, dict):
            raise BadInputError(f"{where}: a document is {type(doc).__name__}, not a mapping")
        if "kind" in doc and "apiVersion" in doc:
            raise BadInputError(
                f"{where}: already a Kubernetes object ({doc['apiVersion']} {doc['kind']}); "
                "pass the compiled pipeline spec"
            )
        if "pipelineInfo" in doc:
            pipeline_specs.append(doc)
        elif "platforms" in doc:
            platform_specs.append(doc)
        else:
            raise BadInputError(
                f"{where}: not a compiled KFP pipeline: a document with keys {sorted(doc)[:6]} "
                "is neither a pipeline spec (pipelineInfo) nor a platform spec (platforms); "
                "compile it with `make compile` or kfp.compiler.Compiler"
            )
    if len(pipeline_specs) != 1 or len(platform_specs) > 1:
        raise BadInputError(
            f"{where}: {len(pipeline_specs)} pipeline spec(s) and {len(platform_specs)} "
            "platform spec(s); a compiled package has exactly 1 and at most 1"
        )
    platform = platform_specs[0] if platform_specs else None
    return pipeline_specs[0], platform if platform and platform.get("platforms") else None


def _pipeline_name(raw: object) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise BadInputError(
            f"pipeline name {raw!r}: empty; give pipeline_name or compile with a pipeline name"
        )
    name = re.sub(r"[^a-z0-9-]+", "-", raw.strip().lower()).strip("-")
    name = re.sub(r"-{2,}", "-", name)
    if not name:
        raise BadInputError(f"pipeline name {raw!r}: no letter or digit to build a name from")
    if len(name) > MAX_PIPELINE_NAME:
        raise BadInputError(
            f"pipeline name {name!r} is {len(name)} characters > {MAX_PIPELINE_NAME} (it is also "
            "the value of the pipelines.kubeflow.org/pipeline label); pass a shorter pipeline_name"
        )
    return name


def _version_name(pipeline: str, version: str) -> str:
    if not isinstance(version, str) or not _VERSION.fullmatch(version):
        raise BadInputError(
            f"version {version!r}: must be 1+ letters, digits, '.', '-' or '_', starting and "
            "ending with a letter or digit (it becomes part of a DNS-1123 object name)"
        )
    cleaned = version.lower().replace("_", "-")
    name = f"{pipeline}-{cleaned}"
    if not _DNS1123_SUBDOMAIN.fullmatch(cleaned):
        raise BadInputError(
            f"version {version!r}: as {cleaned!r} it is not a DNS-1123 subdomain (every "
            "'.'-separated part must start and end with a letter or digit)"
        )
    if len(name) > MAX_NAME:
        raise BadInputError(
            f"version {version!r}: PipelineVersion name {name[:40]!r}... is {len(name)} "
            f"characters > {MAX_NAME} (DNS-1123 subdomain)"
        )
    return name


def _check_dns_label(what: str, value: str) -> None:
    if not isinstance(value, str) or len(value) > 63 or not _DNS1123_LABEL.fullmatch(value):
        raise BadInputError(
            f"{what} {value!r}: must be a DNS-1123 label (lowercase letters, digits and '-', "
            "starting and ending with a letter or digit, at most 63 characters)"
        )


def _strings(node: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _strings(value, f"{path}/{i}")
    elif isinstance(node, str):
        yield path, node


def _refuse_credentials(
    pipeline_spec: dict[str, Any], platform_spec: dict[str, Any] | None
) -> None:
    """Refuse, naming where (never the value), what would put a credential into Git."""
    for doc, label in ((pipeline_spec, "pipelineSpec"), (platform_spec or {}, "platformSpec")):
        for path, text in _strings(doc, label):
            if _URL_PASSWORD.search(text):
                raise BadInputError(
                    f"{path}: holds a URL with a password; compile without it (pass the "
                    "credential at run time from a Kubernetes Secret)"
                )
    params = pipeline_spec.get("root", {}).get("inputDefinitions", {}).get("parameters", {})
    for name, definition in params.items():
        default = definition.get("defaultValue") if isinstance(definition, dict) else None
        if _SECRET_NAME.search(name) and default not in (None, "", {}, []):
            raise BadInputError(
                f"pipeline parameter {name!r} has a non-empty default and is named like a "
                "credential; compile it with an empty default and pass it from a Secret"
            )
