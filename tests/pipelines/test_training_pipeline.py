"""The training pipeline on kfp.local (SubprocessRunner) against a real MLflow server."""

import json

import pytest
from mlflow.tracking import MlflowClient

from conveyor.errors import ContractViolationError
from conveyor.pipelines.local import PipelineFailedError, find_output, run_training
from conveyor.sample import generate
from conveyor.tables import write_table

pytestmark = pytest.mark.integration


def _runs(uri: str, experiment: str) -> list:
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    return [] if exp is None else client.search_runs([exp.experiment_id])


def test_pipeline_runs_end_to_end(tmp_path, config, mlflow_server):
    data = write_table(generate(4000, seed=7), tmp_path / "batch.parquet")
    cfg = config.model_copy(deep=True)
    cfg.tracking.experiment = "pipeline-e2e"
    cfg.registry.model_name = "pipeline-e2e"
    result = run_training(cfg, str(data), "", tmp_path / "root", mlflow_server, "")

    run_dir = result["run_dir"]
    for task in ("validate-data", "prepare-features", "train", "evaluate"):
        assert (run_dir / task / "executor_output.json").is_file(), task
    model = find_output(run_dir, "train", "model")
    assert sorted(p.name for p in model.iterdir()) == [
        "feature_spec.json",
        "model.joblib",
        "model.sha256",
    ]
    doc = json.loads(find_output(run_dir, "evaluate", "evaluation").read_text())
    assert doc["metrics"]["roc_auc"] > 0.75

    (run,) = _runs(mlflow_server, "pipeline-e2e")
    assert run.info.run_id == result["run_id"]
    assert run.info.status == "FINISHED"
    assert run.data.tags["model.sha256"] == doc["model"]["sha256"]
    validation = json.loads(find_output(run_dir, "validate-data", "report_json").read_text())
    assert run.data.tags["data.sha256"] == validation["data_sha256"]
    assert run.data.metrics["test_roc_auc"] == pytest.approx(doc["metrics"]["roc_auc"])

    gate_doc = json.loads(find_output(run_dir, "quality-gate", "gate").read_text())
    assert run.data.tags["gate.verdict"] == gate_doc["verdict"]
    from conveyor.registry import ModelRegistry

    versions = ModelRegistry(mlflow_server).versions(cfg.model_name)
    if gate_doc["verdict"] == "reject":
        assert versions == []
    else:
        (version,) = versions
        assert version["run_id"] == result["run_id"]
        assert version["tags"]["gate.verdict"] == gate_doc["verdict"]
        assert "champion" not in version["aliases"]  # training never moves champion


def test_contract_violation_stops_the_line(tmp_path, config, mlflow_server):
    data = write_table(generate(4000, seed=7, mode="corrupt"), tmp_path / "bad.parquet")
    cfg = config.model_copy(deep=True)
    cfg.tracking.experiment = "pipeline-rejected"
    with pytest.raises(PipelineFailedError, match="validate-data") as err:
        run_training(cfg, str(data), "", tmp_path / "root", mlflow_server, "")
    assert not isinstance(err.value, ContractViolationError)
    run_dir = err.value.run_dir
    assert run_dir is not None and str(run_dir) in str(err.value)
    report = json.loads(find_output(run_dir, "validate-data", "report_json").read_text())
    assert report["passed"] is False
    assert report["violation_count"] == 7
    assert find_output(run_dir, "validate-data", "dataset") is None  # nothing handed on
    assert not (run_dir / "train").exists()
    assert _runs(mlflow_server, "pipeline-rejected") == []  # no training run at all
