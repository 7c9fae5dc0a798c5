"""The Tracker contract: the in-memory double behaves like MLflow (sqlite store and server)."""

import pytest

from conveyor.errors import TrackingError
from conveyor.registry import MemoryTracker, MlflowTracker, tracker_for

pytestmark = pytest.mark.integration


@pytest.fixture(params=["memory", "sqlite", "server"])
def tracker(request, tmp_path):
    name = f"contract-{request.param}-{request.node.name}"[:60]
    if request.param == "memory":
        return tracker_for("memory://", name)
    if request.param == "sqlite":
        return tracker_for(f"sqlite:///{tmp_path / 'mlflow.db'}", name, str(tmp_path / "art"))
    return tracker_for(request.getfixturevalue("mlflow_server"), name)


def test_run_lifecycle_is_the_same_for_every_tracker(tracker, tmp_path):
    run_id = tracker.start_run("train", {"conveyor.stage": "train"})
    tracker.log(run_id, params={"b": 2, "a": "x"}, metrics={"auc": 0.9}, tags={"t": "1"})
    tracker.log(run_id, metrics={"test_auc": 0.85})  # a later stage adds to the same run
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "model.joblib").write_bytes(b"model")
    tracker.log_artifacts(run_id, tmp_path / "out", "serving")
    tracker.end_run(run_id)

    info = tracker.run_info(run_id)
    assert info["status"] == "FINISHED"
    assert info["params"] == {"a": "x", "b": "2"}
    assert info["metrics"] == {"auc": 0.9, "test_auc": 0.85}
    assert info["tags"]["t"] == "1"
    assert info["tags"]["conveyor.stage"] == "train"


def test_failed_runs_are_marked_failed(tracker):
    run_id = tracker.start_run("train", {})
    tracker.end_run(run_id, "FAILED")
    assert tracker.run_info(run_id)["status"] == "FAILED"


def test_the_factory_picks_the_implementation(tmp_path):
    assert isinstance(tracker_for("memory://", "x"), MemoryTracker)
    sqlite = tracker_for(f"sqlite:///{tmp_path / 'm.db'}", "x", str(tmp_path / "a"))
    assert isinstance(sqlite, MlflowTracker)


def test_memory_tracker_rejects_unknown_runs():
    with pytest.raises(TrackingError, match="run 'nope' does not exist"):
        MemoryTracker().log("nope", metrics={"a": 1.0})
