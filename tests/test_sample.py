"""The sample generator: deterministic, realistic, and able to drift and break on demand."""

import hashlib

import numpy as np
import pytest

from conveyor import sample
from conveyor.errors import BadInputError
from conveyor.tables import write_table
from tests.conftest import AS_OF

pytestmark = pytest.mark.unit


def test_same_seed_gives_byte_identical_files(tmp_path):
    a = write_table(sample.generate(2000, seed=3, as_of=AS_OF), tmp_path / "a.parquet")
    b = write_table(sample.generate(2000, seed=3, as_of=AS_OF), tmp_path / "b.parquet")
    c = write_table(sample.generate(2000, seed=4, as_of=AS_OF), tmp_path / "c.parquet")
    digest = [hashlib.sha256(p.read_bytes()).hexdigest() for p in (a, b, c)]
    assert digest[0] == digest[1]
    assert digest[0] != digest[2]


def test_default_table_has_the_promised_shape():
    df = sample.generate(seed=11, as_of=AS_OF)
    assert len(df) == 50_000
    assert df["id"].is_unique
    assert 8 <= len(sample.NUMERIC_FEATURES) <= 15
    assert 3 <= len(sample.CATEGORICAL_FEATURES) <= 5
    assert 45 <= df["country"].nunique() <= 55
    assert set(df["group"]) == {"A", "B", "C"}
    assert 0.02 <= df["label"].mean() <= 0.10
    for col in sample.NULLABLE_FEATURES:
        assert 0 < df[col].isna().mean() < 0.1, col
    non_nullable = [c for c in df.columns if c not in sample.NULLABLE_FEATURES]
    assert not df[non_nullable].isna().any().any()
    skew = df["amount"].skew()
    assert skew > 2, f"amount should be long-tailed, skew {skew:.2f}"


def test_label_is_learnable_from_features():
    df = sample.generate(20_000, seed=5, as_of=AS_OF)
    # One feature alone already separates the classes somewhat.
    pos = df.loc[df["label"] == 1, "merchant_risk_score"].mean()
    neg = df.loc[df["label"] == 0, "merchant_risk_score"].mean()
    assert pos > neg * 1.3


def test_drift_batch_shifts_distributions():
    clean = sample.generate(20_000, seed=5, as_of=AS_OF)
    drifted = sample.generate(20_000, seed=5, as_of=AS_OF, mode="drift")
    assert drifted["amount"].median() > clean["amount"].median() * 1.4
    assert (drifted["channel"] == "online").mean() > (clean["channel"] == "online").mean() + 0.2


def test_corrupt_batch_carries_each_fault():
    df = sample.generate(5000, seed=5, as_of=AS_OF, mode="corrupt")
    assert (df["amount"] < 0).any()
    assert (df["channel"] == "telepathy").any()
    assert df["merchant_category"].isna().any()
    assert (df["customer_age"] == "unknown").any()
    assert df["id"].duplicated().any()
    assert (df["merchant_risk_score"] > 1).any()


def test_rows_must_be_positive():
    with pytest.raises(BadInputError, match=r"rows: 0 is below the minimum 1"):
        sample.generate(0)


def test_start_id_makes_disjoint_keys():
    a = sample.generate(100, seed=1, as_of=AS_OF)
    b = sample.generate(100, seed=2, as_of=AS_OF, start_id=101)
    assert not np.intersect1d(a["id"], b["id"]).size
