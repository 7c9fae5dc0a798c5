"""register_model and `conveyor models` against MLflow: the sqlite default and a real server."""

import json
import re

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from conveyor import model as model_files
from conveyor import registry
from conveyor.errors import BadInputError, TrackingError
from conveyor.registry import ModelRegistry, tracker_for
from conveyor.stages import register_model
from conveyor.tables import write_json

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "server"])
def uri(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'mlflow.db'}"
    return request.getfixturevalue("mlflow_server")


@pytest.fixture
def name(request):
    """A model name of its own per test: the MLflow server is shared by the session."""
    return "m-" + re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[:50]


def make_run(uri, tmp_path, seed, verdict="approve", **tags):
    """A small but real training run: serving files, an MLflow model, gate + evaluation JSON
    (``tags``: more run tags, e.g. ``model.sklearn_version`` as train sets it)."""
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(60, 2)), np.arange(60) % 2
    model = LogisticRegression(random_state=seed).fit(x, y)
    folder = tmp_path / f"run{seed}"
    digest = model_files.save_model(model, {"numeric": ["a", "b"]}, folder / "serving")
    tracker = tracker_for(uri, "registry-tests", str(tmp_path / "artifacts"))
    run_id = tracker.start_run(
        f"r{seed}", {"model.sha256": digest, "data.sha256": "d" * 64, **tags}
    )
    tracker.log(run_id, params={"seed": seed})
    tracker.log_artifacts(run_id, folder / "serving", "serving")
    tracker.log_sklearn_model(run_id, model, "model", x[:2], ["scikit-learn"])
    tracker.end_run(run_id)
    gate = write_json({"verdict": verdict}, folder / "gate.json")
    evaluation = write_json({"metrics": {"roc_auc": 0.9 + seed / 1000}}, folder / "eval.json")
    return run_id, gate, evaluation


def test_approved_run_gets_a_version_with_full_lineage_and_candidate_alias(uri, name, tmp_path):
    run_id, gate, evaluation = make_run(uri, tmp_path, 1)
    v = register_model.run(name, run_id, gate, evaluation, uri, git_commit="abc123").registered
    assert v["version"] == "1"
    assert v["aliases"] == ["candidate"]
    tags = v["tags"]
    assert tags["conveyor.run_id"] == run_id
    assert tags["git.commit"] == "abc123"
    assert tags["data.sha256"] == "d" * 64
    assert len(tags["model.sha256"]) == 64
    assert json.loads(tags["params"]) == {"seed": "1"}
    assert tags["metric.roc_auc"] == "0.901"
    assert tags["gate.verdict"] == "approve"
    assert tags["gate.report"] == f"runs:/{run_id}/gate/gate.md"
    assert tags["conveyor.status"] == "approved"
    assert "champion" not in v["aliases"]  # registering never moves champion
    assert "model.sklearn_version" not in tags  # a run from before train recorded it


def test_the_version_records_the_scikit_learn_that_pickled_it(uri, name, tmp_path):
    run_id, gate, evaluation = make_run(uri, tmp_path, 2, **{"model.sklearn_version": "1.9.1"})
    tags = register_model.run(name, run_id, gate, evaluation, uri).registered["tags"]
    assert tags["model.sklearn_version"] == "1.9.1"


def test_retried_registration_is_idempotent(uri, name, tmp_path):
    run_id, gate, evaluation = make_run(uri, tmp_path, 2)
    first = register_model.run(name, run_id, gate, evaluation, uri).registered
    again = register_model.run(name, run_id, gate, evaluation, uri).registered
    assert first["version"] == again["version"]
    assert len(ModelRegistry(uri).versions(name)) == 1


def test_hold_registers_without_alias_and_reject_registers_nothing(uri, name, tmp_path):
    held_run, gate, evaluation = make_run(uri, tmp_path, 3, verdict="hold")
    held = register_model.run(name, held_run, gate, evaluation, uri).registered
    assert held["aliases"] == []
    assert held["tags"]["conveyor.status"] == "held"
    assert held["tags"]["conveyor.deployable"] == "False"
    rejected_run, gate, evaluation = make_run(uri, tmp_path, 4, verdict="reject")
    assert register_model.run(name, rejected_run, gate, evaluation, uri).registered is None
    assert [v["run_id"] for v in ModelRegistry(uri).versions(name)] == [held_run]


def test_approve_promote_rollback_leave_a_trail(uri, name, tmp_path, monkeypatch):
    monkeypatch.setenv("CONVEYOR_ACTOR", "oncall@example.com")
    reg = ModelRegistry(uri)
    runs = [make_run(uri, tmp_path, s, verdict=vd) for s, vd in ((5, "approve"), (6, "hold"))]
    v1 = register_model.run(name, *runs[0], uri).registered["version"]
    v2 = register_model.run(name, *runs[1], uri).registered["version"]

    with pytest.raises(BadInputError, match=r"is held: only an approved version can become"):
        reg.promote(name, v2)
    with pytest.raises(BadInputError, match="--reason is required"):
        reg.approve(name, v2, " ")
    approved = reg.approve(name, v2, "reviewed precision drop with risk team")
    assert approved["tags"]["conveyor.approved_by"] == "oncall@example.com"
    assert approved["tags"]["conveyor.approved_reason"] == "reviewed precision drop with risk team"
    assert approved["aliases"] == ["candidate"]

    reg.promote(name, v1, "first release")
    promoted = reg.promote(name, v2, "better recall")
    assert promoted["aliases"] == ["candidate", "champion"]
    assert reg.by_alias(name, "previous-champion")["version"] == v1
    events = [v for k, v in promoted["tags"].items() if k.startswith("conveyor.event.")]
    assert any("promote to champion by oncall@example.com: better recall" in e for e in events)

    restored = reg.rollback(name, "p99 regression")
    assert restored["version"] == v1
    assert "champion" in restored["aliases"]
    assert reg.by_alias(name, "previous-champion") is None
    rolled = reg.get(name, v2)
    assert rolled["status"] == "rolled_back"
    assert any(
        "rolled back by oncall@example.com: p99 regression" in v for v in rolled["tags"].values()
    )
    with pytest.raises(BadInputError, match="no 'previous-champion' alias"):
        reg.rollback(name)


def test_fetch_verifies_the_sha256_before_use(uri, name, tmp_path):
    run_id, gate, evaluation = make_run(uri, tmp_path, 7)
    version = register_model.run(name, run_id, gate, evaluation, uri).registered["version"]
    reg = ModelRegistry(uri)
    assert reg.fetch(name, "champion", tmp_path / "none") is None
    reg.promote(name, version)
    local = reg.fetch(name, "champion", tmp_path / "champ")
    model, _ = model_files.load_model(local)
    assert hasattr(model, "predict_proba")
    reg.client.set_model_version_tag(name, version, "model.sha256", "0" * 64)
    with pytest.raises(TrackingError, match=r"does not match the registry tag model\.sha256"):
        reg.fetch(name, "champion", tmp_path / "tampered")


def test_failed_alias_leaves_the_registry_as_it_was(uri, name, tmp_path, monkeypatch):
    run_id, gate, evaluation = make_run(uri, tmp_path, 8)
    monkeypatch.setattr(registry, "RETRIES", 1)

    def broken(*args, **kwargs):
        raise ConnectionError("registry went away")

    monkeypatch.setattr(ModelRegistry, "_set_alias", broken)
    with pytest.raises(ConnectionError, match="registry went away"):
        register_model.run(name, run_id, gate, evaluation, uri)
    assert ModelRegistry(uri).versions(name) == []


def test_transient_failures_are_retried_then_reported(monkeypatch):
    calls = []

    def flaky():
        calls.append(1)
        raise ConnectionError("connection reset")

    monkeypatch.setattr(registry.time, "sleep", lambda s: calls.append(s))
    with pytest.raises(TrackingError, match="failed after 3 attempts: connection reset"):
        registry._with_retry("list versions", flaky)
    assert calls == [1, 0.5, 1, 1.0, 1]  # three tries, backoff 0.5 s then 1 s


def test_models_cli(uri, name, tmp_path, capsys, monkeypatch):
    from conveyor.cli import main

    monkeypatch.setenv("CONVEYOR_ACTOR", "alice")
    held = make_run(uri, tmp_path, 9, verdict="hold")
    version = register_model.run(name, *held, uri).registered["version"]
    base = ["models", "--tracking-uri", uri]
    assert main([*base, "promote", name, version]) == 2
    assert "only an approved version can become champion" in capsys.readouterr().err
    assert main([*base, "approve", name, version, "--reason", "checked by hand"]) == 0
    assert f"{name} v{version} approved by alice" in capsys.readouterr().out
    assert main([*base, "promote", name, version, "--reason", "ship it"]) == 0
    assert main([*base, "list", name, "--format", "json"]) == 0
    out = capsys.readouterr().out
    listed = json.loads(out[out.index("[") :])
    assert listed[0]["aliases"] == ["candidate", "champion"]
    assert main([*base, "rollback", name]) == 2
    assert "nothing to roll back to" in capsys.readouterr().err
    assert main([*base, "list", "nope"]) == 0
    assert "nope: no registered versions" in capsys.readouterr().out


def test_long_params_are_cut_to_valid_json(uri, name, tmp_path):
    run_id, gate, evaluation = make_run(uri, tmp_path, 10)
    tracker_for(uri, "registry-tests").log(
        run_id, params={f"p{i:03d}": "x" * 40 for i in range(200)}
    )
    tags = register_model.run(name, run_id, gate, evaluation, uri).registered["tags"]
    params = json.loads(tags["params"])
    assert params["_truncated"] is True
    assert len(tags["params"]) <= 5000
    assert params["p000"] == "x" * 40


@pytest.mark.integration
def test_a_typo_in_a_sqlite_store_path_is_an_error_not_a_new_empty_registry(tmp_path, capsys):
    """Issue 17, item 6: MLflow would create the folders and an empty store, which answered
    "no registered versions" for a registry that is fine, just elsewhere."""
    from conveyor.cli import main

    typo = tmp_path / "conveyr" / "mlflow.db"
    assert main(["models", "--tracking-uri", f"sqlite:///{typo}", "list", "fraud"]) == 6
    err = capsys.readouterr().err
    assert f"the folder {typo.parent} does not exist" in err and "Check the path" in err
    assert not typo.parent.exists()  # nothing created


@pytest.mark.integration
def test_a_uri_mlflow_cannot_track_to_is_named(capsys):
    from conveyor.cli import main

    assert main(["models", "--tracking-uri", "ftp://user:pw-5521@x/y", "list", "fraud"]) == 6
    err = capsys.readouterr().err
    assert "MLflow cannot track to ftp://" in err and "Traceback" not in err
    assert "pw-5521" not in err
