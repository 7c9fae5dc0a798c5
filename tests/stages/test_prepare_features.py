"""prepare_features: splits, fitted preprocessing and reference profile from the config text a
component receives, the same as from the parsed model."""

import json

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
