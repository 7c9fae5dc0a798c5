"""The continuous_training pipeline on kfp.local: drift and trigger check, then training only
when a trigger fired and the inputs changed (what `conveyor retrain` runs)."""

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from conveyor.cli import main
from conveyor.registry import TRAINING_KEY_TAG, ModelRegistry
from tests.pipelines.test_cli_run import _small_config

pytestmark = pytest.mark.integration


def _drift_only(workdir: Path) -> Path:
    config = _small_config(workdir)
    # Retrain on drift (and on a missing champion), not on every new batch fingerprint.
    with config.open("a") as f:
        f.write("retrain: {on_new_data: false, on_drift: true, max_age_days: 30}\n")
    return config


def _train_runs(workdir: Path) -> list:
    client = MlflowClient(f"sqlite:///{workdir / '.conveyor' / 'mlflow.db'}")
    exp = client.get_experiment_by_name("conveyor-fraud")
    return client.search_runs([exp.experiment_id], filter_string="tags.`conveyor.stage` = 'train'")


def test_drifted_batch_retrains_clean_one_skips_and_unchanged_rerun_skips(workdir, capsys):
    config = _drift_only(workdir)
    for args in (("--seed", "21"), ("--seed", "22", "--drift")):
        name = "drifted.parquet" if "--drift" in args else "clean.parquet"
        assert main(["sample", "--rows", "3000", "--out", name, *args]) == 0
    capsys.readouterr()

    # 1. no champion yet: the trigger retrains; the version carries the training key and the
    #    run logged the drift reference profile the next checks compare with.
    assert main(["retrain", "--config", str(config), "--data", "clean.parquet"]) == 0
    out = capsys.readouterr().out
    assert "Drift check: NOT_CHECKED" in out and "not checked: no champion" in out
    assert "Retrain trigger: RETRAIN" in out
    registry = ModelRegistry(f"sqlite:///{workdir / '.conveyor' / 'mlflow.db'}")
    (v1,) = registry.versions("fraud")
    assert v1["status"] == "approved" and len(v1["tags"][TRAINING_KEY_TAG]) == 64
    assert registry.reference_profile(v1, workdir / "ref") is not None
    # explicit store: an in-process mlflow.set_tracking_uri elsewhere may have set the env var
    store = f"sqlite:///{workdir / '.conveyor' / 'mlflow.db'}"
    assert main(["models", "--tracking-uri", store, "promote", "fraud", "1"]) == 0
    capsys.readouterr()

    # 2. a clean batch from the same generator: no drift, no other trigger -> skip
    assert main(["retrain", "--config", str(config), "--data", "clean.parquet"]) == 0
    out = capsys.readouterr().out
    # same bytes as v1's batch: skipped before the drift check would even run
    assert "Drift check: NOT_CHECKED" in out and "not checked: unchanged inputs" in out
    assert "unchanged inputs" in out and "fraud v1" in out
    assert main(["sample", "--rows", "3000", "--out", "clean2.parquet", "--seed", "23"]) == 0
    assert main(["retrain", "--config", str(config), "--data", "clean2.parquet"]) == 0
    out = capsys.readouterr().out
    assert "Drift check: STABLE" in out
    assert "no trigger fired for champion v1" in out
    assert len(_train_runs(workdir)) == 1, "a skipped run must not train"

    # 3. a drifted batch: check_drift says drift -> retrain
    assert main(["retrain", "--config", str(config), "--data", "drifted.parquet"]) == 0
    out = capsys.readouterr().out
    assert "Drift check: DRIFT" in out
    assert "- drift: check_drift over threshold" in out
    runs = _train_runs(workdir)
    assert len(runs) == 2
    drift_report = next(workdir.glob(".conveyor/pipeline_root/*/*/check-trigger/drift"))
    assert drift_report.is_file()

    # 4. the same drifted batch again: unchanged inputs -> skip, naming what it matched
    assert main(["retrain", "--config", str(config), "--data", "drifted.parquet"]) == 0
    out = capsys.readouterr().out
    assert "Retrain trigger: SKIP" in out and "unchanged inputs" in out
    assert len(_train_runs(workdir)) == 2
    keys = {r.data.tags[TRAINING_KEY_TAG] for r in _train_runs(workdir)}
    assert len(keys) == 2
