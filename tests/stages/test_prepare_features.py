"""prepare_features: splits, fitted preprocessing and reference profile from the config text a
component receives, the same as from the parsed model."""

import json
from pathlib import Path

import pytest

from conveyor.errors import BadInputError
from conveyor.stages import prepare_features
from conveyor.tables import read_table, write_table

pytestmark = pytest.mark.unit


def test_config_text_and_model_give_the_same_splits(tmp_path, small_df, config):
    data = write_table(small_df, tmp_path / "batch.parquet")
    out = prepare_features.FeatureOutputs.under(tmp_path / "text")
    text = json.dumps(config.features.model_dump(mode="json"))
    result = prepare_features.run(data, text, out)
    assert sum(result.rows.values()) == len(small_df)
    for split in ("train", "validation", "holdout"):
        assert len(read_table(getattr(out, split))) == result.rows[split]
    assert result.n_features_out > len(config.features.numeric)
    profile = json.loads(out.profile.read_text())
    assert set(config.features.numeric) <= set(profile["columns"])
    again = prepare_features.run(
        data, config.features, prepare_features.FeatureOutputs.under(tmp_path / "model")
    )
    assert again == result


def test_a_config_mistake_names_the_field_and_writes_nothing(tmp_path, small_df):
    data = write_table(small_df, tmp_path / "batch.parquet")
    out = prepare_features.FeatureOutputs.under(tmp_path / "prep")
    with pytest.raises(BadInputError, match=r"features.*numerik"):
        prepare_features.run(data, '{"numerik": ["amount"], "label": "is_fraud"}', out)
    assert not (tmp_path / "prep").exists()


def test_the_contract_tells_the_model_server_what_to_refuse(tmp_path, small_df, config):
    from conveyor.contracts import load_contract

    path = config.resolve(config.contract)
    contract = load_contract(path)
    text = Path(path).read_text()  # as the component receives it
    data = write_table(small_df, tmp_path / "batch.parquet")
    out = prepare_features.FeatureOutputs.under(tmp_path / "prep")
    spec = prepare_features.run(data, config.features, out, text).feature_spec
    written = json.loads((out.preprocessing / "feature_spec.json").read_text())
    assert written["allowed"] == spec["allowed"]
    closed = {c for c in config.features.categorical if contract.columns[c].allowed}
    assert set(spec["allowed"]) == closed and closed  # card_type, channel, merchant_category
    assert spec["allowed"]["channel"] == [str(v) for v in contract.columns["channel"].allowed]
    inputs = [*config.features.numeric, *config.features.categorical]
    assert spec["not_null"] == [c for c in inputs if not contract.columns[c].nullable]
    assert "customer_age" not in spec["not_null"]  # nullable in the contract: imputed
    # without a contract nothing is refused
    bare = prepare_features.run(data, config.features, prepare_features.FeatureOutputs.under(
        tmp_path / "bare")).feature_spec  # fmt: skip
    assert bare["allowed"] == {} and bare["not_null"] == []
