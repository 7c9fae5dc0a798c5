"""Tables in and out: bad files are bad input naming the file, never a traceback."""

import pandas as pd
import pytest

from conveyor.errors import BadInputError
from conveyor.tables import probe_table, read_table, write_table, write_text
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.unit


def test_a_csv_with_a_repeated_column_name_is_refused_like_parquet(tmp_path, capsys):
    path = tmp_path / "twice.csv"
    path.write_text("id,amount,amount\n1,5.0,-3.0\n")
    for read in (read_table, probe_table):
        with pytest.raises(BadInputError, match=r"\['amount'\] appear more than once"):
            read(path)
    from conveyor.cli import main

    assert main(["validate", str(path), "--contract", str(EXAMPLES / "contract.yaml")]) == 2
    assert "appear more than once in the header" in capsys.readouterr().err


def test_distinct_names_that_look_like_pandas_renames_are_kept(tmp_path):
    path = tmp_path / "ok.csv"
    path.write_text("amount,amount.1\n1,2\n")
    assert list(read_table(path).columns) == ["amount", "amount.1"]


def test_a_path_that_cannot_be_written_names_itself(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(BadInputError, match=r"file/out\.csv: cannot create its folder"):
        write_table(pd.DataFrame({"a": [1]}), blocker / "out.csv")
    with pytest.raises(BadInputError, match="cannot write"):
        write_text("x", tmp_path)  # a folder where a file should go
