"""validate_data: check a batch against its data contract; nothing passes a rejected batch."""

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conveyor.contracts import Contract, check_batch, enforce, render_markdown
from conveyor.stages._parts import spec
from conveyor.tables import write_json, write_table, write_text

__all__ = ["Result", "run"]

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class Result:
    rows: int
    data_sha256: str
    contract: str
    report: dict[str, Any]  # the validation report, as written to report_json


def run(
    batch: PathLike,
    contract: Contract | str,
    dataset_dir: PathLike,
    report_json: PathLike,
    report_md: PathLike,
    reference_profile: PathLike | None = None,
) -> Result:
    """Reports are written always; ``dataset_dir/data.parquet`` only when the batch passes
    (a violation raises ``ContractViolation`` after the reports exist)."""
    checked = spec(Contract, contract, "contract")
    df, report = check_batch(str(batch), checked, str(reference_profile or "") or None)
    write_json(report, report_json)
    write_text(render_markdown(report), report_md)
    enforce(report)
    write_table(df, Path(dataset_dir) / "data.parquet")
    return Result(int(report["rows"]), str(report["data_sha256"]), str(report["contract"]), report)
