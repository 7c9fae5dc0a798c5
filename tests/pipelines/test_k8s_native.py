"""conveyor.pipelines.k8s_native: the committed pipelines as KFP Pipeline / PipelineVersion
custom resources, checked against the vendored kubeflow/pipelines CRDs."""

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from kfp import compiler, dsl, kubernetes
from kfp.compiler import KubernetesManifestOptions

from conveyor.errors import BadInputError
from conveyor.pipelines.k8s_native import (
    API_VERSION,
    LAST_APPLIED_LIMIT,
    dump_all,
    kubernetes_native,
    last_applied_size,
    load_package,
)
from tests.k8s_schema import pruned_fields, validate_all

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {
    "training": ROOT / "pipelines" / "training" / "pipeline.yaml",
    "rollout": ROOT / "pipelines" / "rollout" / "pipeline.yaml",
}
NAMESPACE = "kubeflow-user-example-com"
DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@dsl.component(base_image="python:3.11")
def _echo(message: str) -> str:
    return message


@dsl.pipeline(name="conveyor-secret-probe", description="reads a secret by name")
def _secret_pipeline(message: str = "hi") -> None:
    task = _echo(message=message)
    kubernetes.use_secret_as_env(
        task,
        secret_name="mlflow-credentials",
        secret_key_to_env={"password": "MLFLOW_TRACKING_PASSWORD"},
    )


@pytest.fixture(scope="module")
def two_docs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("k8s-native") / "secret.yaml"
    compiler.Compiler().compile(_secret_pipeline, str(path))
    return path


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


@pytest.mark.parametrize("name", PACKAGES)
def test_committed_pipeline_is_valid_custom_resources(name: str) -> None:
    objs = kubernetes_native(PACKAGES[name], NAMESPACE, "1.4.0")
    validate_all(objs)
    for obj in objs:
        assert pruned_fields(obj) == [], obj["kind"]
        assert DNS1123.fullmatch(obj["metadata"]["name"])
        assert obj["metadata"]["namespace"] == NAMESPACE
        assert "ownerReferences" not in obj["metadata"]  # KFP's webhook adds it with the UID
    pipeline, version = objs
    assert [o["kind"] for o in objs] == ["Pipeline", "PipelineVersion"]
    assert {o["apiVersion"] for o in objs} == {API_VERSION}
    assert pipeline["metadata"]["name"] == f"fraud-{name}"
    assert version["metadata"]["name"] == f"fraud-{name}-1.4.0"
    assert version["spec"]["pipelineName"] == pipeline["metadata"]["name"]
    assert version["spec"]["displayName"] == "1.4.0"
    assert pipeline["spec"]["description"].startswith("Conveyor ")
    assert "platformSpec" not in version["spec"]
    # client-side `kubectl apply` keeps the object in a 256 KiB annotation
    assert last_applied_size(version) < LAST_APPLIED_LIMIT


@pytest.mark.parametrize("name", PACKAGES)
def test_version_embeds_exactly_the_compiled_ir(name: str) -> None:
    (ir,) = _docs(PACKAGES[name])
    text = dump_all(kubernetes_native(PACKAGES[name], NAMESPACE, "1.4.0"))
    assert text.startswith("---\n")
    pipeline, version = yaml.safe_load_all(text)
    assert version["spec"]["pipelineSpec"] == ir
    assert pipeline["kind"] == "Pipeline"


def test_two_document_package_keeps_the_platform_spec(two_docs: Path) -> None:
    ir, platform = _docs(two_docs)
    assert "platforms" in platform
    objs = kubernetes_native(two_docs, NAMESPACE, "2024_06_01")
    validate_all(objs)
    assert [pruned_fields(o) for o in objs] == [[], []]
    version = next(iter(yaml.safe_load_all(dump_all(objs[1:]))))
    assert version["spec"]["pipelineSpec"] == ir
    assert version["spec"]["platformSpec"] == platform
    secret = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-echo"]
    assert secret["secretAsEnv"][0]["secretName"] == "mlflow-credentials"  # a name, no value
    assert version["metadata"]["name"] == "conveyor-secret-probe-2024-06-01"
    assert version["spec"]["displayName"] == "2024_06_01"


def test_agrees_with_the_kfp_sdk_manifest(two_docs: Path, tmp_path: Path) -> None:
    """KFP's own kubernetes_manifest_format writes the same pipelineSpec and platformSpec; its
    Pipeline carries spec.displayName, which the vendored CRD does not declare."""
    sdk_path = tmp_path / "sdk.yaml"
    options = KubernetesManifestOptions(namespace=NAMESPACE, include_pipeline_manifest=True)
    compiler.Compiler().compile(
        _secret_pipeline,
        str(sdk_path),
        kubernetes_manifest_options=options,
        kubernetes_manifest_format=True,
    )
    sdk_pipeline, sdk_version = _docs(sdk_path)
    pipeline, version = kubernetes_native(two_docs, NAMESPACE, "1")
    for key in ("pipelineSpec", "platformSpec", "pipelineName", "description"):
        assert version["spec"][key] == sdk_version["spec"][key], key
    assert pipeline["metadata"]["name"] == sdk_pipeline["metadata"]["name"]
    assert pruned_fields(sdk_pipeline) == ["/spec/displayName"]
    assert pruned_fields(pipeline) == []


def test_either_document_order_and_a_loaded_dict(two_docs: Path, tmp_path: Path) -> None:
    ir, platform = _docs(two_docs)
    swapped = tmp_path / "swapped.yaml"
    swapped.write_text(yaml.safe_dump_all([platform, ir]))
    assert load_package(swapped) == (ir, platform)
    from_dict = kubernetes_native(ir, NAMESPACE, "1", pipeline_name="Probe_Pipeline")
    assert from_dict[0]["metadata"]["name"] == "probe-pipeline"
    assert from_dict[1]["spec"]["pipelineName"] == "probe-pipeline"
    assert "platformSpec" not in from_dict[1]["spec"]
    assert from_dict[1]["spec"]["pipelineSpec"] == ir


@pytest.mark.parametrize(
    "version",
    ["", "v1/rc", "-1", "1.0+build.5", "1..0", "release candidate", "rc-"],
)
def test_bad_version_is_refused_naming_it(version: str) -> None:
    with pytest.raises(BadInputError, match=re.escape(f"version {version!r}")):
        kubernetes_native(PACKAGES["training"], NAMESPACE, version)


def test_version_over_the_name_bound_is_refused() -> None:
    version = "9" * 240
    with pytest.raises(BadInputError, match=rf"{len('fraud-training-') + 240} characters > 253"):
        kubernetes_native(PACKAGES["training"], NAMESPACE, version)


def test_bad_namespace_and_pipeline_name_are_refused() -> None:
    with pytest.raises(BadInputError, match=r"namespace 'Team_A'.*at most 63"):
        kubernetes_native(PACKAGES["training"], "Team_A", "1")
    with pytest.raises(BadInputError, match=r"is 70 characters > 63"):
        kubernetes_native(PACKAGES["training"], NAMESPACE, "1", pipeline_name="p" * 70)
    with pytest.raises(BadInputError, match=r"pipeline name '__'"):
        kubernetes_native(PACKAGES["training"], NAMESPACE, "1", pipeline_name="__")


def test_not_a_compiled_package_is_refused(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(dump_all(kubernetes_native(PACKAGES["training"], NAMESPACE, "1")))
    with pytest.raises(BadInputError, match="already a Kubernetes object"):
        kubernetes_native(manifest, NAMESPACE, "2")
    with pytest.raises(BadInputError, match="cannot read"):
        kubernetes_native(tmp_path / "missing.yaml", NAMESPACE, "1")
    (ir,) = _docs(PACKAGES["training"])
    doubled = tmp_path / "doubled.yaml"
    doubled.write_text(yaml.safe_dump_all([ir, ir]))
    with pytest.raises(BadInputError, match="2 pipeline spec"):
        kubernetes_native(doubled, NAMESPACE, "1")


def test_a_credential_in_the_ir_is_refused_without_echoing_it() -> None:
    (ir,) = _docs(PACKAGES["training"])
    params = ir["root"]["inputDefinitions"]["parameters"]
    params["mlflow_tracking_uri"]["defaultValue"] = "https://ci:hunter2-xyz@mlflow.example.com"
    with pytest.raises(BadInputError, match="mlflow_tracking_uri") as caught:
        kubernetes_native(ir, NAMESPACE, "1")
    assert "hunter2" not in str(caught.value)

    (ir,) = _docs(PACKAGES["training"])
    params = ir["root"]["inputDefinitions"]["parameters"]
    params["api_token"] = {"parameterType": "STRING", "defaultValue": "s3cr3t-value"}
    with pytest.raises(BadInputError, match="'api_token'") as caught:
        kubernetes_native(ir, NAMESPACE, "1")
    assert "s3cr3t" not in str(caught.value)
