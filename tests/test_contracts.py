"""Data contracts: every rule kind, all violations at once, and clear contract-file errors."""

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from conveyor import contracts, distributions
from conveyor.errors import BadInputError, ContractViolationError
from tests.conftest import AS_OF

pytestmark = pytest.mark.unit


def run(df, contract, reference=None):
    return contracts.validate(df, contract, reference, as_of=AS_OF)


def checks(report):
    return {(v["column"], v["check"]) for v in report["violations"]}


def test_clean_batch_passes(small_df, contract):
    report = run(small_df, contract)
    assert report["passed"], report["violations"]
    assert report["rows"] == len(small_df)
    contracts.enforce(report)  # does not raise


def test_all_violations_are_collected_not_first_fail(contract):
    from conveyor.sample import generate

    df = generate(5000, seed=5, as_of=AS_OF - timedelta(days=1), mode="corrupt")
    report = run(df, contract)
    assert not report["passed"]
    assert checks(report) >= {
        ("amount", "range"),
        ("channel", "allowed_values"),
        ("merchant_category", "not_null"),
        ("customer_age", "dtype"),
        ("id", "unique_key"),
        ("merchant_risk_score", "range"),
        ("event_time", "freshness"),
    }
    with pytest.raises(ContractViolationError, match=r"7 contract violation\(s\)") as err:
        contracts.enforce(report)
    assert err.value.exit_code == 4


def test_range_examples_of_an_int_column_print_as_ints(small_df, contract):
    small_df.loc[[4, 8], "hour_of_day"] = [24, 31]
    (v,) = run(small_df, contract)["violations"]
    assert (v["column"], v["examples"]) == ("hour_of_day", [24, 31])
    assert all(type(e) is int for e in v["examples"])
    assert "e.g. 24, 31" in v["message"]


def test_range_violation_names_column_bound_count_and_examples(small_df, contract):
    small_df.loc[[3, 9, 27], "merchant_risk_score"] = [1.5, 2.0, -0.1]
    (v,) = run(small_df, contract)["violations"]
    assert v["column"] == "merchant_risk_score"
    assert v["check"] == "range"
    assert v["bad_count"] == 3
    assert v["bound"] == "[0, 1]"
    assert v["examples"] == [1.5, 2.0, -0.1]
    assert (
        "column 'merchant_risk_score': range failed for 3 row(s); expected [0, 1]" in (v["message"])
    )


def test_missing_required_column(small_df, contract):
    report = run(small_df.drop(columns=["channel"]), contract)
    assert ("channel", "required") in checks(report)
    assert "missing column" in report["violations"][0]["message"]


def test_wrong_dtype_reports_offending_values(small_df, contract):
    small_df["txn_count_24h"] = small_df["txn_count_24h"].astype(object)
    small_df.loc[5, "txn_count_24h"] = "many"
    small_df.loc[6, "txn_count_24h"] = 2.5
    (v,) = run(small_df, contract)["violations"]
    assert (v["column"], v["check"], v["bad_count"]) == ("txn_count_24h", "dtype", 2)
    assert v["examples"] == ["many", 2.5]


def test_numbers_in_a_string_column_are_a_dtype_violation(small_df, contract):
    small_df["card_type"] = np.arange(len(small_df))
    report = run(small_df, contract)
    assert ("card_type", "dtype") in checks(report)


def test_ints_read_as_float_because_of_gaps_are_accepted(small_df, contract):
    small_df["hour_of_day"] = small_df["hour_of_day"].astype(float)
    assert run(small_df, contract)["passed"]


def test_nulls_in_required_column_but_not_in_nullable(small_df, contract):
    small_df.loc[:9, "amount"] = np.nan
    small_df.loc[:99, "customer_age"] = np.nan  # nullable: allowed
    (v,) = run(small_df, contract)["violations"]
    assert (v["column"], v["check"], v["bad_count"]) == ("amount", "not_null", 10)


def test_unknown_category(small_df, contract):
    small_df.loc[[1, 2], "card_type"] = ["platinum", "gold"]
    (v,) = run(small_df, contract)["violations"]
    assert (v["column"], v["check"], v["bad_count"]) == ("card_type", "allowed_values", 2)
    assert v["examples"] == ["platinum", "gold"]


def test_duplicate_keys(small_df, contract):
    small_df.loc[10, "id"] = small_df.loc[11, "id"]
    (v,) = run(small_df, contract)["violations"]
    assert (v["column"], v["check"], v["bad_count"]) == ("id", "unique_key", 2)
    assert v["examples"] == [int(small_df.loc[11, "id"])]


def test_composite_key_and_unique_column(contract):
    c = contracts.Contract.model_validate(
        {
            "name": "t",
            "key": ["a", "b"],
            "columns": {
                "a": {"dtype": "int"},
                "b": {"dtype": "string"},
                "c": {"dtype": "int", "unique": True},
            },
        }
    )
    df = pd.DataFrame({"a": [1, 1, 1], "b": ["x", "y", "x"], "c": [1, 2, 2]})
    report = run(df, c)
    assert checks(report) == {("a,b", "unique_key"), ("c", "unique")}
    assert next(v for v in report["violations"] if v["check"] == "unique_key")["examples"] == [
        "1|x"
    ]


def test_row_count_bounds(small_df, contract):
    report = run(small_df.head(10), contract)
    (v,) = report["violations"]
    assert (v["column"], v["check"]) == (None, "row_count")
    assert v["bound"] == "between 1000 and 20000000 rows"
    assert v["found"] == 10


def test_empty_table_is_a_row_count_violation(small_df, contract):
    report = run(small_df.head(0), contract)
    assert (None, "row_count") in checks(report)


def test_freshness(small_df, contract):
    report = contracts.validate(small_df, contract, as_of=AS_OF + timedelta(days=30))
    (v,) = report["violations"]
    assert (v["column"], v["check"]) == ("event_time", "freshness")
    assert "newest within 7 days" in v["bound"]


def test_datetime_strings_from_csv_are_parsed(small_df, contract):
    small_df["event_time"] = small_df["event_time"].dt.strftime("%Y-%m-%d %H:%M:%S")
    small_df.loc[0, "event_time"] = "yesterday-ish"
    (v,) = run(small_df, contract)["violations"]
    assert (v["column"], v["check"], v["examples"]) == ("event_time", "dtype", ["yesterday-ish"])


def test_drift_against_reference_profile(contract):
    from conveyor.sample import generate

    ref = distributions.profile_frame(generate(20_000, seed=1, as_of=AS_OF))
    clean = run(generate(20_000, seed=2, as_of=AS_OF), contract, ref)
    assert clean["passed"], clean["violations"]
    assert all(d["band"] == "stable" for d in clean["drift"].values())
    drifted = run(generate(20_000, seed=2, as_of=AS_OF, mode="drift"), contract, ref)
    drifted_cols = {v["column"] for v in drifted["violations"] if v["check"] == "drift"}
    assert {"merchant_risk_score", "channel", "txn_count_24h"} <= drifted_cols
    v = next(v for v in drifted["violations"] if v["column"] == "channel")
    assert v["bound"] == "PSI <= 0.25"
    assert v["found"].startswith("PSI ")


def test_per_column_drift_bound_overrides_default(small_df, contract):
    ref = distributions.profile_frame(small_df)
    shifted = small_df.copy()
    shifted["amount"] = shifted["amount"] * 1.6
    report = run(shifted, contract, ref)
    assert report["drift"]["amount"]["max_psi"] == 0.2  # from the contract's column rule


def test_extra_columns_can_be_forbidden(small_df, contract):
    strict = contract.model_copy(update={"allow_extra_columns": False})
    report = run(small_df.assign(debug=1), strict)
    assert (None, "extra_columns") in checks(report)


def test_markdown_and_text_reports_list_violations(small_df, contract):
    small_df.loc[0, "channel"] = "fax"
    report = run(small_df, contract)
    md = contracts.render_markdown(report)
    assert "# Data validation: FAILED" in md
    assert "| channel | allowed_values | 1 |" in md
    assert "FAILED (4000 rows, 1 violation(s))" in contracts.render_text(report)


# ------------------------------------------------------------------------- contract files


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: x\ncolumns: {a: {dtype: decimal}}", r"columns\.a\.dtype: Input should be"),
        ("name: x\ncolumns: {a: {dtype: int, min: 5, max: 1}}", r"min \(5\) is greater than max"),
        ("name: x\ncolumns: {a: {dtype: int, nulable: true}}", r"columns\.a\.nulable: Extra"),
        ("name: x\nkey: [b]\ncolumns: {a: {dtype: int}}", "key column 'b' is not declared"),
        ("name: x\ncolumns: {}", r"columns: Dictionary should have at least 1 item"),
        ("name: x\ncolumns: {a: {dtype: string, min: 1}}", "min/max apply to int and float"),
        ("name: x\nrows: {min: 10, max: 5}\ncolumns: {a: {dtype: int}}", r"max \(5\) is less"),
        ("columns: [a, b", "invalid YAML"),
        ("- just\n- a list", "expected a mapping at the top level, got list"),
        (
            "name: x\nfreshness: {column: a, max_age_days: 1}\ncolumns: {a: {dtype: int}}",
            "must be a declared datetime column",
        ),
    ],
)
def test_invalid_contract_names_the_field(text, message):
    with pytest.raises(BadInputError, match=message) as err:
        contracts.contract_from_yaml(text, "contract.yaml")
    assert err.value.exit_code == 2


def test_missing_contract_file(tmp_path):
    with pytest.raises(BadInputError, match="data contract file not found"):
        contracts.load_contract(tmp_path / "nope.yaml")


def test_reference_profile_errors(tmp_path):
    bad = tmp_path / "p.json"
    bad.write_text("{not json")
    with pytest.raises(BadInputError, match="reference profile is not valid JSON"):
        contracts.load_profile(bad)
    bad.write_text('{"rows": 3}')
    with pytest.raises(BadInputError, match="has no 'columns' mapping"):
        contracts.load_profile(bad)
