"""`conveyor new TEAM --data TABLE --label COL`: a team's own table, never seen by the other
tests (one all numeric, one with string categoricals and a Yes/No label), goes to an approved,
served, smoke-tested version with no hand editing."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conveyor.cli import main
from conveyor.errors import BadInputError
from conveyor.evaluation import group_order
from conveyor.scaffold import scaffold

pytestmark = pytest.mark.integration


def _numeric_table(path: Path, rows: int = 1500) -> Path:
    rng = np.random.default_rng(11)
    x = rng.normal(size=(rows, 4))
    score = x[:, 0] * 1.5 - x[:, 1] + rng.normal(0, 0.7, rows)
    df = pd.DataFrame(x, columns=["temp", "pressure", "flow", "vibration"])
    df["cycles"] = rng.integers(0, 5000, rows)
    df["failed"] = (score > 0.8).astype(int)
    df.to_parquet(path, index=False)
    return path


def _customer_table(path: Path, rows: int = 1500) -> Path:
    rng = np.random.default_rng(5)
    age = rng.integers(18, 90, rows)
    plan = rng.choice(["basic", "pro", "max"], rows)
    region = rng.choice(["north", "south", "east", "west"], rows)
    income = rng.normal(50_000, 15_000, rows).round(2)
    income[rng.random(rows) < 0.03] = np.nan
    z = (age - 50) / 20 + (plan == "max") * 1.2 - (region == "east") * 0.8 + rng.normal(0, 1, rows)
    pd.DataFrame({
        "customer_id": [f"C{i:05d}" for i in range(rows)], "age": age, "region": region,
        "plan": plan, "income": income, "sex": rng.choice(["F", "M"], rows),
        "churn": np.where(z > 0.8, "Yes", "No"),
    }).to_csv(path, index=False)  # fmt: skip
    return path


@pytest.mark.parametrize(
    ("table", "args"),
    [
        (_numeric_table, ["--label", "failed"]),
        (_customer_table, ["--label", "churn", "--positive", "Yes", "--sensitive", "sex", "age"]),
    ],
    ids=["numeric-keyless", "categorical-yes-no"],
)
def test_a_new_table_goes_to_a_served_champion_with_no_hand_editing(
    workdir, capsys, table, args
) -> None:
    name = "readings.parquet" if table is _numeric_table else "customers.csv"
    # 3,000 customers: a holdout whose four age groups are large enough for the 4/5 rule
    data = table(workdir / name) if table is _numeric_table else table(workdir / name, 3000)
    assert main(["new", "acme", "--data", str(data), *args]) == 0
    said = capsys.readouterr().err
    assert main(["validate-config", "acme/pipeline.yaml"]) == 0
    capsys.readouterr()
    config = yaml.safe_load(Path("acme/pipeline.yaml").read_text())
    contract = yaml.safe_load(Path("acme/contract.yaml").read_text())
    if table is _numeric_table:
        assert config["features"]["key"] is None and contract["key"] == []
        assert "no key column" in said and "a row's position in the table identifies it" in said
        assert config["features"]["numeric"] == ["temp", "pressure", "flow", "vibration", "cycles"]
        assert contract["columns"]["cycles"]["dtype"] == "int"
    else:
        assert config["features"]["positive"] == "Yes"
        assert config["features"]["categorical"] == ["region", "plan"]
        assert config["features"]["key"] == "customer_id"
        assert config["features"]["passthrough"] == ["sex", "age"]
        assert config["evaluation"]["fairness"] == ["sex", "age"]
        assert contract["columns"]["income"]["nullable"] is True
        assert contract["columns"]["churn"]["allowed"] == ["No", "Yes"]

    assert main(["run", "--config", "acme/pipeline.yaml"]) == 0
    out = capsys.readouterr().out
    assert len(out.splitlines()) < 40
    assert "registry: acme v1 approved" in out and "promoted v1 to champion" in out
    assert "smoke test passed" in out
    assert (workdir / ".conveyor" / "serving" / "acme" / "v1" / "smoke.md").is_file()
    if table is _numeric_table:  # said once, on the terminal, by the stage that splits
        assert out.count("prepare-features   note: features.key is not set") == 1
    else:  # age (72 values) is compared by quartile bins, in order, not by 72 text values
        report = next(workdir.glob(".conveyor/pipeline_root/run-*/*/evaluate/evaluation"))
        age = json.loads(report.read_text())["fairness"]["age"]
        order = group_order(age)
        assert len(order) == 4 and order[0].startswith("< ") and order[-1].startswith(">= ")
        markdown = (report.parent / "report").read_text()
        assert markdown.index(f"| {order[0]} |") < markdown.index(f"| {order[1]} |")


def test_bad_table_choices_are_named(workdir, capsys) -> None:
    data = _customer_table(workdir / "customers.csv", rows=200)
    cases = [
        ({"label": "churn"}, "--label 'churn' holds ['No', 'Yes'], not 0/1: name the positive "
                             "class with --positive (e.g. --positive Yes)"),
        ({"label": "chrun"}, "--label 'chrun': not a column of"),
        ({"label": "churn", "positive": "yes"}, "--positive 'yes': the label holds ['No', 'Yes']"),
        ({"label": "region"}, "--label 'region': a binary label has exactly two values"),
        ({"label": "churn", "positive": "Yes", "key": "plan"},
         "--key 'plan': not unique per row"),
    ]  # fmt: skip
    for options, message in cases:
        with pytest.raises(BadInputError) as exc:
            scaffold("acme", workdir, table=str(data), **options)
        assert message in str(exc.value)
        assert not (workdir / "acme").exists(), "nothing written for a refused table"
    assert main(["new", "acme", "--label", "churn"]) == 2
    assert "--label, --positive, --key and --sensitive describe --data" in capsys.readouterr().err


def test_a_coded_label_keeps_its_column_type_in_the_contract(workdir, capsys) -> None:
    data = workdir / "coded.csv"
    table = pd.read_csv(_customer_table(workdir / "customers.csv", rows=300))
    table.assign(churn=table["churn"].map({"Yes": 2, "No": 1})).to_csv(data, index=False)
    scaffold("acme", workdir, table=str(data), label="churn", positive="2")
    contract = yaml.safe_load((workdir / "acme" / "contract.yaml").read_text())
    assert contract["columns"]["churn"] == {"dtype": "int", "allowed": [1, 2]}
    assert main(["validate-config", "acme/pipeline.yaml"]) == 0
    assert main(["validate", "--contract", "acme/contract.yaml", str(data)]) == 0
