"""The model the compiled pipeline trained, served by the serving-runtime image the way the
conveyor-sklearn ClusterServingRuntime runs it (KServe's arguments, /mnt/models read-only,
non-root, read-only root filesystem), passes the smoke test over V1 and V2; a model pickled by
another scikit-learn is refused before it is loaded."""

import contextlib
import json
import shutil
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
import sklearn

from conveyor import SERVING_IMAGE
from conveyor.containers import Engine
from conveyor.lifecycle import HOST, free_port
from conveyor.serving.smoke import smoke_test

pytestmark = pytest.mark.containers


def runtime_args(model_dir: Path, port: int, *, name: str = "fraud") -> list[str]:
    """`<engine> run` arguments for the runtime, as KServe's pod spec gives them."""
    return [
        "--network", "host", "--read-only", "--tmpfs", "/tmp",
        "--volume", f"{model_dir}:/mnt/models:ro", SERVING_IMAGE,
        f"--model_name={name}", "--model_dir=/mnt/models", f"--http_port={port}",
        "--host", HOST, "--model_version", "1",
    ]  # fmt: skip


@contextlib.contextmanager
def served(engine: Engine, model_dir: Path):
    port = free_port()
    name = f"conveyor-runtime-{port}"
    engine.run("run", "-d", "--name", name, *runtime_args(model_dir, port), capture=True)
    url = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            ready = f"{url}/v2/models/fraud/ready"
            with contextlib.suppress(OSError), urllib.request.urlopen(ready, timeout=2) as r:
                if r.status == 200:
                    break
            state = engine.run("inspect", "--format", "{{.State.Running}}", name, capture=True)
            if state.stdout.strip() != "true":
                logs = engine.run("logs", name, capture=True, check=False)
                pytest.fail(f"runtime exited before ready:\n{logs.stdout}{logs.stderr}")
            time.sleep(0.5)
        else:
            pytest.fail(f"runtime not ready on {url} in 90 s")
        yield url
    finally:
        engine.run("rm", "-f", name, capture=True, check=False)


def test_the_trained_model_passes_the_smoke_test_in_the_runtime(
    engine: Engine, container_run, batch
):
    spec = json.loads((container_run.model_dir / "feature_spec.json").read_text())
    assert spec["sklearn_version"] == sklearn.__version__
    rows = pd.read_parquet(batch).head(50)
    with served(engine, container_run.model_dir) as url:
        report = smoke_test(url, "fraud", rows, spec, expected_version="1")
    failed = [c for c in report["checks"] if not c["passed"]]
    assert report["passed"], failed
    names = {c["name"] for c in report["checks"]}
    assert {"v1_predict", "v2_predict", "v1_v2_agree", "model_version"} <= names, names


def _copy_with_version(model_dir: Path, dest: Path, version: str | None) -> Path:
    shutil.copytree(model_dir, dest)
    spec_path = dest / "feature_spec.json"
    spec = json.loads(spec_path.read_text())
    if version is None:
        spec.pop("sklearn_version", None)
    else:
        spec["sklearn_version"] = version
    spec_path.write_text(json.dumps(spec))
    for p in [dest, *dest.iterdir()]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    return dest


@pytest.mark.parametrize(
    ("version", "message"),
    [
        ("1.5.2", "pickled by scikit-learn 1.5.2; this runtime has scikit-learn"),
        (None, "no sklearn_version recorded"),
    ],
)
def test_a_model_of_another_scikit_learn_is_refused(
    engine: Engine, container_run, tmp_path, version, message
):
    model = _copy_with_version(container_run.model_dir, tmp_path / "model", version)
    done = engine.run("run", "--rm", *runtime_args(model, free_port()), capture=True,
                      check=False, timeout=120)  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr
    assert sklearn.__version__ in done.stderr
