"""The conveyor CLI: exit codes 0 / 2 / 4 and messages that say what to do."""

import json

import pytest

from conveyor.cli import main
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.unit
CONTRACT = str(EXAMPLES / "contract.yaml")


def test_sample_then_validate_passes(tmp_path, capsys):
    out = tmp_path / "batch.csv"
    assert main(["sample", "--rows", "2000", "--out", str(out), "--seed", "3"]) == 0
    assert "wrote 2,000 rows x 20 columns (clean)" in capsys.readouterr().out
    assert main(["validate", "--contract", CONTRACT, str(out)]) == 0
    assert "fraud-transactions: PASSED (2000 rows, 0 violation(s))" in capsys.readouterr().out


def test_corrupt_batch_exits_4_with_json_report(tmp_path, capsys):
    out = tmp_path / "bad.parquet"
    assert main(["sample", "--rows", "2000", "--out", str(out), "--corrupt"]) == 0
    capsys.readouterr()
    code = main(
        [
            "validate",
            "--contract",
            CONTRACT,
            str(out),
            "--format",
            "json",
            "--report-dir",
            str(tmp_path),
        ]
    )
    assert code == 4
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] is False
    assert report["violation_count"] == 7
    assert (tmp_path / "validation.md").is_file()


def test_drift_needs_reference_and_is_caught(tmp_path, capsys):
    ref, cur = tmp_path / "ref.parquet", tmp_path / "cur.parquet"
    main(["sample", "--rows", "5000", "--out", str(ref), "--seed", "1"])
    main(["sample", "--rows", "5000", "--out", str(cur), "--seed", "2", "--drift"])
    profile = tmp_path / "profile.json"
    assert main(["profile", str(ref), "--out", str(profile), "--columns", "channel,amount"]) == 0
    assert main(["validate", "--contract", CONTRACT, str(cur)]) == 0  # no reference: no PSI
    capsys.readouterr()
    assert main(["validate", "--contract", CONTRACT, str(cur), "--reference", str(profile)]) == 4
    assert "column 'channel': drift failed" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["validate", "--contract", CONTRACT, "missing.csv"], "missing.csv: file not found"),
        (
            ["validate", "--contract", "nope.yaml", "x.csv"],
            "nope.yaml: data contract file not found",
        ),
        (["validate", "--contract", CONTRACT, "data.xlsx"], "unsupported table format '.xlsx'"),
        (["profile", "missing.parquet", "--out", "p.json"], "missing.parquet: file not found"),
        (["run", "--config", "nope.yaml"], "nope.yaml: pipeline config file not found"),
    ],
)
def test_bad_input_exits_2_naming_the_problem(workdir, capsys, args, message):
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_help_explains_every_command(capsys):
    for command in ("sample", "validate", "profile", "run"):
        with pytest.raises(SystemExit) as exit_:
            main([command, "--help"])
        assert exit_.value.code == 0
        assert "usage: conveyor " + command in capsys.readouterr().out


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["sample", "--rows", "ten", "--out", "x.csv"])
    assert exit_.value.code == 2
    assert "invalid int value: 'ten'" in capsys.readouterr().err


def test_the_parser_names_every_rollout_sim_scenario():
    from conveyor.cli import SIM_SCENARIOS
    from conveyor.local.sim import SCENARIOS

    assert tuple(sorted(SCENARIOS)) == SIM_SCENARIOS


@pytest.mark.parametrize("rows", ["0", "-5"])
def test_sample_with_no_rows_is_bad_input_not_a_traceback(tmp_path, capsys, rows):
    assert main(["sample", "--rows", rows, "--out", str(tmp_path / "x.csv")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: rows: {rows} is below the minimum 1")
    assert not (tmp_path / "x.csv").exists()


def test_profile_of_a_header_only_table_is_bad_input(tmp_path, capsys):
    table = tmp_path / "empty.csv"
    table.write_text("amount,channel\n")
    assert main(["profile", str(table), "--out", str(tmp_path / "p.json")]) == 2
    assert "no rows (a header only?)" in capsys.readouterr().err
    assert not (tmp_path / "p.json").exists()


def test_an_output_path_that_cannot_be_made_is_bad_input(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("in the way")
    out = blocker / "sub" / "batch.csv"
    assert main(["sample", "--rows", "10", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{out}: cannot create its folder" in err and "choose a path you can write to" in err
    batch = tmp_path / "b.csv"
    assert main(["sample", "--rows", "100", "--out", str(batch)]) == 0
    capsys.readouterr()
    report_dir = blocker / "reports"
    assert main(["validate", "--contract", CONTRACT, str(batch), "--report-dir",
                 str(report_dir)]) == 2  # fmt: skip
    assert "cannot create its folder" in capsys.readouterr().err
