"""validate_data: reports always, the validated batch only when it passes."""

import pytest

from conveyor.errors import ContractViolationError
from conveyor.stages import validate_data
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.unit


def test_writes_reports_but_no_dataset_on_violation(tmp_path):
    from conveyor.sample import generate
    from conveyor.tables import write_table

    df = generate(2000, seed=3)  # event times anchored today, so only the injected fault fails
    df.loc[0, "amount"] = -5.0
    data = write_table(df, tmp_path / "batch.csv")
    text = (EXAMPLES / "contract.yaml").read_text()
    with pytest.raises(ContractViolationError, match=r"1 contract violation\(s\)") as err:
        validate_data.run(str(data), text, tmp_path / "out", tmp_path / "r.json", tmp_path / "r.md")
    assert "column 'amount': range failed for 1 row(s); expected [0, 1e+06]" in str(err.value)
    assert (tmp_path / "r.json").is_file()
    assert "FAILED" in (tmp_path / "r.md").read_text()
    assert not (tmp_path / "out").exists()


def test_writes_the_validated_dataset(tmp_path):
    from conveyor.sample import generate
    from conveyor.tables import read_table, write_table

    data = write_table(generate(2000, seed=3), tmp_path / "batch.csv")
    text = (EXAMPLES / "contract.yaml").read_text()
    result = validate_data.run(
        str(data), text, tmp_path / "out", tmp_path / "r.json", tmp_path / "r.md"
    )
    report = result.report
    assert result.rows == 2000 and result.data_sha256 == report["data_sha256"]
    assert report["passed"]
    assert len(report["data_sha256"]) == 64
    assert len(read_table(tmp_path / "out")) == 2000
