"""`conveyor new`, `validate-config` and `compile`: a team's template, checked and compiled
in-process (no cluster) with its cluster settings applied."""

import copy
import hashlib
import itertools
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from conveyor import COMPONENT_IMAGE
from conveyor.cli import main
from conveyor.config import ClusterSpec, load_pipeline_config
from conveyor.errors import BadInputError
from conveyor.pipelines import platform, template
from tests.k8s_schema import pruned_fields, validate_all

pytestmark = pytest.mark.unit

TEAM = "payments"
IMAGE = "registry.example.com/payments/conveyor-test:9.9.9"
MLFLOW_URI = "http://mlflow.payments-test.svc.cluster.local:5000"
NAMESPACE = "payments-prod"
PROMETHEUS = "http://prometheus.monitoring.svc:9090"
DATA_URI = "s3://payments-data/transactions.parquet"
NODE_SELECTOR = {"kubernetes.io/arch": "amd64", "pool": "ml-batch"}
SECRET_VALUE = "fixture-s3cr3t-value"
# The scaffold's secret: name, keys and steps.
SECRET_NAME = f"{TEAM}-mlflow"
SECRET_ENV = {"username": "MLFLOW_TRACKING_USERNAME", "password": "MLFLOW_TRACKING_PASSWORD"}
SECRET_STEPS = {"check_drift", "check_trigger", "train", "evaluate", "quality_gate",
                "register_model"}  # fmt: skip


def _new(parent: Path, team: str = TEAM, *extra: str) -> int:
    return main(["new", team, "--dir", str(parent), *extra])


def _write_variant(folder: Path, name: str, data: dict[str, Any]) -> Path:
    """A config next to the scaffolded one (so its relative paths resolve the same)."""
    path = folder / f"variant-{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def scaffolded(tmp_path_factory) -> Path:
    """``conveyor new payments``, untouched."""
    parent = tmp_path_factory.mktemp("scaffold")
    assert _new(parent) == 0
    return parent / TEAM


@pytest.fixture(scope="module")
def base(scaffolded) -> dict[str, Any]:
    return yaml.safe_load((scaffolded / "pipeline.yaml").read_text())


@pytest.fixture(scope="module")
def cluster_config(scaffolded, base) -> Path:
    """The scaffold with a distinctive image, MLflow URI, namespace, node selector, Prometheus
    and data URI, and a CPU limit on train."""
    data = copy.deepcopy(base)
    cluster = data["cluster"]
    cluster.update(image=IMAGE, mlflow_tracking_uri=MLFLOW_URI, namespace=NAMESPACE)
    cluster.update(node_selector=NODE_SELECTOR, prometheus_url=PROMETHEUS, data_uri=DATA_URI)
    cluster["resources"]["train"]["cpu_limit"] = "4"
    return _write_variant(scaffolded, "cluster", data)


def _compile(config: Path, out: Path, *extra: str) -> str:
    assert main(["compile", str(config), "-o", str(out), *extra]) == 0
    return out.read_text()


@pytest.fixture(scope="module")
def compiled(cluster_config, tmp_path_factory) -> dict[str, str]:
    """The three pipelines of the cluster config, compiled with a credential in the env."""
    out = tmp_path_factory.mktemp("compiled")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_PASSWORD", SECRET_VALUE)
        mp.setenv("MLFLOW_TRACKING_USERNAME", "fixture-user")
        return {
            p: _compile(cluster_config, out / f"{p}.yaml", "--pipeline", p)
            for p in template.PIPELINES
        }


def _docs(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


def _step(executor: str) -> str:
    """exec-register-model-2 -> register_model (the component function's name)."""
    return re.sub(r"-\d+$", "", executor.removeprefix("exec-")).replace("-", "_")


def _containers(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    executors = spec["deploymentSpec"]["executors"]
    return {name: e["container"] for name, e in executors.items() if "container" in e}


def _params(spec: dict[str, Any]) -> dict[str, Any]:
    return spec["root"]["inputDefinitions"]["parameters"]


# ------------------------------------------------------------------------------------------ new


def test_new_then_validate_config_prints_the_next_runs(tmp_path, capsys):
    assert _new(tmp_path) == 0
    out = capsys.readouterr().out
    folder = tmp_path / TEAM
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["contract.yaml", "gate_policy.yaml", "pipeline.yaml", "rbac.yaml",
                     "rollout.yaml"]  # fmt: skip
    role, binding = yaml.safe_load_all((folder / "rbac.yaml").read_text())
    assert (role["kind"], binding["kind"]) == ("Role", "RoleBinding")
    named = {tuple(r.get("resourceNames", ())): r["verbs"] for r in role["rules"]}
    assert named[(TEAM, f"{TEAM}-shadow")] == ["patch"]
    assert named[(f"{TEAM}-shadow",)] == ["delete"]
    assert f"next: conveyor validate-config {folder}/pipeline.yaml" in out

    assert main(["validate-config", str(folder / "pipeline.yaml")]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{folder / 'pipeline.yaml'}: valid\n")
    assert f"secrets ['{SECRET_NAME}']" in out
    line = next(x for x in out.splitlines() if x.strip().startswith("schedule"))
    assert "'0 2 * * 0' (UTC)" in line
    runs = [datetime.fromisoformat(t) for t in line.split("; next ", 1)[1].split(", ")]
    assert len(runs) == 3
    now = datetime.now(UTC)
    assert now < runs[0] <= now + timedelta(days=7)
    for run in runs:
        assert (run.weekday(), run.hour, run.minute) == (6, 2, 0)  # Sunday 02:00 UTC
    assert [b - a for a, b in itertools.pairwise(runs)] == [timedelta(days=7)] * 2


def test_next_runs_are_increasing_cron_times():
    runs = [datetime.fromisoformat(t) for t in template.next_runs("*/15 * * * *", count=4)]
    assert len(runs) == 4
    assert all(r.minute % 15 == 0 and r.second == 0 for r in runs)
    assert [b - a for a, b in itertools.pairwise(runs)] == [timedelta(minutes=15)] * 3


def test_new_twice_without_force_exits_2_and_changes_nothing(tmp_path, capsys):
    assert _new(tmp_path) == 0
    pipeline = tmp_path / TEAM / "pipeline.yaml"
    edited = pipeline.read_text() + "# the team's own edit\n"
    pipeline.write_text(edited)
    capsys.readouterr()
    assert _new(tmp_path) == 2
    err = capsys.readouterr().err
    assert re.search(r"pipeline\.yaml, contract\.yaml, .* already exist; nothing was written", err)
    assert pipeline.read_text() == edited
    assert _new(tmp_path, TEAM, "--force") == 0
    assert "the team's own edit" not in pipeline.read_text()


@pytest.mark.parametrize("team", ["Payments", "pay_ments", "pay.ments", "a" * 64])
def test_new_rejects_a_bad_team_name(tmp_path, capsys, team):
    assert _new(tmp_path, team) == 2
    assert f"team: {team!r} must be lowercase letters" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------ validate-config


def _set(path: str, value: Any):
    """A mutation of the config dict: set the dotted ``path`` to ``value``."""

    def mutate(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = data
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        node[last] = value

    return mutate


INVALID = {
    "bad-cron": (
        _set("retrain.schedule", "0 2 * *"),
        r"retrain\.schedule: .*'0 2 \* \*' is not a 5-field cron expression",
    ),
    "bad-cron-minute": (
        _set("retrain.schedule", "61 * * * *"),
        r"retrain\.schedule: .*'61 \* \* \* \*' is not a 5-field cron",
    ),
    "resources-unknown-step": (
        _set("cluster.resources.trian", {"cpu_request": "1"}),
        r"cluster\.resources\.trian: unknown step 'trian'; known: default, validate_data",
    ),
    "secret-unknown-step": (
        _set("cluster.secrets.0.steps", ["train", "deploy_canry"]),
        r"cluster\.secrets\.0\.steps: unknown step 'deploy_canry'; known: validate_data",
    ),
    "bad-quantity": (
        _set("cluster.resources.train.cpu_request", "lots"),
        r"cluster\.resources\.train\.cpu_request: String should match pattern .*\(got 'lots'\)",
    ),
    "bad-env-name": (
        _set("cluster.secrets.0.env.password", "MLFLOW-PASSWORD"),
        r"cluster\.secrets\.0\.env: .*env var name 'MLFLOW-PASSWORD' \(for key 'password'\)",
    ),
    "missing-contract": (
        _set("contract", "no-such-contract.yaml"),
        r"contract: .*no-such-contract\.yaml: data contract file not found",
    ),
    "drift-feature-not-input": (
        _set("retrain.drift.features", ["amount", "label"]),
        r"retrain\.drift\.features: 'label' is not a model input",
    ),
    "top-level-typo": (
        _set("trainig", {"seed": 1}),
        r"trainig: Extra inputs are not permitted",
    ),
    "bad-max-age": (
        _set("retrain.max_age_days", 0),
        r"retrain\.max_age_days: Input should be greater than or equal to 1 \(got 0\)",
    ),
    "feature-not-in-contract": (
        _set("features.numeric", ["chekcs", "amount"]),
        r"features\.numeric: 'chekcs' is not a column of contract 'payments-transactions'",
    ),
    "feature-typo": (
        _set("features.numeric", ["amout"]),
        r"features\.numeric: 'amout' is not a column of contract .*; did you mean 'amount'\?",
    ),
    "fairness-not-kept": (
        _set("evaluation.fairness", ["event_time"]),
        r"evaluation\.fairness: 'event_time' is not kept in the splits; add it to "
        r"features\.passthrough",
    ),
    "slice-by-not-kept": (
        _set("evaluation.slices", [{"name": "when", "by": "event_time"}]),
        r"evaluation\.slices\[0\] \(when\)\.by: 'event_time' is not kept in the splits",
    ),
    "slice-where-unparsable": (
        _set("evaluation.slices", [{"name": "big", "where": "amount >="}]),
        r"evaluation\.slices\[0\] \(big\)\.where: cannot parse 'amount >=' \(invalid syntax\)",
    ),
    "slice-where-typo": (
        _set("evaluation.slices", [{"name": "big", "where": "amout >= 5 and `channel` == 'x'"}]),
        r"\(big\)\.where: 'amout' is not kept in the splits; did you mean 'amount'",
    ),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_validate_config_explains_errors_with_field_paths(scaffolded, base, capsys, case):
    mutate, message = INVALID[case]
    data = copy.deepcopy(base)
    mutate(data)
    path = _write_variant(scaffolded, case, data)
    assert main(["validate-config", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"{path}: invalid\n")
    assert re.search(message, captured.err), captured.err
    # compile refuses the same config, with the same explanation.
    out = scaffolded / f"{case}.yaml"
    assert main(["compile", str(path), "-o", str(out)]) == 2
    assert re.search(message, capsys.readouterr().err)
    assert not out.exists()


def test_problems_is_empty_for_the_scaffold_and_lists_every_problem(scaffolded, base):
    assert template.problems(load_pipeline_config(scaffolded / "pipeline.yaml")) == []
    data = copy.deepcopy(base)
    data["cluster"]["resources"]["trian"] = {"cpu_request": "1"}
    data["retrain"]["drift"]["features"] = ["group"]
    data["rollout"] = "no-such-plan.yaml"
    found = template.problems(load_pipeline_config(_write_variant(scaffolded, "many", data)))
    assert [p.split(":")[0] for p in found] == [
        "rollout",
        "cluster.resources.trian",
        "retrain.drift.features",
    ]


def test_validate_config_checks_gate_rules_and_contract_values(scaffolded, base, capsys):
    """A gate rule on a metric evaluate never writes held every model on missing evidence;
    YAML's Yes/No read as booleans failed every row of a string column."""
    (scaffolded / "typo-policy.yaml").write_text(
        "rules:\n"
        "  - {metric: metrics.auc, min: 0.5}\n"
        "  - {metric: fairness.race.disparate_impact, min: 0.8}\n"
        "  - {metric: metrics.recall, min: 0.1}\n"
    )
    contract = (scaffolded / "contract.yaml").read_text()
    assert "  channel:" in contract
    lines = [
        "  channel: {dtype: string, allowed: [Yes, No]}" if x.startswith("  channel:") else x
        for x in contract.splitlines()
    ]
    (scaffolded / "yesno-contract.yaml").write_text("\n".join(lines) + "\n")
    data = copy.deepcopy(base)
    data["gate_policy"] = "typo-policy.yaml"
    path = _write_variant(scaffolded, "gate-typos", data)
    assert main(["validate-config", str(path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[1:] == [
        f"{path}: gate_policy rules[0].metric: 'metrics.auc' is not a metric the evaluate stage "
        "produces for this config; did you mean 'metrics.pr_auc' or 'metrics.roc_auc'?",
        f"{path}: gate_policy rules[1].metric: 'fairness.race.disparate_impact' is not a metric "
        "the evaluate stage produces for this config; add it under evaluation.fairness in the "
        "pipeline config",
    ]
    data = copy.deepcopy(base)
    data["contract"] = "yesno-contract.yaml"
    path = _write_variant(scaffolded, "yes-no", data)
    assert main(["validate-config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "columns.channel: Value error, allowed: [True, False] were read from YAML as " in err
    assert "quote the values, e.g. allowed: ['Yes', 'No']" in err


def test_platform_check_steps_and_settings_refuse_unknown_steps():
    cluster = ClusterSpec.model_validate(
        {
            "resources": {"default": {"cpu_request": "1"}, "evaluate": {}, "trainer": {}},
            "secrets": [{"name": "s", "env": {"k": "K"}, "steps": ["promote", "promot"]}],
        }
    )
    assert platform.check_steps(cluster) == [
        "cluster.resources.trainer: unknown step 'trainer'; known: default, "
        + ", ".join(platform.STEPS),
        "cluster.secrets.0.steps: unknown step 'promot'; known: " + ", ".join(platform.STEPS),
    ]
    with (
        pytest.raises(BadInputError, match=r"cluster\.resources\.trainer: unknown step"),
        platform.settings(cluster),
    ):
        pass


def test_set_image_replaces_only_the_conveyor_image():
    docs = [
        {
            "deploymentSpec": {
                "executors": {
                    "exec-a": {"container": {"image": COMPONENT_IMAGE}},
                    "exec-b": {"container": {"image": "python:3.11"}},
                    "exec-importer": {"importer": {}},
                }
            }
        },
        {"platforms": {}},
    ]
    unchanged = copy.deepcopy(docs)
    assert platform.set_image(docs, None) == unchanged
    executors = platform.set_image(docs, IMAGE)[0]["deploymentSpec"]["executors"]
    assert executors["exec-a"]["container"]["image"] == IMAGE
    assert executors["exec-b"]["container"]["image"] == "python:3.11"


# -------------------------------------------------------------------------------------- compile


@pytest.mark.parametrize("pipeline", template.PIPELINES)
def test_compiled_executors_run_the_configured_image(compiled, pipeline):
    spec = _docs(compiled[pipeline])[0]
    containers = _containers(spec)
    assert containers
    assert {c["image"] for c in containers.values()} == {IMAGE}


@pytest.mark.parametrize("pipeline", template.PIPELINES)
def test_platform_spec_has_secrets_node_selector_and_timeouts(compiled, pipeline):
    docs = _docs(compiled[pipeline])
    assert len(docs) == 2
    platform_spec = docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    containers = _containers(docs[0])
    assert set(platform_spec) == set(containers)  # every step, importers excluded
    with_secret = set()
    for name, settings in platform_spec.items():
        assert settings["nodeSelector"] == {"labels": NODE_SELECTOR}, name
        timeout = "7200" if _step(name) == "train" else "3600"
        assert str(settings["activeDeadlineSeconds"]) == timeout, name
        for secret in settings.get("secretAsEnv", []):
            assert secret["secretName"] == SECRET_NAME
            pairs = {(k["secretKey"], k["envVar"]) for k in secret["keyToEnv"]}
            assert pairs == set(SECRET_ENV.items())
            with_secret.add(name)
    expected = {name for name in containers if _step(name) in SECRET_STEPS}
    assert with_secret == expected
    if pipeline != "rollout":
        assert {_step(n) for n in with_secret} >= {"train", "evaluate", "register_model"}


@pytest.mark.parametrize("pipeline", ["training", "continuous_training"])
def test_resources_from_the_config_reach_the_executors(compiled, pipeline):
    containers = _containers(_docs(compiled[pipeline])[0])
    train = containers["exec-train"]["resources"]
    assert train["resourceCpuRequest"] == "2"
    assert train["resourceCpuLimit"] == "4"
    assert train["resourceMemoryRequest"] == "4Gi"
    assert train["resourceMemoryLimit"] == "8Gi"
    evaluate = containers["exec-evaluate"]["resources"]
    assert evaluate["resourceCpuRequest"] == "500m"  # the default entry
    assert evaluate["resourceMemoryLimit"] == "2Gi"
    assert "resourceCpuLimit" not in evaluate


@pytest.mark.parametrize("pipeline", template.PIPELINES)
def test_no_credential_from_the_environment_reaches_the_output(compiled, pipeline):
    text = compiled[pipeline]
    assert SECRET_VALUE not in text
    assert "fixture-user" not in text
    if pipeline != "rollout":  # the rollout steps get no secret in this config
        assert SECRET_NAME in text  # the Secret's name is there, its value is not


@pytest.mark.parametrize("pipeline", template.PIPELINES)
def test_mlflow_uri_default_comes_from_the_config(compiled, pipeline):
    params = _params(_docs(compiled[pipeline])[0])
    assert params["mlflow_tracking_uri"]["defaultValue"] == MLFLOW_URI
    assert "sqlite:" not in compiled[pipeline]  # never the local tracking store


@pytest.mark.parametrize("pipeline", ["rollout", "continuous_training"])
def test_namespace_parameter_default_comes_from_the_config(compiled, pipeline):
    params = _params(_docs(compiled[pipeline])[0])
    assert params["namespace"].get("defaultValue") == NAMESPACE


@pytest.mark.parametrize("pipeline", ["training", "continuous_training"])
def test_data_uri_default_comes_from_the_config(compiled, pipeline):
    params = _params(_docs(compiled[pipeline])[0])
    assert params["data_uri"]["defaultValue"] == DATA_URI


@pytest.mark.parametrize("pipeline", ["rollout", "continuous_training"])
def test_prometheus_url_default_comes_from_the_config(compiled, pipeline):
    params = _params(_docs(compiled[pipeline])[0])
    assert params["prometheus_url"].get("defaultValue") == PROMETHEUS


def test_empty_mlflow_uri_is_not_filled_from_the_environment(scaffolded, base, tmp_path):
    data = copy.deepcopy(base)
    data["cluster"]["mlflow_tracking_uri"] = ""
    config = _write_variant(scaffolded, "no-uri", data)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"http://ci:{SECRET_VALUE}@mlflow.example:5000")
        mp.setenv("MLFLOW_TRACKING_PASSWORD", SECRET_VALUE)
        text = _compile(config, tmp_path / "t.yaml", "--pipeline", "training")
    assert SECRET_VALUE not in text
    assert _params(_docs(text)[0])["mlflow_tracking_uri"].get("defaultValue", "") == ""


def test_smoke_compile_uses_the_small_estimator(cluster_config, compiled, tmp_path):
    full = _params(_docs(compiled["training"])[0])
    assert json.loads(full["training"]["defaultValue"])["estimator"] == "hist_gradient_boosting"
    assert full["model_name"]["defaultValue"] == TEAM
    text = _compile(cluster_config, tmp_path / "smoke.yaml", "--pipeline", "training", "--smoke")
    params = _params(_docs(text)[0])
    training = json.loads(params["training"]["defaultValue"])
    assert training["estimator"] == "logistic_regression"
    assert params["model_name"]["defaultValue"] == f"{TEAM}-smoke"
    assert params["mlflow_experiment"]["defaultValue"] == f"{TEAM}-smoke"


def test_rollout_without_a_plan_exits_2_naming_rollout(scaffolded, base, tmp_path, capsys):
    data = copy.deepcopy(base)
    del data["rollout"]
    config = _write_variant(scaffolded, "no-rollout", data)
    out = tmp_path / "rollout.yaml"
    assert main(["compile", str(config), "-o", str(out), "--pipeline", "rollout"]) == 2
    assert "rollout: the config names no rollout plan" in capsys.readouterr().err
    assert not out.exists()


# ----------------------------------------------------------------------------- kubernetes format


def test_kubernetes_format_is_pipeline_and_version_named_by_content(
    cluster_config, compiled, scaffolded, tmp_path
):
    args = ("--pipeline", "training", "--format", "kubernetes")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_PASSWORD", SECRET_VALUE)
        first = _compile(cluster_config, tmp_path / "a.yaml", *args)
    second = _compile(cluster_config, tmp_path / "b.yaml", *args)
    assert SECRET_VALUE not in first
    objs = _docs(first)
    assert [(o["apiVersion"], o["kind"]) for o in objs] == [
        ("pipelines.kubeflow.org/v2beta1", "Pipeline"),
        ("pipelines.kubeflow.org/v2beta1", "PipelineVersion"),
    ]
    validate_all(objs)
    assert [pruned_fields(o) for o in objs] == [[], []]
    pipeline, version = objs
    assert {o["metadata"]["namespace"] for o in objs} == {NAMESPACE}
    assert pipeline["metadata"]["name"] == f"{TEAM}-training"
    assert version["spec"]["pipelineName"] == f"{TEAM}-training"
    # The version is the content hash of the KFP package, stable across compiles.
    digest = hashlib.sha256(compiled["training"].encode()).hexdigest()
    assert version["metadata"]["name"] == f"{TEAM}-training-v{digest[:10]}"
    assert version["spec"]["displayName"] == f"v{digest[:10]}"
    assert second == first
    # The package inside is the compiled one: image and platform spec included.
    kfp_docs = _docs(compiled["training"])
    assert version["spec"]["pipelineSpec"] == kfp_docs[0]
    assert version["spec"]["platformSpec"] == kfp_docs[1]

    data = yaml.safe_load(cluster_config.read_text())
    data["training"]["seed"] = 43
    changed = _write_variant(scaffolded, "seed43", data)
    other = _docs(_compile(changed, tmp_path / "c.yaml", *args))[1]
    assert other["metadata"]["name"].startswith(f"{TEAM}-training-v")
    assert other["metadata"]["name"] != version["metadata"]["name"]


def test_kubernetes_format_takes_an_explicit_version(cluster_config, tmp_path):
    args = ("--pipeline", "rollout", "--format", "kubernetes", "--version", "2026.11.1")
    objs = _docs(_compile(cluster_config, tmp_path / "r.yaml", *args))
    validate_all(objs)
    assert objs[1]["metadata"]["name"] == f"{TEAM}-rollout-2026.11.1"


EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "fraud" / "pipeline.yaml"


def test_the_shipped_example_validates_and_compiles_with_its_cluster_block(tmp_path, capsys):
    """examples/fraud/pipeline.yaml is the template in full: Secrets by name only, the train
    step's own resources, the S3 secret only on the steps that read the batch."""
    assert main(["validate-config", str(EXAMPLE)]) == 0
    assert "schedule   : '0 2 * * 0'" in capsys.readouterr().out
    out = tmp_path / "ct.yaml"
    assert main(["compile", str(EXAMPLE), "-o", str(out)]) == 0
    spec, platform_spec = yaml.safe_load_all(out.read_text())
    executors = platform_spec["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    s3 = {name for name, ex in executors.items()
          if any(s["secretName"] == "fraud-s3" for s in ex.get("secretAsEnv", []))}  # fmt: skip
    assert s3 == {"exec-validate-data", "exec-check-trigger"}  # check_drift: not in this one
    train = spec["deploymentSpec"]["executors"]["exec-train"]["container"]["resources"]
    assert train["resourceCpuRequest"] == "2" and train["resourceMemoryLimit"] == "8Gi"
    default = spec["deploymentSpec"]["executors"]["exec-check-trigger"]["container"]["resources"]
    assert default["resourceCpuRequest"] == "500m" and default["resourceMemoryLimit"] == "2Gi"
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert params["namespace"]["defaultValue"] == "fraud"
    assert params["data_uri"]["defaultValue"] == "s3://fraud-data/transactions/latest.parquet"
