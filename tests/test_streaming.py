"""A table read in batches gets the report the whole table in memory gets: the same
violations, counts, examples and PSI, whatever the batch size and wherever a repeat falls."""

from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conveyor import contracts, distributions, sample
from conveyor.contracts import contract_from_yaml, load_contract, validate, validate_frames
from conveyor.stages import validate_data
from conveyor.tables import iter_frames, write_table

ROOT = Path(__file__).resolve().parents[1]
AS_OF = datetime(2026, 1, 1)


@pytest.fixture(scope="module")
def contract() -> contracts.Contract:
    return load_contract(ROOT / "examples/fraud/contract.yaml")


def both(df: pd.DataFrame, tmp: Path, contract, reference=None, rows: int = 700):
    """The report of ``df`` whole, and of its Parquet file read ``rows`` at a time."""
    path = write_table(df, tmp / "batch.parquet")
    whole = validate(pd.read_parquet(path), contract, reference, AS_OF, source="x")
    batches = list(iter_frames(path, rows=rows))
    assert len(batches) == -(-len(df) // rows)  # really read in batches
    streamed = validate_frames(
        lambda: iter_frames(path, rows=rows), contract, reference, AS_OF, "x"
    )
    return whole, streamed


@pytest.mark.parametrize("mode", ["clean", "corrupt", "drift"])
def test_streamed_report_equals_the_whole_table(tmp_path, contract, mode) -> None:
    reference = distributions.profile_frame(sample.generate(3000, seed=3, as_of=AS_OF))
    df = sample.generate(3000, seed=5, as_of=AS_OF, mode=mode)
    whole, streamed = both(df, tmp_path, contract, reference)
    assert streamed == whole
    assert whole["drift"]  # the PSI part was compared too
    if mode == "corrupt":
        checks = {v["check"] for v in whole["violations"]}
        assert {"range", "not_null", "allowed_values", "unique_key"} <= checks, checks


def test_repeats_across_batches_are_found_with_their_examples(tmp_path) -> None:
    contract = contract_from_yaml(
        "name: t\nkey: [a, b]\nrows: {min: 1}\ncolumns:\n"
        "  a: {dtype: int}\n  b: {dtype: string}\n"
        "  u: {dtype: float, unique: true, nullable: true}\n"
    )
    n = 2000
    df = pd.DataFrame({"a": np.arange(n), "b": ["x"] * n, "u": np.arange(n, dtype=np.float64) / 7})
    df.loc[1999, ["a", "b"]] = [3, "x"]  # the key of row 3, two batches later
    df.loc[1500, "u"] = df.loc[10, "u"]
    df.loc[[20, 1700], "u"] = np.nan  # nulls never repeat
    whole, streamed = both(df, tmp_path, contract, rows=300)
    assert streamed == whole
    found = {v["check"]: v for v in streamed["violations"]}
    assert found["unique_key"]["bad_count"] == 2
    assert found["unique_key"]["examples"] == ["3|x"]
    assert found["unique"]["bad_count"] == 2
    assert found["unique"]["examples"] == [pytest.approx(10 / 7)]


def test_a_hash_collision_never_becomes_a_violation(tmp_path, contract, monkeypatch) -> None:
    """Every row's hash made equal: each is a candidate, and the exact second pass still
    finds only the one true repeat."""
    df = sample.generate(1500, seed=2, as_of=AS_OF)
    df.loc[1400, "id"] = df.loc[7, "id"]
    monkeypatch.setattr(
        contracts, "_key_hashes", lambda frame: np.zeros(len(frame), dtype=np.uint64)
    )
    whole, streamed = both(df, tmp_path, contract, rows=400)
    assert streamed == whole
    (dup,) = [v for v in streamed["violations"] if v["check"] == "unique_key"]
    assert dup["bad_count"] == 2 and dup["examples"] == [int(df.loc[7, "id"])]


def test_examples_come_from_the_first_offending_rows_across_batches(tmp_path) -> None:
    contract = contract_from_yaml("name: t\ncolumns:\n  x: {dtype: float, max: 10}\n")
    x = np.zeros(1000)
    x[[5, 400, 401, 998]] = [11, 12, 11, 13]  # offending rows in three batches
    x[600:] = np.where(np.arange(400) % 2, 20.0, x[600:])
    whole, streamed = both(pd.DataFrame({"x": x}), tmp_path, contract, rows=200)
    assert streamed == whole
    (v,) = streamed["violations"]
    # 13 (row 998) is past the first 100 offending rows, where examples stop looking
    assert v["examples"] == [11.0, 12.0, 20.0]
    assert v["bad_count"] == 4 + 200
    assert v["found"] == "min 0, max 20"


def test_an_empty_parquet_table_is_one_empty_batch(tmp_path, contract) -> None:
    df = sample.generate(1000, seed=1, as_of=AS_OF).iloc[:0]
    whole, streamed = validate(df, contract, as_of=AS_OF, source="x"), None
    path = write_table(df, tmp_path / "empty.parquet")
    streamed = validate_frames(lambda: iter_frames(path), contract, None, AS_OF, "x")
    assert streamed == whole
    assert [v["check"] for v in streamed["violations"]] == ["row_count", "freshness"]


def test_validate_data_copies_a_passing_parquet_batch_without_loading_it(tmp_path) -> None:
    df = sample.generate(1200, seed=4)
    src = write_table(df, tmp_path / "in.parquet")
    result = validate_data.run(
        src, load_contract(ROOT / "examples/fraud/contract.yaml"), tmp_path / "out", None, None
    )
    assert result.passed and result.rows == 1200
    assert (tmp_path / "out/data.parquet").read_bytes() == src.read_bytes()


def test_streamed_drift_equals_the_whole_batch(tmp_path) -> None:
    """PSI, KS and its p-value, score PSI: the same from 7 batches as from the whole table."""
    from conveyor import drift
    from conveyor.config import DriftPolicy

    reference = distributions.profile_frame(sample.generate(4000, seed=3, as_of=AS_OF))
    rng = np.random.default_rng(0)
    reference[drift.SCORE] = distributions.profile_column(pd.Series(rng.random(4000)))
    df = sample.generate(3000, seed=9, as_of=AS_OF, mode="drift")
    path = write_table(df, tmp_path / "current.parquet")
    policy = DriftPolicy(ks_threshold=0.05)
    scorer = lambda frame: frame["amount"].to_numpy() / 1000.0  # noqa: E731
    whole = drift.check_drift(reference, df, policy, current_scores=scorer(df))
    streamed = drift.check_drift_frames(reference, iter_frames(path, rows=450), policy, scorer)
    assert streamed == whole
    assert whole["decision"] == "drift" and whole["score"] is not None
    assert any(f["ks"] is not None for f in whole["features"])


def test_streamed_profile_equals_the_whole_table(tmp_path) -> None:
    """Quantile edges, ECDF, category order and counts: the same from batches (numeric
    columns read one at a time) as from the frame in memory."""
    df = sample.generate(2500, seed=6, as_of=AS_OF, mode="corrupt")
    df.loc[::3, "channel"] = None
    path = write_table(df, tmp_path / "t.parquet")
    columns = [c for c in df.columns if c != "event_time"]
    whole = distributions.profile_frame(pd.read_parquet(path), columns, bins=7)
    streamed = distributions.profile_frames(
        lambda cols: iter_frames(path, cols, rows=300), columns, bins=7
    )
    assert streamed == whole
    assert streamed["columns"]["channel"]["nulls"] > 800
    assert streamed["columns"]["amount"]["bins"]["edges"]
