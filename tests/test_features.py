"""prepare_features: deterministic stratified split, preprocessing fitted on train only."""

import json

import joblib
import numpy as np
import pytest

from conveyor import features
from conveyor.errors import BadInputError
from conveyor.tables import read_table

pytestmark = pytest.mark.unit


def test_split_is_deterministic_disjoint_complete_and_stratified(small_df, config):
    a = features.split_positions(small_df, config.features)
    b = features.split_positions(small_df, config.features)
    for name in features.SPLITS:
        assert np.array_equal(a[name], b[name])
    joined = np.concatenate([a[n] for n in features.SPLITS])
    assert len(joined) == len(small_df) == len(np.unique(joined))
    overall = small_df["label"].mean()
    for name in features.SPLITS:
        rate = small_df["label"].iloc[a[name]].mean()
        assert abs(rate - overall) < 0.005, (name, rate, overall)
    assert len(a["train"]) == pytest.approx(0.7 * len(small_df), abs=2)


def test_hash_split_keeps_rows_on_their_side_when_the_table_grows(small_df, config):
    from conveyor.sample import generate
    from tests.conftest import AS_OF

    grown = generate(6000, seed=7, as_of=AS_OF)  # same first 4000 rows' ids + 2000 new
    first = features.split_positions(small_df, config.features)
    second = features.split_positions(grown, config.features)
    ids_before = set(small_df["id"].iloc[first["holdout"]])
    ids_after = set(grown["id"].iloc[second["holdout"]])
    # Rank-based cut-offs move a little as rows arrive; most holdout rows stay in holdout.
    assert len(ids_before & ids_after) / len(ids_before) > 0.8


def test_without_a_key_the_row_position_identifies_a_row_and_says_so(
    tmp_path, small_df, config, capsys
):
    spec = config.features.model_copy(update={"key": None})
    keyless = small_df.drop(columns="id")
    first = features.split_positions(keyless, spec)
    assert sorted(np.concatenate(list(first.values()))) == list(range(len(keyless)))
    # appended rows leave the existing rows' sides mostly as they were, as a key would
    grown = features.split_positions(concat_rows(keyless, keyless.head(1000)), spec)
    kept = set(first["holdout"]) & set(grown["holdout"])
    assert len(kept) / len(first["holdout"]) > 0.8
    # a reordered table does not: the position is the identity, as the note says
    shuffled = features.split_positions(keyless.iloc[::-1].reset_index(drop=True), spec)
    assert not np.array_equal(shuffled["holdout"], first["holdout"])

    result = features.prepare(keyless, spec, features.FeatureOutputs.under(tmp_path))
    assert sum(result.rows.values()) == len(keyless)
    assert result.feature_spec["key"] is None
    assert "id" not in read_table(tmp_path / "train").columns
    assert f"conveyor: note: {features.POSITION_NOTE}" in capsys.readouterr().err


def concat_rows(a, b):
    import pandas as pd

    return pd.concat([a, b], ignore_index=True)


def test_random_split_depends_on_seed(small_df, config):
    spec = config.features.model_copy(deep=True)
    spec.split.method = "random"
    a = features.split_positions(small_df, spec)["holdout"]
    spec.split.seed = 99
    b = features.split_positions(small_df, spec)["holdout"]
    assert not np.array_equal(a, b)


def test_prepare_writes_outputs_and_fits_on_train_only(tmp_path, small_df, config):
    out = features.FeatureOutputs.under(tmp_path)
    result = features.prepare(small_df, config.features, out)
    train = read_table(out.train)
    assert len(train) == result.rows["train"]
    assert {"group", "label", "id"} <= set(train.columns)
    pre = joblib.load(out.preprocessing / "preprocessor.joblib")
    scaler = pre.named_transformers_["numeric"].named_steps["scale"]
    amount = config.features.numeric.index("amount")
    assert scaler.mean_[amount] == pytest.approx(train["amount"].mean())
    assert scaler.mean_[amount] != pytest.approx(small_df["amount"].mean())
    spec = json.loads((out.preprocessing / "feature_spec.json").read_text())
    assert spec["input_columns"] == [*config.features.numeric, *config.features.categorical]
    assert len(spec["features_out"]) == result.n_features_out
    profile = json.loads(out.profile.read_text())
    assert set(profile["columns"]) == set(spec["input_columns"])
    assert profile["columns"]["amount"]["bins"]["edges"]


def test_missing_configured_column_is_named(tmp_path, small_df, config):
    with pytest.raises(BadInputError, match=r"configured column\(s\) \['channel'\] not in"):
        features.prepare(small_df.drop(columns="channel"), config.features, tmp_path)


def test_single_class_label_is_rejected(tmp_path, small_df, config):
    with pytest.raises(BadInputError, match="expected both classes 0 and 1, found \\[0\\]"):
        features.prepare(small_df.assign(label=0), config.features, tmp_path)


def test_feature_config_rules():
    from conveyor.config import FeatureSpec, SplitSpec

    with pytest.raises(ValueError, match="listed as both numeric and categorical"):
        FeatureSpec(numeric=["a"], categorical=["a"])
    with pytest.raises(ValueError, match=r"must be 1\.0, got 1\.1"):
        SplitSpec(train=0.8, validation=0.15, holdout=0.15)
    with pytest.raises(ValueError, match="'label' is the label/key and cannot be a feature"):
        FeatureSpec(numeric=["label"])


def test_a_label_of_two_named_values_trains_with_its_positive_class(tmp_path, small_df, config):
    named = small_df.assign(label=small_df["label"].map({1: "Yes", 0: "No"}))
    with pytest.raises(BadInputError, match=r"found \['No', 'Yes'\]; to use these values, set "
                       r"features.positive to the positive one \(e.g. 'Yes'\)"):  # fmt: skip
        features.prepare(named, config.features, tmp_path / "a")
    spec = config.features.model_copy(update={"positive": "Yes"})
    out = features.FeatureOutputs.under(tmp_path / "b")
    result = features.prepare(named, spec, out)
    expected = features.prepare(small_df, config.features, features.FeatureOutputs.under(tmp_path))
    assert result.rows == expected.rows and result.positive_rate == expected.positive_rate
    assert (
        read_table(out.train)["label"].tolist() == read_table(tmp_path / "train")["label"].tolist()
    )
    assert json.loads((out.preprocessing / "feature_spec.json").read_text())["positive"] == "Yes"
    wrong = config.features.model_copy(update={"positive": "yes"})
    with pytest.raises(BadInputError, match=r"features.positive 'yes': the label 'label' must "
                       r"hold exactly two values, one of them the positive class"):  # fmt: skip
        features.prepare(named, wrong, tmp_path / "c")
