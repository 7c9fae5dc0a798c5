"""Shared fixtures: small sample data, the example config, a real MLflow server, the fake
Kubernetes and KFP APIs, and a webhook receiver for notifications."""

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from conveyor.config import PipelineConfig, load_pipeline_config
from conveyor.contracts import Contract, load_contract
from conveyor.lifecycle import free_port
from conveyor.sample import generate
from tests.fakes.webhook import WebhookReceiver

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "fraud"
AS_OF = datetime(2026, 11, 1)
BIN = Path(sys.executable).parent


@pytest.fixture(scope="session")
def contract() -> Contract:
    return load_contract(EXAMPLES / "contract.yaml")


@pytest.fixture(scope="session")
def config() -> PipelineConfig:
    return load_pipeline_config(EXAMPLES / "pipeline.yaml")


@pytest.fixture(scope="session")
def small_frame() -> pd.DataFrame:
    """4,000 clean rows: enough positives (~160) for every split to hold both classes."""
    return generate(4000, seed=7, as_of=AS_OF)


@pytest.fixture
def small_df(small_frame: pd.DataFrame) -> pd.DataFrame:
    return small_frame.copy()


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `mlflow server` on 127.0.0.1 (sqlite backend, proxied artifacts)."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("MLFLOW_TRACKING_URI", None)
    # MLflow 3 starts ~9 huey job consumers by default (~240 MB each, polling all the time):
    # Conveyor runs no MLflow server jobs, and on 2 cores they slow every other test.
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    log = open(root / "server.log", "wb")  # noqa: SIM115 - closed after the server stops
    proc = subprocess.Popen(
        [
            str(BIN / "mlflow"),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination",
            str(root / "artifacts"),
            "--workers",
            "1",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"mlflow server exited early:\n{(root / 'server.log').read_text()[-3000:]}"
                )
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("mlflow server did not become healthy within 90s")
            time.sleep(0.5)
        yield uri
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    """A scratch folder that is also the cwd, so relative paths stay inside it."""
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(cwd)


def copy_examples(dest: Path) -> Path:
    """The fraud example folder copied to ``dest`` (tests edit configs there)."""
    target = dest / "fraud"
    shutil.copytree(EXAMPLES, target)
    return target


FAST_LATENCY = {"single_calls": 20, "batch_rows": 200, "batch_calls": 5, "warmup": 2}


def fast_evaluation(config: PipelineConfig, **update):
    """The example config's evaluation spec with few timed calls (keeps tests fast)."""
    from conveyor.config import EvaluationSpec, LatencySpec

    data = {**config.evaluation.model_dump(), "latency": LatencySpec(**FAST_LATENCY), **update}
    return EvaluationSpec.model_validate(data)


def train_and_evaluate(
    tmp_path: Path,
    df: pd.DataFrame,
    config: PipelineConfig,
    tracking,
    evaluation_spec=None,
    golden_path: str | None = None,
    champion_dir=None,
    **train,
):
    """prepare -> train -> the evaluate stage in-process: (prepared, trained, evaluation).

    Evaluates with ``evaluation_spec`` (default: the example config's, fast latency) and the
    example golden set unless ``golden_path`` is given.
    """
    from conveyor import features, training
    from conveyor.config import TrainingSpec
    from conveyor.stages import evaluate

    prep = features.FeatureOutputs.under(tmp_path / "prep")
    features.prepare(df, config.features, prep)
    spec = TrainingSpec(params={"max_iter": 40}, seed=train.pop("seed", 3))
    trained = training.train(
        prep.train, prep.validation, prep.preprocessing, spec, tracking, tmp_path / "model", **train
    )
    eval_spec = evaluation_spec if evaluation_spec is not None else fast_evaluation(config)
    if golden_path is None and eval_spec.golden_set:
        golden_path = config.resolve(eval_spec.golden_set)
    result = evaluate.run(
        tmp_path / "model",
        prep.holdout,
        eval_spec,
        tmp_path / "evaluation.json",
        tmp_path / "report.md",
        tracking,
        trained.run_id,
        golden_path=golden_path,
        champion_dir=champion_dir,
    ).evaluation
    return prep, trained, result


@pytest.fixture(scope="session")
def fraud_models(tmp_path_factory: pytest.TempPathFactory, small_frame, config):
    """Two approved, registered fraud models (real training on the small sample, sqlite registry).

    Returns a namespace: ``db`` (the sqlite file to copy), ``name``, ``dirs`` (version -> the
    local serving folder with model.joblib), ``spec`` (feature_spec.json), ``rows`` (holdout).
    """
    import json
    from types import SimpleNamespace

    from conveyor import features, training
    from conveyor import model as model_files
    from conveyor.config import TrackingSpec, TrainingSpec
    from conveyor.stages import register_model
    from conveyor.tables import read_table, write_json

    root = tmp_path_factory.mktemp("fraud-registry")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    tracking = TrackingSpec(uri=uri, artifact_root=str(root / "artifacts"), experiment="rollout")
    prep = features.FeatureOutputs.under(root / "prep")
    features.prepare(small_frame, config.features, prep)
    dirs = {}
    for seed in (1, 2):
        spec = TrainingSpec(estimator="logistic_regression", seed=seed, params={"C": seed / 2})
        out = root / f"model{seed}"
        trained = training.train(
            prep.train, prep.validation, prep.preprocessing, spec, tracking, out
        )
        gate = write_json({"verdict": "approve"}, root / f"gate{seed}.json")
        evaluation = write_json({"metrics": {"roc_auc": 0.9}}, root / f"eval{seed}.json")
        v = register_model.run("fraud", trained.run_id, gate, evaluation, uri).registered
        assert v is not None
        dirs[v["version"]] = out
    spec = json.loads((dirs["1"] / model_files.SPEC_FILE).read_text())
    return SimpleNamespace(
        db=root / "mlflow.db", name="fraud", dirs=dirs, spec=spec, rows=read_table(prep.holdout)
    )


@pytest.fixture
def registry_uri(fraud_models, tmp_path: Path) -> str:
    """A private copy of the fraud registry (artifacts shared read-only), so tests may change
    aliases and statuses without touching each other."""
    db = tmp_path / "mlflow.db"
    shutil.copyfile(fraud_models.db, db)
    return f"sqlite:///{db}"


@pytest.fixture
def fake_kube(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A fake Kubernetes API (KServe semantics) and a kubeconfig pointing at it (KUBECONFIG)."""
    from tests.fakes.kube_api import FakeKubeAPI

    with FakeKubeAPI(namespaces=("default", "models")) as api:
        path = api.write_kubeconfig(tmp_path / "kubeconfig", context="fake", namespace="models")
        monkeypatch.setenv("KUBECONFIG", str(path))
        monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
        api.kubeconfig_path = path  # type: ignore[attr-defined]
        yield api


RUNTIME_MANIFEST = ROOT / "manifests" / "runtime" / "clusterservingruntime.yaml"


# One fraud transaction as a client sends it: the smoke tests' example row.
SMOKE_ROWS = [{"amount": 12.5, "customer_age": 40, "account_age_days": 300, "txn_count_24h": 2,
               "avg_amount_30d": 80.0, "distance_from_home_km": 3.0,
               "minutes_since_last_txn": 60.0, "credit_limit": 5000.0,
               "merchant_risk_score": 0.2, "hour_of_day": 13, "device_trust_score": 0.9,
               "cards_on_account": 2, "merchant_category": "grocery", "channel": "online",
               "country": "C01", "card_type": "debit"}]  # fmt: skip


@pytest.fixture
def conveyor_runtime(fake_kube) -> dict:
    """The conveyor-sklearn ClusterServingRuntime on the fake API, created from
    manifests/runtime itself through the real client: every deploy checks its model's
    scikit-learn against this runtime's annotation before writing anything."""
    import yaml

    from conveyor.rollout.cluster import CLUSTER_SERVING_RUNTIME as CSR
    from conveyor.rollout.cluster import KubeCluster

    body = yaml.safe_load(RUNTIME_MANIFEST.read_text())
    return KubeCluster().custom.create_cluster_custom_object(
        CSR.group, CSR.version, CSR.plural, body
    )


@pytest.fixture
def champion_live(fake_kube, conveyor_runtime, registry_uri):
    """v1 is champion in MLflow and serves 100 % of `fraud` in namespace `models`."""
    from conveyor.registry import ModelRegistry
    from conveyor.rollout import actions
    from conveyor.rollout.cluster import KubeCluster
    from conveyor.serving.isvc import Change, ServedModel

    registry = ModelRegistry(registry_uri)
    registry.promote("fraud", "1", "baseline")
    v1 = ServedModel.from_version(registry.get("fraud", "1"))
    actions.deploy(KubeCluster(), "fraud", v1, 0, Change("deploy", "baseline", "test"))
    return fake_kube


@pytest.fixture
def fake_kfp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A started fake Kubeflow Pipelines API (v2beta1 REST) on 127.0.0.1; stopped afterwards.

    kfp.Client reads ~/.config/kfp/context.json (a saved namespace changes what it sends):
    pointed at an empty tmp path so the developer's own context never leaks into tests.
    """
    import kfp

    from tests.fakes.kfp_api import FakeKfpApi

    monkeypatch.setattr(kfp.Client, "_LOCAL_KFP_CONTEXT", str(tmp_path / "kfp-context.json"))
    for var in (
        "KF_PIPELINES_TOKEN",
        "KFP_HOST",
        "KF_PIPELINES_ENDPOINT",
        "KF_PIPELINES_UI_ENDPOINT",
        "KF_PIPELINES_DEFAULT_EXPERIMENT_NAME",
        "KF_PIPELINES_OVERRIDE_EXPERIMENT_NAME",
    ):
        monkeypatch.delenv(var, raising=False)
    with FakeKfpApi() as api:
        yield api


@pytest.fixture
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """httpx honours the proxy variables: none may stand between a test and 127.0.0.1."""
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def webhook(no_proxy: None) -> Iterator[WebhookReceiver]:
    """A webhook receiver on 127.0.0.1 that records every JSON POST."""
    with WebhookReceiver() as rec:
        yield rec


# Tests whose verdicts hang on wall-clock rates (load generators, scrape windows, latency
# faults) run one after another on one pytest-xdist worker, so two of them never compete.
REALTIME = ("tests/local/test_sim.py", "tests/local/test_router.py")


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.nodeid.startswith(REALTIME):
            item.add_marker(pytest.mark.xdist_group("realtime"))
