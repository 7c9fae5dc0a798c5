"""Committed compiled files must equal a fresh compile (run `make compile` to refresh)."""

from pathlib import Path

import pytest
import yaml

from conveyor.pipelines.compile import COMPONENTS, ROOT, compiled_files

pytestmark = pytest.mark.unit


def test_compiled_files_are_fresh(tmp_path: Path):
    stale = [
        rel
        for rel, fresh in compiled_files(tmp_path).items()
        if not (ROOT / rel).is_file() or (ROOT / rel).read_bytes() != fresh.read_bytes()
    ]
    assert not stale, f"stale compiled files {stale}: run `make compile` and commit them"


@pytest.mark.parametrize("name", sorted(COMPONENTS))
def test_component_folder_is_complete(name: str):
    folder = ROOT / "components" / name
    spec = yaml.safe_load((folder / "component.yaml").read_text())
    executor = next(iter(spec["deploymentSpec"]["executors"].values()))["container"]
    from conveyor import COMPONENT_IMAGE

    assert executor["image"] == COMPONENT_IMAGE
    # install_kfp_package=False: a cluster runs the component without reaching a package index
    assert "pip install" not in " ".join(executor["command"])
    readme = (folder / "README.md").read_text()
    component = next(iter(spec["components"].values()))
    names = [
        *component.get("inputDefinitions", {}).get("parameters", {}),
        *component.get("inputDefinitions", {}).get("artifacts", {}),
        *component.get("outputDefinitions", {}).get("parameters", {}),
        *component.get("outputDefinitions", {}).get("artifacts", {}),
    ]
    undocumented = [n for n in names if f"`{n}`" not in readme]
    assert not undocumented, f"components/{name}/README.md does not document {undocumented}"
    meta = yaml.safe_load((folder / "metadata.yaml").read_text())
    assert meta["name"] == name
    assert meta["stability"] in {"alpha", "beta", "stable"}


@pytest.mark.parametrize("pipeline", ["training", "rollout", "continuous_training"])
def test_compiled_pipeline_has_no_local_paths_or_secrets(pipeline: str):
    text = (ROOT / "pipelines" / pipeline / "pipeline.yaml").read_text()
    assert "/work/" not in text and "sqlite:" not in text and ".conveyor/" not in text
    for word in ("password", "secret_key", "AWS_SECRET", "token:"):
        assert word.lower() not in text.lower()


@pytest.mark.parametrize(
    "rel",
    [
        *(f"components/{n}/component.yaml" for n in sorted(COMPONENTS)),
        "pipelines/training/pipeline.yaml",
        "pipelines/rollout/pipeline.yaml",
        "pipelines/continuous_training/pipeline.yaml",
    ],
)
def test_compiled_file_is_valid_yaml_and_loads_in_kfp(rel: str):
    from kfp import components

    yaml.safe_load((ROOT / rel).read_text())  # the header comment must not break the YAML
    loaded = components.load_component_from_file(str(ROOT / rel))
    assert loaded.name
