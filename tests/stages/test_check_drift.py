"""check_drift: against a given profile, or against the champion's own (with score PSI)."""

import json

import pytest

from conveyor import features
from conveyor.registry import ModelRegistry
from conveyor.stages import check_drift
from conveyor.tables import write_table

pytestmark = pytest.mark.integration


def _reports(tmp_path, name: str) -> tuple:
    return tmp_path / f"{name}.json", tmp_path / f"{name}.md", tmp_path / f"{name}.html"


def test_against_a_profile_a_shifted_batch_drifts(tmp_path, small_df, config):
    prep = features.FeatureOutputs.under(tmp_path / "prep")
    features.prepare(small_df, config.features, prep)
    same = write_table(small_df, tmp_path / "same.parquet")
    shifted_df = small_df.assign(amount=small_df["amount"] * 8 + 500)
    shifted = write_table(shifted_df, tmp_path / "shifted.parquet")
    policy = '{"features": ["amount", "customer_age"]}'
    stable = check_drift.run(same, policy, "fraud", *_reports(tmp_path, "stable"),
                             reference_profile=prep.profile)  # fmt: skip
    assert stable.decision == "stable"
    result = check_drift.run(shifted, policy, "fraud", *_reports(tmp_path, "drift"),
                             reference_profile=prep.profile)  # fmt: skip
    assert result.decision == "drift"
    assert result.metrics["psi_amount"] > 0.25 > result.metrics["psi_customer_age"]
    assert result.metrics["drifted_features"] == 1
    assert json.loads((tmp_path / "drift.json").read_text())["decision"] == "drift"
    assert "amount" in (tmp_path / "drift.md").read_text()
    assert "<html" in (tmp_path / "drift.html").read_text()


def test_against_the_champion_scores_the_batch(tmp_path, registry_uri, fraud_models):
    batch = write_table(fraud_models.rows, tmp_path / "batch.parquet")
    none = check_drift.run(batch, "", "fraud", *_reports(tmp_path, "none"), registry_uri)
    assert none.decision == "no_reference" and "no champion" in none.summary
    ModelRegistry(registry_uri).client.set_registered_model_alias("fraud", "champion", "1")
    result = check_drift.run(batch, "", "fraud", *_reports(tmp_path, "champ"), registry_uri)
    assert result.decision in ("stable", "drift")
    assert result.report["reference_source"] == "fraud v1 (champion) training run"
    assert "score_psi" in result.metrics
