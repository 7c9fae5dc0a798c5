"""The component image itself: non-root, offline, this checkout's conveyor, and every module
each compiled component imports."""

import ast
import json
import subprocess
import sys

import pytest
import yaml

from conveyor import COMPONENT_IMAGE, SERVING_IMAGE, __version__
from conveyor.containers import IMAGE_USER, Engine
from tests.conftest import ROOT

pytestmark = pytest.mark.containers

# Runs inside the image: imports every module each component's source names, and prints the
# ones that fail, per component, as JSON.
IMPORT_CHECK = """
import importlib, json, sys
wanted = json.loads(sys.argv[1])
missing = {}
for component, modules in wanted.items():
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:
            missing.setdefault(component, []).append(f"{name}: {type(exc).__name__}: {exc}")
print(json.dumps(missing))
"""


def component_imports(spec_file) -> set[str]:
    """Every module the embedded component source imports (top level and in the body)."""
    doc = yaml.safe_load(spec_file.read_text())
    modules: set[str] = set()
    for executor in doc["deploymentSpec"]["executors"].values():
        source = executor["container"]["command"][-1]  # the ephemeral_component.py text
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                modules.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules.add(node.module)
    return modules


def missing_in_image(engine: Engine, image: str, wanted: dict[str, list[str]]) -> dict:
    done = engine.run(
        "run", "--rm", "--network", "none", "--read-only", "--entrypoint", "python3", image,
        "-c", IMPORT_CHECK, json.dumps(wanted), capture=True,
    )  # fmt: skip
    return json.loads(done.stdout)


def test_runs_as_non_root_offline_with_this_checkouts_conveyor(engine: Engine):
    here = subprocess.run(
        [sys.executable, "-m", "conveyor.cli", "--version"], capture_output=True, text=True,
        check=True,
    ).stdout.strip()  # fmt: skip
    assert here == f"conveyor {__version__}"
    for image in (COMPONENT_IMAGE, SERVING_IMAGE):
        out = engine.run(
            "run", "--rm", "--network", "none", "--read-only", "--entrypoint", "sh", image,
            "-c", "id -u; id -g; conveyor --version", capture=True,
        ).stdout.split("\n")  # fmt: skip
        assert out[:3] == [*IMAGE_USER.split(":"), here], (image, out)


def test_every_component_finds_its_modules_in_the_image(engine: Engine):
    specs = sorted((ROOT / "components").glob("*/component.yaml"))
    assert len(specs) == 15
    wanted = {spec.parent.name: sorted(component_imports(spec)) for spec in specs}
    assert all("conveyor" in " ".join(mods) for mods in wanted.values()), wanted
    assert missing_in_image(engine, COMPONENT_IMAGE, wanted) == {}


def test_a_missing_module_is_named(engine: Engine):
    """The check above can fail: a module the image lacks is reported by component."""
    found = missing_in_image(engine, COMPONENT_IMAGE, {"train": ["sklearn", "no_such_module"]})
    assert list(found) == ["train"]
    assert found["train"][0].startswith("no_such_module: ModuleNotFoundError")
