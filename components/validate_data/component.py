"""KFP component: validate a batch against its data contract.

Logic: ``conveyor.stages.validate_data``."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Markdown, Output

from conveyor import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def validate_data(
    batch: Input[Dataset],
    contract: str,
    dataset: Output[Dataset],
    report: Output[Markdown],
    report_json: Output[Artifact],
    reference_profile: Input[Artifact] = None,
) -> NamedTuple("ValidationOutputs", [("rows", int), ("data_sha256", str)]):  # type: ignore[valid-type]
    """Check a batch against a data contract; any violation fails the task.

    All checks run (columns, dtypes, nulls, ranges, categories, unique columns and key, extra
    columns, row count, freshness and PSI drift against a reference profile) and every
    violation is listed in the reports, which are written before the task fails (on a cluster
    the violations also appear in the task log). Nothing downstream runs on a rejected batch.

    Args:
        batch: The batch to check: a .csv or .parquet file (or a Dataset folder holding
            ``data.parquet``), usually brought in with ``dsl.importer`` from object storage.
        contract: The data contract as YAML or JSON text (see examples/fraud/contract.yaml).
        dataset: The validated batch as ``data.parquet`` inside this folder.
        report: The validation report rendered as Markdown for the KFP UI.
        report_json: The machine-readable validation report (JSON).
        reference_profile: Optional reference profile (JSON, from ``conveyor profile`` or
            prepare_features' ``feature_profile``) for the PSI drift checks.

    Returns:
        rows: Number of rows in the validated batch.
        data_sha256: sha256 of the batch file, the data fingerprint used for lineage.
    """
    from collections import namedtuple

    from conveyor.stages.validate_data import run

    result = run(
        batch.path,
        contract,
        dataset.path,
        report_json.path,
        report.path,
        reference_profile.path if reference_profile is not None else None,
    )
    dataset.metadata.update(
        {"rows": result.rows, "sha256": result.data_sha256, "contract": result.contract}
    )
    outputs = namedtuple("ValidationOutputs", ["rows", "data_sha256"])
    return outputs(result.rows, result.data_sha256)
