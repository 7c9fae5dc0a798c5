"""validate_data: check a batch against its data contract; nothing passes a rejected batch."""

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conveyor.contracts import Contract, check_batch, render_markdown
from conveyor.contracts import enforce as refuse_violations
from conveyor.stages._parts import spec
from conveyor.tables import copy_as_parquet, write_json, write_text

__all__ = ["Result", "run"]

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class Result:
    passed: bool
    rows: int
    data_sha256: str
    contract: str
    report: dict[str, Any]  # the validation report, as written to report_json


def run(
    batch: PathLike,
    contract: Contract | str,
    dataset_dir: PathLike | None,
    report_json: PathLike | None,
    report_md: PathLike | None,
    reference_profile: PathLike | None = None,
    *,
    enforce: bool = True,
) -> Result:
    """Reports are written always (those given); ``dataset_dir/data.parquet`` only when the
    batch passes. With ``enforce`` a violation raises ``ContractViolationError`` after the
    reports exist; without it (``conveyor validate``) the result says ``passed``."""
    checked = spec(Contract, contract, "contract")
    table, report = check_batch(str(batch), checked, str(reference_profile or "") or None)
    if report_json is not None:
        write_json(report, report_json)
    if report_md is not None:
        write_text(render_markdown(report), report_md)
    if enforce:
        refuse_violations(report)
    if dataset_dir is not None and report["passed"]:
        copy_as_parquet(table, Path(dataset_dir) / "data.parquet")
    return Result(
        bool(report["passed"]), int(report["rows"]), str(report["data_sha256"]),
        str(report["contract"]), report,
    )  # fmt: skip
