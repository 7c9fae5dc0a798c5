"""The prod MLflow requires a user: the rendered prod Deployment's own args, env and basic-auth
config, run as a real `mlflow server` on 127.0.0.1 (Secrets given test values, /data a temp
folder). Anonymous calls get 401, the probes' /health stays open, and a pipeline user created
by the admin registers and aliases a model through Conveyor's registry."""

import base64
import configparser
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from conveyor.lifecycle import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SECRETS = {
    ("mlflow-auth", "admin-password"): "Adm1n-test-password!",
    ("mlflow-auth", "flask-secret-key"): "a-test-flask-secret-key-32-chars-x",
}
LOCAL = {"--host": "127.0.0.1", "--backend-store-uri": None, "--artifacts-destination": None}


def _prod() -> tuple[dict[str, Any], str]:
    """The prod overlay's mlflow container and its basic-auth ini, as rendered."""
    text = subprocess.run(
        [str(BIN / "kubectl"), "kustomize", str(ROOT / "manifests/overlays/prod")],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    docs = [d for d in yaml.safe_load_all(text) if d]
    (deploy,) = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "mlflow"]
    (container,) = deploy["spec"]["template"]["spec"]["containers"]
    volumes = {v["name"]: v for v in deploy["spec"]["template"]["spec"]["volumes"]}
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == "/etc/mlflow-auth")
    config_map = volumes[mount["name"]]["configMap"]["name"]
    (cm,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == config_map]
    return container, cm["data"]["basic_auth.ini"]


def _call(url: str, user: str | None = None, password: str = "", body: Any = None) -> int:
    request = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode())
    request.add_header("Content-Type", "application/json")
    if user is not None:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    container, ini = _prod()
    root = tmp_path_factory.mktemp("mlflow-auth")
    parsed = configparser.ConfigParser()
    parsed.read_string(ini)
    assert parsed["mlflow"]["database_uri"] == "sqlite:////data/basic_auth.db"
    assert "admin_password" not in parsed["mlflow"]  # from the Secret only
    parsed["mlflow"]["database_uri"] = f"sqlite:///{root / 'basic_auth.db'}"  # /data, here
    with open(root / "basic_auth.ini", "w") as fh:
        parsed.write(fh)
    port = free_port()
    args, it = [], iter(container["args"])
    for arg in it:
        if arg == "--port":
            args += [arg, str(port)]
            next(it)
        elif arg in LOCAL:
            value = next(it)
            local = {
                "--host": "127.0.0.1",
                "--backend-store-uri": f"sqlite:///{root / 'mlflow.db'}",
                "--artifacts-destination": str(root / "artifacts"),
            }[arg]
            assert value, arg
            args += [arg, local]
        else:
            args.append(arg)
    assert args[args.index("--app-name") + 1] == "basic-auth"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    for item in container["env"]:
        ref = (item.get("valueFrom") or {}).get("secretKeyRef")
        if ref and (ref["name"], ref["key"]) in SECRETS:
            env[item["name"]] = SECRETS[(ref["name"], ref["key"])]
        elif "value" in item:
            env[item["name"]] = item["value"]
    assert env["MLFLOW_AUTH_CONFIG_PATH"] == "/etc/mlflow-auth/basic_auth.ini"
    env["MLFLOW_AUTH_CONFIG_PATH"] = str(root / "basic_auth.ini")  # the mount, here
    env["HOME"] = str(root)
    log = open(root / "server.log", "wb")  # noqa: SIM115 - closed after the server stops
    proc = subprocess.Popen([str(BIN / "mlflow"), *args], env=env, stdout=log,
                            stderr=subprocess.STDOUT)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while _safe_status(f"{url}/health") != 200:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mlflow did not start:\n{(root / 'server.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def _safe_status(url: str) -> int:
    try:
        return _call(url)
    except OSError:
        return 0


ADMIN = ("admin", SECRETS[("mlflow-auth", "admin-password")])
SEARCH = "/api/2.0/mlflow/experiments/search?max_results=5"


def test_anonymous_calls_are_refused_and_the_probes_stay_open(server: str) -> None:
    assert _call(f"{server}/health") == 200
    assert _call(f"{server}{SEARCH}") == 401
    assert _call(f"{server}{SEARCH}", "admin", "wrong-password") == 401
    assert _call(f"{server}{SEARCH}", *ADMIN) == 200


def test_a_pipeline_user_registers_through_conveyor(server: str, monkeypatch, tmp_path) -> None:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    from mlflow.server import get_app_client

    user = {"username": "fraud-pipelines", "password": "Pipel1nes-test-password!"}
    # as manifests/README.md creates it: the admin, through mlflow's auth client
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", ADMIN[0])
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN[1])
    get_app_client("basic-auth", tracking_uri=server).create_user(**user)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user["username"])
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", user["password"])
    client = MlflowClient(tracking_uri=server, registry_uri=server)
    client.create_registered_model("fraud")
    version = client.create_model_version("fraud", "s3://bucket/model", run_id=None)
    client.set_registered_model_alias("fraud", "champion", version.version)
    from conveyor.registry import ModelRegistry

    champion = ModelRegistry(server).by_alias("fraud", "champion")
    assert champion is not None and str(champion["version"]) == str(version.version)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "not-the-password")
    with pytest.raises(MlflowException, match=r"401|nauthorized|credentials"):
        MlflowClient(tracking_uri=server, registry_uri=server).get_registered_model("fraud")
