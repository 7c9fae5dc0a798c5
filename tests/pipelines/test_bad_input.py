"""Bad input, end to end through `conveyor run`: a clear message naming the problem, a non-zero
exit, and no training run, no model file, no registry entry."""

from pathlib import Path

import pytest

from conveyor.cli import main
from conveyor.distributions import profile_frame
from conveyor.sample import generate
from conveyor.tables import write_json, write_table
from tests.conftest import copy_examples

pytestmark = pytest.mark.integration

ROWS = 2000


def _clean():
    return generate(ROWS, seed=21)  # event times anchored today, so the batch is fresh


def _write(df, folder: Path, name="batch.parquet") -> Path:
    return write_table(df, folder / name)


def missing_file(folder):
    return folder / "nowhere.parquet", {}


def unreadable_csv(folder):
    path = folder / "garbage.csv"
    path.write_bytes(b"\x00\xff\xfe" * 300 + b"\n\x81,\x82\n")
    return path, {}


def unreadable_parquet(folder):
    path = folder / "broken.parquet"
    path.write_bytes(b"PAR1 this is not really parquet")
    return path, {}


def empty_file(folder):
    path = folder / "empty.csv"
    path.write_text("")
    return path, {}


def header_only(folder):
    path = folder / "header.csv"
    path.write_text(",".join(_clean().columns) + "\n")
    return path, {}


def missing_column(folder):
    return _write(_clean().drop(columns=["amount"]), folder), {}


def wrong_dtype(folder):
    df = _clean()
    df["txn_count_24h"] = df["txn_count_24h"].astype(str)
    df.loc[[4, 8], "txn_count_24h"] = ["three", "lots"]
    return _write(df, folder, "batch.csv"), {}


def nulls_in_required(folder):
    df = _clean()
    df.loc[:4, "channel"] = None
    return _write(df, folder), {}


def out_of_range(folder):
    df = _clean()
    df.loc[7, "hour_of_day"] = 31
    return _write(df, folder), {}


def unknown_category(folder):
    df = _clean()
    df.loc[3, "card_type"] = "titanium"
    return _write(df, folder), {}


def duplicate_keys(folder):
    df = _clean()
    df.loc[1, "id"] = df.loc[0, "id"]
    return _write(df, folder), {}


def too_few_rows(folder):
    return _write(_clean().head(50), folder), {}


def drifted(folder):
    ref = generate(ROWS, seed=22)
    profile = write_json(profile_frame(ref, ["merchant_risk_score", "channel"]), folder / "p.json")
    cur = generate(ROWS, seed=23, mode="drift")
    return _write(cur, folder), {"reference": profile}


def invalid_contract(folder):
    contract = folder / "fraud" / "contract.yaml"
    contract.write_text(
        contract.read_text().replace("dtype: int, min: 0, max: 23", "dtype: int, min: 23, max: 0")
    )
    return _write(_clean(), folder), {}


def invalid_config(folder):
    config = folder / "fraud" / "pipeline.yaml"
    config.write_text(
        config.read_text().replace("estimator: hist_gradient_boosting", "estimator: svm")
    )
    return _write(_clean(), folder), {}


def invalid_profile(folder):
    (folder / "p.json").write_text("[1, 2")
    return _write(_clean(), folder), {"reference": folder / "p.json"}


CASES = [
    (missing_file, 2, "nowhere.parquet: file not found"),
    (unreadable_csv, 2, "garbage.csv: unreadable CSV file"),
    (unreadable_parquet, 2, "broken.parquet: unreadable Parquet file"),
    (empty_file, 2, "empty.csv: the file is empty"),
    (header_only, 4, "table: row_count failed for 0 row(s); expected between 1000 and"),
    (missing_column, 4, "column 'amount': required failed"),
    (wrong_dtype, 4, "column 'txn_count_24h': dtype failed for 2 row(s); expected int"),
    (nulls_in_required, 4, "column 'channel': not_null failed for 5 row(s)"),
    (out_of_range, 4, "column 'hour_of_day': range failed for 1 row(s); expected [0, 23]"),
    (unknown_category, 4, "column 'card_type': allowed_values failed for 1 row(s)"),
    (duplicate_keys, 4, "column 'id': unique_key failed for 2 row(s)"),
    (too_few_rows, 4, "row_count failed for 50 row(s); expected between 1000 and 20000000 rows"),
    (drifted, 4, "column 'merchant_risk_score': drift failed"),
    (invalid_contract, 2, "columns.hour_of_day: Value error, min (23) is greater than max (0)"),
    (invalid_config, 2, "training.estimator: Input should be 'logistic_regression' or"),
    (invalid_profile, 2, "p.json: reference profile is not valid JSON"),
]


@pytest.mark.parametrize(("make", "code", "message"), CASES, ids=[c[0].__name__ for c in CASES])
def test_bad_input_is_refused_and_nothing_is_trained(workdir, capsys, make, code, message):
    copy_examples(workdir)
    config = workdir / "fraud" / "pipeline.yaml"
    data, extra = make(workdir)
    args = ["run", "--config", str(config), "--data", str(data)]
    if "reference" in extra:
        args += ["--reference", str(extra["reference"])]
    assert main(args) == code
    err = capsys.readouterr().err
    assert message in err
    assert not list(workdir.rglob("model.joblib")), "no model file may be written"
    assert not list(workdir.rglob("train/model")), "no model folder may be written"
    db = workdir / ".conveyor" / "mlflow.db"
    assert not db.exists(), "no tracking store, so no run and no registry entry"
