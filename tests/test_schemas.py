"""The vendored CRD schemas match ../shared/schemas and the validator really rejects bad objects."""

from pathlib import Path

import pytest

from tests.k8s_schema import CRD_FILES, SCHEMAS, crd_kinds, validate

SHARED = Path(__file__).resolve().parents[2] / "shared" / "schemas"


@pytest.mark.unit
@pytest.mark.parametrize("name", CRD_FILES)
def test_vendored_schema_matches_shared(name: str) -> None:
    sub = "kserve" if name.startswith("serving.kserve") else "istio"
    shared = SHARED / sub / name
    if not shared.exists():
        pytest.skip(f"{shared} not on this machine; the vendored copy is used")
    assert (SCHEMAS / name).read_bytes() == shared.read_bytes()


@pytest.mark.unit
def test_knows_inferenceservice_and_virtualservice() -> None:
    kinds = crd_kinds()
    assert ("serving.kserve.io/v1beta1", "InferenceService") in kinds
    assert ("networking.istio.io/v1beta1", "VirtualService") in kinds


@pytest.mark.unit
def test_rejects_bad_crd_object() -> None:
    bad = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "x"},
        "spec": {"predictor": {"canaryTrafficPercent": "ten"}},
    }
    with pytest.raises(AssertionError, match="canaryTrafficPercent"):
        validate(bad)


@pytest.mark.unit
def test_rejects_bad_core_object() -> None:
    bad = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "runner"},
        "automountServiceAccountToken": "yes",
    }
    with pytest.raises(AssertionError, match="ServiceAccount runner"):
        validate(bad)


@pytest.mark.unit
def test_rejects_unknown_kind() -> None:
    with pytest.raises(AssertionError, match="no schema"):
        validate({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}})
