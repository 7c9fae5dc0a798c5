"""`kubectl conveyor` end to end: the real plugin, the real kubernetes client, the fake API
server (KServe semantics) and a real MLflow registry on sqlite."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conveyor.cli.kubectl import main
from conveyor.registry import ModelRegistry
from conveyor.serving import isvc as inf
from tests.fakes.kube_api import traffic_split

pytestmark = pytest.mark.integration


def split(api) -> dict[str, int]:
    return traffic_split(api, "models", "fraud")


API = "serving.kserve.io/v1beta1"
BIN = Path(sys.executable).parent


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def rollout(fake_kube, conveyor_runtime, registry_uri, capsys, monkeypatch):
    """fraud v1 serving 100 % on conveyor-sklearn in namespace `models`."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry_uri)
    monkeypatch.setenv("CONVEYOR_ACTOR", "oncall")
    code, _, err = run(capsys, "canary", "fraud", "--model", "fraud", "--version", "1",
                       "--percent", "10", "--reason", "first release")  # fmt: skip
    assert code == 0, err
    return fake_kube


def test_help_documents_every_verb() -> None:
    proc = subprocess.run(
        [str(BIN / "kubectl"), "conveyor", "--help"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"},
    )  # fmt: skip  -- kubectl finds the plugin on PATH as kubectl-conveyor
    for verb in ("status", "canary", "promote", "rollback", "shadow"):
        assert verb in proc.stdout
    for verb in ("canary", "shadow", "status"):
        sub = subprocess.run([str(BIN / "kubectl-conveyor"), verb, "--help"],
                             capture_output=True, text=True, check=True)  # fmt: skip
        for flag in ("--namespace", "--context", "-o"):
            assert flag in sub.stdout
    canary = subprocess.run([str(BIN / "kubectl-conveyor"), "canary", "--help"],
                            capture_output=True, text=True, check=True)  # fmt: skip
    assert "--dry-run" in canary.stdout and "--percent" in canary.stdout


def test_canary_promote_status_flow(rollout, capsys, registry_uri) -> None:
    code, out, err = run(capsys, "canary", "fraud", "--version", "2", "--percent", "25")
    assert code == 0, err
    assert split(rollout) == {
        "fraud-predictor-00002": 25,
        "fraud-predictor-00001": 75,
    }
    assert "Status:          ◌ Progressing" in out
    assert "Candidate:     v2 at 25 %" in out
    code, out, _ = run(capsys, "status", "fraud", "-o", "json")
    doc = json.loads(out)
    assert (doc["champion"], doc["candidate"], doc["canaryTrafficPercent"]) == ("1", "2", 25)
    assert doc["events"][-1]["reason"] == "CanaryStarted"
    assert "by oncall" in doc["events"][-1]["message"]
    code, out, err = run(capsys, "promote", "fraud", "--reason", "healthy")
    assert code == 0, err
    assert split(rollout) == {"fraud-predictor-00002": 100}
    assert "✔ Healthy" in out
    registry = ModelRegistry(registry_uri)
    assert "champion" in registry.get("fraud", "2")["aliases"]


def test_rollback_restores_champion_and_marks_candidate(rollout, capsys, registry_uri) -> None:
    run(capsys, "canary", "fraud", "--version", "2", "--percent", "50")
    code, out, err = run(capsys, "rollback", "fraud", "--reason", "p99 doubled", "-o", "yaml")
    assert code == 0, err
    assert split(rollout) == {"fraud-predictor-00001": 100}
    doc = yaml.safe_load(out)
    assert doc["phase"] == "RolledBack" and doc["candidate"] is None
    v2 = ModelRegistry(registry_uri).get("fraud", "2")
    assert v2["status"] == "rolled_back" and "candidate" not in v2["aliases"]


def test_rollback_of_a_shadow_removes_it_and_rejects_its_version(
    rollout, capsys, registry_uri
) -> None:
    run(capsys, "shadow", "fraud", "--version", "2", "--percent", "20")
    code, _, err = run(capsys, "rollback", "fraud", "--reason", "shadow scores drifted")
    assert code == 0, err
    assert rollout.get(API, "inferenceservices", "models", "fraud-shadow") is None
    assert split(rollout) == {"fraud-predictor-00001": 100}  # the champion never moved
    v2 = ModelRegistry(registry_uri).get("fraud", "2")
    assert v2["status"] == "rolled_back" and "candidate" not in v2["aliases"]


def test_rollback_with_mlflow_down_keeps_traffic_safe_and_says_what_to_run(rollout, capsys) -> None:
    run(capsys, "canary", "fraud", "--version", "2", "--percent", "50")
    code, out, err = run(
        capsys, "rollback", "fraud", "--tracking-uri", "http://127.0.0.1:9", "-o", "yaml"
    )
    assert code != 0, out
    assert split(rollout) == {"fraud-predictor-00001": 100}, err  # traffic first, then MLflow
    assert "MLflow not updated" in err and "conveyor models reject fraud 2" in err


def test_dry_run_prints_the_patch_and_writes_nothing(rollout, capsys) -> None:
    before = len([m for m, _ in rollout.requests if m in ("PATCH", "POST", "PUT")])
    code, out, _ = run(capsys, "canary", "fraud", "--version", "2", "--percent", "5",
                       "--dry-run", "-o", "json")  # fmt: skip
    assert code == 0
    doc = json.loads(out)
    [patch] = [w for w in doc["writes"] if w["verb"] == "patch"]
    assert patch["patch"]["spec"]["predictor"]["canaryTrafficPercent"] == 5
    assert patch["patch"]["metadata"]["annotations"][inf.MODEL_VERSION] == "2"
    after = len([m for m, _ in rollout.requests if m in ("PATCH", "POST", "PUT")])
    assert after == before
    assert split(rollout) == {"fraud-predictor-00001": 100}


def test_shadow_on_and_off(rollout, capsys) -> None:
    code, out, err = run(capsys, "shadow", "fraud", "--version", "2", "--percent", "20")
    assert code == 0, err
    assert "fraud-shadow v2 mirroring 20 %" in out
    code, out, err = run(capsys, "shadow", "fraud", "--off")
    assert code == 0, err
    assert rollout.get(API, "inferenceservices", "models", "fraud-shadow") is None


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["canary", "fraud", "--version", "9", "--percent", "10"], 2, "has no version '9'"),
        (["promote", "fraud"], 2, "no canary in progress"),
        (["rollback", "fraud"], 2, "no canary to roll back"),
        (["status", "ghost"], 2, "InferenceService 'ghost' not found in namespace 'models'"),
        (["status", "fraud", "--context", "nowhere"], 7, "no Kubernetes credentials"),
    ],
)
def test_bad_input_exits_non_zero_and_changes_nothing(rollout, capsys, argv, code, message):
    before = rollout.get(API, "inferenceservices", "models", "fraud")
    got, _, err = run(capsys, *argv)
    assert got == code and message in err
    assert rollout.get(API, "inferenceservices", "models", "fraud") == before


def test_percent_outside_bounds_is_a_usage_error(rollout, capsys) -> None:
    before = rollout.get(API, "inferenceservices", "models", "fraud")
    with pytest.raises(SystemExit) as exc:
        main(["canary", "fraud", "--version", "2", "--percent", "150"])
    assert exc.value.code == 2
    assert "--percent: 150 is outside 0..100" in capsys.readouterr().err
    assert rollout.get(API, "inferenceservices", "models", "fraud") == before


def test_second_canary_is_refused(rollout, capsys) -> None:
    run(capsys, "canary", "fraud", "--version", "2", "--percent", "10")
    code, _, err = run(capsys, "canary", "fraud", "--version", "1", "--percent", "10")
    assert code == 2 and "canary of v2 is already in progress" in err


def test_forbidden_exits_7_with_no_change(rollout, capsys) -> None:
    rollout.deny("patch", "inferenceservices")
    code, _, err = run(capsys, "canary", "fraud", "--version", "2", "--percent", "10")
    assert code == 7 and "forbidden" in err and "conveyor-rollout Role" in err
    assert split(rollout) == {"fraud-predictor-00001": 100}


def test_checksum_mismatch_is_refused_before_any_change(rollout, capsys, registry_uri) -> None:
    registry = ModelRegistry(registry_uri)
    registry.client.set_model_version_tag("fraud", "2", "model.sha256", "0" * 64)
    code, _, err = run(capsys, "canary", "fraud", "--version", "2", "--percent", "10")
    assert code == 6 and "does not match the registry tag" in err
    assert split(rollout) == {"fraud-predictor-00001": 100}


def test_require_approval_refuses_unreviewed_version(rollout, capsys) -> None:
    code, _, err = run(capsys, "canary", "fraud", "--version", "2", "--percent", "10",
                       "--require-approval")  # fmt: skip
    assert code == 2 and "no recorded approval" in err


def test_context_and_namespace_flags(rollout, capsys, tmp_path) -> None:
    rollout.write_kubeconfig(rollout.kubeconfig_path, context="other", namespace="default")
    code, _, err = run(capsys, "status", "fraud", "--context", "other")
    assert code == 2 and "namespace 'default'" in err  # the other context's namespace
    code, out, _ = run(capsys, "status", "fraud", "--context", "other", "-n", "models")
    assert code == 0 and "Name:            fraud" in out
